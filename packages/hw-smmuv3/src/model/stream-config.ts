/**
 * Decoded configuration objects the pipeline caches (smmuv3.md §2, §3, §4.7): one
 * {@link StreamConfig} per cached STE, one {@link CdConfig} per cached CD. Both carry the walk
 * contexts (S1Ctx / S2Ctx) handed to the walker, so a cached translation context costs no decode.
 */
import { TLB_NO_ASID } from './tlb.js';
import { newS1Ctx, newS2Ctx, type S1Ctx, type S2Ctx } from './walk/walk-context.js';

/** Fast-path mode of a stream for transactions without a SubstreamID. */
export const FastMode = {
  /** Take the slow path (CD not cached yet, F_STREAM_DISABLED, ...). */
  SLOW: 0,
  /** STE.Config = abort: terminate, no event. */
  ABORT: 1,
  /** Both stages bypassed: PA = IOVA. */
  BYPASS: 2,
  /** TLB lookup with {@link StreamConfig.fastAsid} and {@link StreamConfig.vmid}. */
  TLB: 3,
} as const;

/** TLB ASID tag of stage-2-only translations (no ASID). */
export const NO_ASID = TLB_NO_ASID;

/** A decoded, legal Context Descriptor (§3.1). */
export class CdConfig {
  /** SubstreamID this CD was fetched for (0 for the CD used without a SubstreamID). */
  ssid = 0;
  /** Stage-1 walk context (ASID, TTBx, TxSZ, granules, HA/HD, R...). */
  readonly s1: S1Ctx = newS1Ctx();
  /** CD.ASID (TLB tag). */
  asid = 0;
  /** CD.R: record stage-1 faults. */
  r = false;
  /** CD.S: stall stage-1 faults. */
  s = false;
  /** CD.A: abort (vs RAZ/WI) terminated transactions. */
  a = false;
  /** CD.ASET. */
  aset = false;
  /** Raw dword 0 low/high words (attributes kept, §12 #15). */
  d0lo = 0;
  d0hi = 0;
  /** MAIR (dword 3). */
  mair0 = 0;
  mair1 = 0;
}

/** A decoded, legal Stream Table Entry (§2.1) and the CDs cached below it. */
export class StreamConfig {
  /** StreamID. */
  sid = 0;
  /** STE.Config (0 abort, 4 bypass, 5 S1, 6 S2, 7 nested). */
  config = 0;
  /** Stage 1 enabled (Config bit 0). */
  s1 = false;
  /** Stage 2 enabled (Config bit 1). */
  s2 = false;
  /** STE.S1Fmt. */
  s1Fmt = 0;
  /** STE.S1ContextPtr (an IPA when stage 2 is enabled). */
  s1ContextPtr = 0;
  /** STE.S1CDMax. */
  s1CdMax = 0;
  /** STE.S1DSS. */
  s1dss = 0;
  /** STE.S1STALLD. */
  s1stalld = false;
  /** STE.EATS. */
  eats = 0;
  /** STE.STRW = EL2: entries tagged in the EL2 world. */
  el2 = false;
  /** STE.MEV, PPAR, SHCFG (kept, §12 #15). */
  mev = false;
  ppar = false;
  shcfg = 0;
  /** TLB VMID tag (STE.S2VMID, also for stage-1-only STEs; TLB_VMID_EL2 in the EL2 world). */
  vmid = 0;
  /** STE.S2R / S2S. */
  s2r = false;
  s2s = false;
  /** Stage-2 walk context (valid when {@link StreamConfig.s2}). */
  readonly s2ctx: S2Ctx = newS2Ctx();
  /** Cached CDs by SubstreamID (the CD used without a SubstreamID is under 0). */
  readonly cds = new Map<number, CdConfig>();
  /** Fast-path mode for transactions without a SubstreamID ({@link FastMode}). */
  fastMode: number = FastMode.SLOW;
  /** ASID tag for {@link FastMode.TLB}. */
  fastAsid = 0;
  /** The CD used for transactions without a SubstreamID, when cached. */
  fastCd: CdConfig | null = null;
}
