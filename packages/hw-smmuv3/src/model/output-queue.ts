/**
 * An SMMU-produced queue (event queue or PRI queue; smmuv3.md §1.5, §5.3, §6, §12 #4/#5): the
 * SMMU writes entries at PROD and publishes *_PROD, software consumes and writes *_CONS.
 *
 * - Base and LOG2SIZE are latched from *_BASE when the queue's CR0 enable goes 0→1 (LOG2SIZE above
 *   the IDR1 maximum is treated as the maximum; the base is aligned down to the larger of the queue
 *   size in bytes or 32 bytes, IHI 0070 §6.3.29 / PRIQ_BASE), together with *_PROD (index, wrap and OVFLG),
 *   which software may write only while the queue is disabled; later software writes to PROD
 *   are undone by {@link ProducerQueue.restore}.
 * - Full (same index, different wrap as *_CONS): the entry is dropped. Overflow flag rule (§12 #4):
 *   PROD.OVFLG [31] toggles once, on entry into overflow, i.e. only when it equals
 *   CONS.OVACKFLG [31]; further drops leave it alone until software acknowledges by copying it
 *   into CONS.OVACKFLG. Entries recorded before stay valid. Event queue: when space frees up,
 *   entries are written again (acknowledged or not, IHI 0070 §7.4); PRI queue: an active overflow
 *   condition inhibits new entries until acknowledged (§8.1). No GERROR for overflow.
 * - Not writable while the queue's GERROR abort error is active (IHI 0070 §7.2.1, §8.2): the entry
 *   is dropped ({@link QWrite.ABORT_ACTIVE}).
 * - The entry's bytes are not inside PhysMem: the entry is dropped, PROD does not move, and the
 *   queue's GERROR abort bit is raised (toggle semantics: once until acknowledged).
 * - Entries are written with plain stores, then PROD is published with an atomic store (so a
 *   consumer that reads PROD atomically sees the entry).
 */
import type { PhysMem, RegisterFile } from '@iommulab/runtime';
import { Q_BASE_ADDR_MASK_HI, Q_BASE_ADDR_MASK_LO, Q_BASE_LOG2SIZE_MASK } from '../codec/index.js';
import { alignQueueBase } from './command-queue.js';
import type { GlobalErrors } from './gerror.js';

const TWO_32 = 4294967296;

/** {@link ProducerQueue.write} outcomes. */
export const QWrite = {
  /** Entry written and PROD advanced. */
  WRITTEN: 0,
  /** Queue full; this drop toggled OVFLG (entry into overflow). */
  OVERFLOW_ENTERED: 1,
  /** Queue full; OVFLG already signalled and not yet acknowledged. */
  OVERFLOW: 2,
  /** Entry address outside PhysMem: dropped, GERROR abort raised. */
  ABORT: 3,
  /** Queue disabled: dropped silently. */
  DISABLED: 4,
  /**
   * The queue's GERROR abort error (EVENTQ_ABT_ERR / PRIQ_ABT_ERR) is active and not yet
   * acknowledged: the queue is not writable (IHI 0070 §7.2.1, §8.2), the entry is dropped.
   */
  ABORT_ACTIVE: 5,
  /** Queue full and the entry is a stall record: not written, not an overflow (IHI 0070 §7.4). */
  FULL: 6,
} as const;

/** Producer-queue counters. */
export interface ProducerQueueStats {
  /** Entries written. */
  written: number;
  /** Entries dropped because the queue was full. */
  overflowDrops: number;
  /** Entries into overflow (OVFLG toggles). */
  overflows: number;
  /** Entries dropped because the write aborted, or while the abort error was active. */
  abortDrops: number;
  /** Entries dropped because the queue was disabled. */
  disabledDrops: number;
}

/** Register offsets and sizes of one producer queue. */
export interface ProducerQueueLayout {
  /** *_BASE offset (64-bit). */
  readonly baseOff: number;
  /** *_PROD offset (page 1). */
  readonly prodOff: number;
  /** *_CONS offset (page 1). */
  readonly consOff: number;
  /** Entry size in bytes (32 EVTQ, 16 PRIQ). */
  readonly entryBytes: number;
  /** Largest LOG2SIZE (IDR1.EVENTQS / PRIQS). */
  readonly maxLog2: number;
  /** GERROR bit raised when an entry write aborts. */
  readonly abortBit: number;
  /**
   * True for the PRI queue: an active overflow condition (PROD.OVFLG ≠ CONS.OVACKFLG) inhibits
   * new entries even when there is space (IHI 0070 §8.1); the event queue keeps writing (§7.4).
   */
  readonly overflowInhibits?: boolean;
}

/** The producer side of an SMMU-written queue. */
export class ProducerQueue {
  /** The queue's CR0ACK enable as applied. */
  enabled = false;
  /** Latched PA of entry 0 (*_BASE.ADDR [51:5]). */
  basePa = 0;
  /** Latched log2 of the number of entries. */
  log2 = 0;
  /** The hardware's PROD (index | wrap). */
  prod = 0;
  /** The hardware's OVFLG (0 or 1). */
  ovflg = 0;
  /** Counters. */
  readonly stats: ProducerQueueStats = { written: 0, overflowDrops: 0, overflows: 0, abortDrops: 0, disabledDrops: 0 };
  private readonly prodWord: number;
  private readonly consWord: number;
  private readonly entryWords: number;

