/**
 * Walk-configuration legality checks the pipeline applies when it decodes an STE (stage 2 →
 * C_BAD_STE, smmuv3.md §2.5) or a CD (stage 1 → C_BAD_CD, §3.4). They cover only the fields the
 * walker uses; the pipeline checks the rest (V, Config, AA64, ENDI, S/S2S vs stall support, A vs
 * TERM_MODEL, ASID/VMID width, reserved TG encodings — map those to granule 0 to have them
 * rejected here).
 *
 * Each `...Problem` function returns `null` for a legal configuration or a constant string naming
 * the first rule broken (no allocation); `check...` return the boolean.
 */
import { levelShift, POW2, s1StartLevel, s2StartLevel } from './geometry.js';
import type { S1Ctx, S2Ctx } from './walk-context.js';

/**
 * The SMMU capabilities the checks need. `SmmuFeatures` (features.ts) satisfies this interface,
 * so the pipeline can pass its features object directly.
 */
export interface WalkCaps {
  /** Supported granules (IDR5.GRAN4K / GRAN16K / GRAN64K). */
  readonly granules: { readonly '4k': boolean; readonly '16k': boolean; readonly '64k': boolean };
  /** IDR5.OAS in bits (also the physical-address range PAMax). */
  readonly oas: number;
  /** IDR5.VAX: 52-bit stage-1 VA with 64 KiB granules (T0SZ/T1SZ down to 12). */
  readonly vax: boolean;
  /** IDR3.STT: small translation tables (TxSZ up to 48, 47 for 64 KiB). */
  readonly stt: boolean;
  /** IDR0.HTTU: 0 none, 1 access flag, 2 access flag + dirty. */
  readonly httu: number;
}

function granuleSupported(g: number, caps: WalkCaps): boolean {
  if (g === 12) return caps.granules['4k'];
  if (g === 14) return caps.granules['16k'];
  if (g === 16) return caps.granules['64k'];
  return false;
}

function maxTsz(g: number, caps: WalkCaps): number {
  return caps.stt ? (g === 16 ? 47 : 48) : 39;
}

/**
 * TTB range check (IHI 0070 §5.2 S2TTB, §5.4 TTB0/TTB1): ILLEGAL outside the effective PS / IPS,
 * and outside a 48-bit range with a 4 KiB / 16 KiB granule (no DS / LPA2). Alignment is not a
 * legality rule: the SMMU treats the low bits as zero ({@link alignTtb}).
 */
function badAddr(ttb: number, oaBits: number, g: number): boolean {
  let bits = oaBits < 0 ? 0 : oaBits > 52 ? 52 : oaBits;
  if (g !== 16 && bits > 48) bits = 48;
  return !(ttb >= 0) || ttb >= POW2[bits];
}

/**
 * A TTB as the SMMU uses it (IHI 0070 §5.2 S2TTB, §5.4 TTBx: "bits [(x-1):0] are treated as if
 * all the bits are zero ... the SMMU effectively aligns the value"): aligned down to the start
 * table's size (`tableBytes`), at least 64 bytes when the output size is 52 bits.
 */
export function alignTtb(ttb: number, tableBytes: number, oaBits: number): number {
  const a = oaBits >= 52 && tableBytes < 64 ? 64 : tableBytes;
  return ttb - (ttb % a);
}

/** Size in bytes of a stage-2 start table (all concatenated tables) for a legal context. */
export function s2StartTableBytes(s2: S2Ctx): number {
  return POW2[64 - s2.t0sz - levelShift(s2.g, s2StartLevel(s2.g, s2.sl0)) + 3];
}

/** Size in bytes of a stage-1 start table for region size `tsz` and granule `g`. */
export function s1StartTableBytes(tsz: number, g: number): number {
  const ia = 64 - tsz;
  return POW2[ia - levelShift(g, s1StartLevel(ia, g)) + 3];
}

