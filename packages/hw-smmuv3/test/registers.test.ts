/**
 * Register-side behaviour (smmuv3.md §1.1–§1.5): ID registers bit-exact (§1.2), reset values,
 * CR0/CR0ACK, IRQ_CTRL/IRQ_CTRLACK, GBPA UPDATE protocol, GERROR/GERRORN toggle semantics and the
 * GERROR interrupt (wired + MSI), CR1/CR2, STRTAB latching, RES0 masking, read-only registers,
 * and the feature options.
 */
import { describe, expect, it } from 'vitest';
import {
  CR0_ATSCHK,
  CR0_CMDQEN,
  CR0_EVTQEN,
  CR0_PRIQEN,
  CR0_SMMUEN,
  CR1_LINUX,
  CR2_E2H,
  CR2_PTM,
  CR2_RECINVSID,
  GBPA_ABORT,
  GBPA_RESET,
  GBPA_UPDATE,
  GERROR_CMDQ_ERR,
  GERROR_EVTQ_ABT_ERR,
  GERROR_MSI_GERROR_ABT_ERR,
  IRQ_CTRL_EVTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  IRQ_CTRL_PRIQ_IRQEN,
  SMMU_AGBPA,
  SMMU_AIDR,
  SMMU_CMDQ_BASE,
  SMMU_CR0,
  SMMU_CR0ACK,
  SMMU_CR1,
  SMMU_CR2,
  SMMU_EVTQ_IRQ_CFG0,
  SMMU_EVTQ_IRQ_CFG1,
  SMMU_EVTQ_IRQ_CFG2,
  SMMU_GBPA,
  SMMU_GERROR,
  SMMU_GERRORN,
  SMMU_GERROR_IRQ_CFG0,
  SMMU_GERROR_IRQ_CFG1,
  SMMU_IDR0,
  SMMU_IDR1,
  SMMU_IDR2,
  SMMU_IDR3,
  SMMU_IDR4,
  SMMU_IDR5,
  SMMU_IIDR,
  SMMU_IRQ_CTRL,
  SMMU_IRQ_CTRLACK,
  SMMU_PIDR4,
  SMMU_PRIQ_BASE,
  SMMU_PRIQ_IRQ_CFG0,
  SMMU_STATUSR,
  SMMU_STRTAB_BASE,
  SMMU_STRTAB_BASE_CFG,
} from '../src/codec/index.js';
import { DEFAULT_FEATURES, RegChange, idrRegisters, resolveFeatures } from '../src/model/queues-index.js';
import { Rig } from './cmdq-rig.js';

const ALL_IDS = [SMMU_IDR0, SMMU_IDR1, SMMU_IDR2, SMMU_IDR3, SMMU_IDR4, SMMU_IDR5, SMMU_IIDR, SMMU_AIDR];

