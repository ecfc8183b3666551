/**
 * IOPF (tools/testing/selftests/iommu/iommufd.c): the IOPF parts of TEST_F(iommufd_ioas,
 * alloc_hwpt_nested) and TEST_F(iommufd_device_pasid, pasid_attach), plus the FAULT file rules of
 * drivers/iommu/iommufd/eventq.c (read / write sizes, cookies, whole groups, automatic INVALID
 * responses on detach / replace / destroy) with exact errnos and record bytes. Page requests go
 * through the hw-mock hardware (test PRI injector → fault queue → driver → FAULT) and responses
 * back to it (CMD_PAGE_RESP).
 */
import type { PageResponse } from '@iommulab/driver-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FaultFile } from '../src/fault.js';
import { MOCK_FLAGS_DEVICE_PASID } from '../src/selftest-mock.js';
import { ViommuTestOps } from '../src/selftest-viommu.js';
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
} from '../src/uapi/constants.js';
import { expectErrno } from './fixture.js';
import { IOMMU_HWPT_DATA_SELFTEST, IOMMU_TEST_IOTLB_DEFAULT, openMockSelf, teardownMock, type MockSelf } from './mock-fixture.js';

/** struct iommu_hwpt_selftest { u32 iotlb; u32 pagetable_type; } */
function selftestData(iotlb: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(0, iotlb, true);
  return b;
}

/** struct iommu_hwpt_page_response { u32 cookie; u32 code; }[] */
function responses(...r: [number, number][]): Uint8Array {
  const b = new Uint8Array(8 * r.length);
  const dv = new DataView(b.buffer);
  r.forEach(([cookie, code], i) => {
    dv.setUint32(i * 8, cookie, true);
    dv.setUint32(i * 8 + 4, code, true);
  });
  return b;
}

/** Decodes struct iommu_hwpt_pgfault records. */
function records(b: Uint8Array) {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = [];
  for (let at = 0; at < b.length; at += 40) {
    out.push({
      flags: dv.getUint32(at, true),
      devId: dv.getUint32(at + 4, true),
      pasid: dv.getUint32(at + 8, true),
      grpid: dv.getUint32(at + 12, true),
      perm: dv.getUint32(at + 16, true),
      reserved: dv.getUint32(at + 20, true),
      addr: dv.getBigUint64(at + 24, true),
      length: dv.getUint32(at + 32, true),
      cookie: dv.getUint32(at + 36, true),
    });
  }
  return out;
}

const RW_PERM = IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE;

interface Hw {
  takePageResponses(): PageResponse[];
}

/** The page responses the mock hardware received (CMD_PAGE_RESP), after the FAULT's are sent. */
async function hwResponses(self: MockSelf, file?: FaultFile): Promise<PageResponse[]> {
  if (file) await file.fault.flush();
  return (self.stack.host.hardware as unknown as Hw).takePageResponses();
}

/**
 * test_cmd_trigger_iopf / test_cmd_trigger_iopf_pasid: inject pasid, grpid 2, READ|WRITE,
 * 0xdeadbeaf; read one record; answer SUCCESS with its cookie.
 */
