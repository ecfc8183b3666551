/**
 * The SMMU's configuration ("which SMMU is this"): the feature set the model implements and
 * advertises through the ID registers (smmuv3.md §1.2). Built once per instance from the
 * backend options by {@link resolveFeatures}; the ID register values come from
 * `idrRegisters()` in idr.ts.
 *
 * Defaults describe a modern, fully featured SMMUv3.2: stage 1 + stage 2 + nesting, 2-level
 * stream tables, 2-level CD tables, 16-bit StreamIDs, 20-bit SubstreamIDs, ATS, PRI, stall model
 * 0 (stall and terminate), range invalidation, HTTU (AF + dirty), all three granules, 48-bit OAS,
 * 16-bit ASIDs and VMIDs, HYP, MSI, SEV, coherent, the largest queues (2^19 entries), TERM_MODEL 0,
 * S2FWB, HAD, no STT.
 *
 * Options are configuration, not guest input: a bad value throws a TypeError naming the option
 * and what is accepted.
 */
import { OAS_BITS } from '../codec/index.js';

/** Stall model (IDR0.STALL_MODEL): 'stall' = 0 stall and terminate, 'none' = 1 terminate only, 'forced' = 2 stall forced. */
export type StallModelName = 'none' | 'stall' | 'forced';
/** TLB replacement policy (used by the TLB, src/model/tlb.ts). */
export type TlbPolicy = 'lru' | 'fifo' | 'random';
/** HTTU level (IDR0.HTTU): 0 none, 1 access flag, 2 access flag + dirty state. */
export type HttuLevel = 0 | 1 | 2;
/** PRG response sent automatically for a discarded PRI request with Last = 1 (smmuv3.md §6.3, §12 #5). */
export type PriAutoResponse = 'success' | 'deny';

/** Supported translation granules (IDR5.GRAN4K / GRAN16K / GRAN64K). */
export interface SmmuGranules {
  readonly '4k': boolean;
  readonly '16k': boolean;
  readonly '64k': boolean;
}

