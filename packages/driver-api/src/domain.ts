import type { IommuDevice } from './device.js';
import { IommuError } from './iommu-error.js';

/** `IOMMU_READ` / `IOMMU_WRITE` / ... protection bits for `mapPages`, as in linux/iommu.h. */
export const Prot = {
  READ: 1 << 0,
  WRITE: 1 << 1,
  CACHE: 1 << 2,
  NOEXEC: 1 << 3,
  MMIO: 1 << 4,
  PRIV: 1 << 5,
} as const;

/** Flags for `domainAllocPaging`, as `IOMMU_HWPT_ALLOC_*`. */
export interface DomainAllocFlags {
  /** The domain will be the parent (stage 2) of nested domains. */
  readonly nestParent?: boolean;
  /** Enforce dirty tracking capability (the domain must support `setDirtyTracking`). */
  readonly dirtyTracking?: boolean;
  /** The domain may be attached to PASIDs. */
  readonly pasid?: boolean;
}

/**
 * Driver-specific data for a paging domain (`struct iommu_user_data` of
 * `domain_alloc_paging_flags`), e.g. the selftest mock's page-table format selector.
 */
export interface PagingUserData {
  /** `IOMMU_HWPT_DATA_*` type. */
  readonly type: number;
  /** The struct as the user gave it (its length is `data_len`). */
  readonly data: Uint8Array;
}

/** Collects what an unmap removed so one invalidation covers it (`struct iommu_iotlb_gather`). */
export class IotlbGather {
  /** First IOVA touched (Infinity when empty). */
  start = Infinity;
  /** Last IOVA touched, inclusive (-1 when empty). */
  end = -1;
  /** Largest page size removed. */
  pageSize = 0;

  /** Adds `[iova, iova + size)` removed with pages of `pageSize`. */
  add(iova: number, size: number, pageSize: number): void {
    if (size <= 0) return;
    if (iova < this.start) this.start = iova;
    const last = iova + size - 1;
    if (last > this.end) this.end = last;
    if (pageSize > this.pageSize) this.pageSize = pageSize;
  }

  /** True when nothing was gathered. */
  get empty(): boolean {
    return this.end < 0;
  }

  /** Forgets everything gathered. */
  reset(): void {
    this.start = Infinity;
    this.end = -1;
    this.pageSize = 0;
  }
}

/**
 * The argument checks every `mapPages` / `unmapPages` makes before touching its page table, as the
 * contract documents them: `pageSize` one of the domain's page sizes, `count` a positive integer,
 * `iova` a non-negative multiple of `pageSize`, and the whole range inside the domain's aperture.
 * A backend calls it first and then checks what is specific to its format (e.g. the PA).
 *
 * @param op - the operation, for the message (`'mapPages'`, `'unmapPages'`)
 * @throws IommuError EINVAL naming the failed check
 */
export function checkPageRange(
  op: string,
  domain: { readonly pageSizes: readonly number[]; readonly aperture: { readonly start: number; readonly last: number } },
  iova: number,
  pageSize: number,
  count: number,
): void {
  if (!domain.pageSizes.includes(pageSize)) {
    throw new IommuError('EINVAL', `${op}: page size ${pageSize} is not one of ${domain.pageSizes.join(', ')}`);
  }
  if (!Number.isSafeInteger(count) || count <= 0) throw new IommuError('EINVAL', `${op}: page count ${count} is not a positive integer`);
  if (!Number.isSafeInteger(iova) || iova < 0 || iova % pageSize !== 0) {
    throw new IommuError('EINVAL', `${op}: iova 0x${iova.toString(16)} is not aligned to ${pageSize}`);
  }
  const { start, last } = domain.aperture;
  if (iova < start || iova + pageSize * count - 1 > last) {
    throw new IommuError(
      'EINVAL',
      `${op}: [0x${iova.toString(16)}, +${pageSize}×${count}) is outside the aperture [0x${start.toString(16)}, 0x${last.toString(16)}]`,
    );
  }
}

/** Base of every domain object a driver hands out. */
export interface IommuDomain {
  /** `paging`: an IO page table the host owns; `nested`: a user stage 1 over a paging parent. */
  readonly kind: 'paging' | 'nested';
  /** Driver-wide unique id (for reports; not an architectural value). */
  readonly id: number;
  /** Frees the domain. `EBUSY` while any device or PASID is attached to it. */
  free(): Promise<void>;
}

