/**
 * CD builders (smmuv3.md §3.3): Linux's `arm_smmu_make_s1_cd` and the "used bits" of a CD
 * (`arm_smmu_get_cd_used`, §2.6). A CD is 16 words (8 dwords); builders fill a caller-owned
 * `Uint32Array(16)` completely. Also the table-building library tests use.
 */
import { Cd, MAIR_LINUX, setField } from '../codec/index.js';

/** Words of one CD. */
export const CD_WORDS = 16;

/** Stage-1 TCR fields from the page-table library (IoPgtableArm.tcr). */
export interface S1Tcr {
  readonly t0sz: number;
  /** CD.TG0 encoding (4K 0, 64K 1, 16K 2). */
  readonly tg: number;
  readonly ir: number;
  readonly or: number;
  readonly sh: number;
  /** CD.IPS encoding (IDR5.OAS encoding). */
  readonly ips: number;
}

/** Inputs of {@link makeS1Cd}. */
export interface S1CdParams {
  readonly tcr: S1Tcr;
  /** TTB0: the stage-1 table base PA. */
  readonly ttb0: number;
  readonly asid: number;
  /** The master can stall (CD.S). */
  readonly stall: boolean;
  /** Hardware dirty tracking: HA + HD (IO_PGTABLE_QUIRK_ARM_HD). */
  readonly dirty: boolean;
  /** MAIR (default Linux's 0xF404FF44). */
  readonly mair?: number;
}

/**
 * `arm_smmu_make_s1_cd` (§3.3): T0SZ, TG0, IR0, OR0, SH0, EPD1, V, IPS, AA64, S (stalling master),
 * R, A, ASET, ASID (+ HA | HD for dirty tracking); dword1 = TTB0; dword3 = MAIR.
 * §3.3 worked example: 48-bit IAS, 4 KiB, coherent, OAS 44, ASID 1 → dword0 0x0001E204C0003510.
 */
export function makeS1Cd(out: Uint32Array, p: S1CdParams): Uint32Array {
  out.fill(0, 0, CD_WORDS);
  setField(out, 0, Cd.T0SZ, p.tcr.t0sz);
  setField(out, 0, Cd.TG0, p.tcr.tg);
  setField(out, 0, Cd.IR0, p.tcr.ir);
  setField(out, 0, Cd.OR0, p.tcr.or);
  setField(out, 0, Cd.SH0, p.tcr.sh);
  setField(out, 0, Cd.EPD1, 1);
  setField(out, 0, Cd.V, 1);
  setField(out, 0, Cd.IPS, p.tcr.ips);
  setField(out, 0, Cd.AA64, 1);
  if (p.stall) setField(out, 0, Cd.S, 1);
  setField(out, 0, Cd.R, 1);
  setField(out, 0, Cd.A, 1);
  setField(out, 0, Cd.ASET, 1);
  setField(out, 0, Cd.ASID, p.asid);
  if (p.dirty) {
    setField(out, 0, Cd.HA, 1);
    setField(out, 0, Cd.HD, 1);
  }
  setField(out, 0, Cd.TTB0, Math.floor(p.ttb0 / 16));
  const mair = p.mair ?? MAIR_LINUX;
  out[6] = mair >>> 0; // dword3 low = MAIR0
  out[7] = Math.floor(mair / 4294967296) >>> 0;
  return out;
}

/**
 * `arm_smmu_get_cd_used` (§2.6): only V for an invalid CD; else every bit, except
 * T0SZ/TG0/IR0/OR0/SH0/TTB0 when EPD0 = 1.
 */
export function getCdUsed(cd: Uint32Array, w: number, used: Uint32Array): void {
  used.fill(0, 0, CD_WORDS);
  if ((cd[w] & 0x80000000) === 0) {
    used[0] = 0x80000000;
    return;
  }
  used.fill(0xffffffff, 0, CD_WORDS);
  if (cd[w] & (1 << 14)) {
    for (const f of [Cd.T0SZ, Cd.TG0, Cd.IR0, Cd.OR0, Cd.SH0]) setField(used, 0, f, 0);
    setField(used, 0, Cd.TTB0, 0);
  }
}
