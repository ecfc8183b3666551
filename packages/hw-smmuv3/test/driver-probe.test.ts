/**
 * Probe and reset against the hardware model, checked as an integration test of smmuv3.md §1.6:
 * the exact register write sequence Linux's `arm_smmu_device_reset` makes, the commands it
 * issues, the resulting register values, the stream-table layout (§1.4, §2.4), queue sizing
 * (§1.5) and the refusals of §1.2 (ENODEV), plus a bounded wait (ETIMEDOUT) when nothing answers.
 */
import { isIommuError } from '@iommulab/driver-api';
import { PhysMem, RegisterFile } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import {
  CmdOp,
  SMMU_AIDR,
  SMMU_CMDQ_BASE,
  SMMU_CMDQ_CONS,
  SMMU_CMDQ_PROD,
  SMMU_CR0,
  SMMU_CR0ACK,
  SMMU_CR1,
  SMMU_CR2,
  SMMU_EVTQ_BASE,
  SMMU_EVTQ_CONS,
  SMMU_EVTQ_IRQ_CFG0,
  SMMU_EVTQ_PROD,
  SMMU_GBPA,
  SMMU_GERROR_IRQ_CFG0,
  SMMU_IDR0,
  SMMU_IDR1,
  SMMU_IDR3,
  SMMU_IDR5,
  SMMU_IIDR,
  SMMU_IRQ_CTRL,
  SMMU_IRQ_CTRLACK,
  SMMU_PRIQ_BASE,
  SMMU_PRIQ_CONS,
  SMMU_PRIQ_IRQ_CFG0,
  SMMU_PRIQ_PROD,
  SMMU_REG_BYTES,
  SMMU_STRTAB_BASE,
  SMMU_STRTAB_BASE_CFG,
} from '../src/codec/index.js';
import { createSmmuV3Driver, type SmmuV3Driver } from '../src/driver/driver.js';
import { resolveFeatures } from '../src/model/features.js';
import { idrRegisters } from '../src/model/idr.js';
import { SmmuV3Hardware } from '../src/model/smmu.js';
import { CmdRecorder, recordWrites, type RegWrite } from './driver-rig.js';

const RA = 0x4000_0000; // RA / RWA [62] in the high word

async function bringUp(hwOptions: Record<string, unknown> = {}, drvOptions: Record<string, unknown> = {}) {
  const mem = PhysMem.create(32 * 1024 * 1024);
  const regs = RegisterFile.create(SMMU_REG_BYTES);
  const w = recordWrites(regs); // first listener: sees each value before the model acts
  const rec = new CmdRecorder(mem, regs);
  const hw = new SmmuV3Hardware({ instanceId: 'p', mem, regs, options: hwOptions });
  regs.onWrite(() => hw.service());
  const drv = await createSmmuV3Driver({ instanceId: 'p', mem, regs, options: drvOptions, timeoutMs: 1000 });
  return { mem, regs, hw, drv, writes: w.writes, rec };
}

