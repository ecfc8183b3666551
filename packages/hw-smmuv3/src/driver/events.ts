/**
 * Event and PRI queue consumers (smmuv3.md §5.4, §6): Linux's `arm_smmu_evtq_thread` /
 * `arm_smmu_priq_thread`. Records are popped at the shadow CONS (CONS written after each one),
 * PROD is re-read until the queue is empty, an overflow is detected by PROD.OVFLG differing from
 * the last PROD seen, and acknowledged at the end by copying it into CONS.OVACKFLG. Records are
 * decoded into driver-api faults: translation faults with Stall = 1 become stall page requests
 * (grpid = STAG), PRI records become page requests.
 */
import {
  ACCESS_EXEC,
  ACCESS_READ,
  ACCESS_WRITE,
  PgFaultPerm,
  type FaultEvent,
  type PageRequest,
} from '@iommulab/driver-api';
import { qEmpty, qIdx, qInc, type PhysMem, type RegisterFile } from '@iommulab/runtime';
import {
  EVTQ_ENT_BYTES,
  EvtId,
  PRIQ_ENT_BYTES,
  Q_OVF,
  SMMU_EVTQ_CONS,
  SMMU_EVTQ_PROD,
  SMMU_PRIQ_CONS,
  SMMU_PRIQ_PROD,
} from '../codec/index.js';
import { faultReasonOfEvent } from '../fault-reason.js';

export { faultReasonOfEvent };

const TWO_32 = 4294967296;

/** True for the records with the translation-fault layout (§5.1: 0x0B, 0x10–0x13). */
export function isTranslationFaultEvent(id: number): boolean {
  return id === EvtId.F_WALK_EABT || (id >= EvtId.F_TRANSLATION && id <= EvtId.F_PERMISSION);
}

/** InputAddr (dword 2) as a number (the top byte of a 64-bit VA is kept only while it fits). */
function inputAddr(raw: Uint32Array): number {
  const hi = raw[5];
  return hi < 2 ** 21 ? raw[4] + hi * TWO_32 : raw[4] + (hi & 0x1fffff) * TWO_32;
}

/**
 * Decodes a 32-byte event record (8 words): a stall page request for a stalled translation
 * fault (Stall = 1; grpid = STAG, last = true; `stage: 2` when S2 = 1), else a {@link FaultEvent}.
 */
export function decodeEvent(raw: Uint32Array): FaultEvent | PageRequest {
  const w0 = raw[0];
  const id = w0 & 0xff;
  const sid = raw[1];
  const pasid = w0 & (1 << 11) ? (w0 >>> 12) & 0xfffff : -1;
  const w2 = raw[2];
  const w3 = raw[3];
  const xlat = isTranslationFaultEvent(id);
  const rnw = (w3 & (1 << 3)) !== 0; // dword1 bit 35
  const ind = (w3 & (1 << 2)) !== 0; // bit 34
  const pnu = (w3 & (1 << 1)) !== 0; // bit 33
  if (xlat && (w2 & 0x80000000) !== 0 && id !== EvtId.F_WALK_EABT) {
    const perm = (rnw ? PgFaultPerm.READ : PgFaultPerm.WRITE) | (ind ? PgFaultPerm.EXEC : 0) | (pnu ? PgFaultPerm.PRIV : 0);
    const req: PageRequest = { kind: 'page-request', rid: sid, pasid, grpid: w2 & 0xffff, perm, addr: inputAddr(raw), last: true, stall: true };
    // S2 (dword 1 bit 39): a stage-2 fault, reported to the parent's (level-2) fault queue.
    return (w3 & (1 << 7)) !== 0 ? { ...req, stage: 2 } : req;
  }
  let access = 0;
  if (xlat) access = ind ? ACCESS_EXEC | ACCESS_READ : rnw ? ACCESS_READ : ACCESS_WRITE;
  return {
    kind: 'event',
    rid: sid,
    pasid,
    addr: xlat || id === EvtId.F_UUT || id === EvtId.F_BAD_ATS_TREQ || id === EvtId.F_TRANSL_FORBIDDEN ? inputAddr(raw) : 0,
    reason: faultReasonOfEvent(id),
    detail: id,
    access,
    raw,
  };
}

