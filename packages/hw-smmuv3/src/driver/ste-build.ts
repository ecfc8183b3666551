/**
 * STE builders: the entries Linux writes (smmuv3.md §2.3 — `arm_smmu_make_abort_ste`,
 * `_bypass_ste`, `_cdtable_ste`, `_s2_domain_ste`, `_nested_ste`) and the "used bits" of an STE
 * (`arm_smmu_get_ste_used`, §2.6) that the update protocol compares. An STE is 16 words (8
 * dwords, low word first); builders fill a caller-owned `Uint32Array(16)` completely. This is
 * also the table-building library tests use to write STEs by hand.
 */
import { Eats, S1Dss, SHCFG_INCOMING, Ste, SteConfig, Strw, getField, setField, type Field } from '../codec/index.js';

/** Words of one STE. */
export const STE_WORDS = 16;

function ones(f: Field): number {
  return 2 ** f.width - 1;
}

/** Linux's abort STE: V = 1, Config = abort (dword0 = 0x1). */
export function makeAbortSte(out: Uint32Array): Uint32Array {
  out.fill(0, 0, STE_WORDS);
  out[0] = 1 | (SteConfig.ABORT << 1);
  return out;
}

/** Linux's bypass STE: V = 1, Config = bypass (0x9); SHCFG = incoming when IDR1.ATTR_TYPES_OVR. */
export function makeBypassSte(out: Uint32Array, attrTypesOvr: boolean): Uint32Array {
  out.fill(0, 0, STE_WORDS);
  out[0] = 1 | (SteConfig.BYPASS << 1);
  if (attrTypesOvr) setField(out, 0, Ste.SHCFG, SHCFG_INCOMING);
  return out;
}

/** Inputs of {@link makeCdTableSte}. */
export interface CdTableSteParams {
  /** CD table PA (S1ContextPtr). */
  readonly cdPtr: number;
  readonly s1fmt: number;
  readonly s1cdmax: number;
  /** S1DSS: 0 terminate (RID blocked), 1 bypass (RID identity), 2 SSID0 (RID on a paging domain). */
  readonly s1dss: number;
  /** EATS = 1 (full ATS). */
  readonly ats: boolean;
  /** The SMMU supports stalls (ARM_SMMU_FEAT_STALLS). */
  readonly smmuStalls: boolean;
  /** The master can stall (then S1STALLD stays 0). */
  readonly stallEnabled: boolean;
  /** IDR1.ATTR_TYPES_OVR. */
  readonly attrTypesOvr: boolean;
}

/**
 * `arm_smmu_make_cdtable_ste` (§2.3 "S1"): V | Config = S1 | S1Fmt | S1ContextPtr | S1CDMax;
 * S1DSS | S1CIR = S1COR = WBRA | S1CSH = ISH (0xD6 with S1DSS = 2), S1STALLD when the SMMU
 * stalls but the master does not, EATS, SHCFG = incoming for S1DSS = bypass with
 * ATTR_TYPES_OVR, STRW = NS-EL1; S2VMID 0.
 */
export function makeCdTableSte(out: Uint32Array, p: CdTableSteParams): Uint32Array {
  out.fill(0, 0, STE_WORDS);
  setField(out, 0, Ste.V, 1);
  setField(out, 0, Ste.CONFIG, SteConfig.S1_TRANS);
  setField(out, 0, Ste.S1FMT, p.s1fmt);
  setField(out, 0, Ste.S1_CONTEXT_PTR, Math.floor(p.cdPtr / 64));
  setField(out, 0, Ste.S1_CD_MAX, p.s1cdmax);
  setField(out, 0, Ste.S1DSS, p.s1dss);
  setField(out, 0, Ste.S1CIR, 1);
  setField(out, 0, Ste.S1COR, 1);
  setField(out, 0, Ste.S1CSH, 3);
  if (p.smmuStalls && !p.stallEnabled) setField(out, 0, Ste.S1STALLD, 1);
  if (p.ats) setField(out, 0, Ste.EATS, Eats.TRANS);
  if (p.attrTypesOvr && p.s1dss === S1Dss.BYPASS) setField(out, 0, Ste.SHCFG, SHCFG_INCOMING);
  setField(out, 0, Ste.STRW, Strw.NSEL1);
  return out;
}

