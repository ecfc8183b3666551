/**
 * SMMUv3 model: the stall fault model (smmuv3.md §5.1 STAG / Stall, §5.2, §4.2 CMD_RESUME /
 * CMD_STALL_TERM). A stalled fault is recorded with Stall = 1 and a STAG (whatever CD.R / S2R
 * say), the device is told to wait (FaultReason.PAGE_REQUEST), and retries or is terminated when
 * software answers.
 */
import { FaultReason } from '@iommulab/driver-api';
import { ACCESS_WRITE } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { CR0_CMDQEN, CR0_EVTQEN, CR0_PRIQEN, CR0_SMMUEN, CmdOp, EvtClass, EvtId, ResumeAction, SMMU_EVTQ_PROD } from '../src/codec/index.js';
import { HandTables, S1_AP_EL0, S1_NG, S1_PAGE, S2_PAGE_RW, SpecRig, linuxCd, linuxS1Ste, linuxS2Ste, s2Tables } from './helpers/spec-rig.js';

function stallStream(r: SpecRig, sid: number, cd: Record<string, number> = {}, ste: Record<string, number> = {}) {
  const pt = new HandTables(r.mem, 0);
  const cdPa = r.alloc(64);
  r.writeCd(cdPa, linuxCd(pt.root, sid, { S: 1, ...cd }));
  r.writeSte(sid, linuxS1Ste(cdPa, ste));
  r.cfgiSte(sid);
  return pt;
}

