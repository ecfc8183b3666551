import { FaultReason } from '@iommulab/driver-api';
import { ACCESS_EXEC, ACCESS_READ, ACCESS_WRITE, PhysMem, RegisterFile, dmaRequest, dmaResult } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import {
  CMD_INV_ALL,
  CMD_INV_DOMAIN,
  CMD_INV_DTE,
  CMD_INV_PASID,
  CMD_INV_RANGE,
  CMD_PAGE_RESP,
  FAULT_TYPE_FAULT,
  FAULT_TYPE_PAGE_REQ,
  MockFaultDetail,
  PTE_A,
  PTE_D,
} from '../src/codec.js';
import { MOCK_APERTURE_START } from '../src/constants.js';
import { MockHardware } from '../src/hardware.js';
import {
  CAP_DIRTY,
  CAP_HUGE,
  CAP_PASID,
  CAP_PRI,
  CMDQ_ERR_ABT,
  CMDQ_ERR_BAD,
  CMDQ_ERR_ILL,
  CTRL_CMDQ_EN,
  CTRL_EN,
  CTRL_FAULTQ_EN,
  GERROR_CMDQ_ERR,
  GERROR_FAULTQ_ABT,
  MOCK_IDR,
  REG_CAP,
  REG_CMDQ_BASE,
  REG_CMDQ_CONS,
  REG_CMDQ_PROD,
  REG_CTRL,
  REG_CTRL_ACK,
  REG_DT_BASE,
  REG_DT_LOG2,
  REG_FAULTQ_BASE,
  REG_FAULTQ_PROD,
  REG_GERROR,
  REG_GERRORN,
  REG_IDR,
  REG_SYNC_SEQ,
  REG_VERSION,
} from '../src/regs.js';
import { Rig } from './rig.js';

const A = MOCK_APERTURE_START;
const MiB = 1 << 20;

/** A rig with RID 1 attached to domain 5 whose table maps [A, A+16 KiB) -> pa. */
function attached(opts: { dirty?: boolean; pri?: boolean } = {}) {
  const r = new Rig();
  const pt = r.newTable();
  const pa = r.mem.allocFrames(4);
  pt.map(A, pa, 16384, 3);
  r.setDte(1, { domainId: 5, root: pt.root, dirtyEnable: opts.dirty ?? false, priEnable: opts.pri ?? false });
  return { r, pt, pa };
}

describe('registers', () => {
  it('identify and apply CTRL', () => {
    const r = new Rig();
    expect(r.regs.read32(REG_IDR)).toBe(MOCK_IDR);
    expect(r.regs.read32(REG_VERSION)).toBe(1);
    const cap = r.regs.read32(REG_CAP);
    expect(cap & (CAP_PASID | CAP_DIRTY | CAP_PRI | CAP_HUGE)).toBe(0xf);
    expect((cap >>> 8) & 0xff).toBe(20);
    expect((cap >>> 16) & 0xff).toBe(12);
    expect(r.regs.read32(REG_CTRL_ACK)).toBe(CTRL_EN | CTRL_CMDQ_EN | CTRL_FAULTQ_EN);
  });
  it('read-only registers survive software writes', () => {
    const r = new Rig();
    r.regs.write32(REG_IDR, 0);
    r.regs.write32(REG_CTRL_ACK, 0);
    r.regs.write32(REG_CMDQ_CONS, 77);
    r.regs.write32(REG_GERROR, 3);
    expect(r.regs.read32(REG_IDR)).toBe(MOCK_IDR);
    expect(r.regs.read32(REG_CTRL_ACK)).toBe(7);
    expect(r.regs.read32(REG_CMDQ_CONS)).toBe(0);
    expect(r.regs.read32(REG_GERROR)).toBe(0);
  });
  it('options narrow CAP', () => {
    const r = new Rig({ hw: { pasid: false, pri: false, iotlbEntries: 256 } });
    const cap = r.regs.read32(REG_CAP);
    expect(cap & 0xff).toBe(CAP_DIRTY | CAP_HUGE);
    expect((cap >>> 16) & 0xff).toBe(8);
  });
});

