/**
 * SMMUv3 model, nested translation end to end (STE.Config = 0b111, smmuv3.md §8): the CD table
 * and every stage-1 table address are IPAs translated by stage 2 (faults S2 = 1, CLASS = CD /
 * TT), the stage-1 output IPA is translated by stage 2 (CLASS = IN), stage-1 faults are S2 = 0.
 *
 * Layout: PhysMem (64 MiB) appears in the guest IPA space at IPA = PA + 0x40_0000_0000 through
 * 2 MiB stage-2 blocks; the stage-1 tables store IPAs.
 */
import { FaultReason } from '@iommulab/driver-api';
import { ACCESS_READ, ACCESS_WRITE } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { CmdOp, EvtClass, EvtId } from '../src/codec/index.js';
import {
  HandTables,
  S1_AP_EL0,
  S1_NG,
  S1_PAGE,
  S2_BLOCK_RW,
  SpecRig,
  linuxCd,
  linuxS1Ste,
  linuxS2Ste,
  s2Tables,
} from './helpers/spec-rig.js';

const OFF = 0x40_0000_0000;
const MiB2 = 2 * 1024 * 1024;
const FAULT = (fault: number, detail: number) => ({ ok: false, pa: 0, fault, faultDetail: detail });

/** Guest: nested stream `sid` (VMID 4, ASID 9), stage 2 maps all PhysMem at +OFF. */
function nested(r: SpecRig, sid: number, o: { cd?: Record<string, number>; ste?: Record<string, number>; s2Hole?: number } = {}) {
  const s2 = s2Tables(r.mem);
  for (let pa = 0; pa < r.mem.size; pa += MiB2) if (pa !== o.s2Hole) s2.map(OFF + pa, pa, 2, S2_BLOCK_RW);
  const s1 = new HandTables(r.mem, 0, 1, (pa) => pa + OFF);
  const cdPa = r.mem.allocFrames(512, 512); // the CD alone in its 2 MiB stage-2 block
  r.writeCd(cdPa, linuxCd(s1.root + OFF, 9, o.cd ?? {}));
  r.writeSte(sid, { ...linuxS2Ste(4, s2.root), ...linuxS1Ste(cdPa + OFF), CONFIG: 7, ...(o.ste ?? {}) });
  r.cfgiSte(sid);
  return { s1, s2, cdPa };
}

