/**
 * The PRI queue (smmuv3.md §6, §12 #5 and #7): 16-byte page-request records written by the SMMU.
 *
 * Same mechanics as the event queue ({@link ProducerQueue}): CR0.PRIQEN, PRIQ_PROD.OVFLG toggled
 * once on entry into overflow, GERROR.PRIQ_ABT_ERR on a write abort, PRIQ interrupt (IRQ_CTRL.PRIQ_IRQEN,
 * MSI via PRIQ_IRQ_CFG0/1) after each record and on entry into overflow.
 *
 * Automatic PRG responses (so a device never waits for an answer to a request software never saw),
 * for a dropped request with Last = 1 that is not a stop marker (a stop marker — PV = 1, Last = 1,
 * Read = Write = 0 — expects no response, §12 #7):
 * - dropped because the queue is full: `features.priAutoResponse` ('success' → Resp 2 so the
 *   device retries; 'deny' → Resp 0), §12 #5;
 * - dropped because PRI is disabled (CR0.PRIQEN = 0 or no IDR0.PRI) or the write aborted:
 *   Resp 0 (Invalid Request) ⚠ — retrying could not succeed.
 * Responses are delivered through the `onAutoResponse` hook (the pipeline forwards them to the
 * device side like a CMD_PRI_RESP).
 */
import type { PhysMem, RegisterFile } from '@iommulab/runtime';
import {
  GERROR_PRIQ_ABT_ERR,
  PRIQ_ENT_BYTES,
  PriResp,
  SMMU_PRIQ_BASE,
  SMMU_PRIQ_CONS,
  SMMU_PRIQ_PROD,
} from '../codec/index.js';
import type { SmmuFeatures } from './features.js';
import type { GlobalErrors } from './gerror.js';
import type { SmmuIrq } from './irq.js';
import { ProducerQueue, QWrite } from './output-queue.js';

/** Outcome of {@link PriQueue.push}. */
export type PriPushResult = 'queued' | 'overflow' | 'disabled' | 'aborted';

/** Why the SMMU answered a page request group itself. */
export type PriAutoReason = 'overflow' | 'disabled' | 'aborted';

/**
 * Receives automatic PRG responses: `resp` is a CMD_PRI_RESP Resp code (PriResp: 0 deny,
 * 1 fail, 2 success); `ssv`/`ssid` echo the request's PV/SubstreamID.
 */
export type PriAutoResponder = (sid: number, ssv: boolean, ssid: number, prgi: number, resp: number, reason: PriAutoReason) => void;

/** PRI-queue counters beyond {@link ProducerQueue.stats}. */
export interface PriStats {
  /** Automatic PRG responses sent. */
  autoResponses: number;
}

/** The PRI queue producer. */
export class PriQueue extends ProducerQueue {
  /** Hook for automatic PRG responses (set by the pipeline). */
  onAutoResponse: PriAutoResponder | null = null;
  /** Counters specific to the PRI queue. */
  readonly priStats: PriStats = { autoResponses: 0 };
  private readonly supported: boolean;
  private readonly overflowResp: number;

  constructor(
    mem: PhysMem,
    regs: RegisterFile,
    gerror: GlobalErrors,
    private readonly irq: SmmuIrq,
    features: SmmuFeatures,
  ) {
    super(mem, regs, gerror, {
      baseOff: SMMU_PRIQ_BASE,
      prodOff: SMMU_PRIQ_PROD,
      consOff: SMMU_PRIQ_CONS,
      entryBytes: PRIQ_ENT_BYTES,
      maxLog2: features.pri ? features.priqLog2 : 0,
      abortBit: GERROR_PRIQ_ABT_ERR,
    });
    this.supported = features.pri;
    this.overflowResp = features.priAutoResponse === 'success' ? PriResp.SUCC : PriResp.DENY;
  }

  /**
   * Records one page request: the 4 words (2 dwords, low word first) of `rec` from `off`, in the
   * §6.1 layout. Never throws.
   */
  push(rec: Uint32Array, off = 0): PriPushResult {
    const r = this.supported ? this.write(rec, off) : QWrite.DISABLED;
    if (r === QWrite.WRITTEN) {
      this.irq.firePriq();
      return 'queued';
    }
    if (r === QWrite.OVERFLOW_ENTERED) this.irq.firePriq();
    if (r === QWrite.OVERFLOW_ENTERED || r === QWrite.OVERFLOW) {
      this.autoRespond(rec, off, this.overflowResp, 'overflow');
      return 'overflow';
    }
    if (r === QWrite.ABORT) {
      this.autoRespond(rec, off, PriResp.DENY, 'aborted');
      return 'aborted';
    }
    if (!this.supported) this.stats.disabledDrops++;
    this.autoRespond(rec, off, PriResp.DENY, 'disabled');
    return 'disabled';
  }

  private autoRespond(rec: Uint32Array, off: number, resp: number, reason: PriAutoReason): void {
    const hi = rec[off + 1];
    const last = (hi & (1 << 30)) !== 0; // dword0 bit 62
    if (!last) return;
    const pv = (hi & 0x80000000) !== 0; // bit 63
    const rw = (hi & (3 << 28)) !== 0; // Read (60) / Write (61)
    if (pv && !rw) return; // stop marker: no response expected (§12 #7)
    this.priStats.autoResponses++;
    this.onAutoResponse?.(rec[off] >>> 0, pv, hi & 0xfffff, rec[off + 2] & 0x1ff, resp, reason);
  }

  override reset(): void {
    super.reset();
    this.priStats.autoResponses = 0;
  }
}