describe('translation', () => {
  it('walks 2 KiB pages and 1 MiB leaves', () => {
    const r = new Rig();
    const pt = r.newTable();
    const small = r.mem.allocFrame();
    const huge = r.mem.allocFrames(256, 256); // 1 MiB aligned
    pt.map(A + 0x800, small + 0x800, 0x800, 1);
    pt.map(A + 3 * MiB, huge, MiB, 3);
    r.setDte(2, { domainId: 9, root: pt.root });
    expect(r.translate(2, A + 0x800 + 0x123)).toEqual({ ok: true, pa: small + 0x923, fault: 0, faultDetail: 0 });
    expect(r.translate(2, A + 3 * MiB + 0x7_6543, ACCESS_WRITE)).toEqual({ ok: true, pa: huge + 0x7_6543, fault: 0, faultDetail: 0 });
    expect(pt.walk(A + 3 * MiB + 5)).toMatchObject({ iova: A + 3 * MiB, pa: huge, size: MiB, prot: 3, accessed: true });
    expect(r.translate(2, A)).toMatchObject({ ok: false, fault: FaultReason.TRANSLATION, faultDetail: MockFaultDetail.L2_INVALID });
    expect(r.translate(2, A + MiB)).toMatchObject({ ok: false, fault: FaultReason.TRANSLATION, faultDetail: MockFaultDetail.L1_INVALID });
    const s = r.hw.stats();
    expect(s.walks).toBe(4);
    expect(s.walkReads).toBe(2 + 1 + 2 + 1);
  });

  it('a 1 MiB leaf is cached whole: one walk serves all 512 IO pages, and any range inside it invalidates it', () => {
    const r = new Rig();
    const pt = r.newTable();
    const huge = r.mem.allocFrames(256, 256);
    pt.map(A + 2 * MiB, huge, MiB, 3);
    r.setDte(3, { domainId: 4, root: pt.root });
    for (let p = 0; p < 512; p++) {
      expect(r.translate(3, A + 2 * MiB + p * 0x800 + 0x10).pa).toBe(huge + p * 0x800 + 0x10);
    }
    expect(r.hw.stats().walks).toBe(1);
    expect(r.hw.iotlb.lookup(4, A + 2 * MiB + 0x7_ff00)).toBe(huge + 0x7_ff00);
    pt.unmap(A + 2 * MiB, MiB);
    // Stale until invalidated, like every IOTLB entry.
    expect(r.translate(3, A + 2 * MiB + 0x40).pa).toBe(huge + 0x40);
    // CMD_INV_RANGE of one IO page in the middle of the leaf drops the whole huge entry.
    r.cmd([CMD_INV_RANGE | (4 << 16), 1, A + 2 * MiB + 0x4_0000, 0]);
    r.sync();
    expect(r.hw.iotlb.lookup(4, A + 2 * MiB + 0x40)).toBe(-1);
    expect(r.translate(3, A + 2 * MiB + 0x40)).toMatchObject({ ok: false, fault: FaultReason.TRANSLATION });
  });

  it('IOTLB keeps a stale translation until CMD_INV_RANGE + CMD_SYNC', () => {
    const { r, pt, pa } = attached();
    expect(r.translate(1, A + 0x1010).pa).toBe(pa + 0x1010);
    pt.unmap(A + 0x1000, 0x800);
    expect(pt.iovaToPhys(A + 0x1010)).toBe(-1);
    // Stale: still translated from the IOTLB.
    expect(r.translate(1, A + 0x1010)).toEqual({ ok: true, pa: pa + 0x1010, fault: 0, faultDetail: 0 });
    // A different domain's invalidation does not help.
    r.cmd([CMD_INV_RANGE | (6 << 16), 1, A + 0x1000, 0]);
    expect(r.translate(1, A + 0x1010).pa).toBe(pa + 0x1010);
    r.cmd([CMD_INV_RANGE | (5 << 16), 1, A + 0x1000, 0]);
    expect(r.sync(0xc0de)).toBe(0xc0de);
    expect(r.translate(1, A + 0x1010)).toMatchObject({ ok: false, pa: 0, fault: FaultReason.TRANSLATION });
    // Neighbours were not invalidated.
    expect(r.translate(1, A + 0x800).pa).toBe(pa + 0x800);
    expect(r.hw.stats().hits).toBeGreaterThan(0);
  });

  it('permission fault: a read-only page written', () => {
    const r = new Rig();
    const pt = r.newTable();
    const pa = r.mem.allocFrame();
    pt.map(A, pa, 0x800, 1);
    r.setDte(3, { domainId: 1, root: pt.root });
    expect(r.translate(3, A + 8).ok).toBe(true);
    expect(r.translate(3, A + 8, ACCESS_WRITE)).toEqual({ ok: false, pa: 0, fault: FaultReason.PERMISSION, faultDetail: MockFaultDetail.NO_WRITE });
    const [rec] = r.drainFaults();
    expect(rec).toMatchObject({ type: FAULT_TYPE_FAULT, reason: FaultReason.PERMISSION, rid: 3, perm: ACCESS_WRITE, addr: A + 8, pasidValid: false });
    // Write-only page read → PERMISSION too; exec needs R.
    pt.map(A + 0x800, pa + 0x800, 0x800, 2);
    expect(r.translate(3, A + 0x800).fault).toBe(FaultReason.PERMISSION);
    expect(r.translate(3, A + 0x800, ACCESS_EXEC).fault).toBe(FaultReason.PERMISSION);
    expect(r.translate(3, A + 0x800, ACCESS_WRITE).ok).toBe(true);
  });

  it('sets A on first use and D on write when DIRTY_EN', () => {
    const { r, pt, pa } = attached({ dirty: true });
    const pte = () => {
      const l1 = pt.root + ((A >>> 20) & 0x7ff) * 8;
      const l2 = r.mem.read32(l1) & 0xffff_f000;
      return r.mem.read32(l2 + ((A >>> 11) & 0x1ff) * 8);
    };
    expect(pte() & (PTE_A | PTE_D)).toBe(0);
    expect(r.translate(1, A).pa).toBe(pa);
    expect(pte() & (PTE_A | PTE_D)).toBe(PTE_A);
    expect(r.translate(1, A, ACCESS_WRITE).pa).toBe(pa); // clean cached entry: write walks again
    expect(pte() & (PTE_A | PTE_D)).toBe(PTE_A | PTE_D);
    // Software clears D and invalidates: the next write sets it again.
    let seen = 0;
    expect(pt.readAndClearDirty(A, 0x800, false, () => seen++)).toBe(1);
    expect(seen).toBe(1);
    r.cmd([CMD_INV_RANGE | (5 << 16), 1, A, 0]);
    r.sync();
    r.translate(1, A + 4, ACCESS_WRITE);
    expect(pte() & PTE_D).toBe(PTE_D);
  });

  it('does not set D without DIRTY_EN', () => {
    const { r, pt } = attached({ dirty: false });
    expect(r.translate(1, A, ACCESS_WRITE).ok).toBe(true);
    expect(pt.walk(A)).toMatchObject({ dirty: false, accessed: true });
  });

  it('V = 0 → BLOCKED; RID beyond the table → BAD_RID; outside the aperture → ADDRESS_SIZE', () => {
    const { r } = attached();
    r.setDte(2, { valid: false, domainId: 1 });
    expect(r.translate(2, A)).toMatchObject({ ok: false, fault: FaultReason.BLOCKED, faultDetail: MockFaultDetail.DTE_INVALID });
    expect(r.translate(256, A)).toMatchObject({ ok: false, fault: FaultReason.BAD_RID });
    expect(r.translate(-1, A)).toMatchObject({ ok: false, fault: FaultReason.BAD_RID });
    expect(r.translate(1.5, A)).toMatchObject({ ok: false, fault: FaultReason.BAD_RID });
    expect(r.translate(1, A - 1)).toMatchObject({ ok: false, fault: FaultReason.ADDRESS_SIZE });
    expect(r.translate(1, 0x8000_0000)).toMatchObject({ ok: false, fault: FaultReason.ADDRESS_SIZE });
    expect(r.translate(1, Number.NaN)).toMatchObject({ ok: false, fault: FaultReason.ADDRESS_SIZE });
    const recs = r.drainFaults();
    expect(recs.map((x) => [x.reason, x.rid])).toEqual([
      [FaultReason.BLOCKED, 2],
      [FaultReason.BAD_RID, 256],
      [FaultReason.BAD_RID, 0xffff_ffff],
      [FaultReason.BAD_RID, 1],
      [FaultReason.ADDRESS_SIZE, 1],
      [FaultReason.ADDRESS_SIZE, 1],
      [FaultReason.ADDRESS_SIZE, 1],
    ]);
  });

  it('malformed DTE → BAD_CONFIG; DTE cached until CMD_INV_DTE', () => {
    const { r, pa } = attached();
    r.mem.write32(r.dt + 1 * 32 + 4, 1); // reserved word1 — but the DTE is not cached yet
    expect(r.translate(1, A)).toMatchObject({ ok: false, fault: FaultReason.BAD_CONFIG, faultDetail: MockFaultDetail.DTE_RESERVED });
    r.mem.write32(r.dt + 1 * 32 + 4, 0);
    expect(r.translate(1, A).pa).toBe(pa); // bad DTEs are not cached
    r.setDte(1, { valid: false });
    expect(r.translate(1, A).pa).toBe(pa); // cached DTE (and IOTLB)
    r.cmd([CMD_INV_DTE, 1, 0, 0]);
    r.sync();
    expect(r.translate(1, A + 0x800).fault).toBe(FaultReason.BLOCKED);
  });

  it('DTE feature bits the hardware lacks → BAD_CONFIG', () => {
    const r = new Rig({ hw: { dirty: false } });
    r.setDte(1, { dirtyEnable: true, root: r.newTable().root });
    expect(r.translate(1, A)).toMatchObject({ fault: FaultReason.BAD_CONFIG, faultDetail: MockFaultDetail.DTE_FEATURE });
  });

  it('PASID translation through the PASID table', () => {
    const r = new Rig();
    const ptRid = r.newTable();
    const ptP = r.newTable();
    const paRid = r.mem.allocFrame();
    const paP = r.mem.allocFrame();
    ptRid.map(A, paRid, 0x800, 3);
    ptP.map(A, paP, 0x800, 3);
    const dir = r.mem.allocFrames(8);
    r.setDte(4, { domainId: 10, root: ptRid.root, pasidEnable: true, pasidDir: dir });
    r.setPasid(dir, 0x1_2345, { domainId: 11, root: ptP.root });
    expect(r.translate(4, A + 4).pa).toBe(paRid + 4);
    expect(r.translate(4, A + 4, ACCESS_READ, 0x1_2345)).toMatchObject({ ok: true, pa: paP + 4 });
    expect(r.translate(4, A + 4, ACCESS_READ, 0x1_2345).pa).toBe(paP + 4); // IOTLB hit, tagged by domain 11
    expect(r.translate(4, A, ACCESS_READ, 0x1_2346)).toMatchObject({ ok: false, fault: FaultReason.BLOCKED, faultDetail: MockFaultDetail.PASID_INVALID });
    expect(r.translate(4, A, ACCESS_READ, 0x2_0000)).toMatchObject({ ok: false, fault: FaultReason.BLOCKED, faultDetail: MockFaultDetail.PASID_DIR_INVALID });
    expect(r.translate(4, A, ACCESS_READ, 0x10_0000)).toMatchObject({ ok: false, fault: FaultReason.BAD_PASID });
    r.setDte(5, { domainId: 10, root: ptRid.root });
    expect(r.translate(5, A, ACCESS_READ, 1)).toMatchObject({ ok: false, fault: FaultReason.BAD_PASID, faultDetail: MockFaultDetail.PASID_DISABLED });
    const recs = r.drainFaults();
    expect(recs[0]).toMatchObject({ rid: 4, pasidValid: true, pasid: 0x1_2346 });
    // Cached PASID entry survives a table change until CMD_INV_PASID.
    r.setPasid(dir, 0x1_2345, { valid: false, domainId: 11, root: ptP.root });
    r.cmd([CMD_INV_DOMAIN | (11 << 16), 0, 0, 0]);
    r.sync();
    expect(r.translate(4, A, ACCESS_READ, 0x1_2345).pa).toBe(paP);
    r.cmd([CMD_INV_PASID, 4, 0x1_2345, 0]);
    r.sync();
    expect(r.translate(4, A + 0x10, ACCESS_READ, 0x1_2345).fault).toBe(FaultReason.BLOCKED);
  });

  it('CTRL.EN clear aborts DMA without a record', () => {
    const { r } = attached();
    r.regs.write32(REG_CTRL, CTRL_CMDQ_EN | CTRL_FAULTQ_EN);
    expect(r.translate(1, A)).toMatchObject({ ok: false, fault: FaultReason.BLOCKED, faultDetail: MockFaultDetail.DISABLED });
    expect(r.drainFaults()).toEqual([]);
  });
});