describe('nested translation (§8)', () => {
  it('VA → IPA (stage 1, tables at IPAs) → PA (stage 2), cached as one combined TLB entry', () => {
    const r = new SpecRig();
    const { s1 } = nested(r, 7);
    const page = r.mem.allocFrame();
    s1.map(0x5555_0000, page + OFF, 3, S1_PAGE | S1_AP_EL0 | S1_NG); // stage-1 output is an IPA
    expect(r.dma(7, 0x5555_0abc)).toEqual({ ok: true, pa: page + 0xabc, fault: 0, faultDetail: 0 });
    expect(r.dma(7, 0x5555_0abd, ACCESS_WRITE)).toEqual({ ok: true, pa: page + 0xabd, fault: 0, faultDetail: 0 });
    const st = r.hw.stats();
    expect(st.walks).toBe(2); // the CD-table IPA (stage 2), then the transaction (the write hits the TLB)
    expect(st.s2Walks).toBe(6); // CD, 4 stage-1 table levels, the output IPA
    expect(r.events()).toEqual([]);
  });

  it('CLASS = CD: the CD-table IPA is not mapped by stage 2 (recorded with STE.S2R)', () => {
    const r = new SpecRig();
    nested(r, 7, { ste: { S1_CONTEXT_PTR: 0x30_0000_0000 / 64 } });
    expect(r.dma(7, 0x1234, ACCESS_WRITE)).toEqual(FAULT(FaultReason.TRANSLATION, EvtId.F_TRANSLATION));
    const [e] = r.events();
    expect([e.id, e.sid, e.s2, e.cls, e.ipa, e.inputAddr, e.rnw]).toEqual([EvtId.F_TRANSLATION, 7, 1, EvtClass.CD, 0x30_0000_0000, 0x1234, 0]);
    const q = new SpecRig();
    nested(q, 7, { ste: { S1_CONTEXT_PTR: 0x30_0000_0000 / 64, S2R: 0 } });
    expect(q.dma(7, 0x1234).faultDetail).toBe(EvtId.F_TRANSLATION);
    expect(q.events()).toEqual([]);
  });

  it('F_CD_FETCH: stage 2 maps the CD outside PhysMem (FetchAddr = the PA)', () => {
    const r = new SpecRig();
    const { s2 } = nested(r, 7, { ste: { S1_CONTEXT_PTR: (0x30_0000_0000 + 0x40) / 64 } });
    s2.map(0x30_0000_0000, 0x8000_0000, 2, S2_BLOCK_RW); // 2 GiB: beyond PhysMem
    expect(r.dma(7, 0x1234)).toEqual(FAULT(FaultReason.WALK_ABORT, EvtId.F_CD_FETCH));
    const [e] = r.events();
    expect([e.id, e.fetchAddr]).toEqual([EvtId.F_CD_FETCH, 0x8000_0040]);
  });

  it('CLASS = TT: a stage-1 table IPA not mapped by stage 2 (TTRnW = 1, IPA = the descriptor)', () => {
    const r = new SpecRig();
    nested(r, 7, { cd: { TTB0: 0x30_0000_0000 / 16 } });
    expect(r.dma(7, 0x8000_0000_0000 - 4096)).toEqual(FAULT(FaultReason.TRANSLATION, EvtId.F_TRANSLATION));
    const [e] = r.events();
    expect([e.id, e.s2, e.cls, e.ttrnw, e.ipa]).toEqual([EvtId.F_TRANSLATION, 1, EvtClass.TT, 1, 0x30_0000_0000]);
  });

  it('CLASS = TT permission fault: stage 2 gives no read access to the stage-1 tables', () => {
    const r = new SpecRig();
    const { s1, s2 } = nested(r, 7);
    const page = r.mem.allocFrame();
    s1.map(0x1000, page + OFF, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    const block = s1.root - (s1.root % MiB2);
    s2.map(OFF + block, block, 2, S2_BLOCK_RW & ~0xc0); // S2AP = none over the L0 table
    expect(r.dma(7, 0x1000)).toEqual(FAULT(FaultReason.PERMISSION, EvtId.F_PERMISSION));
    const [e] = r.events();
    expect([e.id, e.s2, e.cls, e.ttrnw, e.ipa]).toEqual([EvtId.F_PERMISSION, 1, EvtClass.TT, 1, s1.root + OFF]);
  });

  it('F_WALK_EABT: stage 2 maps a stage-1 table outside PhysMem (FetchAddr = the PA, recorded even with CD.R = 0)', () => {
    const r = new SpecRig();
    const { s2 } = nested(r, 7, { cd: { TTB0: 0x30_0000_0000 / 16, R: 0 } });
    s2.map(0x30_0000_0000, 0x8000_0000, 2, S2_BLOCK_RW); // 2 GiB: beyond PhysMem
    expect(r.dma(7, 0x1000)).toEqual(FAULT(FaultReason.WALK_ABORT, EvtId.F_WALK_EABT));
    const [e] = r.events();
    expect([e.id, e.fetchAddr, e.inputAddr]).toEqual([EvtId.F_WALK_EABT, 0x8000_0000, 0x1000]);
  });

  it('F_WALK_EABT while translating the CD-table IPA: the stage-2 table itself is outside PhysMem', () => {
    const r = new SpecRig({ memBytes: 16 * 1024 * 1024 });
    const cdPa = r.alloc(64);
    r.writeSte(7, { ...linuxS2Ste(4, r.mem.size), ...linuxS1Ste(cdPa), CONFIG: 7 });
    r.cfgiSte(7);
    expect(r.dma(7, 0x1000)).toEqual(FAULT(FaultReason.WALK_ABORT, EvtId.F_WALK_EABT));
    const [e] = r.events();
    expect([e.id, e.s2, e.cls, e.fetchAddr]).toEqual([EvtId.F_WALK_EABT, 1, EvtClass.CD, r.mem.size]);
  });

  it('CLASS = IN: the stage-1 output IPA is not mapped by stage 2', () => {
    const r = new SpecRig();
    const { s1 } = nested(r, 7);
    s1.map(0x2000, 0x30_0000_5000, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    expect(r.dma(7, 0x2010, ACCESS_READ, { priv: true })).toEqual(FAULT(FaultReason.TRANSLATION, EvtId.F_TRANSLATION));
    const [e] = r.events();
    expect([e.id, e.s2, e.cls, e.ipa, e.inputAddr, e.pnu]).toEqual([EvtId.F_TRANSLATION, 1, EvtClass.IN, 0x30_0000_5000, 0x2010, 1]);
  });

  it('stage-1 faults of a nested stream: S2 = 0, CLASS = IN (IHI 0070 §7.3.13), IPA 0, recorded per CD.R', () => {
    const r = new SpecRig();
    nested(r, 7);
    expect(r.dma(7, 0x9000)).toEqual(FAULT(FaultReason.TRANSLATION, EvtId.F_TRANSLATION));
    expect(r.events().map((e) => e.words)).toEqual([[0x10, 7, 0, 0x8 | (EvtClass.IN << 8), 0x9000, 0, 0, 0]]);
  });

  it('S1DSS = bypass on a nested stream: stage 2 only for transactions without SubstreamID', () => {
    const r = new SpecRig();
    nested(r, 7, { ste: { S1_CD_MAX: 4, S1DSS: 1 } });
    const page = r.mem.allocFrame();
    expect(r.dma(7, page + OFF + 0x44)).toEqual({ ok: true, pa: page + 0x44, fault: 0, faultDetail: 0 });
  });

  it('TLBI_S2_IPA drops combined entries built on the stage-2 leaf; TLBI_NH_VA (ASID + VMID) drops them too', () => {
    const r = new SpecRig();
    const { s1, s2 } = nested(r, 7);
    const page = r.mem.allocFrames(512, 512); // the data page alone in its 2 MiB stage-2 block
    s1.map(0x1000, page + OFF, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    expect(r.dma(7, 0x1000).pa).toBe(page);
    const block = page - (page % MiB2);
    s2.unmap(OFF + block, 2); // the guest page's stage-2 block goes away
    expect(r.dma(7, 0x1000).pa).toBe(page); // stale combined entry
    r.cmd({ OPCODE: CmdOp.TLBI_S2_IPA, VMID: 4, IPA: (OFF + page) / 4096, LEAF: 1 });
    r.sync();
    expect(r.dma(7, 0x1000).faultDetail).toBe(EvtId.F_TRANSLATION);
    expect(r.events().map((e) => [e.s2, e.cls])).toEqual([[1, EvtClass.IN]]);
    s2.map(OFF + block, block, 2, S2_BLOCK_RW);
    expect(r.dma(7, 0x1000).pa).toBe(page);
    s1.unmap(0x1000);
    r.cmd({ OPCODE: CmdOp.TLBI_NH_VA, VMID: 4, ASID: 9, ADDR: 1, LEAF: 1 });
    r.sync();
    expect(r.dma(7, 0x1000).faultDetail).toBe(EvtId.F_TRANSLATION);
  });
});