describe('§1.2 ID registers, bit-exact', () => {
  it('defaults (modern full SMMUv3.2)', () => {
    const rig = new Rig();
    // IDR0: S2P|S1P|TTF=AArch64|COHACC|HTTU=2|HYP|ATS|NS1ATS|ASID16|MSI|SEV|PRI|VMID16|CD2L|TTENDIAN=LE|STALL_MODEL=0|TERM_MODEL=0|ST_LEVEL=2lvl
    // IDR1: SIDSIZE 16, SSIDSIZE 20, PRIQS 19, EVENTQS 19, CMDQS 19
    // IDR3: HAD|XNX|FWB|RIL|BBML=2 (IHI 0070 §6.3.4: XNX mandatory from v3.1 with S2P, BBML 1 or 2 from v3.2); IDR5: OAS 48 (5), GRAN4K|16K|64K, STALL_MAX 64
    expect(ALL_IDS.map((o) => rig.regs.read32(o))).toEqual([0x084d7e9b, 0x02739d10, 0, 0x1514, 0, 0x00400075, 0x00100000, 0x02]);
    expect(idrRegisters(DEFAULT_FEATURES)).toEqual({
      idr0: 0x084d7e9b,
      idr1: 0x02739d10,
      idr2: 0,
      idr3: 0x1514,
      idr4: 0,
      idr5: 0x00400075,
      iidr: 0x00100000,
      aidr: 0x02,
    });
  });

  it('a reduced configuration: each option lands in its field', () => {
    const f = resolveFeatures({
      stage1: false,
      httu: 0,
      stall: 'none',
      termModel: 1,
      st2lvl: false,
      oas: 44,
      granules: { '16k': false },
      vax: true,
      pri: false,
      sidBits: 8,
      ssidBits: 0,
      cmdqLog2: 8,
      evtqLog2: 7,
      ril: false,
      hyp: false,
      ats: false,
      msi: false,
      sev: false,
      btm: true,
      coherent: false,
      asid16: false,
      vmid16: false,
      cd2l: false,
      fwb: false,
      had: false,
      stt: true,
      xnx: true,
      iidr: 0x4870043b,
      aidr: 0x01,
    });
    expect(f.nesting).toBe(false);
    expect(idrRegisters(f)).toEqual({
      idr0: 0x1 | 0x8 | 0x20 | (2 << 21) | (1 << 24) | (1 << 26), // S2P, TTF, BTM, TTENDIAN, STALL_MODEL=1, TERM_MODEL
      idr1: 8 | (7 << 16) | (8 << 21), // PRIQS 0 without PRI
      idr2: 0,
      idr3: 0x200 | 0x10, // STT, XNX
      idr4: 0,
      idr5: 4 | 0x10 | 0x40 | (1 << 10), // OAS 44, 4K, 64K, VAX=1, STALL_MAX 0
      iidr: 0x4870043b,
      aidr: 0x01,
    });
  });

  it('IHI 0070 §6.3.1: IDR0.NS1ATS is RES0 unless ATS, S1P and S2P are all implemented', () => {
    const ns1ats = (o: Record<string, unknown>) => (idrRegisters(resolveFeatures(o)).idr0 >>> 11) & 1;
    expect([ns1ats({}), ns1ats({ stage2: false, hyp: false }), ns1ats({ stage1: false, hyp: false }), ns1ats({ ats: false, pri: false })]).toEqual([1, 0, 0, 0]);
  });

  it('stall forced: STALL_MODEL = 2, STALL_MAX = stallMax; HTTU 1', () => {
    const v = idrRegisters(resolveFeatures({ stall: 'forced', stallMax: 0xffff, httu: 1 }));
    expect((v.idr0 >>> 24) & 3).toBe(2);
    expect((v.idr0 >>> 6) & 3).toBe(1);
    expect(v.idr5 >>> 16).toBe(0xffff);
  });

  it('ID registers, STATUSR, AGBPA and CoreSight IDs are read-only: software writes are undone', () => {
    const rig = new Rig();
    const before = ALL_IDS.map((o) => rig.regs.read32(o));
    for (const o of [...ALL_IDS, SMMU_STATUSR, SMMU_AGBPA, SMMU_CR0ACK, SMMU_IRQ_CTRLACK, SMMU_GERROR, 0xa8, 0xac]) rig.regs.write32(o, 0xffff_ffff);
    expect(ALL_IDS.map((o) => rig.regs.read32(o))).toEqual(before);
    expect([SMMU_STATUSR, SMMU_AGBPA, SMMU_CR0ACK, SMMU_IRQ_CTRLACK, SMMU_GERROR, 0xa8, 0xac].map((o) => rig.regs.read32(o))).toEqual([0, 0, 0, 0, 0, 0, 0]);
  });

  it('CoreSight ID registers 0xFD0..0xFFC', () => {
    const rig = new Rig();
    const ids = [...Array(12).keys()].map((i) => rig.regs.read32(SMMU_PIDR4 + 4 * i));
    expect(ids).toEqual([0x04, 0x00, 0x00, 0x00, 0x84, 0xb4, 0xf0, 0x10, 0x0d, 0xf0, 0x05, 0xb1]);
  });
});