describe('command queue', () => {
  it('executes every opcode', () => {
    const { r, pa } = attached();
    const warm = () => expect(r.translate(1, A).pa).toBe(pa);
    const cached = () => r.hw.iotlb.lookup(5, A);
    warm();
    r.cmd([CMD_INV_ALL, 0, 0, 0]);
    expect(cached()).toBe(-1);
    warm();
    r.cmd([CMD_INV_DOMAIN | (4 << 16), 0, 0, 0]);
    expect(cached()).toBe(pa);
    r.cmd([CMD_INV_DOMAIN | (5 << 16), 0, 0, 0]);
    expect(cached()).toBe(-1);
    warm();
    r.cmd([CMD_INV_RANGE | (5 << 16), 1, A + 0x800, 0]);
    expect(cached()).toBe(pa);
    r.cmd([CMD_INV_RANGE | (5 << 16), 2, A, 0]);
    expect(cached()).toBe(-1);
    warm();
    expect(r.hw.devices.cached[1]).toBe(1);
    r.cmd([CMD_INV_DTE, 1, 0, 0]);
    expect(r.hw.devices.cached[1]).toBe(0);
    r.cmd([CMD_INV_PASID, 1, 7, 0]);
    const seq = r.regs.read32(REG_SYNC_SEQ);
    let irqs = 0;
    r.regs.onIrq(() => irqs++);
    expect(r.sync(0x1234_5678)).toBe(0x1234_5678);
    expect(r.regs.read32(REG_SYNC_SEQ)).toBe(seq + 1);
    expect(irqs).toBe(1);
    r.cmd([CMD_PAGE_RESP | (1 << 16), 1, 0x8000_0003, 0x1ff], [CMD_PAGE_RESP, 2, 0, 4]);
    expect(r.hw.takePageResponses()).toEqual([
      { rid: 1, pasid: 3, grpid: 0x1ff, code: 1 },
      { rid: 2, pasid: -1, grpid: 4, code: 0 },
    ]);
    expect(r.cons).toBe(r.prod);
    const s = r.hw.stats();
    expect(s.commands).toBe(10);
    expect(s.syncs).toBe(1);
  });

  it('CMD_SYNC without an address still completes (SYNC_SEQ)', () => {
    const r = new Rig();
    r.cmd([6, 99, 0, 0], [6, 99, 0, 0]);
    expect(r.regs.read32(REG_SYNC_SEQ)).toBe(2);
  });

  it('unknown opcode halts with ERR=1 and GERROR; resumes after GERRORN ack', () => {
    const { r, pa } = attached();
    r.translate(1, A);
    let irqs = 0;
    r.regs.onIrq(() => irqs++);
    r.cmd([CMD_INV_ALL, 0, 0, 0], [0x7f, 0, 0, 0], [CMD_INV_DOMAIN | (5 << 16), 0, 0, 0]);
    expect(r.cons & 0xffff).toBe(1); // pointing at the bad command
    expect((r.cons >>> 24) & 0x7f).toBe(CMDQ_ERR_ILL);
    expect(r.regs.read32(REG_GERROR) & GERROR_CMDQ_ERR).toBe(GERROR_CMDQ_ERR);
    expect(irqs).toBe(1);
    r.translate(1, A); // refill
    // More commands while halted: nothing runs.
    r.cmd([6, 1, r.syncWord, 0]);
    expect(r.cons & 0xffff).toBe(1);
    expect(r.hw.iotlb.lookup(5, A)).toBe(pa);
    // Replace the bad command with a SYNC (as Linux does) and acknowledge.
    const bad = r.cmdq + 1 * 16;
    r.mem.write32(bad, 6);
    r.regs.write32(REG_GERRORN, r.regs.read32(REG_GERROR));
    expect(r.cons).toBe(4);
    expect(r.hw.iotlb.lookup(5, A)).toBe(-1);
    expect(r.mem.read32(r.syncWord)).toBe(1);
  });

  it('reserved bits → ERR=2', () => {
    const r = new Rig();
    for (const bad of [
      [CMD_INV_ALL | 0x100, 0, 0, 0],
      [CMD_INV_ALL, 1, 0, 0],
      [CMD_INV_RANGE, 0, A, 0], // 0 pages
      [CMD_INV_RANGE, 1, A + 4, 0], // misaligned
      [CMD_INV_DTE, 0x1_0000, 0, 0],
      [CMD_INV_PASID, 1, 0x10_0000, 0],
      [6, 0, 2, 0], // unaligned sync address
      [6, 0, 0, 0x100], // sync address beyond PhysMem
      [CMD_PAGE_RESP | (3 << 16), 0, 0, 0], // bad code
      [CMD_PAGE_RESP, 0, 0, 0x200], // PRG index > 511
    ]) {
      const before = r.cons & 0xffff;
      r.cmd(bad);
      expect(((r.cons >>> 24) & 0x7f), JSON.stringify(bad)).toBe(CMDQ_ERR_BAD);
      expect(r.cons & 0xffff).toBe(before);
      // Skip it: replace with a SYNC, acknowledge.
      r.mem.write32(r.cmdq + before * 16, 6);
      for (let k = 1; k < 4; k++) r.mem.write32(r.cmdq + before * 16 + k * 4, 0);
      r.regs.write32(REG_GERRORN, r.regs.read32(REG_GERROR));
      expect(r.cons).toBe(before + 1);
    }
    expect(r.hw.stats().cmdqErrors).toBe(10);
  });

  it('queue outside PhysMem → ERR=3 (ABT), no throw', () => {
    const r = new Rig();
    r.regs.write32(REG_CTRL, CTRL_EN | CTRL_FAULTQ_EN);
    r.regs.write64(REG_CMDQ_BASE, 0x4000_0000 | 8); // 1 GiB: beyond the 16 MiB PhysMem
    r.regs.write32(REG_CMDQ_PROD, 0);
    r.regs.write32(REG_CTRL, CTRL_EN | CTRL_FAULTQ_EN | CTRL_CMDQ_EN);
    r.regs.write32(REG_CMDQ_PROD, 1);
    expect((r.cons >>> 24) & 0x7f).toBe(CMDQ_ERR_ABT);
    expect(r.regs.read32(REG_GERROR) & GERROR_CMDQ_ERR).toBe(GERROR_CMDQ_ERR);
    // Absurd log2 too.
    r.regs.write32(REG_CTRL, CTRL_EN);
    r.regs.write64(REG_CMDQ_BASE, r.cmdq | 31);
    r.regs.write32(REG_CTRL, CTRL_EN | CTRL_CMDQ_EN);
    r.regs.write32(REG_GERRORN, r.regs.read32(REG_GERROR));
    r.regs.write32(REG_CMDQ_PROD, 0xffff_ffff);
    expect((r.cons >>> 24) & 0x7f).toBe(CMDQ_ERR_ABT);
  });

  it('raises one interrupt per drain and restores a clobbered FAULTQ_PROD', () => {
    const r = new Rig();
    let irqs = 0;
    r.regs.onIrq(() => irqs++);
    r.cmd([6, 1, 0, 0], [6, 2, 0, 0], [6, 3, 0, 0]);
    expect(irqs).toBe(1);
    expect(r.regs.read32(REG_SYNC_SEQ)).toBe(3);
    r.translate(9, A); // one fault record
    expect(r.regs.read32(REG_FAULTQ_PROD)).toBe(1);
    r.regs.write32(REG_FAULTQ_PROD, 77);
    expect(r.regs.read32(REG_FAULTQ_PROD)).toBe(1);
    r.regs.write32(REG_SYNC_SEQ, 0);
    expect(r.regs.read32(REG_SYNC_SEQ)).toBe(3);
  });

  it('reserved bits in a queue base → ABT', () => {
    const r = new Rig();
    r.regs.write32(REG_CTRL, CTRL_EN);
    r.regs.write64(REG_CMDQ_BASE, r.cmdq + 0x20 + 8); // bit 5 set
    r.regs.write32(REG_CTRL, CTRL_EN | CTRL_CMDQ_EN);
    r.regs.write32(REG_CMDQ_PROD, 1);
    expect((r.cons >>> 24) & 0x7f).toBe(CMDQ_ERR_ABT);
  });

  it('a queue can be re-based while disabled (CONS writable then)', () => {
    const r = new Rig();
    r.cmd([6, 0, 0, 0], [6, 0, 0, 0]);
    r.regs.write32(REG_CTRL, CTRL_EN | CTRL_FAULTQ_EN);
    r.regs.write32(REG_CMDQ_PROD, 0);
    r.regs.write32(REG_CMDQ_CONS, 0);
    r.regs.write32(REG_CTRL, CTRL_EN | CTRL_FAULTQ_EN | CTRL_CMDQ_EN);
    expect(r.cons).toBe(0);
    r.prod = 0;
    r.cmd([6, 0, 0, 0]);
    expect(r.cons).toBe(1);
  });
});