async function triggerIopf(ops: ViommuTestOps, devId: number, file: FaultFile, pasid = 1): Promise<void> {
  await ops.triggerIopf(devId, pasid, 2, RW_PERM, 0xdeadbeaf);
  const b = file.read(40);
  expect(b.length).toBe(40);
  const [f] = records(b);
  expect(f).toMatchObject({ devId, grpid: 2, perm: RW_PERM, addr: 0xdeadbeafn, length: 0, reserved: 0 });
  expect(file.write(responses([f!.cookie, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
}

describe('FIXTURE iommufd_ioas (mock_domain): alloc_hwpt_nested, IOPF part', () => {
  let self: MockSelf;
  let ops: ViommuTestOps;
  let ioasId: number;
  let stdevId: number;
  let deviceId: number;

  beforeEach(async () => {
    self = await openMockSelf();
    ops = new ViommuTestOps(self.fd);
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    ({ outStdevId: stdevId, outIdevId: deviceId } = await self.mock.mockDomain(ioasId));
  });
  afterEach(async () => {
    await teardownMock(self);
  });

  it('IOPF nested HWPT: bad fault id, attach, busy, trigger and respond, back to the parent', async () => {
    const data = selftestData(IOMMU_TEST_IOTLB_DEFAULT);
    const parent = (await self.fd.hwptAlloc({ devId: deviceId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).outHwptId;
    const { outFaultId: faultId, outFaultFd: faultFd, file } = await self.fd.faultQueueAlloc();
    expect(faultId).not.toBe(0);
    expect(faultFd).not.toBe(0);
    expect(self.fd.files.get(faultFd)).toBe(file);
    await expectErrno(
      'ENOENT',
      self.fd.hwptAlloc({ devId: deviceId, ptId: parent, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId: 0xffff_ffff, dataType: IOMMU_HWPT_DATA_SELFTEST, data }),
    );
    const iopfHwpt = (
      await self.fd.hwptAlloc({ devId: deviceId, ptId: parent, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId, dataType: IOMMU_HWPT_DATA_SELFTEST, data })
    ).outHwptId;
    // The FAULT is used by the HWPT and by its open file.
    await expectErrno('EBUSY', self.fd.destroy({ id: faultId }));

    await self.mock.mockDomainReplace(stdevId, iopfHwpt);
    await expectErrno('EBUSY', self.fd.destroy({ id: iopfHwpt }));
    await triggerIopf(ops, deviceId, file);
    // The SUCCESS response reached the device (the RID is attached: the request had PASID 1).
    const rid = self.mock.deviceOf(stdevId).dev.rid;
    expect(await hwResponses(self, file)).toEqual([{ rid, pasid: 1, grpid: 2, code: IOMMUFD_PAGE_RESP_SUCCESS }]);

    await self.mock.mockDomainReplace(stdevId, parent);
    await self.fd.destroy({ id: iopfHwpt });
    self.fd.files.close(faultFd);
    await self.fd.destroy({ id: faultId });
    await self.mock.mockDomainReplace(stdevId, ioasId);
    await self.fd.destroy({ id: parent });
  });

  describe('fault file rules', () => {
    let file: FaultFile;
    let faultId: number;
    let iopfHwpt: number;
    let parent: number;
    let rid: number;

    beforeEach(async () => {
      parent = (await self.fd.hwptAlloc({ devId: deviceId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).outHwptId;
      ({ outFaultId: faultId, file } = await self.fd.faultQueueAlloc());
      iopfHwpt = (
        await self.fd.hwptAlloc({
          devId: deviceId,
          ptId: parent,
          flags: IOMMU_HWPT_FAULT_ID_VALID,
          faultId,
          dataType: IOMMU_HWPT_DATA_SELFTEST,
          data: selftestData(0),
        })
      ).outHwptId;
      await self.mock.mockDomainReplace(stdevId, iopfHwpt);
      rid = self.mock.deviceOf(stdevId).dev.rid;
    });

    it('FAULT_QUEUE_ALLOC: flags → EOPNOTSUPP; ids and fds as the kernel hands them out', async () => {
      await expectErrno('EOPNOTSUPP', self.fd.faultQueueAlloc({ flags: 1 }));
      const b = await self.fd.faultQueueAlloc();
      // ioas 1, selftest 2, device 3, auto HWPT 4 (gone with the replace: its id is reused), ...
      expect(b.outFaultId).toBe(4);
      expect(self.fd.files.get(3)).toBe(file);
      expect(b.outFaultFd).toBe(4);
      expect(file.poll()).toEqual({ readable: false, writable: true });
    });

    it('read: ESPIPE for a count not a multiple of 40 or a position; 0 bytes when empty', async () => {
      expect(() => file.read(39)).toThrow(expect.objectContaining({ errno: 'ESPIPE' }));
      expect(() => file.read(41)).toThrow(expect.objectContaining({ errno: 'ESPIPE' }));
      expect(() => file.read(40, 40)).toThrow(expect.objectContaining({ errno: 'ESPIPE' }));
      expect(file.read(0).length).toBe(0);
      expect(file.read(400).length).toBe(0);
    });

    it('a record carries the request: flags, dev_id, pasid, grpid, perm, addr, length 0, cookie from 1', async () => {
      await ops.triggerIopf(deviceId, 0, 5, IOMMU_PGFAULT_PERM_READ, 0x1234_5000);
      await ops.triggerIopf(deviceId, 7, 6, RW_PERM, 0xdeadbeaf);
      expect(file.poll().readable).toBe(true);
      // Read one group at a time: a count smaller than the next group leaves it queued.
      const one = file.read(40);
      expect(Array.from(one.subarray(0, 24))).toEqual(
        // flags = LAST_PAGE, dev_id, pasid 0, grpid 5, perm READ, __reserved
        [2, 0, 0, 0, deviceId, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
      );
      expect(records(one)).toEqual([
        { flags: IOMMU_PGFAULT_FLAGS_LAST_PAGE, devId: deviceId, pasid: 0, grpid: 5, perm: 1, reserved: 0, addr: 0x1234_5000n, length: 0, cookie: 1 },
      ]);
      const two = records(file.read(80));
      expect(two).toEqual([
        {
          flags: IOMMU_PGFAULT_FLAGS_LAST_PAGE | IOMMU_PGFAULT_FLAGS_PASID_VALID,
          devId: deviceId,
          pasid: 7,
          grpid: 6,
          perm: RW_PERM,
          reserved: 0,
          addr: 0xdeadbeafn,
          length: 0,
          cookie: 2,
        },
      ]);
      expect(file.poll().readable).toBe(false);
      // Answer 2 then 1; a freed cookie is not handed out again: cookies are cyclic (the model
      // departs on purpose from the kernel's lowest-free xa_alloc, which would give 1 again), so
      // the stale cookies 1 and 2 answer nothing.
      expect(file.write(responses([2, IOMMUFD_PAGE_RESP_INVALID], [1, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(16);
      expect(await hwResponses(self, file)).toEqual([
        { rid, pasid: 7, grpid: 6, code: IOMMUFD_PAGE_RESP_INVALID },
        { rid, pasid: -1, grpid: 5, code: IOMMUFD_PAGE_RESP_SUCCESS },
      ]);
      await ops.triggerIopf(deviceId, 0, 9, RW_PERM, 0x1000);
      expect(records(file.read(40))[0]!.cookie).toBe(3);
      expect(() => file.write(responses([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
      expect(() => file.write(responses([2, IOMMUFD_PAGE_RESP_SUCCESS]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
      expect(await hwResponses(self, file)).toEqual([]);
      expect(file.write(responses([3, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
      expect(await hwResponses(self, file)).toEqual([{ rid, pasid: -1, grpid: 9, code: IOMMUFD_PAGE_RESP_SUCCESS }]);
    });

    it('write: ESPIPE for a count not a multiple of 8; EINVAL for a bad code or cookie; partial writes', async () => {
      await ops.triggerIopf(deviceId, 0, 1, RW_PERM, 0x1000);
      await ops.triggerIopf(deviceId, 0, 2, RW_PERM, 0x2000);
      const recs = records(file.read(80));
      expect(recs.map((r) => r.cookie)).toEqual([1, 2]);
      expect(() => file.write(new Uint8Array(7))).toThrow(expect.objectContaining({ errno: 'ESPIPE' }));
      expect(() => file.write(new Uint8Array(9))).toThrow(expect.objectContaining({ errno: 'ESPIPE' }));
      expect(() => file.write(responses([1, 0]), 8)).toThrow(expect.objectContaining({ errno: 'ESPIPE' }));
      // code other than SUCCESS / INVALID
      expect(() => file.write(responses([1, 2]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
      // unknown cookie
      expect(() => file.write(responses([3, 0]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
      // nothing was consumed: cookie 1 is still waiting
      expect(await hwResponses(self, file)).toEqual([]);
      // the first response is consumed, the bad second one stops the write: 8 bytes
      expect(file.write(responses([1, 0], [1, 0]))).toBe(8);
      // a zero-length write does nothing
      expect(file.write(new Uint8Array(0))).toBe(0);
      expect(file.write(responses([2, IOMMUFD_PAGE_RESP_INVALID]))).toBe(8);
      expect(await hwResponses(self, file)).toEqual([
        { rid, pasid: -1, grpid: 1, code: 0 },
        { rid, pasid: -1, grpid: 2, code: 1 },
      ]);
      // answered cookies are gone
      expect(() => file.write(responses([1, 0]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    });

    it('groups: partial requests wait for the last one; a read delivers whole groups only', async () => {
      const drv = self.stack.driver as unknown as {
        triggerPageRequest(dev: unknown, r: { pasid: number; grpid: number; perm: number; addr: number; last?: boolean }): Promise<boolean>;
      };
      const dev = self.mock.deviceOf(stdevId).dev;
      for (const addr of [0x1000, 0x2000]) await drv.triggerPageRequest(dev, { pasid: -1, grpid: 3, perm: 1, addr, last: false });
      await self.stack.driver.drainFaults();
      expect(file.read(400).length).toBe(0); // the group is not complete
      await ops.triggerIopf(deviceId, 0, 3, 1, 0x3000);
      // A 3-record group does not fit 80 bytes: nothing is read, it stays queued.
      expect(file.read(80).length).toBe(0);
      const recs = records(file.read(120));
      expect(recs.map((r) => [r.addr, r.flags, r.cookie])).toEqual([
        [0x1000n, 0, 1],
        [0x2000n, 0, 1],
        [0x3000n, IOMMU_PGFAULT_FLAGS_LAST_PAGE, 1],
      ]);
      expect(file.write(responses([1, 0]))).toBe(8);
      expect(await hwResponses(self, file)).toEqual([{ rid, pasid: -1, grpid: 3, code: 0 }]);
    });

    it('replace / detach away from the IOPF HWPT answers pending groups INVALID', async () => {
      await ops.triggerIopf(deviceId, 0, 1, RW_PERM, 0x1000); // will be read
      await ops.triggerIopf(deviceId, 0, 2, RW_PERM, 0x2000); // stays queued
      expect(records(file.read(40))[0]!.cookie).toBe(1);
      await self.mock.mockDomainReplace(stdevId, parent);
      expect(await hwResponses(self, file)).toEqual([
        { rid, pasid: -1, grpid: 2, code: IOMMUFD_PAGE_RESP_INVALID },
        { rid, pasid: -1, grpid: 1, code: IOMMUFD_PAGE_RESP_INVALID },
      ]);
      expect(file.read(400).length).toBe(0);
      expect(() => file.write(responses([1, 0]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
      // Not attached to an IOPF HWPT any more: a request is answered INVALID at once.
      await ops.triggerIopf(deviceId, 0, 4, RW_PERM, 0x4000);
      expect(file.read(40).length).toBe(0);
      expect(await hwResponses(self)).toEqual([{ rid, pasid: -1, grpid: 4, code: IOMMUFD_PAGE_RESP_INVALID }]);
      // Back on the IOPF HWPT, then the device goes (detach + unbind).
      await self.mock.mockDomainReplace(stdevId, iopfHwpt);
      await ops.triggerIopf(deviceId, 0, 5, RW_PERM, 0x5000);
      await self.fd.destroy({ id: stdevId });
      expect(await hwResponses(self, file)).toEqual([{ rid, pasid: -1, grpid: 5, code: IOMMUFD_PAGE_RESP_INVALID }]);
      expect(file.poll().readable).toBe(false);
    });

    it('DESTROY of the FAULT answers everything INVALID; closing its file first is required', async () => {
      await ops.triggerIopf(deviceId, 0, 1, RW_PERM, 0x1000);
      await ops.triggerIopf(deviceId, 0, 2, RW_PERM, 0x2000);
      file.read(40);
      await self.mock.mockDomainReplace(stdevId, ioasId);
      expect(await hwResponses(self, file)).toHaveLength(2);
      await ops.triggerIopf(deviceId, 0, 3, RW_PERM, 0x3000); // not attached: INVALID at once
      expect(await hwResponses(self)).toHaveLength(1);
      await self.fd.destroy({ id: iopfHwpt });
      await expectErrno('EBUSY', self.fd.destroy({ id: faultId }));
      file.close();
      expect(() => file.read(40)).toThrow(expect.objectContaining({ errno: 'EBADF' }));
      await self.fd.destroy({ id: faultId });
      await expectErrno('ENOENT', self.fd.destroy({ id: faultId }));
    });

    it('closing the iommufd with groups pending answers them and releases everything', async () => {
      await ops.triggerIopf(deviceId, 0, 1, RW_PERM, 0x1000);
      await ops.triggerIopf(deviceId, 0, 2, RW_PERM, 0x2000);
      file.read(40);
      const hw = self.stack.host.hardware as unknown as Hw;
      await self.fd.close();
      const got = hw.takePageResponses();
      expect(got.map((r) => r.code).sort()).toEqual([IOMMUFD_PAGE_RESP_INVALID, IOMMUFD_PAGE_RESP_INVALID]);
    });
  });
});

describe('FIXTURE iommufd_device_pasid: pasid_attach, IOPF part', () => {
  let self: MockSelf;
  let ops: ViommuTestOps;
  let ioasId: number;
  let stdevId: number;
  let deviceId: number;

  beforeEach(async () => {
    self = await openMockSelf();
    ops = new ViommuTestOps(self.fd);
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    ({ outStdevId: stdevId, outIdevId: deviceId } = await self.mock.mockDomainFlags(ioasId, MOCK_FLAGS_DEVICE_PASID));
  });
  afterEach(async () => {
    await teardownMock(self);
  });

  it('IOPF HWPT on PASID 2048 and an IOPF with that PASID', async () => {
    const data = selftestData(IOMMU_TEST_IOTLB_DEFAULT);
    const s2 = (await self.fd.hwptAlloc({ devId: deviceId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID })).outHwptId;
    // The RID must sit on a PASID-compatible HWPT first.
    await self.mock.mockDomainReplace(stdevId, s2);
    const { outFaultId: faultId, outFaultFd: faultFd, file } = await self.fd.faultQueueAlloc();
    const iopfHwpt = (
      await self.fd.hwptAlloc({
        devId: deviceId,
        ptId: s2,
        flags: IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID,
        faultId,
        dataType: IOMMU_HWPT_DATA_SELFTEST,
        data,
      })
    ).outHwptId;
    const pasid = 2048;
    await self.mock.pasidAttach(stdevId, pasid, iopfHwpt);
    await self.mock.pasidCheckHwpt(stdevId, pasid, iopfHwpt);
    // test_cmd_trigger_iopf_pasid
    await triggerIopf(ops, deviceId, file, pasid);
    const rid = self.mock.deviceOf(stdevId).dev.rid;
    expect(await hwResponses(self, file)).toEqual([{ rid, pasid, grpid: 2, code: IOMMUFD_PAGE_RESP_SUCCESS }]);
    // A PASID without its own attachment and a RID on a paging HWPT: no handler → INVALID.
    await ops.triggerIopf(deviceId, 5, 2, RW_PERM, 0x1000);
    expect(file.read(40).length).toBe(0);
    expect(await hwResponses(self)).toEqual([{ rid, pasid: 5, grpid: 2, code: IOMMUFD_PAGE_RESP_INVALID }]);
    // Pending on the PASID, then the PASID moves to s2: answered INVALID.
    await ops.triggerIopf(deviceId, pasid, 3, RW_PERM, 0x2000);
    await self.mock.pasidReplace(stdevId, pasid, s2);
    expect(await hwResponses(self, file)).toEqual([{ rid, pasid, grpid: 3, code: IOMMUFD_PAGE_RESP_INVALID }]);
    await self.mock.pasidDetach(stdevId, pasid);
    await self.mock.pasidCheckHwpt(stdevId, pasid, 0);
    await self.fd.destroy({ id: iopfHwpt });
    self.fd.files.close(faultFd);
    await self.fd.destroy({ id: faultId });
    await self.mock.mockDomainReplace(stdevId, ioasId);
    await self.fd.destroy({ id: s2 });
  });
});