describe('feature options', () => {
  it('defaults equal DEFAULT_FEATURES; unknown keys listed by the caller are accepted', () => {
    expect(resolveFeatures({})).toEqual(DEFAULT_FEATURES);
    expect(resolveFeatures({ walkCache: 4 }, ['walkCache'])).toEqual(DEFAULT_FEATURES);
  });

  it('bad values throw a TypeError naming the option and what is accepted', () => {
    expect(() => resolveFeatures({ sidBits: 33 })).toThrow(/'sidBits' = 33 is invalid: expected an integer in 0\.\.32/);
    expect(() => resolveFeatures({ ssidBits: 1.5 })).toThrow(TypeError);
    expect(() => resolveFeatures({ cmdqLog2: 20 })).toThrow(/cmdqLog2/);
    expect(() => resolveFeatures({ oas: 47 })).toThrow(/'oas' = 47 .*one of 32, 36, 40, 42, 44, 48, 52/);
    expect(() => resolveFeatures({ stall: 'maybe' })).toThrow(/'stall' = 'maybe'.*'none', 'stall', 'forced'/);
    expect(() => resolveFeatures({ httu: 3 })).toThrow(/httu/);
    expect(() => resolveFeatures({ ats: 'yes' })).toThrow(/'ats' = 'yes' is invalid: expected true or false/);
    expect(() => resolveFeatures({ granules: { '4k': false, '16k': false, '64k': false } })).toThrow(/granules/);
    expect(() => resolveFeatures({ granules: { '8k': true } })).toThrow(/granules/);
    expect(() => resolveFeatures({ stage1: false, stage2: false })).toThrow(/at least one of stage1/);
    expect(() => resolveFeatures({ stage2: false, nesting: true })).toThrow(/nesting/);
    expect(() => resolveFeatures({ priAutoResponse: 'retry' })).toThrow(/priAutoResponse/);
    expect(() => resolveFeatures({ tlbPolicy: 'mru' })).toThrow(/tlbPolicy/);
    expect(() => resolveFeatures({ aidr: 0x100 })).toThrow(/aidr/);
    expect(() => resolveFeatures({ sidbits: 8 })).toThrow(/unknown option 'sidbits'/);
  });

  it('nesting defaults to stage1 && stage2', () => {
    expect(resolveFeatures({ stage2: false }).nesting).toBe(false);
    expect(resolveFeatures({ nesting: false }).nesting).toBe(false);
    expect(resolveFeatures().nesting).toBe(true);
  });
});

describe('§1.3 reset values', () => {
  it('GBPA = 0x1000 (SHCFG incoming), CR0/CR0ACK/IRQ_CTRL/GERROR/queues 0; reset() restores them', () => {
    const rig = new Rig();
    expect(rig.regs.read32(SMMU_GBPA)).toBe(GBPA_RESET);
    for (const o of [SMMU_CR0, SMMU_CR0ACK, SMMU_CR1, SMMU_CR2, SMMU_IRQ_CTRL, SMMU_IRQ_CTRLACK, SMMU_GERROR, SMMU_GERRORN, SMMU_STRTAB_BASE]) {
      expect(rig.regs.read32(o)).toBe(0);
    }
    rig.setupCmdq(4);
    rig.regs.write32(SMMU_GBPA, GBPA_ABORT | GBPA_UPDATE);
    rig.regs.write32(SMMU_CR2, 6);
    rig.ctl.reset();
    expect([rig.regs.read32(SMMU_GBPA), rig.regs.read32(SMMU_CR0), rig.regs.read32(SMMU_CR0ACK), rig.regs.read32(SMMU_CR2)]).toEqual([GBPA_RESET, 0, 0, 0]);
    expect(rig.regs.read32(SMMU_IDR0)).toBe(0x084d7e9b);
    expect(rig.ctl.cmdq.enabled).toBe(false);
    expect(rig.ctl.registers.gbpaAbort).toBe(false);
  });
});

