/**
 * STE decode and validation (IHI 0070 §5.2, pseudocode `SteIllegal` in §5.2.2): turns the 64-byte
 * STE at a PhysMem word index into a {@link StreamConfig}, or reports why it is unusable.
 *
 * C_BAD_STE when V = 0 (FaultReason BLOCKED: the stream is not configured) or ILLEGAL:
 * - a stage enabled that IDR0 does not advertise; nested (0b111) without nesting support;
 * - EATS (only when IDR0.ATS = 1 and Config ≠ 0b100; otherwise IGNORED, effective 0b00):
 *   0b10 (split-stage; IDR0.NS1ATS = 1), 0b01 with stage 2 enabled and S2S = 1. 0b11 behaves as
 *   0b00 (IDR3.DPT = 0);
 * - STRW = 0b01 / 0b11 when STRW is used (stage 1 only, IDR0.HYP = 1); it is IGNORED with stage 2
 *   enabled (StreamWorld NS-EL1) or RES0 without HYP;
 * - S2VMID[15:8] ≠ 0 with 8-bit VMIDs when S2VMID is not IGNORED;
 * - stage 1 enabled: S1STALLD = 1 with STALL_MODEL ≠ 0b00; S1CDMax > IDR1.SSIDSIZE (SSIDSIZE ≠ 0);
 *   S1Fmt = 1/2 without CD2L (S1CDMax > 0); S1ContextPtr ≥ 2^OAS (IAS = OAS);
 * - stage 2 enabled: S2S = 1 with STALL_MODEL = 0b01, S2S = 0 with STALL_MODEL = 0b10; S2AA64 = 0
 *   (AArch64-only TTF), S2ENDI = 1 (LE-only); S2HA / S2HD with HTTU = 0, S2HD with HTTU = 1; and
 *   the walker's stage-2 rules (walk/config-check.ts `checkS2Config`, IAS = OAS): S2TG reserved or
 *   not implemented, S2SL0 = 3, S2T0SZ out of range, S2SL0 inconsistent with S2T0SZ / S2TG,
 *   S2TTB outside the effective S2PS (or 48 bits with 4/16 KiB granules).
 * Reserved encodings that are not ILLEGAL: Config 0b001–0b011 behave as 0b000 (abort, no event);
 * S1Fmt 0b11 as 0b00; S1DSS 0b11 as 0b00 (terminate); {S2HA, S2HD} = 0b01 as 0b00; S2PS above
 * the OAS as the OAS. S2TTB is aligned down to its start table (§5.2 S2TTB). S2FWB without
 * IDR3.FWB is ignored.
 */
import { OAS_BITS, Ste, SteConfig, Strw, getAddr, getField } from '../codec/index.js';
import type { SmmuFeatures } from './features.js';
import { St } from './status.js';
import { FastMode, NO_ASID, type StreamConfig } from './stream-config.js';
import { TLB_VMID_EL2 } from './tlb.js';
import { alignTtb, checkS2Config, s2StartTableBytes } from './walk/config-check.js';

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
  let config = getField(u32, w, Ste.CONFIG);
  if (config < SteConfig.BYPASS) config = SteConfig.ABORT; // §5.2 Config: 0b0xx reserved, behaves as 0b000
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
  out.eats = 0;
  out.el2 = false;
  out.mev = getField(u32, w, Ste.MEV) !== 0;
  out.ppar = getField(u32, w, Ste.PPAR) !== 0;
  out.shcfg = getField(u32, w, Ste.SHCFG);
  const rawVmid = getField(u32, w, Ste.S2VMID);
  const vmid = rawVmid & (f.vmid16 ? 0xffff : 0xff);
  out.vmid = vmid;
  out.s2r = getField(u32, w, Ste.S2R) !== 0;
  out.s2s = getField(u32, w, Ste.S2S) !== 0;

  if (config === SteConfig.ABORT) {
    out.fastMode = FastMode.ABORT;
    return St.OK;
  }
  // EATS (§5.2 EATS, §5.2.2): IGNORED without ATS and for bypass (effective 0b00).
  if (f.ats && config !== SteConfig.BYPASS) {
    const eats = getField(u32, w, Ste.EATS);
    if (eats === 2) return St.STE_ILLEGAL; // split-stage: IDR0.NS1ATS = 1
    if (eats === 1 && s2 && out.s2s) return St.STE_ILLEGAL;
    out.eats = eats === 1 ? 1 : 0; // 0b11 without IDR3.DPT behaves as 0b00
  }
  // STRW (§5.2.2 IgnoreSTESTRW): used only for stage-1-only streams of an SMMU with HYP.
  const strw = getField(u32, w, Ste.STRW);
  const strwUsed = f.stage1 && f.hyp && !s2 && config !== SteConfig.BYPASS;
  if (strwUsed) {
    if ((strw & 1) !== 0) return St.STE_ILLEGAL;
    out.el2 = strw === Strw.EL2;
  }
  // S2VMID (§5.2.2 IgnoreSTES2VMID): 8-bit VMIDs with a non-zero upper byte are ILLEGAL unless ignored.
  const vmidIgnored = !f.stage2 || config === SteConfig.BYPASS || out.el2;
  if (!vmidIgnored && !f.vmid16 && rawVmid > 0xff) return St.STE_ILLEGAL;
  if (out.el2) out.vmid = TLB_VMID_EL2;

  if (s1) {
    if (out.s1stalld && f.stall !== 'stall') return St.STE_ILLEGAL;
    if (f.ssidBits === 0) out.s1CdMax = 0; // substreams unsupported: S1CDMax IGNORED
    if (out.s1CdMax > f.ssidBits) return St.STE_ILLEGAL;
    if (out.s1CdMax > 0 && (out.s1Fmt === 1 || out.s1Fmt === 2) && !f.cd2l) return St.STE_ILLEGAL;
    if (out.s1Fmt === 3) out.s1Fmt = 0; // reserved, behaves as 0b00
    if (out.s1dss === 3) out.s1dss = 0; // reserved, behaves as 0b00 (terminate)
    if (!(out.s1ContextPtr < 2 ** f.oas)) return St.STE_ILLEGAL; // STES1ContextPtrOutOfRange (IAS = OAS)
  }
  if (s2) {
    const c = out.s2ctx;
    if (out.s2s ? f.stall === 'none' : f.stall === 'forced') return St.STE_ILLEGAL;
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
    if (((c.ha || c.hd) && f.httu === 0) || (c.hd && f.httu < 2)) return St.STE_ILLEGAL;
    if (c.hd && !c.ha) c.hd = false; // {S2HA, S2HD} = 0b01: reserved, behaves as 0b00
    if (!checkS2Config(c, f)) return St.STE_ILLEGAL;
    c.ttb = alignTtb(c.ttb, s2StartTableBytes(c), c.oaBits);
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