function expectedSequence(drv: SmmuV3Driver, o: { hyp: boolean; pri: boolean; ats: boolean }): RegWrite[] {
  const l = drv.layout;
  const out: RegWrite[] = [
    { off: SMMU_CR0, lo: 0 },
    { off: SMMU_CR1, lo: 0xd75 },
    { off: SMMU_CR2, lo: 0x6 },
    { off: SMMU_STRTAB_BASE, lo: l.strtabPa, hi: RA },
    { off: SMMU_STRTAB_BASE_CFG, lo: l.strtabBaseCfg },
    { off: SMMU_CMDQ_BASE, lo: l.cmdqPa | l.cmdqLog2, hi: RA },
    { off: SMMU_CMDQ_PROD, lo: 0 },
    { off: SMMU_CMDQ_CONS, lo: 0 },
    { off: SMMU_CR0, lo: 0x8 },
    { off: SMMU_CMDQ_PROD, lo: 2 }, // CFGI_ALL + SYNC
  ];
  let prod = 2;
  if (o.hyp) out.push({ off: SMMU_CMDQ_PROD, lo: (prod += 2) }); // TLBI_EL2_ALL + SYNC
  out.push({ off: SMMU_CMDQ_PROD, lo: (prod += 2) }); // TLBI_NSNH_ALL + SYNC
  out.push({ off: SMMU_EVTQ_BASE, lo: l.evtqPa | l.evtqLog2, hi: RA }, { off: SMMU_EVTQ_PROD, lo: 0 }, { off: SMMU_EVTQ_CONS, lo: 0 });
  let cr0 = 0xc;
  out.push({ off: SMMU_CR0, lo: cr0 });
  if (o.pri) {
    cr0 |= 0x2;
    out.push({ off: SMMU_PRIQ_BASE, lo: l.priqPa | l.priqLog2, hi: RA }, { off: SMMU_PRIQ_PROD, lo: 0 }, { off: SMMU_PRIQ_CONS, lo: 0 }, { off: SMMU_CR0, lo: cr0 });
  }
  if (o.ats) out.push({ off: SMMU_CR0, lo: (cr0 |= 0x10) });
  out.push({ off: SMMU_IRQ_CTRL, lo: 0 }, { off: SMMU_GERROR_IRQ_CFG0, lo: 0, hi: 0 }, { off: SMMU_EVTQ_IRQ_CFG0, lo: 0, hi: 0 });
  if (o.pri) out.push({ off: SMMU_PRIQ_IRQ_CFG0, lo: 0, hi: 0 });
  out.push({ off: SMMU_IRQ_CTRL, lo: o.pri ? 0x7 : 0x5 }, { off: SMMU_CR0, lo: cr0 | 0x1 });
  return out;
}

describe('probe / reset register sequence (smmuv3.md §1.6)', () => {
  it('full-featured SMMU: every write in order, then CR0 = SMMUEN|EVTQEN|CMDQEN|PRIQEN|ATSCHK', async () => {
    const { regs, drv, writes, rec } = await bringUp();
    expect(writes).toEqual(expectedSequence(drv, { hyp: true, pri: true, ats: true }));
    expect(drv.cr0).toBe(0x1f);
    expect(regs.read32(SMMU_CR0ACK)).toBe(0x1f);
    expect(regs.read32(SMMU_IRQ_CTRLACK)).toBe(0x7);
    expect(regs.read32(SMMU_CR1)).toBe(0xd75);
    // Linux writes PTM | RECINVSID (0x6); PTM is RES0 without IDR0.BTM (IHI 0070 §6.3.12), BTM = 0 by default.
    expect(regs.read32(SMMU_CR2)).toBe(0x2);
    // 2-level stream table for 16 SID bits: 256 L1 entries, LOG2SIZE 16, SPLIT 8, FMT 1.
    expect(regs.read32(SMMU_STRTAB_BASE_CFG)).toBe((1 << 16) | (8 << 6) | 16);
    expect(drv.strtab.l1Entries).toBe(256);
    expect(regs.read32(SMMU_STRTAB_BASE + 4)).toBe(RA);
    // CMDQ: 2^10 entries (the driver's default below IDR1.CMDQS = 19), all six commands consumed.
    expect(regs.read32(SMMU_CMDQ_BASE) & 0x1f).toBe(10);
    expect(regs.read32(SMMU_CMDQ_CONS)).toBe(6);
    // Commands: CFGI_ALL, TLBI_EL2_ALL, TLBI_NSNH_ALL, each + CMD_SYNC (MSI-poll: IDR0.MSI && COHACC).
    const cmds = rec.take();
    expect(cmds.map((c) => c[0] & 0xff)).toEqual([CmdOp.CFGI_STE_RANGE, CmdOp.SYNC, CmdOp.TLBI_EL2_ALL, CmdOp.SYNC, CmdOp.TLBI_NSNH_ALL, CmdOp.SYNC]);
    expect(cmds[0]).toEqual([4, 0, 0x1f, 0]);
    // MSI-poll CMD_SYNC: CS = IRQ, MSIAddress = its own entry (the completion zeroed word 0).
    expect(cmds[1][0]).toBe(0x0fc01046);
    expect(cmds[1][2]).toBe(drv.layout.cmdqPa + 16);
    expect(drv.mem.read32(drv.layout.cmdqPa + 16)).toBe(0);
  });

  it('without HYP, PRI, ATS and MSI: no TLBI_EL2_ALL, no PRIQ, no ATSCHK, CS = SEV syncs', async () => {
    const { drv, writes, rec } = await bringUp({ hyp: false, pri: false, ats: false, msi: false });
    expect(writes).toEqual(expectedSequence(drv, { hyp: false, pri: false, ats: false }));
    expect(drv.cr0).toBe(0xd);
    const cmds = rec.take();
    expect(cmds.map((c) => c[0] & 0xff)).toEqual([CmdOp.CFGI_STE_RANGE, CmdOp.SYNC, CmdOp.TLBI_NSNH_ALL, CmdOp.SYNC]);
    expect(cmds[1]).toEqual([0x0fc02046, 0, 0, 0]);
  });

  it('an SMMU left enabled is first put in GBPA.ABORT (UPDATE protocol), then reset', async () => {
    const first = await bringUp();
    const from = first.writes.length; // the first listener sees each value before the model acts
    const again = await createSmmuV3Driver({ instanceId: 'p2', mem: first.mem, regs: first.regs, options: {}, timeoutMs: 1000 });
    expect(first.writes[from]).toEqual({ off: SMMU_GBPA, lo: (0x8000_0000 | 0x0010_0000 | 0x1000) >>> 0 });
    expect(first.writes[from + 1]).toEqual({ off: SMMU_CR0, lo: 0 });
    expect(first.regs.read32(SMMU_GBPA)).toBe(0x0010_1000); // UPDATE cleared by the SMMU
    expect(again.cr0).toBe(0x1f);
  });
});

