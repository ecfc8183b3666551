/**
 * SMMUv3 model: configuration and TLB caching (smmuv3.md §4.7, §12 #17). Cached STEs, CDs and
 * translations are served stale until the matching CFGI / TLBI command is consumed (and, as
 * software observes it, the CMD_SYNC after it completes) — a driver that forgets an invalidation
 * sees the old state. Each TLBI scope drops exactly what §4.7 says.
 */
import { FaultReason } from '@iommulab/driver-api';
import { ACCESS_READ, ACCESS_WRITE } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { CFGI_RANGE_ALL, CmdOp, EvtId, SyncCs } from '../src/codec/index.js';
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

/** SYNC without the doorbell: put only. */
function putSync(r: SpecRig): void {
  r.put({ OPCODE: CmdOp.SYNC, CS: SyncCs.SEV, MSH: 3, MSIATTR: 0xf });
}

/** An S1 stream: one CD with `asid` over its own tables, STE with `vmid`; returns the tables and CD PA. */
function s1Stream(r: SpecRig, sid: number, asid: number, vmid = 0, cdExtra: Record<string, number> = {}, steExtra: Record<string, number> = {}) {
  const pt = new HandTables(r.mem, 0);
  const cd = r.alloc(64);
  r.writeCd(cd, linuxCd(pt.root, asid, cdExtra));
  r.writeSte(sid, linuxS1Ste(cd, { S2VMID: vmid, ...steExtra }));
  r.cfgiSte(sid);
  return { pt, cd };
}

