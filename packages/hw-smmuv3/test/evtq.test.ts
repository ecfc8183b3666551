/**
 * Event queue producer (smmuv3.md §5.3, §1.5 overflow, §12 #4): records written at
 * base + 32 × index(PROD), PROD published with OVFLG in bit 31, the event interrupt (wired
 * doorbell + MSI), overflow flag toggled once on entry into overflow, GERROR.EVTQ_ABT_ERR on a
 * write abort. Software is simulated as Linux's event thread (read PROD, pop at CONS, write CONS,
 * acknowledge overflow by copying OVFLG into CONS.OVACKFLG).
 */
import { describe, expect, it } from 'vitest';
import {
  CR0_EVTQEN,
  EvtId,
  GERROR_EVTQ_ABT_ERR,
  GERROR_MSI_EVTQ_ABT_ERR,
  IRQ_CTRL_EVTQ_IRQEN,
  SMMU_EVTQ_BASE,
  SMMU_EVTQ_CONS,
  SMMU_EVTQ_IRQ_CFG0,
  SMMU_EVTQ_IRQ_CFG1,
  SMMU_EVTQ_PROD,
  SMMU_GERROR,
  SMMU_GERRORN,
  fromDwords,
} from '../src/codec/index.js';
import { Rig } from './cmdq-rig.js';

/** An F_TRANSLATION record for SID `sid` (§5.4 example layout), InputAddr = `addr`. */
const rec = (sid: number, addr = 0x1234000): Uint32Array =>
  fromDwords([BigInt(EvtId.F_TRANSLATION) | (BigInt(sid) << 32n), 1n << 35n, BigInt(addr), 0n]);

/** The record at queue index `i` in memory, as dwords. */
function readRec(rig: Rig, i: number): bigint[] {
  const pa = rig.evtqBase + 32 * (i & ((1 << rig.evtqLog2) - 1));
  const out: bigint[] = [];
  for (let d = 0; d < 4; d++) out.push((BigInt(rig.mem.read32(pa + 8 * d + 4)) << 32n) | BigInt(rig.mem.read32(pa + 8 * d)));
  return out;
}

const prodReg = (rig: Rig) => rig.regs.read32(SMMU_EVTQ_PROD);