/**
 * Why a stage-2 context is ILLEGAL (C_BAD_STE), or null when it is legal. Rules, in order:
 * 1. granule: S2TG must decode to 4/16/64 KiB and be supported (IDR5.GRANxx);
 * 2. S2SL0 = 3 is reserved (no TTST / LPA2);
 * 3. S2T0SZ in [max(64 − IAS, 16) (12 for 64 KiB), 39] (47/48 with STT);
 * 4. start level consistent with the input size (Arm `S2InconsistentSL`): the start level must
 *    resolve at least one IPA bit and need at most 16 concatenated tables, i.e.
 *    `1 ≤ (64 − S2T0SZ) − shift(start) ≤ (g − 3) + 4`;
 * 5. start level allowed by the PA size (Arm `S2InvalidSL`): 4 KiB level 0 (SL0 = 2) needs
 *    OAS ≥ 44, 16 KiB level 1 (SL0 = 2) needs OAS ≥ 42, 64 KiB level 1 (SL0 = 2) needs OAS ≥ 44;
 * 6. S2TTB below 2^(effective S2PS) (2^48 with 4/16 KiB granules); its alignment is not checked
 *    (the SMMU aligns it down, IHI 0070 §5.2 S2TTB — the decoder applies {@link alignTtb}).
 * S2HA/S2HD beyond IDR0.HTTU are not rejected (the walker ignores them, as RES0).
 * @param ias - the SMMU's input address size (default: `caps.oas`; IAS = OAS for an AArch64-only SMMU)
 */
export function s2ConfigProblem(s2: S2Ctx, caps: WalkCaps, ias: number = caps.oas): string | null {
  const g = s2.g;
  if (!granuleSupported(g, caps)) return 'S2TG: granule reserved or not supported';
  if (!(s2.sl0 >= 0 && s2.sl0 <= 2)) return 'S2SL0: reserved value';
  const minT = Math.max(64 - ias, g === 16 ? 12 : 16);
  if (!(s2.t0sz >= minT && s2.t0sz <= maxTsz(g, caps))) return 'S2T0SZ: out of range';
  const start = s2StartLevel(g, s2.sl0);
  const bits = 64 - s2.t0sz - levelShift(g, start);
  if (bits < 1) return 'S2SL0/S2T0SZ: start level resolves no input bits';
  if (bits > g - 3 + 4) return 'S2SL0/S2T0SZ: more than 16 concatenated start tables';
  if (s2.sl0 === 2 && caps.oas < (g === 14 ? 42 : 44)) return 'S2SL0: start level not supported with this OAS';
  if (badAddr(s2.ttb, s2.oaBits, g)) return 'S2TTB: outside S2PS';
  return null;
}

/** Whether a stage-2 context is legal (see {@link s2ConfigProblem} for the rules). */
export function checkS2Config(s2: S2Ctx, caps: WalkCaps, ias: number = caps.oas): boolean {
  return s2ConfigProblem(s2, caps, ias) === null;
}

function regionProblem(ttb: number, tsz: number, g: number, oaBits: number, caps: WalkCaps): string | null {
  if (!granuleSupported(g, caps)) return 'TGx: granule reserved or not supported';
  const minT = caps.vax && g === 16 ? 12 : 16;
  if (!(tsz >= minT && tsz <= maxTsz(g, caps))) return 'TxSZ: out of range';
  if (badAddr(ttb, oaBits, g)) return 'TTBx: outside IPS';
  return null;
}

/**
 * Why a stage-1 context is ILLEGAL (C_BAD_CD), or null when it is legal. Rules, in order:
 * 1. CD.HA with IDR0.HTTU = 0; CD.HD with HTTU < 2 (HD without HA is not ILLEGAL: it behaves as
 *    HA = HD = 0, IHI 0070 §5.4 HA — the decoder clears it);
 * 2. for each region whose walks are enabled (EPDx = 0; a disabled region's fields are ignored):
 *    granule decoded and supported; TxSZ in [16 (12 for 64 KiB with VAX), 39] (47/48 with STT);
 *    TTBx below 2^(effective IPS) (2^48 with 4/16 KiB granules); not its alignment (§5.4 TTBx).
 * HAD0/HAD1 are not checked: the pipeline passes them as 0 when IDR3.HAD = 0.
 */
export function s1ConfigProblem(s1: S1Ctx, caps: WalkCaps): string | null {
  if (s1.ha && caps.httu < 1) return 'CD.HA: no HTTU support';
  if (s1.hd && caps.httu < 2) return 'CD.HD: needs HTTU = 2';
  if (!s1.epd0) {
    const p = regionProblem(s1.ttb0, s1.t0sz, s1.g0, s1.oaBits, caps);
    if (p !== null) return p;
  }
  if (!s1.epd1) {
    const p = regionProblem(s1.ttb1, s1.t1sz, s1.g1, s1.oaBits, caps);
    if (p !== null) return p;
  }
  return null;
}

/** Whether a stage-1 context is legal (see {@link s1ConfigProblem} for the rules). */
export function checkS1Config(s1: S1Ctx, caps: WalkCaps): boolean {
  return s1ConfigProblem(s1, caps) === null;
}