/** Decodes a 16-byte PRI record (4 words) into a page request (§6.1; iommufd perm bits, §6.2). */
export function decodePriRecord(raw: Uint32Array): PageRequest {
  const w1 = raw[1];
  const perm =
    (w1 & (1 << 28) ? PgFaultPerm.READ : 0) |
    (w1 & (1 << 29) ? PgFaultPerm.WRITE : 0) |
    (w1 & (1 << 27) ? PgFaultPerm.EXEC : 0) |
    (w1 & (1 << 26) ? PgFaultPerm.PRIV : 0);
  return {
    kind: 'page-request',
    rid: raw[0],
    pasid: w1 & 0x80000000 ? w1 & 0xfffff : -1,
    grpid: raw[2] & 0x1ff,
    perm,
    addr: (raw[2] & 0xfffff000) + raw[3] * TWO_32,
    last: (w1 & (1 << 30)) !== 0,
  };
}

/** One output queue the driver consumes (EVTQ or PRIQ). */
class ConsumerQueue {
  /** Shadow CONS, with OVACKFLG in bit 31. */
  cons = 0;
  /** Last PROD read (OVFLG in bit 31). */
  prod = 0;
  overflows = 0;
  records = 0;

  constructor(
    private readonly mem: PhysMem,
    private readonly regs: RegisterFile,
    private readonly base: number,
    private readonly log2: number,
    private readonly entBytes: number,
    private readonly prodReg: number,
    private readonly consReg: number,
  ) {}

  /** Pops every record (CONS written after each); returns how many. */
  drain(handle: (raw: Uint32Array) => void): number {
    const log2 = this.log2;
    const words = this.entBytes / 4;
    let n = 0;
    for (;;) {
      const prod = this.regs.read32(this.prodReg);
      if (((prod ^ this.prod) & Q_OVF) !== 0) this.overflows++;
      this.prod = prod;
      if (qEmpty(prod, this.cons, log2)) break;
      while (!qEmpty(this.prod, this.cons, log2)) {
        const w = (this.base + qIdx(this.cons, log2) * this.entBytes) >>> 2;
        const raw = this.mem.u32.slice(w, w + words);
        this.cons = ((this.cons & Q_OVF) | qInc(this.cons, log2)) >>> 0;
        this.regs.write32(this.consReg, this.cons);
        n++;
        handle(raw);
      }
    }
    // queue_sync_cons_ovf: acknowledge the overflow we have now caught up with.
    if (((this.prod ^ this.cons) & Q_OVF) !== 0) {
      this.cons = ((this.prod & Q_OVF) | (this.cons & ~Q_OVF)) >>> 0;
      this.regs.write32(this.consReg, this.cons);
    }
    this.records += n;
    return n;
  }
}

/** Layout of the two queues the driver consumes. */
export interface EventQueuesConfig {
  readonly mem: PhysMem;
  readonly regs: RegisterFile;
  readonly evtqPa: number;
  readonly evtqLog2: number;
  /** PRI queue (absent without IDR0.PRI). */
  readonly priqPa: number;
  readonly priqLog2: number;
  readonly pri: boolean;
}

/** The driver's EVTQ + PRIQ consumers. */
export class SmmuEventQueues {
  private readonly evtq: ConsumerQueue;
  private readonly priq: ConsumerQueue | undefined;

  constructor(cfg: EventQueuesConfig) {
    this.evtq = new ConsumerQueue(cfg.mem, cfg.regs, cfg.evtqPa, cfg.evtqLog2, EVTQ_ENT_BYTES, SMMU_EVTQ_PROD, SMMU_EVTQ_CONS);
    this.priq = cfg.pri ? new ConsumerQueue(cfg.mem, cfg.regs, cfg.priqPa, cfg.priqLog2, PRIQ_ENT_BYTES, SMMU_PRIQ_PROD, SMMU_PRIQ_CONS) : undefined;
  }

  /** Drains the event queue into `handle` (raw 8-word records). */
  drainEvents(handle: (raw: Uint32Array) => void): number {
    return this.evtq.drain(handle);
  }

  /** Drains the PRI queue into `handle` (raw 4-word records). */
  drainPageRequests(handle: (raw: Uint32Array) => void): number {
    return this.priq === undefined ? 0 : this.priq.drain(handle);
  }

  /** Overflows detected on the event queue so far (no allocation: read on every drain). */
  get evtqOverflows(): number {
    return this.evtq.overflows;
  }

  /** Overflows detected on the PRI queue so far. */
  get priqOverflows(): number {
    return this.priq?.overflows ?? 0;
  }

  /** Counters: overflows detected and records consumed per queue. */
  stats(): { evtqOverflows: number; evtqRecords: number; priqOverflows: number; priqRecords: number } {
    return {
      evtqOverflows: this.evtq.overflows,
      evtqRecords: this.evtq.records,
      priqOverflows: this.priq?.overflows ?? 0,
      priqRecords: this.priq?.records ?? 0,
    };
  }
}
