/**
 * Walk contexts and the walk result (smmuv3.md §7, §8): the plain, reusable objects the pipeline
 * decodes from a CD (stage 1) and an STE (stage 2) and passes to the {@link Walker}, and the
 * result object the walker fills. Also the permission bits used by walk results and TLB entries.
 *
 * Everything here is allocated once (factories below) and reused for every walk: the walker
 * never allocates.
 */

/** Permission bit: data read (same value as runtime `ACCESS_READ`). */
export const PERM_R = 1;
/** Permission bit: data write (same value as runtime `ACCESS_WRITE`). */
export const PERM_W = 2;
/** Permission bit: instruction fetch (same value as runtime `ACCESS_EXEC`). */
export const PERM_X = 4;
/** Shift of the unprivileged permission bits in a packed permission value. */
export const PERM_UNPRIV_SHIFT = 3;
/** Every bit of a packed permission value: privileged R/W/X in [2:0], unprivileged in [5:3]. */
export const PERM_ALL = 0x3f;

/**
 * The permissions (PERM_R|PERM_W|PERM_X) a packed value grants to one privilege level.
 * @param permAll - packed permissions: privileged in bits [2:0], unprivileged in bits [5:3]
 * @param priv - privileged (PnU = 1) access
 */
export function permFor(permAll: number, priv: boolean): number {
  return priv ? permAll & 7 : (permAll >>> PERM_UNPRIV_SHIFT) & 7;
}

/**
 * Whether a packed permission value allows every ACCESS_* bit of `access` at the given privilege.
 * A TLB entry of a clean DBM page carries no write permission, so a write "misses" and is walked
 * (which performs the dirty update).
 */
export function permAllows(permAll: number, access: number, priv: boolean): boolean {
  const need = access & 7;
  return ((priv ? permAll : permAll >>> PERM_UNPRIV_SHIFT) & need) === need;
}

/** Translation granule as a shift: 12 (4 KiB), 14 (16 KiB), 16 (64 KiB). */
export type GranuleShift = 12 | 14 | 16;

/**
 * Stage-1 walk context, decoded from a CD (smmuv3.md §3.1) by the pipeline. TTB0/TTB1 are IPAs
 * when stage 2 is also enabled (nested, §8).
 */
export interface S1Ctx {
  /** TTB0 table base (CD dword1 [51:4]). */
  ttb0: number;
  /** TTB1 table base (CD dword2 [51:4]). */
  ttb1: number;
  /** CD.T0SZ: TTB0 region covers 2^(64 − T0SZ) bytes. */
  t0sz: number;
  /** CD.T1SZ. */
  t1sz: number;
  /** TTB0 granule shift (decoded from TG0: 0 → 12, 1 → 16, 2 → 14). */
  g0: GranuleShift;
  /** TTB1 granule shift (decoded from TG1: 1 → 14, 2 → 12, 3 → 16). */
  g1: GranuleShift;
  /** CD.EPD0: TTB0 walks disabled (translation fault). */
  epd0: boolean;
  /** CD.EPD1. */
  epd1: boolean;
  /** CD.TBI0: top byte ignored for TTB0-region VAs. */
  tbi0: boolean;
  /** CD.TBI1. */
  tbi1: boolean;
  /** Effective output (IPA/PA) size in bits: min(CD.IPS, IDR5.OAS). */
  oaBits: number;
  /** CD.HA: hardware access-flag update (effective only with HTTU ≥ 1). */
  ha: boolean;
  /** CD.HD: hardware dirty-state update (effective only with HTTU = 2). */
  hd: boolean;
  /** CD.AFFD: an AF = 0 leaf does not fault. */
  affd: boolean;
  /** CD.HAD0: APTable/XNTable/PXNTable ignored for TTB0 walks. */
  had0: boolean;
  /** CD.HAD1. */
  had1: boolean;
  /** CD.WXN: writable implies XN (both privileges). */
  wxn: boolean;
  /** CD.UWXN: unprivileged-writable implies privileged XN (always true of AArch64 tables, kept for completeness). */
  uwxn: boolean;
  /** CD.PAN: privileged data accesses to unprivileged-accessible pages fault. */
  pan: boolean;
  /** CD.ASID (not used by the walk; carried for the TLB tag). */
  asid: number;
  /** CD.R: record stage-1 faults (not used by the walk; for the pipeline). */
  r: boolean;
}

/** Stage-2 walk context, decoded from an STE (smmuv3.md §2.1) by the pipeline. */
export interface S2Ctx {
  /** S2TTB (a PA). */
  ttb: number;
  /** S2T0SZ: input (IPA) size = 64 − S2T0SZ. */
  t0sz: number;
  /** S2SL0 (start level, §7.2). */
  sl0: number;
  /** Granule shift (decoded from S2TG: 0 → 12, 1 → 16, 2 → 14). */
  g: GranuleShift;
  /** Effective output size in bits: min(S2PS, IDR5.OAS). */
  oaBits: number;
  /** S2AFFD. */
  affd: boolean;
  /** S2HA (effective only with HTTU ≥ 1). */
  ha: boolean;
  /** S2HD (effective only with HTTU = 2). */
  hd: boolean;
  /** S2PTW: stage-1 descriptor fetches that land in stage-2 Device memory take a stage-2 permission fault. */
  ptw: boolean;
  /** S2VMID (not used by the walk; TLB tag). */
  vmid: number;
  /** S2R (not used by the walk; for the pipeline). */
  r: boolean;
  /** S2S (not used by the walk; for the pipeline). */
  s: boolean;
}