describe('fault queue', () => {
  it('overflow sets OVFLG once and drops records until acknowledged', () => {
    const r = new Rig({ faultqLog2: 2 }); // 4 records
    for (let k = 0; k < 10; k++) r.translate(200, A + k * 0x800); // RID 200: V = 0 → BLOCKED
    expect(r.regs.read32(REG_FAULTQ_PROD)).toBe((0x8000_0000 | 4) >>> 0); // full (wrap=1, idx 0) + OVFLG
    const s = r.hw.stats();
    expect(s.faultRecords).toBe(4);
    expect(s.faultqOverflows).toBe(1);
    expect(s.faultRecordsDropped).toBe(6);
    const recs = r.drainFaults();
    expect(recs.map((x) => x.addr)).toEqual([A, A + 0x800, A + 0x1000, A + 0x1800]);
    // Drained but not acknowledged: still dropping.
    r.translate(200, A);
    expect(r.drainFaults()).toEqual([]);
    r.ackOverflow();
    r.translate(200, A + 0x4000);
    expect(r.drainFaults().map((x) => x.addr)).toEqual([A + 0x4000]);
    expect(r.hw.stats().faultqOverflows).toBe(1);
  });

  it('fault queue outside PhysMem raises GERROR.FAULTQ_ABT once, no throw', () => {
    const r = new Rig();
    r.regs.write32(REG_CTRL, CTRL_EN | CTRL_CMDQ_EN);
    r.regs.write64(REG_FAULTQ_BASE, 0x8000_0000 + 8);
    r.regs.write32(REG_CTRL, CTRL_EN | CTRL_CMDQ_EN | CTRL_FAULTQ_EN);
    r.translate(7, A);
    r.translate(7, A);
    expect(r.regs.read32(REG_GERROR) & GERROR_FAULTQ_ABT).toBe(GERROR_FAULTQ_ABT);
    expect(r.hw.stats().gerrors).toBe(1);
  });
});