/** The feature set of one SMMU instance (every field has a default; see {@link DEFAULT_FEATURES}). */
export interface SmmuFeatures {
  /** Stage-1 translation (IDR0.S1P). */
  readonly stage1: boolean;
  /** Stage-2 translation (IDR0.S2P). */
  readonly stage2: boolean;
  /** STE.Config = 0b111 (nested) accepted; requires both stages (no IDR bit of its own: S1P && S2P). */
  readonly nesting: boolean;
  /** 2-level stream tables (IDR0.ST_LEVEL = 1). */
  readonly st2lvl: boolean;
  /** 2-level CD tables (IDR0.CD2L). */
  readonly cd2l: boolean;
  /** StreamID bits (IDR1.SIDSIZE), 0..32. */
  readonly sidBits: number;
  /** SubstreamID bits (IDR1.SSIDSIZE), 0..20. */
  readonly ssidBits: number;
  /** PCIe ATS (IDR0.ATS). */
  readonly ats: boolean;
  /** PCIe PRI and the PRI queue (IDR0.PRI). */
  readonly pri: boolean;
  /** Stall model (IDR0.STALL_MODEL). */
  readonly stall: StallModelName;
  /** Range invalidation (IDR3.RIL). */
  readonly ril: boolean;
  /** Hardware translation-table update (IDR0.HTTU). */
  readonly httu: HttuLevel;
  /** Translation granules (IDR5.GRANxx). */
  readonly granules: SmmuGranules;
  /** Output address size in bits (IDR5.OAS): 32, 36, 40, 42, 44, 48 or 52. */
  readonly oas: number;
  /** 52-bit stage-1 VA (IDR5.VAX = 1). */
  readonly vax: boolean;
  /** 16-bit ASIDs (IDR0.ASID16), else 8. */
  readonly asid16: boolean;
  /** 16-bit VMIDs (IDR0.VMID16), else 8. */
  readonly vmid16: boolean;
  /** EL2 / E2H stream world and TLBI_EL2_* (IDR0.HYP). */
  readonly hyp: boolean;
  /** MSIs (IDR0.MSI): *_IRQ_CFG0/1/2 registers and CMD_SYNC MSI writes. */
  readonly msi: boolean;
  /** CMD_SYNC CS = SEV wake-ups (IDR0.SEV). */
  readonly sev: boolean;
  /** Broadcast TLB maintenance (IDR0.BTM). */
  readonly btm: boolean;
  /** Coherent table and queue accesses (IDR0.COHACC). */
  readonly coherent: boolean;
  /** log2 of the largest command queue (IDR1.CMDQS), 0..19. */
  readonly cmdqLog2: number;
  /** log2 of the largest event queue (IDR1.EVENTQS), 0..19. */
  readonly evtqLog2: number;
  /** log2 of the largest PRI queue (IDR1.PRIQS; advertised as 0 when `pri` is false), 0..19. */
  readonly priqLog2: number;
  /** TLB capacity in entries (model parameter, not an ID register). */
  readonly tlbEntries: number;
  /** TLB replacement policy (model parameter). */
  readonly tlbPolicy: TlbPolicy;
  /** IIDR value (32 bits). */
  readonly iidr: number;
  /** AIDR value (ArchMajorRev [7:4], ArchMinorRev [3:0]; other bits 0). */
  readonly aidr: number;
  /** IDR0.TERM_MODEL: 1 = terminated transactions always abort (CD.A must be 1). */
  readonly termModel: 0 | 1;
  /** Stage-2 forced write-back, STE.S2FWB (IDR3.FWB). */
  readonly fwb: boolean;
  /** Hierarchical attribute disable, CD.HAD0/1 (IDR3.HAD). */
  readonly had: boolean;
  /** Small translation tables, T0SZ up to 48 (IDR3.STT). */
  readonly stt: boolean;
  /** Stage-2 XN[1:0] EL0/EL1 split (IDR3.XNX). */
  readonly xnx: boolean;
  /** Automatic PRG response for a PRI request with Last = 1 dropped because the PRI queue overflowed (§12 #5). */
  readonly priAutoResponse: PriAutoResponse;
  /** IDR5.STALL_MAX: most stalled transactions outstanding at once (advertised 0 when `stall` is 'none'), 1..65535. */
  readonly stallMax: number;
}

/**
 * Default IIDR: ProductID 0x001, Variant 0, Revision 0, Implementer 0x000. Implementer 0 is not a
 * JEP106 code, so the model claims no vendor's identity and no IIDR-keyed Linux erratum
 * workaround (Arm MMU-600/700: Implementer 0x43B, ProductID 0x483/0x487) applies to it.
 */
export const DEFAULT_IIDR = 0x0010_0000;
/**
 * Default AIDR 0x02 = SMMUv3.2 (ArchMajorRev 0 = v3, ArchMinorRev 2): the version whose rules the
 * model follows (GBPA writes without UPDATE ignored, range invalidation, S2FWB, HAD).
 */
export const DEFAULT_AIDR = 0x02;

/** True when AIDR (ArchMajorRev [7:4], ArchMinorRev [3:0]) names SMMUv3.`minor` or later. */
export function aidrAtLeast(aidr: number, minor: number): boolean {
  return (aidr & 0xf0) !== 0 || (aidr & 0xf) >= minor;
}