describe('§1.3 CR0 / CR0ACK', () => {
  it('CR0ACK mirrors CR0 once applied; the decoded enables follow', () => {
    const rig = new Rig();
    rig.regs.write32(SMMU_CR0, CR0_CMDQEN | CR0_EVTQEN);
    expect(rig.regs.read32(SMMU_CR0ACK)).toBe(CR0_CMDQEN | CR0_EVTQEN);
    const r = rig.ctl.registers;
    expect([r.cmdqEn, r.evtqEn, r.priqEn, r.smmuEn, r.atsChk]).toEqual([true, true, false, false, false]);
    expect(rig.ctl.cmdq.enabled).toBe(true);
    expect(rig.ctl.evtq.enabled).toBe(true);
    rig.regs.write32(SMMU_CR0, CR0_CMDQEN | CR0_EVTQEN | CR0_PRIQEN | CR0_ATSCHK | CR0_SMMUEN);
    expect(rig.regs.read32(SMMU_CR0ACK)).toBe(0x1f);
    expect([r.priqEn, r.smmuEn, r.atsChk]).toEqual([true, true, true]);
    rig.regs.write32(SMMU_CR0, 0);
    expect(rig.regs.read32(SMMU_CR0ACK)).toBe(0);
    expect(rig.ctl.cmdq.enabled).toBe(false);
  });

  it('RES0 bits are masked (register and ACK); PRIQEN is RES0 without PRI, ATSCHK without ATS; VMW without IDR0.VMW', () => {
    const rig = new Rig();
    rig.regs.write32(SMMU_CR0, 0xffff_ffff);
    expect(rig.regs.read32(SMMU_CR0)).toBe(0x1f);
    expect(rig.regs.read32(SMMU_CR0ACK)).toBe(0x1f);
    const r2 = new Rig({ features: { pri: false, ats: false } });
    r2.regs.write32(SMMU_CR0, 0xffff_ffff);
    expect(r2.regs.read32(SMMU_CR0ACK)).toBe(CR0_SMMUEN | CR0_EVTQEN | CR0_CMDQEN);
  });

  it('the model learns of a write only when serviced: CR0ACK updates at service(), after the enables are applied', () => {
    const rig = new Rig({ manual: true });
    rig.regs.write32(SMMU_CR0, CR0_CMDQEN);
    expect(rig.regs.read32(SMMU_CR0ACK)).toBe(0);
    expect(rig.ctl.service()).toBe(1);
    expect(rig.ctl.lastChanges).toBe(RegChange.CR0 | RegChange.CMDQEN);
    expect(rig.regs.read32(SMMU_CR0ACK)).toBe(CR0_CMDQEN);
    expect(rig.ctl.service()).toBe(0);
    expect(rig.ctl.lastChanges).toBe(0);
  });

  it('the cr0Changed hook runs after the queues are started and before CR0ACK is published', () => {
    const rig = new Rig({ manual: true });
    let seen: number[] = [];
    // SmmuControl's onCr0 option: observe the state inside the hook.
    const ctl = new (rig.ctl.constructor as typeof import('../src/model/queues-index.js').SmmuControl)(rig.mem, rig.regs, rig.features, {
      target: rig.target,
      onCr0: (prev, next) => {
        seen = [prev, next, rig.regs.read32(SMMU_CR0ACK), ctl.cmdq.enabled ? 1 : 0];
      },
    });
    rig.regs.write32(SMMU_CR0, CR0_CMDQEN);
    ctl.service();
    expect(seen).toEqual([0, CR0_CMDQEN, 0, 1]);
    expect(rig.regs.read32(SMMU_CR0ACK)).toBe(CR0_CMDQEN);
  });
});

