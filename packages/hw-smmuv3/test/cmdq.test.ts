/**
 * Command-queue consumer behaviour (smmuv3.md §1.5 queues and CMDQ_CONS.ERR, §4.5 CMD_SYNC,
 * §4.6 errors, §1.3 GERROR): everything driven as software would, through register writes and
 * commands in PhysMem.
 */
import { describe, expect, it } from 'vitest';
import {
  CERROR_ABT,
  CERROR_ATC_INV_SYNC,
  CERROR_ILL,
  CR0_CMDQEN,
  CmdOp,
  GERROR_CMDQ_ERR,
  GERROR_MSI_CMDQ_ABT_ERR,
  SH_ISH,
  SMMU_CMDQ_BASE,
  SMMU_CMDQ_CONS,
  SMMU_CMDQ_PROD,
  SMMU_GERROR,
  SMMU_GERRORN,
  SyncCs,
} from '../src/codec/index.js';
import { Rig } from './cmdq-rig.js';

const NSNH = { OPCODE: CmdOp.TLBI_NSNH_ALL };
const SYNC_SEV = { OPCODE: CmdOp.SYNC, CS: SyncCs.SEV, MSH: SH_ISH, MSIATTR: 0xf };
const cfgiSte = (sid: number) => ({ OPCODE: CmdOp.CFGI_STE, SID: sid, LEAF: 1 });

function gerrorActive(rig: Rig): number {
  return (rig.regs.read32(SMMU_GERROR) ^ rig.regs.read32(SMMU_GERRORN)) >>> 0;
}

/** Acknowledges every active global error as Linux does: GERRORN = GERROR. */
function ackGerror(rig: Rig): void {
  rig.regs.write32(SMMU_GERRORN, rig.regs.read32(SMMU_GERROR));
}

