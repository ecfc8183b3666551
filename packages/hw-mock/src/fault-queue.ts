/**
 * The fault queue (FAULTQ): 32-byte records written by the hardware into a ring in PhysMem
 * (non-recoverable faults and page requests). FAULTQ_PROD is owned by the hardware while the
 * queue is enabled; FAULTQ_CONS by software.
 *
 * Overflow follows SMMUv3 EVTQ semantics as the design asks: when the queue is full the record
 * is dropped and FAULTQ_PROD.OVFLG toggles; records keep being dropped until software makes
 * FAULTQ_CONS.OVACKFLG equal to OVFLG. A base outside PhysMem (or malformed) raises
 * GERROR.FAULTQ_ABT once and records are dropped.
 */
import type { PhysMem, RegisterFile } from '@iommulab/runtime';
import { qFull, qIdx, qInc } from '@iommulab/runtime';
import { FAULT_RECORD_BYTES, writeFaultRecord } from './codec.js';
import type { GlobalErrors } from './gerror.js';
import {
  FAULTQ_PROD_OVFLG,
  GERROR_FAULTQ_ABT,
  Q_BASE_LOG2_MASK,
  Q_MAX_LOG2,
  REG_FAULTQ_BASE,
  REG_FAULTQ_CONS,
  REG_FAULTQ_PROD,
} from './regs.js';

/** Decoded queue base register. */
export interface QueueBase {
  /** PA of entry 0 (-1 when the register value is malformed or the ring is not in PhysMem). */
  pa: number;
  /** log2 of the number of entries. */
  log2: number;
}

/**
 * Decodes a queue base register (PA bits [51:12], log2 entries in bits [4:0], bits [11:5] RES0)
 * and checks that the whole ring lies in PhysMem. Malformed → pa = -1.
 */
export function decodeQueueBase(lo: number, hi: number, entryBytes: number, memSize: number, out: QueueBase): void {
  const log2 = lo & Q_BASE_LOG2_MASK;
  out.log2 = log2 > Q_MAX_LOG2 ? 0 : log2;
  const pa = (hi & 0xfffff) * 0x1_0000_0000 + ((lo & 0xffff_f000) >>> 0);
  const bad = log2 > Q_MAX_LOG2 || (lo & 0xfe0) !== 0 || (hi & 0xfff0_0000) !== 0 || pa + (entryBytes << log2) > memSize;
  out.pa = bad ? -1 : pa;
}

/** The fault-queue producer (hardware side). */
export class FaultQueue {
  /** Enabled (CTRL_ACK.FAULTQ_EN). */
  enabled = false;
  /** Latched base at enable time. */
  readonly base: QueueBase = { pa: -1, log2: 0 };
  /** The hardware's PROD (idx + wrap). */
  prod = 0;
  /** The hardware's OVFLG (0 or 1). */
  ovflg = 0;
  /** Records written. */
  written = 0;
  /** Records dropped (disabled, bad base, full or overflow unacknowledged). */
  dropped = 0;
  /** Overflow episodes. */
  overflows = 0;

  constructor(
    private readonly mem: PhysMem,
    private readonly regs: RegisterFile,
    private readonly gerror: GlobalErrors,
  ) {}

  /** Latches base and PROD (software may set PROD while the queue is disabled), then enables. */
  enable(): void {
    decodeQueueBase(this.regs.hwRead32(REG_FAULTQ_BASE), this.regs.hwRead32(REG_FAULTQ_BASE + 4), FAULT_RECORD_BYTES, this.mem.size, this.base);
    const p = this.regs.hwRead32(REG_FAULTQ_PROD);
    this.prod = p & ((2 << this.base.log2) - 1);
    this.ovflg = p >>> 31;
    this.enabled = true;
    this.publish();
  }

  /** Disables the queue (PROD becomes writable by software again). */
  disable(): void {
    this.enabled = false;
  }

  /** While enabled: rewrites FAULTQ_PROD if software clobbered it. While disabled: adopts software's value. */
  restore(): void {
    if (!this.enabled) return;
    const v = (this.prod | (this.ovflg !== 0 ? FAULTQ_PROD_OVFLG : 0)) >>> 0;
    if (this.regs.hwRead32(REG_FAULTQ_PROD) !== v) this.regs.hwWrite32(REG_FAULTQ_PROD, v);
  }

  private publish(): void {
    this.regs.hwWrite32(REG_FAULTQ_PROD, (this.prod | (this.ovflg !== 0 ? FAULTQ_PROD_OVFLG : 0)) >>> 0);
  }

  /**
   * Writes one record (see codec `writeFaultRecord`), or drops it. Does not raise the interrupt
   * (the caller does, once per batch). Returns true when written; never throws.
   * @param pasid - -1 when the request had no PASID
   */
  push(type: number, reason: number, pasid: number, last: boolean, perm: number, rid: number, grpid: number, addr: number, detail: number): boolean {
    if (!this.enabled) {
      this.dropped++;
      return false;
    }
    const base = this.base;
    if (base.pa < 0) {
      this.gerror.raise(GERROR_FAULTQ_ABT);
      this.dropped++;
      return false;
    }
    const log2 = base.log2;
    const consReg = this.regs.hwRead32(REG_FAULTQ_CONS);
    if (consReg >>> 31 !== this.ovflg) {
      // Overflow not yet acknowledged: keep dropping.
      this.dropped++;
      return false;
    }
    if (qFull(this.prod, consReg, log2)) {
      this.ovflg ^= 1;
      this.overflows++;
      this.dropped++;
      this.publish();
      return false;
    }
    const w = (base.pa + qIdx(this.prod, log2) * FAULT_RECORD_BYTES) >>> 2;
    const u32 = this.mem.u32;
    writeFaultRecord(u32, w, type, reason, pasid, last, perm, rid, grpid, addr);
    u32[w + 6] = detail >>> 0;
    this.prod = qInc(this.prod, log2);
    this.written++;
    this.publish();
    return true;
  }

  /** Power-on state. */
  reset(): void {
    this.enabled = false;
    this.base.pa = -1;
    this.base.log2 = 0;
    this.prod = 0;
    this.ovflg = 0;
  }
}
