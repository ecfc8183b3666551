/**
 * SMMUv3 model: one test per event type the model raises, with the exact record words
 * (smmuv3.md §5.1 layout, §5.2 ids and recording policy, §12 #11–#13), and the FaultReason /
 * faultDetail the device port reports.
 */
import { FaultReason } from '@iommulab/driver-api';
import { ACCESS_EXEC, ACCESS_READ, ACCESS_WRITE, dmaRequest, dmaResult } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { CR0_CMDQEN, CR0_EVTQEN, CR0_PRIQEN, CR0_SMMUEN, EvtId, SMMU_STRTAB_BASE } from '../src/codec/index.js';
import {
  HandTables,
  S1_AP_EL0,
  S1_AP_RO,
  S1_NG,
  S1_PAGE,
  S2_PAGE_RW,
  SpecRig,
  linuxCd,
  linuxS1Ste,
  linuxS2Ste,
  s2Tables,
} from './helpers/spec-rig.js';

const FAULT = (fault: number, detail: number) => ({ ok: false, pa: 0, fault, faultDetail: detail });
const TWO_32 = 2 ** 32;
/** Event CLASS encodings (IHI 0070 §7.3): TT = 0b01, IN = 0b10. */
const CLS_TT = 1;
const CLS_IN = 2;

/** Words of an 8-word record from dword values given as [lo, hi] pairs. */
function words(d0: [number, number], d1: [number, number] = [0, 0], d2: [number, number] = [0, 0], d3: [number, number] = [0, 0]): number[] {
  return [...d0, ...d1, ...d2, ...d3].map((x) => x >>> 0);
}

/** An S1 stream `sid` with one CD (ASID 1) over fresh 4K tables; `cd` / `ste` override fields. */
function s1Stream(r: SpecRig, sid: number, cd: Record<string, number> = {}, ste: Record<string, number> = {}) {
  const pt = new HandTables(r.mem, 0);
  const cdPa = r.alloc(64);
  r.writeCd(cdPa, linuxCd(pt.root, 1, cd));
  r.writeSte(sid, linuxS1Ste(cdPa, ste));
  r.cfgiSte(sid);
  return { pt, cdPa };
}

