/**
 * FIXTURE iommufd_mock_domain (tools/testing/selftests/iommu/iommufd.c) with its six variants,
 * over hw-mock devices: MD_CHECK_MAP compares the domain with the process's memory and also DMAs
 * through the device port; unmaps are followed by DMA that must fault (IOTLB invalidated).
 */
import { ACCESS_READ, ACCESS_WRITE } from '@iommulab/driver-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testMdCheckRefs } from '../src/selftest.js';
import { IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE } from '../src/uapi/constants.js';
import { Memfd } from '../src/user-memory/memfd.js';
import { BUFFER_SIZE, expectErrno, HUGEPAGE_SIZE, MOCK_APERTURE_START, MOCK_PAGE_SIZE, PAGE_SIZE, RW } from './fixture.js';
import { dma, expectDmaFaults, newMemfd, openMockSelf, populate, teardownMock, type MockSelf } from './mock-fixture.js';

interface Variant {
  name: string;
  mockDomains: number;
  hugepages: boolean;
  file: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'one_domain', mockDomains: 1, hugepages: false, file: false },
  { name: 'two_domains', mockDomains: 2, hugepages: false, file: false },
  { name: 'one_domain_hugepage', mockDomains: 1, hugepages: true, file: false },
  { name: 'two_domains_hugepage', mockDomains: 2, hugepages: true, file: false },
  { name: 'one_domain_file', mockDomains: 1, hugepages: false, file: true },
  { name: 'one_domain_file_hugepage', mockDomains: 1, hugepages: true, file: true },
];