describe('§1.3 IRQ_CTRL / IRQ_CTRLACK', () => {
  it('IRQ_CTRLACK mirrors IRQ_CTRL; undefined bits masked; PRIQ_IRQEN RES0 without PRI', () => {
    const rig = new Rig();
    rig.regs.write32(SMMU_IRQ_CTRL, 0);
    expect(rig.regs.read32(SMMU_IRQ_CTRLACK)).toBe(0);
    rig.regs.write32(SMMU_IRQ_CTRL, IRQ_CTRL_EVTQ_IRQEN | IRQ_CTRL_GERROR_IRQEN | IRQ_CTRL_PRIQ_IRQEN);
    expect(rig.regs.read32(SMMU_IRQ_CTRLACK)).toBe(7);
    rig.regs.write32(SMMU_IRQ_CTRL, 0xff);
    expect(rig.regs.read32(SMMU_IRQ_CTRL)).toBe(7);
    expect(rig.regs.read32(SMMU_IRQ_CTRLACK)).toBe(7);
    expect(rig.ctl.irq.enables).toBe(7);
    const r2 = new Rig({ features: { pri: false } });
    r2.regs.write32(SMMU_IRQ_CTRL, 7);
    expect(r2.regs.read32(SMMU_IRQ_CTRLACK)).toBe(IRQ_CTRL_EVTQ_IRQEN | IRQ_CTRL_GERROR_IRQEN);
  });

  it('§6.3.16 / §6.3.21: *_IRQ_CFGn are RO while their IRQ_CTRL / IRQ_CTRLACK enable is 1 (v3.2: write IGNORED)', () => {
    const rig = new Rig();
    rig.regs.write64(SMMU_EVTQ_IRQ_CFG0, 0x1000);
    rig.regs.write32(SMMU_EVTQ_IRQ_CFG1, 0x11);
    rig.regs.write32(SMMU_IRQ_CTRL, IRQ_CTRL_EVTQ_IRQEN);
    rig.regs.write64(SMMU_EVTQ_IRQ_CFG0, 0x2000);
    rig.regs.write32(SMMU_EVTQ_IRQ_CFG1, 0x22);
    rig.regs.write32(SMMU_EVTQ_IRQ_CFG2, 0x3);
    expect([rig.regs.read32(SMMU_EVTQ_IRQ_CFG0), rig.regs.read32(SMMU_EVTQ_IRQ_CFG1), rig.regs.read32(SMMU_EVTQ_IRQ_CFG2)]).toEqual([0x1000, 0x11, 0]);
    expect(rig.ctl.irq.cfgAddr(SMMU_EVTQ_IRQ_CFG0)).toBe(0x1000);
    // Another source's registers are not guarded by EVENTQ_IRQEN.
    rig.regs.write32(SMMU_GERROR_IRQ_CFG1, 0x33);
    expect(rig.regs.read32(SMMU_GERROR_IRQ_CFG1)).toBe(0x33);
    // Disabled again: writable.
    rig.regs.write32(SMMU_IRQ_CTRL, 0);
    rig.regs.write32(SMMU_EVTQ_IRQ_CFG1, 0x22);
    expect(rig.regs.read32(SMMU_EVTQ_IRQ_CFG1)).toBe(0x22);
  });
});

describe('§1.3 GBPA UPDATE protocol', () => {
  it('a write without UPDATE is ignored (the register reads back the old value)', () => {
    const rig = new Rig();
    rig.regs.write32(SMMU_GBPA, GBPA_ABORT);
    expect(rig.regs.read32(SMMU_GBPA)).toBe(GBPA_RESET);
    expect(rig.ctl.registers.gbpaAbort).toBe(false);
  });

  it('value | UPDATE is applied and UPDATE reads back 0 (Linux: wait UPDATE=0, write, poll UPDATE=0)', () => {
    const rig = new Rig({ manual: true });
    rig.regs.write32(SMMU_GBPA, GBPA_RESET | GBPA_ABORT | GBPA_UPDATE);
    expect(rig.regs.read32(SMMU_GBPA) >>> 0).toBe((GBPA_RESET | GBPA_ABORT | GBPA_UPDATE) >>> 0); // still pending
    rig.ctl.service();
    expect(rig.ctl.lastChanges).toBe(RegChange.GBPA);
    expect(rig.regs.read32(SMMU_GBPA)).toBe(GBPA_RESET | GBPA_ABORT);
    expect(rig.ctl.registers.gbpaAbort).toBe(true);
    // Clearing ABORT (firmware-bypass style).
    rig.regs.write32(SMMU_GBPA, (GBPA_RESET | GBPA_UPDATE) >>> 0);
    rig.ctl.service();
    expect(rig.regs.read32(SMMU_GBPA)).toBe(GBPA_RESET);
    expect(rig.ctl.registers.gbpaAbort).toBe(false);
  });

  it('IHI 0070 §6.3.14: GBPA bits [15:14] and [7:5] are RES0 in the Non-secure GBPA (no NSCFG)', () => {
    const rig = new Rig();
    rig.regs.write32(SMMU_GBPA, (GBPA_UPDATE | 0xc000 | 0xe0 | 0x1000) >>> 0);
    expect(rig.regs.read32(SMMU_GBPA)).toBe(0x1000);
  });

  it('undefined GBPA bits [30:21] are RES0', () => {
    const rig = new Rig();
    rig.regs.write32(SMMU_GBPA, 0x7fe0_0000 | GBPA_UPDATE | 0x3f);
    expect(rig.regs.read32(SMMU_GBPA)).toBe(0x1f); // MemAttr 0xF, MTCFG; SHCFG now 0
    expect(rig.ctl.registers.gbpa).toBe(0x1f);
  });
});

