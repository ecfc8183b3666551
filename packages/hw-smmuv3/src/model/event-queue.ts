/**
 * The event queue (smmuv3.md §5.3): 32-byte event records written by the SMMU.
 *
 * 1. CR0.EVTQEN = 0 → the record is dropped silently.
 * 2. Queue full → dropped; EVTQ_PROD.OVFLG toggles once on entry into overflow (§12 #4, see
 *    {@link ProducerQueue}); no GERROR. The event interrupt is signalled on that toggle so
 *    software notices the loss.
 * 3. Record written at `base + 32 × index(PROD)`; an address outside PhysMem → dropped,
 *    GERROR.EVTQ_ABT_ERR.
 * 4. PROD advanced and published, then the event interrupt (if IRQ_CTRL.EVTQ_IRQEN): MSI of
 *    EVTQ_IRQ_CFG1 at EVTQ_IRQ_CFG0 when configured, and the irq doorbell.
 * 5. Stall records (Stall = 1) are never discarded for a full / disabled / abort-flagged queue:
 *    they wait and are written when the queue is next writable ({@link EventQueue.pushStall},
 *    IHI 0070 §3.5.3, §7.2.1, §7.4).
 * Records are never merged (STE.MEV allows but does not require it).
 */
import type { PhysMem, RegisterFile } from '@iommulab/runtime';
import { EVTQ_ENT_BYTES, GERROR_EVTQ_ABT_ERR, SMMU_EVTQ_BASE, SMMU_EVTQ_CONS, SMMU_EVTQ_PROD } from '../codec/index.js';
import type { SmmuFeatures } from './features.js';
import type { GlobalErrors } from './gerror.js';
import type { SmmuIrq } from './irq.js';
import { ProducerQueue, QWrite } from './output-queue.js';

/** The event queue producer. */
export class EventQueue extends ProducerQueue {
  constructor(
    mem: PhysMem,
    regs: RegisterFile,
    gerror: GlobalErrors,
    private readonly irq: SmmuIrq,
    features: SmmuFeatures,
  ) {
    super(mem, regs, gerror, {
      baseOff: SMMU_EVTQ_BASE,
      prodOff: SMMU_EVTQ_PROD,
      consOff: SMMU_EVTQ_CONS,
      entryBytes: EVTQ_ENT_BYTES,
      maxLog2: features.evtqLog2,
      abortBit: GERROR_EVTQ_ABT_ERR,
    });
  }

  /** Stall records waiting for the queue to become writable (oldest first). */
  private pendingStalls: Uint32Array[] = [];
  /** {@link EventQueue.syncEpoch} when each pending record was held. */
  private pendingEpochs: number[] = [];
  /** Count of CMD_SYNCs that completed an invalidation (CFGI / TLBI) since reset. */
  private syncEpoch = 0;
  /**
   * Retries the stalled transaction (StreamID, STAG) as though it had just arrived (set by the
   * pipeline: a 'retry' resolution, the device re-issues it).
   */
  stallRetry: ((sid: number, stag: number) => void) | null = null;
  /**
   * Whether the stalled transaction (StreamID, STAG) of a pending stall record is still stalled
   * (set by the pipeline); records of resolved stalls are not written.
   */
  stallLive: ((sid: number, stag: number) => boolean) | null = null;

  /** Stall records held back because the queue was not writable. */
  get pendingStallRecords(): number {
    return this.pendingStalls.length;
  }

  /**
   * Records a stall event record (Stall = 1). IHI 0070 §3.5.3 / §7.2.1 / §7.4: it is never
   * discarded because the queue is full, disabled or has an active EVENTQ_ABT_ERR — it is held
   * and written when the queue is next writable — and never causes an overflow. A synchronous
   * write abort loses it (§7.2.2: GERROR.EVENTQ_ABT_ERR, "including stall fault event records").
   * @returns true when written now, false when held back or lost
   */
  pushStall(rec: Uint32Array, off = 0): boolean {
    this.flushPending();
    if (this.pendingStalls.length === 0) {
      const r = this.write(rec, off, true);
      if (r === QWrite.WRITTEN) {
        this.irq.fireEvtq();
        return true;
      }
      if (r === QWrite.ABORT) return false;
    }
    this.pendingStalls.push(rec.slice(off, off + 8));
    this.pendingEpochs.push(this.syncEpoch);
    return false;
  }

  /**
   * A CMD_SYNC completed after configuration or TLB invalidations. IHI 0070 §7.2.1: a stalled
   * transaction whose record is held back and that is "affected by a configuration or translation
   * invalidation and CMD_SYNC … must be retried after the queue becomes writable again" (success →
   * no event; a new fault → a new record). Every held stall counts as affected (retrying an
   * unaffected one "is permitted but not required"); held stalls without such a sync still write
   * their original record ("If the transaction is not retried, the original fault event record is
   * recorded into the queue when it becomes writable").
   */
  invalidationSynced(): void {
    this.syncEpoch++;
  }

  /**
   * Writes held-back stall records while the queue is writable (called on every service and
   * before each new record). @returns records written
   */
  flushPending(): number {
    const q = this.pendingStalls;
    let n = 0;
    while (q.length > 0) {
      const rec = q[0];
      const live = this.stallLive;
      if (live !== null && !live(rec[1] >>> 0, rec[2] & 0xffff)) {
        q.shift();
        this.pendingEpochs.shift();
        continue;
      }
      const retry = this.stallRetry;
      if (retry !== null && this.pendingEpochs[0] !== this.syncEpoch) {
        if (!this.writableForStall()) break;
        q.shift();
        this.pendingEpochs.shift();
        retry(rec[1] >>> 0, rec[2] & 0xffff);
        continue;
      }
      const r = this.write(rec, 0, true);
      if (r === QWrite.WRITTEN) {
        q.shift();
        this.pendingEpochs.shift();
        n++;
        this.irq.fireEvtq();
        continue;
      }
      if (r === QWrite.ABORT) {
        q.shift(); // lost (§7.2.2)
        this.pendingEpochs.shift();
        continue;
      }
      break;
    }
    return n;
  }

  override reset(): void {
    super.reset();
    this.pendingStalls = [];
    this.pendingEpochs = [];
    this.syncEpoch = 0;
  }

  /** Forgets held-back stall records (their transactions were terminated). */
  dropPendingStalls(): void {
    this.pendingStalls = [];
    this.pendingEpochs = [];
  }

  /**
   * Records one event: the 8 words (4 dwords, low word first) of `rec` starting at `off`.
   * Never throws. @returns true when the record was written to the queue
   */
  push(rec: Uint32Array, off = 0): boolean {
    if (this.pendingStalls.length > 0) this.flushPending();
    const r = this.write(rec, off);
    if (r === QWrite.WRITTEN) {
      this.irq.fireEvtq();
      return true;
    }
    if (r === QWrite.OVERFLOW_ENTERED) this.irq.fireEvtq();
    return false;
  }
}
