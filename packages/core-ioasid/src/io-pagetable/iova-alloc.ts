/**
 * Automatic IOVA placement (drivers/iommu/iommufd/io_pagetable.c: iopt_alloc_iova,
 * __alloc_iova_check_range): first fit, lowest address first, inside the allowed windows, in the
 * holes of reserved ∪ areas, keeping the alignment the user address has (so huge pages can be
 * used) and the user address's offset inside its CPU page.
 */
import { fail } from '../errors.js';
import { hex, PAGE_SIZE_N, ULONG_MAX, U64_MAX } from '../uapi/u64.js';
import { spanHoles, type Interval, type UsedSet } from './interval-set.js';

/** HPAGE_SIZE of a THP kernel: the largest alignment automatic allocation asks for. */
export const HPAGE_SIZE = 2n * 1024n * 1024n;

/** `roundup_pow_of_two(x)` for x >= 1. */
export function roundupPowOfTwo(x: bigint): bigint {
  let p = 1n;
  while (p < x) p <<= 1n;
  return p;
}

/** `1 << __ffs64(x)` for x != 0: the lowest set bit. */
export function lowestSetBit(x: bigint): bigint {
  return x & -x;
}

/**
 * `__alloc_iova_check_range`: aligns `start` up to `align`, ORs in `pageOffset`, and checks that
 * `length` bytes fit before `last`. Returns the aligned start or -1n.
 */
export function checkRange(start: bigint, last: bigint, length: bigint, align: bigint, pageOffset: bigint): bigint {
  let aligned = start + align - 1n;
  if (aligned > U64_MAX) return -1n;
  aligned &= ~(align - 1n);
  aligned |= pageOffset;
  if (aligned >= last || last - aligned < length - 1n) return -1n;
  return aligned;
}

/** What the allocator looks at. */
export interface IovaSpace {
  /** Merged allowed spans (empty = everything allowed). */
  readonly allowedSpans: readonly Interval[];
  /** Used sets: reserved spans and areas. */
  readonly used: readonly UsedSet[];
  /** The IOAS's current `iova_alignment`. */
  readonly iovaAlignment: bigint;
}

/**
 * `iopt_alloc_iova`: picks an IOVA for `length` bytes whose source starts at `addr` (user VA or
 * file offset of the first byte).
 * @throws IommufdError EOVERFLOW (length 0 or >= ULONG_MAX / 2), EINVAL (the natural alignment is
 *   below the IOAS alignment), ENOSPC (nothing fits).
 */
export function allocIova(space: IovaSpace, addr: bigint, length: bigint): bigint {
  const pageOffset = addr % PAGE_SIZE_N;
  // Protects roundup_pow_of_two() from overflow.
  if (length === 0n || length >= ULONG_MAX / 2n) fail('EOVERFLOW', `automatic IOVA: length ${hex(length)} is too large`);
  let align = roundupPowOfTwo(length);
  if (addr !== 0n) {
    const low = lowestSetBit(addr);
    if (low < align) align = low;
  }
  if (align >= HPAGE_SIZE) align = HPAGE_SIZE;
  if (align < space.iovaAlignment) {
    fail('EINVAL', `automatic IOVA: address ${hex(addr)} / length ${hex(length)} allow alignment ${align}, below the IOAS alignment ${space.iovaAlignment}`);
  }
  const winFirst = PAGE_SIZE_N;
  const winLast = ULONG_MAX - PAGE_SIZE_N;
  const windows: Interval[] =
    space.allowedSpans.length === 0
      ? [{ start: winFirst, last: winLast }]
      : space.allowedSpans
          .filter((s) => s.last >= winFirst && s.start <= winLast)
          .map((s) => ({ start: s.start < winFirst ? winFirst : s.start, last: s.last > winLast ? winLast : s.last }));
  let found = -1n;
  for (const w of windows) {
    const wStart = checkRange(w.start, w.last, length, align, pageOffset);
    if (wStart < 0n) continue;
    const hit = spanHoles(space.used, wStart, w.last, (hs, hl) => {
      const s = checkRange(hs, hl, length, align, pageOffset);
      if (s < 0n) return false;
      found = s;
      return true;
    });
    if (hit) return found;
  }
  return fail('ENOSPC', `automatic IOVA: no free range of ${hex(length)} bytes aligned to ${hex(align)}`);
}