/** Inputs of {@link makeS2Ste}. */
export interface S2SteParams {
  readonly vmid: number;
  /** Linux's 19-bit VTCR value (T0SZ, SL0, IR0, OR0, SH0, TG, PS; §2.1 note). */
  readonly vtcr: number;
  /** Stage-2 table base PA (S2TTB). */
  readonly s2ttb: number;
  readonly ats: boolean;
  /** The master can stall (S2S). */
  readonly stallEnabled: boolean;
  /** STE.S2FWB (nest parent on an SMMU with IDR3.FWB). */
  readonly fwb: boolean;
  readonly attrTypesOvr: boolean;
}

/**
 * `arm_smmu_make_s2_domain_ste` (§2.3 "S2"): V | Config = S2; EATS, S2FWB, SHCFG; dword2 = VMID |
 * VTCR << 32 | S2AA64 | S2PTW | S2R (| S2S); dword3 = S2TTB.
 */
export function makeS2Ste(out: Uint32Array, p: S2SteParams): Uint32Array {
  out.fill(0, 0, STE_WORDS);
  setField(out, 0, Ste.V, 1);
  setField(out, 0, Ste.CONFIG, SteConfig.S2_TRANS);
  if (p.ats) setField(out, 0, Ste.EATS, Eats.TRANS);
  if (p.fwb) setField(out, 0, Ste.S2FWB, 1);
  if (p.attrTypesOvr) setField(out, 0, Ste.SHCFG, SHCFG_INCOMING);
  setField(out, 0, Ste.S2VMID, p.vmid);
  out[5] = (out[5] | (p.vtcr & 0x7ffff)) >>> 0; // VTCR at dword2 [50:32]
  setField(out, 0, Ste.S2AA64, 1);
  setField(out, 0, Ste.S2PTW, 1);
  if (p.stallEnabled) setField(out, 0, Ste.S2S, 1);
  setField(out, 0, Ste.S2R, 1);
  setField(out, 0, Ste.S2TTB, Math.floor(p.s2ttb / 16));
  return out;
}

/** Guest-STE fields a nested domain may carry (§9.3): dword0 V, Config, S1Fmt, S1ContextPtr, S1CDMax. */
export const NESTED_STE0_FIELDS: readonly Field[] = [Ste.V, Ste.CONFIG, Ste.S1FMT, Ste.S1_CONTEXT_PTR, Ste.S1_CD_MAX];
/** Guest-STE dword1 fields: S1DSS, S1CIR, S1COR, S1CSH, S1STALLD, EATS. */
export const NESTED_STE1_FIELDS: readonly Field[] = [Ste.S1DSS, Ste.S1CIR, Ste.S1COR, Ste.S1CSH, Ste.S1STALLD, Ste.EATS];

/**
 * `arm_smmu_make_nested_cd_table_ste` (§9.3): the parent's S2 STE `s2` with dword0 = V | Config
 * = nested | the guest dword0 fields (without Config), dword1 |= guest dword1 fields | MEV, and
 * EATS from `ats` (the kernel sets EATS itself). `guest` holds the guest's dwords 0–1 (4 words).
 */
