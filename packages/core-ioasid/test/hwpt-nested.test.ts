/**
 * TEST_F(iommufd_ioas, alloc_hwpt_nested) (tools/testing/selftests/iommu/iommufd.c) without the
 * IOPF parts (fault queue, IOPF HWPT, trigger_iopf): the mock_domain variants, and the no_domain
 * variant where everything is ENOENT. Nested DMA goes through the parent's page table.
 */
import { ACCESS_READ, IommuError } from '@iommulab/driver-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IommufdError } from '../src/errors.js';
import { testSetTempMemoryLimit } from '../src/selftest.js';
import { MOCK_FLAGS_DEVICE_PASID } from '../src/selftest-mock.js';
import { IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_DATA_NONE, IOMMU_HWPT_FAULT_ID_VALID } from '../src/uapi/constants.js';
import { expectErrno, FIXED, MOCK_APERTURE_START, PAGE_SIZE, RW } from './fixture.js';
import {
  dma,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_TEST_IOTLB_DEFAULT,
  MOCK_NESTED_DOMAIN_IOTLB_ID_MAX,
  openMockSelf,
  teardownMock,
  type MockSelf,
} from './mock-fixture.js';

/** struct iommu_hwpt_selftest { u32 iotlb; u32 pagetable_type; } */
function selftestData(iotlb: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(0, iotlb, true);
  return b;
}
const MIN_DATA_LEN = 4; // offsetofend(struct iommu_hwpt_selftest, iotlb)

/** struct iommu_hwpt_invalidate_selftest { u32 flags; u32 iotlb_id; }[] */
function invReqs(reqs: { flags: number; iotlbId: number }[]): Uint8Array {
  const b = new Uint8Array(8 * Math.max(2, reqs.length));
  const dv = new DataView(b.buffer);
  reqs.forEach((r, i) => {
    dv.setUint32(i * 8, r.flags >>> 0, true);
    dv.setUint32(i * 8 + 4, r.iotlbId >>> 0, true);
  });
  return b;
}

const VARIANTS = [
  { name: 'no_domain', mockDomains: 0, pasidCapable: false },
  { name: 'mock_domain', mockDomains: 1, pasidCapable: true },
  { name: 'two_mock_domain', mockDomains: 2, pasidCapable: false },
  { name: 'mock_domain_limit', mockDomains: 1, pasidCapable: false },
];