describe.each(VARIANTS)('FIXTURE iommufd_mock_domain ($name)', (variant) => {
  let self: MockSelf;
  let ioasId: number;
  let hwptId: number;
  const hwptIds: number[] = [0, 0];
  const stdevIds: number[] = [0, 0];
  const idevIds: number[] = [0, 0];
  let mmapBufSize: number;
  /** The global memfd and its shared mapping (mfd / mfd_buffer). */
  let mfd: Memfd;
  let mfdBuffer: number;

  beforeEach(async () => {
    self = await openMockSelf();
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    hwptIds[0] = hwptIds[1] = stdevIds[0] = stdevIds[1] = idevIds[0] = idevIds[1] = 0;
    for (let i = 0; i < variant.mockDomains; i++) {
      const r = await self.mock.mockDomain(ioasId);
      stdevIds[i] = r.outStdevId;
      hwptIds[i] = r.outHwptId;
      idevIds[i] = r.outIdevId;
    }
    hwptId = hwptIds[0];
    mmapBufSize = variant.hugepages ? HUGEPAGE_SIZE * 2 : PAGE_SIZE * 8;
    mfd = newMemfd(self, BUFFER_SIZE);
    mfdBuffer = self.proc.mmap({ length: BUFFER_SIZE, shared: true, file: mfd });
    self.proc.write(mfdBuffer, new Uint8Array(BUFFER_SIZE).fill(0x5a));
  });
  afterEach(async () => {
    await teardownMock(self);
  });

  /** mmap(0, size, RW, self->mmap_flags): MAP_SHARED | MAP_ANONYMOUS (+ MAP_HUGETLB | MAP_POPULATE). */
  function mmapBuf(size: number): number {
    if (!variant.hugepages) return self.proc.mmap({ length: size, shared: true });
    const b = self.proc.mmap({ length: size, shared: true, hugeAlign: HUGEPAGE_SIZE });
    populate(self, b, size);
    return b;
  }

  /** check_mock_iova: MD_CHECK_MAP on hwpt_ids[0] and, when present, hwpt_ids[1]. */
  async function checkMockIova(ptr: number, iova: bigint | number, length: number): Promise<void> {
    await self.mock.mdCheckMap(hwptId, iova, length, ptr);
    if (hwptIds[1]) await self.mock.mdCheckMap(hwptIds[1], iova, length, ptr);
  }

  function checkRefs(ptr: number, length: number, refs: number): void {
    testMdCheckRefs(self.proc, { uptr: ptr, length, refs });
  }

  it('basic', async () => {
    if (variant.file) {
      // test_basic_file
      const iova = (await self.fd.ioasMapFile({ flags: RW, ioasId, fd: mfd, start: 0, length: PAGE_SIZE })).iova;
      await checkMockIova(mfdBuffer, iova, PAGE_SIZE);
      const tmp = newMemfd(self, mmapBufSize);
      self.proc.mmap({ length: mmapBufSize, shared: true, file: tmp });
      await expectErrno('EINVAL', self.fd.ioasMapFile({ flags: RW, ioasId, fd: tmp, start: 0, length: mmapBufSize + 1 }));
      tmp.truncate(0);
      await expectErrno('EINVAL', self.fd.ioasMapFile({ flags: RW, ioasId, fd: tmp, start: 0, length: mmapBufSize }));
      return;
    }
    // test_basic_mmap: simple one page map
    const iova = (await self.fd.ioasMap({ flags: RW, ioasId, userVa: self.buffer, length: PAGE_SIZE })).iova;
    await checkMockIova(self.buffer, iova, PAGE_SIZE);
    const buf = mmapBuf(mmapBufSize);
    // EFAULT half way through mapping
    self.proc.munmap(buf + mmapBufSize / 2, mmapBufSize / 2);
    await expectErrno('EFAULT', self.fd.ioasMap({ flags: RW, ioasId, userVa: buf, length: mmapBufSize }));
    // EFAULT on first page
    self.proc.munmap(buf, mmapBufSize / 2);
    await expectErrno('EFAULT', self.fd.ioasMap({ flags: RW, ioasId, userVa: buf, length: mmapBufSize }));
  });

  it('ro_unshare', async () => {
    // A private mapping of a file (here a memfd standing in for /proc/self/exe), mapped READABLE only.
    const exe = newMemfd(self, PAGE_SIZE);
    exe.write(0, new Uint8Array(PAGE_SIZE).fill(7));
    const buf = self.proc.mmap({ length: PAGE_SIZE, file: exe, shared: false });
    const iova = (await self.fd.ioasMap({ flags: IOMMU_IOAS_MAP_READABLE, ioasId, userVa: buf, length: PAGE_SIZE })).iova;
    const before = self.proc.translate(buf);
    await checkMockIova(buf, iova, PAGE_SIZE);
    // writing the page later must not change the PFN the IOMMU maps
    self.proc.write(buf, new Uint8Array(PAGE_SIZE).fill(1));
    expect(self.proc.translate(buf)).toBe(before);
    await checkMockIova(buf, iova, PAGE_SIZE);
    // and the device reads what the CPU wrote
    const r = await dma(self, self.mock.deviceOf(stdevIds[0]).dev.rid, iova, ACCESS_READ);
    expect(r.ok).toBe(true);
    expect(self.mem.u8[r.pa]).toBe(1);
    // the mapping is read-only for the device
    expect((await dma(self, self.mock.deviceOf(stdevIds[0]).dev.rid, iova, ACCESS_WRITE)).ok).toBe(false);
    self.proc.munmap(buf, PAGE_SIZE);
  });

  it('all_aligns', async () => {
    const testStep = variant.hugepages ? mmapBufSize / 16 : MOCK_PAGE_SIZE;
    const bufSize = mmapBufSize;
    let buf: number;
    let file: Memfd | null = null;
    if (variant.file) {
      file = newMemfd(self, bufSize);
      buf = self.proc.mmap({ length: bufSize, shared: true, file });
    } else {
      buf = mmapBuf(bufSize);
    }
    checkRefs(buf, bufSize, 0);
    // Map every combination of page size and alignment within a big region
    for (let start = 0; start < bufSize; start += testStep) {
      let end = variant.hugepages ? bufSize : start + MOCK_PAGE_SIZE;
      for (; end < bufSize; end += MOCK_PAGE_SIZE) {
        const length = end - start;
        const iova = file
          ? (await self.fd.ioasMapFile({ flags: RW, ioasId, fd: file, start, length })).iova
          : (await self.fd.ioasMap({ flags: RW, ioasId, userVa: buf + start, length })).iova;
        await checkMockIova(buf + start, iova, length);
        checkRefs(buf + Math.floor(start / PAGE_SIZE) * PAGE_SIZE, Math.floor(end / PAGE_SIZE) * PAGE_SIZE - Math.floor(start / PAGE_SIZE) * PAGE_SIZE, 1);
        await self.fd.ioasUnmap({ ioasId, iova, length });
        await expectDmaFaults(self, stdevIds[0], iova, length);
      }
    }
    checkRefs(buf, bufSize, 0);
    self.proc.munmap(buf, bufSize);
  });

  it('all_aligns_copy', async () => {
    const testStep = variant.hugepages ? mmapBufSize / 16 : MOCK_PAGE_SIZE;
    const bufSize = mmapBufSize;
    let buf: number;
    let file: Memfd | null = null;
    if (variant.file) {
      file = newMemfd(self, bufSize);
      buf = self.proc.mmap({ length: bufSize, shared: true, file });
    } else {
      buf = mmapBuf(bufSize);
    }
    checkRefs(buf, bufSize, 0);
    for (let start = 0; start < bufSize; start += testStep) {
      let end = variant.hugepages ? bufSize : start + MOCK_PAGE_SIZE;
      for (; end < bufSize; end += MOCK_PAGE_SIZE) {
        const length = end - start;
        const iova = file
          ? (await self.fd.ioasMapFile({ flags: RW, ioasId, fd: file, start, length })).iova
          : (await self.fd.ioasMap({ flags: RW, ioasId, userVa: buf + start, length })).iova;
        // Add and destroy a domain while the area exists
        const oldId = hwptIds[1];
        const r = await self.mock.mockDomain(ioasId);
        hwptIds[1] = r.outHwptId;
        await checkMockIova(buf + start, iova, length);
        checkRefs(buf + Math.floor(start / PAGE_SIZE) * PAGE_SIZE, Math.floor(end / PAGE_SIZE) * PAGE_SIZE - Math.floor(start / PAGE_SIZE) * PAGE_SIZE, 1);
        await self.fd.destroy({ id: r.outStdevId });
        hwptIds[1] = oldId;
        await self.fd.ioasUnmap({ ioasId, iova, length });
      }
    }
    checkRefs(buf, bufSize, 0);
    self.proc.munmap(buf, bufSize);
  });

  it('replace', async () => {
    const newIoas = (await self.fd.ioasAlloc()).outIoasId;
    await self.mock.mockDomainReplace(stdevIds[0], newIoas);
    // Replacing the IOAS causes the prior HWPT to be deallocated, thus ENOENT when we try to use it.
    if (variant.mockDomains === 1) await expectErrno('ENOENT', self.mock.mockDomainReplace(stdevIds[0], hwptIds[0]));
    await self.mock.mockDomainReplace(stdevIds[0], newIoas);
    if (variant.mockDomains >= 2) {
      // both devices were auto-attached to the same auto HWPT
      expect(hwptIds[0]).toBe(hwptIds[1]);
      await self.mock.mockDomainReplace(stdevIds[0], hwptIds[1]);
      await self.mock.mockDomainReplace(stdevIds[0], hwptIds[1]);
      await self.mock.mockDomainReplace(stdevIds[0], hwptIds[0]);
    }
    await self.mock.mockDomainReplace(stdevIds[0], ioasId);
    await self.fd.destroy({ id: newIoas });
  });

  it('replace moves DMA to the new IOAS', async () => {
    const newIoas = (await self.fd.ioasAlloc()).outIoasId;
    const rid = self.mock.deviceOf(stdevIds[0]).dev.rid;
    await self.fd.ioasMap({ flags: RW | IOMMU_IOAS_MAP_FIXED_IOVA, ioasId, userVa: self.buffer, length: PAGE_SIZE, iova: MOCK_APERTURE_START });
    await self.fd.ioasMap({ flags: RW | IOMMU_IOAS_MAP_FIXED_IOVA, ioasId: newIoas, userVa: self.buffer + PAGE_SIZE, length: PAGE_SIZE, iova: MOCK_APERTURE_START });
    expect((await dma(self, rid, MOCK_APERTURE_START)).pa).toBe(self.proc.translate(self.buffer));
    await self.mock.mockDomainReplace(stdevIds[0], newIoas);
    expect((await dma(self, rid, MOCK_APERTURE_START)).pa).toBe(self.proc.translate(self.buffer + PAGE_SIZE));
    await self.mock.mockDomainReplace(stdevIds[0], ioasId);
    expect((await dma(self, rid, MOCK_APERTURE_START)).pa).toBe(self.proc.translate(self.buffer));
    await self.fd.destroy({ id: newIoas });
  });

  it('alloc_hwpt', async () => {
    for (let i = 0; i < variant.mockDomains; i++) {
      await expectErrno('EOPNOTSUPP', self.fd.hwptAlloc({ devId: idevIds[i], ptId: ioasId, flags: ~IOMMU_HWPT_ALLOC_NEST_PARENT >>> 0 }));
      const h0 = (await self.fd.hwptAlloc({ devId: idevIds[i], ptId: ioasId, flags: 0 })).outHwptId;
      const h1 = (await self.fd.hwptAlloc({ devId: idevIds[i], ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).outHwptId;
      // Do a hw_pagetable rotation test
      await self.mock.mockDomainReplace(stdevIds[i], h0);
      await expectErrno('EBUSY', self.fd.destroy({ id: h0 }));
      await self.mock.mockDomainReplace(stdevIds[i], h1);
      await expectErrno('EBUSY', self.fd.destroy({ id: h1 }));
      await self.mock.mockDomainReplace(stdevIds[i], ioasId);
      await self.fd.destroy({ id: h1 });
      const st = await self.mock.mockDomain(h0);
      expect(st.outHwptId).toBe(h0);
      await self.fd.destroy({ id: st.outStdevId });
      await self.fd.destroy({ id: h0 });
    }
  });

  it('every map reaches the hardware and every unmap invalidates its IOTLB', async () => {
    const rid = self.mock.deviceOf(stdevIds[0]).dev.rid;
    const iova = MOCK_APERTURE_START + 16 * PAGE_SIZE;
    await self.fd.ioasMap({ flags: RW | IOMMU_IOAS_MAP_FIXED_IOVA, ioasId, userVa: self.buffer, length: BUFFER_SIZE, iova });
    // warm the IOTLB, then unmap: a DMA after the unmap must fault
    for (let off = 0; off < BUFFER_SIZE; off += MOCK_PAGE_SIZE) {
      const r = await dma(self, rid, iova + off, ACCESS_WRITE);
      expect(r.ok).toBe(true);
      expect(r.pa).toBe(self.proc.translate(self.buffer + off));
    }
    await self.fd.ioasUnmap({ ioasId, iova, length: BUFFER_SIZE });
    await expectDmaFaults(self, stdevIds[0], iova, BUFFER_SIZE);
    // the write-only mapping: read faults, write works
    await self.fd.ioasMap({ flags: IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_FIXED_IOVA, ioasId, userVa: self.buffer, length: PAGE_SIZE, iova });
    expect((await dma(self, rid, iova, ACCESS_READ)).ok).toBe(false);
    expect((await dma(self, rid, iova, ACCESS_WRITE)).ok).toBe(true);
    await self.fd.ioasUnmap({ ioasId, iova: 0, length: (1n << 64n) - 1n });
    expect((await dma(self, rid, iova, ACCESS_WRITE)).ok).toBe(false);
  });
});
