/**
 * SMMUv3 model: PCIe ATS (smmuv3.md §2.1 EATS, §4.4 CMD_ATC_INV, §4.5 CERROR_ATC_INV_SYNC,
 * §1.3 CR0.ATSCHK). ATS Translation Requests are answered by the SMMU and cached in the device's
 * ATC; CMD_ATC_INV invalidates ATC ranges; translated transactions are checked with ATSCHK.
 */
import { FaultReason } from '@iommulab/driver-api';
import { ACCESS_READ, ACCESS_WRITE, dmaRequest, dmaResult, type DmaRequest } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import {
  ATC_INV_SIZE_ALL,
  CERROR_ATC_INV_SYNC,
  CR0_ATSCHK,
  CR0_SMMUEN,
  CmdOp,
  EvtId,
  GERROR_CMDQ_ERR,
  SMMU_CMDQ_CONS,
  SMMU_CR0,
  SMMU_GERROR,
  SMMU_GERRORN,
  SyncCs,
} from '../src/codec/index.js';
import { HandTables, S1_AP_EL0, S1_NG, S1_PAGE, SpecRig, linuxCd, linuxS1Ste } from './helpers/spec-rig.js';

/** S1 stream with EATS = 1 and 4 CDs (S1DSS = SSID0); pages 0..31 of VA 0 mapped (CD n's tables shared). */
function atsStream(r: SpecRig, sid: number) {
  const pt = new HandTables(r.mem, 0);
  const base = r.mem.allocFrames(32);
  for (let i = 0; i < 32; i++) pt.map(i * 4096, base + i * 4096, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
  pt.map(0x10_0000, base, 3, S1_PAGE | S1_AP_EL0); // a global (nG = 0) page
  const cd = r.alloc(4 * 64);
  for (let n = 0; n < 4; n++) r.writeCd(cd + n * 64, linuxCd(pt.root, 20 + n));
  r.writeSte(sid, linuxS1Ste(cd, { EATS: 1, S1_CD_MAX: 2 }));
  r.cfgiSte(sid);
  return base;
}

const q = (rid: number, iova: number, pasid = -1, access = ACCESS_READ): DmaRequest => dmaRequest({ rid, iova, pasid, access });

describe('ATS translation and the ATC (§4.4)', () => {
  it('an ATS Translation Request is answered and cached; the device then hits its ATC', () => {
    const r = new SpecRig();
    const base = atsStream(r, 2);
    expect(r.hw.atsTranslate(q(2, 0x3010, -1, ACCESS_READ | ACCESS_WRITE), dmaResult())).toEqual({ ok: true, pa: base + 0x3010, fault: 0, faultDetail: 0 });
    expect(r.hw.atcEntries(2)).toBe(1);
    const before = r.hw.stats();
    expect(r.hw.atcTranslate(q(2, 0x3ff0, -1, ACCESS_WRITE), dmaResult()).pa).toBe(base + 0x3ff0);
    const after = r.hw.stats();
    expect([after.atcHits - before.atcHits, after.atsRequests - before.atsRequests]).toEqual([1, 0]);
    expect(r.hw.atcTranslate(q(2, 0x4000), dmaResult()).pa).toBe(base + 0x4000); // miss → ATS request
    expect(r.hw.stats().atsRequests).toBe(after.atsRequests + 1);
  });

  it('CMD_ATC_INV: Linux span rule (pages 7..10 → Size 4, [0, 15]); Size 52 = everything (the §4.8 worked command)', () => {
    const r = new SpecRig();
    atsStream(r, 2);
    for (const p of [6, 7, 10, 12, 16]) r.hw.atsTranslate(q(2, p * 4096), dmaResult());
    expect(r.hw.atcEntries(2)).toBe(5);
    r.cmd({ OPCODE: CmdOp.ATC_INV, SID: 2, ATC_SIZE: 4, ADDR: 0 });
    r.sync();
    expect(r.hw.atcEntries(2)).toBe(1); // page 16 survives
    r.putWords([0x40, 0x2, 0x34, 0]); // ATC_INV SID 2, all
    r.kick();
    expect(r.hw.atcEntries(2)).toBe(0);
  });

  it('CMD_ATC_INV is IGNORED while SMMUEN = 0 (IHI 0070 §4.5.1, §6.3.9.6), so it cannot fail a CMD_SYNC either', () => {
    const r = new SpecRig();
    atsStream(r, 2);
    r.hw.atsTranslate(q(2, 0x3000), dmaResult());
    expect(r.hw.atcEntries(2)).toBe(1);
    r.hw.setAtcInvalidationTimeout(2, true);
    r.cr0(r.r32(0x20) & ~1);
    r.cmd({ OPCODE: CmdOp.ATC_INV, SID: 2, ATC_SIZE: ATC_INV_SIZE_ALL });
    r.sync();
    expect(r.hw.atcEntries(2)).toBe(1);
    expect(r.r32(SMMU_GERROR) ^ r.r32(SMMU_GERRORN)).toBe(0);
  });

  it('SSV scopes ATC_INV to a SubstreamID; Global also hits global entries', () => {
    const r = new SpecRig();
    atsStream(r, 2);
    for (const pasid of [-1, 1, 2]) r.hw.atsTranslate(q(2, 0x5000, pasid), dmaResult());
    r.hw.atsTranslate(q(2, 0x10_0000, 3), dmaResult()); // global page
    expect(r.hw.atcEntries(2)).toBe(4);
    r.cmd({ OPCODE: CmdOp.ATC_INV, SID: 2, SSV: 1, SSID: 1, ATC_SIZE: ATC_INV_SIZE_ALL });
    r.sync();
    expect(r.hw.atcEntries(2)).toBe(3);
    r.cmd({ OPCODE: CmdOp.ATC_INV, SID: 2, SSV: 1, SSID: 2, GLOBAL: 1, ATC_SIZE: ATC_INV_SIZE_ALL });
    r.sync();
    expect(r.hw.atcEntries(2)).toBe(1); // only the no-PASID entry remains
    r.cmd({ OPCODE: CmdOp.ATC_INV, SID: 2, ATC_SIZE: 0, ADDR: 5 }); // SSV = 0: every SubstreamID
    r.sync();
    expect(r.hw.atcEntries(2)).toBe(0);
  });

  it('an ATC invalidation that times out fails the CMD_SYNC with CERROR_ATC_INV_SYNC until acknowledged', () => {
    const r = new SpecRig();
    atsStream(r, 2);
    r.hw.setAtcInvalidationTimeout(2, true);
    r.put({ OPCODE: CmdOp.ATC_INV, SID: 2, ATC_SIZE: ATC_INV_SIZE_ALL });
    r.put({ OPCODE: CmdOp.SYNC, CS: SyncCs.SEV });
    r.kick();
    const cons = r.r32(SMMU_CMDQ_CONS);
    expect([cons & 0xff, (cons >>> 24) & 0x7f]).toEqual([r.prod - 1, CERROR_ATC_INV_SYNC]); // halted at the SYNC
    const gerror = r.r32(SMMU_GERROR);
    expect(gerror & GERROR_CMDQ_ERR).toBe(GERROR_CMDQ_ERR);
    r.w32(SMMU_GERRORN, gerror); // acknowledge: the SYNC is retried and completes
    expect(r.r32(SMMU_CMDQ_CONS)).toBe(r.prod);
  });

  it('a bypass stream (Config 0b100): EATS is IGNORED (effective 0b00) → F_BAD_ATS_TREQ, no ATC fill (IHI 0070 §5.2 Config, §3.9.1.2)', () => {
    const r = new SpecRig();
    r.writeSte(4, { V: 1, CONFIG: 4, EATS: 1 });
    r.cfgiSte(4);
    expect(r.hw.atsTranslate(q(4, 0x7654_3210), dmaResult())).toEqual({ ok: false, pa: 0, fault: FaultReason.BLOCKED, faultDetail: EvtId.F_BAD_ATS_TREQ });
    expect(r.hw.atcEntries(4)).toBe(0);
    expect(r.events().map((e) => [e.id, e.sid])).toEqual([[EvtId.F_BAD_ATS_TREQ, 4]]);
  });

  it('Translation Requests record no configuration events; Config = abort is UR without event; SMMUEN = 0 is F_BAD_ATS_TREQ (§3.9.1.2)', () => {
    const r = new SpecRig();
    r.writeSte(5, { V: 0 });
    r.writeSte(6, { V: 1, CONFIG: 0 });
    r.cfgiSte(5);
    r.cfgiSte(6);
    expect(r.hw.atsTranslate(q(5, 0x1000), dmaResult()).ok).toBe(false); // C_BAD_STE → CA, not recorded
    expect(r.hw.atsTranslate(q(6, 0x1000), dmaResult()).ok).toBe(false);
    expect(r.hw.atsTranslate(q(0x1_0000, 0x1000), dmaResult()).ok).toBe(false); // beyond the table
    expect(r.events()).toEqual([]);
    r.w32(SMMU_CR0, r.r32(SMMU_CR0) & ~CR0_SMMUEN);
    expect(r.hw.atsTranslate(q(6, 0x2000), dmaResult()).faultDetail).toBe(EvtId.F_BAD_ATS_TREQ);
    expect(r.events().map((e) => [e.id, e.sid])).toEqual([[EvtId.F_BAD_ATS_TREQ, 6]]);
  });
});

describe('translated transactions (CR0.ATSCHK)', () => {
  it('with ATSCHK = 1 an STE with EATS = 0 gets F_TRANSL_FORBIDDEN; EATS = 1 passes', () => {
    const r = new SpecRig({ cr0Extra: CR0_ATSCHK });
    atsStream(r, 2);
    r.writeSte(3, { V: 1, CONFIG: 4 });
    r.cfgiSte(3);
    expect(r.hw.translatedAccess(q(2, 0x8000_0000, -1, ACCESS_WRITE), dmaResult()).pa).toBe(0x8000_0000);
    expect(r.hw.translatedAccess(q(3, 0x8000_0000, -1, ACCESS_WRITE), dmaResult())).toEqual({
      ok: false,
      pa: 0,
      fault: FaultReason.BLOCKED,
      faultDetail: EvtId.F_TRANSL_FORBIDDEN,
    });
    expect(r.events().map((e) => [e.id, e.sid, e.rnw, e.inputAddr])).toEqual([[EvtId.F_TRANSL_FORBIDDEN, 3, 0, 0x8000_0000]]);
    const u = new SpecRig();
    u.writeSte(3, { V: 1, CONFIG: 4 });
    u.cfgiSte(3);
    expect(u.hw.translatedAccess(q(3, 0x8000_0000), dmaResult()).pa).toBe(0x8000_0000); // ATSCHK = 0: unchecked
  });

  it('F_TRANSL_FORBIDDEN record: StreamID, RnW, InputAddr only (no SSV/SSID, PnU, InD; IHI 0070 §7.3.8); SMMUEN = 0 → F_TRANSL_FORBIDDEN (§3.9.1.3)', () => {
    const r = new SpecRig({ cr0Extra: CR0_ATSCHK });
    r.writeSte(3, { V: 1, CONFIG: 4 });
    r.writeSte(4, { V: 0 });
    r.cfgiSte(3);
    r.cfgiSte(4);
    const tr = (rid: number, iova: number) => r.hw.translatedAccess(dmaRequest({ rid, iova, access: ACCESS_READ, privileged: true, pasid: 5 }), dmaResult());
    expect(tr(3, 0x1_2345_6000).faultDetail).toBe(EvtId.F_TRANSL_FORBIDDEN);
    expect(tr(4, 0x1000).ok).toBe(false); // invalid STE: aborted, no event (REC_CFG_ATS = 0)
    expect(r.events().map((e) => e.words)).toEqual([[0x07, 3, 0, 1 << 3, 0x2345_6000, 0x1, 0, 0]]);
    r.w32(SMMU_CR0, r.r32(SMMU_CR0) & ~CR0_SMMUEN);
    expect(tr(9, 0x5000).faultDetail).toBe(EvtId.F_TRANSL_FORBIDDEN);
    expect(r.events().map((e) => [e.id, e.sid])).toEqual([[EvtId.F_TRANSL_FORBIDDEN, 9]]);
  });
});
