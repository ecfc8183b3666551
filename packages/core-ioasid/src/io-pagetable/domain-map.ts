/**
 * Mapping areas into paging domains the way the iommu core does (drivers/iommu/iommu.c:
 * iommu_pgsize, __iommu_map, __iommu_unmap) and iommufd fills them (pages.c: batch_to_domain,
 * batch_iommu_map_small, iopt_area_unmap_domain_range).
 *
 * Addresses here are JS numbers: an area inside a domain lies inside the domain's aperture,
 * which the driver API gives as numbers (< 2^53).
 */
import { IotlbGather, type PagingDomain } from '@iommulab/driver-api';
import { fail } from '../errors.js';
import { failpoint } from '../fail-nth.js';
import { PAGE_SIZE } from '../uapi/u64.js';
import type { IoptArea } from './area.js';

/**
 * What the io_pagetable needs from a paging domain (a subset of driver-api's PagingDomain, so
 * tests and benches can pass light stand-ins).
 */
export type IoptDomain = Pick<PagingDomain, 'pageSizes' | 'aperture' | 'mapPages' | 'unmapPages' | 'iotlbSync'> &
  Partial<Pick<PagingDomain, 'iotlbSyncMap'>>;

/**
 * `iommu_pgsize`: the largest supported page size usable at `iova` / `paddr` for `size` bytes,
 * and how many of them to map before a bigger size becomes possible.
 */
export function iommuPgsize(pageSizes: readonly number[], iova: number, paddr: number, size: number): { pgsize: number; count: number } {
  pgsizeInto(pageSizes, iova, paddr, size);
  return { pgsize: pgOut.pgsize, count: pgOut.count };
}

/** Scratch result of {@link pgsizeInto} (no allocation per call on the map / unmap loops). */
const pgOut = { pgsize: 0, count: 0 };

/** {@link iommuPgsize} writing its result to `pgOut`. */
function pgsizeInto(pageSizes: readonly number[], iova: number, paddr: number, size: number): void {
  if (pageSizes.length === 1) {
    // One page size (e.g. the mock without huge pages): no bigger size to stop at.
    const ps = pageSizes[0];
    if (ps <= size && iova % ps === 0 && paddr % ps === 0) {
      pgOut.pgsize = ps;
      pgOut.count = Math.floor(size / ps);
      return;
    }
  }
  let pgsize = 0;
  let idx = -1;
  for (let i = 0; i < pageSizes.length; i++) {
    const ps = pageSizes[i];
    // Small enough for size, and both addresses aligned to it (pgsizes & GENMASK(__ffs(addr_merge), 0)).
    if (ps <= size && iova % ps === 0 && paddr % ps === 0 && ps > pgsize) {
      pgsize = ps;
      idx = i;
    }
  }
  if (idx < 0) throw new Error(`iommu_pgsize: no page size of [${pageSizes.join(', ')}] fits iova ${iova} pa ${paddr} size ${size}`);
  // The next bigger supported page size, if any.
  let next = 0;
  for (const ps of pageSizes) if (ps > pgsize && (next === 0 || ps < next)) next = ps;
  let sz = size;
  if (next !== 0 && iova % next === paddr % next) {
    // Offset to the next bigger page's alignment boundary.
    const offset = next - (iova % next);
    if (offset + next <= sz) sz = offset;
  }
  pgOut.pgsize = pgsize;
  pgOut.count = Math.floor(sz / pgsize);
}

/**
 * The mapping loop of `__iommu_map`: maps `[iova, iova + size)` to `[pa, pa + size)`, adding
 * the bytes mapped to `progress.done` as it goes (so a caller can roll back after a throw).
 */
function mapRange(domain: IoptDomain, iova: number, pa: number, size: number, prot: number, progress: { done: number }): void {
  const min = domain.pageSizes[0];
  if (iova % min !== 0 || pa % min !== 0 || size % min !== 0) {
    fail('EINVAL', `iommu_map: iova 0x${iova.toString(16)} pa 0x${pa.toString(16)} size 0x${size.toString(16)} not aligned to ${min}`);
  }
  let done = 0;
  while (done < size) {
    pgsizeInto(domain.pageSizes, iova + done, pa + done, size - done);
    const pgsize = pgOut.pgsize;
    const count = pgOut.count;
    failpoint(null, 'driver.map_pages'); // the driver's page-table allocation fails before it maps anything
    const mapped = domain.mapPages(iova + done, pa + done, pgsize, count, prot);
    if (mapped <= 0) fail('EINVAL', `iommu_map: domain mapped nothing at 0x${(iova + done).toString(16)}`);
    done += mapped;
    progress.done += mapped;
  }
}

