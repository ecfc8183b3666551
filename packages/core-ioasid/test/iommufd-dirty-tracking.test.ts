/**
 * FIXTURE iommufd_dirty_tracking (tools/testing/selftests/iommu/iommufd.c) with its variants
 * domain_dirty8k .. domain_dirty128M_huge. HUGE_PAGES is turned off unless the variant is huge
 * (then the buffer is populated as one hugepage-aligned run and the domain uses 1 MiB IOPTEs).
 * The bitmap lives in the process's memory (also at offsets MOCK_PAGE_SIZE and 0xff1).
 *
 * Deviation: the huge variants allocate the HWPT without `IOMMU_HWPT_DATA_SELFTEST`
 * (MOCK_IOMMUPT_HUGE): the driver API has no paging-domain data, and hw-mock domains can always
 * use 1 MiB leaves.
 */
import { ACCESS_WRITE } from '@iommulab/driver-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MOCK_FLAGS_DEVICE_NO_DIRTY, MOCK_FLAGS_DEVICE_PASID } from '../src/selftest-mock.js';
import {
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_SET,
} from '../src/uapi/constants.js';
import { expectErrno, FIXED, HUGEPAGE_SIZE, MOCK_APERTURE_START, MOCK_PAGE_SIZE, PAGE_SIZE, RW } from './fixture.js';
import { dma, MOCK_HUGE_PAGE_SIZE, openMockSelf, populate, teardownMock, type MockSelf } from './mock-fixture.js';

const K = 1024;
const M = 1024 * 1024;
const VARIANTS = [
  { name: 'domain_dirty8k', bufferSize: 8 * K, hugepages: false },
  { name: 'domain_dirty16k', bufferSize: 16 * K, hugepages: false },
  { name: 'domain_dirty64k', bufferSize: 64 * K, hugepages: false },
  { name: 'domain_dirty128k', bufferSize: 128 * K, hugepages: false },
  { name: 'domain_dirty320k', bufferSize: 320 * K, hugepages: false },
  { name: 'domain_dirty64M', bufferSize: 64 * M, hugepages: false },
  { name: 'domain_dirty64M_huge', bufferSize: 64 * M, hugepages: true },
  { name: 'domain_dirty128M', bufferSize: 128 * M, hugepages: false },
  { name: 'domain_dirty128M_huge', bufferSize: 128 * M, hugepages: true },
];

