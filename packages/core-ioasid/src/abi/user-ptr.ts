/**
 * User pointers of the binary ABI. A u64 pointer field (`allowed_iovas`, `data_uptr`, `data`, ...)
 * is a virtual address in the user process that owns the iommufd; the kernel reaches it with
 * copy_from_user / copy_to_user, which fail with `EFAULT` on unmapped memory or on an address
 * outside user space.
 */
import { fail } from '../errors.js';
import { hex } from '../uapi/u64.js';
import { IOMMU_IOVA_RANGE_SIZE } from './layout.js';

/** What the ABI needs of a user process (src/user-memory `UserProcess` has it). */
export interface UserMemory {
  /** CPU read of `length` bytes at `addr`; throws `EFAULT` on unmapped memory. */
  read(addr: number, length: number): Uint8Array;
  /** CPU write of `data` at `addr`; throws `EFAULT` on unmapped or read-only memory. */
  write(addr: number, data: Uint8Array): void;
}

/** x86-64 TASK_SIZE_MAX (47-bit user space, last page excluded): `access_ok()` fails beyond it. */
export const USER_ADDR_LIMIT = (1n << 47n) - 4096n;

function checkRange(ptr: bigint, len: number, what: string): number {
  if (ptr + BigInt(len) > USER_ADDR_LIMIT) fail('EFAULT', `${what}: ${hex(ptr)}+${len} is not a user address`);
  return Number(ptr);
}

/** `copy_from_user(dst, ptr, len)`; a zero length touches nothing (a NULL pointer is then fine). */
export function readUser(mem: UserMemory, ptr: bigint, len: number, what: string): Uint8Array {
  if (len === 0) return new Uint8Array(0);
  const addr = checkRange(ptr, len, what);
  return mem.read(addr, len).slice();
}

/** `copy_to_user(ptr, data, len)`; a zero length touches nothing. */
export function writeUser(mem: UserMemory, ptr: bigint, data: Uint8Array, what: string): void {
  if (data.length === 0) return;
  const addr = checkRange(ptr, data.length, what);
  mem.write(addr, data);
}

/** `clear_user(ptr, len)`. */
export function clearUser(mem: UserMemory, ptr: bigint, len: number, what: string): void {
  if (len > 0) writeUser(mem, ptr, new Uint8Array(len), what);
}

/** An `iommu_iova_range` as the typed API sees it. */
export interface IovaRangeValue {
  start: bigint;
  last: bigint;
}

/**
 * The `struct iommu_iova_range` array at `ptr` (`count` entries) as a lazy, read-only array: entry
 * `i` is copied from user memory the first time it is read, so an unreadable entry raises `EFAULT`
 * exactly when the typed implementation reaches it — the kernel's `copy_from_user(&range, ranges + i)`
 * inside its loop (ioas.c iommufd_ioas_allow_iovas), after the ID lookup and the checks of the
 * entries before it.
 */
export function lazyIovaRanges(mem: UserMemory, ptr: bigint, count: number, what: string): readonly IovaRangeValue[] {
  const cache = new Map<number, IovaRangeValue>();
  const load = (i: number): IovaRangeValue => {
    let r = cache.get(i);
    if (!r) {
      const bytes = readUser(mem, ptr + BigInt(i * IOMMU_IOVA_RANGE_SIZE), IOMMU_IOVA_RANGE_SIZE, `${what}[${i}]`);
      const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      r = Object.freeze({ start: v.getBigUint64(0, true), last: v.getBigUint64(8, true) });
      cache.set(i, r);
    }
    return r;
  };
  const target: IovaRangeValue[] = new Array<IovaRangeValue>(count);
  return new Proxy(target, {
    get(t, key, receiver) {
      if (typeof key === 'string') {
        const i = Number(key);
        if (Number.isInteger(i) && i >= 0 && String(i) === key) return i < count ? load(i) : undefined;
      }
      return Reflect.get(t, key, receiver) as unknown;
    },
    has(t, key) {
      if (typeof key === 'string') {
        const i = Number(key);
        if (Number.isInteger(i) && i >= 0 && String(i) === key) return i < count;
      }
      return Reflect.has(t, key);
    },
    set() {
      return false;
    },
  });
}

/** Encodes ranges as a `struct iommu_iova_range[]` image. */
export function encodeIovaRanges(ranges: readonly { start: bigint | number; last: bigint | number }[]): Uint8Array {
  const out = new Uint8Array(ranges.length * IOMMU_IOVA_RANGE_SIZE);
  const v = new DataView(out.buffer);
  ranges.forEach((r, i) => {
    v.setBigUint64(i * IOMMU_IOVA_RANGE_SIZE, BigInt(r.start), true);
    v.setBigUint64(i * IOMMU_IOVA_RANGE_SIZE + 8, BigInt(r.last), true);
  });
  return out;
}

/**
 * Defines `obj[key]` as an enumerable getter that copies `len` bytes from `ptr` on first access
 * (cached), or yields `undefined` when `len` is 0. The typed implementation should touch it where
 * the kernel does its copy_from_user, so a bad pointer fails with `EFAULT` in the kernel's order.
 */
export function defineLazyUserBytes(
  obj: Record<string, unknown>,
  key: string,
  mem: UserMemory,
  ptr: bigint,
  len: number,
  what: string,
): void {
  let cached: Uint8Array | undefined;
  Object.defineProperty(obj, key, {
    enumerable: true,
    configurable: true,
    get(): Uint8Array | undefined {
      if (len === 0) return undefined;
      cached ??= readUser(mem, ptr, len, what);
      return cached;
    },
  });
}
