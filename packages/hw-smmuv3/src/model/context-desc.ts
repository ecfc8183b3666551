/**
 * Context Descriptor fetch, decode and validation (smmuv3.md §3.1, §3.2, §3.4, §8 step 3).
 *
 * Lookup of the CD for SubstreamID `ssid` below a stage-1 STE: linear (S1CDMax = 0 or S1Fmt = 0:
 * `S1ContextPtr + ssid·64`) or 2-level (S1Fmt 1: 4 KiB leaves of 64 CDs, S1Fmt 2: 64 KiB leaves of
 * 1024 CDs; L1CD at `S1ContextPtr + (ssid >> 6|10)·8`, V = 0 → C_BAD_SUBSTREAMID, CD at
 * `L2Ptr + (ssid & 63|1023)·64`). With stage 2 enabled every one of these addresses is an IPA,
 * translated by stage 2 through the {@link CdIpaTranslator} given (its faults are reported by it,
 * CLASS = CD). A read outside PhysMem is F_CD_FETCH with FetchAddr = the PA.
 *
 * ILLEGAL CD (→ C_BAD_CD; IHI 0070 §5.4, pseudocode `CdIllegal` in §5.4.2): V = 0 (FaultReason
 * BLOCKED: not configured); STE.S1STALLD = 1 with S = 1; A = 0 with TERM_MODEL = 1; S = 1 with
 * STALL_MODEL = 0b01, S = 0 with STALL_MODEL = 0b10; ENDI = 1 (LE-only; IGNORED when both EPDx
 * are 1); AA64 = 0; HA = 1 with HTTU = 0; HD = 1 with HTTU < 2; ASID ≥ 2^8 without ASID16 (unless
 * the StreamWorld is EL2, where ASID is IGNORED); for each region whose walks are enabled
 * (EPDx = 0): TGx reserved, and the walker's stage-1 rules (walk/config-check.ts
 * `checkS1Config`): granule not implemented, TxSZ outside [16 (12 with VAX and 64 KiB), 39
 * (47/48 with STT)], TTBx ≥ 2^min(IPS, OAS) (2^48 with 4/16 KiB granules).
 *
 * Not ILLEGAL: {HD, HA} = 0b10 behaves as 0b00; TTBx is aligned down to its start table (§5.4
 * TTB0). Model choices: IPS = 0b111 behaves as the OAS; HAD0/HAD1 without IDR3.HAD are ignored
 * (RES0); attribute fields (IR/OR/SH, MAIR, AMAIR, PARTID...) are decoded and kept but do not
 * change translation results (§12 #15).
 */
import type { PhysMem } from '@iommulab/runtime';
import { CD_BYTES, Cd, L1CD_BYTES, S1Fmt, getAddr, getField } from '../codec/index.js';
import type { SmmuFeatures } from './features.js';
import { effectivePs, tg0Shift } from './ste-decode.js';
import { alignTtb, checkS1Config, s1StartTableBytes } from './walk/config-check.js';
import { St } from './status.js';
import type { CdConfig, StreamConfig } from './stream-config.js';

const TWO_32 = 4294967296;

/** Translates CD-table IPAs through stage 2 (nested configurations). */
export interface CdIpaTranslator {
  /**
   * Translates `ipa` for a read of a CD-table structure.
   * @returns the PA, or -1 after the stage-2 fault was handled (recorded per policy);
   *   the status to report is then in {@link CdIpaTranslator.status}
   */
  cdIpaToPa(ipa: number): number;
  /** Status of the last failed {@link CdIpaTranslator.cdIpaToPa}. */
  status: number;
}

/** Granule shift of a CD.TG1 encoding (1 16K, 2 4K, 3 64K), 0 for reserved. */
export function tg1Shift(tg: number): 0 | 12 | 14 | 16 {
  return tg === 1 ? 14 : tg === 2 ? 12 : tg === 3 ? 16 : 0;
}

/**
 * Decodes and validates the CD at word `w` of `u32` into `out`.
 * @param ste - the STE that located the CD (S1STALLD and StreamWorld affect its legality, §5.4.1);
 *   null: a stage-1 NS-EL1 stream with S1STALLD = 0
 * @returns St.OK, St.CD_INVALID (V = 0) or St.CD_ILLEGAL
 */
