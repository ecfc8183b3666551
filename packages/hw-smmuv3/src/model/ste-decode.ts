/**
 * STE decode and validation (smmuv3.md §2.1, §2.2, §2.5, decision §12 #1): turns the 64-byte STE
 * at a PhysMem word index into a {@link StreamConfig}, or reports why it is unusable.
 *
 * ILLEGAL (→ C_BAD_STE, transaction aborted) when:
 * - V = 0 (reported with FaultReason BLOCKED: the stream is not configured);
 * - Config = 0b001..0b011 (reserved, §12 #1); a stage enabled that IDR0 does not advertise;
 *   nested (0b111) without nesting support;
 * - stage 1 enabled: S1CDMax > IDR1.SSIDSIZE; with S1CDMax > 0: S1Fmt = 3, S1Fmt = 1/2 without
 *   CD2L, S1DSS = 3; S1STALLD = 1 with STALL_MODEL = 2 (stall forced);
 * - stage 2 enabled: S2AA64 = 0 (AArch64-only TTF), S2ENDI = 1 (LE-only), S2S = 1 with
 *   STALL_MODEL = 1, S2HA = 1 with HTTU = 0, S2HD = 1 with HTTU < 2 or without S2HA, and the
 *   walker's stage-2 rules (walk/config-check.ts `checkS2Config`, IAS = OAS): S2TG reserved or a
 *   granule IDR5 lacks, S2SL0 = 3, S2T0SZ outside [max(16, 64 − IAS) (12 with 64 KiB), 39 (47/48
 *   with STT)], an S2SL0/S2T0SZ combination whose start level resolves no bit or needs more than
 *   16 concatenated tables (§7.2), a start level the OAS does not allow, S2TTB ≥ 2^min(S2PS, OAS)
 *   or not aligned to the (concatenated) start table;
 * - EATS ≠ 0 without IDR0.ATS, EATS = 0b10 (split-stage; IDR0.NS1ATS = 1) or 0b11 (reserved);
 * - STRW = 0b01 / 0b11 (not a Non-secure world), STRW = EL2 without IDR0.HYP or with stage 2.
 * EATS and STRW are checked for every Config except abort.
 *
 * Model choices: S2PS = 0b111 (reserved) behaves as the implemented OAS; with 8-bit VMIDs the
 * upper byte of S2VMID is ignored (RES0); S2FWB without IDR3.FWB is ignored.
 */
import { OAS_BITS, Ste, SteConfig, Strw, getAddr, getField } from '../codec/index.js';
import type { SmmuFeatures } from './features.js';
import { St } from './status.js';
import { FastMode, NO_ASID, type StreamConfig } from './stream-config.js';
import { TLB_VMID_EL2 } from './tlb.js';
import { checkS2Config } from './walk/config-check.js';

/** Granule shift of an S2TG / CD.TG0 encoding (0 4K, 1 64K, 2 16K), 0 for reserved. */
export function tg0Shift(tg: number): 0 | 12 | 14 | 16 {
  return tg === 0 ? 12 : tg === 1 ? 16 : tg === 2 ? 14 : 0;
}

/** Effective address bits of an IPS / S2PS encoding: min(encoded, OAS); reserved (7) = OAS. */
export function effectivePs(f: SmmuFeatures, ps: number): number {
  const bits = ps < OAS_BITS.length ? OAS_BITS[ps] : f.oas;
  return bits < f.oas ? bits : f.oas;
}

/**
 * Decodes and validates the STE at word `w` of `u32` for StreamID `sid` into `out`.
 * @returns St.OK, St.STE_INVALID (V = 0) or St.STE_ILLEGAL
 */
