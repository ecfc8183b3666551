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

  /**
   * Records one event: the 8 words (4 dwords, low word first) of `rec` starting at `off`.
   * Never throws. @returns true when the record was written to the queue
   */
  push(rec: Uint32Array, off = 0): boolean {
    const r = this.write(rec, off);
    if (r === QWrite.WRITTEN) {
      this.irq.fireEvtq();
      return true;
    }
    if (r === QWrite.OVERFLOW_ENTERED) this.irq.fireEvtq();
    return false;
  }
}