/** The default feature set (a modern full SMMUv3.2). */
export const DEFAULT_FEATURES: SmmuFeatures = Object.freeze({
  stage1: true,
  stage2: true,
  nesting: true,
  st2lvl: true,
  cd2l: true,
  sidBits: 16,
  ssidBits: 20,
  ats: true,
  pri: true,
  stall: 'stall',
  ril: true,
  httu: 2,
  granules: Object.freeze({ '4k': true, '16k': true, '64k': true }),
  oas: 48,
  vax: false,
  asid16: true,
  vmid16: true,
  hyp: true,
  msi: true,
  sev: true,
  btm: false,
  coherent: true,
  cmdqLog2: 19,
  evtqLog2: 19,
  priqLog2: 19,
  tlbEntries: 4096,
  tlbPolicy: 'lru',
  iidr: DEFAULT_IIDR,
  aidr: DEFAULT_AIDR,
  termModel: 0,
  fwb: true,
  had: true,
  stt: false,
  xnx: true,
  priAutoResponse: 'success',
  stallMax: 64,
} satisfies SmmuFeatures);

/** Names of every option {@link resolveFeatures} understands (= the keys of {@link SmmuFeatures}). */
export const FEATURE_OPTION_NAMES: readonly string[] = Object.freeze(Object.keys(DEFAULT_FEATURES));

/** Largest queue log2 the architecture allows (IDR1.CMDQS/EVENTQS/PRIQS ≤ 19). */
export const MAX_QUEUE_LOG2 = 19;

function fail(name: string, v: unknown, what: string): never {
  let shown: string;
  try {
    shown = typeof v === 'string' ? `'${v}'` : JSON.stringify(v) ?? String(v);
  } catch {
    shown = String(v);
  }
  throw new TypeError(`hw-smmuv3 option '${name}' = ${shown} is invalid: expected ${what}`);
}

function bool(o: Record<string, unknown>, name: keyof SmmuFeatures, dflt: boolean): boolean {
  const v = o[name];
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') fail(name, v, 'true or false');
  return v;
}

function int(o: Record<string, unknown>, name: keyof SmmuFeatures, dflt: number, min: number, max: number): number {
  const v = o[name];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(name, v, `an integer in ${min}..${max}`);
  return v;
}

function oneOf<T extends string | number>(o: Record<string, unknown>, name: keyof SmmuFeatures, dflt: T, allowed: readonly T[]): T {
  const v = o[name];
  if (v === undefined) return dflt;
  if (!allowed.includes(v as T)) fail(name, v, `one of ${allowed.map((a) => (typeof a === 'string' ? `'${a}'` : String(a))).join(', ')}`);
  return v as T;
}

function granules(o: Record<string, unknown>): SmmuGranules {
  const v = o.granules;
  const d = DEFAULT_FEATURES.granules;
  if (v === undefined) return d;
  const what = "an object { '4k'?: boolean, '16k'?: boolean, '64k'?: boolean } (missing keys keep their default true) with at least one granule enabled";
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('granules', v, what);
  const g = v as Record<string, unknown>;
  for (const k of Object.keys(g)) {
    if (k !== '4k' && k !== '16k' && k !== '64k') fail('granules', v, what);
    if (typeof g[k] !== 'boolean') fail('granules', v, what);
  }
  const out = Object.freeze({
    '4k': (g['4k'] as boolean | undefined) ?? d['4k'],
    '16k': (g['16k'] as boolean | undefined) ?? d['16k'],
    '64k': (g['64k'] as boolean | undefined) ?? d['64k'],
  });
  if (!out['4k'] && !out['16k'] && !out['64k']) fail('granules', v, what);
  return out;
}

/**
 * Builds the feature set from backend options (plain data, e.g. `{ stage2: false, sidBits: 8 }`);
 * every option is optional and defaults to {@link DEFAULT_FEATURES}.
 *
 * @param options - the instance's backend options
 * @param otherKeys - option names owned by other parts of the model (accepted and ignored here);
 *   any other unknown key is rejected so a typo does not silently fall back to a default
 * @throws TypeError naming the option, the value and what is accepted, for a bad value, an
 *   unknown option, or an inconsistent combination (no stage, nesting without both stages)
 */