  constructor(
    private readonly mem: PhysMem,
    private readonly regs: RegisterFile,
    private readonly gerror: GlobalErrors,
    /** Register offsets, entry size, size limit and abort bit of this queue. */
    readonly layout: ProducerQueueLayout,
  ) {
    this.prodWord = layout.prodOff >>> 2;
    this.consWord = layout.consOff >>> 2;
    this.entryWords = layout.entryBytes >>> 2;
  }

  /** The *_PROD value the hardware publishes: index | wrap | OVFLG << 31. */
  get prodValue(): number {
    return (this.prod | (this.ovflg << 31)) >>> 0;
  }

  private publish(): void {
    Atomics.store(this.regs.i32, this.prodWord, this.prod | (this.ovflg << 31));
  }

  /** Enable 0→1: latches *_BASE and *_PROD and starts accepting entries. */
  enable(): void {
    const lo = this.regs.hwRead32(this.layout.baseOff);
    const hi = this.regs.hwRead32(this.layout.baseOff + 4);
    this.log2 = Math.min(lo & Q_BASE_LOG2SIZE_MASK, this.layout.maxLog2);
    this.basePa = alignQueueBase(((lo & Q_BASE_ADDR_MASK_LO) >>> 0) + (hi & Q_BASE_ADDR_MASK_HI) * TWO_32, this.layout.entryBytes, this.log2);
    const p = Atomics.load(this.regs.i32, this.prodWord) >>> 0;
    this.prod = p & ((2 << this.log2) - 1);
    this.ovflg = p >>> 31;
    this.enabled = true;
    this.publish();
  }

  /** Enable 1→0: entries are dropped; *_PROD keeps its value and becomes software-writable. */
  disable(): void {
    this.enabled = false;
  }

  /** Power-on state. */
  reset(): void {
    this.enabled = false;
    this.basePa = 0;
    this.log2 = 0;
    this.prod = 0;
    this.ovflg = 0;
    const s = this.stats;
    s.written = s.overflowDrops = s.overflows = s.abortDrops = s.disabledDrops = 0;
  }

  /** Undoes a software write to *_PROD while the queue is enabled. */
  restore(): void {
    if (this.enabled && Atomics.load(this.regs.i32, this.prodWord) >>> 0 !== this.prodValue) this.publish();
  }

  /** Entries software has not consumed yet (from the live *_CONS). */
  pending(): number {
    if (!this.enabled) return 0;
    const cons = Atomics.load(this.regs.i32, this.consWord);
    return (this.prod - cons) & ((2 << this.log2) - 1);
  }

  /**
   * Whether a stall record could be written now (IHI 0070 §7.2.1 "writable": enabled, not full, no
   * active abort error). Writes nothing.
   */
  writableForStall(): boolean {
    if (!this.enabled || this.gerror.active(this.layout.abortBit)) return false;
    const cons = Atomics.load(this.regs.i32, this.consWord);
    return ((this.prod ^ cons) & ((2 << this.log2) - 1)) !== 1 << this.log2;
  }

  /**
   * Writes one entry (`entryBytes / 4` words of `rec` from `off`). `stall`: a stall event record,
   * which a full queue does not discard (no overflow; {@link QWrite.FULL}).
   * @returns a {@link QWrite} outcome
   */
  write(rec: Uint32Array, off: number, stall = false): number {
    if (!this.enabled) {
      this.stats.disabledDrops++;
      return QWrite.DISABLED;
    }
    if (this.gerror.active(this.layout.abortBit)) {
      this.stats.abortDrops++;
      return QWrite.ABORT_ACTIVE;
    }
    const log2 = this.log2;
    const cons = Atomics.load(this.regs.i32, this.consWord);
    const prod = this.prod;
    if (this.layout.overflowInhibits === true && this.ovflg !== cons >>> 31) {
      this.stats.overflowDrops++;
      return QWrite.OVERFLOW;
    }
    if (((prod ^ cons) & ((2 << log2) - 1)) === 1 << log2) {
      if (stall) return QWrite.FULL;
      this.stats.overflowDrops++;
      if (this.ovflg === cons >>> 31) {
        this.ovflg ^= 1;
        this.stats.overflows++;
        this.publish();
        return QWrite.OVERFLOW_ENTERED;
      }
      return QWrite.OVERFLOW;
    }
    const n = this.entryWords;
    const pa = this.basePa + (prod & ((1 << log2) - 1)) * (n << 2);
    if (!(pa + (n << 2) <= this.mem.size)) {
      this.stats.abortDrops++;
      this.gerror.raise(this.layout.abortBit);
      return QWrite.ABORT;
    }
    const u32 = this.mem.u32;
    const w = pa >>> 2;
    for (let i = 0; i < n; i++) u32[w + i] = rec[off + i];
    this.prod = (prod + 1) & ((2 << log2) - 1);
    this.publish();
    this.stats.written++;
    return QWrite.WRITTEN;
  }
}