describe('§1.3 CR1, CR2', () => {
  it('CR1 stores the six cacheability fields (Linux 0xD75), bits above 11 RES0', () => {
    const rig = new Rig();
    rig.regs.write32(SMMU_CR1, 0xffff_f000 | CR1_LINUX);
    expect(rig.regs.read32(SMMU_CR1)).toBe(CR1_LINUX);
    expect(rig.ctl.registers.cr1).toBe(CR1_LINUX);
  });

  it('CR2 (IHI 0070 §6.3.12): RECINVSID [1]; E2H [0] RES0 without IDR0.Hyp; PTM [2] RES0 without IDR0.BTM; [31:3] RES0', () => {
    const rig = new Rig({ features: { btm: true } });
    rig.regs.write32(SMMU_CR2, 0xffff_ffff);
    expect(rig.regs.read32(SMMU_CR2)).toBe(CR2_E2H | CR2_RECINVSID | CR2_PTM);
    const r = rig.ctl.registers;
    expect([r.e2h, r.recInvSid, r.ptm]).toEqual([true, true, true]);
    const r2 = new Rig({ features: { hyp: false, btm: true } });
    r2.regs.write32(SMMU_CR2, 7);
    expect(r2.regs.read32(SMMU_CR2)).toBe(6);
    expect(r2.ctl.registers.e2h).toBe(false);
    // Defaults: BTM = 0, so Linux's PTM | RECINVSID (0x6) reads back 0x2.
    const r3 = new Rig();
    r3.regs.write32(SMMU_CR2, 0x6);
    expect(r3.regs.read32(SMMU_CR2)).toBe(0x2);
    expect(r3.ctl.registers.ptm).toBe(false);
  });

  it('§6.3.11 / §6.3.12: CR2 and CR1.TABLE_* are RO while SMMUEN = 1, CR1.QUEUE_* while a queue is enabled (v3.2: write IGNORED)', () => {
    const rig = new Rig();
    rig.regs.write32(SMMU_CR1, CR1_LINUX); // 0xD75: TABLE 0xD40, QUEUE 0x35
    rig.regs.write32(SMMU_CR2, CR2_RECINVSID);
    rig.regs.write32(SMMU_CR0, CR0_SMMUEN);
    rig.regs.write32(SMMU_CR2, CR2_E2H);
    expect(rig.regs.read32(SMMU_CR2)).toBe(CR2_RECINVSID);
    expect(rig.ctl.registers.e2h).toBe(false);
    rig.regs.write32(SMMU_CR1, 0); // TABLE_* kept (SMMUEN), QUEUE_* written (no queue enabled)
    expect(rig.regs.read32(SMMU_CR1)).toBe(0xd40);
    rig.regs.write32(SMMU_CR0, CR0_CMDQEN); // SMMUEN off, CMDQEN on
    rig.regs.write32(SMMU_CR1, 0xfff);
    expect(rig.regs.read32(SMMU_CR1)).toBe(0xfc0); // TABLE_* written, QUEUE_* kept (0)
    rig.regs.write32(SMMU_CR2, CR2_E2H);
    expect(rig.regs.read32(SMMU_CR2)).toBe(CR2_E2H);
  });
});