export function makeNestedSte(out: Uint32Array, s2: Uint32Array, guest: Uint32Array, ats: boolean): Uint32Array {
  out.set(s2.subarray(0, STE_WORDS));
  // dword0: V | Cfg = nested | guest S1Fmt / S1ContextPtr / S1CDMax.
  out[0] = 0;
  out[1] = 0;
  setField(out, 0, Ste.V, 1);
  setField(out, 0, Ste.CONFIG, SteConfig.NESTED);
  for (const f of [Ste.S1FMT, Ste.S1_CONTEXT_PTR, Ste.S1_CD_MAX]) setField(out, 0, f, getField(guest, 0, f));
  for (const f of NESTED_STE1_FIELDS) if (f !== Ste.EATS) setField(out, 0, f, getField(guest, 0, f));
  setField(out, 0, Ste.EATS, ats ? Eats.TRANS : 0);
  setField(out, 0, Ste.MEV, 1);
  return out;
}

/**
 * `arm_smmu_get_ste_used` (§2.6): the bits of STE `ste` (at word `w`) that the hardware
 * currently uses, into `used` (16 words, overwritten).
 */
export function getSteUsed(ste: Uint32Array, w: number, used: Uint32Array): void {
  used.fill(0, 0, STE_WORDS);
  setField(used, 0, Ste.V, 1);
  if ((ste[w] & 1) === 0) return;
  setField(used, 0, Ste.CONFIG, ones(Ste.CONFIG));
  const cfg = (ste[w] >>> 1) & 7;
  if (cfg & 1) {
    for (const f of [Ste.S1FMT, Ste.S1_CONTEXT_PTR, Ste.S1_CD_MAX]) setField(used, 0, f, ones(f));
    for (const f of [Ste.S1DSS, Ste.S1CIR, Ste.S1COR, Ste.S1CSH, Ste.S1STALLD, Ste.STRW, Ste.EATS, Ste.MEV]) setField(used, 0, f, ones(f));
    setField(used, 0, Ste.S2VMID, ones(Ste.S2VMID));
    if ((ste[w + 2] & 3) === S1Dss.BYPASS) setField(used, 0, Ste.SHCFG, ones(Ste.SHCFG));
  }
  if (cfg & 2) {
    for (const f of [Ste.S2FWB, Ste.EATS, Ste.SHCFG, Ste.MEV]) setField(used, 0, f, ones(f));
    for (const f of [Ste.S2VMID, Ste.S2AA64, Ste.S2ENDI, Ste.S2PTW, Ste.S2S, Ste.S2R]) setField(used, 0, f, ones(f));
    used[5] = (used[5] | 0x7ffff) >>> 0; // VTCR
    setField(used, 0, Ste.S2TTB, ones(Ste.S2TTB));
  }
  if (cfg === SteConfig.BYPASS) setField(used, 0, Ste.SHCFG, ones(Ste.SHCFG));
}

/**
 * STE bits that may change while the STE stays live (recent kernels' `get_ste_update_safe`, used
 * by the §2.6 sequencing): MEV only changes how many fault records are merged (software must
 * cope with merged records anyway); EATS between 0b00 and 0b01 (TRANS) when neither entry uses
 * S1CHK nor S2S — ATS is already disabled at the device while its STE changes, and a transient
 * EATS = 0b01 with S2S = 1 would be an ILLEGAL STE. Ors the safe bits into `safe` (16 words).
 */
export function getSteUpdateSafe(cur: Uint32Array, w: number, target: Uint32Array, safe: Uint32Array): void {
  const EATS_S1CHK_BIT = 1 << 29; // dword 1 [29:28] = 0b10
  const EATS_TRANS_BIT = 1 << 28; // dword 1 [29:28] = 0b01
  const MEV_BIT = 1 << 19; // dword 1 bit 19
  const S2S_HI_BIT = 1 << (57 - 32); // dword 2 bit 57
  if (((cur[w + 2] | target[2]) & EATS_S1CHK_BIT) === 0 && ((cur[w + 5] | target[5]) & S2S_HI_BIT) === 0) {
    safe[2] = (safe[2] | EATS_TRANS_BIT) >>> 0;
  }
  safe[2] = (safe[2] | MEV_BIT) >>> 0;
}