describe('§5.3 writing the event queue', () => {
  it('writes the 32-byte record at base + 32 × index(PROD) and publishes PROD', () => {
    const rig = new Rig();
    rig.setupEvtq(2);
    expect(rig.ctl.evtq.push(rec(5))).toBe(true);
    expect(rig.ctl.evtq.push(rec(6, 0x5000))).toBe(true);
    expect(prodReg(rig)).toBe(2);
    expect(readRec(rig, 0)).toEqual([0x0000000500000010n, 0x0000000800000000n, 0x1234000n, 0n]);
    expect(readRec(rig, 1)[0]).toBe(0x0000000600000010n);
    expect(readRec(rig, 1)[2]).toBe(0x5000n);
    expect(rig.ctl.evtq.stats.written).toBe(2);
  });

  it('push(rec, off) takes the record from an offset in a larger buffer', () => {
    const rig = new Rig();
    rig.setupEvtq(2);
    const buf = new Uint32Array(16);
    buf.set(rec(9), 8);
    rig.ctl.evtq.push(buf, 8);
    expect(readRec(rig, 0)[0]).toBe(0x0000000900000010n);
  });

  it('CR0.EVTQEN = 0: dropped silently (no PROD move, no error, no interrupt)', () => {
    const rig = new Rig();
    rig.regs.write32(0x20 /* CR0 */, 0);
    rig.regs.write32(SMMU_EVTQ_BASE, 0);
    const irq0 = rig.regs.irq.value;
    expect(rig.ctl.evtq.push(rec(1))).toBe(false);
    expect(prodReg(rig)).toBe(0);
    expect(rig.regs.read32(SMMU_GERROR)).toBe(0);
    expect(rig.regs.irq.value).toBe(irq0);
    expect(rig.ctl.evtq.stats.disabledDrops).toBe(1);
  });

  it('the event interrupt: doorbell only with IRQ_CTRL.EVTQ_IRQEN; MSI of EVTQ_IRQ_CFG1 at EVTQ_IRQ_CFG0', () => {
    const rig = new Rig();
    rig.setupEvtq(3);
    const irq0 = rig.regs.irq.value;
    rig.ctl.evtq.push(rec(1));
    expect(rig.regs.irq.value).toBe(irq0);
    const msiPage = rig.mem.allocFrame();
    rig.regs.write64(SMMU_EVTQ_IRQ_CFG0, msiPage + 4);
    rig.regs.write32(SMMU_EVTQ_IRQ_CFG1, 0x8765_4321);
    rig.regs.write32(0x50 /* IRQ_CTRL */, IRQ_CTRL_EVTQ_IRQEN);
    rig.ctl.evtq.push(rec(2));
    expect(rig.regs.irq.value).toBe(irq0 + 1);
    expect(rig.mem.read32(msiPage + 4)).toBe(0x8765_4321);
    expect(rig.ctl.irq.stats).toMatchObject({ evtq: 1, msiWrites: 1 });
  });

  it('an aborted event MSI raises GERROR.MSI_EVTQ_ABT_ERR; the record itself is written', () => {
    const rig = new Rig();
    rig.setupEvtq(3);
    rig.regs.write64(SMMU_EVTQ_IRQ_CFG0, rig.mem.size);
    rig.regs.write32(0x50, IRQ_CTRL_EVTQ_IRQEN);
    expect(rig.ctl.evtq.push(rec(3))).toBe(true);
    expect((rig.regs.read32(SMMU_GERROR) ^ rig.regs.read32(SMMU_GERRORN)) >>> 0).toBe(GERROR_MSI_EVTQ_ABT_ERR);
  });

  it('a queue outside PhysMem: the record is dropped, PROD does not move, GERROR.EVTQ_ABT_ERR once (toggle semantics)', () => {
    const rig = new Rig();
    rig.setupEvtq(4, rig.mem.size); // the (aligned) queue starts right after PhysMem
    expect(rig.ctl.evtq.push(rec(1))).toBe(false);
    expect(rig.ctl.evtq.push(rec(2))).toBe(false);
    expect(prodReg(rig)).toBe(0);
    expect(rig.regs.read32(SMMU_GERROR)).toBe(GERROR_EVTQ_ABT_ERR);
    expect(rig.ctl.gerror.raised).toBe(1);
    expect(rig.ctl.evtq.stats.abortDrops).toBe(2);
  });

  it('IHI 0070 §7.2.1: not writable while EVENTQ_ABT_ERR is active; writable again once acknowledged', () => {
    const rig = new Rig();
    rig.setupEvtq(4);
    rig.ctl.gerror.raise(GERROR_EVTQ_ABT_ERR);
    expect(rig.ctl.evtq.push(rec(1))).toBe(false);
    expect(prodReg(rig)).toBe(0);
    rig.regs.write32(SMMU_GERRORN, rig.regs.read32(SMMU_GERROR));
    expect(rig.ctl.evtq.push(rec(2))).toBe(true);
    expect(prodReg(rig)).toBe(1);
    expect(rig.mem.read32(rig.evtqBase)).toBe(rec(2)[0]);
  });

  it('IHI 0070 §6.3.29: the effective EVENTQ base is aligned down to the queue size (16 × 32 B = 512 B)', () => {
    const rig = new Rig();
    const q = rig.mem.allocFrames(1, 1);
    rig.setupEvtq(4, q + 0x1e0);
    expect(rig.ctl.evtq.basePa).toBe(q);
    expect(rig.ctl.evtq.push(rec(7))).toBe(true);
    expect(rig.mem.read32(q)).toBe(rec(7)[0]);
  });

  it('LOG2SIZE above IDR1.EVENTQS is treated as EVENTQS', () => {
    const rig = new Rig({ features: { evtqLog2: 1 } });
    rig.setupEvtq(7);
    expect(rig.ctl.evtq.log2).toBe(1);
    rig.evtqLog2 = 1;
    expect([rig.ctl.evtq.push(rec(1)), rig.ctl.evtq.push(rec(2)), rig.ctl.evtq.push(rec(3))]).toEqual([true, true, false]);
    expect(prodReg(rig) >>> 0).toBe(0x8000_0002); // index 0, wrap 1, OVFLG
  });

  it('EVTQ_PROD is latched at enable and owned by the SMMU while enabled', () => {
    const rig = new Rig();
    const base = rig.mem.allocFrame();
    rig.regs.write64(SMMU_EVTQ_BASE, base + 3);
    rig.regs.write32(SMMU_EVTQ_PROD, 5);
    rig.regs.write32(SMMU_EVTQ_CONS, 5);
    rig.cr0Set(CR0_EVTQEN);
    rig.evtqBase = base;
    rig.evtqLog2 = 3;
    rig.ctl.evtq.push(rec(1));
    expect(prodReg(rig)).toBe(6);
    expect(readRec(rig, 5)[0]).toBe(0x0000000100000010n);
    rig.regs.write32(SMMU_EVTQ_PROD, 0);
    expect(prodReg(rig)).toBe(6);
  });
});

