/** FIXTURE iommufd_ioas, variant no_domain (tools/testing/selftests/iommu/iommufd.c). */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testAddReserved, testSetTempMemoryLimit } from '../src/selftest.js';
import { IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, IOMMU_OPTION_OP_SET } from '../src/uapi/constants.js';
import { U64_MAX } from '../src/uapi/u64.js';
import {
  BUFFER_SIZE,
  expectErrno,
  FIXED,
  ioasMap,
  ioasMapFixed,
  ioasUnmap,
  MOCK_APERTURE_START,
  MOCK_PAGE_SIZE,
  openSelf,
  PAGE_SIZE,
  teardown,
  type Self,
} from './fixture.js';
import { IOMMU_IOAS_MAP_WRITEABLE } from '../src/uapi/constants.js';

const P = PAGE_SIZE;
const Pn = BigInt(P);
const SIZE_MAX = U64_MAX;

/** 1 << (ffs(x) - 1). */
function lowBit(x: number): bigint {
  return BigInt(x & -x);
}

describe('FIXTURE iommufd_ioas (no_domain)', () => {
  let self: Self;
  let ioasId: number;
  /** base_iova: 0 without a domain. */
  let base: number;

  beforeEach(async () => {
    self = openSelf();
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    await testSetTempMemoryLimit(self.fd.ctx, { limit: 65536 });
    base = 0;
  });
  afterEach(async () => {
    await teardown(self);
  });

  it('ioas_auto_destroy', () => {});

  it('ioas_destroy', async () => {
    // Can allocate and manually free an IOAS table
    await self.fd.destroy({ id: ioasId });
    await expectErrno('ENOENT', self.fd.destroy({ id: ioasId }));
  });

  it('ioas_area_destroy', async () => {
    // Adding an area does not change ability to destroy
    await ioasMapFixed(self, ioasId, self.buffer, P, base);
    await self.fd.destroy({ id: ioasId });
  });

  it('ioas_area_auto_destroy', async () => {
    // Can allocate and automatically free an IOAS table with many areas
    for (let i = 0; i !== 10; i++) await ioasMapFixed(self, ioasId, self.buffer, P, base + i * P);
  });

  it('area', async () => {
    // Unmap fails if nothing is mapped
    for (let i = 0; i !== 10; i++) await expectErrno('ENOENT', ioasUnmap(self, ioasId, i * P, P));
    // Unmap works
    for (let i = 0; i !== 10; i++) await ioasMapFixed(self, ioasId, self.buffer, P, base + i * P);
    for (let i = 0; i !== 10; i++) expect(await ioasUnmap(self, ioasId, base + i * P, P)).toBe(Pn);
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
    // unmap all works
    expect(await ioasUnmap(self, ioasId, 0, U64_MAX)).toBe(2n * Pn);
    // Unmap all succeeds on an empty IOAS
    expect(await ioasUnmap(self, ioasId, 0, U64_MAX)).toBe(0n);
  });

  it('unmap_fully_contained_areas', async () => {
    // Give no_domain some space to rewind base_iova
    base += 4 * P;
    for (let i = 0; i !== 4; i++) await ioasMapFixed(self, ioasId, self.buffer, 8 * P, base + i * 16 * P);
    // Unmap not fully contained area doesn't work
    await expectErrno('ENOENT', ioasUnmap(self, ioasId, base - 4 * P, 8 * P));
    await expectErrno('ENOENT', ioasUnmap(self, ioasId, base + 3 * 16 * P + 8 * P - 4 * P, 8 * P));
    // Unmap fully contained areas works
    expect(await ioasUnmap(self, ioasId, base - 4 * P, 3 * 16 * P + 8 * P + 4 * P)).toBe(32n * Pn);
  });

  it('area_auto_iova', async () => {
    const reserved = { start: P * 4, length: P * 100 };
    const iovas: bigint[] = [];
    // Simple 4k pages
    for (let i = 0; i !== 10; i++) iovas[i] = await ioasMap(self, ioasId, self.buffer, P);
    for (let i = 0; i !== 10; i++) await ioasUnmap(self, ioasId, iovas[i], P);

    // Kernel automatically aligns IOVAs properly (no_domain maps 1 << 31, which is not even mapped)
    for (let i = 0; i !== 10; i++) {
      const length = P * (i + 1);
      iovas[i] = await ioasMap(self, ioasId, 2 ** 31, length);
      expect(iovas[i] % lowBit(length)).toBe(0n);
    }
    for (let i = 0; i !== 10; i++) await ioasUnmap(self, ioasId, iovas[i], P * (i + 1));

    // Avoids a reserved region
    await testAddReserved(self.fd.ctx, { ioasId, ...reserved });
    for (let i = 0; i !== 10; i++) {
      const length = P * (i + 1);
      iovas[i] = await ioasMap(self, ioasId, self.buffer, length);
      expect(iovas[i] % lowBit(length)).toBe(0n);
      expect(iovas[i] > BigInt(reserved.start) && iovas[i] < BigInt(reserved.start + reserved.length)).toBe(false);
    }
    for (let i = 0; i !== 10; i++) await ioasUnmap(self, ioasId, iovas[i], P * (i + 1));

    // Allowed region intersects with a reserved region
    await expectErrno('EADDRINUSE', self.fd.ioasAllowIovas({ ioasId, allowedIovas: [{ start: P, last: P * 600 }] }));

    // Allocate from an allowed region
    const range = { start: BigInt(P * 200), last: BigInt(P * 600 - 1) };
    await self.fd.ioasAllowIovas({ ioasId, allowedIovas: [range] });
    for (let i = 0; i !== 10; i++) {
      const length = P * (i + 1);
      iovas[i] = await ioasMap(self, ioasId, self.buffer, length);
      const L = BigInt(length);
      expect(iovas[i] % lowBit(length)).toBe(0n);
      expect(iovas[i] >= range.start).toBe(true);
      expect(iovas[i] <= range.last).toBe(true);
      expect(iovas[i] + L > range.start).toBe(true);
      expect(iovas[i] + L <= range.last + 1n).toBe(true);
    }
    for (let i = 0; i !== 10; i++) await ioasUnmap(self, ioasId, iovas[i], P * (i + 1));
  });

  it('reserved_overflow', async () => {
    // https://lore.kernel.org/r/685af644.a00a0220.2e5631.0094.GAE@google.com
    await testAddReserved(self.fd.ctx, { ioasId, start: 6, length: 0xffff_ffff_ffff_8001n });
    await expectErrno('ENOSPC', ioasMap(self, ioasId, self.buffer, 0x5000));
  });

  it('area_allowed', async () => {
    // Reserved intersects an allowed
    const r0 = { start: BigInt(base), last: BigInt(base + P * 600) };
    await self.fd.ioasAllowIovas({ ioasId, allowedIovas: [r0] });
    const reserved = { ioasId, start: r0.start + Pn, length: P };
    await expectErrno('EADDRINUSE', testAddReserved(self.fd.ctx, reserved));
    await self.fd.ioasAllowIovas({ ioasId, allowedIovas: [] });
    // Allowed intersects a reserved
    await testAddReserved(self.fd.ctx, reserved);
    await expectErrno('EADDRINUSE', self.fd.ioasAllowIovas({ ioasId, allowedIovas: [r0] }));
  });

  it('copy_area', async () => {
    const flags = FIXED | IOMMU_IOAS_MAP_WRITEABLE;
    await ioasMapFixed(self, ioasId, self.buffer, P, base);
    // Copy inside a single IOAS
    await self.fd.ioasCopy({ flags, dstIoasId: ioasId, srcIoasId: ioasId, length: P, srcIova: base, dstIova: base + P });
    // Copy between IOAS's
    const dst = (await self.fd.ioasAlloc()).outIoasId;
    await self.fd.ioasCopy({ flags, dstIoasId: dst, srcIoasId: ioasId, length: P, srcIova: base, dstIova: 0 });
  });

  it('iova_ranges', async () => {
    // Range can be read
    let r = await self.fd.ioasIovaRanges({ ioasId, numIovas: BUFFER_SIZE / 16 });
    expect(r.numIovas).toBe(1);
    expect(r.allowedIovas[0]).toEqual({ start: 0n, last: SIZE_MAX });
    expect(r.outIovaAlignment).toBe(1n);

    // Buffer too small
    const e1 = await self.fd.ioasIovaRanges({ ioasId, numIovas: 0 }).catch((e: unknown) => e);
    expect(e1).toMatchObject({ errno: 'EMSGSIZE', out: { numIovas: 1, outIovaAlignment: 1n } });
    expect((e1 as { out: { allowedIovas: unknown[] } }).out.allowedIovas).toEqual([]);

    // 2 ranges
    await testAddReserved(self.fd.ctx, { ioasId, start: P, length: P });
    r = await self.fd.ioasIovaRanges({ ioasId, numIovas: BUFFER_SIZE / 16 });
    expect(r.numIovas).toBe(2);
    expect(r.allowedIovas).toEqual([
      { start: 0n, last: Pn - 1n },
      { start: Pn * 2n, last: SIZE_MAX },
    ]);

    // Buffer too small
    const e2 = await self.fd.ioasIovaRanges({ ioasId, numIovas: 1 }).catch((e: unknown) => e);
    expect(e2).toMatchObject({ errno: 'EMSGSIZE', out: { numIovas: 2 } });
    expect((e2 as { out: { allowedIovas: unknown[] } }).out.allowedIovas).toEqual([{ start: 0n, last: Pn - 1n }]);
  });

  it('ioas_option_huge_pages', async () => {
    const o = { optionId: IOMMU_OPTION_HUGE_PAGES, objectId: ioasId };
    expect((await self.fd.option({ ...o, op: IOMMU_OPTION_OP_GET, val64: 3 })).val64).toBe(1n);
    await self.fd.option({ ...o, op: IOMMU_OPTION_OP_SET, val64: 0 });
    expect((await self.fd.option({ ...o, op: IOMMU_OPTION_OP_GET, val64: 3 })).val64).toBe(0n);
    await expectErrno('EINVAL', self.fd.option({ ...o, op: IOMMU_OPTION_OP_SET, val64: 2 }));
    await self.fd.option({ ...o, op: IOMMU_OPTION_OP_SET, val64: 1 });
  });

  it('ioas_iova_alloc', async () => {
    // Without a domain every length is fine
    for (let length = 1; length !== P * 2; length++) {
      const iova = await ioasMap(self, ioasId, self.buffer, length);
      await ioasUnmap(self, ioasId, iova, length);
    }
  });

  it('ioas_align_change', async () => {
    const set = (val64: number) =>
      self.fd.option({ optionId: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_SET, objectId: ioasId, val64 });
    // We can upgrade to PAGE_SIZE alignment when things are aligned right
    await ioasMapFixed(self, ioasId, self.buffer, P, MOCK_APERTURE_START);
    await set(0);
    // Misalignment is rejected at map time
    await expectErrno('EINVAL', ioasMapFixed(self, ioasId, self.buffer + MOCK_PAGE_SIZE, P, MOCK_APERTURE_START + P));
    await set(0);
    // Reduce alignment
    await set(1);
    // Confirm misalignment is rejected during alignment upgrade
    await ioasMapFixed(self, ioasId, self.buffer + MOCK_PAGE_SIZE, P, MOCK_APERTURE_START + P);
    await expectErrno('EADDRINUSE', set(0));
    await ioasUnmap(self, ioasId, MOCK_APERTURE_START + P, P);
    await ioasUnmap(self, ioasId, MOCK_APERTURE_START, P);
  });

  it('copy_sweep', async () => {
    const flags = FIXED | IOMMU_IOAS_MAP_WRITEABLE;
    const dstIoasId = (await self.fd.ioasAlloc()).outIoasId;
    const lastIova = MOCK_APERTURE_START + BUFFER_SIZE - 2;
    await ioasMapFixed(self, ioasId, self.buffer, lastIova - MOCK_APERTURE_START + 1, MOCK_APERTURE_START);
    let ok = 0;
    for (let iova = MOCK_APERTURE_START - P; iova <= lastIova; iova += 511) {
      const copy = self.fd.ioasCopy({ flags, srcIoasId: ioasId, dstIoasId, dstIova: MOCK_APERTURE_START, length: MOCK_PAGE_SIZE, srcIova: iova });
      if (iova < MOCK_APERTURE_START || iova + MOCK_PAGE_SIZE - 1 > lastIova) {
        await expectErrno('ENOENT', copy);
      } else {
        await copy;
        ok++;
        await ioasUnmap(self, dstIoasId, MOCK_APERTURE_START, MOCK_PAGE_SIZE);
      }
    }
    expect(ok).toBeGreaterThan(100);
    await self.fd.destroy({ id: dstIoasId });
  });
});
