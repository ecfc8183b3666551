/**
 * Choosing page sizes for a mapping, as Linux's `iommu_pgsize` does: at every position use the
 * largest page size that the IOVA, the PA and the remaining length allow.
 */
import type { MapChunk } from './records.js';

/**
 * Splits `[iova, iova + size)` → `[pa, ...)` into runs of same-size pages, greedily using the
 * largest page size that alignment allows at each position.
 *
 * @param iova - first IOVA
 * @param pa - first physical address
 * @param size - bytes to map (a multiple of the smallest page size)
 * @param pageSizes - page sizes the domain supports (any order)
 * @returns runs in address order; consecutive pages of one size are merged into one run
 * @throws RangeError when `size` or the addresses are not aligned to the smallest page size
 */
export function planMapping(iova: number, pa: number, size: number, pageSizes: readonly number[]): MapChunk[] {
  const sizes = [...pageSizes].sort((a, b) => b - a);
  const min = sizes[sizes.length - 1];
  if (min === undefined) throw new RangeError('no page sizes');
  if (size <= 0 || size % min !== 0 || iova % min !== 0 || pa % min !== 0) {
    throw new RangeError(`cannot map ${size} bytes at iova ${iova} / pa ${pa} with ${min}-byte pages`);
  }
  const out: MapChunk[] = [];
  let off = 0;
  while (off < size) {
    const remaining = size - off;
    const ps = sizes.find((s) => (iova + off) % s === 0 && (pa + off) % s === 0 && remaining >= s) ?? min;
    // Take as many pages of this size as fit before a larger size would become usable.
    let count = 0;
    while (off + (count + 1) * ps <= size) {
      const at = off + count * ps;
      const better = sizes.find((s) => s > ps && (iova + at) % s === 0 && (pa + at) % s === 0 && size - at >= s);
      if (count > 0 && better !== undefined) break;
      count++;
    }
    const last = out[out.length - 1];
    if (last !== undefined && last.pageSize === ps && last.iova + last.count * ps === iova + off) {
      out[out.length - 1] = { ...last, count: last.count + count };
    } else {
      out.push({ iova: iova + off, pa: pa + off, pageSize: ps, count });
    }
    off += count * ps;
  }
  return out;
}

/**
 * The alignment to allocate backing memory and choose the IOVA base with: the largest page size
 * that is not bigger than the mapping itself.
 *
 * @param size - bytes to map
 * @param pageSizes - page sizes the domain supports
 */
export function mappingAlignment(size: number, pageSizes: readonly number[]): number {
  let best = Math.min(...pageSizes);
  for (const s of pageSizes) if (s <= size && s > best) best = s;
  return best;
}

/**
 * The page sizes a mapping with IO page size `ioPageSize` may use: `ioPageSize` itself and the
 * smaller sizes alignment may force at the edges, never a larger one.
 *
 * @param pageSizes - page sizes the domain supports (any order)
 * @param ioPageSize - the requested IO page size (one of `pageSizes`)
 * @returns the usable sizes, ascending
 */
export function pageSizesUpTo(pageSizes: readonly number[], ioPageSize: number): number[] {
  return [...pageSizes].filter((s) => s <= ioPageSize).sort((a, b) => a - b);
}