describe('stall model (§5.2)', () => {
  it('CD.S = 1: Stall = 1 + STAG, the transaction waits; CMD_RESUME(RETRY) lets the device retry', () => {
    const r = new SpecRig();
    const pt = stallStream(r, 3, { R: 0 }); // stalls are recorded even with R = 0
    expect(r.dma(3, 0x4000_0000, ACCESS_WRITE)).toEqual({ ok: false, pa: 0, fault: FaultReason.PAGE_REQUEST, faultDetail: EvtId.F_TRANSLATION });
    const [e] = r.events();
    expect([e.id, e.sid, e.stall, e.stag, e.rnw, e.inputAddr]).toEqual([EvtId.F_TRANSLATION, 3, 1, e.stag, 0, 0x4000_0000]);
    expect(r.hw.pendingStalls()).toEqual([{ sid: 3, stag: e.stag, ssid: -1, iova: 0x4000_0000 }]);
    const page = r.mem.allocFrame();
    pt.map(0x4000_0000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG); // the fault handler maps the page
    r.cmd({ OPCODE: CmdOp.RESUME, SID: 3, STAG: e.stag, ACTION: ResumeAction.RETRY }); // no CMD_SYNC (as Linux)
    expect(r.hw.takeStallResolutions()).toEqual([
      { sid: 3, ssid: -1, stag: e.stag, iova: 0x4000_0000, access: ACCESS_WRITE, evt: EvtId.F_TRANSLATION, action: 'retry' },
    ]);
    expect(r.hw.pendingStalls()).toEqual([]);
    expect(r.dma(3, 0x4000_0000, ACCESS_WRITE).pa).toBe(page);
  });

  it('STAGs are unique among the outstanding stalls; RESUME(ABORT) and STALL_TERM terminate', () => {
    const r = new SpecRig();
    stallStream(r, 3);
    stallStream(r, 4);
    for (const [sid, va] of [
      [3, 0x1000],
      [3, 0x2000],
      [4, 0x1000],
    ]) {
      expect(r.dma(sid, va).fault).toBe(FaultReason.PAGE_REQUEST);
    }
    const ev = r.events();
    expect(ev.map((e) => [e.sid, e.stall])).toEqual([
      [3, 1],
      [3, 1],
      [4, 1],
    ]);
    expect(new Set(ev.filter((e) => e.sid === 3).map((e) => e.stag)).size).toBe(2);
    r.cmd({ OPCODE: CmdOp.RESUME, SID: 3, STAG: ev[1].stag, ACTION: ResumeAction.ABORT });
    r.cmd({ OPCODE: CmdOp.RESUME, SID: 3, STAG: 0xbeef, ACTION: ResumeAction.RETRY }); // no such stall: ignored
    r.cmd({ OPCODE: CmdOp.STALL_TERM, SID: 3 });
    r.sync();
    expect(r.hw.takeStallResolutions().map((x) => [x.sid, x.iova, x.action])).toEqual([
      [3, 0x2000, 'abort'],
      [3, 0x1000, 'terminate'],
    ]);
    expect(r.hw.pendingStalls().map((p) => p.sid)).toEqual([4]);
    expect(r.hw.stats()).toMatchObject({ stalls: 3, stallsPending: 1, stallsRetried: 0, stallsTerminated: 2 });
  });

  it('S1STALLD = 1: a CD with S = 1 is ILLEGAL (C_BAD_CD, IHI 0070 §5.4.2); with S = 0 a plain recorded fault', () => {
    const r = new SpecRig();
    stallStream(r, 3, {}, { S1STALLD: 1 });
    expect(r.dma(3, 0x1000)).toEqual({ ok: false, pa: 0, fault: FaultReason.BAD_CONFIG, faultDetail: EvtId.C_BAD_CD });
    stallStream(r, 4, { S: 0 }, { S1STALLD: 1 });
    expect(r.dma(4, 0x1000)).toEqual({ ok: false, pa: 0, fault: FaultReason.TRANSLATION, faultDetail: EvtId.F_TRANSLATION });
    expect(r.events().map((e) => [e.id, e.sid, e.stall])).toEqual([
      [EvtId.C_BAD_CD, 3, 0],
      [EvtId.F_TRANSLATION, 4, 0],
    ]);
  });

  it('STE.S2S = 1: a stage-2 fault stalls (S2 = 1, CLASS = IN, IPA)', () => {
    const r = new SpecRig();
    const s2 = s2Tables(r.mem);
    r.writeSte(6, linuxS2Ste(2, s2.root, { S2S: 1, S2R: 0 }));
    r.cfgiSte(6);
    expect(r.dma(6, 0x7000_0000).fault).toBe(FaultReason.PAGE_REQUEST);
    const [e] = r.events();
    expect([e.id, e.stall, e.s2, e.cls, e.ipa]).toEqual([EvtId.F_TRANSLATION, 1, 1, EvtClass.IN, 0x7000_0000]);
    const page = r.mem.allocFrame();
    s2.map(0x7000_0000, page, 3, S2_PAGE_RW);
    r.cmd({ OPCODE: CmdOp.RESUME, SID: 6, STAG: e.stag, ACTION: ResumeAction.RETRY });
    expect(r.dma(6, 0x7000_0000).pa).toBe(page);
  });

  it('IHI 0070 §7.2.1 / §3.5.3: a stall record that finds the event queue disabled is not discarded: the transaction stays stalled and the record is written once EVENTQEN = 1', () => {
    const r = new SpecRig();
    stallStream(r, 3);
    r.cr0(CR0_CMDQEN | CR0_PRIQEN | CR0_SMMUEN); // EVTQEN off
    expect(r.dma(3, 0x1000)).toEqual({ ok: false, pa: 0, fault: FaultReason.PAGE_REQUEST, faultDetail: EvtId.F_TRANSLATION });
    const [p] = r.hw.pendingStalls();
    expect(p).toMatchObject({ sid: 3, iova: 0x1000 });
    expect(r.events()).toEqual([]);
    r.cr0(CR0_CMDQEN | CR0_EVTQEN | CR0_PRIQEN | CR0_SMMUEN);
    expect(r.events().map((e) => [e.id, e.sid, e.stall, e.stag, e.inputAddr])).toEqual([[EvtId.F_TRANSLATION, 3, 1, p.stag, 0x1000]]);
  });

  it('IHI 0070 §7.2.1: a held stall affected by an invalidation + CMD_SYNC is retried once the queue is writable (no stale record); a new fault writes a new record', () => {
    const r = new SpecRig();
    const pt = stallStream(r, 3);
    r.cr0(CR0_CMDQEN | CR0_PRIQEN | CR0_SMMUEN); // EVTQEN off: the stall record is held
    expect(r.dma(3, 0x1000).fault).toBe(FaultReason.PAGE_REQUEST);
    expect(r.dma(3, 0x2000).fault).toBe(FaultReason.PAGE_REQUEST);
    const page = r.mem.allocFrame();
    pt.map(0x1000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
    r.cmd({ OPCODE: CmdOp.TLBI_NH_ASID, ASID: 3 });
    r.sync();
    expect(r.hw.takeStallResolutions()).toEqual([]); // not retried while the queue is unwritable
    r.cr0(CR0_CMDQEN | CR0_EVTQEN | CR0_PRIQEN | CR0_SMMUEN);
    // "This either results in the transaction succeeding … in which case no event is recorded …, or
    // the generation of a new fault": both stalls are retried, no held record is written.
    expect(r.events()).toEqual([]);
    expect(r.hw.pendingStalls()).toEqual([]);
    expect(r.hw.takeStallResolutions().map((x) => [x.iova, x.action])).toEqual([
      [0x1000, 'retry'],
      [0x2000, 'retry'],
    ]);
    expect(r.dma(3, 0x1000).pa).toBe(page); // the device re-issues: now mapped
    expect(r.dma(3, 0x2000).fault).toBe(FaultReason.PAGE_REQUEST); // still unmapped: a new stall record
    expect(r.events().map((e) => [e.id, e.sid, e.stall, e.inputAddr])).toEqual([[EvtId.F_TRANSLATION, 3, 1, 0x2000]]);
  });

  it('IHI 0070 §7.4: a full event queue holds a stall record back (no overflow, OVFLG unchanged); it is written when space frees', () => {
    const r = new SpecRig({ evtqLog2: 0 }); // one entry
    stallStream(r, 3);
    r.writeSte(9, { V: 0 });
    r.cfgiSte(9);
    expect(r.dma(9, 0).faultDetail).toBe(EvtId.C_BAD_STE); // fills the queue
    expect(r.dma(3, 0x1000).fault).toBe(FaultReason.PAGE_REQUEST);
    expect(r.r32(SMMU_EVTQ_PROD) >>> 31).toBe(0); // stall records do not cause overflow
    expect(r.events().map((e) => [e.id, e.stall])).toEqual([[EvtId.C_BAD_STE, 0]]); // consumes: space frees
    expect(r.events().map((e) => [e.id, e.sid, e.stall])).toEqual([[EvtId.F_TRANSLATION, 3, 1]]);
  });

  it('IHI 0070 §6.3.9.6: SMMUEN 1 → 0 terminates every stalled transaction with an abort', () => {
    const r = new SpecRig();
    stallStream(r, 3);
    expect(r.dma(3, 0x1000).fault).toBe(FaultReason.PAGE_REQUEST);
    expect(r.dma(3, 0x2000).fault).toBe(FaultReason.PAGE_REQUEST);
    r.cr0(CR0_CMDQEN | CR0_PRIQEN | CR0_EVTQEN);
    expect(r.hw.pendingStalls()).toEqual([]);
    expect(r.hw.takeStallResolutions().map((x) => [x.iova, x.action])).toEqual([
      [0x1000, 'abort'],
      [0x2000, 'abort'],
    ]);
  });

  it('IHI 0070 §4.7.1: RESUME Terminate with Ab = 0 completes RAZ/WI (terminate), Ab = 1 aborts; TERM_MODEL = 1 ignores Ab (abort)', () => {
    for (const [termModel, action, want] of [
      [0, 0, 'terminate'],
      [0, 2, 'abort'],
      [0, 3, 'retry'],
      [1, 0, 'abort'],
    ] as const) {
      const r = new SpecRig({ options: { termModel } });
      stallStream(r, 3, { A: 1 });
      expect(r.dma(3, 0x1000).fault).toBe(FaultReason.PAGE_REQUEST);
      const [e] = r.events();
      r.cmd({ OPCODE: CmdOp.RESUME, SID: 3, STAG: e.stag, ACTION: action });
      expect(r.hw.takeStallResolutions().map((x) => x.action)).toEqual([want]);
    }
  });

  it('the stall table holds IDR5.STALL_MAX transactions; more faults are terminated', () => {
    const r = new SpecRig({ options: { stallMax: 2 } });
    stallStream(r, 3);
    expect([0x1000, 0x2000, 0x3000].map((va) => r.dma(3, va).fault)).toEqual([
      FaultReason.PAGE_REQUEST,
      FaultReason.PAGE_REQUEST,
      FaultReason.TRANSLATION,
    ]);
    expect(r.events().map((e) => e.stall)).toEqual([1, 1, 0]);
  });

  it('STALL_MODEL = forced: stage-1 faults stall; CD.S = 0 is an ILLEGAL CD and S1STALLD = 1 an ILLEGAL STE (IHI 0070 §5.2.2, §5.4.2)', () => {
    const r = new SpecRig({ options: { stall: 'forced' } });
    stallStream(r, 3);
    expect(r.dma(3, 0x1000).fault).toBe(FaultReason.PAGE_REQUEST);
    stallStream(r, 5, { S: 0 });
    expect(r.dma(5, 0x1000).faultDetail).toBe(EvtId.C_BAD_CD);
    stallStream(r, 4, {}, { S1STALLD: 1 });
    expect(r.dma(4, 0x1000).faultDetail).toBe(EvtId.C_BAD_STE);
  });

  it('ATS Translation Requests never stall', () => {
    const r = new SpecRig();
    stallStream(r, 3, {}, { EATS: 1 });
    const out = { ok: false, pa: 0, fault: 0, faultDetail: 0 };
    r.hw.atsTranslate({ rid: 3, pasid: -1, iova: 0x1000, access: 1, privileged: false }, out);
    expect(out).toEqual({ ok: false, pa: 0, fault: FaultReason.TRANSLATION, faultDetail: EvtId.F_TRANSLATION });
    expect(r.events()).toEqual([]);
    expect(r.hw.pendingStalls()).toEqual([]);
  });
});
