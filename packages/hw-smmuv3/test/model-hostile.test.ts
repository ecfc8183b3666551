/**
 * SMMUv3 model against hostile software and devices: structures outside PhysMem (52-bit
 * addresses included), self-referencing 2-level tables, absurd queue sizes and indices, reserved
 * encodings, garbage requests, and random tables and commands. Everything must end as an
 * architectural error (event record, C_BAD_*, CERROR_*, GERROR) — never a throw or a hang.
 */
import { FaultReason } from '@iommulab/driver-api';
import { ACCESS_READ, dmaRequest, dmaResult, type DmaRequest } from '@iommulab/runtime';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CERROR_ABT,
  CERROR_ILL,
  CR0_CMDQEN,
  CR0_EVTQEN,
  CR0_SMMUEN,
  EvtId,
  GERROR_CMDQ_ERR,
  GERROR_EVTQ_ABT_ERR,
  SMMU_CMDQ_BASE,
  SMMU_CMDQ_CONS,
  SMMU_CMDQ_PROD,
  SMMU_EVTQ_BASE,
  SMMU_GERROR,
  SMMU_STRTAB_BASE,
  SMMU_STRTAB_BASE_CFG,
} from '../src/codec/index.js';
import { HandTables, S1_AP_EL0, S1_NG, S1_PAGE, SpecRig, linuxCd, linuxS1Ste, linuxS2Ste } from './helpers/spec-rig.js';

const FAULT = (fault: number, detail: number) => ({ ok: false, pa: 0, fault, faultDetail: detail });