export function resolveFeatures(options: Readonly<Record<string, unknown>> = {}, otherKeys: readonly string[] = []): SmmuFeatures {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`hw-smmuv3 options must be a plain object, got ${String(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!FEATURE_OPTION_NAMES.includes(k) && !otherKeys.includes(k)) {
      throw new TypeError(
        `hw-smmuv3: unknown option '${k}' (known options: ${[...FEATURE_OPTION_NAMES, ...otherKeys].join(', ')})`,
      );
    }
  }
  const d = DEFAULT_FEATURES;
  const stage1 = bool(o, 'stage1', d.stage1);
  const stage2 = bool(o, 'stage2', d.stage2);
  if (!stage1 && !stage2) fail('stage1', o.stage1, 'at least one of stage1 / stage2 to be true');
  const nesting = bool(o, 'nesting', stage1 && stage2);
  if (nesting && !(stage1 && stage2)) fail('nesting', o.nesting, 'false unless both stage1 and stage2 are true');
  const pri = bool(o, 'pri', d.pri);
  const aidr = int(o, 'aidr', d.aidr, 0, 0xff);
  const stall = oneOf<StallModelName>(o, 'stall', d.stall, ['none', 'stall', 'forced']);
  const f: SmmuFeatures = {
    stage1,
    stage2,
    nesting,
    st2lvl: bool(o, 'st2lvl', d.st2lvl),
    cd2l: bool(o, 'cd2l', d.cd2l),
    sidBits: int(o, 'sidBits', d.sidBits, 0, 32),
    ssidBits: int(o, 'ssidBits', d.ssidBits, 0, 20),
    ats: bool(o, 'ats', d.ats),
    pri,
    stall,
    ril: bool(o, 'ril', d.ril),
    httu: oneOf<HttuLevel>(o, 'httu', d.httu, [0, 1, 2]),
    granules: granules(o),
    oas: oneOf<number>(o, 'oas', d.oas, OAS_BITS),
    vax: bool(o, 'vax', d.vax),
    asid16: bool(o, 'asid16', d.asid16),
    vmid16: bool(o, 'vmid16', d.vmid16),
    hyp: bool(o, 'hyp', d.hyp),
    msi: bool(o, 'msi', d.msi),
    sev: bool(o, 'sev', d.sev),
    btm: bool(o, 'btm', d.btm),
    coherent: bool(o, 'coherent', d.coherent),
    cmdqLog2: int(o, 'cmdqLog2', d.cmdqLog2, 0, MAX_QUEUE_LOG2),
    evtqLog2: int(o, 'evtqLog2', d.evtqLog2, 0, MAX_QUEUE_LOG2),
    priqLog2: int(o, 'priqLog2', d.priqLog2, 0, MAX_QUEUE_LOG2),
    tlbEntries: int(o, 'tlbEntries', d.tlbEntries, 1, 1 << 24),
    tlbPolicy: oneOf<TlbPolicy>(o, 'tlbPolicy', d.tlbPolicy, ['lru', 'fifo', 'random']),
    iidr: int(o, 'iidr', d.iidr, 0, 0xffffffff),
    aidr,
    termModel: oneOf<0 | 1>(o, 'termModel', d.termModel, [0, 1]),
    fwb: bool(o, 'fwb', d.fwb),
    had: bool(o, 'had', d.had),
    stt: bool(o, 'stt', d.stt),
    // IHI 0070 §6.3.4: XNX is RES0 in SMMUv3.0 and mandatory from SMMUv3.1 when stage 2 is supported,
    // so the default follows stage2 and AIDR (ArchMinorRev [3:0] ≥ 1 with ArchMajorRev [7:4] = 0).
    xnx: bool(o, 'xnx', stage2 && aidrAtLeast(aidr, 1)),
    priAutoResponse: oneOf<PriAutoResponse>(o, 'priAutoResponse', d.priAutoResponse, ['success', 'deny']),
    stallMax: int(o, 'stallMax', d.stallMax, 1, 0xffff),
  };
  return Object.freeze(f);
}