export function decodeSte(u32: Uint32Array, w: number, sid: number, f: SmmuFeatures, out: StreamConfig): number {
  if (getField(u32, w, Ste.V) === 0) return St.STE_INVALID;
  const config = getField(u32, w, Ste.CONFIG);
  if (config !== SteConfig.ABORT && config < SteConfig.BYPASS) return St.STE_ILLEGAL; // §12 #1
  const s1 = config >= SteConfig.BYPASS && (config & 1) !== 0;
  const s2 = config >= SteConfig.BYPASS && (config & 2) !== 0;
  if ((s1 && !f.stage1) || (s2 && !f.stage2) || (s1 && s2 && !f.nesting)) return St.STE_ILLEGAL;

  out.sid = sid;
  out.config = config;
  out.s1 = s1;
  out.s2 = s2;
  out.cds.clear();
  out.fastCd = null;
  out.fastAsid = 0;
  out.s1Fmt = getField(u32, w, Ste.S1FMT);
  out.s1ContextPtr = getAddr(u32, w, Ste.S1_CONTEXT_PTR);
  out.s1CdMax = getField(u32, w, Ste.S1_CD_MAX);
  out.s1dss = getField(u32, w, Ste.S1DSS);
  out.s1stalld = getField(u32, w, Ste.S1STALLD) !== 0;
  out.eats = getField(u32, w, Ste.EATS);
  const strw = getField(u32, w, Ste.STRW);
  out.el2 = strw === Strw.EL2;
  out.mev = getField(u32, w, Ste.MEV) !== 0;
  out.ppar = getField(u32, w, Ste.PPAR) !== 0;
  out.shcfg = getField(u32, w, Ste.SHCFG);
  const vmid = getField(u32, w, Ste.S2VMID) & (f.vmid16 ? 0xffff : 0xff);
  out.vmid = out.el2 ? TLB_VMID_EL2 : vmid;
  out.s2r = getField(u32, w, Ste.S2R) !== 0;
  out.s2s = getField(u32, w, Ste.S2S) !== 0;

  if (config === SteConfig.ABORT) {
    out.fastMode = FastMode.ABORT;
    return St.OK;
  }
  // EATS / STRW (every non-abort Config)
  if (out.eats !== 0 && (!f.ats || out.eats !== 1)) return St.STE_ILLEGAL;
  if (strw === 1 || strw === 3) return St.STE_ILLEGAL;
  if (out.el2 && (!f.hyp || s2)) return St.STE_ILLEGAL;

  if (s1) {
    if (out.s1CdMax > f.ssidBits) return St.STE_ILLEGAL;
    if (out.s1CdMax > 0) {
      if (out.s1Fmt === 3 || (out.s1Fmt !== 0 && !f.cd2l)) return St.STE_ILLEGAL;
      if (out.s1dss === 3) return St.STE_ILLEGAL;
    }
    if (out.s1stalld && f.stall === 'forced') return St.STE_ILLEGAL;
  }
  if (s2) {
    const c = out.s2ctx;
    if (getField(u32, w, Ste.S2AA64) === 0 || getField(u32, w, Ste.S2ENDI) !== 0) return St.STE_ILLEGAL;
    const g = tg0Shift(getField(u32, w, Ste.S2TG));
    if (g === 0) return St.STE_ILLEGAL;
    c.g = g;
    c.t0sz = getField(u32, w, Ste.S2T0SZ);
    c.sl0 = getField(u32, w, Ste.S2SL0);
    c.oaBits = effectivePs(f, getField(u32, w, Ste.S2PS));
    c.ttb = getAddr(u32, w, Ste.S2TTB);
    c.affd = getField(u32, w, Ste.S2AFFD) !== 0;
    c.ha = getField(u32, w, Ste.S2HA) !== 0;
    c.hd = getField(u32, w, Ste.S2HD) !== 0;
    c.ptw = getField(u32, w, Ste.S2PTW) !== 0;
    c.vmid = vmid;
    c.r = out.s2r;
    c.s = out.s2s;
    if (!checkS2Config(c, f)) return St.STE_ILLEGAL;
    if (c.s && f.stall === 'none') return St.STE_ILLEGAL;
    if ((c.ha && f.httu === 0) || (c.hd && (f.httu < 2 || !c.ha))) return St.STE_ILLEGAL;
  }

  // Fast path for transactions without a SubstreamID.
  if (!s1 || (out.s1CdMax > 0 && out.s1dss === 1)) {
    // stage 1 bypassed: full bypass, or stage-2 only
    out.fastMode = s2 ? FastMode.TLB : FastMode.BYPASS;
    out.fastAsid = NO_ASID;
  } else {
    out.fastMode = FastMode.SLOW; // until the CD is cached
  }
  return St.OK;
}