/** Reprograms the stream table while SMMUEN = 0, then re-enables. */
function strtab(r: SpecRig, base: number, cfg: number): void {
  r.cr0(CR0_CMDQEN | CR0_EVTQEN);
  r.w64(SMMU_STRTAB_BASE, base);
  r.w32(SMMU_STRTAB_BASE_CFG, cfg);
  r.cr0(CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
}

describe('structures outside PhysMem', () => {
  it('a stream table at the top of the 52-bit space: F_STE_FETCH, FetchAddr kept to [51:3]', () => {
    const r = new SpecRig();
    strtab(r, 0xf_ffff_ffff_ff00, 8);
    expect(r.dma(3, 0)).toEqual(FAULT(FaultReason.WALK_ABORT, EvtId.F_STE_FETCH));
    // IHI 0070 §6.3.24: a linear table's base is aligned to its size (ADDR[LOG2SIZE + 5:0] = 0): 16 KiB.
    expect(r.events().map((e) => [e.id, e.fetchAddr])).toEqual([[EvtId.F_STE_FETCH, 0xf_ffff_ffff_c000 + 3 * 64]]);
  });

  it('IHI 0070 §6.3.24: STRTAB_BASE is aligned down to the table size (linear) / max(64 B, L1 size) (2-level)', () => {
    const r = new SpecRig();
    r.cr0(CR0_CMDQEN | CR0_EVTQEN);
    r.w64(SMMU_STRTAB_BASE, 0x12_3440);
    r.w32(SMMU_STRTAB_BASE_CFG, 8); // linear, 256 STEs = 16 KiB
    r.cr0(CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
    expect(r.hw.streamTable.base).toBe(0x12_0000);
    r.cr0(CR0_CMDQEN | CR0_EVTQEN);
    r.w32(SMMU_STRTAB_BASE_CFG, 16 | (8 << 6) | (1 << 16)); // 2-level, LOG2SIZE 16, SPLIT 8: 256 L1STDs = 2 KiB
    r.cr0(CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
    expect(r.hw.streamTable.base).toBe(0x12_3000);
    r.cr0(CR0_CMDQEN | CR0_EVTQEN);
    r.w32(SMMU_STRTAB_BASE_CFG, 4 | (8 << 6) | (1 << 16)); // 2-level, SPLIT ≥ LOG2SIZE: 64-byte alignment
    r.cr0(CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
    expect(r.hw.streamTable.base).toBe(0x12_3440);
  });

  it('a stage-2 table, CD table and stage-1 table just past the end of PhysMem', () => {
    const r = new SpecRig({ memBytes: 16 * 1024 * 1024 });
    const end = r.mem.size;
    r.writeSte(1, linuxS2Ste(1, end));
    r.cfgiSte(1);
    expect(r.dma(1, 0x1000).faultDetail).toBe(EvtId.F_WALK_EABT);
    r.writeSte(2, linuxS1Ste(end)); // the CD right after the last byte
    r.cfgiSte(2);
    expect(r.dma(2, 0x1000).faultDetail).toBe(EvtId.F_CD_FETCH);
    const cd = r.alloc(64);
    r.writeCd(cd, linuxCd(end, 1));
    r.writeSte(3, linuxS1Ste(cd));
    r.cfgiSte(3);
    expect(r.dma(3, 0x1000).faultDetail).toBe(EvtId.F_WALK_EABT);
    expect(r.events().map((e) => [e.id, e.fetchAddr])).toEqual([
      [EvtId.F_WALK_EABT, end],
      [EvtId.F_CD_FETCH, end],
      [EvtId.F_WALK_EABT, end],
    ]);
  });
});

describe('self-referencing tables', () => {
  it('an L1STD whose L2 table is the L1 table itself: its words are decoded as an STE, no hang', () => {
    const r = new SpecRig({ strtab: '2level', strtabLog2: 16, split: 8 });
    // L2Ptr is aligned down to the array size (IHI 0070 §5.1): Span 9 needs 16 KiB, Span 5 1 KiB.
    r.writeL1Std(0, r.strtab, 9);
    if (r.strtab % 16384 === 0) {
      // STE 0 = L1STD 0..7: dword0 = L2Ptr | Span 9 → V = 1, Config = 0b100 (bypass)
      expect(r.dma(0, 0x1000)).toEqual({ ok: true, pa: 0x1000, fault: 0, faultDetail: 0 });
    }
    r.writeL1Std(0, r.strtab, 5); // Config = 0b010: reserved, behaves as 0b000 (IHI 0070 §5.2)
    r.cfgiSte(0);
    expect(r.dma(0, 0x1000)).toEqual(FAULT(FaultReason.BLOCKED, 0));
    expect(r.events()).toEqual([]);
  });

  it('an L1CD pointing at its own table, and a table descriptor pointing at its own table', () => {
    const r = new SpecRig();
    const l1 = r.alloc(4096);
    r.writeL1Cd(l1, l1);
    r.writeSte(1, linuxS1Ste(l1, { S1FMT: 1, S1_CD_MAX: 8 }));
    r.cfgiSte(1);
    expect(r.dma(1, 0, ACCESS_READ, { pasid: 1 }).faultDetail).toBe(EvtId.C_BAD_CD);
    const pt = new HandTables(r.mem, 0);
    r.mem.write32(pt.root, (pt.root | 3) >>> 0); // L0[0] → L0 itself, at every level
    const cd = r.alloc(64);
    r.writeCd(cd, linuxCd(pt.root, 1));
    r.writeSte(2, linuxS1Ste(cd));
    r.cfgiSte(2);
    // four levels through the same table: at level 3 the descriptor is a page at pt.root, without AF
    expect(r.dma(2, 0x123)).toEqual(FAULT(FaultReason.ACCESS_FLAG, EvtId.F_ACCESS));
  });
});

describe('absurd queues', () => {
  it('CMDQ LOG2SIZE 31 at the end of memory: clamped, base aligned to the capped size (IHI 0070 §6.3.26); absurd PROD is bounded', () => {
    const r = new SpecRig({ options: { cmdqLog2: 19 } });
    r.cr0(CR0_EVTQEN | CR0_SMMUEN);
    // IHI 0070 §6.3.26: the base is aligned to the capped queue size (2^19 × 16 B = 8 MiB), so a
    // base just below the end of PhysMem becomes the last 8 MiB boundary inside it.
    const eff = r.mem.size - 32 - ((r.mem.size - 32) % (16 * 2 ** 19));
    r.w64(SMMU_CMDQ_BASE, r.mem.size - 32 + 31);
    r.w32(SMMU_CMDQ_CONS, 0);
    r.mem.write32(eff, 0x46); // two CMD_SYNCs, then a zero (reserved opcode 0x00) entry
    r.mem.write32(eff + 16, 0x46);
    r.cr0(CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
    r.w32(SMMU_CMDQ_PROD, 0xffffffff);
    const cons = r.r32(SMMU_CMDQ_CONS);
    expect((cons >>> 24) & 0x7f).toBe(eff + 8 * 2 ** 20 <= r.mem.size ? CERROR_ILL : CERROR_ABT);
    expect(cons & 0xffffff).toBe(2);
    expect(r.r32(SMMU_GERROR) & GERROR_CMDQ_ERR).toBe(GERROR_CMDQ_ERR);
  });

  it('an event queue outside PhysMem: the record is dropped with GERROR.EVTQ_ABT_ERR, translation still faults', () => {
    const r = new SpecRig();
    r.cr0(CR0_CMDQEN | CR0_SMMUEN);
    r.w64(SMMU_EVTQ_BASE, 0x10_0000_0000 + 19);
    r.cr0(CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
    expect(r.dma(5, 0).faultDetail).toBe(EvtId.C_BAD_STE);
    expect(r.r32(SMMU_GERROR) & GERROR_EVTQ_ABT_ERR).toBe(GERROR_EVTQ_ABT_ERR);
    expect(r.hw.stats().eventsDropped).toBe(1);
  });
});

describe('reserved encodings', () => {
  it('STRTAB_BASE_CFG.FMT reserved, or 2-level without ST_LEVEL: every StreamID is C_BAD_STREAMID', () => {
    const r = new SpecRig();
    strtab(r, r.strtab, 8 | (3 << 16));
    expect(r.dma(0, 0).faultDetail).toBe(EvtId.C_BAD_STREAMID);
    const q = new SpecRig({ options: { st2lvl: false } });
    strtab(q, q.strtab, 8 | (8 << 6) | (1 << 16));
    expect(q.dma(0, 0).faultDetail).toBe(EvtId.C_BAD_STREAMID);
  });

  it.each([
    ['S2TG = 3', { S2TG: 3 }],
    ['S2SL0 = 3', { S2SL0: 3 }],
    ['S2AA64 = 0', { S2AA64: 0 }],
    ['S2ENDI = 1', { S2ENDI: 1 }],
    ['S2T0SZ = 10', { S2T0SZ: 10 }],
    ['S2T0SZ 24 with SL0 0 (more than 16 concatenated tables)', { S2SL0: 0 }],
    ['S2TTB beyond S2PS', { S2TTB: 2 ** 48 / 16 }],
    ['EATS = 2 (split-stage, IDR0.NS1ATS = 1)', { EATS: 2 }],
    ['EATS = 1 with stage 2 and S2S = 1 (§5.2 EATS)', { EATS: 1, S2S: 1 }],
  ])('%s → C_BAD_STE', (_name, f) => {
    const r = new SpecRig();
    r.writeSte(1, linuxS2Ste(1, 0x10_0000, f));
    r.cfgiSte(1);
    expect(r.dma(1, 0x1000)).toEqual(FAULT(FaultReason.BAD_CONFIG, EvtId.C_BAD_STE));
  });

  it('S2S vs STALL_MODEL, S2HA / S2HD vs HTTU, 8-bit VMIDs, STRW reserved → C_BAD_STE (IHI 0070 §5.2.2 SteIllegal)', () => {
    for (const [opts, f, s1] of [
      [{ stall: 'none' }, { S2S: 1 }, false],
      [{ stall: 'forced' }, { S2S: 0 }, false],
      [{ httu: 0 }, { S2HA: 1 }, false],
      [{ httu: 1 }, { S2HA: 1, S2HD: 1 }, false],
      [{ vmid16: false }, { S2VMID: 0x100 }, false],
      [{}, { STRW: 1 }, true], // STRW used (stage 1 only, HYP): 0bx1 reserved
      [{}, { STRW: 3 }, true],
    ] as const) {
      const r = new SpecRig({ options: opts });
      r.writeSte(1, s1 ? linuxS1Ste(0x10_0000, f) : linuxS2Ste(1, 0x10_0000, f));
      r.cfgiSte(1);
      expect([f, r.dma(1, 0x1000).faultDetail]).toEqual([f, EvtId.C_BAD_STE]);
    }
  });

  it('fields IGNORED or reserved-but-legal are not C_BAD_STE (IHI 0070 §5.2)', () => {
    // STRW with stage 2 (StreamWorld NS-EL1), EATS without ATS, EATS = 0b11 without DPT (as 0b00),
    // STRW without HYP (RES0), {S2HA, S2HD} = 0b01 (as 0b00), S2VMID[15:8] of a bypass STE
    for (const [opts, f] of [
      [{}, { STRW: 2 }],
      [{}, { STRW: 1 }],
      [{ ats: false }, { EATS: 1 }],
      [{}, { EATS: 3 }],
      [{}, { S2HD: 1 }],
      [{ hyp: false }, { CONFIG: 4, STRW: 2 }],
      [{ vmid16: false }, { CONFIG: 4, S2VMID: 0x100 }],
      [{}, { S2TTB: 0x10_0800 / 16 }], // misaligned S2TTB: aligned down
    ] as const) {
      const r = new SpecRig({ options: opts });
      r.writeSte(1, linuxS2Ste(1, 0x10_0000, f));
      r.cfgiSte(1);
      expect([f, r.dma(1, 0x1000).faultDetail]).not.toEqual([f, EvtId.C_BAD_STE]);
      expect(r.events().map((e) => e.id)).not.toContain(EvtId.C_BAD_STE);
    }
  });

  it('IPS = 0b111 (reserved) behaves as the OAS', () => {
    const r = new SpecRig();
    const pt = new HandTables(r.mem, 0);
    const page = r.mem.allocFrame();
    pt.map(0x1000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    const cd = r.alloc(64);
    r.writeCd(cd, linuxCd(pt.root, 1, { IPS: 7 }));
    r.writeSte(1, linuxS1Ste(cd));
    r.cfgiSte(1);
    expect(r.dma(1, 0x1004).pa).toBe(page + 4);
  });
});

describe('garbage requests and random state never throw', () => {
  it('malformed DmaRequests fault without throwing', () => {
    const r = new SpecRig();
    r.writeSte(1, { V: 1, CONFIG: 4 });
    r.cfgiSte(1);
    const out = dmaResult();
    const bad: Partial<DmaRequest>[] = [
      { rid: NaN },
      { rid: -1 },
      { rid: 2 ** 40 },
      { rid: 1.5 },
      { rid: 1, pasid: NaN },
      { rid: 1, pasid: 2 ** 21 },
      { rid: 1, pasid: -7 },
      { rid: 1, iova: NaN },
      { rid: 1, iova: -4096 },
      { rid: 1, iova: Infinity },
      { rid: 1, iova: 2 ** 60 },
      { rid: 1, iova: 0.5 },
      { rid: 1, access: -1 },
      { rid: 1, access: 8 },
      { rid: 1, access: 0.5 },
    ];
    for (const b of bad) {
      const req = { ...dmaRequest({ rid: 1, iova: 0x1000 }), ...b };
      expect(() => r.hw.translate(req, out)).not.toThrow();
      expect([b, out.ok]).toEqual([b, false]);
      expect(() => r.hw.atsTranslate(req, out)).not.toThrow();
      expect(() => r.hw.translatedAccess(req, out)).not.toThrow();
      expect(() => r.hw.pageRequest({ rid: req.rid, pasid: req.pasid, addr: req.iova, perm: req.access, grpid: NaN, last: true })).not.toThrow();
    }
  });

  it('random STEs, CDs, L1 descriptors, table words and requests: always a result, never a throw', () => {
    const r = new SpecRig({ strtab: '2level', strtabLog2: 10, split: 6, memBytes: 16 * 1024 * 1024 });
    const cdArea = r.alloc(64 * 64);
    const ptArea = r.alloc(4096 * 4);
    const word = fc.oneof(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.constantFrom(0, 1, 0xb, 0xd, 0xf, (cdArea | 0xb) >>> 0, (ptArea | 3) >>> 0, 0x80000000, 0x0020_0000),
    );
    const u32 = r.mem.u32;
    fc.assert(
      fc.property(
        fc.array(word, { minLength: 64, maxLength: 64 }),
        fc.array(fc.tuple(fc.nat(1023), fc.integer({ min: -1, max: 300 }), fc.nat(2 ** 40), fc.integer({ min: 0, max: 8 }), fc.boolean()), {
          minLength: 1,
          maxLength: 20,
        }),
        (ws, reqs) => {
          // scatter the words over the L1 table, one L2 table, the CD area and the table area
          for (let i = 0; i < 16; i++) u32[(r.strtab >>> 2) + i] = ws[i];
          for (let i = 0; i < 16; i++) u32[(cdArea >>> 2) + i] = ws[16 + i];
          for (let i = 0; i < 16; i++) u32[(ptArea >>> 2) + i * 64] = ws[32 + i];
          for (let i = 0; i < 16; i++) u32[(r.steAddr(i) >>> 2) + (i % 16)] = ws[48 + i];
          r.cmd({ OPCODE: 0x04, RANGE: 31 });
          r.cmd({ OPCODE: 0x30 });
          const out = dmaResult();
          for (const [rid, pasid, iova, access, priv] of reqs) {
            const q = dmaRequest({ rid, pasid, iova, access, privileged: priv });
            r.hw.translate(q, out);
            expect(typeof out.fault).toBe('number');
            expect(out.ok === (out.fault === 0)).toBe(true);
            r.hw.atsTranslate(q, out);
            r.hw.pageRequest({ rid, pasid, addr: iova, perm: access, grpid: rid, last: priv });
          }
          r.events();
          r.priRecords();
        },
      ),
      { numRuns: 300 },
    );
  });

  it('random command words: the queue halts or runs, never throws', () => {
    const r = new SpecRig();
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 0x4f }), fc.nat(0xffffffff), fc.nat(0xffffffff), fc.nat(0xffffffff)), { maxLength: 40 }), (cmds) => {
        for (const [op, a, b, c] of cmds) r.putWords([(op | (a & 0xffffff00)) >>> 0, b, c & 0xff, 0]);
        r.kick();
        const g = r.r32(SMMU_GERROR);
        r.w32(0x64, g); // acknowledge whatever halted
        expect(() => r.hw.service()).not.toThrow();
      }),
      { numRuns: 200 },
    );
  });
});
