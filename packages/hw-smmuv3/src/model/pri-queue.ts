/**
 * The PRI queue (smmuv3.md §6, §12 #5 and #7): 16-byte page-request records written by the SMMU.
 *
 * Same mechanics as the event queue ({@link ProducerQueue}): CR0.PRIQEN, PRIQ_PROD.OVFLG toggled
 * once on entry into overflow, GERROR.PRIQ_ABT_ERR on a write abort, PRIQ interrupt (IRQ_CTRL.PRIQ_IRQEN,
 * MSI via PRIQ_IRQ_CFG0/1) after each record and on entry into overflow.
 *
 * An active overflow condition (PROD.OVFLG ≠ CONS.OVACKFLG) inhibits new entries until software
 * acknowledges it, even when there is space (IHI 0070 §8.1).
 *
 * Automatic PRG responses (so a device never waits for an answer to a request software never saw),
 * for a dropped request with Last = 1 that is not a stop marker (a stop marker — PV = 1, Last = 1,
 * Read = Write = 0 — gets no response, IHI 0070 §8.1 / §8.2):
 * - dropped because of overflow (§8.1): `features.priAutoResponse` ('success' → Resp 2, the
 *   architected Success; 'deny' → Resp 0); a PASID request gets its PASID back only when
 *   STE.PPAR = 1 (IDR3.PPS = 0), and Failure (Resp 0) without PASID when the STE cannot be checked;
 * - dropped because PRI is disabled (effective PRIQEN = 0, incl. SMMUEN = 0), PRIQ_ABT_ERR is
 *   active or the write aborted (§8.2): Response Failure (Resp 0b00 = PCIe 0b1111), no PASID.
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
 * Receives automatic PRG responses: `resp` is a CMD_PRI_RESP Resp code (IHI 0070 §4.5.2:
 * 0 ResponseFailure, 1 InvalidRequest, 2 Success); `ssv`/`ssid`: whether the response carries a
 * PASID (and which).
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
      overflowInhibits: true,
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
      // IHI 0070 §8.1: Success; with a PASID, the response carries it when STE.PPAR = 1
      // (IDR3.PPS = 0 here); if the STE cannot be checked (invalid, ILLEGAL, out of range,
      // fetch abort) the response is Failure without PASID.
      const hi = rec[off + 1];
      const pv = (hi & 0x80000000) !== 0;
      let resp = this.overflowResp;
      let ssv = false;
      if (pv && this.steppar !== null) {
        const ppar = this.steppar(rec[off] >>> 0);
        if (ppar === null) resp = PriResp.RESPONSE_FAILURE;
        else ssv = ppar;
      }
      this.autoRespond(rec, off, resp, ssv, 'overflow');
      return 'overflow';
    }
    // IHI 0070 §8.2: effective PRIQEN = 0, an active PRIQ_ABT_ERR or a synchronous write abort:
    // automatic response with ResponseCode 0b1111 (Response Failure = CMD_PRI_RESP Resp 0b00),
    // no PASID.
    if (r === QWrite.ABORT || r === QWrite.ABORT_ACTIVE) {
      this.autoRespond(rec, off, PriResp.DENY, false, 'aborted');
      return 'aborted';
    }
    if (!this.supported) this.stats.disabledDrops++;
    this.autoRespond(rec, off, PriResp.DENY, false, 'disabled');
    return 'disabled';
  }

  /** Answers a dropped request itself (Last = 1 and not a stop marker only). */
  respondFailure(rec: Uint32Array, off: number, reason: PriAutoReason): void {
    this.autoRespond(rec, off, PriResp.DENY, false, reason);
  }

  private autoRespond(rec: Uint32Array, off: number, resp: number, ssv: boolean, reason: PriAutoReason): void {
    const hi = rec[off + 1];
    const last = (hi & (1 << 30)) !== 0; // dword0 bit 62
    if (!last) return;
    const pv = (hi & 0x80000000) !== 0; // bit 63
    const rw = (hi & (3 << 28)) !== 0; // Read (60) / Write (61)
    if (pv && !rw) return; // stop marker: no response (IHI 0070 §8.1, §8.2)
    this.priStats.autoResponses++;
    this.onAutoResponse?.(rec[off] >>> 0, ssv, ssv ? hi & 0xfffff : 0, rec[off + 2] & 0x1ff, resp, reason);
  }

  /**
   * STE.PPAR of a StreamID for overflow auto-responses (set by the pipeline): true / false, or
   * null when the STE cannot be checked (SMMUEN = 0, out of range, fetch abort, invalid, ILLEGAL).
   * Without a hook, overflow responses to PASID requests carry no PASID.
   */
  steppar: ((sid: number) => boolean | null) | null = null;

  override reset(): void {
    super.reset();
    this.priStats.autoResponses = 0;
  }
}
