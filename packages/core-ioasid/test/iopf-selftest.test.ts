/**
 * The IOPF (IOMMU_TEST_OP_TRIGGER_IOPF) and vEVENT (IOMMU_TEST_OP_TRIGGER_VEVENT) cases of
 * tools/testing/selftests/iommu/iommufd.c that iommufd-fault.test.ts / iommufd-viommu.test.ts /
 * hwpt-nested.test.ts / iommufd-device-pasid.test.ts do not port, on hw-mock through the
 * core-ioasid selftest API (MockTestOps, ViommuTestOps):
 *
 * - TEST_F(iommufd_ioas, alloc_hwpt_nested), its IOPF thread, in the kernel's order, for every
 *   variant with a device (mock_domain, two_mock_domain, mock_domain_limit): FAULT_QUEUE_ALLOC
 *   before the nested HWPTs, the IOPF HWPT on the nest parent, nested[1] → IOPF HWPT, EBUSY,
 *   test_cmd_trigger_iopf, back to the parent, the destroys, close(fault_fd), destroy(fault_id).
 * - TEST_F(iommufd_device_pasid, pasid_attach), its IOPF part with the kernel's HWPT layout
 *   (IOPF HWPT nested on a NEST_PARENT that is not PASID-capable, RID on the PASID-capable s2),
 *   for both variants (no_pasid, has_pasid): PASID 2048 → IOPF HWPT, PASID_CHECK_HWPT,
 *   test_cmd_trigger_iopf_pasid, replace → s2, detach, destroys.
 * - TEST_F(iommufd_viommu, viommu_alloc_nested_iopf) again with every value checked (the record
 *   the helper reads and the PAGE_RESP the mock hardware receives), and
 *   TEST_F(iommufd_viommu, vdevice_alloc)'s vEVENTQ stream byte by byte: sequence numbers, the
 *   LOST_EVENTS header of the overflow, the payloads (`struct iommu_viommu_event_selftest`), and
 *   the read counts / depth bounds a newer selftest revision checks (see that test's comment).
 *
 * test_cmd_trigger_iopf (iommufd_utils.h): TRIGGER_IOPF {dev_id, pasid (0x1, or the PASID),
 * grpid 0x2, perm READ | WRITE, addr 0xdeadbeaf}; read(fault_fd, 40) > 0; write {cookie,
 * IOMMUFD_PAGE_RESP_SUCCESS} > 0.
 */
import type { PageResponse } from '@iommulab/driver-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { VeventqFile } from '../src/eventq.js';
import type { FaultFile } from '../src/fault.js';
import { testSetTempMemoryLimit } from '../src/selftest.js';
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
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMUFD_PAGE_RESP_SUCCESS,
} from '../src/uapi/constants.js';
import { expectErrno } from './fixture.js';
import { IOMMU_HWPT_DATA_SELFTEST, IOMMU_TEST_IOTLB_DEFAULT, openMockSelf, teardownMock, type MockSelf } from './mock-fixture.js';

const IOMMU_VIOMMU_TYPE_SELFTEST = 0xdeadbeef;
const IOMMU_VEVENTQ_TYPE_SELFTEST = 0xbeefbeef;
const IOMMU_TEST_DEV_CACHE_DEFAULT = 0xbaddad;
const MOCK_DEV_CACHE_ID_MAX = 3;
const RW_PERM = IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE;
/** sizeof(struct iommufd_vevent_header) and sizeof(struct iommu_viommu_event_selftest). */
const HDR = 8;
const EVT = 4;

/** struct iommu_hwpt_selftest { u32 iotlb; u32 pagetable_type; } */
function selftestData(iotlb: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(0, iotlb, true);
  return b;
}

/** The 40 bytes of one struct iommu_hwpt_pgfault. */
function pgfault(f: { flags: number; devId: number; pasid: number; grpid: number; perm: number; addr: number; cookie: number }): Uint8Array {
  const b = new Uint8Array(40);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, f.flags, true);
  dv.setUint32(4, f.devId, true);
  dv.setUint32(8, f.pasid, true);
  dv.setUint32(12, f.grpid, true);
  dv.setUint32(16, f.perm, true);
  dv.setUint32(20, 0, true); // __reserved
  dv.setBigUint64(24, BigInt(f.addr), true);
  dv.setUint32(32, 0, true); // length
  dv.setUint32(36, f.cookie, true);
  return b;
}

