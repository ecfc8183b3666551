/**
 * Fixture helpers for the mock-device selftests: one IommuFd plus one hw-mock backend stack over
 * the same PhysMem (in-thread by default), the MockTestOps bound to them, DMA helpers through the
 * stack's device port, and the teardown check (nothing pinned, every frame back once the process
 * exits and the backend shuts down).
 */
import { ACCESS_READ, ACCESS_WRITE, NO_PASID, openBackend, type BackendStack, type DmaResult, type InstanceMode } from '@iommulab/driver-api';
import { expect } from 'vitest';
import { MockTestOps } from '../src/selftest-mock.js';
import { Memfd } from '../src/user-memory/memfd.js';
import { BUFFER_SIZE, openSelf, PAGE_SIZE, type Self } from './fixture.js';

/** The hw-mock backend module (source, as the hw-mock tests load it). */
export const HW_MOCK = new URL('../../hw-mock/src/index.ts', import.meta.url).href;

export const MOCK_APERTURE_LAST = 0x7fff_ffff;
export const MOCK_HUGE_PAGE_SIZE = 1024 * 1024;
export const IOMMU_HW_INFO_TYPE_SELFTEST = 0xfeedbeef;
export const IOMMU_HW_INFO_SELFTEST_REGVAL = 0xdeadbeef;
export const IOMMU_HWPT_DATA_SELFTEST = 0xdead;
export const IOMMU_TEST_IOTLB_DEFAULT = 0xbadbeef;
export const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
export const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID = 0xdadbeef;
export const IOMMU_TEST_INVALIDATE_FLAG_ALL = 1;
export const MOCK_NESTED_DOMAIN_IOTLB_ID_MAX = 3;

/** A selftest process with a mock IOMMU. */
export interface MockSelf extends Self {
  stack: BackendStack;
  mock: MockTestOps;
  /** Memfds to close at teardown (see {@link newMemfd}). */
  memfds: Memfd[];
}

/** memfd_create + track it for teardown. */
export function newMemfd(self: MockSelf, size: number): Memfd {
  const f = Memfd.create(self.mem, size);
  self.memfds.push(f);
  return f;
}

/** Opens the process, the iommufd and a hw-mock instance sharing the PhysMem. */
export async function openMockSelf(o: { memBytes?: number; mode?: InstanceMode } = {}): Promise<MockSelf> {
  const self = openSelf(o.memBytes ?? 64 * 1024 * 1024);
  const stack = await openBackend(HW_MOCK, { mode: o.mode ?? 'in-thread', mem: self.mem, timeoutMs: 10_000 });
  return { ...self, stack, mock: new MockTestOps(self.fd, stack), memfds: [] };
}

/** teardown_iommufd + MD_CHECK_REFS 0; then the backend goes and every frame must be free. */
export async function teardownMock(self: MockSelf): Promise<void> {
  await self.fd.close();
  for (let off = 0; off < BUFFER_SIZE; off += PAGE_SIZE) expect(self.proc.pinCount(self.buffer + off)).toBe(0);
  expect(self.proc.vmPinned).toBe(0);
  expect(self.proc.account.lockedVm).toBe(0);
  await self.stack.close();
  for (const f of self.memfds) if (f.isOpen) f.close();
  self.proc.exit();
  expect(self.mem.allocatedFrameCount).toBe(0);
}

/** One DMA by the device with requester id `rid` (a copy of the result). */
export async function dma(self: MockSelf, rid: number, iova: number | bigint, access = ACCESS_READ, pasid = NO_PASID): Promise<DmaResult> {
  return { ...(await self.stack.port.translate({ rid, iova: Number(iova), access, pasid })) };
}

/** DMA by the mock device of `stdevId` at every `step` bytes of `[iova, iova + length)`: each must fault. */
export async function expectDmaFaults(self: MockSelf, stdevId: number, iova: number | bigint, length: number, step = 2048): Promise<void> {
  const rid = self.mock.deviceOf(stdevId).dev.rid;
  const reqs = [];
  for (let off = 0; off < length; off += step) reqs.push({ rid, iova: Number(iova) + off, access: ACCESS_READ | ACCESS_WRITE });
  const res = await self.stack.port.translateMany(reqs);
  for (const r of res) expect(r.ok).toBe(false);
}

/** MAP_POPULATE of a hugepage-aligned anonymous region: populated in one go (THP-like contiguous frames). */
export function populate(self: Self, addr: number, length: number): void {
  self.proc.unpin(self.proc.pin(addr, Math.ceil(length / PAGE_SIZE), true));
}
