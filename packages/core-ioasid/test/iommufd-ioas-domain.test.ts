/**
 * FIXTURE iommufd_ioas (tools/testing/selftests/iommu/iommufd.c), variants with mock devices:
 * mock_domain (1 device + a PASID-capable device), two_mock_domain (2 devices, sharing one auto
 * HWPT), mock_domain_limit (1 device, temp memory limit 16). The no_domain variant is in
 * iommufd-ioas.test.ts; alloc_hwpt_nested is in hwpt-nested.test.ts. Tests needing ACCESS objects
 * (access_*, check_access_rw in fork_*) and dma-buf are not ported here: fork_* check the mapping
 * with MD_CHECK_MAP and DMA instead.
 */
import { ACCESS_READ } from '@iommulab/driver-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testAddReserved, testSetTempMemoryLimit } from '../src/selftest.js';
import { MOCK_FLAGS_DEVICE_PASID, MOCK_PASID_WIDTH } from '../src/selftest-mock.js';
import {
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HW_INFO_FLAG_INPUT_TYPE,
  IOMMU_HW_INFO_TYPE_DEFAULT,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
} from '../src/uapi/constants.js';
import { U64_MAX } from '../src/uapi/u64.js';
import { BUFFER_SIZE, expectErrno, FIXED, ioasMap, ioasMapFixed, ioasUnmap, MOCK_APERTURE_START, MOCK_PAGE_SIZE, PAGE_SIZE, RW } from './fixture.js';
import {
  dma,
  expectDmaFaults,
  IOMMU_HW_INFO_SELFTEST_REGVAL,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  MOCK_APERTURE_LAST,
  openMockSelf,
  teardownMock,
  type MockSelf,
} from './mock-fixture.js';

const P = PAGE_SIZE;

interface Variant {
  name: string;
  mockDomains: number;
  memoryLimit: number;
  pasidCapable: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'mock_domain', mockDomains: 1, memoryLimit: 0, pasidCapable: true },
  { name: 'two_mock_domain', mockDomains: 2, memoryLimit: 0, pasidCapable: false },
  { name: 'mock_domain_limit', mockDomains: 1, memoryLimit: 16, pasidCapable: false },
];

function lowBit(x: number): bigint {
  return BigInt(x & -x);
}