describe.each(VARIANTS)('FIXTURE iommufd_ioas ($name): alloc_hwpt_nested', (variant) => {
  let self: MockSelf;
  let ioasId: number;
  let stdevId = 0;
  let deviceId = 0;

  beforeEach(async () => {
    self = await openMockSelf();
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    await testSetTempMemoryLimit(self.fd.ctx, { limit: 65536 });
    stdevId = deviceId = 0;
    for (let i = 0; i < variant.mockDomains; i++) {
      const r = await self.mock.mockDomain(ioasId);
      stdevId = r.outStdevId;
      deviceId = r.outIdevId;
    }
    if (variant.pasidCapable) await self.mock.mockDomainFlags(ioasId, MOCK_FLAGS_DEVICE_PASID);
  });
  afterEach(async () => {
    await teardownMock(self);
  });

  async function checkIotlbAll(id: number, value: number): Promise<void> {
    for (let i = 0; i <= MOCK_NESTED_DOMAIN_IOTLB_ID_MAX; i++) await self.mock.mdCheckIotlb(id, i, value);
  }

  async function expectInvalidate(errno: string, p: Promise<unknown>, entryNum: number): Promise<void> {
    const e = await p.then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(IommufdError);
    expect((e as IommuError).errno).toBe(errno);
    expect((e as IommufdError).out?.entryNum).toBe(entryNum);
  }

  it('alloc_hwpt_nested', async () => {
    const data = selftestData(IOMMU_TEST_IOTLB_DEFAULT);
    const nested = [0, 0];
    if (!deviceId) {
      // no_domain: there is no device
      await expectErrno('ENOENT', self.fd.hwptAlloc({ devId: deviceId, ptId: ioasId }));
      await expectErrno('ENOENT', self.fd.hwptAlloc({ devId: deviceId, ptId: 0, dataType: IOMMU_HWPT_DATA_SELFTEST, data }));
      await expectErrno('ENOENT', self.fd.hwptAlloc({ devId: deviceId, ptId: 0, dataType: IOMMU_HWPT_DATA_SELFTEST, data }));
      return;
    }
    // Negative tests
    await expectErrno('ENOENT', self.fd.hwptAlloc({ devId: ioasId, ptId: deviceId }));
    await expectErrno('EINVAL', self.fd.hwptAlloc({ devId: deviceId, ptId: deviceId }));
    await expectErrno('EOPNOTSUPP', self.fd.hwptAlloc({ devId: deviceId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_FAULT_ID_VALID }));
    const parent = (await self.fd.hwptAlloc({ devId: deviceId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).outHwptId;
    const parentNotWork = (await self.fd.hwptAlloc({ devId: deviceId, ptId: ioasId, flags: 0 })).outHwptId;

    // Negative nested tests
    await expectErrno('EINVAL', self.fd.hwptAlloc({ devId: deviceId, ptId: parent, dataType: IOMMU_HWPT_DATA_NONE, data, dataLen: 8 }));
    await expectErrno('EOPNOTSUPP', self.fd.hwptAlloc({ devId: deviceId, ptId: parent, dataType: IOMMU_HWPT_DATA_SELFTEST + 1, data }));
    await expectErrno('EINVAL', self.fd.hwptAlloc({ devId: deviceId, ptId: parent, dataType: IOMMU_HWPT_DATA_SELFTEST, data, dataLen: MIN_DATA_LEN - 1 }));
    await expectErrno('EFAULT', self.fd.hwptAlloc({ devId: deviceId, ptId: parent, dataType: IOMMU_HWPT_DATA_SELFTEST, data: null, dataLen: 8 }));
    await expectErrno('EOPNOTSUPP', self.fd.hwptAlloc({ devId: deviceId, ptId: parent, flags: IOMMU_HWPT_ALLOC_NEST_PARENT, dataType: IOMMU_HWPT_DATA_SELFTEST, data }));
    await expectErrno('EINVAL', self.fd.hwptAlloc({ devId: deviceId, ptId: parentNotWork, dataType: IOMMU_HWPT_DATA_SELFTEST, data }));

    // Allocate two nested hwpts sharing one common parent hwpt
    nested[0] = (await self.fd.hwptAlloc({ devId: deviceId, ptId: parent, dataType: IOMMU_HWPT_DATA_SELFTEST, data })).outHwptId;
    nested[1] = (await self.fd.hwptAlloc({ devId: deviceId, ptId: parent, dataType: IOMMU_HWPT_DATA_SELFTEST, data })).outHwptId;
    // IOPF HWPT with a bad fault id
    await expectErrno(
      'ENOENT',
      self.fd.hwptAlloc({ devId: deviceId, ptId: parent, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId: 0xffff_ffff, dataType: IOMMU_HWPT_DATA_SELFTEST, data }),
    );
    await checkIotlbAll(nested[0], IOMMU_TEST_IOTLB_DEFAULT);
    await checkIotlbAll(nested[1], IOMMU_TEST_IOTLB_DEFAULT);

    // Negative test: a nested hwpt on top of a nested hwpt
    await expectErrno('EINVAL', self.fd.hwptAlloc({ devId: deviceId, ptId: nested[0], dataType: IOMMU_HWPT_DATA_SELFTEST, data }));
    // Negative test: parent hwpt now cannot be freed
    await expectErrno('EBUSY', self.fd.destroy({ id: parent }));

    const T = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;
    const inv = (hwptId: number, d: Uint8Array | null, dataType: number, entryLen: number, entryNum: number) =>
      self.fd.hwptInvalidate({ hwptId, data: d, dataType, entryLen, entryNum });
    // hwpt_invalidate does not support a parent hwpt
    await expectInvalidate('EINVAL', inv(parent, invReqs([]), T, 8, 1), 0);
    // Check data_type by passing zero-length array
    expect((await inv(nested[0], invReqs([]), T, 8, 0)).entryNum).toBe(0);
    // Negative test: Invalid data_type
    await expectInvalidate('EINVAL', inv(nested[0], invReqs([]), IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID, 8, 1), 0);
    // Negative test: structure size sanity
    await expectInvalidate('EINVAL', inv(nested[0], invReqs([]), T, 8 + 1, 1), 0);
    await expectInvalidate('EINVAL', inv(nested[0], invReqs([]), T, 1, 1), 0);
    // Negative test: invalid flag is passed
    await expectInvalidate('EOPNOTSUPP', inv(nested[0], invReqs([{ flags: 0xffff_ffff, iotlbId: 0 }]), T, 8, 1), 0);
    // Negative test: invalid data_uptr when array is not empty
    await expectInvalidate('EINVAL', inv(nested[0], null, T, 8, 1), 0);
    // Negative test: invalid entry_len when array is not empty
    await expectInvalidate('EINVAL', inv(nested[0], invReqs([]), T, 0, 1), 0);
    // Negative test: invalid iotlb_id
    await expectInvalidate('EINVAL', inv(nested[0], invReqs([{ flags: 0, iotlbId: MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1 }]), T, 8, 1), 0);

    // Invalidate the 1st iotlb entry but fail the 2nd request due to invalid flags
    await expectInvalidate('EOPNOTSUPP', inv(nested[0], invReqs([{ flags: 0, iotlbId: 0 }, { flags: 0xffff_ffff, iotlbId: 1 }]), T, 8, 2), 1);
    await self.mock.mdCheckIotlb(nested[0], 0, 0);
    for (const i of [1, 2, 3]) await self.mock.mdCheckIotlb(nested[0], i, IOMMU_TEST_IOTLB_DEFAULT);
    // ... and due to an invalid iotlb_id in the 2nd request
    await expectInvalidate('EINVAL', inv(nested[0], invReqs([{ flags: 0, iotlbId: 0 }, { flags: 0, iotlbId: MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1 }]), T, 8, 2), 1);
    await self.mock.mdCheckIotlb(nested[0], 0, 0);
    for (const i of [1, 2, 3]) await self.mock.mdCheckIotlb(nested[0], i, IOMMU_TEST_IOTLB_DEFAULT);
    // Invalidate the 2nd iotlb entry and verify
    expect((await inv(nested[0], invReqs([{ flags: 0, iotlbId: 1 }]), T, 8, 1)).entryNum).toBe(1);
    await self.mock.mdCheckIotlb(nested[0], 0, 0);
    await self.mock.mdCheckIotlb(nested[0], 1, 0);
    for (const i of [2, 3]) await self.mock.mdCheckIotlb(nested[0], i, IOMMU_TEST_IOTLB_DEFAULT);
    // Invalidate the 3rd and 4th iotlb entries and verify
    expect((await inv(nested[0], invReqs([{ flags: 0, iotlbId: 2 }, { flags: 0, iotlbId: 3 }]), T, 8, 2)).entryNum).toBe(2);
    await checkIotlbAll(nested[0], 0);
    // Invalidate all iotlb entries for nested[1] and verify
    expect((await inv(nested[1], invReqs([{ flags: IOMMU_TEST_INVALIDATE_FLAG_ALL, iotlbId: 0 }]), T, 8, 1)).entryNum).toBe(1);
    await checkIotlbAll(nested[1], 0);
    // MD_CHECK_IOTLB negative: slot 4, wrong value, not a nested HWPT
    await expectErrno('EINVAL', self.mock.mdCheckIotlb(nested[1], 4, 0));
    await expectErrno('EINVAL', self.mock.mdCheckIotlb(nested[1], 0, 1));
    await expectErrno('ENOENT', self.mock.mdCheckIotlb(parent, 0, 0));

    // Attach device to nested[0] that then will be busy
    await self.mock.mockDomainReplace(stdevId, nested[0]);
    await expectErrno('EBUSY', self.fd.destroy({ id: nested[0] }));
    // DMA through the nested HWPT translates through the parent's (stage-2) table
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer, length: PAGE_SIZE, iova: MOCK_APERTURE_START });
    const rid = self.mock.deviceOf(stdevId).dev.rid;
    const t = await dma(self, rid, MOCK_APERTURE_START, ACCESS_READ);
    expect(t.ok).toBe(true);
    expect(t.pa).toBe(self.proc.translate(self.buffer));
    await self.fd.ioasUnmap({ ioasId, iova: MOCK_APERTURE_START, length: PAGE_SIZE });
    expect((await dma(self, rid, MOCK_APERTURE_START, ACCESS_READ)).ok).toBe(false);

    // Switch from nested[0] to nested[1]
    await self.mock.mockDomainReplace(stdevId, nested[1]);
    await expectErrno('EBUSY', self.fd.destroy({ id: nested[1] }));
    await self.fd.destroy({ id: nested[0] });
    // Detach from nested[1] and destroy it
    await self.mock.mockDomainReplace(stdevId, parent);
    await self.fd.destroy({ id: nested[1] });
    // Detach from the parent hw_pagetable and destroy it
    await self.mock.mockDomainReplace(stdevId, ioasId);
    await self.fd.destroy({ id: parent });
    await self.fd.destroy({ id: parentNotWork });
  });

  it('hwpt_alloc: data_type / data_len consistency and pt_id errors come in the kernel order', async () => {
    if (!deviceId) return;
    // data without a type, a type without data: EINVAL before the device lookup
    await expectErrno('EINVAL', self.fd.hwptAlloc({ devId: 0, ptId: ioasId, dataType: 0, dataLen: 4, data: new Uint8Array(4) }));
    await expectErrno('EINVAL', self.fd.hwptAlloc({ devId: 0, ptId: ioasId, dataType: IOMMU_HWPT_DATA_SELFTEST, dataLen: 0 }));
    // unknown pt_id: EINVAL (not ENOENT)
    await expectErrno('EINVAL', self.fd.hwptAlloc({ devId: deviceId, ptId: 9999 }));
    // a failed alloc leaves no object behind: the next id is the next free one
    const before = self.fd.ctx.objects.size;
    await expectErrno('EOPNOTSUPP', self.fd.hwptAlloc({ devId: deviceId, ptId: ioasId, flags: 1 << 7 }));
    expect(self.fd.ctx.objects.size).toBe(before);
    // invalidate of a missing id: ENOENT, entry_num 0
    await expectInvalidate('ENOENT', self.fd.hwptInvalidate({ hwptId: 9999, dataType: IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, entryLen: 8, entryNum: 0 }), 0);
  });
});