/** struct iommu_hwpt_page_response { u32 cookie; u32 code; } */
function response(cookie: number, code: number): Uint8Array {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, cookie, true);
  dv.setUint32(4, code, true);
  return b;
}

/** {header, struct iommu_viommu_event_selftest {u32 virt_id}} records (a header alone for LOST_EVENTS). */
function vevents(...evs: { flags?: number; seq: number; virtId?: number }[]): Uint8Array {
  const n = evs.reduce((k, e) => k + HDR + (e.virtId === undefined ? 0 : EVT), 0);
  const b = new Uint8Array(n);
  const dv = new DataView(b.buffer);
  let at = 0;
  for (const e of evs) {
    dv.setUint32(at, e.flags ?? 0, true);
    dv.setUint32(at + 4, e.seq, true);
    at += HDR;
    if (e.virtId !== undefined) {
      dv.setUint32(at, e.virtId, true);
      at += EVT;
    }
  }
  return b;
}

/** The PAGE_RESP commands the mock hardware received (after the FAULT's responses went out). */
async function hwResponses(self: MockSelf, file: FaultFile): Promise<PageResponse[]> {
  await file.fault.flush();
  return (self.stack.host.hardware as unknown as { takePageResponses(): PageResponse[] }).takePageResponses();
}

/**
 * _test_cmd_trigger_iopf(fd, device_id, pasid, fault_fd) with every value checked: the record
 * read (flags LAST_PAGE | PASID_VALID — the helper's PASID is never 0 —, dev_id, pasid, grpid 2,
 * READ | WRITE, 0xdeadbeaf, length 0, cookie 1) and the SUCCESS the mock hardware receives for
 * (requester id, PASID, PRG 2).
 */
async function testCmdTriggerIopf(self: MockSelf, ops: ViommuTestOps, deviceId: number, rid: number, pasid: number, file: FaultFile): Promise<void> {
  await ops.triggerIopf(deviceId, pasid, 0x2, RW_PERM, 0xdeadbeaf);
  const fault = file.read(40);
  expect(fault).toEqual(
    pgfault({
      flags: IOMMU_PGFAULT_FLAGS_LAST_PAGE | IOMMU_PGFAULT_FLAGS_PASID_VALID,
      devId: deviceId,
      pasid,
      grpid: 2,
      perm: RW_PERM,
      addr: 0xdeadbeaf,
      cookie: 1,
    }),
  );
  expect(file.write(response(1, IOMMUFD_PAGE_RESP_SUCCESS))).toBe(8);
  expect(await hwResponses(self, file)).toEqual([{ rid, pasid, grpid: 2, code: IOMMUFD_PAGE_RESP_SUCCESS }]);
}

const IOAS_VARIANTS = [
  { name: 'mock_domain', mockDomains: 1, memoryLimit: 0, pasidCapable: true },
  { name: 'two_mock_domain', mockDomains: 2, memoryLimit: 0, pasidCapable: false },
  { name: 'mock_domain_limit', mockDomains: 1, memoryLimit: 16, pasidCapable: false },
];

