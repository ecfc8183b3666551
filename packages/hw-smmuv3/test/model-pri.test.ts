/**
 * SMMUv3 model: PCIe PRI (smmuv3.md §6, IHI 0070 chapter 8). Page requests become 16-byte PRI-queue
 * records; CMD_PRI_RESP responses reach the device (IHI 0070 §4.5.2: Resp 2 → SUCCESS,
 * 1 → INVALID, 0 → FAILURE);
 * the SMMU answers by itself what software will never see.
 */
import { PageResponseCode, PgFaultPerm, type DevicePageRequest } from '@iommulab/driver-api';
import { describe, expect, it } from 'vitest';
import { CmdOp, PriResp, Q_OVF, SMMU_PRIQ_CONS, SMMU_PRIQ_PROD } from '../src/codec/index.js';
import { HandTables, SpecRig, linuxCd, linuxS1Ste } from './helpers/spec-rig.js';

function priStream(r: SpecRig, sid: number, ste: Record<string, number> = {}) {
  const pt = new HandTables(r.mem, 0);
  const cd = r.alloc(64 * 16);
  for (let n = 0; n < 16; n++) r.writeCd(cd + 64 * n, linuxCd(pt.root, 1 + n));
  r.writeSte(sid, linuxS1Ste(cd, { EATS: 1, S1_CD_MAX: 4, ...ste }));
  r.cfgiSte(sid);
}

const req = (o: Partial<DevicePageRequest>): DevicePageRequest => ({
  rid: 0x10,
  pasid: 3,
  addr: 0x1234_5000,
  perm: PgFaultPerm.READ,
  grpid: 5,
  last: true,
  ...o,
});

describe('PRI queue records (§6.1)', () => {
  it('a page request is recorded bit-exact; CMD_PRI_RESP answers the group (the §4.8 worked command)', () => {
    const r = new SpecRig();
    priStream(r, 0x10);
    expect(r.hw.pageRequest(req({ perm: PgFaultPerm.READ | PgFaultPerm.WRITE | PgFaultPerm.PRIV, addr: 0x1234_5678 }))).toBe(true);
    const [p] = r.priRecords();
    expect(p).toMatchObject({ sid: 0x10, ssid: 3, pv: 1, priv: 1, exec: 0, read: 1, write: 1, last: 1, prgi: 5, addr: 0x1234_5000 });
    expect(p.words).toEqual([0x10, (0x80000000 | 0x40000000 | 0x20000000 | 0x10000000 | 0x04000000 | 3) >>> 0, 0x1234_5005, 0]);
    r.putWords([0x3841, 0x10, 0x2005, 0]); // PRI_RESP SID 0x10, SSV, SSID 3, PRGI 5, Success (§4.8)
    r.kick();
    expect(r.hw.takePageResponses()).toEqual([{ rid: 0x10, pasid: 3, grpid: 5, code: PageResponseCode.SUCCESS }]);
  });

  it('Resp encodings (IHI 0070 §4.5.2): 0b10 Success → SUCCESS, 0b00 ResponseFailure → FAILURE, 0b01 InvalidRequest → INVALID; SSV = 0 → pasid −1', () => {
    const r = new SpecRig();
    for (const [resp, ssv] of [
      [PriResp.SUCCESS, 1],
      [PriResp.RESPONSE_FAILURE, 0],
      [PriResp.INVALID_REQUEST, 1],
    ]) {
      r.put({ OPCODE: CmdOp.PRI_RESP, SID: 7, SSV: ssv, SSID: ssv ? 9 : 0, PRGI: 0x1ff, RESP: resp });
    }
    r.kick();
    expect(r.hw.takePageResponses()).toEqual([
      { rid: 7, pasid: 9, grpid: 0x1ff, code: PageResponseCode.SUCCESS },
      { rid: 7, pasid: -1, grpid: 0x1ff, code: PageResponseCode.FAILURE },
      { rid: 7, pasid: 9, grpid: 0x1ff, code: PageResponseCode.INVALID },
    ]);
  });

  it('CMD_PRI_RESP is IGNORED while SMMUEN = 0 (IHI 0070 §4.5.2, §6.3.9.6)', () => {
    const r = new SpecRig();
    r.cr0(r.r32(0x20) & ~1);
    r.put({ OPCODE: CmdOp.PRI_RESP, SID: 7, PRGI: 1, RESP: PriResp.SUCCESS });
    r.kick();
    expect(r.hw.takePageResponses()).toEqual([]);
  });

  it('a request without PASID and a non-last request: PV = 0, Last = 0, Exec bit', () => {
    const r = new SpecRig();
    priStream(r, 0x10);
    expect(r.hw.pageRequest(req({ pasid: -1, last: false, perm: PgFaultPerm.READ | PgFaultPerm.EXEC, grpid: 0x1ff }))).toBe(true);
    expect(r.priRecords()[0]).toMatchObject({ ssid: 0, pv: 0, exec: 1, read: 1, write: 0, last: 0, prgi: 0x1ff });
  });
});

