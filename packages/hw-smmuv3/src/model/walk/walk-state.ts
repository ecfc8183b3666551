/**
 * Shared state of the translation-table walker: the PhysMem views, the options, the scratch
 * fields the stage-2 walk leaves its result in (so nested walks allocate nothing), and counters.
 */
import type { PhysMem } from '@iommulab/runtime';

/** HTTU level (IDR0.HTTU): 0 none, 1 access flag, 2 access flag + dirty state. */
export type WalkerHttu = 0 | 1 | 2;

/** Options of a {@link Walker}. */
export interface WalkerOptions {
  /** Hardware update support (IDR0.HTTU); CD.HA/HD and STE.S2HA/S2HD take effect only up to it. */
  httu: WalkerHttu;
  /** IDR3.XNX: stage-2 XN[1:0] distinguishes privileged and unprivileged execution. */
  xnx?: boolean;
}

/** Walker counters (plain numbers, updated in place). */
export interface WalkStats {
  /** Stage-1 walks started (including nested ones). */
  s1Walks: number;
  /** Stage-2 walks started (stage-2-only translations plus every stage-2 walk a nested walk made). */
  s2Walks: number;
  /** Descriptor fetches (counted by the Walker's public methods). */
  steps: number;
  /** Access flags set by hardware. */
  afUpdates: number;
  /** Dirty-state updates (S1 AP[2] cleared / S2AP.W set). */
  dirtyUpdates: number;
  /** Descriptor updates that lost a race with software and were retried. */
  casRetries: number;
  /** Walks that ended in a fault. */
  faults: number;
}

/** State shared by the stage-1 and stage-2 walk functions (the {@link Walker} extends it). */
export class WalkState {
  /** The memory the tables live in. */
  readonly mem: PhysMem;
  /** Word view of the memory. */
  readonly u32: Uint32Array;
  /** Signed word view (for Atomics). */
  readonly i32: Int32Array;
  /** Memory size in bytes: a descriptor at `pa` is readable iff `pa + 8 <= memSize`. */
  readonly memSize: number;
  /** Access-flag hardware update available (HTTU ≥ 1). */
  readonly hwAf: boolean;
  /** Dirty-state hardware update available (HTTU = 2). */
  readonly hwDirty: boolean;
  /** IDR3.XNX. */
  readonly xnx: boolean;
  /** Counters. */
  readonly stats: WalkStats = {
    s1Walks: 0,
    s2Walks: 0,
    steps: 0,
    afUpdates: 0,
    dirtyUpdates: 0,
    casRetries: 0,
    faults: 0,
  };

  // Scratch result of the last successful stage-2 walk (read right after the call). Addresses
  // are int32 halves so nothing is boxed.
  /** Output PA bits [31:0] (int32). */
  s2PaLo = 0;
  /** Output PA bits [63:32]. */
  s2PaHi = 0;
  /** Packed permissions of the stage-2 leaf (after any dirty update). */
  s2PermAll = 0;
  /** log2 size of the stage-2 leaf. */
  s2SizeLog2 = 0;
  /** IPA base of the stage-2 leaf, bits [31:0] (int32). */
  s2BaseLo = 0;
  /** IPA base of the stage-2 leaf, bits [63:32]. */
  s2BaseHi = 0;
  /** Level of the stage-2 leaf. */
  s2Level = 0;

  constructor(mem: PhysMem, opts: WalkerOptions) {
    this.mem = mem;
    this.u32 = mem.u32;
    this.i32 = mem.i32;
    this.memSize = mem.size;
    const h = opts.httu;
    this.hwAf = h >= 1;
    this.hwDirty = h >= 2;
    this.xnx = opts.xnx === true;
  }
}