/** `iommu_map`: maps `[iova, iova + size)` to `[pa, pa + size)`; all or nothing (rolls back, then rethrows). */
export async function iommuMap(domain: IoptDomain, iova: number, pa: number, size: number, prot: number): Promise<void> {
  const progress = { done: 0 };
  try {
    mapRange(domain, iova, pa, size, prot, progress);
    if (domain.iotlbSyncMap) await domain.iotlbSyncMap(iova, size);
  } catch (e) {
    if (progress.done > 0) {
      const g = new IotlbGather();
      iommuUnmap(domain, iova, progress.done, g);
      await domain.iotlbSync(g);
    }
    throw e;
  }
}

/** `__iommu_unmap` (without the sync): unmaps what is mapped from `iova` for `size` bytes into `gather`. */
export function iommuUnmap(domain: IoptDomain, iova: number, size: number, gather: IotlbGather): number {
  let unmapped = 0;
  while (unmapped < size) {
    pgsizeInto(domain.pageSizes, iova + unmapped, iova + unmapped, size - unmapped);
    const n = domain.unmapPages(iova + unmapped, pgOut.pgsize, pgOut.count, gather);
    if (n <= 0) break;
    unmapped += n;
  }
  return unmapped;
}

/**
 * Maps `area` (pinned) into `domain`: every physically contiguous run of its pages in one
 * `iommu_map` (so large pages are used where IOVA and PA alignment allow), or page by page when
 * the IOAS disabled large pages (batch_iommu_map_small). All or nothing. The IOPTEs are written
 * synchronously; the result is undefined when nothing is left to wait for (no `iotlbSyncMap`),
 * else a Promise (the sync, or the rollback of a failure). Never throws synchronously.
 */
export function mapAreaIntoDomain(domain: IoptDomain, area: IoptArea, smallPages: boolean): undefined | Promise<void> {
  const pages = area.pagesRef;
  if (pages.revoked) return undefined; // revoked dma-buf: the kernel maps nothing (pages.c, phys.len == 0)
  const iova0 = Number(area.start);
  const total = Number(area.last - area.start) + 1;
  const progress = { done: 0 };
  try {
    const frames = pages.frameArray;
    let idx = area.firstIndex;
    let off = area.pageOffset;
    while (progress.done < total) {
      const done = progress.done;
      const runPa = frames[idx] + off;
      let runLen = Math.min(PAGE_SIZE - off, total - done);
      idx++;
      if (!smallPages) {
        while (done + runLen < total && frames[idx] === frames[idx - 1] + PAGE_SIZE) {
          runLen += Math.min(PAGE_SIZE, total - done - runLen);
          idx++;
        }
      }
      mapRange(domain, iova0 + done, runPa, runLen, area.prot, progress);
      off = 0;
    }
    if (domain.iotlbSyncMap) {
      const p = domain.iotlbSyncMap(iova0, total);
      return p.then(undefined, (e: unknown) => rollbackMap(domain, iova0, progress.done, e));
    }
  } catch (e) {
    return rollbackMap(domain, iova0, progress.done, e);
  }
  return undefined;
}

/** Undoes the first `done` bytes mapped by a failed {@link mapAreaIntoDomain}, then rethrows `e`. */
async function rollbackMap(domain: IoptDomain, iova: number, done: number, e: unknown): Promise<never> {
  if (done > 0) {
    const g = new IotlbGather();
    iommuUnmap(domain, iova, done, g);
    await domain.iotlbSync(g);
  }
  throw e;
}

/** Unmaps `area` from `domain` into `gather` (the caller syncs). */
export function unmapAreaFromDomain(domain: IoptDomain, area: IoptArea, gather: IotlbGather): void {
  iommuUnmap(domain, Number(area.start), Number(area.last - area.start) + 1, gather);
}
