/**
 * SoftDomain: a tiny in-memory paging domain (a map of leaves) standing in for a driver's
 * PagingDomain in io_pagetable tests: records leaf sizes so tests can check the iommu_pgsize
 * choices, counts IOTLB syncs, and can be told to fail.
 */
import { IommuError, type IotlbGather } from '@iommulab/driver-api';
import type { IoptDomain } from '../src/io-pagetable/domain-map.js';

export class SoftDomain implements IoptDomain {
  readonly leaves = new Map<number, { pa: number; size: number; prot: number }>();
  syncs = 0;
  syncMaps = 0;
  /** Throw EIO from mapPages after this many more successful calls (Infinity = never). */
  failAfter = Infinity;

  constructor(
    readonly pageSizes: readonly number[] = [4096, 2 * 1024 * 1024],
    readonly aperture: { start: number; last: number } = { start: 0, last: 2 ** 40 - 1 },
  ) {}

  /** The leaf covering iova, if any. */
  leafAt(iova: number): { base: number; pa: number; size: number } | undefined {
    for (const ps of this.pageSizes) {
      const base = iova - (iova % ps);
      const e = this.leaves.get(base);
      if (e && e.size === ps) return { base, pa: e.pa, size: ps };
    }
    return undefined;
  }

  iovaToPhys(iova: number): number {
    const l = this.leafAt(iova);
    return l === undefined ? -1 : l.pa + (iova - l.base);
  }

  mapPages(iova: number, pa: number, pageSize: number, count: number, prot: number): number {
    if (this.failAfter-- <= 0) throw new IommuError('EIO', 'SoftDomain: injected failure');
    if (!this.pageSizes.includes(pageSize) || iova % pageSize || pa % pageSize) throw new IommuError('EINVAL', 'SoftDomain: misaligned');
    if (iova < this.aperture.start || iova + pageSize * count - 1 > this.aperture.last) throw new IommuError('EINVAL', 'SoftDomain: outside aperture');
    const min = this.pageSizes[0];
    for (let off = 0; off < pageSize * count; off += min) {
      if (this.leafAt(iova + off) !== undefined) throw new IommuError('EEXIST', `SoftDomain: 0x${(iova + off).toString(16)} mapped`);
    }
    for (let k = 0; k < count; k++) this.leaves.set(iova + k * pageSize, { pa: pa + k * pageSize, size: pageSize, prot });
    return pageSize * count;
  }

  unmapPages(iova: number, pageSize: number, count: number, gather: IotlbGather): number {
    let done = 0;
    for (let k = 0; k < count; k++) {
      const at = iova + k * pageSize;
      const e = this.leaves.get(at);
      if (!e || e.size !== pageSize) break;
      this.leaves.delete(at);
      gather.add(at, pageSize, pageSize);
      done += pageSize;
    }
    return done;
  }

  async iotlbSync(gather: IotlbGather): Promise<void> {
    this.syncs++;
    gather.reset();
  }

  async iotlbSyncMap(): Promise<void> {
    this.syncMaps++;
  }

  /** Bytes mapped. */
  get mappedBytes(): number {
    let n = 0;
    for (const e of this.leaves.values()) n += e.size;
    return n;
  }
}