describe('requests the SMMU answers itself', () => {
  it('IHI 0070 §8.2: requests are recorded whatever the STE says (EATS = 0, bypass, V = 0); SMMUEN = 0 discards them with Response Failure, no PASID', () => {
    const r = new SpecRig();
    priStream(r, 0x10, { EATS: 0 });
    r.writeSte(0x11, { V: 1, CONFIG: 4, EATS: 1 }); // bypass
    r.cfgiSte(0x11);
    expect(r.hw.pageRequest(req({ rid: 0x10 }))).toBe(true);
    expect(r.hw.pageRequest(req({ rid: 0x11, grpid: 6 }))).toBe(true);
    expect(r.hw.pageRequest(req({ rid: 0x12, grpid: 7 }))).toBe(true); // V = 0
    expect(r.priRecords().map((p) => [p.sid, p.prgi])).toEqual([
      [0x10, 5],
      [0x11, 6],
      [0x12, 7],
    ]);
    expect(r.hw.takePageResponses()).toEqual([]);
    expect(r.events()).toEqual([]); // page requests raise no events
    // SMMUEN = 0: effective PRIQEN = 0 (§6.3.9.5).
    r.cr0(r.r32(0x20) & ~1);
    expect(r.hw.pageRequest(req({ rid: 0x10, grpid: 8 }))).toBe(false);
    expect(r.hw.pageRequest(req({ rid: 0x10, grpid: 9, last: false }))).toBe(false);
    expect(r.hw.pageRequest(req({ rid: 0x10, grpid: 10, perm: 0 }))).toBe(false); // stop marker: no response
    expect(r.priRecords()).toEqual([]);
    expect(r.hw.takePageResponses()).toEqual([{ rid: 0x10, pasid: -1, grpid: 8, code: PageResponseCode.FAILURE }]);
  });

  it('a stop marker (Last, no R/W, PASID) is recorded and never answered (§12 #7)', () => {
    const r = new SpecRig();
    priStream(r, 0x10);
    expect(r.hw.pageRequest(req({ perm: 0 }))).toBe(true);
    expect(r.priRecords()[0]).toMatchObject({ last: 1, read: 0, write: 0, pv: 1 });
    expect(r.hw.takePageResponses()).toEqual([]);
  });

  it('PRI-queue overflow (IHI 0070 §8.1): dropped, OVFLG toggled once, Last answered Success (PASID only with STE.PPAR = 1)', () => {
    const r = new SpecRig({ priqLog2: 1 });
    priStream(r, 0x10);
    priStream(r, 0x20, { PPAR: 1 });
    expect([1, 2, 3, 4].map((g) => r.hw.pageRequest(req({ grpid: g, last: g !== 3 })))).toEqual([true, true, false, false]);
    expect((r.r32(SMMU_PRIQ_PROD) & Q_OVF) >>> 0).toBe(Q_OVF);
    expect(r.hw.pageRequest(req({ rid: 0x20, grpid: 11 }))).toBe(false);
    expect(r.hw.pageRequest(req({ rid: 0x21, grpid: 12 }))).toBe(false); // STE V = 0: PPAR cannot be checked
    expect(r.hw.pageRequest(req({ rid: 0x10, pasid: -1, grpid: 13 }))).toBe(false); // no PASID: Success, no PASID
    expect(r.hw.takePageResponses()).toEqual([
      { rid: 0x10, pasid: -1, grpid: 4, code: PageResponseCode.SUCCESS },
      { rid: 0x20, pasid: 3, grpid: 11, code: PageResponseCode.SUCCESS },
      { rid: 0x21, pasid: -1, grpid: 12, code: PageResponseCode.FAILURE },
      { rid: 0x10, pasid: -1, grpid: 13, code: PageResponseCode.SUCCESS },
    ]);
    expect(r.priRecords().map((p) => p.prgi)).toEqual([1, 2]); // acknowledges the overflow
    expect(r.hw.pageRequest(req({ grpid: 9 }))).toBe(true);
    expect(r.priRecords().map((p) => p.prgi)).toEqual([9]);
  });

  it('IHI 0070 §8.1: an active PRI overflow condition inhibits new entries even when there is space, until OVACKFLG', () => {
    const r = new SpecRig({ priqLog2: 1 });
    priStream(r, 0x10);
    expect([1, 2, 3].map((g) => r.hw.pageRequest(req({ grpid: g })))).toEqual([true, true, false]);
    const prod = r.r32(SMMU_PRIQ_PROD);
    r.w32(SMMU_PRIQ_CONS, prod & 3); // consume both entries, overflow NOT acknowledged
    expect(r.hw.pageRequest(req({ grpid: 4 }))).toBe(false);
    r.w32(SMMU_PRIQ_CONS, ((prod & 3) | (prod & Q_OVF)) >>> 0); // acknowledge
    expect(r.hw.pageRequest(req({ grpid: 5 }))).toBe(true);
    expect(r.priRecords().map((p) => p.prgi)).toEqual([5]);
  });

  it('PRI queue disabled: Last answered automatically, nothing recorded', () => {
    const r = new SpecRig({ priq: false });
    priStream(r, 0x10);
    expect(r.hw.pageRequest(req({}))).toBe(false);
    expect(r.hw.takePageResponses().map((x) => x.grpid)).toEqual([5]);
  });
});
