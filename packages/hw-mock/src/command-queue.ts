/**
 * The command queue (CMDQ): 16-byte commands in a ring in PhysMem, consumed in order whenever
 * software moves CMDQ_PROD (doorbell → service). CONS is written once per drain.
 *
 * Errors halt the queue (SMMUv3 CERROR semantics): CMDQ_CONS keeps pointing at the bad command,
 * CMDQ_CONS.ERR holds the code (1 ILL unknown opcode, 2 BAD field / reserved bits, 3 ABT fetch
 * outside PhysMem), GERROR.CMDQ_ERR toggles and the interrupt is raised. Processing restarts at
 * CONS once software acknowledges through GERRORN (after fixing or replacing the command).
 */
import type { PhysMem, RegisterFile } from '@iommulab/runtime';
import { qEmpty, qIdx, qInc } from '@iommulab/runtime';
import {
  CMD_BYTES,
  CMD_INV_ALL,
  CMD_INV_DOMAIN,
  CMD_INV_DTE,
  CMD_INV_PASID,
  CMD_INV_RANGE,
  CMD_PAGE_RESP,
  CMD_SYNC,
  PAGE_RESP_FAILURE,
  PAGE_RESP_PASID_VALID,
  join52,
} from './codec.js';
import { decodeQueueBase, type QueueBase } from './fault-queue.js';
import type { GlobalErrors } from './gerror.js';
import {
  CMDQ_CONS_ERR_SHIFT,
  CMDQ_ERR_ABT,
  CMDQ_ERR_BAD,
  CMDQ_ERR_ILL,
  CMDQ_ERR_NONE,
  GERROR_CMDQ_ERR,
  REG_CMDQ_BASE,
  REG_CMDQ_CONS,
  REG_CMDQ_PROD,
  REG_SYNC_SEQ,
} from './regs.js';

/** What commands act on (implemented by the hardware model). */
export interface CommandSink {
  /** CMD_INV_ALL: every IOTLB entry and config cache. */
  invAll(): void;
  /** CMD_INV_DOMAIN. */
  invDomain(domainId: number): void;
  /** CMD_INV_RANGE: IO pages [firstPage, firstPage + pages). */
  invRange(domainId: number, firstPage: number, pages: number): void;
  /** CMD_INV_DTE (also drops the RID's cached PASID entries). */
  invDte(rid: number): void;
  /** CMD_INV_PASID. */
  invPasid(rid: number, pasid: number): void;
  /** CMD_PAGE_RESP (`pasid` -1 when not valid). */
  pageResponse(rid: number, pasid: number, grpid: number, code: number): void;
}

/** The command-queue consumer (hardware side). */
export class CommandQueue {
  /** Enabled (CTRL_ACK.CMDQ_EN). */
  enabled = false;
  /** Latched base at enable time. */
  readonly base: QueueBase = { pa: -1, log2: 0 };
  /** The hardware's CONS (idx + wrap). */
  cons = 0;
  /** Error code of the last halt (kept in CMDQ_CONS.ERR until processing resumes). */
  err = CMDQ_ERR_NONE;
  /** Completed CMD_SYNCs (SYNC_SEQ). */
  syncSeq = 0;
  /** Commands executed. */
  commands = 0;
  /** CMD_SYNCs executed. */
  syncs = 0;
  /** Halts on errors. */
  errors = 0;
  private irqPending = false;

  constructor(
    private readonly mem: PhysMem,
    private readonly regs: RegisterFile,
    private readonly gerror: GlobalErrors,
    private readonly sink: CommandSink,
  ) {}

  /** Latches base and CONS (software may set CONS while the queue is disabled), then enables. */
  enable(): void {
    decodeQueueBase(this.regs.hwRead32(REG_CMDQ_BASE), this.regs.hwRead32(REG_CMDQ_BASE + 4), CMD_BYTES, this.mem.size, this.base);
    this.cons = this.regs.hwRead32(REG_CMDQ_CONS) & ((2 << this.base.log2) - 1);
    this.err = CMDQ_ERR_NONE;
    this.enabled = true;
    this.publish();
  }

  /** Disables the queue (CONS becomes writable by software again). */
  disable(): void {
    this.enabled = false;
  }

  private publish(): void {
    this.regs.hwWrite32(REG_CMDQ_CONS, (this.cons | (this.err << CMDQ_CONS_ERR_SHIFT)) >>> 0);
  }

  /** Rewrites the hardware-owned registers (CONS while enabled, SYNC_SEQ) if software clobbered them. */
  restore(): void {
    if (this.enabled) {
      const v = (this.cons | (this.err << CMDQ_CONS_ERR_SHIFT)) >>> 0;
      if (this.regs.hwRead32(REG_CMDQ_CONS) !== v) this.regs.hwWrite32(REG_CMDQ_CONS, v);
    }
    if (this.regs.hwRead32(REG_SYNC_SEQ) !== this.syncSeq) this.regs.hwWrite32(REG_SYNC_SEQ, this.syncSeq);
  }

