/**
 * IOMMU_HWPT_ALLOC of a paging HWPT with driver data: the selftest helper
 * test_cmd_hwpt_alloc_iommupt() (iommufd_utils.h) passes IOMMU_HWPT_DATA_SELFTEST with
 * pagetable_type MOCK_IOMMUPT_DEFAULT / MOCK_IOMMUPT_HUGE, and the mock driver's
 * mock_domain_alloc_paging_flags() (selftest.c) validates it: type SELFTEST or NONE else
 * EOPNOTSUPP; a size-extensible struct (EINVAL below `iotlb`, E2BIG for a non-zero tail);
 * unknown pagetable_type EOPNOTSUPP.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_HWPT_DATA_VTD_S1 } from '../src/uapi/constants.js';
import { expectErrno, FIXED, MOCK_APERTURE_START, PAGE_SIZE, RW } from './fixture.js';
import { dma, IOMMU_HWPT_DATA_SELFTEST, openMockSelf, teardownMock, type MockSelf } from './mock-fixture.js';

const MOCK_IOMMUPT_DEFAULT = 0;
const MOCK_IOMMUPT_HUGE = 1;

/** struct iommu_hwpt_selftest { u32 iotlb; u32 pagetable_type; } (+ optional tail). */
function iommupt(pagetableType: number, bytes = 8, tail = 0): Uint8Array {
  const b = new Uint8Array(bytes);
  const dv = new DataView(b.buffer);
  if (bytes >= 8) dv.setUint32(4, pagetableType, true);
  if (bytes > 8) b[bytes - 1] = tail;
  return b;
}

describe('paging HWPT with IOMMU_HWPT_DATA_SELFTEST (test_cmd_hwpt_alloc_iommupt)', () => {
  let self: MockSelf;
  let ioasId: number;
  let devId: number;

  beforeEach(async () => {
    self = await openMockSelf();
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    devId = (await self.mock.mockDomain(ioasId)).outIdevId;
  });
  afterEach(async () => {
    await teardownMock(self);
  });

  it('MOCK_IOMMUPT_DEFAULT and MOCK_IOMMUPT_HUGE allocate a working paging HWPT (dirty tracking too)', async () => {
    for (const type of [MOCK_IOMMUPT_DEFAULT, MOCK_IOMMUPT_HUGE]) {
      const { outHwptId } = await self.fd.hwptAlloc({
        flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
        devId,
        ptId: ioasId,
        dataType: IOMMU_HWPT_DATA_SELFTEST,
        data: iommupt(type),
      });
      const { outStdevId } = await self.mock.mockDomain(outHwptId);
      const iova = MOCK_APERTURE_START + type * 0x10_0000;
      await self.fd.ioasMap({ flags: FIXED | RW, ioasId, userVa: self.buffer, length: PAGE_SIZE, iova });
      const rid = self.mock.deviceOf(outStdevId).dev.rid;
      expect((await dma(self, rid, iova + 8)).pa).toBe(self.proc.translate(self.buffer + 8));
      await self.fd.ioasUnmap({ ioasId, iova, length: PAGE_SIZE });
      await self.fd.destroy({ id: outStdevId });
      await self.fd.destroy({ id: outHwptId });
    }
  });

  it('bad driver data: wrong type EOPNOTSUPP, short EINVAL, non-zero tail E2BIG, unknown format EOPNOTSUPP', async () => {
    const alloc = (dataType: number, data: Uint8Array) => self.fd.hwptAlloc({ flags: 0, devId, ptId: ioasId, dataType, data });
    await expectErrno('EOPNOTSUPP', alloc(IOMMU_HWPT_DATA_VTD_S1, iommupt(0)));
    await expectErrno('EINVAL', alloc(IOMMU_HWPT_DATA_SELFTEST, iommupt(0, 2)));
    await expectErrno('E2BIG', alloc(IOMMU_HWPT_DATA_SELFTEST, iommupt(0, 12, 1)));
    await expectErrno('EOPNOTSUPP', alloc(IOMMU_HWPT_DATA_SELFTEST, iommupt(2)));
    // A zero tail beyond the struct behaves as the exact size.
    const { outHwptId } = await alloc(IOMMU_HWPT_DATA_SELFTEST, iommupt(0, 12, 0));
    await self.fd.destroy({ id: outHwptId });
  });
});