describe('§1.4 STRTAB_BASE / STRTAB_BASE_CFG', () => {
  it('RES0 bits masked; latched while SMMUEN = 0, with sidLog2 = min(LOG2SIZE, SIDSIZE)', () => {
    const rig = new Rig({ manual: true });
    rig.regs.write64Parts(SMMU_STRTAB_BASE, 0x1234_5678, 0xc00f_ffff); // bit 63 RES0, RA [62], ADDR [51:32]
    rig.regs.write32(SMMU_STRTAB_BASE_CFG, 0xfffc_0000 | (1 << 16) | (8 << 6) | 20);
    rig.ctl.service();
    expect(rig.ctl.lastChanges & RegChange.STRTAB).toBe(RegChange.STRTAB);
    expect(rig.regs.read32(SMMU_STRTAB_BASE)).toBe(0x1234_5640);
    expect(rig.regs.read64Hi(SMMU_STRTAB_BASE)).toBe(0x400f_ffff);
    expect(rig.regs.read32(SMMU_STRTAB_BASE_CFG)).toBe((1 << 16) | (8 << 6) | 20);
    expect(rig.ctl.registers.strtab).toEqual({ base: 0x000f_ffff_1234_5640, ra: true, log2size: 20, sidLog2: 16, split: 8, fmt: 1 });
  });

  it('writes while SMMUEN = 1 are not used until SMMUEN is cleared; writing the table and setting SMMUEN at once works', () => {
    const rig = new Rig({ manual: true });
    rig.regs.write64(SMMU_STRTAB_BASE, 0x10_0000);
    rig.regs.write32(SMMU_STRTAB_BASE_CFG, 8);
    rig.regs.write32(SMMU_CR0, CR0_SMMUEN); // same service as the table writes
    rig.ctl.service();
    expect(rig.ctl.registers.strtab).toMatchObject({ base: 0x10_0000, log2size: 8, fmt: 0 });
    expect(rig.ctl.lastChanges & (RegChange.STRTAB | RegChange.SMMUEN)).toBe(RegChange.STRTAB | RegChange.SMMUEN);
    rig.regs.write64(SMMU_STRTAB_BASE, 0x20_0000);
    rig.ctl.service();
    expect(rig.ctl.registers.strtab.base).toBe(0x10_0000);
    expect(rig.ctl.lastChanges).toBe(0);
    rig.regs.write32(SMMU_CR0, 0);
    rig.ctl.service();
    expect(rig.ctl.registers.strtab.base).toBe(0x20_0000);
    expect(rig.ctl.lastChanges & RegChange.STRTAB).toBe(RegChange.STRTAB);
  });
});

describe('§1.1 / §1.5 RES0 masking of BASE and IRQ_CFG registers', () => {
  it('queue BASE keeps RA/WA [62], ADDR [51:5], LOG2SIZE [4:0]', () => {
    const rig = new Rig();
    rig.regs.write64Parts(SMMU_CMDQ_BASE, 0xffff_ffff, 0xffff_ffff);
    expect([rig.regs.read32(SMMU_CMDQ_BASE), rig.regs.read64Hi(SMMU_CMDQ_BASE)]).toEqual([0xffff_ffff, 0x400f_ffff]);
  });

  it('IRQ_CFG0 keeps ADDR [51:2], CFG1 the 32-bit data, CFG2 SH [5:4] | MemAttr [3:0]', () => {
    const rig = new Rig();
    rig.regs.write64Parts(SMMU_EVTQ_IRQ_CFG0, 0xffff_ffff, 0xffff_ffff);
    rig.regs.write32(SMMU_EVTQ_IRQ_CFG1, 0xffff_ffff);
    rig.regs.write32(SMMU_EVTQ_IRQ_CFG2, 0xffff_ffff);
    expect([rig.regs.read32(SMMU_EVTQ_IRQ_CFG0), rig.regs.read64Hi(SMMU_EVTQ_IRQ_CFG0)]).toEqual([0xffff_fffc, 0x000f_ffff]);
    expect(rig.regs.read32(SMMU_EVTQ_IRQ_CFG1)).toBe(0xffff_ffff);
    expect(rig.regs.read32(SMMU_EVTQ_IRQ_CFG2)).toBe(0x3f);
  });

  it('without MSI the IRQ_CFG registers are RES0; without PRI the PRIQ registers are', () => {
    const rig = new Rig({ features: { msi: false, pri: false } });
    rig.regs.write64(SMMU_GERROR_IRQ_CFG0, 0x1000);
    rig.regs.write64(SMMU_PRIQ_BASE, 0x1000 + 4);
    expect(rig.regs.read32(SMMU_GERROR_IRQ_CFG0)).toBe(0);
    expect(rig.regs.read32(SMMU_PRIQ_BASE)).toBe(0);
    const r2 = new Rig({ features: { pri: false } });
    r2.regs.write64(SMMU_PRIQ_IRQ_CFG0, 0x1000);
    expect(r2.regs.read32(SMMU_PRIQ_IRQ_CFG0)).toBe(0);
  });
});

