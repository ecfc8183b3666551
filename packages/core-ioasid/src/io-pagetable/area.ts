/**
 * IoptArea: one IOVA interval of an IOAS pointing at a slice of an {@link IoptPages}
 * (drivers/iommu/iommufd/io_pagetable.h, struct iopt_area). Each MAP / MAP_FILE creates one area;
 * a COPY creates one per source area it covers.
 */
import { PAGE_SIZE } from '../uapi/u64.js';
import type { Interval } from './interval-set.js';
import type { IoptPages } from './pages.js';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER) >> 1n;

/** An IOVA interval mapped to user pages. */
export class IoptArea implements Interval {
  /** First IOVA. */
  start: bigint;
  /** Last IOVA (inclusive). */
  last: bigint;
  /**
   * The pages, or null while the area is being created or torn down (the kernel's
   * `area->pages == NULL`: unmap answers EBUSY, COPY does not see it, new domains skip it).
   */
  pages: IoptPages | null = null;
  /** The pages object this area was made for (kept while `pages` is null). */
  readonly pagesRef: IoptPages;
  /** Byte offset of the first IOVA inside its first CPU page (`start_byte % PAGE_SIZE`). */
  readonly pageOffset: number;
  /** Index in the pages object of the first / last CPU page used (`pages_node`). */
  readonly firstIndex: number;
  readonly lastIndex: number;
  /** IOMMU_READ / IOMMU_WRITE / IOMMU_CACHE bits (driver-api `Prot`). */
  readonly prot: number;
  /** Pinned for the IOAS's domains (the kernel's `storage_domain != NULL`). */
  filled = false;
  /** Accesses holding pins in this area (ACCESS helper). */
  numAccesses = 0;
  /** Objects that lock the area against unmap (HW queues): unmap answers EBUSY. */
  numLocks = 0;
  /** Set while an unmap waits for accesses to drop their pins. */
  preventAccess = false;

  constructor(start: bigint, last: bigint, pages: IoptPages, startByte: bigint, prot: number) {
    this.start = start;
    this.last = last;
    this.pagesRef = pages;
    const span = last - start;
    if (startByte <= MAX_SAFE && span <= MAX_SAFE) {
      // Hot path: plain number arithmetic (the values are exact below 2^53).
      const sb = Number(startByte);
      this.pageOffset = sb % PAGE_SIZE;
      this.firstIndex = Math.floor(sb / PAGE_SIZE);
      this.lastIndex = Math.floor((sb + Number(span)) / PAGE_SIZE);
    } else {
      this.pageOffset = Number(startByte % BigInt(PAGE_SIZE));
      this.firstIndex = Number(startByte / BigInt(PAGE_SIZE));
      this.lastIndex = Number((startByte + span) / BigInt(PAGE_SIZE));
    }
    this.prot = prot;
  }

  /** Length in bytes. */
  get length(): bigint {
    return this.last - this.start + 1n;
  }

  /** Byte offset inside the pages object of `iova` (`iopt_area_start_byte`). */
  startByte(iova: bigint): bigint {
    return iova - this.start + BigInt(this.pageOffset) + BigInt(this.firstIndex) * BigInt(PAGE_SIZE);
  }
}