describe('§1.5 consumption, PROD/CONS format and wrap', () => {
  it('executes commands in order from CONS to PROD; CONS = PROD afterwards', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    rig.cmd(cfgiSte(1));
    rig.cmd(cfgiSte(2));
    rig.cmd(cfgiSte(3));
    rig.cmd(SYNC_SEV);
    expect(rig.target.calls).toEqual([]); // nothing before the PROD doorbell
    rig.publish();
    expect(rig.target.calls.map((c) => c.sid)).toEqual([1, 2, 3]);
    expect(rig.target.log).toEqual([`cmd:${CmdOp.CFGI_STE}`, `cmd:${CmdOp.CFGI_STE}`, `cmd:${CmdOp.CFGI_STE}`, 'sync']);
    expect(rig.cons).toBe(4);
    expect(rig.ctl.cmdq.stats).toMatchObject({ commands: 4, syncs: 1, errors: 0 });
  });

  it('wraps around a 4-entry ring: the wrap bit (bit 2) toggles at each lap, index = bits [1:0]', () => {
    const rig = new Rig();
    rig.setupCmdq(2);
    const consSeen: number[] = [];
    let sid = 0;
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 3; i++) rig.cmd(cfgiSte(sid++));
      rig.publish();
      consSeen.push(rig.cons);
    }
    expect(rig.target.calls.map((c) => c.sid)).toEqual([...Array(15).keys()]);
    // 3, 6, 9, 12, 15 commands consumed: (n mod 4) | ((n div 4) mod 2) << 2
    expect(consSeen).toEqual([3, 4 | 2, 1, 4 | 0, 4 | 3]);
    // Each command saw its own queue index (idx | wrap).
    expect(rig.target.calls.slice(3, 6).map((c) => c.index)).toEqual([3, 4 | 0, 4 | 1]);
  });

  it('a full ring (same index, different wrap) is consumed completely: one lap per call', () => {
    const rig = new Rig();
    rig.setupCmdq(3);
    for (let i = 0; i < 8; i++) rig.cmd(cfgiSte(i));
    expect(rig.prod).toBe(8); // index 0, wrap 1: full
    rig.publish();
    expect(rig.target.calls.length).toBe(8);
    expect(rig.cons).toBe(8);
  });

  it('LOG2SIZE above IDR1.CMDQS is treated as CMDQS', () => {
    const rig = new Rig({ features: { cmdqLog2: 3 } });
    const base = rig.mem.allocFrames(1);
    rig.regs.write64(SMMU_CMDQ_BASE, base + 10); // LOG2SIZE 10 requested
    rig.regs.write32(SMMU_CMDQ_PROD, 0);
    rig.regs.write32(SMMU_CMDQ_CONS, 0);
    rig.cr0Set(CR0_CMDQEN);
    expect(rig.ctl.cmdq.log2).toBe(3);
    rig.cmdqBase = base;
    rig.cmdqLog2 = 3;
    for (let i = 0; i < 10; i++) rig.cmd(cfgiSte(i)); // slots 0..7 then 0..1 again (index wraps at 8)
    rig.prod = 8; // full: 8 commands (slots 0..7 hold sids 8, 9, 2..7)
    rig.publish();
    expect(rig.target.calls.map((c) => c.sid)).toEqual([8, 9, 2, 3, 4, 5, 6, 7]);
    expect(rig.cons).toBe(8);
  });

  it('PROD bits above the wrap bit are ignored', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    rig.cmd(cfgiSte(7));
    rig.regs.write32(SMMU_CMDQ_PROD, 0x7fff_ffe0 | rig.prod);
    expect(rig.target.calls.map((c) => c.sid)).toEqual([7]);
    expect(rig.cons).toBe(1);
  });

  it('nothing is consumed while CR0.CMDQEN = 0; enabling latches BASE and CONS and consumes up to PROD', () => {
    const rig = new Rig();
    rig.cmdqLog2 = 4;
    rig.cmdqBase = rig.mem.allocFrames(1);
    rig.regs.write64(SMMU_CMDQ_BASE, rig.cmdqBase + 4);
    rig.regs.write32(SMMU_CMDQ_CONS, 2);
    rig.prod = 2;
    rig.cmd(cfgiSte(1));
    rig.cmd(cfgiSte(2));
    rig.publish();
    expect(rig.target.calls).toEqual([]);
    rig.cr0Set(CR0_CMDQEN);
    expect(rig.target.calls.map((c) => c.sid)).toEqual([1, 2]);
    expect(rig.cons).toBe(4);
  });

  it('CMDQ_CONS is writable by software only while CMDQEN = 0', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    rig.cmd(cfgiSte(1));
    rig.publish();
    rig.regs.write32(SMMU_CMDQ_CONS, 9); // ignored: the SMMU owns CONS while enabled
    expect(rig.cons).toBe(1);
    rig.cr0Clear(CR0_CMDQEN);
    rig.regs.write32(SMMU_CMDQ_CONS, 5);
    expect(rig.cons).toBe(5);
    rig.prod = 5;
    rig.cmd(cfgiSte(6));
    rig.publish();
    rig.cr0Set(CR0_CMDQEN);
    expect(rig.target.calls.map((c) => c.sid)).toEqual([1, 6]);
    expect(rig.cons).toBe(6);
  });

  it('CMDQ_BASE written while enabled takes effect only at the next enable', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    const other = rig.mem.allocFrames(1);
    rig.regs.write64(SMMU_CMDQ_BASE, other + 4);
    rig.cmd(cfgiSte(3)); // written in the old ring
    rig.publish();
    expect(rig.target.calls.map((c) => c.sid)).toEqual([3]);
  });
});