  /**
   * Executes commands from CONS up to PROD (as read once at entry). Stops at the first error.
   * @returns the number of commands executed
   */
  process(): number {
    if (!this.enabled || this.gerror.active(GERROR_CMDQ_ERR)) return 0;
    const log2 = this.base.log2;
    const prod = this.regs.hwRead32(REG_CMDQ_PROD);
    let cons = this.cons;
    if (qEmpty(prod, cons, log2)) {
      if (this.err !== CMDQ_ERR_NONE) {
        this.err = CMDQ_ERR_NONE;
        this.publish();
      }
      return 0;
    }
    this.err = CMDQ_ERR_NONE;
    let n = 0;
    let err = CMDQ_ERR_NONE;
    const basePa = this.base.pa;
    while (!qEmpty(prod, cons, log2)) {
      if (basePa < 0) {
        err = CMDQ_ERR_ABT;
        break;
      }
      err = this.execute((basePa + qIdx(cons, log2) * CMD_BYTES) >>> 2);
      if (err !== CMDQ_ERR_NONE) break;
      cons = qInc(cons, log2);
      n++;
    }
    this.cons = cons;
    this.commands += n;
    if (err !== CMDQ_ERR_NONE) {
      this.err = err;
      this.errors++;
      this.publish(); // CONS (pointing at the bad command) before GERROR: software reads them in that order
      this.gerror.raise(GERROR_CMDQ_ERR);
      this.irqPending = true;
    } else {
      this.publish();
    }
    if (this.irqPending) {
      this.irqPending = false;
      this.regs.raiseIrq();
    }
    return n;
  }

  /** Executes the command at word index `w`; returns a CMDQ error code (0 = done). */
  private execute(w: number): number {
    const u32 = this.mem.u32;
    const w0 = u32[w]!;
    const w1 = u32[w + 1]!;
    const w2 = u32[w + 2]!;
    const w3 = u32[w + 3]!;
    const sink = this.sink;
    switch (w0 & 0xff) {
      case CMD_INV_ALL:
        if ((w0 & 0xffff_ff00) !== 0 || (w1 | w2 | w3) !== 0) return CMDQ_ERR_BAD;
        sink.invAll();
        return CMDQ_ERR_NONE;
      case CMD_INV_DOMAIN:
        if ((w0 & 0xff00) !== 0 || (w1 | w2 | w3) !== 0) return CMDQ_ERR_BAD;
        sink.invDomain(w0 >>> 16);
        return CMDQ_ERR_NONE;
      case CMD_INV_RANGE:
        if ((w0 & 0xff00) !== 0 || w1 === 0 || (w2 & 0x7ff) !== 0 || (w3 & 0xfff0_0000) !== 0) return CMDQ_ERR_BAD;
        sink.invRange(w0 >>> 16, join52(w2, w3) / 2048, w1 >>> 0);
        return CMDQ_ERR_NONE;
      case CMD_INV_DTE:
        if ((w0 & 0xffff_ff00) !== 0 || w1 > 0xffff || (w2 | w3) !== 0) return CMDQ_ERR_BAD;
        sink.invDte(w1);
        return CMDQ_ERR_NONE;
      case CMD_INV_PASID:
        if ((w0 & 0xffff_ff00) !== 0 || w1 > 0xffff || w2 > 0xfffff || w3 !== 0) return CMDQ_ERR_BAD;
        sink.invPasid(w1, w2);
        return CMDQ_ERR_NONE;
      case CMD_SYNC: {
        if ((w0 & 0xffff_ff00) !== 0 || (w2 & 3) !== 0 || (w3 & 0xfff0_0000) !== 0) return CMDQ_ERR_BAD;
        const addr = join52(w2, w3);
        if (addr !== 0) {
          if (addr + 4 > this.mem.size) return CMDQ_ERR_BAD;
          Atomics.store(this.mem.i32, addr >>> 2, w1 | 0);
          Atomics.notify(this.mem.i32, addr >>> 2);
        }
        this.syncSeq = (this.syncSeq + 1) >>> 0;
        this.regs.hwWrite32(REG_SYNC_SEQ, this.syncSeq);
        this.syncs++;
        this.irqPending = true;
        return CMDQ_ERR_NONE;
      }
      case CMD_PAGE_RESP: {
        const code = w0 >>> 16;
        if ((w0 & 0xff00) !== 0 || code > PAGE_RESP_FAILURE || w1 > 0xffff || (w2 & 0x7ff0_0000) !== 0 || w3 > 0x1ff) {
          return CMDQ_ERR_BAD;
        }
        sink.pageResponse(w1, (w2 & PAGE_RESP_PASID_VALID) !== 0 ? w2 & 0xfffff : -1, w3, code);
        return CMDQ_ERR_NONE;
      }
      default:
        return CMDQ_ERR_ILL;
    }
  }

  /** Power-on state. */
  reset(): void {
    this.enabled = false;
    this.base.pa = -1;
    this.base.log2 = 0;
    this.cons = 0;
    this.err = CMDQ_ERR_NONE;
    this.syncSeq = 0;
    this.irqPending = false;
  }
}
