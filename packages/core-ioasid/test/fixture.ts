/**
 * Selftest fixture helpers (tools/testing/selftests/iommu/iommufd_utils.h re-expressed over the
 * typed IommuFd API): the shared 16-page MAP_SHARED `buffer`, map/unmap wrappers with the
 * selftest's default flags, errno expectations, and the teardown check that nothing stays pinned.
 */
import { PhysMem } from '@iommulab/runtime';
import { expect } from 'vitest';
import { IommuFd } from '../src/iommufd.js';
import { IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE } from '../src/uapi/constants.js';
import { UserProcess } from '../src/user-memory/process.js';

export const PAGE_SIZE = 4096;
export const BUFFER_SIZE = 16 * PAGE_SIZE;
export const HUGEPAGE_SIZE = 2 * 1024 * 1024;
export const MOCK_PAGE_SIZE = 2048;
export const MOCK_APERTURE_START = 1 << 24;
export const RW = IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;
export const FIXED = IOMMU_IOAS_MAP_FIXED_IOVA;

/** One selftest process: PhysMem, the process, its hugepage-aligned shared buffer, an open iommufd. */
export interface Self {
  mem: PhysMem;
  proc: UserProcess;
  buffer: number;
  fd: IommuFd;
}

/** FIXTURE_SETUP(iommufd). */
export function openSelf(memBytes = 64 * 1024 * 1024): Self {
  const mem = PhysMem.create(memBytes);
  const proc = UserProcess.create({ mem });
  const buffer = proc.mmap({ length: BUFFER_SIZE, shared: true, hugeAlign: HUGEPAGE_SIZE });
  // Touch the buffer like the selftest's setup (memset) so its pages exist.
  proc.write(buffer, new Uint8Array(BUFFER_SIZE).fill(0xa5));
  const fd = IommuFd.open({ process: proc });
  return { mem, proc, buffer, fd };
}

/** teardown_iommufd: close, then no page of `buffer` may keep a pin (MD_CHECK_REFS 0); frames come back on exit. */
export async function teardown(self: Self): Promise<void> {
  await self.fd.close();
  for (let off = 0; off < BUFFER_SIZE; off += PAGE_SIZE) expect(self.proc.pinCount(self.buffer + off)).toBe(0);
  expect(self.proc.vmPinned).toBe(0);
  expect(self.proc.account.lockedVm).toBe(0);
  self.proc.exit();
  expect(self.mem.allocatedFrameCount).toBe(0);
}

/** EXPECT_ERRNO(errno, call). */
export async function expectErrno(errno: string, p: Promise<unknown>): Promise<void> {
  await expect(p).rejects.toMatchObject({ errno });
}

/** test_ioctl_ioas_map: automatic IOVA, READABLE | WRITEABLE. */
export async function ioasMap(self: Self, ioasId: number, userVa: number | bigint, length: number | bigint): Promise<bigint> {
  return (await self.fd.ioasMap({ flags: RW, ioasId, userVa, length })).iova;
}

/** test_ioctl_ioas_map_fixed. */
export async function ioasMapFixed(self: Self, ioasId: number, userVa: number | bigint, length: number | bigint, iova: number | bigint): Promise<bigint> {
  return (await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa, length, iova })).iova;
}

/** test_ioctl_ioas_unmap: returns the bytes unmapped. */
export async function ioasUnmap(self: Self, ioasId: number, iova: number | bigint, length: number | bigint): Promise<bigint> {
  return (await self.fd.ioasUnmap({ ioasId, iova, length })).length;
}