describe('§1.5 / §4.6 errors: halt, GERRORN acknowledgement, resume', () => {
  it('CERROR_ILL: CONS stays at the command with ERR = 1, GERROR.CMDQ_ERR toggles, later commands wait', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    rig.cmd(cfgiSte(1));
    rig.cmd({ OPCODE: 0x07 });
    rig.cmd(cfgiSte(3));
    rig.publish();
    expect(rig.cons).toBe((CERROR_ILL << 24) | 1);
    expect(rig.regs.read32(SMMU_GERROR)).toBe(GERROR_CMDQ_ERR);
    expect(gerrorActive(rig)).toBe(GERROR_CMDQ_ERR);
    expect(rig.target.calls.map((c) => c.sid)).toEqual([1]);
    // More commands and PROD writes do nothing while halted.
    rig.cmd(cfgiSte(4));
    rig.publish();
    expect(rig.target.calls.length).toBe(1);
    expect(rig.cons).toBe((CERROR_ILL << 24) | 1);
    expect(rig.ctl.cmdq.stats).toMatchObject({ errors: 1, ill: 1 });
  });

  it('acknowledging without fixing the command re-fetches it and halts again (GERROR toggles back)', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    rig.cmd({ OPCODE: 0xff });
    rig.publish();
    expect(rig.regs.read32(SMMU_GERROR)).toBe(1);
    ackGerror(rig);
    expect(rig.regs.read32(SMMU_GERRORN)).toBe(1);
    // Retried at once (the GERRORN write is a doorbell): ILL again, GERROR toggled to 0 ≠ GERRORN 1.
    expect(rig.regs.read32(SMMU_GERROR)).toBe(0);
    expect(gerrorActive(rig)).toBe(GERROR_CMDQ_ERR);
    expect(rig.cons).toBe((CERROR_ILL << 24) | 0);
    expect(rig.ctl.cmdq.stats.ill).toBe(2);
  });

  it('Linux ILL recovery: overwrite the bad slot with a CMD_SYNC, ack GERRORN → the queue resumes, ERR cleared', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    rig.cmd(cfgiSte(1));
    const bad = rig.cmd({ OPCODE: CmdOp.TLBI_NSNH_ALL, SSEC: 1 });
    rig.cmd(cfgiSte(3));
    rig.cmd(SYNC_SEV);
    rig.publish();
    const cons = rig.cons;
    expect(cons >>> 24).toBe(CERROR_ILL);
    expect(cons & 0xff).toBe(bad);
    // Linux arm_smmu_cmdq_skip_err: the slot at CONS.index becomes a CMD_SYNC.
    const sync = new Uint32Array([0x46 | (SyncCs.SEV << 12), 0, 0, 0]);
    for (let i = 0; i < 4; i++) rig.mem.write32(rig.slot(cons & 0xf) + 4 * i, sync[i]);
    ackGerror(rig);
    expect(gerrorActive(rig)).toBe(0);
    expect(rig.cons).toBe(4);
    expect(rig.target.calls.map((c) => c.sid)).toEqual([1, 3]);
    expect(rig.ctl.cmdq.stats.syncs).toBe(2);
  });

  it('CERROR_ABT: a ring outside PhysMem aborts at the entry CONS points at (no throw); ack retries', () => {
    const rig = new Rig();
    rig.setupCmdq(4, rig.mem.size); // the aligned ring starts right after PhysMem
    rig.prod = 2;
    rig.publish();
    expect(rig.target.calls).toEqual([]);
    expect(rig.cons).toBe((CERROR_ABT << 24) | 0);
    expect(gerrorActive(rig)).toBe(GERROR_CMDQ_ERR);
    ackGerror(rig);
    expect(rig.cons).toBe((CERROR_ABT << 24) | 0); // fetch retried, aborted again
    expect(rig.ctl.cmdq.stats.abt).toBe(2);
  });

  it('IHI 0070 §6.3.26: the effective CMDQ base is aligned down to the larger of the queue size or 32 bytes', () => {
    const rig = new Rig();
    const q = rig.mem.allocFrames(1, 1); // 4 KiB-aligned
    // 16 entries = 256 bytes: ADDR = q + 0xe0 is used as q.
    rig.regs.write64(SMMU_CMDQ_BASE, q + 0xe0 + 4);
    rig.regs.write32(SMMU_CMDQ_PROD, 0);
    rig.regs.write32(SMMU_CMDQ_CONS, 0);
    rig.cr0Set(CR0_CMDQEN);
    expect(rig.ctl.cmdq.basePa).toBe(q);
    rig.mem.write32(q, CmdOp.CFGI_STE);
    rig.mem.write32(q + 4, 9);
    rig.mem.write32(q + 8, 1);
    rig.regs.write32(SMMU_CMDQ_PROD, 1);
    expect(rig.target.calls.map((c) => c.sid)).toEqual([9]);
    // 4 entries = 64 bytes: ADDR q + 0x20 → q.
    rig.cr0Clear(CR0_CMDQEN);
    rig.regs.write64(SMMU_CMDQ_BASE, q + 0x20 + 2);
    rig.cr0Set(CR0_CMDQEN);
    expect(rig.ctl.cmdq.basePa).toBe(q);
    // One entry (LOG2SIZE 0, 16 bytes): the 32-byte minimum alignment keeps q + 0x20.
    rig.cr0Clear(CR0_CMDQEN);
    rig.regs.write64(SMMU_CMDQ_BASE, q + 0x20);
    rig.cr0Set(CR0_CMDQEN);
    expect(rig.ctl.cmdq.basePa).toBe(q + 0x20);
  });

  it('CERROR_ABT: a base with address bits above PhysMem (bit 40) is not wrapped into memory', () => {
    const rig = new Rig();
    rig.regs.write64(SMMU_CMDQ_BASE, 2 ** 40 + 4);
    rig.regs.write32(SMMU_CMDQ_PROD, 3);
    rig.cr0Set(CR0_CMDQEN);
    expect(rig.cons).toBe((CERROR_ABT << 24) | 0);
    expect(rig.target.calls).toEqual([]);
  });

  it('an absurd LOG2SIZE (31) with a small PhysMem is clamped to CMDQS and bounded: abort, no hang, no throw', () => {
    const rig = new Rig({ memBytes: 1 << 20 });
    rig.regs.write64(SMMU_CMDQ_BASE, 0x8_0000 + 31);
    rig.regs.write32(SMMU_CMDQ_PROD, 0x8_0000 | 0x7ffff); // full ring of 2^19 entries, almost all beyond PhysMem
    rig.cr0Set(CR0_CMDQEN);
    expect(rig.ctl.cmdq.log2).toBe(19);
    // IHI 0070 §6.3.26: the base is aligned to the (capped) queue size, 8 MiB: 0x8_0000 → 0.
    expect(rig.ctl.cmdq.basePa).toBe(0);
    // memory is zero: opcode 0 at entry 0 → ILL before ever reaching the end of memory
    expect(rig.cons).toBe((CERROR_ILL << 24) | 0);
    // Fill every in-memory slot with a legal command: consumption stops at the first slot beyond PhysMem.
    const slots = rig.mem.size / 16;
    for (let i = 0; i < slots; i++) rig.mem.write32(16 * i, CmdOp.TLBI_NSNH_ALL);
    ackGerror(rig);
    expect(rig.target.calls.length).toBe(slots);
    expect(rig.cons).toBe(((CERROR_ABT << 24) | slots) >>> 0);
  });

  it('CERROR_ATC_INV_SYNC: a CMD_SYNC whose ATC invalidations failed halts at the sync; ack retries it', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    rig.target.pending = CERROR_ATC_INV_SYNC;
    rig.cmd({ OPCODE: CmdOp.ATC_INV, SID: 1, ATC_SIZE: 52 });
    rig.cmd(SYNC_SEV);
    rig.publish();
    expect(rig.cons).toBe((CERROR_ATC_INV_SYNC << 24) | 1);
    expect(rig.ctl.cmdq.stats.syncs).toBe(0);
    rig.target.pending = 0;
    ackGerror(rig);
    expect(rig.cons).toBe(2);
    expect(rig.ctl.cmdq.stats).toMatchObject({ syncs: 1, atcInvSync: 1 });
  });

  it('an error code returned by the target halts the queue at that command with that code', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    rig.target.fail.set(CmdOp.CFGI_CD, CERROR_ILL);
    rig.cmd(cfgiSte(1));
    rig.cmd({ OPCODE: CmdOp.CFGI_CD, SID: 2 });
    rig.publish();
    expect(rig.cons).toBe((CERROR_ILL << 24) | 1);
  });

  it('a GERRORN write toggling a non-active bit is ignored (register put back; the queue keeps running)', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    rig.regs.write32(SMMU_GERRORN, GERROR_CMDQ_ERR | 0x10000);
    expect(rig.regs.read32(SMMU_GERRORN)).toBe(0);
    rig.cmd(cfgiSte(1));
    rig.publish();
    expect(rig.cons).toBe(1);
  });
});