describe('§1.5 / §12 #4 event-queue overflow', () => {
  it('OVFLG toggles once on entry into overflow; entries before stay; acknowledged by OVACKFLG; toggles again on the next overflow', () => {
    const rig = new Rig();
    rig.setupEvtq(2); // 4 entries
    const q = rig.ctl.evtq;
    for (let i = 0; i < 4; i++) expect(q.push(rec(0x10 + i))).toBe(true);
    expect(prodReg(rig)).toBe(4); // index 0, wrap 1: full
    const irqBefore = q.stats.overflows;
    expect(q.push(rec(0x20))).toBe(false); // entry into overflow
    expect(prodReg(rig) >>> 0).toBe(0x8000_0004);
    expect(q.stats.overflows).toBe(irqBefore + 1);
    expect(q.push(rec(0x21))).toBe(false); // still full: no second toggle
    expect(prodReg(rig) >>> 0).toBe(0x8000_0004);
    expect([0, 1, 2, 3].map((i) => Number(readRec(rig, i)[0] >> 32n))).toEqual([0x10, 0x11, 0x12, 0x13]);

    // Linux: sees OVFLG changed ("events lost"), drains two entries (writes CONS), not yet acknowledged.
    rig.regs.write32(SMMU_EVTQ_CONS, 2);
    expect(q.push(rec(0x30))).toBe(true); // space again: written even before the acknowledgement
    expect(prodReg(rig) >>> 0).toBe(0x8000_0005);
    expect(Number(readRec(rig, 0)[0] >> 32n)).toBe(0x30);
    // Still unacknowledged (OVFLG 1 ≠ OVACKFLG 0): a new overflow does not toggle.
    expect(q.push(rec(0x31))).toBe(true);
    expect(q.push(rec(0x32))).toBe(false);
    expect(prodReg(rig) >>> 0).toBe(0x8000_0006);
    expect(q.stats.overflows).toBe(1);

    // Drain everything and acknowledge: CONS = PROD with OVACKFLG = OVFLG.
    rig.regs.write32(SMMU_EVTQ_CONS, 0x8000_0006);
    for (let i = 0; i < 4; i++) expect(q.push(rec(0x40 + i))).toBe(true);
    expect(q.push(rec(0x50))).toBe(false); // entry into overflow again: OVFLG toggles back to 0
    expect(prodReg(rig) >>> 0).toBe(0x0000_0002);
    expect(q.stats).toMatchObject({ overflows: 2, overflowDrops: 4, written: 10 });
    // No GERROR for overflow.
    expect(rig.regs.read32(SMMU_GERROR)).toBe(0);
  });

  it('signals the event interrupt on entry into overflow (not on later drops)', () => {
    const rig = new Rig();
    rig.setupEvtq(1);
    rig.regs.write32(0x50, IRQ_CTRL_EVTQ_IRQEN);
    const q = rig.ctl.evtq;
    q.push(rec(1));
    q.push(rec(2));
    const irq0 = rig.regs.irq.value;
    q.push(rec(3));
    q.push(rec(4));
    expect(rig.regs.irq.value).toBe(irq0 + 1);
  });

  it('pending() counts unconsumed entries', () => {
    const rig = new Rig();
    rig.setupEvtq(3);
    for (let i = 0; i < 5; i++) rig.ctl.evtq.push(rec(i));
    rig.regs.write32(SMMU_EVTQ_CONS, 2);
    expect(rig.ctl.evtq.pending()).toBe(3);
  });
});