export function decodeCd(u32: Uint32Array, w: number, f: SmmuFeatures, out: CdConfig, ste: StreamConfig | null = null): number {
  if (getField(u32, w, Cd.V) === 0) return St.CD_INVALID;
  const a = getField(u32, w, Cd.A) !== 0;
  const s = getField(u32, w, Cd.S) !== 0;
  let ha = getField(u32, w, Cd.HA) !== 0;
  let hd = getField(u32, w, Cd.HD) !== 0;
  const asid = getField(u32, w, Cd.ASID);
  const epd0 = getField(u32, w, Cd.EPD0) !== 0;
  const epd1 = getField(u32, w, Cd.EPD1) !== 0;
  if (s && ste !== null && ste.s1stalld) return St.CD_ILLEGAL;
  if (!a && f.termModel === 1) return St.CD_ILLEGAL;
  if (s ? f.stall === 'none' : f.stall === 'forced') return St.CD_ILLEGAL;
  if (!(epd0 && epd1) && getField(u32, w, Cd.ENDI) !== 0) return St.CD_ILLEGAL; // IDR0.TTENDIAN = LE only
  if (getField(u32, w, Cd.AA64) === 0) return St.CD_ILLEGAL; // IDR0.TTF = AArch64 only
  if (((ha || hd) && f.httu === 0) || (hd && f.httu < 2)) return St.CD_ILLEGAL;
  if (hd && !ha) hd = ha = false; // {HD, HA} = 0b10: reserved, behaves as 0b00
  if (asid > 0xff && !f.asid16 && !(ste !== null && ste.el2)) return St.CD_ILLEGAL;
  const c = out.s1;
  c.oaBits = effectivePs(f, getField(u32, w, Cd.IPS));
  c.epd0 = epd0;
  c.epd1 = epd1;
  c.t0sz = getField(u32, w, Cd.T0SZ);
  c.t1sz = getField(u32, w, Cd.T1SZ);
  c.ttb0 = getAddr(u32, w, Cd.TTB0);
  c.ttb1 = getAddr(u32, w, Cd.TTB1);
  const g0 = tg0Shift(getField(u32, w, Cd.TG0));
  const g1 = tg1Shift(getField(u32, w, Cd.TG1));
  if ((!c.epd0 && g0 === 0) || (!c.epd1 && g1 === 0)) return St.CD_ILLEGAL; // reserved TGx
  c.g0 = g0 === 0 ? 12 : g0;
  c.g1 = g1 === 0 ? 12 : g1;
  c.tbi0 = getField(u32, w, Cd.TBI0) !== 0;
  c.tbi1 = getField(u32, w, Cd.TBI1) !== 0;
  c.ha = ha;
  c.hd = hd;
  c.affd = getField(u32, w, Cd.AFFD) !== 0;
  c.had0 = f.had && getField(u32, w, Cd.HAD0) !== 0;
  c.had1 = f.had && getField(u32, w, Cd.HAD1) !== 0;
  c.wxn = getField(u32, w, Cd.WXN) !== 0;
  c.uwxn = getField(u32, w, Cd.UWXN) !== 0;
  c.pan = getField(u32, w, Cd.PAN) !== 0;
  c.asid = asid;
  c.r = getField(u32, w, Cd.R) !== 0;
  if (!checkS1Config(c, f)) return St.CD_ILLEGAL;
  // §5.4 TTB0/TTB1: the SMMU treats the bits below the start table's alignment as zero.
  if (!c.epd0) c.ttb0 = alignTtb(c.ttb0, s1StartTableBytes(c.t0sz, c.g0), c.oaBits);
  if (!c.epd1) c.ttb1 = alignTtb(c.ttb1, s1StartTableBytes(c.t1sz, c.g1), c.oaBits);
  out.asid = asid;
  out.r = c.r;
  out.s = s;
  out.a = a;
  out.aset = getField(u32, w, Cd.ASET) !== 0;
  out.d0lo = u32[w];
  out.d0hi = u32[w + 1];
  out.mair0 = u32[w + 6];
  out.mair1 = u32[w + 7];
  return St.OK;
}

/** CD-table walker: finds, reads and decodes the CD of a SubstreamID (§3.2). */
export class CdFetcher {
  /** Output: PA of the structure whose read aborted (F_CD_FETCH). */
  fetchAddr = 0;
  /** CD and L1CD reads (stats). */
  fetches = 0;

  constructor(
    private readonly mem: PhysMem,
    private readonly f: SmmuFeatures,
  ) {}

  /** Reads the CD-table structure at `addr` (an IPA when `s2` is given) of `len` bytes: its PA, or -1 with `st` in `this.lastStatus`. */
  private toPa(addr: number, len: number, s2: CdIpaTranslator | null): number {
    let pa = addr;
    if (s2 !== null) {
      pa = s2.cdIpaToPa(addr);
      if (pa < 0) {
        this.lastStatus = s2.status;
        return -1;
      }
    }
    this.fetches++;
    if (!(pa + len <= this.mem.size)) {
      this.fetchAddr = pa;
      this.lastStatus = St.CD_FETCH;
      return -1;
    }
    return pa;
  }

  /** Status of the last failed {@link CdFetcher.toPa}. */
  private lastStatus = 0;

  /**
   * Fetches and decodes the CD of `ssid` (0 for the CD used without a SubstreamID) below `ste`
   * into `out`. The caller has done the SubstreamID range checks (§3.2 steps 1–3).
   * @param s2 - stage-2 translator for CD-table IPAs when `ste.s2`, else null
   * @returns St.OK or a CD status (C_BAD_SUBSTREAMID for an invalid L1CD, F_CD_FETCH, C_BAD_CD,
   *   or the stage-2 fault status reported by `s2`)
   */
  fetch(ste: StreamConfig, ssid: number, s2: CdIpaTranslator | null, out: CdConfig): number {
    let addr: number;
    const u32 = this.mem.u32;
    if (ste.s1CdMax === 0 || ste.s1Fmt === S1Fmt.LINEAR) {
      addr = ste.s1ContextPtr + ssid * CD_BYTES;
    } else {
      const leafBits = ste.s1Fmt === S1Fmt.L2_4K ? 6 : 10;
      const l1 = this.toPa(ste.s1ContextPtr + Math.floor(ssid / 2 ** leafBits) * L1CD_BYTES, L1CD_BYTES, s2);
      if (l1 < 0) return this.lastStatus;
      const lo = u32[l1 >>> 2];
      const hi = u32[(l1 >>> 2) + 1];
      if ((lo & 1) === 0) return St.BAD_SUBSTREAMID;
      const l2ptr = ((lo & 0xfffff000) >>> 0) + (hi & 0xfffff) * TWO_32;
      addr = l2ptr + (ssid % 2 ** leafBits) * CD_BYTES;
    }
    const pa = this.toPa(addr, CD_BYTES, s2);
    if (pa < 0) return this.lastStatus;
    out.ssid = ssid;
    return decodeCd(u32, pa >>> 2, this.f, out, ste);
  }
}