describe('page requests', () => {
  it('pageRequest + CMD_PAGE_RESP', () => {
    const r = new Rig();
    const responses: unknown[] = [];
    r.hw.onPageResponse((x) => responses.push(x));
    expect(r.hw.pageRequest({ rid: 3, pasid: 1, addr: 0xdeadbeaf, perm: 3, grpid: 2, last: true })).toBe(true);
    const [rec] = r.drainFaults();
    expect(rec).toEqual({ type: FAULT_TYPE_PAGE_REQ, reason: FaultReason.PAGE_REQUEST, pasidValid: true, last: true, perm: 3, rid: 3, pasid: 1, prgIndex: 2, addr: 0xdeadbeaf });
    r.cmd([CMD_PAGE_RESP, rec!.rid, 0x8000_0000 | rec!.pasid, rec!.prgIndex]);
    expect(r.hw.takePageResponses()).toEqual([{ rid: 3, pasid: 1, grpid: 2, code: 0 }]);
    expect(responses).toHaveLength(1);
    expect(r.hw.pageRequest({ rid: 999, pasid: -1, addr: 0, perm: 1, grpid: 0, last: true })).toBe(false);
  });

  it('without CAP.PRI page requests are refused', () => {
    const r = new Rig({ hw: { pri: false } });
    expect(r.hw.pageRequest({ rid: 3, pasid: -1, addr: 0, perm: 1, grpid: 0, last: true })).toBe(false);
  });

  it('a translation fault on a PRI_EN device becomes a page request', () => {
    const { r } = attached({ pri: true });
    const res = r.translate(1, A + 0x10_0000, ACCESS_WRITE);
    expect(res).toMatchObject({ ok: false, fault: FaultReason.PAGE_REQUEST });
    const [rec] = r.drainFaults();
    expect(rec).toMatchObject({ type: FAULT_TYPE_PAGE_REQ, reason: FaultReason.TRANSLATION, last: true, rid: 1, perm: 2, prgIndex: res.faultDetail, addr: A + 0x10_0000 });
    // Config faults stay faults.
    r.setDte(2, { valid: false, priEnable: true });
    expect(r.translate(2, A).fault).toBe(FaultReason.BLOCKED);
  });
});