describe.each(IOAS_VARIANTS)('FIXTURE iommufd_ioas ($name)', (variant) => {
  let self: MockSelf;
  let ops: ViommuTestOps;
  let ioasId = 0;
  let stdevId = 0;
  let deviceId = 0;

  beforeEach(async () => {
    self = await openMockSelf();
    ops = new ViommuTestOps(self.fd);
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    await testSetTempMemoryLimit(self.fd.ctx, { limit: variant.memoryLimit || 65536 });
    for (let i = 0; i < variant.mockDomains; i++) {
      ({ outStdevId: stdevId, outIdevId: deviceId } = await self.mock.mockDomain(ioasId));
      for (let c = 0; c <= MOCK_DEV_CACHE_ID_MAX; c++) await ops.devCheckCache(deviceId, c, IOMMU_TEST_DEV_CACHE_DEFAULT);
    }
    if (variant.pasidCapable) await self.mock.mockDomainFlags(ioasId, MOCK_FLAGS_DEVICE_PASID);
  });
  afterEach(async () => {
    await teardownMock(self);
  });

  it('alloc_hwpt_nested (IOPF thread: FAULT_QUEUE_ALLOC, IOPF HWPT on the nest parent, nested[1] → IOPF HWPT, test_cmd_trigger_iopf, teardown in the kernel order)', async () => {
    const data = selftestData(IOMMU_TEST_IOTLB_DEFAULT);
    const rid = self.mock.deviceOf(stdevId).dev.rid;
    await expectErrno('EOPNOTSUPP', self.fd.hwptAlloc({ devId: deviceId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_FAULT_ID_VALID }));
    const parent = (await self.fd.hwptAlloc({ devId: deviceId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).outHwptId;
    const parentNotWork = (await self.fd.hwptAlloc({ devId: deviceId, ptId: ioasId, flags: 0 })).outHwptId;

    // Allocate two nested hwpts sharing one common parent hwpt (the FAULT first)
    const { outFaultId: faultId, outFaultFd: faultFd, file } = await self.fd.faultQueueAlloc();
    expect(faultId).not.toBe(0);
    expect(faultFd).not.toBe(0);
    const nested0 = (await self.fd.hwptAlloc({ devId: deviceId, ptId: parent, dataType: IOMMU_HWPT_DATA_SELFTEST, data })).outHwptId;
    const nested1 = (await self.fd.hwptAlloc({ devId: deviceId, ptId: parent, dataType: IOMMU_HWPT_DATA_SELFTEST, data })).outHwptId;
    await expectErrno(
      'ENOENT',
      self.fd.hwptAlloc({ devId: deviceId, ptId: parent, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId: 0xffff_ffff, dataType: IOMMU_HWPT_DATA_SELFTEST, data }),
    );
    const iopfHwpt = (
      await self.fd.hwptAlloc({ devId: deviceId, ptId: parent, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId, dataType: IOMMU_HWPT_DATA_SELFTEST, data })
    ).outHwptId;
    for (const h of [nested0, nested1, iopfHwpt]) for (let i = 0; i <= 3; i++) await self.mock.mdCheckIotlb(h, i, IOMMU_TEST_IOTLB_DEFAULT);
    // Negative test: parent hwpt now cannot be freed
    await expectErrno('EBUSY', self.fd.destroy({ id: parent }));

    // Attach device to nested_hwpt_id[0] that then will be busy
    await self.mock.mockDomainReplace(stdevId, nested0);
    await expectErrno('EBUSY', self.fd.destroy({ id: nested0 }));
    // Switch from nested_hwpt_id[0] to nested_hwpt_id[1]
    await self.mock.mockDomainReplace(stdevId, nested1);
    await expectErrno('EBUSY', self.fd.destroy({ id: nested1 }));
    await self.fd.destroy({ id: nested0 });
    // Switch from nested_hwpt_id[1] to iopf_hwpt_id
    await self.mock.mockDomainReplace(stdevId, iopfHwpt);
    await expectErrno('EBUSY', self.fd.destroy({ id: iopfHwpt }));
    // Trigger an IOPF on the device (PASID 1 is not attached: the RID's nested HWPT takes it,
    // the mock's user-managed PASID table)
    await testCmdTriggerIopf(self, ops, deviceId, rid, 0x1, file);

    // Detach from nested_hwpt_id[1] and destroy it
    await self.mock.mockDomainReplace(stdevId, parent);
    await self.fd.destroy({ id: nested1 });
    await self.fd.destroy({ id: iopfHwpt });
    // Detach from the parent hw_pagetable and destroy it
    await self.mock.mockDomainReplace(stdevId, ioasId);
    await self.fd.destroy({ id: parent });
    await self.fd.destroy({ id: parentNotWork });
    // The FAULT: busy while its file is open, gone after close(fault_fd)
    await expectErrno('EBUSY', self.fd.destroy({ id: faultId }));
    self.fd.files.close(faultFd);
    await self.fd.destroy({ id: faultId });
    await expectErrno('ENOENT', self.fd.destroy({ id: faultId }));
    // Nothing else reached the hardware: the one group was answered once.
    expect(await hwResponses(self, file)).toEqual([]);
  });
});

describe.each([
  { name: 'no_pasid', pasidCapable: false },
  { name: 'has_pasid', pasidCapable: true },
])('FIXTURE iommufd_device_pasid ($name)', (variant) => {
  let self: MockSelf;
  let ops: ViommuTestOps;
  let ioasId = 0;
  let stdevId = 0;
  let deviceId = 0;

  beforeEach(async () => {
    self = await openMockSelf();
    ops = new ViommuTestOps(self.fd);
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    ({ outStdevId: stdevId, outIdevId: deviceId } = await self.mock.mockDomainFlags(ioasId, MOCK_FLAGS_DEVICE_PASID));
    if (!variant.pasidCapable) await self.mock.mockDomainFlags(ioasId, 0);
  });
  afterEach(async () => {
    await teardownMock(self);
  });

  it('pasid_attach (IOPF part: the kernel\'s HWPT layout, PASID 2048 → IOPF HWPT, test_cmd_trigger_iopf_pasid, replace → s2 answers nothing more, detach, destroys)', async () => {
    const data = selftestData(IOMMU_TEST_IOTLB_DEFAULT);
    const rid = self.mock.deviceOf(stdevId).dev.rid;
    // Allocate two nested hwpts sharing one common parent hwpt
    const parent = (await self.fd.hwptAlloc({ devId: deviceId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).outHwptId;
    const nested0 = (await self.fd.hwptAlloc({ devId: deviceId, ptId: parent, flags: IOMMU_HWPT_ALLOC_PASID, dataType: IOMMU_HWPT_DATA_SELFTEST, data })).outHwptId;
    const nested1 = (await self.fd.hwptAlloc({ devId: deviceId, ptId: parent, flags: IOMMU_HWPT_ALLOC_PASID, dataType: IOMMU_HWPT_DATA_SELFTEST, data })).outHwptId;
    // Fault related preparation
    const { outFaultId: faultId, outFaultFd: faultFd, file } = await self.fd.faultQueueAlloc();
    expect(faultId).not.toBe(0);
    expect(faultFd).not.toBe(0);
    const iopfHwpt = (
      await self.fd.hwptAlloc({
        devId: deviceId,
        ptId: parent,
        flags: IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID,
        faultId,
        dataType: IOMMU_HWPT_DATA_SELFTEST,
        data,
      })
    ).outHwptId;
    // Allocate a regular nested hwpt based on viommu
    const viommuId = (await self.fd.viommuAlloc({ devId: deviceId, hwptId: parent, type: IOMMU_VIOMMU_TYPE_SELFTEST })).outViommuId;
    const nested2 = (await self.fd.hwptAlloc({ devId: deviceId, ptId: viommuId, flags: IOMMU_HWPT_ALLOC_PASID, dataType: IOMMU_HWPT_DATA_SELFTEST, data })).outHwptId;
    const s2 = (await self.fd.hwptAlloc({ devId: deviceId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_PASID })).outHwptId;
    expect(new Set([parent, nested0, nested1, faultId, iopfHwpt, viommuId, nested2, s2]).size).toBe(8);
    // Attach RID to pasid compat domain
    await self.mock.mockDomainReplace(stdevId, s2);

    // Attach an iopf hwpt to pasid 2048, should succeed, domain should be valid.
    const pasid = 2048;
    await self.mock.pasidAttach(stdevId, pasid, iopfHwpt);
    await self.mock.pasidCheckHwpt(stdevId, pasid, iopfHwpt);
    // The RID's s2 is a paging HWPT: the PASID's own attachment takes the request.
    await testCmdTriggerIopf(self, ops, deviceId, rid, pasid, file);

    // Replace with s2_hwpt_id for pasid 2048, should succeed, and have valid domain.
    await self.mock.pasidReplace(stdevId, pasid, s2);
    await self.mock.pasidCheckHwpt(stdevId, pasid, s2);
    // (the group was answered already: the replace has nothing to answer)
    expect(await hwResponses(self, file)).toEqual([]);
    // cleanup pasid 2048
    await self.mock.pasidDetach(stdevId, pasid);
    await self.mock.pasidCheckHwpt(stdevId, pasid, 0);

    await self.fd.destroy({ id: iopfHwpt });
    self.fd.files.close(faultFd);
    await self.fd.destroy({ id: faultId });
    // Detach the s2_hwpt_id from RID
    await self.mock.mockDomainReplace(stdevId, ioasId);
    // (teardown frees the rest: nested0, nested1, nested2, viommu, parent, s2)
  });
});

describe('FIXTURE iommufd_viommu (mock_viommu)', () => {
  let self: MockSelf;
  let ops: ViommuTestOps;
  let ioasId = 0;
  let stdevId = 0;
  let deviceId = 0;
  let hwptId = 0;
  let viommuId = 0;
  let nestedHwptId = 0;
  let rid = 0;

  beforeEach(async () => {
    self = await openMockSelf();
    ops = new ViommuTestOps(self.fd);
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    await testSetTempMemoryLimit(self.fd.ctx, { limit: 65536 });
    ({ outStdevId: stdevId, outIdevId: deviceId } = await self.mock.mockDomain(ioasId));
    rid = self.mock.deviceOf(stdevId).dev.rid;
    hwptId = (await self.fd.hwptAlloc({ devId: deviceId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).outHwptId;
    viommuId = (await self.fd.viommuAlloc({ devId: deviceId, hwptId, type: IOMMU_VIOMMU_TYPE_SELFTEST })).outViommuId;
    nestedHwptId = (
      await self.fd.hwptAlloc({ devId: deviceId, ptId: viommuId, dataType: IOMMU_HWPT_DATA_SELFTEST, data: selftestData(IOMMU_TEST_IOTLB_DEFAULT) })
    ).outHwptId;
  });
  afterEach(async () => {
    await teardownMock(self);
  });

  it('viommu_alloc_nested_iopf (every value: the record test_cmd_trigger_iopf reads through the vIOMMU nested HWPT, the SUCCESS for PASID 1 / PRG 2 at the hardware)', async () => {
    const data = selftestData(IOMMU_TEST_IOTLB_DEFAULT);
    const { outFaultId: faultId, outFaultFd: faultFd, file } = await self.fd.faultQueueAlloc();
    await expectErrno(
      'ENOENT',
      self.fd.hwptAlloc({ devId: deviceId, ptId: viommuId, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId: 0xffff_ffff, dataType: IOMMU_HWPT_DATA_SELFTEST, data }),
    );
    await expectErrno(
      'EOPNOTSUPP',
      self.fd.hwptAlloc({ devId: deviceId, ptId: viommuId, flags: (IOMMU_HWPT_FAULT_ID_VALID | (1 << 31)) >>> 0, faultId, dataType: IOMMU_HWPT_DATA_SELFTEST, data }),
    );
    const iopfHwpt = (
      await self.fd.hwptAlloc({ devId: deviceId, ptId: viommuId, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId, dataType: IOMMU_HWPT_DATA_SELFTEST, data })
    ).outHwptId;
    // Must allocate vdevice before attaching to a nested hwpt
    await expectErrno('ENOENT', self.mock.mockDomainReplace(stdevId, iopfHwpt));
    const vdevId = (await self.fd.vdeviceAlloc({ viommuId, devId: deviceId, virtId: 0x99 })).outVdeviceId;
    await self.mock.mockDomainReplace(stdevId, iopfHwpt);
    await expectErrno('EBUSY', self.fd.destroy({ id: iopfHwpt }));
    await testCmdTriggerIopf(self, ops, deviceId, rid, 0x1, file);

    await self.mock.mockDomainReplace(stdevId, ioasId);
    await self.fd.destroy({ id: iopfHwpt });
    self.fd.files.close(faultFd);
    await self.fd.destroy({ id: faultId });
    expect(await hwResponses(self, file)).toEqual([]);
    await self.fd.destroy({ id: vdevId });
  });

  it('vdevice_alloc (the vEVENTQ stream byte by byte: {flags, sequence} headers, virt_id payloads, the LOST_EVENTS header of the overflow and the sequence gap after it)', async () => {
    // Must allocate vdevice before attaching to a nested hwpt
    await expectErrno('ENOENT', self.mock.mockDomainReplace(stdevId, nestedHwptId));
    // Allocate a vEVENTQ with veventq_depth=2
    const q = await self.fd.veventqAlloc({ viommuId, type: IOMMU_VEVENTQ_TYPE_SELFTEST, veventqDepth: 2 });
    const file: VeventqFile = q.file;
    expect(q.outVeventqId).not.toBe(0);
    await expectErrno('EEXIST', self.fd.veventqAlloc({ viommuId, type: IOMMU_VEVENTQ_TYPE_SELFTEST, veventqDepth: 2 }));
    // Set vdev_id to 0x99, unset it, and set to 0x88
    let vdevId = (await self.fd.vdeviceAlloc({ viommuId, devId: deviceId, virtId: 0x99 })).outVdeviceId;
    // TRIGGER_VEVENT before the nested attach: the device has no vIOMMU yet (ENOENT), and no
    // sequence number is used.
    await expectErrno('ENOENT', ops.triggerVevent(deviceId));
    await self.mock.mockDomainReplace(stdevId, nestedHwptId);
    await ops.triggerVevent(deviceId);
    expect(file.poll()).toEqual({ readable: true, writable: true });
    // test_cmd_read_vevents(veventq_fd, 1, 0x99, &prev_seq): one {header, event} of 12 bytes
    expect(file.read(1 * (HDR + EVT))).toEqual(vevents({ seq: 0, virtId: 0x99 }));
    expect(file.poll().readable).toBe(false);
    await expectErrno('EEXIST', self.fd.vdeviceAlloc({ viommuId, devId: deviceId, virtId: 0x99 }));
    await self.mock.mockDomainReplace(stdevId, ioasId);
    // Not attached through the vIOMMU any more: ENOENT.
    await expectErrno('ENOENT', ops.triggerVevent(deviceId));
    await self.fd.destroy({ id: vdevId });

    // Try again with 0x88
    vdevId = (await self.fd.vdeviceAlloc({ viommuId, devId: deviceId, virtId: 0x88 })).outVdeviceId;
    await self.mock.mockDomainReplace(stdevId, nestedHwptId);
    // Trigger an overflow with three events: depth 2 → the third is lost (sequence 3 taken)
    for (let i = 0; i < 3; i++) await ops.triggerVevent(deviceId);
    // test_err_read_vevents(EOVERFLOW, veventq_fd, 3, 0x88, &prev_seq): a 36-byte read gets the two
    // events and the LOST_EVENTS header (8 bytes, no payload) at the tail.
    expect(file.read(3 * (HDR + EVT))).toEqual(
      vevents({ seq: 1, virtId: 0x88 }, { seq: 2, virtId: 0x88 }, { flags: IOMMU_VEVENTQ_FLAG_LOST_EVENTS, seq: 3 }),
    );
    // Overflow must be gone after the previous reads: the next event is sequence 4, no header.
    await ops.triggerVevent(deviceId);
    expect(file.read(1 * (HDR + EVT))).toEqual(vevents({ seq: 4, virtId: 0x88 }));
    expect(file.read(64).length).toBe(0);
    self.fd.files.close(q.outVeventqFd);
    await self.mock.mockDomainReplace(stdevId, ioasId);
    await self.fd.destroy({ id: vdevId });
    await self.fd.destroy({ id: q.outVeventqId });
  });

  it('vdevice_alloc (checks of a newer selftest revision — veventq_depth bounds and read counts — against the mainline iommufd_veventq_alloc / iommufd_veventq_fops_read the model follows: depth 0 is EINVAL, there is no upper bound; a read that cannot hold the first record returns 0 bytes and keeps it)', async () => {
    // Test depth lower and upper bounds: mainline checks only `!cmd->veventq_depth`.
    await expectErrno('EINVAL', self.fd.veventqAlloc({ viommuId, type: IOMMU_VEVENTQ_TYPE_SELFTEST, veventqDepth: 0 }));
    const big = await self.fd.veventqAlloc({ viommuId, type: IOMMU_VEVENTQ_TYPE_SELFTEST, veventqDepth: (1 << 19) + 1 });
    self.fd.files.close(big.outVeventqFd);
    await self.fd.destroy({ id: big.outVeventqId });
    const q = await self.fd.veventqAlloc({ viommuId, type: IOMMU_VEVENTQ_TYPE_SELFTEST, veventqDepth: 2 });
    // Read counts on an empty vEVENTQ: `done == 0 ? rc : done` with rc = 0 → 0 bytes.
    expect(q.file.read(0).length).toBe(0);
    expect(q.file.read(HDR - 1).length).toBe(0);
    await self.fd.vdeviceAlloc({ viommuId, devId: deviceId, virtId: 0x99 });
    await self.mock.mockDomainReplace(stdevId, nestedHwptId);
    await ops.triggerVevent(deviceId);
    // Non-empty: 0 bytes, and a header that fits without its payload is not split off.
    expect(q.file.read(0).length).toBe(0);
    expect(q.file.read(HDR).length).toBe(0);
    expect(q.file.read(HDR + EVT - 1).length).toBe(0);
    expect(q.file.poll().readable).toBe(true);
    expect(q.file.read(HDR + EVT)).toEqual(vevents({ seq: 0, virtId: 0x99 }));
    // A position other than 0 is ESPIPE, a write EINVAL (no write op).
    expect(() => q.file.read(HDR + EVT, 1)).toThrow(expect.objectContaining({ errno: 'ESPIPE' }));
    expect(() => q.file.write(new Uint8Array(8))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    await self.mock.mockDomainReplace(stdevId, ioasId);
  });
});