describe('§1.3 GERROR / GERRORN toggle semantics', () => {
  it('raise toggles GERROR only when the error is not active; GERRORN = GERROR acknowledges', () => {
    const rig = new Rig();
    const g = rig.ctl.gerror;
    expect(g.raise(GERROR_EVTQ_ABT_ERR)).toBe(true);
    expect(rig.regs.read32(SMMU_GERROR)).toBe(GERROR_EVTQ_ABT_ERR);
    expect(g.raise(GERROR_EVTQ_ABT_ERR)).toBe(false); // already active: no toggle
    expect(rig.regs.read32(SMMU_GERROR)).toBe(GERROR_EVTQ_ABT_ERR);
    rig.regs.write32(SMMU_GERRORN, rig.regs.read32(SMMU_GERROR));
    expect(g.activeMask).toBe(0);
    // Raised again: GERROR toggles back to 0, now ≠ GERRORN.
    expect(g.raise(GERROR_EVTQ_ABT_ERR)).toBe(true);
    expect(rig.regs.read32(SMMU_GERROR)).toBe(0);
    expect(rig.regs.read32(SMMU_GERRORN)).toBe(GERROR_EVTQ_ABT_ERR);
    expect(g.active(GERROR_EVTQ_ABT_ERR)).toBe(true);
    expect(g.raised).toBe(2);
  });

  it('acknowledging one of two active errors leaves the other active', () => {
    const rig = new Rig();
    const g = rig.ctl.gerror;
    g.raise(GERROR_CMDQ_ERR);
    g.raise(GERROR_EVTQ_ABT_ERR);
    rig.regs.write32(SMMU_GERRORN, GERROR_EVTQ_ABT_ERR);
    expect(g.activeMask).toBe(GERROR_CMDQ_ERR);
    expect(rig.regs.read32(SMMU_GERRORN)).toBe(GERROR_EVTQ_ABT_ERR);
  });

  it('toggling GERRORN for an inactive error or an undefined bit is ignored (put back)', () => {
    const rig = new Rig();
    rig.ctl.gerror.raise(GERROR_CMDQ_ERR);
    rig.regs.write32(SMMU_GERRORN, GERROR_CMDQ_ERR | GERROR_EVTQ_ABT_ERR | 0x2 | 0x8000_0000);
    expect(rig.regs.read32(SMMU_GERRORN)).toBe(GERROR_CMDQ_ERR);
    expect(rig.ctl.gerror.activeMask).toBe(0);
  });

  it('GERROR interrupt: doorbell when GERROR_IRQEN, none otherwise; MSI writes GERROR_IRQ_CFG1 at CFG0', () => {
    const rig = new Rig();
    const irq0 = rig.regs.irq.value;
    rig.ctl.gerror.raise(GERROR_CMDQ_ERR);
    expect(rig.regs.irq.value).toBe(irq0);
    rig.regs.write32(SMMU_GERRORN, rig.regs.read32(SMMU_GERROR));
    const page = rig.mem.allocFrame();
    rig.regs.write64(SMMU_GERROR_IRQ_CFG0, page + 0x40);
    rig.regs.write32(SMMU_GERROR_IRQ_CFG1, 0xabcd_0001);
    rig.regs.write32(SMMU_IRQ_CTRL, IRQ_CTRL_GERROR_IRQEN);
    rig.ctl.gerror.raise(GERROR_CMDQ_ERR);
    expect(rig.regs.irq.value).toBe(irq0 + 1);
    expect(rig.mem.read32(page + 0x40)).toBe(0xabcd_0001);
    expect(rig.ctl.irq.stats).toMatchObject({ gerror: 1, msiWrites: 1 });
  });

  it('an aborted GERROR MSI toggles MSI_GERROR_ABT_ERR (no second interrupt)', () => {
    const rig = new Rig();
    rig.regs.write64(SMMU_GERROR_IRQ_CFG0, 2 ** 45);
    rig.regs.write32(SMMU_IRQ_CTRL, IRQ_CTRL_GERROR_IRQEN);
    const irq0 = rig.regs.irq.value;
    rig.ctl.gerror.raise(GERROR_CMDQ_ERR);
    expect(rig.ctl.gerror.activeMask).toBe(GERROR_CMDQ_ERR | GERROR_MSI_GERROR_ABT_ERR);
    expect(rig.regs.irq.value).toBe(irq0 + 1);
    expect(rig.ctl.irq.stats.msiAborts).toBe(1);
  });
});