/**
 * The outcome of one walk, filled by the {@link Walker} (preallocated with {@link newWalkResult}
 * and reused). On a fault, `fault`/`s2`/`cls`/`ipa`/`fetchAddr`/`ttrnw` hold what the event record
 * needs (IHI 0070 §7.3): stage-1 faults have `s2 = false`, `cls = IN` (`TT` for F_WALK_EABT), `ipa = 0`.
 */
export interface WalkResult {
  /** True when translated. */
  ok: boolean;
  /** Output PA of the input address (after both stages). */
  pa: number;
  /** log2 of the translated region the result applies to: the leaf size, min of both stages when nested. */
  sizeLog2: number;
  /** PERM_* granted to this access's privilege after both stages (W only once the page is dirty). */
  perm: number;
  /** Packed PERM_* for both privileges after both stages: privileged [2:0], unprivileged [5:3]. */
  permAll: number;
  /** EvtId of the fault, 0 when ok. */
  fault: number;
  /** The walk's input address (VA for stage 1 / nested, IPA for stage 2 only); set by the Walker. */
  inAddr: number;
  /** The fault was taken at stage 2 (event S2 bit). */
  s2: boolean;
  /** EvtClass (CD 0 / TT 1 / IN 2); stage-1 faults: IN, or TT for F_WALK_EABT (IHI 0070 §7.3.12/13). */
  cls: number;
  /** Stage-2 faults: the IPA being translated (descriptor IPA for CLASS TT, output IPA for IN); 0 otherwise. */
  ipa: number;
  /** F_WALK_EABT: PA of the descriptor whose fetch aborted; 0 otherwise. */
  fetchAddr: number;
  /** Stage-2 CLASS=TT faults: 1 = descriptor read, 0 = hardware update write. False otherwise. */
  ttrnw: boolean;
  /** Descriptor fetches made by this walk (both stages). */
  walkSteps: number;
  /** The stage-1 leaf had nG = 0 (a global entry); false for stage-2-only walks. */
  global: boolean;
  /** Level of the stage-1 leaf (the stage-2 leaf for stage-2-only walks); -1 if none. */
  level: number;
  /** The intermediate address: stage-1 output IPA (nested), the input IPA (stage-2 only), the PA (stage-1 only). */
  ipaOut: number;
  /** IPA base of the stage-2 leaf that translated the output; -1 when stage 2 was not involved. */
  s2Base: number;
  /** log2 size of that stage-2 leaf; 0 when stage 2 was not involved. */
  s2SizeLog2: number;
  /** Descriptor updates (AF / dirty) written by this walk. */
  httuWrites: number;
}

/** A new stage-1 context: everything 0/false, 4 KiB granules, EPD0 = EPD1 = true, then `init`. */
export function newS1Ctx(init?: Partial<S1Ctx>): S1Ctx {
  const c: S1Ctx = {
    ttb0: 0,
    ttb1: 0,
    t0sz: 16,
    t1sz: 16,
    g0: 12,
    g1: 12,
    epd0: true,
    epd1: true,
    tbi0: false,
    tbi1: false,
    oaBits: 48,
    ha: false,
    hd: false,
    affd: false,
    had0: false,
    had1: false,
    wxn: false,
    uwxn: false,
    pan: false,
    asid: 0,
    r: true,
  };
  if (init) Object.assign(c, init);
  return c;
}

/** A new stage-2 context: 4 KiB granule, T0SZ 16, SL0 2 (level 0), 48-bit output, then `init`. */
export function newS2Ctx(init?: Partial<S2Ctx>): S2Ctx {
  const c: S2Ctx = {
    ttb: 0,
    t0sz: 16,
    sl0: 2,
    g: 12,
    oaBits: 48,
    affd: false,
    ha: false,
    hd: false,
    ptw: false,
    vmid: 0,
    r: true,
    s: false,
  };
  if (init) Object.assign(c, init);
  return c;
}

/** A new, cleared walk result (reuse it for every walk). */
export function newWalkResult(): WalkResult {
  return {
    ok: false,
    pa: 0,
    sizeLog2: 0,
    perm: 0,
    permAll: 0,
    fault: 0,
    inAddr: 0,
    s2: false,
    cls: 0,
    ipa: 0,
    fetchAddr: 0,
    ttrnw: false,
    walkSteps: 0,
    global: false,
    level: -1,
    ipaOut: 0,
    s2Base: -1,
    s2SizeLog2: 0,
    httuWrites: 0,
  };
}

/** Clears `out` to the "no result yet" state (every walk starts with it). */
export function clearWalkResult(out: WalkResult): void {
  out.ok = false;
  out.pa = 0;
  out.sizeLog2 = 0;
  out.perm = 0;
  out.permAll = 0;
  out.fault = 0;
  out.s2 = false;
  out.cls = 0;
  out.ipa = 0;
  out.fetchAddr = 0;
  out.ttrnw = false;
  out.walkSteps = 0;
  out.global = false;
  out.level = -1;
  out.ipaOut = 0;
  out.s2Base = -1;
  out.s2SizeLog2 = 0;
  out.httuWrites = 0;
}
