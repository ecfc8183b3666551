/**
 * Test-only facilities, the model's counterpart of drivers/iommu/iommufd/selftest.c
 * (IOMMU_TEST_CMD, CONFIG_IOMMUFD_TEST kernels only). The contract of each op lives here, beside
 * the code, as in the kernel.
 *
 * - ADD_RESERVED (op 1): `{ ioasId, start, length }` reserves `[start, start + length - 1]` in the
 *   IOAS with no owner (removed when the IOAS is destroyed). `ENOENT` for a non-IOAS id,
 *   `EADDRINUSE` if it intersects an area or an allowed range. The kernel computes the last
 *   address modulo 2^64 without checks; the model rejects a range that wraps with `EINVAL`.
 * - MD_CHECK_REFS (op 4): `{ process, uptr, length, refs }`: every CPU page of the user range has
 *   exactly `refs` pins (`EIO` otherwise, `EINVAL` if `uptr` / `length` are not page aligned).
 * - SET_TEMP_MEMORY_LIMIT (op 9): the kernel caps the temporary batch memory of the pinning code
 *   to force its chunked paths. The model pins without temporary batches, so the op only records
 *   the value ({@link testTempMemoryLimit}); default 65536 as `test_ioctl_set_default_memory_limit`.
 */
import type { IommufdCtx } from './context.js';
import { fail } from './errors.js';
import { getIoas } from './ioas.js';
import { hex, PAGE_SIZE, u32, u64, U64_MAX } from './uapi/u64.js';
import type { UserProcess } from './user-memory/process.js';

/** IOMMU_TEST_OP_* numbers (iommufd_test.h) of the ops implemented here. */
export const IOMMU_TEST_OP_ADD_RESERVED = 1;
export const IOMMU_TEST_OP_MD_CHECK_REFS = 4;
export const IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT = 9;

/** IOMMU_TEST_OP_ADD_RESERVED (`iommufd_test_add_reserved`). */
export async function testAddReserved(ctx: IommufdCtx, a: { ioasId: number; start: bigint | number; length: bigint | number }): Promise<void> {
  const ioas = getIoas(ctx, u32(a.ioasId, 'id'));
  const start = u64(a.start, 'start');
  const length = u64(a.length, 'length');
  const last = start + length - 1n;
  if (length === 0n || last > U64_MAX) fail('EINVAL', `ADD_RESERVED: [${hex(start)}, +${hex(length)}) wraps`);
  ioas.iopt.addReservedRange(null, start, last);
}

/** IOMMU_TEST_OP_MD_CHECK_REFS (`iommufd_test_md_check_refs`) against a process. */
export function testMdCheckRefs(process: UserProcess, a: { uptr: number; length: number; refs: number }): void {
  if (a.length % PAGE_SIZE !== 0 || a.uptr % PAGE_SIZE !== 0) fail('EINVAL', 'MD_CHECK_REFS: uptr / length not page aligned');
  for (let off = 0; off < a.length; off += PAGE_SIZE) {
    const n = process.pinCount(a.uptr + off);
    if (n !== a.refs) fail('EIO', `MD_CHECK_REFS: page ${hex(a.uptr + off)} has ${n} pins, expected ${a.refs}`);
  }
}

const tempLimits = new WeakMap<IommufdCtx, number>();

/** IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT: records `limit` (no effect on the model's pinning). */
export async function testSetTempMemoryLimit(ctx: IommufdCtx, a: { limit: number }): Promise<void> {
  tempLimits.set(ctx, u32(a.limit, 'limit'));
}

/** The recorded temporary memory limit (65536 unless set). */
export function testTempMemoryLimit(ctx: IommufdCtx): number {
  return tempLimits.get(ctx) ?? 65536;
}