describe.each(VARIANTS)('FIXTURE iommufd_dirty_tracking ($name)', (variant) => {
  let self: MockSelf;
  let ioasId: number;
  let hwptId: number;
  let stdevId: number;
  let idevId: number;
  const pageSize = MOCK_PAGE_SIZE;
  let bitmapSize: number; // bits
  let bitmap: number;
  let buffer: number;

  beforeEach(async () => {
    self = await openMockSelf({ memBytes: variant.bufferSize >= 64 * M ? 320 * M : 64 * M });
    const mmapSize = variant.hugepages ? Math.max(variant.bufferSize, HUGEPAGE_SIZE) : variant.bufferSize;
    buffer = self.proc.mmap({ length: mmapSize, shared: true, hugeAlign: HUGEPAGE_SIZE });
    if (variant.hugepages) populate(self, buffer, mmapSize);
    bitmapSize = variant.bufferSize / pageSize;
    bitmap = self.proc.mmap({ length: Math.ceil(bitmapSize / 8) + PAGE_SIZE });
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    // the page size fed into the iommu page tables must match what the dirty logic expects
    if (!variant.hugepages) await self.fd.option({ optionId: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_SET, objectId: ioasId, val64: 0 });
    const r = await self.mock.mockDomain(ioasId);
    stdevId = r.outStdevId;
    hwptId = r.outHwptId;
    idevId = r.outIdevId;
  });
  afterEach(async () => {
    await teardownMock(self);
  });

  const setDirtyTracking = (id: number, enable: boolean) => self.fd.hwptSetDirtyTracking({ hwptId: id, flags: enable ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0 });

  function testBit(at: number, i: number): boolean {
    return (self.proc.read(at + (i >>> 3), 1)[0] & (1 << (i & 7))) !== 0;
  }

  /** _test_mock_dirty_bitmaps: mark every pteset-th IO page dirty, read the bitmap twice. */
  async function testMockDirtyBitmaps(id: number, length: number, iova: number, ps: number, ptePageSize: number, bm: number, nbits: number, flags: number): Promise<void> {
    const npte = ptePageSize / ps;
    const pteset = 2 * npte;
    const nr = Math.floor(nbits / pteset) || 1;
    const nbytes = Math.ceil(nbits / 8);
    // Mark all even bits as dirty in the mock domain
    const bits = new Uint8Array(nbytes);
    for (let i = 0; i < nbits; i += pteset) bits[i >>> 3] |= 1 << (i & 7);
    self.proc.write(bm, bits);
    const out = await self.mock.dirty(id, { iova, length, pageSize: ps, bitmap: bm });
    expect(out.outNrDirty).toBe(nr);
    // Expect all even bits as dirty in the user bitmap
    self.proc.write(bm, new Uint8Array(nbytes));
    await self.fd.hwptGetDirtyBitmap({ hwptId: id, iova, length, pageSize: ps, data: bm, flags });
    const want = new Uint8Array(nbytes);
    for (let i = 0; i < nbits; i += pteset) for (let j = 0; j < npte && i + j < nbits; j++) want[(i + j) >>> 3] |= 1 << ((i + j) & 7);
    let got = self.proc.read(bm, nbytes);
    expect(got).toEqual(want);
    expect(testBit(bm, 0)).toBe(true);
    self.proc.write(bm, new Uint8Array(nbytes));
    await self.fd.hwptGetDirtyBitmap({ hwptId: id, iova, length, pageSize: ps, data: bm, flags });
    // It was read already -- expect all zeroes (unless NO_CLEAR)
    got = self.proc.read(bm, nbytes);
    const noClear = (flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0;
    expect(got).toEqual(noClear ? want : new Uint8Array(nbytes));
  }

  it('enforce_dirty', async () => {
    // Regular case
    const h = (await self.fd.hwptAlloc({ devId: idevId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING })).outHwptId;
    const st = await self.mock.mockDomain(h);
    await expectErrno('EINVAL', self.mock.mockDomainFlags(h, MOCK_FLAGS_DEVICE_NO_DIRTY));
    await self.fd.destroy({ id: st.outStdevId });
    await self.fd.destroy({ id: h });
    // IOMMU device does not support dirty tracking
    const ioas2 = (await self.fd.ioasAlloc()).outIoasId;
    const nd = await self.mock.mockDomainFlags(ioas2, MOCK_FLAGS_DEVICE_NO_DIRTY);
    await expectErrno('EOPNOTSUPP', self.fd.hwptAlloc({ devId: nd.outIdevId, ptId: ioas2, flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING }));
    await self.fd.destroy({ id: nd.outStdevId });
  });

  it('set_dirty_tracking', async () => {
    const h = (await self.fd.hwptAlloc({ devId: idevId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING })).outHwptId;
    const st = await self.mock.mockDomain(h);
    await setDirtyTracking(h, true);
    await setDirtyTracking(h, false);
    // errnos: unknown flags, not a HWPT_PAGING, a HWPT without dirty tracking
    await expectErrno('EOPNOTSUPP', self.fd.hwptSetDirtyTracking({ hwptId: h, flags: 2 }));
    await expectErrno('ENOENT', self.fd.hwptSetDirtyTracking({ hwptId: ioasId, flags: 1 }));
    await expectErrno('EOPNOTSUPP', setDirtyTracking(hwptId, true));
    await self.fd.destroy({ id: st.outStdevId });
    await self.fd.destroy({ id: h });
  });

  it('pasid_set_dirty_tracking (fork copy only, unverified upstream)', async () => {
    const pasid = 100;
    const h = (await self.fd.hwptAlloc({ devId: idevId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_PASID | IOMMU_HWPT_ALLOC_DIRTY_TRACKING })).outHwptId;
    const st = await self.mock.mockDomainFlags(h, MOCK_FLAGS_DEVICE_PASID);
    await self.mock.pasidAttach(st.outStdevId, pasid, h);
    await setDirtyTracking(h, true);
    await setDirtyTracking(h, false);
    await self.mock.pasidDetach(st.outStdevId, pasid);
    await self.fd.destroy({ id: st.outStdevId });
    // IOMMU device does not support dirty tracking
    const ioas2 = (await self.fd.ioasAlloc()).outIoasId;
    const nd = await self.mock.mockDomainFlags(ioas2, MOCK_FLAGS_DEVICE_PASID | MOCK_FLAGS_DEVICE_NO_DIRTY);
    await expectErrno('EINVAL', self.mock.pasidAttach(nd.outStdevId, pasid, h));
    await self.fd.destroy({ id: nd.outStdevId });
    await self.fd.destroy({ id: h });
  });

  it('device_dirty_capability', async () => {
    const h = (await self.fd.hwptAlloc({ devId: idevId, ptId: ioasId, flags: 0 })).outHwptId;
    const st = await self.mock.mockDomain(h);
    const caps = (await self.fd.getHwInfo({ devId: idevId })).outCapabilities;
    expect(caps & BigInt(IOMMU_HW_CAP_DIRTY_TRACKING)).toBe(BigInt(IOMMU_HW_CAP_DIRTY_TRACKING));
    await self.fd.destroy({ id: st.outStdevId });
    await self.fd.destroy({ id: h });
  });

  for (const [name, flags] of [
    ['get_dirty_bitmap', 0],
    ['get_dirty_bitmap_no_clear', IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR],
  ] as const) {
    it(name, async () => {
      const ptePageSize = variant.hugepages ? MOCK_HUGE_PAGE_SIZE : MOCK_PAGE_SIZE;
      await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: buffer, length: variant.bufferSize, iova: MOCK_APERTURE_START });
      const h = (await self.fd.hwptAlloc({ devId: idevId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING })).outHwptId;
      await setDirtyTracking(h, true);
      await testMockDirtyBitmaps(h, variant.bufferSize, MOCK_APERTURE_START, pageSize, ptePageSize, bitmap, bitmapSize, flags);
      // PAGE_SIZE unaligned bitmap
      await testMockDirtyBitmaps(h, variant.bufferSize, MOCK_APERTURE_START, pageSize, ptePageSize, bitmap + MOCK_PAGE_SIZE, bitmapSize, flags);
      // u64 unaligned bitmap
      await testMockDirtyBitmaps(h, variant.bufferSize, MOCK_APERTURE_START, pageSize, ptePageSize, bitmap + 0xff1, bitmapSize, flags);
      await self.fd.destroy({ id: h });
    });
  }

  it('get_dirty_bitmap: a device write DMA marks its IOPTE dirty; range errnos', async () => {
    const length = Math.min(variant.bufferSize, 64 * K);
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: buffer, length, iova: MOCK_APERTURE_START });
    const h = (await self.fd.hwptAlloc({ devId: idevId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING })).outHwptId;
    const plain = (await self.fd.hwptAlloc({ devId: idevId, ptId: ioasId, flags: 0 })).outHwptId;
    // reading without tracking: the mock refuses (EINVAL)
    await expectErrno('EINVAL', self.fd.hwptGetDirtyBitmap({ hwptId: h, iova: MOCK_APERTURE_START, length, pageSize }));
    await self.mock.mockDomainReplace(stdevId, h);
    await setDirtyTracking(h, true);
    const rid = self.mock.deviceOf(stdevId).dev.rid;
    expect((await dma(self, rid, MOCK_APERTURE_START + 3 * MOCK_PAGE_SIZE, ACCESS_WRITE)).ok).toBe(true);
    const { bitmap: bm } = await self.fd.hwptGetDirtyBitmap({ hwptId: h, iova: MOCK_APERTURE_START, length, pageSize });
    const set: number[] = [];
    for (let i = 0; i < length / pageSize; i++) if (bm[i >>> 3] & (1 << (i & 7))) set.push(i);
    const leaf = variant.hugepages && length >= MOCK_HUGE_PAGE_SIZE ? MOCK_HUGE_PAGE_SIZE / pageSize : 1;
    expect(set).toEqual(leaf === 1 ? [3] : Array.from({ length: leaf }, (_, i) => i));
    // range checks: overflow, alignment, page_size, flags, not a HWPT_PAGING, domain without dirty ops
    await expectErrno('EOVERFLOW', self.fd.hwptGetDirtyBitmap({ hwptId: h, iova: (1n << 64n) - 4096n, length: 8192, pageSize }));
    await expectErrno('EINVAL', self.fd.hwptGetDirtyBitmap({ hwptId: h, iova: MOCK_APERTURE_START + 1, length, pageSize }));
    await expectErrno('EINVAL', self.fd.hwptGetDirtyBitmap({ hwptId: h, iova: MOCK_APERTURE_START, length, pageSize: 0 }));
    await expectErrno('EINVAL', self.fd.hwptGetDirtyBitmap({ hwptId: h, iova: MOCK_APERTURE_START + PAGE_SIZE, length, pageSize: 2 * M }));
    await expectErrno('EOPNOTSUPP', self.fd.hwptGetDirtyBitmap({ hwptId: h, iova: MOCK_APERTURE_START, length, pageSize, flags: 2 }));
    await expectErrno('ENOENT', self.fd.hwptGetDirtyBitmap({ hwptId: ioasId, iova: MOCK_APERTURE_START, length, pageSize }));
    await expectErrno('EOPNOTSUPP', self.fd.hwptGetDirtyBitmap({ hwptId: plain, iova: MOCK_APERTURE_START, length, pageSize }));
    // DIRTY test op errnos
    await expectErrno('EINVAL', self.mock.dirty(h, { iova: MOCK_APERTURE_START, length, pageSize: 0, bitmap: bitmap }));
    await expectErrno('EINVAL', self.mock.dirty(h, { iova: MOCK_APERTURE_START, length, pageSize, bitmap: null }));
    await expectErrno('EINVAL', self.mock.dirty(plain, { iova: MOCK_APERTURE_START, length, pageSize, bitmap: bitmap }));
    await self.mock.mockDomainReplace(stdevId, ioasId);
    await self.fd.destroy({ id: h });
    await self.fd.destroy({ id: plain });
  });
});