describe('stream table and queues (smmuv3.md §1.4, §1.5, §2.4)', () => {
  it('SIDSIZE 8: linear, LOG2SIZE 8, 256 abort STEs', async () => {
    const { regs, drv, mem } = await bringUp({ sidBits: 8 });
    expect(regs.read32(SMMU_STRTAB_BASE_CFG)).toBe(8);
    expect(drv.strtab.twoLevel).toBe(false);
    for (const sid of [0, 1, 255]) {
      const w = drv.strtab.steWord(sid);
      expect(Array.from(mem.u32.subarray(w, w + 16))).toEqual([1, ...new Array(15).fill(0)]);
    }
  });
  it('ST_LEVEL = 0 with SIDSIZE 12: linear, LOG2SIZE 12', async () => {
    const { regs } = await bringUp({ sidBits: 12, st2lvl: false });
    expect(regs.read32(SMMU_STRTAB_BASE_CFG)).toBe(12);
  });
  it('2-level: an L2 table of 256 abort STEs is installed (Span 9) on the first probe in its range', async () => {
    const { drv, mem } = await bringUp();
    const l1 = drv.strtab.basePa;
    expect(mem.read32(l1 + 0x12 * 8)).toBe(0);
    await drv.probeDevice({ rid: 0x1234 });
    const l2 = drv.strtab.l2TablePa(0x12);
    expect(l2 % 16384).toBe(0);
    expect(mem.read32(l1 + 0x12 * 8)).toBe(l2 | 9);
    expect(mem.read32(l1 + 0x12 * 8 + 4)).toBe(0);
    expect(drv.strtab.steWord(0x1234)).toBe((l2 + 0x34 * 64) >>> 2);
    expect(mem.read32(l2 + 0x34 * 64)).toBe(1);
    await drv.probeDevice({ rid: 0x12ff });
    expect(drv.strtab.l2TablePa(0x12)).toBe(l2);
    expect(drv.strtab.l2TablePa(0x13)).toBe(-1);
  });
  it('SIDSIZE 32: the L1 table is capped at 2^17 entries (LOG2SIZE 25)', async () => {
    const { regs, drv } = await bringUp({ sidBits: 32 });
    expect(drv.strtab.l1Entries).toBe(1 << 17);
    expect(regs.read32(SMMU_STRTAB_BASE_CFG)).toBe((1 << 16) | (8 << 6) | 25);
    expect(drv.capabilities.ridBits).toBe(25);
  });
  it('queue sizes: min(IDR1 maximum, driver option)', async () => {
    const a = await bringUp({ cmdqLog2: 7, evtqLog2: 3, priqLog2: 2 }, { driverCmdqLog2: 12, driverEvtqLog2: 6, driverPriqLog2: 6 });
    expect(a.drv.layout).toMatchObject({ cmdqLog2: 7, evtqLog2: 3, priqLog2: 2 });
    const b = await bringUp({}, { driverCmdqLog2: 8, driverEvtqLog2: 4, driverPriqLog2: 5 });
    expect(b.drv.layout).toMatchObject({ cmdqLog2: 8, evtqLog2: 4, priqLog2: 5 });
    expect(b.regs.read32(SMMU_EVTQ_BASE) & 0x1f).toBe(4);
    expect(b.regs.read32(SMMU_PRIQ_BASE) & 0x1f).toBe(5);
  });
});