describe('stale configuration until CFGI + CMD_SYNC (§2.6, §4.7)', () => {
  it('a cached STE survives a rewrite until CFGI_STE is consumed', () => {
    const r = new SpecRig();
    r.writeSte(3, { V: 1, CONFIG: 4 });
    r.cfgiSte(3);
    expect(r.dma(3, 0x5000)).toEqual(OK(0x5000));
    r.writeSte(3, { V: 1, CONFIG: 0 }); // now abort
    expect(r.dma(3, 0x5000)).toEqual(OK(0x5000)); // stale
    r.put({ OPCODE: CmdOp.CFGI_STE, SID: 3, LEAF: 1 });
    putSync(r);
    expect(r.dma(3, 0x5000)).toEqual(OK(0x5000)); // written to the queue, doorbell not rung yet
    r.kick();
    expect(r.dma(3, 0x5000)).toEqual({ ok: false, pa: 0, fault: FaultReason.BLOCKED, faultDetail: 0 });
    expect(r.events()).toEqual([]);
  });

  it('a translating STE (its translations cached) survives a rewrite to abort until CFGI_STE + SYNC', () => {
    const r = new SpecRig();
    const { pt } = s1Stream(r, 4, 7);
    const page = r.mem.allocFrame();
    pt.map(0x3000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    for (let i = 0; i < 3; i++) expect(r.dma(4, 0x3008)).toEqual(OK(page + 8)); // walk, TLB hit, micro-TLB hit
    r.writeSte(4, { V: 1, CONFIG: 0 });
    expect(r.dma(4, 0x3008)).toEqual(OK(page + 8));
    r.cfgiSte(4);
    expect(r.dma(4, 0x3008)).toEqual({ ok: false, pa: 0, fault: FaultReason.BLOCKED, faultDetail: 0 });
  });

  it('CFGI_STE_RANGE drops the aligned block of 2^(Range+1) StreamIDs; Range = 31 is CFGI_ALL', () => {
    const r = new SpecRig();
    for (let sid = 0; sid < 8; sid++) {
      r.writeSte(sid, { V: 1, CONFIG: 4 });
      r.cfgiSte(sid);
      expect(r.dma(sid, 0x1000).ok).toBe(true);
      r.writeSte(sid, { V: 1, CONFIG: 0 });
    }
    r.cmd({ OPCODE: CmdOp.CFGI_STE_RANGE, SID: 5, RANGE: 1 }); // SIDs 4..7
    r.sync();
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((sid) => r.dma(sid, 0x1000).ok)).toEqual([true, true, true, true, false, false, false, false]);
    r.cmd({ OPCODE: CmdOp.CFGI_STE_RANGE, SID: 0, RANGE: CFGI_RANGE_ALL });
    r.sync();
    expect([0, 1, 2, 3].map((sid) => r.dma(sid, 0x1000).ok)).toEqual([false, false, false, false]);
  });

  it('a cached CD survives a rewrite until CFGI_CD (or CFGI_CD_ALL, or CFGI_STE) is consumed', () => {
    const r = new SpecRig();
    const table = r.alloc(4 * 64);
    const pt = new HandTables(r.mem, 0);
    const page = r.mem.allocFrame();
    pt.map(0x7000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    for (let n = 0; n < 4; n++) r.writeCd(table + n * 64, linuxCd(pt.root, 10 + n));
    r.writeSte(2, linuxS1Ste(table, { S1_CD_MAX: 2, S1DSS: 2 }));
    r.cfgiSte(2);
    expect(r.dma(2, 0x7008).pa).toBe(page + 8);
    expect(r.dma(2, 0x7008, ACCESS_READ, { pasid: 1 }).pa).toBe(page + 8);
    expect(r.dma(2, 0x7008, ACCESS_READ, { pasid: 2 }).pa).toBe(page + 8);
    for (let n = 0; n < 4; n++) r.writeCd(table + n * 64, linuxCd(pt.root, 10 + n, { V: 0 }));
    expect(r.dma(2, 0x7008).pa).toBe(page + 8);
    expect(r.dma(2, 0x7008, ACCESS_READ, { pasid: 1 }).pa).toBe(page + 8);
    r.cfgiCd(2, 1);
    expect(r.dma(2, 0x7008, ACCESS_READ, { pasid: 1 }).faultDetail).toBe(EvtId.C_BAD_CD);
    expect(r.dma(2, 0x7008, ACCESS_READ, { pasid: 2 }).pa).toBe(page + 8);
    expect(r.dma(2, 0x7008).pa).toBe(page + 8);
    r.cfgiCd(2, 0); // the CD used without SubstreamID (S1DSS = SSID0) is CD 0
    expect(r.dma(2, 0x7008).faultDetail).toBe(EvtId.C_BAD_CD);
    r.cmd({ OPCODE: CmdOp.CFGI_CD_ALL, SID: 2 });
    r.sync();
    expect(r.dma(2, 0x7008, ACCESS_READ, { pasid: 2 }).faultDetail).toBe(EvtId.C_BAD_CD);
  });
});

describe('stale translations until TLBI + CMD_SYNC (§4.7)', () => {
  it('a translation survives an unmap without TLBI, and is gone after TLBI_NH_VA + CMD_SYNC', () => {
    const r = new SpecRig();
    const { pt } = s1Stream(r, 1, 5);
    const page = r.mem.allocFrame();
    pt.map(0x10_0000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    expect(r.dma(1, 0x10_0123)).toEqual(OK(page + 0x123));
    pt.unmap(0x10_0000);
    expect(r.dma(1, 0x10_0123)).toEqual(OK(page + 0x123)); // stale TLB entry
    r.put({ OPCODE: CmdOp.TLBI_NH_VA, ASID: 5, VMID: 0, ADDR: 0x10_0000 / 4096, LEAF: 1 });
    putSync(r);
    expect(r.dma(1, 0x10_0123).ok).toBe(true); // not consumed yet
    r.kick();
    expect(r.dma(1, 0x10_0123)).toEqual({ ok: false, pa: 0, fault: FaultReason.TRANSLATION, faultDetail: EvtId.F_TRANSLATION });
  });

  it('TLBI_NH_VA range (RIL): (NUM + 1) · 2^SCALE granules from Address', () => {
    const r = new SpecRig();
    const { pt } = s1Stream(r, 1, 5);
    const page = r.mem.allocFrame();
    for (let i = 0; i < 16; i++) pt.map(0x20_0000 + i * 4096, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    for (let i = 0; i < 16; i++) expect(r.dma(1, 0x20_0000 + i * 4096).ok).toBe(true);
    for (let i = 0; i < 16; i++) pt.unmap(0x20_0000 + i * 4096);
    // TG 4K, SCALE 1, NUM 2: 3 × 2 = 6 pages from page 4
    r.cmd({ OPCODE: CmdOp.TLBI_NH_VA, ASID: 5, ADDR: (0x20_0000 + 4 * 4096) / 4096, TG: 1, SCALE: 1, NUM: 2, TTL: 3, LEAF: 1 });
    r.sync();
    expect(Array.from({ length: 16 }, (_, i) => (r.dma(1, 0x20_0000 + i * 4096).ok ? 1 : 0))).toEqual([
      1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1,
    ]);
  });

  it('TLBI_NH_ASID drops one ASID; TLBI_NH_VAA every ASID of the VMID; global (nG = 0) entries survive NH_ASID', () => {
    const r = new SpecRig();
    const a = s1Stream(r, 1, 5);
    const b = s1Stream(r, 2, 6);
    const page = r.mem.allocFrame();
    a.pt.map(0x1000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    a.pt.map(0x2000, page, 3, S1_PAGE | S1_AP_EL0); // global
    b.pt.map(0x1000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    const warm = () => [r.dma(1, 0x1000).ok, r.dma(1, 0x2000).ok, r.dma(2, 0x1000).ok];
    expect(warm()).toEqual([true, true, true]);
    a.pt.unmap(0x1000);
    a.pt.unmap(0x2000);
    b.pt.unmap(0x1000);
    r.cmd({ OPCODE: CmdOp.TLBI_NH_ASID, ASID: 5 });
    r.sync();
    expect(warm()).toEqual([false, true, true]);
    r.cmd({ OPCODE: CmdOp.TLBI_NH_VAA, ADDR: 1 });
    r.sync();
    expect(warm()).toEqual([false, true, false]);
    r.cmd({ OPCODE: CmdOp.TLBI_NH_VA, ASID: 99, ADDR: 2 }); // a global entry goes with any ASID's VA
    r.sync();
    expect(warm()).toEqual([false, false, false]);
  });

  it('TLBI_NH_ALL is VMID-scoped; TLBI_S12_VMALL drops stage-1 and stage-2 entries of one VMID; TLBI_NSNH_ALL everything', () => {
    const r = new SpecRig();
    const a = s1Stream(r, 1, 5, 1);
    const b = s1Stream(r, 2, 5, 2);
    const s2 = s2Tables(r.mem);
    r.writeSte(3, linuxS2Ste(2, s2.root));
    r.cfgiSte(3);
    const page = r.mem.allocFrame();
    a.pt.map(0x1000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    b.pt.map(0x1000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    s2.map(0x1000, page, 3, S2_PAGE_RW);
    const warm = () => [r.dma(1, 0x1000).ok, r.dma(2, 0x1000).ok, r.dma(3, 0x1000).ok];
    expect(warm()).toEqual([true, true, true]);
    a.pt.unmap(0x1000);
    b.pt.unmap(0x1000);
    s2.unmap(0x1000);
    r.cmd({ OPCODE: CmdOp.TLBI_NH_ALL, VMID: 1 });
    r.sync();
    expect(warm()).toEqual([false, true, true]);
    r.cmd({ OPCODE: CmdOp.TLBI_NH_ALL, VMID: 2 }); // stage-2-only entries are not stage-1
    r.sync();
    expect(warm()).toEqual([false, false, true]);
    r.cmd({ OPCODE: CmdOp.TLBI_S12_VMALL, VMID: 2 });
    r.sync();
    expect(warm()).toEqual([false, false, false]);
    a.pt.map(0x1000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    s2.map(0x1000, page, 3, S2_PAGE_RW);
    expect(warm()).toEqual([true, false, true]);
    a.pt.unmap(0x1000);
    s2.unmap(0x1000);
    r.cmd({ OPCODE: CmdOp.TLBI_NSNH_ALL });
    r.sync();
    expect(warm()).toEqual([false, false, false]);
  });

  it('TLBI_S2_IPA drops stage-2 entries covering the IPA range of that VMID only', () => {
    const r = new SpecRig();
    const s2a = s2Tables(r.mem);
    const s2b = s2Tables(r.mem);
    r.writeSte(3, linuxS2Ste(7, s2a.root));
    r.writeSte(4, linuxS2Ste(8, s2b.root));
    r.cfgiSte(3);
    r.cfgiSte(4);
    const page = r.mem.allocFrame();
    for (const t of [s2a, s2b]) for (let i = 0; i < 4; i++) t.map(0x8000_0000 + i * 4096, page, 3, S2_PAGE_RW);
    const warm = (sid: number) => [0, 1, 2, 3].map((i) => (r.dma(sid, 0x8000_0000 + i * 4096, ACCESS_WRITE).ok ? 1 : 0));
    expect([warm(3), warm(4)]).toEqual([
      [1, 1, 1, 1],
      [1, 1, 1, 1],
    ]);
    for (const t of [s2a, s2b]) for (let i = 0; i < 4; i++) t.unmap(0x8000_0000 + i * 4096);
    r.cmd({ OPCODE: CmdOp.TLBI_S2_IPA, VMID: 7, IPA: 0x8000_0000 / 4096 + 1, TG: 1, NUM: 1, TTL: 3, LEAF: 1 }); // 2 pages from page 1
    r.sync();
    expect([warm(3), warm(4)]).toEqual([
      [1, 0, 0, 1],
      [1, 1, 1, 1],
    ]);
  });

  it('EL2-world streams (STRW = EL2) are tagged apart: TLBI_NH_* leaves them, TLBI_EL2_ASID / EL2_ALL drop them', () => {
    const r = new SpecRig();
    const el2 = s1Stream(r, 1, 5, 0, {}, { STRW: 2 });
    const el1 = s1Stream(r, 2, 5, 0);
    const page = r.mem.allocFrame();
    el2.pt.map(0x1000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    el1.pt.map(0x1000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    const warm = () => [r.dma(1, 0x1000).ok, r.dma(2, 0x1000).ok];
    expect(warm()).toEqual([true, true]);
    el2.pt.unmap(0x1000);
    el1.pt.unmap(0x1000);
    r.cmd({ OPCODE: CmdOp.TLBI_NH_ASID, ASID: 5, VMID: 0 });
    r.sync();
    expect(warm()).toEqual([true, false]);
    r.cmd({ OPCODE: CmdOp.TLBI_EL2_ASID, ASID: 5 });
    r.sync();
    expect(warm()).toEqual([false, false]);
    el2.pt.map(0x1000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    expect(warm()).toEqual([true, false]);
    el2.pt.unmap(0x1000);
    r.cmd({ OPCODE: CmdOp.TLBI_EL2_ALL });
    r.sync();
    expect(warm()).toEqual([false, false]);
  });

  it('a write to a page cached from a read with HTTU dirty tracking walks again and sets the dirty state', () => {
    const r = new SpecRig();
    const { pt } = s1Stream(r, 1, 5, 0, { HA: 1, HD: 1 });
    const page = r.mem.allocFrame();
    pt.map(0x1000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG | 0x80, 1 << 19); // AP[2] = 1 (clean) + DBM
    expect(r.dma(1, 0x1000).ok).toBe(true);
    expect(pt.read(0x1000)[0] & 0x80).toBe(0x80); // still clean
    expect(r.dma(1, 0x1008, ACCESS_WRITE)).toEqual(OK(page + 8));
    expect(pt.read(0x1000)[0] & 0x80).toBe(0); // dirty: AP[2] cleared by hardware
    expect(r.hw.stats().dirtyUpdates).toBe(1);
  });
});