/** Result of a partial or complete dirty-bitmap read. */
export interface DirtyReadFlags {
  /** Report dirty state without clearing it (`IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR`). */
  readonly noClear?: boolean;
}

/**
 * A paging domain: an IO page table the host owns (`iommu_domain` + `iommu_domain_ops` +
 * `iommu_dirty_ops`). Map and unmap change the page table in memory; translations may stay
 * cached in the IOTLB until `iotlbSync` / `flushIotlbAll` completes, exactly as on hardware.
 */
export interface PagingDomain extends IommuDomain {
  readonly kind: 'paging';
  readonly flags: DomainAllocFlags;
  /** Page sizes this domain can map, in bytes, ascending. */
  readonly pageSizes: readonly number[];
  /** IOVA range this domain accepts, inclusive. */
  readonly aperture: { readonly start: number; readonly last: number };

  /**
   * Maps `count` pages of `pageSize` bytes at `iova` to `pa` with {@link Prot} bits.
   * Returns the bytes mapped. `EINVAL` for an unsupported page size, misalignment or an IOVA
   * outside the aperture; `EEXIST` when any page is already mapped (nothing is then mapped).
   */
  mapPages(iova: number, pa: number, pageSize: number, count: number, prot: number): number;

  /**
   * Unmaps `count` pages of `pageSize` at `iova`; stops at the first hole. Returns the bytes
   * unmapped and adds them to `gather`. A larger leaf that is only partly covered is split when
   * the format allows it, else left alone and the unmap stops there.
   */
  unmapPages(iova: number, pageSize: number, count: number, gather: IotlbGather): number;

  /** Makes new mappings visible to hardware that caches non-present entries (no-op elsewhere). */
  iotlbSyncMap(iova: number, size: number): Promise<void>;

  /** Invalidates what `gather` covers and waits for completion; then resets `gather`. */
  iotlbSync(gather: IotlbGather): Promise<void>;

  /** Invalidates every cached translation of this domain and waits for completion. */
  flushIotlbAll(): Promise<void>;

  /** Walks the page table (not the IOTLB): the physical address, or -1 when unmapped. */
  iovaToPhys(iova: number): number;

  /** Starts or stops hardware dirty tracking. `EOPNOTSUPP` when the domain cannot track. */
  setDirtyTracking(enable: boolean): Promise<void>;

  /**
   * Reports every dirty IO page in `[iova, iova + size)` through `record(iova, length)` (whole
   * IOPTEs) and clears the dirty state unless `flags.noClear`; invalidates what it cleared.
   */
  readAndClearDirty(
    iova: number,
    size: number,
    flags: DirtyReadFlags,
    record: (iova: number, length: number) => void,
  ): Promise<void>;
}

/** Outcome of `cacheInvalidateUser`: how many entries were handled before any error. */
export interface UserInvalidateResult {
  /** Entries fully handled (the uAPI's updated `entry_num`). */
  readonly handled: number;
  /** The error that stopped processing at entry `handled`, if any. */
  readonly error?: import('./iommu-error.js').IommuError;
}

/**
 * A nested domain: the guest owns stage 1 (described by vendor data), the host's paging parent
 * is stage 2. Guest invalidations arrive through `cacheInvalidateUser`.
 */
export interface NestedDomain extends IommuDomain {
  readonly kind: 'nested';
  readonly parent: PagingDomain;
  /** The `IOMMU_HWPT_DATA_*` type it was created from. */
  readonly dataType: number;
  /**
   * Processes `count` invalidation entries of `entryLen` bytes each in the vendor format
   * `dataType` (`IOMMU_HWPT_INVALIDATE_DATA_*`), in order, stopping at the first bad entry.
   */
  cacheInvalidateUser(
    dataType: number,
    entryLen: number,
    entries: Uint8Array,
    count: number,
  ): Promise<UserInvalidateResult>;
}

/** What a device or PASID can be attached to: a domain, or the core's static domains. */
export type AttachTarget = IommuDomain | 'blocked' | 'identity';

/** Convenience: the devices and PASIDs a driver tracks per domain, for `EBUSY` checks. */
export interface DomainUser {
  readonly device: IommuDevice;
  /** PASID, or -1 for the RID. */
  readonly pasid: number;
}
