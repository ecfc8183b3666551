/**
 * SMMUv3 model: global bypass (GBPA, smmuv3.md §1.3), every STE.Config (§2.2, §12 #1), S1DSS and
 * the SubstreamID rules (§3.2, §12 #10, #11), linear and 2-level CD tables (§3.2), 2-level stream
 * tables (§2.4, §12 #2, #3). Everything is set up through registers, tables in PhysMem and
 * commands, from the architecture only.
 */
import { FaultReason } from '@iommulab/driver-api';
import { ACCESS_READ, ACCESS_WRITE } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { CR2_PTM, EvtId, GBPA_ABORT, SMMU_GBPA } from '../src/codec/index.js';
import {
  HandTables,
  S1_AP_EL0,
  S1_NG,
  S1_PAGE,
  S2_PAGE_RW,
  SpecRig,
  linuxCd,
  linuxS1Ste,
  linuxS2Ste,
  s2Tables,
} from './helpers/spec-rig.js';

const OK = (pa: number) => ({ ok: true, pa, fault: 0, faultDetail: 0 });
const FAULT = (fault: number, detail: number) => ({ ok: false, pa: 0, fault, faultDetail: detail });

/** A stage-1 table mapping `va` → a fresh page (user RW, nG); returns [tables, page PA]. */
function s1Map(r: SpecRig, va: number): [HandTables, number] {
  const pt = new HandTables(r.mem, 0);
  const page = r.mem.allocFrame();
  pt.map(va, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
  return [pt, page];
}

describe('GBPA with SMMUEN = 0 (§1.3)', () => {
  it('bypasses with the reset GBPA, aborts without an event once GBPA.ABORT is set by the UPDATE protocol', () => {
    const r = new SpecRig({ enable: false });
    expect(r.r32(SMMU_GBPA)).toBe(0x1000); // reset value: SHCFG = use incoming
    expect(r.dma(3, 0x123456)).toEqual(OK(0x123456));
    expect(r.dma(999999, 0x42, ACCESS_WRITE)).toEqual(OK(0x42)); // no StreamID check either
    r.w32(SMMU_GBPA, GBPA_ABORT); // without UPDATE: ignored (v3.2)
    expect(r.r32(SMMU_GBPA)).toBe(0x1000);
    expect(r.dma(3, 0x123456)).toEqual(OK(0x123456));
    r.gbpa(GBPA_ABORT);
    expect(r.r32(SMMU_GBPA)).toBe(GBPA_ABORT);
    expect(r.dma(3, 0x123456)).toEqual(FAULT(FaultReason.BLOCKED, 0));
    expect(r.events()).toEqual([]);
    r.gbpa(0);
    expect(r.dma(3, 0x1000)).toEqual(OK(0x1000));
  });

  it('GBPA does not apply once SMMUEN = 1: an all-zero stream table gives C_BAD_STE', () => {
    const r = new SpecRig();
    r.gbpa(0);
    expect(r.dma(7, 0x1000)).toEqual(FAULT(FaultReason.BLOCKED, EvtId.C_BAD_STE));
    expect(r.events().map((e) => [e.id, e.sid])).toEqual([[EvtId.C_BAD_STE, 7]]);
  });
});

describe('STE.Config (§2.2)', () => {
  it('abort (V = 1, Config 0): terminated, no event', () => {
    const r = new SpecRig();
    r.writeSte(1, { V: 1, CONFIG: 0 });
    r.cfgiSte(1);
    expect(r.dma(1, 0x1000)).toEqual(FAULT(FaultReason.BLOCKED, 0));
    expect(r.events()).toEqual([]);
  });

  it('V = 0: C_BAD_STE, reported as BLOCKED (not configured)', () => {
    const r = new SpecRig();
    r.writeSte(1, { V: 0, CONFIG: 4 });
    r.cfgiSte(1);
    expect(r.dma(1, 0x1000)).toEqual(FAULT(FaultReason.BLOCKED, EvtId.C_BAD_STE));
    const [e] = r.events();
    expect(e.words).toEqual([EvtId.C_BAD_STE, 1, 0, 0, 0, 0, 0, 0]);
  });

  it.each([1, 2, 3])('reserved Config %i behaves as 0b000: terminated, no event (IHI 0070 §5.2 Config)', (cfg) => {
    const r = new SpecRig();
    r.writeSte(2, { V: 1, CONFIG: cfg });
    r.cfgiSte(2);
    expect(r.dma(2, 0x1000)).toEqual(FAULT(FaultReason.BLOCKED, 0));
    expect(r.events()).toEqual([]);
  });

  it('bypass (Config 4): PA = input address', () => {
    const r = new SpecRig();
    r.writeSte(3, { V: 1, CONFIG: 4 });
    r.cfgiSte(3);
    expect(r.dma(3, 0xdead000, ACCESS_WRITE)).toEqual(OK(0xdead000));
    expect(r.dma(3, 0x7ff_ffff_f000)).toEqual(OK(0x7ff_ffff_f000));
  });

  it('S1 translate (Config 5): the CD table and stage-1 tables (the §2.3 / §3.3 worked values)', () => {
    const r = new SpecRig();
    const [pt, page] = s1Map(r, 0x4000_0000);
    const cd = r.alloc(64);
    r.writeCd(cd, linuxCd(pt.root, 1));
    const ste = r.writeSte(4, linuxS1Ste(cd));
    expect(r.mem.read32(ste + 8)).toBe(0xd6); // §2.3: dword1 = 0xD6 with S1DSS = 2
    expect(r.mem.read32(cd + 4) & 0xffff0000).toBe(0x00010000); // ASID 1 in dword0 [63:48]
    r.cfgiSte(4);
    expect(r.dma(4, 0x4000_0abc)).toEqual(OK(page + 0xabc));
    expect(r.dma(4, 0x4000_0abc, ACCESS_WRITE, { priv: true })).toEqual(OK(page + 0xabc));
    expect(r.events()).toEqual([]);
  });

  it('S2 translate (Config 6): IAS 40, concatenated level-1 tables (the §2.3 worked dword2)', () => {
    const r = new SpecRig();
    const s2 = s2Tables(r.mem);
    const page = r.mem.allocFrame();
    s2.map(0xab_4000_0000, page, 3, S2_PAGE_RW); // IPA bit 39 set: second concatenated table
    const ste = r.writeSte(5, linuxS2Ste(1, s2.root, { S2PS: 4, S2PTW: 1 }));
    expect([r.mem.read32(ste + 16), r.mem.read32(ste + 20)]).toEqual([0x00000001, 0x044c3558]); // §2.3 worked dword2
    r.cfgiSte(5);
    expect(r.dma(5, 0xab_4000_0123)).toEqual(OK(page + 0x123));
    expect(r.dma(5, 0xab_4000_0123, ACCESS_WRITE)).toEqual(OK(page + 0x123));
  });

  it('a stage the SMMU does not implement is ILLEGAL', () => {
    const r = new SpecRig({ options: { stage2: false } });
    r.writeSte(5, linuxS2Ste(1, 0x10000));
    r.cfgiSte(5);
    expect(r.dma(5, 0x1000).faultDetail).toBe(EvtId.C_BAD_STE);
    const r1 = new SpecRig({ options: { stage1: false } });
    r1.writeSte(5, linuxS1Ste(0x10000));
    r1.cfgiSte(5);
    expect(r1.dma(5, 0x1000).faultDetail).toBe(EvtId.C_BAD_STE);
  });
});

describe('S1CDMax, S1DSS and SubstreamIDs (§3.2)', () => {
  /** A 16-entry linear CD table; CD n maps VA 0x1000_0000 to its own page with ASID 100 + n. */
  function setup(dss: number, extra: Record<string, number> = {}) {
    const r = new SpecRig();
    const table = r.alloc(16 * 64);
    const pages: number[] = [];
    for (let n = 0; n < 16; n++) {
      const [pt, page] = s1Map(r, 0x1000_0000);
      pages.push(page);
      r.writeCd(table + n * 64, linuxCd(pt.root, 100 + n));
    }
    r.writeSte(9, linuxS1Ste(table, { S1_CD_MAX: 4, S1DSS: dss, ...extra }));
    r.cfgiSte(9);
    return { r, pages };
  }

  it('S1DSS = 0 (terminate): a transaction without SubstreamID is F_STREAM_DISABLED', () => {
    const { r, pages } = setup(0);
    expect(r.dma(9, 0x1000_0000)).toEqual(FAULT(FaultReason.BLOCKED, EvtId.F_STREAM_DISABLED));
    expect(r.events().map((e) => [e.id, e.sid, e.ssv])).toEqual([[EvtId.F_STREAM_DISABLED, 9, 0]]);
    expect(r.dma(9, 0x1000_0010, ACCESS_READ, { pasid: 0 })).toEqual(OK(pages[0] + 0x10)); // SSID 0 allowed
    expect(r.dma(9, 0x1000_0010, ACCESS_READ, { pasid: 15 })).toEqual(OK(pages[15] + 0x10));
  });

  it('S1DSS = 1 (bypass): no SubstreamID → stage 1 bypassed', () => {
    const { r, pages } = setup(1);
    expect(r.dma(9, 0x1000_0000)).toEqual(OK(0x1000_0000));
    expect(r.dma(9, 0x1000_0020, ACCESS_READ, { pasid: 3 })).toEqual(OK(pages[3] + 0x20));
  });

  it('S1DSS = 2 (SSID0): no SubstreamID uses CD 0; SubstreamID 0 is F_STREAM_DISABLED without SSV/SSID (IHI 0070 §5.2 S1DSS, §7.3.7)', () => {
    const { r, pages } = setup(2);
    expect(r.dma(9, 0x1000_0040)).toEqual(OK(pages[0] + 0x40));
    expect(r.dma(9, 0x1000_0040, ACCESS_READ, { pasid: 0 })).toEqual(FAULT(FaultReason.BLOCKED, EvtId.F_STREAM_DISABLED));
    const [e] = r.events();
    expect(e.words).toEqual([EvtId.F_STREAM_DISABLED, 9, 0, 0, 0, 0, 0, 0]);
    expect(r.dma(9, 0x1000_0040, ACCESS_READ, { pasid: 7 })).toEqual(OK(pages[7] + 0x40));
  });

  it('SubstreamID ≥ 2^S1CDMax and SubstreamIDs with S1CDMax = 0 are C_BAD_SUBSTREAMID', () => {
    const { r } = setup(2);
    expect(r.dma(9, 0x1000_0000, ACCESS_READ, { pasid: 16 }).faultDetail).toBe(EvtId.C_BAD_SUBSTREAMID);
    expect(r.dma(9, 0x1000_0000, ACCESS_READ, { pasid: 0xfffff }).faultDetail).toBe(EvtId.C_BAD_SUBSTREAMID);
    // §7.3.9: no SSV qualifier (bit 11 RES0), the SubstreamID is always present
    expect(r.events().map((e) => [e.id, e.ssv, e.ssid])).toEqual([
      [EvtId.C_BAD_SUBSTREAMID, 0, 16],
      [EvtId.C_BAD_SUBSTREAMID, 0, 0xfffff],
    ]);
    const cd = r.alloc(64);
    const [pt] = s1Map(r, 0);
    r.writeCd(cd, linuxCd(pt.root, 5));
    r.writeSte(10, linuxS1Ste(cd));
    r.cfgiSte(10);
    expect(r.dma(10, 0x10, ACCESS_READ, { pasid: 1 })).toEqual(FAULT(FaultReason.BAD_PASID, EvtId.C_BAD_SUBSTREAMID));
    const [e] = r.events();
    expect(e.words).toEqual([(1 << 12) | EvtId.C_BAD_SUBSTREAMID, 10, 0, 0, 0, 0, 0, 0]);
  });

  it('a SubstreamID on a stream with stage 1 disabled (bypass / S2) is C_BAD_SUBSTREAMID', () => {
    const r = new SpecRig();
    r.writeSte(1, { V: 1, CONFIG: 4 });
    r.cfgiSte(1);
    expect(r.dma(1, 0x1000, ACCESS_READ, { pasid: 2 }).faultDetail).toBe(EvtId.C_BAD_SUBSTREAMID);
  });

  it('S1CDMax above IDR1.SSIDSIZE and S1Fmt 1/2 without CD2L are ILLEGAL; S1Fmt 3 behaves as 0 and S1DSS 3 as terminate (IHI 0070 §5.2)', () => {
    const r = new SpecRig({ options: { ssidBits: 4 } });
    const cd = r.alloc(64 * 32);
    const [pt, page] = s1Map(r, 0);
    for (let n = 0; n < 16; n++) r.writeCd(cd + n * 64, linuxCd(pt.root, 1));
    r.writeSte(1, linuxS1Ste(cd, { S1_CD_MAX: 5 }));
    r.cfgiSte(1);
    expect(r.dma(1, 0).faultDetail).toBe(EvtId.C_BAD_STE);
    r.writeSte(2, linuxS1Ste(cd, { S1_CD_MAX: 4, S1FMT: 3, S1DSS: 2 }));
    r.cfgiSte(2);
    expect(r.dma(2, 0x10)).toEqual(OK(page + 0x10)); // linear table: CD 0
    expect(r.dma(2, 0x20, ACCESS_READ, { pasid: 5 })).toEqual(OK(page + 0x20)); // CD 5 at cd + 5·64
    r.writeSte(3, linuxS1Ste(cd, { S1_CD_MAX: 4, S1DSS: 3 }));
    r.cfgiSte(3);
    expect(r.dma(3, 0)).toEqual(FAULT(FaultReason.BLOCKED, EvtId.F_STREAM_DISABLED));
    expect(r.events().map((e) => [e.id, e.sid])).toEqual([
      [EvtId.C_BAD_STE, 1],
      [EvtId.F_STREAM_DISABLED, 3],
    ]);
    const r2 = new SpecRig({ options: { cd2l: false } });
    r2.writeSte(1, linuxS1Ste(cd, { S1_CD_MAX: 4, S1FMT: 2 }));
    r2.cfgiSte(1);
    expect(r2.dma(1, 0).faultDetail).toBe(EvtId.C_BAD_STE);
  });
});

describe('2-level CD tables (§3.2)', () => {
  it.each([
    [1, 6],
    [2, 10],
  ])('S1Fmt %i: L1CD → leaf of 2^%i CDs; an invalid L1CD is C_BAD_SUBSTREAMID', (fmt, leafBits) => {
    const r = new SpecRig();
    const l1 = r.alloc(64 * 8);
    const leafBytes = 64 * 2 ** leafBits;
    const leaf = r.alloc(leafBytes);
    const ssid = 3 * 2 ** leafBits + 5; // L1 index 3, entry 5
    r.writeL1Cd(l1 + 3 * 8, leaf);
    const [pt, page] = s1Map(r, 0x8000);
    r.writeCd(leaf + 5 * 64, linuxCd(pt.root, 77));
    r.writeSte(6, linuxS1Ste(l1, { S1FMT: fmt, S1_CD_MAX: 16 }));
    r.cfgiSte(6);
    expect(r.dma(6, 0x8008, ACCESS_READ, { pasid: ssid })).toEqual(OK(page + 8));
    expect(r.dma(6, 0x8008, ACCESS_READ, { pasid: ssid + 2 ** leafBits })).toEqual(
      FAULT(FaultReason.BAD_PASID, EvtId.C_BAD_SUBSTREAMID),
    );
    expect(r.dma(6, 0x8008, ACCESS_READ, { pasid: ssid + 1 })).toEqual(FAULT(FaultReason.BLOCKED, EvtId.C_BAD_CD));
    expect(r.events().map((e) => [e.id, e.ssid])).toEqual([
      [EvtId.C_BAD_SUBSTREAMID, ssid + 2 ** leafBits],
      [EvtId.C_BAD_CD, ssid + 1],
    ]);
  });
});

describe('2-level stream tables (§2.4, §12 #2, #3)', () => {
  it('resolves StreamIDs through L1STDs with SPLIT 8', () => {
    const r = new SpecRig({ strtab: '2level', strtabLog2: 16, split: 8 });
    for (const sid of [0, 255, 256, 0x1234, 0xffff]) {
      r.writeSte(sid, { V: 1, CONFIG: 4 });
      r.cfgiSte(sid);
      expect(r.dma(sid, 0x5000 + sid)).toEqual(OK(0x5000 + sid));
    }
    expect(r.events()).toEqual([]);
  });

  it('L1STD Span = 0 and an L2 index ≥ 2^(Span − 1) are C_BAD_STREAMID', () => {
    const r = new SpecRig({ strtab: '2level', strtabLog2: 16, split: 8 });
    expect(r.dma(0x300, 0)).toEqual(FAULT(FaultReason.BAD_RID, EvtId.C_BAD_STREAMID)); // L1STD 3: Span 0
    const l2 = r.alloc(64 * 16);
    r.writeL1Std(5, l2, 5); // 2^(5-1) = 16 STEs
    r.writeWords(l2 + 15 * 64, new Uint32Array([0x9, 0]));
    r.cfgiSte(0x50f);
    expect(r.dma(0x50f, 0x77000)).toEqual(OK(0x77000));
    expect(r.dma(0x510, 0)).toEqual(FAULT(FaultReason.BAD_RID, EvtId.C_BAD_STREAMID)); // index 16 ≥ 16
    expect(r.events().map((e) => [e.id, e.sid])).toEqual([
      [EvtId.C_BAD_STREAMID, 0x300],
      [EvtId.C_BAD_STREAMID, 0x510],
    ]);
  });

  it('L1STD Span reserved (12–31) or > SPLIT + 1 is C_BAD_STREAMID; L2Ptr is aligned down to the array size (IHI 0070 §5.1, §7.3.3)', () => {
    const r = new SpecRig({ strtab: '2level', strtabLog2: 16, split: 6 });
    const l2 = r.alloc(64 * 64); // one frame: 4 KiB aligned
    r.writeWords(l2 + 3 * 64, new Uint32Array([0x9, 0])); // STE 3 of the array: bypass
    r.writeL1Std(1, l2, 12); // reserved Span: behaves as 0
    r.writeL1Std(2, l2, 8); // Span 8 > SPLIT + 1 = 7
    r.writeL1Std(3, l2 + 0x40, 7); // 64 STEs; L2Ptr bits [11:0] treated as zero
    for (const sid of [0x43, 0x83, 0xc3]) r.cfgiSte(sid);
    expect(r.dma(0x43, 0)).toEqual(FAULT(FaultReason.BAD_RID, EvtId.C_BAD_STREAMID));
    expect(r.dma(0x83, 0)).toEqual(FAULT(FaultReason.BAD_RID, EvtId.C_BAD_STREAMID));
    expect(r.dma(0xc3, 0x6000)).toEqual(OK(0x6000));
    expect(r.events().map((e) => [e.id, e.sid])).toEqual([
      [EvtId.C_BAD_STREAMID, 0x43],
      [EvtId.C_BAD_STREAMID, 0x83],
    ]);
  });

  it('StreamIDs ≥ 2^min(LOG2SIZE, SIDSIZE) are C_BAD_STREAMID, recorded only with CR2.RECINVSID', () => {
    const r = new SpecRig({ strtabLog2: 6 });
    expect(r.dma(64, 0)).toEqual(FAULT(FaultReason.BAD_RID, EvtId.C_BAD_STREAMID));
    expect(r.dma(2 ** 32 - 1, 0)).toEqual(FAULT(FaultReason.BAD_RID, EvtId.C_BAD_STREAMID));
    expect(r.events().map((e) => [e.id, e.sid])).toEqual([
      [EvtId.C_BAD_STREAMID, 64],
      [EvtId.C_BAD_STREAMID, 2 ** 32 - 1],
    ]);
    const q = new SpecRig({ strtabLog2: 6, cr2: CR2_PTM });
    expect(q.dma(64, 0)).toEqual(FAULT(FaultReason.BAD_RID, EvtId.C_BAD_STREAMID));
    expect(q.events()).toEqual([]);
    const s = new SpecRig({ strtabLog2: 20, options: { sidBits: 8 }, memBytes: 128 * 1024 * 1024 });
    expect(s.dma(256, 0).faultDetail).toBe(EvtId.C_BAD_STREAMID);
  });
});