describe('hostile configuration', () => {
  it('DT_BASE beyond PhysMem → WALK_ABORT fault, no throw', () => {
    const r = new Rig();
    r.regs.write64(REG_DT_BASE, 0x10_0000_0000);
    expect(r.translate(1, A)).toMatchObject({ ok: false, fault: FaultReason.WALK_ABORT, faultDetail: MockFaultDetail.DTE_FETCH });
    r.regs.write64(REG_DT_BASE, r.mem.size - 4096); // 256 DTEs of 32 B: the last 128 lie beyond memory
    expect(r.translate(127, A).fault).toBe(FaultReason.BLOCKED); // last DTE of memory: zero
    expect(r.translate(128, A).fault).toBe(FaultReason.WALK_ABORT);
    expect(r.drainFaults().map((x) => x.reason)).toEqual([FaultReason.WALK_ABORT, FaultReason.BLOCKED, FaultReason.WALK_ABORT]);
  });

  it('DT_LOG2 absurd or DT_BASE misaligned → BAD_CONFIG', () => {
    const r = new Rig();
    r.regs.write32(REG_DT_LOG2, 40);
    expect(r.translate(0, A)).toMatchObject({ fault: FaultReason.BAD_CONFIG, faultDetail: MockFaultDetail.DT_CONFIG });
    r.regs.write32(REG_DT_LOG2, 8);
    r.regs.write64(REG_DT_BASE, r.dt + 8);
    expect(r.translate(0, A).fault).toBe(FaultReason.BAD_CONFIG);
  });

  it('page-table roots and pointers outside PhysMem → WALK_ABORT; reserved PTE bits → TRANSLATION', () => {
    const r = new Rig();
    r.setDte(1, { root: 0xf_ffff_c000 });
    expect(r.translate(1, A)).toMatchObject({ fault: FaultReason.WALK_ABORT, faultDetail: MockFaultDetail.PTE_FETCH });
    const pt = r.newTable();
    r.setDte(2, { root: pt.root, domainId: 2 });
    const l1 = pt.root + ((A >>> 20) & 0x7ff) * 8;
    r.mem.write64Parts(l1, 0xfff0_0001, 0xfffff); // table pointer far beyond PhysMem
    expect(r.translate(2, A).fault).toBe(FaultReason.WALK_ABORT);
    r.mem.write64Parts(l1, pt.root | 1, 0); // L1 pointing at itself: the L2 "leaf" has no LEAF bit
    expect(r.translate(2, A + 16 * 0x800)).toMatchObject({ fault: FaultReason.TRANSLATION, faultDetail: MockFaultDetail.PTE_RESERVED });
    r.mem.write64Parts(l1, 0x0010_0001 | 0x40, 0); // reserved bit 6
    expect(r.translate(2, A).faultDetail).toBe(MockFaultDetail.PTE_RESERVED);
    r.mem.write64Parts(l1, 0x0010_0000 | 0xb | 0x800, 0); // huge leaf with bit 11 set
    expect(r.translate(2, A).faultDetail).toBe(MockFaultDetail.PTE_RESERVED);
  });

  it('huge leaves without CAP.HUGE are malformed', () => {
    const r = new Rig({ hw: { huge: false } });
    const pt = r.newTable(true);
    pt.map(A, 0x10_0000, MiB, 1);
    r.setDte(1, { root: pt.root });
    expect(r.translate(1, A).faultDetail).toBe(MockFaultDetail.PTE_RESERVED);
  });

  it('random register and memory garbage never throws', () => {
    const mem = PhysMem.create(1 << 20);
    const regs = RegisterFile.create(4096);
    const hw = new MockHardware({ instanceId: 'fuzz', mem, regs, options: {} });
    let seed = 12345;
    const rnd = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return seed >>> 0;
    };
    const req = dmaRequest();
    const out = dmaResult();
    for (let k = 0; k < 20000; k++) mem.u32[rnd() % mem.u32.length] = rnd();
    const offs = [REG_CTRL, REG_DT_BASE, REG_DT_BASE + 4, REG_DT_LOG2, REG_CMDQ_BASE, REG_CMDQ_BASE + 4, REG_CMDQ_PROD, REG_CMDQ_CONS, REG_GERRORN, REG_FAULTQ_BASE, REG_FAULTQ_BASE + 4, REG_FAULTQ_PROD, 0x4c, 0x100, 0x104, 0x108, 0x10c, 0x110];
    for (let k = 0; k < 20000; k++) {
      const off = offs[rnd() % offs.length]!;
      let v = rnd();
      if (off === REG_DT_BASE || off === REG_CMDQ_BASE || off === REG_FAULTQ_BASE) v = (v % mem.size) & ~0xfe0;
      if (off === REG_DT_LOG2) v &= 0x1f;
      regs.write32(off, v);
      expect(() => hw.service()).not.toThrow();
      req.rid = rnd() & 0x3ff;
      req.pasid = (rnd() & 3) === 0 ? rnd() & 0x1ffff : -1;
      req.iova = A + (rnd() & 0x3fff_ffff);
      req.access = rnd() & 7;
      hw.translate(req, out);
      if ((rnd() & 15) === 0) hw.pageRequest({ rid: rnd() & 0xff, pasid: -1, addr: rnd(), perm: 1, grpid: rnd(), last: true });
    }
    expect(hw.stats().translations).toBe(20000);
  });
});