describe('§4.5 CMD_SYNC completion', () => {
  it('CONS is published at each CMD_SYNC: a command after a sync sees CONS past the sync', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    const seen: number[] = [];
    const exec = rig.target.execute.bind(rig.target);
    rig.target.execute = (e) => {
      seen.push(rig.regs.read32(SMMU_CMDQ_CONS));
      return exec(e);
    };
    rig.cmd(cfgiSte(1));
    rig.cmd(SYNC_SEV);
    rig.cmd(cfgiSte(2));
    rig.publish();
    expect(seen).toEqual([0, 2]);
    expect(rig.cons).toBe(3);
  });

  it('CS = NONE: CONS advances past it, the irq doorbell rings, no memory write', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    const irq0 = rig.regs.irq.value;
    const at = rig.cmd({ OPCODE: CmdOp.SYNC, CS: SyncCs.NONE, MSIDATA: 0x1234, MSIADDR: 0x3000 });
    rig.publish();
    expect(rig.cons).toBe(at + 1);
    expect(rig.regs.irq.value).toBe(irq0 + 1);
    expect(rig.mem.read32(0x3000)).toBe(0);
    expect(rig.ctl.cmdq.stats).toMatchObject({ syncs: 1, sev: 0, syncMsi: 0 });
  });

  it('CS = SEV: counted as a SEV and wakes a waiter on the irq doorbell', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    const irq0 = rig.regs.irq.value;
    rig.cmd(SYNC_SEV);
    rig.cmd(SYNC_SEV);
    rig.publish();
    expect(rig.regs.irq.value).toBe(irq0 + 2);
    expect(rig.ctl.cmdq.stats).toMatchObject({ syncs: 2, sev: 2 });
  });

  it('CS = IRQ, Linux MSI-poll: MSIData 0 written over the first word of the CMD_SYNC entry itself', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    rig.cmd(cfgiSte(1));
    const slotPa = rig.slot(rig.prod);
    rig.cmd({ OPCODE: CmdOp.SYNC, CS: SyncCs.IRQ, MSH: SH_ISH, MSIATTR: 0xf, MSIDATA: 0, MSIADDR: slotPa });
    expect(rig.mem.read32(slotPa)).toBe(0x0fc01046);
    rig.publish();
    expect(rig.mem.read32(slotPa)).toBe(0);
    expect(rig.cons).toBe(2);
    expect(rig.ctl.cmdq.stats.syncMsi).toBe(1);
  });

  it('CS = IRQ: the 32-bit MSIData is written at MSIAddress (4-byte aligned, anywhere in PhysMem)', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    const page = rig.mem.allocFrame();
    rig.mem.write32(page + 8, 0x11111111);
    rig.mem.write32(page + 12, 0x22222222);
    rig.cmd({ OPCODE: CmdOp.SYNC, CS: SyncCs.IRQ, MSIDATA: 0xdead_beef, MSIADDR: page + 8 });
    rig.publish();
    expect(rig.mem.read32(page + 8)).toBe(0xdead_beef);
    expect(rig.mem.read32(page + 12)).toBe(0x22222222);
  });

  it('CS = IRQ with MSIAddress = 0: no MSI write (IHI 0070 §4.7.3 "if MSIAddress is non-zero"), no abort', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    rig.mem.write32(0, 0x5555_5555);
    rig.cmd({ OPCODE: CmdOp.SYNC, CS: SyncCs.IRQ, MSIDATA: 0xabcd, MSIADDR: 0 });
    rig.publish();
    expect(rig.cons).toBe(1);
    expect(rig.mem.read32(0)).toBe(0x5555_5555);
    expect(rig.ctl.cmdq.stats).toMatchObject({ syncs: 1, syncMsi: 0 });
    expect(gerrorActive(rig)).toBe(0);
  });

  it('CS = IRQ with MSIAddress outside PhysMem: GERROR.MSI_CMDQ_ABT_ERR, the sync still completes', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    rig.cmd({ OPCODE: CmdOp.SYNC, CS: SyncCs.IRQ, MSIDATA: 1, MSIADDR: 2 ** 47 }); // inside the 48-bit OAS, outside PhysMem
    rig.publish();
    expect(rig.cons).toBe(1);
    expect(gerrorActive(rig)).toBe(GERROR_MSI_CMDQ_ABT_ERR);
    expect(rig.ctl.irq.stats.msiAborts).toBe(1);
    // MSI_CMDQ_ABT_ERR does not halt the queue.
    rig.cmd(cfgiSte(1));
    rig.publish();
    expect(rig.cons).toBe(2);
  });

  it('CS = IRQ without IDR0.MSI: completes (doorbell) without a memory write', () => {
    const rig = new Rig({ features: { msi: false } });
    rig.setupCmdq(4);
    const page = rig.mem.allocFrame();
    rig.mem.write32(page, 0x5555);
    rig.cmd({ OPCODE: CmdOp.SYNC, CS: SyncCs.IRQ, MSIDATA: 0, MSIADDR: page });
    rig.publish();
    expect(rig.mem.read32(page)).toBe(0x5555);
    expect(rig.cons).toBe(1);
  });

  it('syncPending() is asked before the sync completes, after every earlier command ran', () => {
    const rig = new Rig();
    rig.setupCmdq(4);
    rig.cmd(cfgiSte(1));
    rig.cmd({ OPCODE: CmdOp.ATC_INV, SID: 1, ATC_SIZE: 52 });
    rig.cmd(SYNC_SEV);
    rig.publish();
    expect(rig.target.log).toEqual([`cmd:${CmdOp.CFGI_STE}`, `cmd:${CmdOp.ATC_INV}`, 'sync']);
  });
});