/** A register file with the model's ID registers but no model behind it. */
function idrOnly(features: Record<string, unknown>, patch?: (r: RegisterFile) => void) {
  const mem = PhysMem.create(8 * 1024 * 1024);
  const regs = RegisterFile.create(SMMU_REG_BYTES);
  const v = idrRegisters(resolveFeatures(features));
  const set = (off: number, val: number) => regs.hwWrite32(off, val);
  set(SMMU_IDR0, v.idr0);
  set(SMMU_IDR1, v.idr1);
  set(SMMU_IDR3, v.idr3);
  set(SMMU_IDR5, v.idr5);
  set(SMMU_IIDR, v.iidr);
  set(SMMU_AIDR, v.aidr);
  patch?.(regs);
  return { mem, regs };
}

async function errOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isIommuError(e)) return `${e.errno}: ${e.message}`;
    throw e;
  }
  return 'OK';
}

describe('refusals (smmuv3.md §1.2 Linux constraints) and bounded waits', () => {
  const create = (r: { mem: PhysMem; regs: RegisterFile }, options: Record<string, unknown> = {}, timeoutMs = 100) =>
    createSmmuV3Driver({ instanceId: 'x', mem: r.mem, regs: r.regs, options, timeoutMs });

  it('no S1P and no S2P → ENODEV', async () => {
    expect(await errOf(create(idrOnly({}, (r) => r.hwWrite32(SMMU_IDR0, r.read32(SMMU_IDR0) & ~3))))).toMatch(/^ENODEV.*no translation support/);
  });
  it('TTF without AArch64 → ENODEV; TTF = both is accepted (ias 40)', async () => {
    expect(await errOf(create(idrOnly({}, (r) => r.hwWrite32(SMMU_IDR0, (r.read32(SMMU_IDR0) & ~0xc) | (1 << 2)))))).toMatch(/^ENODEV.*AArch64 table format/);
  });
  it('big-endian-only or reserved TTENDIAN → ENODEV', async () => {
    for (const e of [1, 3]) {
      expect(await errOf(create(idrOnly({}, (r) => r.hwWrite32(SMMU_IDR0, (r.read32(SMMU_IDR0) & ~(3 << 21)) | (e << 21)))))).toMatch(/^ENODEV.*endianness/);
    }
  });
  it('REL / QUEUES_PRESET / TABLES_PRESET → ENODEV', async () => {
    for (const bit of [28, 29, 30]) {
      expect(await errOf(create(idrOnly({}, (r) => r.hwWrite32(SMMU_IDR1, (r.read32(SMMU_IDR1) | (1 << bit)) >>> 0))))).toMatch(/^ENODEV.*embedded/);
    }
  });
  it('CMDQS < 7 → ENODEV (a 64-command batch and its sync must fit)', async () => {
    expect(await errOf(create(idrOnly({ cmdqLog2: 6 })))).toMatch(/^ENODEV.*command queue size/);
  });
  it('a driver CMDQ option below 2^7 entries → EINVAL', async () => {
    expect(await errOf(create(idrOnly({}), { driverCmdqLog2: 6 }))).toMatch(/^EINVAL/);
  });
  it('nothing acknowledges CR0 → ETIMEDOUT within timeoutMs, memory released', async () => {
    const r = idrOnly({});
    const before = r.mem.allocatedFrameCount;
    expect(await errOf(create(r, {}, 30))).toMatch(/^ETIMEDOUT/);
    expect(r.mem.allocatedFrameCount).toBe(before);
  });
});
