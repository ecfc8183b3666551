/**
 * SMMUv3 model: PCIe PRI (smmuv3.md §6, §12 #5–#7). Page requests become 16-byte PRI-queue
 * records; CMD_PRI_RESP responses reach the device (Resp 2 → SUCCESS, 0 → INVALID, 1 → FAILURE);
 * the SMMU answers by itself what software will never see.
 */
import { PageResponseCode, PgFaultPerm, type DevicePageRequest } from '@iommulab/driver-api';
import { describe, expect, it } from 'vitest';
import { CmdOp, PriResp, Q_OVF, SMMU_PRIQ_PROD } from '../src/codec/index.js';
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

  it('Resp encodings: 2 → SUCCESS, 0 (deny) → INVALID, 1 (fail) → FAILURE; SSV = 0 → pasid −1', () => {
    const r = new SpecRig();
    for (const [resp, ssv] of [
      [PriResp.SUCC, 1],
      [PriResp.DENY, 0],
      [PriResp.FAIL, 1],
    ]) {
      r.put({ OPCODE: CmdOp.PRI_RESP, SID: 7, SSV: ssv, SSID: ssv ? 9 : 0, PRGI: 0x1ff, RESP: resp });
    }
    r.kick();
    expect(r.hw.takePageResponses()).toEqual([
      { rid: 7, pasid: 9, grpid: 0x1ff, code: PageResponseCode.SUCCESS },
      { rid: 7, pasid: -1, grpid: 0x1ff, code: PageResponseCode.INVALID },
      { rid: 7, pasid: 9, grpid: 0x1ff, code: PageResponseCode.FAILURE },
    ]);
  });

  it('a request without PASID and a non-last request: PV = 0, Last = 0, Exec bit', () => {
    const r = new SpecRig();
    priStream(r, 0x10);
    expect(r.hw.pageRequest(req({ pasid: -1, last: false, perm: PgFaultPerm.READ | PgFaultPerm.EXEC, grpid: 0x1ff }))).toBe(true);
    expect(r.priRecords()[0]).toMatchObject({ ssid: 0, pv: 0, exec: 1, read: 1, write: 0, last: 0, prgi: 0x1ff });
  });
});

describe('requests the SMMU answers itself', () => {
  it('STE invalid / not translating / EATS = 0: not recorded; Last = 1 answered Invalid Request (§12 #6)', () => {
    const r = new SpecRig();
    priStream(r, 0x10, { EATS: 0 });
    r.writeSte(0x11, { V: 1, CONFIG: 4, EATS: 1 }); // bypass: not translating
    r.cfgiSte(0x11);
    expect(r.hw.pageRequest(req({ rid: 0x10 }))).toBe(false);
    expect(r.hw.pageRequest(req({ rid: 0x11, grpid: 6 }))).toBe(false);
    expect(r.hw.pageRequest(req({ rid: 0x12, grpid: 7 }))).toBe(false); // V = 0
    expect(r.hw.pageRequest(req({ rid: 0x12, grpid: 8, last: false }))).toBe(false);
    expect(r.priRecords()).toEqual([]);
    expect(r.hw.takePageResponses()).toEqual([
      { rid: 0x10, pasid: 3, grpid: 5, code: PageResponseCode.INVALID },
      { rid: 0x11, pasid: 3, grpid: 6, code: PageResponseCode.INVALID },
      { rid: 0x12, pasid: 3, grpid: 7, code: PageResponseCode.INVALID },
    ]);
    expect(r.events()).toEqual([]); // page requests raise no events
  });

  it('a stop marker (Last, no R/W, PASID) is recorded and never answered (§12 #7)', () => {
    const r = new SpecRig();
    priStream(r, 0x10);
    expect(r.hw.pageRequest(req({ perm: 0 }))).toBe(true);
    expect(r.priRecords()[0]).toMatchObject({ last: 1, read: 0, write: 0, pv: 1 });
    expect(r.hw.takePageResponses()).toEqual([]);
  });

  it('PRI-queue overflow: dropped, OVFLG toggled once, Last answered with Success (§12 #5)', () => {
    const r = new SpecRig({ priqLog2: 1 });
    priStream(r, 0x10);
    expect([1, 2, 3, 4].map((g) => r.hw.pageRequest(req({ grpid: g, last: g !== 3 })))).toEqual([true, true, false, false]);
    expect((r.r32(SMMU_PRIQ_PROD) & Q_OVF) >>> 0).toBe(Q_OVF);
    expect(r.hw.takePageResponses()).toEqual([{ rid: 0x10, pasid: 3, grpid: 4, code: PageResponseCode.SUCCESS }]);
    expect(r.priRecords().map((p) => p.prgi)).toEqual([1, 2]); // acknowledges the overflow
    expect(r.hw.pageRequest(req({ grpid: 9 }))).toBe(true);
    expect(r.priRecords().map((p) => p.prgi)).toEqual([9]);
  });

  it('PRI queue disabled: Last answered automatically, nothing recorded', () => {
    const r = new SpecRig({ priq: false });
    priStream(r, 0x10);
    expect(r.hw.pageRequest(req({}))).toBe(false);
    expect(r.hw.takePageResponses().map((x) => x.grpid)).toEqual([5]);
  });
});