describe.each(VARIANTS)('FIXTURE iommufd_ioas ($name)', (variant) => {
  let self: MockSelf;
  let ioasId: number;
  let stdevId: number;
  let hwptId: number;
  let deviceId: number;
  let devicePasidId: number;
  let base: number;

  beforeEach(async () => {
    self = await openMockSelf();
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    await testSetTempMemoryLimit(self.fd.ctx, { limit: variant.memoryLimit || 65536 });
    for (let i = 0; i < variant.mockDomains; i++) {
      const r = await self.mock.mockDomain(ioasId);
      stdevId = r.outStdevId;
      hwptId = r.outHwptId;
      deviceId = r.outIdevId;
      base = MOCK_APERTURE_START;
    }
    devicePasidId = 0;
    if (variant.pasidCapable) devicePasidId = (await self.mock.mockDomainFlags(ioasId, MOCK_FLAGS_DEVICE_PASID)).outIdevId;
  });
  afterEach(async () => {
    await testSetTempMemoryLimit(self.fd.ctx, { limit: 65536 });
    await teardownMock(self);
  });

  it('ioas_auto_destroy', () => {});

  it('ioas_destroy', async () => {
    // IOAS cannot be freed while a device has a HWPT using it
    await expectErrno('EBUSY', self.fd.destroy({ id: ioasId }));
  });

  it('hwpt_attach', async () => {
    // Create a device attached directly to a hwpt
    const r = await self.mock.mockDomain(hwptId);
    expect(r.outHwptId).toBe(hwptId);
  });

  it('ioas_area_destroy', async () => {
    // Adding an area does not change ability to destroy
    await ioasMapFixed(self, ioasId, self.buffer, P, base);
    await expectErrno('EBUSY', self.fd.destroy({ id: ioasId }));
  });

  it('ioas_area_auto_destroy', async () => {
    for (let i = 0; i !== 10; i++) await ioasMapFixed(self, ioasId, self.buffer, P, base + i * P);
  });

  it('get_hw_info', async () => {
    // data_len 0, exact, a wrong type, the right type, larger (tail zeroed by the ABI), smaller
    const exact = await self.fd.getHwInfo({ devId: deviceId, dataLen: 0 });
    expect(exact.outDataType).toBe(IOMMU_HW_INFO_TYPE_SELFTEST);
    expect(exact.dataLen).toBe(8);
    const dv = new DataView(exact.data.buffer, exact.data.byteOffset, exact.data.byteLength);
    expect(dv.getUint32(0, true)).toBe(0); // flags
    expect(dv.getUint32(4, true)).toBe(IOMMU_HW_INFO_SELFTEST_REGVAL); // test_reg
    await self.fd.getHwInfo({ devId: deviceId, dataLen: 8, flags: IOMMU_HW_INFO_FLAG_INPUT_TYPE, inDataType: IOMMU_HW_INFO_TYPE_DEFAULT });
    await expectErrno(
      'EOPNOTSUPP',
      self.fd.getHwInfo({ devId: deviceId, dataLen: 8, flags: IOMMU_HW_INFO_FLAG_INPUT_TYPE, inDataType: IOMMU_HW_INFO_TYPE_SELFTEST + 1 }),
    );
    await self.fd.getHwInfo({ devId: deviceId, dataLen: 8, flags: IOMMU_HW_INFO_FLAG_INPUT_TYPE, inDataType: IOMMU_HW_INFO_TYPE_SELFTEST });
    await self.fd.getHwInfo({ devId: deviceId, dataLen: 16 });
    await self.fd.getHwInfo({ devId: deviceId, dataLen: 4 });
    // unknown flags
    await expectErrno('EOPNOTSUPP', self.fd.getHwInfo({ devId: deviceId, flags: 2 }));
    const caps = (await self.fd.getHwInfo({ devId: deviceId })).outCapabilities;
    expect(caps & BigInt(IOMMU_HW_CAP_DIRTY_TRACKING)).toBe(BigInt(IOMMU_HW_CAP_DIRTY_TRACKING));
    expect((await self.fd.getHwInfo({ devId: deviceId })).outMaxPasidLog2).toBe(0);
    if (variant.pasidCapable) expect((await self.fd.getHwInfo({ devId: devicePasidId })).outMaxPasidLog2).toBe(MOCK_PASID_WIDTH);
    // not a device
    await expectErrno('ENOENT', self.fd.getHwInfo({ devId: ioasId }));
  });

  it('area', async () => {
    for (let i = 0; i !== 10; i++) await expectErrno('ENOENT', ioasUnmap(self, ioasId, i * P, P));
    for (let i = 0; i !== 10; i++) await ioasMapFixed(self, ioasId, self.buffer, P, base + i * P);
    for (let i = 0; i !== 10; i++) await ioasUnmap(self, ioasId, base + i * P, P);
    // Split fails
    await ioasMapFixed(self, ioasId, self.buffer, P * 2, base + 16 * P);
    await expectErrno('ENOENT', ioasUnmap(self, ioasId, base + 16 * P, P));
    await expectErrno('ENOENT', ioasUnmap(self, ioasId, base + 17 * P, P));
    // Over map fails
    await expectErrno('EEXIST', ioasMapFixed(self, ioasId, self.buffer, P * 2, base + 16 * P));
    await expectErrno('EEXIST', ioasMapFixed(self, ioasId, self.buffer, P, base + 16 * P));
    await expectErrno('EEXIST', ioasMapFixed(self, ioasId, self.buffer, P, base + 17 * P));
    await expectErrno('EEXIST', ioasMapFixed(self, ioasId, self.buffer, P * 2, base + 15 * P));
    await expectErrno('EEXIST', ioasMapFixed(self, ioasId, self.buffer, P * 3, base + 15 * P));
    // unmap all works, also on an empty IOAS
    await ioasUnmap(self, ioasId, 0, U64_MAX);
    await ioasUnmap(self, ioasId, 0, U64_MAX);
    await expectDmaFaults(self, stdevId, base + 16 * P, 2 * P);
  });

  it('unmap_fully_contained_areas', async () => {
    base += 4 * P;
    for (let i = 0; i !== 4; i++) await ioasMapFixed(self, ioasId, self.buffer, 8 * P, base + i * 16 * P);
    await expectErrno('ENOENT', ioasUnmap(self, ioasId, base - 4 * P, 8 * P));
    await expectErrno('ENOENT', ioasUnmap(self, ioasId, base + 3 * 16 * P + 8 * P - 4 * P, 8 * P));
    expect(await ioasUnmap(self, ioasId, base - 4 * P, 3 * 16 * P + 8 * P + 4 * P)).toBe(BigInt(32 * P));
  });

  it('area_auto_iova', async () => {
    const iovas: bigint[] = [];
    for (let i = 0; i !== 10; i++) iovas[i] = await ioasMap(self, ioasId, self.buffer, P);
    for (let i = 0; i !== 10; i++) await ioasUnmap(self, ioasId, iovas[i], P);
    // Kernel automatically aligns IOVAs properly
    for (let i = 0; i !== 10; i++) {
      const length = P * (i + 1);
      iovas[i] = await ioasMap(self, ioasId, self.buffer, length);
      expect(iovas[i] % lowBit(length)).toBe(0n);
    }
    for (let i = 0; i !== 10; i++) await ioasUnmap(self, ioasId, iovas[i], P * (i + 1));
    // Avoids a reserved region
    const rs = BigInt(P * 4);
    const rl = BigInt(P * 100);
    await testAddReserved(self.fd.ctx, { ioasId, start: rs, length: rl });
    for (let i = 0; i !== 10; i++) {
      const length = P * (i + 1);
      iovas[i] = await ioasMap(self, ioasId, self.buffer, length);
      expect(iovas[i] % lowBit(length)).toBe(0n);
      expect(iovas[i] > rs && iovas[i] < rs + rl).toBe(false);
    }
    for (let i = 0; i !== 10; i++) await ioasUnmap(self, ioasId, iovas[i], P * (i + 1));
    // Allowed region intersects with a reserved region
    await expectErrno('EADDRINUSE', self.fd.ioasAllowIovas({ ioasId, allowedIovas: [{ start: P, last: P * 600 }] }));
    // Allocate from an allowed region
    const start = BigInt(MOCK_APERTURE_START + P);
    const last = BigInt(MOCK_APERTURE_START + P * 600 - 1);
    await self.fd.ioasAllowIovas({ ioasId, allowedIovas: [{ start, last }] });
    for (let i = 0; i !== 10; i++) {
      const length = P * (i + 1);
      iovas[i] = await ioasMap(self, ioasId, self.buffer, length);
      expect(iovas[i] % lowBit(length)).toBe(0n);
      expect(iovas[i] >= start && iovas[i] <= last).toBe(true);
      expect(iovas[i] + BigInt(length) > start && iovas[i] + BigInt(length) <= last + 1n).toBe(true);
    }
    for (let i = 0; i !== 10; i++) await ioasUnmap(self, ioasId, iovas[i], P * (i + 1));
  });

  it('reserved_overflow', async () => {
    await testAddReserved(self.fd.ctx, { ioasId, start: 6, length: 0xffff_ffff_ffff_8001n });
    await expectErrno('ENOSPC', self.fd.ioasMap({ flags: RW, ioasId, userVa: self.buffer, length: 0x5000 }));
  });

  it('area_allowed', async () => {
    // Reserved intersects an allowed
    await self.fd.ioasAllowIovas({ ioasId, allowedIovas: [{ start: base, last: base + P * 600 }] });
    await expectErrno('EADDRINUSE', testAddReserved(self.fd.ctx, { ioasId, start: base + P, length: P }));
    await self.fd.ioasAllowIovas({ ioasId, allowedIovas: [] });
    // Allowed intersects a reserved
    await testAddReserved(self.fd.ctx, { ioasId, start: base + P, length: P });
    await expectErrno('EADDRINUSE', self.fd.ioasAllowIovas({ ioasId, allowedIovas: [{ start: base, last: base + P * 600 }] }));
  });

  it('copy_area', async () => {
    await ioasMapFixed(self, ioasId, self.buffer, P, base);
    const flags = FIXED | IOMMU_IOAS_MAP_WRITEABLE;
    // Copy inside a single IOAS
    await self.fd.ioasCopy({ flags, dstIoasId: ioasId, srcIoasId: ioasId, length: P, srcIova: base, dstIova: base + P });
    await self.mock.mdCheckMap(hwptId, base + P, P, self.buffer);
    // Copy between IOAS's
    const dst = (await self.fd.ioasAlloc()).outIoasId;
    await self.fd.ioasCopy({ flags, dstIoasId: dst, srcIoasId: ioasId, length: P, srcIova: base, dstIova: 0 });
  });

  it('iova_ranges', async () => {
    let r = await self.fd.ioasIovaRanges({ ioasId, numIovas: BUFFER_SIZE / 16 });
    expect(r.numIovas).toBe(1);
    expect(r.allowedIovas[0]).toEqual({ start: BigInt(MOCK_APERTURE_START), last: BigInt(MOCK_APERTURE_LAST) });
    expect(r.outIovaAlignment).toBe(BigInt(MOCK_PAGE_SIZE));
    // Buffer too small
    await expect(self.fd.ioasIovaRanges({ ioasId, numIovas: 0 })).rejects.toMatchObject({ errno: 'EMSGSIZE', out: { numIovas: 1 } });
    // 2 ranges? with a domain the reservation is outside the aperture: still 1
    await testAddReserved(self.fd.ctx, { ioasId, start: P, length: P });
    r = await self.fd.ioasIovaRanges({ ioasId, numIovas: BUFFER_SIZE / 16 });
    expect(r.numIovas).toBe(1);
    expect(r.allowedIovas[0]).toEqual({ start: BigInt(MOCK_APERTURE_START), last: BigInt(MOCK_APERTURE_LAST) });
    r = await self.fd.ioasIovaRanges({ ioasId, numIovas: 1 });
    expect(r.numIovas).toBe(1);
  });

  it('fork_gone', async () => {
    // Create a mapping with a different mm: with a domain it is pinned at map time
    const child = self.proc.fork();
    self.fd.setCurrentProcess(child);
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer, length: BUFFER_SIZE, iova: MOCK_APERTURE_START });
    self.fd.setCurrentProcess(self.proc);
    const childPa = child.translate(self.buffer);
    child.exit();
    // If a domain already existed then everything was pinned within the fork, so this copies
    // from one domain to another.
    const r = await self.mock.mockDomain(ioasId);
    const rid = self.mock.deviceOf(r.outStdevId).dev.rid;
    const t = await dma(self, rid, MOCK_APERTURE_START, ACCESS_READ);
    expect(t.ok).toBe(true);
    expect(t.pa).toBe(childPa);
  });

  it('fork_present', async () => {
    const child = self.proc.fork();
    self.fd.setCurrentProcess(child);
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer, length: BUFFER_SIZE, iova: MOCK_APERTURE_START });
    // Read pages from the remote process: a new domain maps the child's pages
    const r = await self.mock.mockDomain(ioasId);
    await self.mock.mdCheckMap(r.outHwptId, MOCK_APERTURE_START, BUFFER_SIZE, self.buffer);
    self.fd.setCurrentProcess(self.proc);
    child.exit();
  });

  it('ioas_option_huge_pages', async () => {
    const opt = { optionId: IOMMU_OPTION_HUGE_PAGES, objectId: ioasId };
    expect((await self.fd.option({ ...opt, op: IOMMU_OPTION_OP_GET, val64: 3 })).val64).toBe(1n);
    await self.fd.option({ ...opt, op: IOMMU_OPTION_OP_SET, val64: 0 });
    expect((await self.fd.option({ ...opt, op: IOMMU_OPTION_OP_GET, val64: 3 })).val64).toBe(0n);
    await expectErrno('EINVAL', self.fd.option({ ...opt, op: IOMMU_OPTION_OP_SET, val64: 2 }));
    await self.fd.option({ ...opt, op: IOMMU_OPTION_OP_SET, val64: 1 });
  });

  it('ioas_iova_alloc', async () => {
    for (let length = 1; length !== P * 2; length++) {
      if (length % MOCK_PAGE_SIZE) {
        await expectErrno('EINVAL', self.fd.ioasMap({ flags: RW, ioasId, userVa: self.buffer, length }));
      } else {
        const iova = await ioasMap(self, ioasId, self.buffer, length);
        await ioasUnmap(self, ioasId, iova, length);
      }
    }
  });

  it('ioas_align_change', () => {
    // We cannot upgrade the alignment using OPTION_HUGE_PAGES when a domain and map are present.
  });

  it('copy_sweep', async () => {
    const dst = (await self.fd.ioasAlloc()).outIoasId;
    const lastIova = MOCK_APERTURE_START + BUFFER_SIZE - 1;
    await ioasMapFixed(self, ioasId, self.buffer, lastIova - MOCK_APERTURE_START + 1, MOCK_APERTURE_START);
    for (let iova = MOCK_APERTURE_START - P; iova <= lastIova; iova += 511) {
      const p = self.fd.ioasCopy({
        flags: FIXED | IOMMU_IOAS_MAP_WRITEABLE,
        dstIoasId: dst,
        srcIoasId: ioasId,
        length: MOCK_PAGE_SIZE,
        srcIova: iova,
        dstIova: MOCK_APERTURE_START,
      });
      if (iova < MOCK_APERTURE_START || iova + MOCK_PAGE_SIZE - 1 > lastIova) {
        await expectErrno('ENOENT', p);
      } else {
        await p;
        await ioasUnmap(self, dst, MOCK_APERTURE_START, MOCK_PAGE_SIZE);
      }
    }
    await self.fd.destroy({ id: dst });
  });
});