describe('configuration and fetch events (always recorded, §5.2)', () => {
  it('C_BAD_STREAMID 0x02: StreamID beyond the table (CR2.RECINVSID = 1)', () => {
    const r = new SpecRig({ strtabLog2: 4 });
    expect(r.dma(16, 0x1000, ACCESS_READ, { pasid: 3 })).toEqual(FAULT(FaultReason.BAD_RID, EvtId.C_BAD_STREAMID));
    expect(r.events().map((e) => e.words)).toEqual([words([0x02 | (1 << 11) | (3 << 12), 16])]);
  });

  it('F_STE_FETCH 0x03: an STE outside PhysMem (FetchAddr in dword 3)', () => {
    const r = new SpecRig({ enable: false });
    r.w64(SMMU_STRTAB_BASE, 0x8_0000_0000); // 32 GiB: far beyond the 64 MiB of PhysMem
    r.cr0(CR0_CMDQEN | CR0_EVTQEN | CR0_PRIQEN | CR0_SMMUEN);
    expect(r.dma(1, 0x1000)).toEqual(FAULT(FaultReason.WALK_ABORT, EvtId.F_STE_FETCH));
    expect(r.events().map((e) => e.words)).toEqual([words([0x03, 1], [0, 0], [0, 0], [0x40, 0x8])]);
  });

  it('F_STE_FETCH: an L1STD pointing outside PhysMem (2-level)', () => {
    const r = new SpecRig({ strtab: '2level', strtabLog2: 16, split: 8 });
    r.writeL1Std(2, 0x1_0000_0000, 9);
    expect(r.dma(0x203, 0).faultDetail).toBe(EvtId.F_STE_FETCH);
    const [e] = r.events();
    expect([e.id, e.sid, e.fetchAddr]).toEqual([EvtId.F_STE_FETCH, 0x203, 0x1_0000_0000 + 3 * 64]);
  });

  it('C_BAD_STE 0x04: SID and the transaction’s SSV/SSID only', () => {
    const r = new SpecRig();
    r.writeSte(8, { V: 1, CONFIG: 6 }); // stage 2 with S2AA64 = 0 (VMSAv8-32, IDR0.TTF = AArch64 only): ILLEGAL
    r.cfgiSte(8);
    expect(r.dma(8, 0x1000, ACCESS_WRITE, { pasid: 0x12345 })).toEqual(FAULT(FaultReason.BAD_CONFIG, EvtId.C_BAD_STE));
    expect(r.events().map((e) => e.words)).toEqual([words([0x04 | (1 << 11) | (0x12345 << 12), 8])]);
  });

  it('F_BAD_ATS_TREQ 0x05: ATS Translation Request with STE.EATS = 0', () => {
    const r = new SpecRig();
    s1Stream(r, 3);
    const out = r.hw.atsTranslate(dmaRequest({ rid: 3, iova: 0x5000, access: ACCESS_READ | ACCESS_WRITE, privileged: true }), dmaResult());
    expect(out).toEqual(FAULT(FaultReason.BLOCKED, EvtId.F_BAD_ATS_TREQ));
    // PnU = 1, InD = 0, RnW = 0 (a write is requested), InputAddr 0x5000
    expect(r.events().map((e) => e.words)).toEqual([words([0x05, 3], [0, 1 << 1], [0x5000, 0])]);
  });

  it('F_STREAM_DISABLED 0x06: no SubstreamID, S1CDMax > 0, S1DSS = terminate', () => {
    const r = new SpecRig();
    s1Stream(r, 4, {}, { S1_CD_MAX: 2, S1DSS: 0 });
    expect(r.dma(4, 0x1000)).toEqual(FAULT(FaultReason.BLOCKED, EvtId.F_STREAM_DISABLED));
    expect(r.events().map((e) => e.words)).toEqual([words([0x06, 4])]);
  });

  it('C_BAD_SUBSTREAMID 0x08: the offending SubstreamID, no SSV bit (IHI 0070 §7.3.9)', () => {
    const r = new SpecRig();
    s1Stream(r, 4, {}, { S1_CD_MAX: 2 });
    expect(r.dma(4, 0x1000, ACCESS_READ, { pasid: 4 })).toEqual(FAULT(FaultReason.BAD_PASID, EvtId.C_BAD_SUBSTREAMID));
    expect(r.events().map((e) => e.words)).toEqual([words([0x08 | (4 << 12), 4])]);
  });

  it('C_BAD_SUBSTREAMID: an invalid L1CD reached for CD 0 of a transaction without SubstreamID records SubstreamID 0 (§7.3.9)', () => {
    const r = new SpecRig();
    const l1 = r.alloc(64);
    r.writeSte(4, linuxS1Ste(l1, { S1FMT: 1, S1_CD_MAX: 8, S1DSS: 2 })); // L1CD 0 is all zeros (V = 0)
    r.cfgiSte(4);
    expect(r.dma(4, 0x1000)).toEqual(FAULT(FaultReason.BAD_PASID, EvtId.C_BAD_SUBSTREAMID));
    expect(r.events().map((e) => e.words)).toEqual([words([0x08, 4])]);
  });

  it('F_CD_FETCH 0x09: a CD (or L1CD) outside PhysMem, FetchAddr in dword 3 (not dword 2 as QEMU)', () => {
    const r = new SpecRig();
    r.writeSte(2, linuxS1Ste(0x40_0000_0000));
    r.cfgiSte(2);
    expect(r.dma(2, 0x1000)).toEqual(FAULT(FaultReason.WALK_ABORT, EvtId.F_CD_FETCH));
    r.writeSte(3, linuxS1Ste(0x40_0000_0000, { S1FMT: 2, S1_CD_MAX: 12 }));
    r.cfgiSte(3);
    expect(r.dma(3, 0x1000, ACCESS_READ, { pasid: 0x805 }).faultDetail).toBe(EvtId.F_CD_FETCH);
    expect(r.events().map((e) => e.words)).toEqual([
      words([0x09, 2], [0, 0], [0, 0], [0, 0x40]),
      words([0x09 | (1 << 11) | (0x805 << 12), 3], [0, 0], [0, 0], [2 * 8, 0x40]), // L1CD index 2
    ]);
  });

  it('C_BAD_CD 0x0A: V = 0 (BLOCKED) and every ILLEGAL CD rule (§3.4)', () => {
    const r = new SpecRig({ options: { asid16: false } });
    const bad: Record<string, number>[] = [
      { AA64: 0 },
      { ENDI: 1 },
      { T0SZ: 10 },
      { T0SZ: 40 },
      { TG0: 3 },
      { TTB0: 2 ** 48 / 16 }, // TTB0 beyond IPS (48 bits)
      { ASID: 256 }, // ASID16 = 0
      { EPD1: 0, TG1: 0 }, // TTB1 walks enabled with a reserved TG1
    ];
    let sid = 1;
    const cdPa = r.alloc(64);
    const pt = new HandTables(r.mem, 0);
    r.writeCd(cdPa, linuxCd(pt.root, 1, { V: 0 }));
    r.writeSte(sid, linuxS1Ste(cdPa));
    r.cfgiSte(sid);
    expect(r.dma(sid, 0x1000)).toEqual(FAULT(FaultReason.BLOCKED, EvtId.C_BAD_CD));
    for (const f of bad) {
      sid++;
      const c = r.alloc(64);
      r.writeCd(c, linuxCd(pt.root, 1, f));
      r.writeSte(sid, linuxS1Ste(c));
      r.cfgiSte(sid);
      expect([f, r.dma(sid, 0x1000)]).toEqual([f, FAULT(FaultReason.BAD_CONFIG, EvtId.C_BAD_CD)]);
    }
    expect(r.events().map((e) => [e.id, e.sid])).toEqual(Array.from({ length: sid }, (_, i) => [EvtId.C_BAD_CD, i + 1]));
    // CD.A = 0 with TERM_MODEL = 1; CD.S = 1 without stall support; CD.S = 0 with stall forced;
    // CD.HA without HTTU; CD.HD with HTTU = 1 (IHI 0070 §5.4.2 CdIllegal)
    for (const [opts, f] of [
      [{ termModel: 1 }, { A: 0 }],
      [{ stall: 'none' }, { S: 1 }],
      [{ stall: 'forced' }, { S: 0 }],
      [{ httu: 0 }, { HA: 1 }],
      [{ httu: 1 }, { HA: 1, HD: 1 }],
    ] as const) {
      const q = new SpecRig({ options: opts });
      s1Stream(q, 1, f);
      expect([f, q.dma(1, 0x1000).faultDetail]).toEqual([f, EvtId.C_BAD_CD]);
    }
    // STE.S1STALLD = 1 with CD.S = 1 is ILLEGAL (C_BAD_CD)
    const q = new SpecRig();
    s1Stream(q, 1, { S: 1 }, { S1STALLD: 1 });
    expect(q.dma(1, 0x1000).faultDetail).toBe(EvtId.C_BAD_CD);
  });

  it('not ILLEGAL (IHI 0070 §5.4): {HD, HA} = 0b10 behaves as HTTU disabled; a misaligned TTB0 is aligned down; ENDI is IGNORED when EPD0 = EPD1 = 1', () => {
    const r = new SpecRig();
    const page = r.mem.allocFrame();
    const a = s1Stream(r, 5, { HD: 1, HA: 0 });
    a.pt.map(0x9000, page, 3, (S1_PAGE & ~0x400) | S1_AP_EL0 | S1_NG); // AF = 0: faults (no hardware AF update)
    expect(r.dma(5, 0x9000).faultDetail).toBe(EvtId.F_ACCESS);
    expect(a.pt.read(0x9000)[0] & 0x400).toBe(0);
    const b = new HandTables(r.mem, 0);
    b.map(0x2000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    const cd = r.alloc(64);
    r.writeCd(cd, linuxCd(b.root + 0x18, 7)); // TTB0 low bits set: treated as zero (4 KiB start table)
    r.writeSte(6, linuxS1Ste(cd));
    r.cfgiSte(6);
    expect(r.dma(6, 0x2010).pa).toBe(page + 0x10);
    s1Stream(r, 8, { EPD0: 1, EPD1: 1, ENDI: 1, ASID: 9 });
    expect(r.dma(8, 0x2000).faultDetail).toBe(EvtId.F_TRANSLATION); // EPD0: a translation fault, not C_BAD_CD
  });

  it('F_UUT 0x01: a malformed request (no access bit) with InputAddr', () => {
    const r = new SpecRig();
    s1Stream(r, 2);
    expect(r.dma(2, 0x3000, 0)).toEqual(FAULT(FaultReason.BLOCKED, EvtId.F_UUT));
    expect(r.events().map((e) => e.words)).toEqual([words([0x01, 2], [0, 1 << 3], [0x3000, 0])]);
  });
});

describe('translation faults, stage 1 (recorded when CD.R, §5.2)', () => {
  it('F_TRANSLATION 0x10: the §5.4 worked record (SID 5, read of 0x1234000)', () => {
    const r = new SpecRig();
    s1Stream(r, 5);
    expect(r.dma(5, 0x1234000)).toEqual(FAULT(FaultReason.TRANSLATION, EvtId.F_TRANSLATION));
    // IHI 0070 §7.3.13: a stage-1 fault is S2 = 0, CLASS = IN (0b10, dword 1 [41:40])
    expect(r.events().map((e) => e.words)).toEqual([words([0x10, 5], [0, 0x8 | (CLS_IN << 8)], [0x1234000, 0])]);
  });

  it('F_TRANSLATION with CD.R = 0: terminated, not recorded', () => {
    const r = new SpecRig();
    s1Stream(r, 5, { R: 0 });
    expect(r.dma(5, 0x1234000)).toEqual(FAULT(FaultReason.TRANSLATION, EvtId.F_TRANSLATION));
    expect(r.events()).toEqual([]);
  });

  it('F_TRANSLATION: EPD0 = 1, and an input beyond T0SZ', () => {
    const r = new SpecRig();
    s1Stream(r, 5, { EPD0: 1 });
    s1Stream(r, 6, { T0SZ: 25 }); // 39-bit region
    expect(r.dma(5, 0x1000).faultDetail).toBe(EvtId.F_TRANSLATION);
    expect(r.dma(6, 2 ** 39).faultDetail).toBe(EvtId.F_TRANSLATION);
    expect(r.events().map((e) => [e.id, e.sid, e.inputAddr])).toEqual([
      [0x10, 5, 0x1000],
      [0x10, 6, 2 ** 39],
    ]);
  });

  it('F_WALK_EABT 0x0B: a table outside PhysMem (FetchAddr), recorded even with CD.R = 0', () => {
    const r = new SpecRig();
    const cdPa = r.alloc(64);
    r.writeCd(cdPa, linuxCd(0x1_0000_0000, 1, { R: 0 }));
    r.writeSte(7, linuxS1Ste(cdPa));
    r.cfgiSte(7);
    const va = 0x0000_8123_4567_8000; // level-0 index 0x102
    expect(r.dma(7, va, ACCESS_WRITE)).toEqual(FAULT(FaultReason.WALK_ABORT, EvtId.F_WALK_EABT));
    expect(r.events().map((e) => e.words)).toEqual([
      // §7.3.12: a stage-1 descriptor fetch abort is S2 = 0, CLASS = TT (0b01); RnW = 0 (write)
      words([0x0b, 7], [0, CLS_TT << 8], [va % TWO_32, Math.floor(va / TWO_32)], [0x102 * 8, 0x1]),
    ]);
  });

  it('F_ADDR_SIZE 0x11: a stage-1 output address at or beyond 2^IPS', () => {
    const r = new SpecRig();
    const { pt } = s1Stream(r, 5, { IPS: 0 }); // 32-bit intermediate size
    pt.map(0x7000, 0x1_0000_0000, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    expect(r.dma(5, 0x7010)).toEqual(FAULT(FaultReason.ADDRESS_SIZE, EvtId.F_ADDR_SIZE));
    expect(r.events().map((e) => e.words)).toEqual([words([0x11, 5], [0, 0x8 | (CLS_IN << 8)], [0x7010, 0])]);
  });

  it('F_ACCESS 0x12: AF = 0 without HA or AFFD; HA sets AF in memory; AFFD ignores it', () => {
    const r = new SpecRig();
    const page = r.mem.allocFrame();
    const a = s1Stream(r, 5);
    a.pt.map(0x9000, page, 3, (S1_PAGE & ~0x400) | S1_AP_EL0 | S1_NG);
    expect(r.dma(5, 0x9000)).toEqual(FAULT(FaultReason.ACCESS_FLAG, EvtId.F_ACCESS));
    expect(r.events().map((e) => e.words)).toEqual([words([0x12, 5], [0, 0x8 | (CLS_IN << 8)], [0x9000, 0])]);
    const b = s1Stream(r, 6, { AFFD: 1, ASID: 2 }); // own ASIDs: same ASID + VMID would share TLB entries
    b.pt.map(0x9000, page, 3, (S1_PAGE & ~0x400) | S1_AP_EL0 | S1_NG);
    expect(r.dma(6, 0x9000).pa).toBe(page);
    const c = s1Stream(r, 7, { HA: 1, ASID: 3 });
    c.pt.map(0x9000, page, 3, (S1_PAGE & ~0x400) | S1_AP_EL0 | S1_NG);
    expect(r.dma(7, 0x9004).pa).toBe(page + 4);
    expect(c.pt.read(0x9000)[0] & 0x400).toBe(0x400);
  });

  it('F_PERMISSION 0x13: write to read-only, unprivileged to privileged-only, fetch from XN (PnU, InD, RnW)', () => {
    const r = new SpecRig();
    const { pt } = s1Stream(r, 5);
    const page = r.mem.allocFrame();
    pt.map(0x1000, page, 3, S1_PAGE | S1_AP_EL0 | S1_AP_RO | S1_NG);
    pt.map(0x2000, page, 3, S1_PAGE | S1_NG); // EL1 only
    pt.map(0x3000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG, 3 << 21); // PXN | UXN
    expect(r.dma(5, 0x1000).pa).toBe(page);
    expect(r.dma(5, 0x1008, ACCESS_WRITE, { priv: true })).toEqual(FAULT(FaultReason.PERMISSION, EvtId.F_PERMISSION));
    expect(r.dma(5, 0x2000, ACCESS_READ, { priv: true }).pa).toBe(page);
    expect(r.dma(5, 0x2000).faultDetail).toBe(EvtId.F_PERMISSION);
    expect(r.dma(5, 0x3000, ACCESS_EXEC).faultDetail).toBe(EvtId.F_PERMISSION);
    expect(r.events().map((e) => e.words)).toEqual([
      words([0x13, 5], [0, (1 << 1) | (CLS_IN << 8)], [0x1008, 0]), // PnU, write (RnW = 0)
      words([0x13, 5], [0, (1 << 3) | (CLS_IN << 8)], [0x2000, 0]), // unprivileged read
      words([0x13, 5], [0, (1 << 2) | (1 << 3) | (CLS_IN << 8)], [0x3000, 0]), // InD, a fetch is a read (§12 #13)
    ]);
  });
});

describe('translation faults, stage 2 only (S2 = 1, CLASS = IN, recorded when STE.S2R)', () => {
  function s2Stream(r: SpecRig, sid: number, extra: Record<string, number> = {}) {
    const s2 = s2Tables(r.mem);
    r.writeSte(sid, linuxS2Ste(3, s2.root, extra));
    r.cfgiSte(sid);
    return s2;
  }
  const IN = 2;

  it('F_TRANSLATION: IPA in dword 3 [51:12]', () => {
    const r = new SpecRig();
    s2Stream(r, 9);
    expect(r.dma(9, 0x12_3456_7abc)).toEqual(FAULT(FaultReason.TRANSLATION, EvtId.F_TRANSLATION));
    expect(r.events().map((e) => e.words)).toEqual([
      words([0x10, 9], [0, 0x8 | (1 << 7) | (IN << 8)], [0x3456_7abc, 0x12], [0x3456_7000, 0x12]),
    ]);
  });

  it('F_TRANSLATION: an IPA beyond S2T0SZ (40 bits)', () => {
    const r = new SpecRig();
    s2Stream(r, 9);
    expect(r.dma(9, 2 ** 40).faultDetail).toBe(EvtId.F_TRANSLATION);
    const [e] = r.events();
    expect([e.s2, e.cls, e.ipa]).toEqual([1, IN, 2 ** 40]);
  });

  it('F_PERMISSION: write to an S2AP read-only page; F_ACCESS: AF = 0; not recorded with S2R = 0', () => {
    const r = new SpecRig();
    const s2 = s2Stream(r, 9);
    const page = r.mem.allocFrame();
    s2.map(0x4000_0000, page, 3, S2_PAGE_RW & ~0x80); // read only
    s2.map(0x4000_1000, page, 3, S2_PAGE_RW & ~0x400); // AF = 0
    expect(r.dma(9, 0x4000_0010).pa).toBe(page + 0x10);
    expect(r.dma(9, 0x4000_0010, ACCESS_WRITE)).toEqual(FAULT(FaultReason.PERMISSION, EvtId.F_PERMISSION));
    expect(r.dma(9, 0x4000_1000)).toEqual(FAULT(FaultReason.ACCESS_FLAG, EvtId.F_ACCESS));
    expect(r.events().map((e) => [e.id, e.s2, e.cls, e.rnw, e.ipa])).toEqual([
      [0x13, 1, IN, 0, 0x4000_0000],
      [0x12, 1, IN, 1, 0x4000_1000],
    ]);
    const q = new SpecRig();
    const s2q = s2Stream(q, 9, { S2R: 0 });
    s2q.map(0x4000_0000, page, 3, S2_PAGE_RW & ~0x80);
    expect(q.dma(9, 0x4000_0010, ACCESS_WRITE).faultDetail).toBe(EvtId.F_PERMISSION);
    expect(q.dma(9, 0x5000_0010).faultDetail).toBe(EvtId.F_TRANSLATION);
    expect(q.events()).toEqual([]);
  });

  it('F_ADDR_SIZE: stage-2 output beyond S2PS (S2 = 1); input beyond IAS with stage 1 bypassed (S2 = 0, §8)', () => {
    const r = new SpecRig();
    const s2 = s2Stream(r, 9, { S2PS: 0 }); // 32-bit output
    s2.map(0x4000_0000, 0x1_0000_0000, 3, S2_PAGE_RW);
    expect(r.dma(9, 0x4000_0010)).toEqual(FAULT(FaultReason.ADDRESS_SIZE, EvtId.F_ADDR_SIZE));
    expect(r.dma(9, 2 ** 48)).toEqual(FAULT(FaultReason.ADDRESS_SIZE, EvtId.F_ADDR_SIZE));
    expect(r.events().map((e) => [e.id, e.s2, e.cls, e.ipa, e.inputAddr])).toEqual([
      [0x11, 1, IN, 0x4000_0000, 0x4000_0010],
      [0x11, 0, IN, 0, 2 ** 48], // §7.3.14: stage-1 bypass → S2 = 0, CLASS = IN
    ]);
  });

  it('IHI 0070 §3.4: stage-1-bypass F_ADDR_SIZE is recorded whatever STE.S2R says; Config bypass and S1DSS bypass check the input against 2^OAS', () => {
    // "If the input address of a transaction exceeds the size of the IAS, a stage 1 Address Size
    // fault occurs, the transaction is terminated with an abort and F_ADDR_SIZE is recorded."
    const r = new SpecRig(); // OAS 48 = IAS (IDR0.TTF = AArch64 only)
    s2Stream(r, 9, { S2R: 0 });
    expect(r.dma(9, 2 ** 48)).toEqual(FAULT(FaultReason.ADDRESS_SIZE, EvtId.F_ADDR_SIZE));
    // "When a stream selects an STE with STE.Config == 0b100 ... If the input address of a transaction
    // exceeds the size of the OAS, the transaction is terminated with an abort and a stage 1 Address
    // Size fault (F_ADDR_SIZE) is recorded."
    r.writeSte(10, { V: 1, CONFIG: 4 });
    r.cfgiSte(10);
    expect(r.dma(10, 2 ** 48 - 8)).toEqual({ ok: true, pa: 2 ** 48 - 8, fault: 0, faultDetail: 0 });
    expect(r.dma(10, 2 ** 48)).toEqual(FAULT(FaultReason.ADDRESS_SIZE, EvtId.F_ADDR_SIZE));
    expect(r.dma(10, 2 ** 48)).toEqual(FAULT(FaultReason.ADDRESS_SIZE, EvtId.F_ADDR_SIZE)); // fast path too
    // Stage 1 bypassed by S1DSS = 0b01 with stage 2 bypassed (Config 0b101).
    s1Stream(r, 11, {}, { S1_CD_MAX: 2, S1DSS: 1 });
    expect(r.dma(11, 0x1234).ok).toBe(true);
    expect(r.dma(11, 2 ** 50)).toEqual(FAULT(FaultReason.ADDRESS_SIZE, EvtId.F_ADDR_SIZE));
    expect(r.events().map((e) => [e.id, e.sid, e.s2, e.cls, e.inputAddr])).toEqual([
      [0x11, 9, 0, IN, 2 ** 48],
      [0x11, 10, 0, IN, 2 ** 48],
      [0x11, 10, 0, IN, 2 ** 48],
      [0x11, 11, 0, IN, 2 ** 50],
    ]);
  });

  it('IHI 0070 §3.4: SMMUEN = 0 bypass (GBPA.ABORT = 0) of an input beyond the OAS is aborted, no event', () => {
    const r = new SpecRig({ enable: false });
    expect(r.dma(1, 2 ** 48 - 4)).toEqual({ ok: true, pa: 2 ** 48 - 4, fault: 0, faultDetail: 0 });
    expect(r.dma(1, 2 ** 48)).toEqual(FAULT(FaultReason.BLOCKED, 0));
  });
});
