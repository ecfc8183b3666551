/**
 * MockPagingDomain: a host-owned IO page table (the mock format) tagged in the IOTLB by a
 * 16-bit DOMAIN_ID. Map / unmap edit the table in PhysMem (synchronously, like the kernel's
 * io-pgtable); invalidation goes through the command queue.
 */
import {
  IommuError,
  checkPageRange,
  type DirtyReadFlags,
  type DomainAllocFlags,
  type IotlbGather,
  type PagingDomain,
} from '@iommulab/driver-api';
import { writeCmdInvDomain, writeCmdInvRange } from './codec.js';
import { MOCK_APERTURE_LAST, MOCK_APERTURE_START, MOCK_HUGE_PAGE_SIZE, MOCK_PAGE_SIZE } from './constants.js';
import type { CommandFiller } from './driver-cmdq.js';
import { MockPageTable, PT_READ, PT_WRITE } from './page-table.js';

/** What a domain needs from its driver. @internal */
export interface DomainHost {
  readonly instanceId: string;
  /** Throws ENODEV after shutdown. */
  checkAlive(): void;
  /** Submits commands + CMD_SYNC and waits. */
  submit(count: number, fill: CommandFiller): Promise<void>;
  /** Rewrites the DTEs / PASID entries of every user of `domain` (after a dirty-tracking change). */
  refreshUsers(domain: MockPagingDomain): Promise<void>;
  /** Called once the domain is freed. */
  domainFreed(domain: MockPagingDomain): void;
}

/** What a synchronous no-op returns. */
const DONE: Promise<void> = Promise.resolve();

/** Largest INV_RANGE the driver sends before switching to INV_DOMAIN (in IO pages). */
const MAX_RANGE_PAGES = 1 << 16;

/** A paging domain of the mock IOMMU. */
export class MockPagingDomain implements PagingDomain {
  readonly kind = 'paging' as const;
  readonly flags: DomainAllocFlags;
  readonly pageSizes: readonly number[];
  readonly aperture = { start: MOCK_APERTURE_START, last: MOCK_APERTURE_LAST } as const;
  /** Devices / PASIDs attached (keys `rid` or `rid:pasid`). @internal */
  readonly users = new Set<string>();
  /** Nested domains built over this one. @internal */
  nestedChildren = 0;
  /** Hardware dirty tracking is on. */
  dirtyTracking = false;
  private freed = false;

  /** @internal use `MockDriver.domainAllocPaging` */
  constructor(
    private readonly host: DomainHost,
    readonly id: number,
    /** The 16-bit DOMAIN_ID tagging the IOTLB. */
    readonly domainId: number,
    /** The page table. */
    readonly table: MockPageTable,
    flags: DomainAllocFlags,
  ) {
    this.flags = { ...flags };
    this.pageSizes = table.huge ? [MOCK_PAGE_SIZE, MOCK_HUGE_PAGE_SIZE] : [MOCK_PAGE_SIZE];
  }

  /** True once freed. */
  get isFreed(): boolean {
    return this.freed;
  }

  private check(op: string): void {
    this.host.checkAlive();
    if (this.freed) throw new IommuError('ENOENT', `${op}: domain ${this.id} was freed`);
  }

  mapPages(iova: number, pa: number, pageSize: number, count: number, prot: number): number {
    this.check('mapPages');
    checkPageRange('mapPages', this, iova, pageSize, count);
    if (!Number.isSafeInteger(pa) || pa < 0 || pa % pageSize !== 0) {
      throw new IommuError('EINVAL', `mapPages: pa 0x${pa.toString(16)} is not aligned to ${pageSize}`);
    }
    const size = pageSize * count;
    this.table.map(iova, pa, size, prot & (PT_READ | PT_WRITE), pageSize === MOCK_HUGE_PAGE_SIZE);
    return size;
  }

  unmapPages(iova: number, pageSize: number, count: number, gather: IotlbGather): number {
    this.check('unmapPages');
    checkPageRange('unmapPages', this, iova, pageSize, count);
    return this.table.unmap(iova, pageSize * count, (i, s, ps) => gather.add(i, s, ps));
  }

  iotlbSyncMap(_iova: number, _size: number): Promise<void> {
    // The mock IOTLB never caches non-present entries: nothing to do (no async function: an
    // already-resolved Promise, so the map path does not wait on extra microtasks).
    try {
      this.check('iotlbSyncMap');
    } catch (e) {
      return Promise.reject(e);
    }
    return DONE;
  }

  iotlbSync(gather: IotlbGather): Promise<void> {
    try {
      this.check('iotlbSync');
      if (gather.empty) return DONE;
      const first = Math.floor(gather.start / MOCK_PAGE_SIZE);
      const pages = Math.floor(gather.end / MOCK_PAGE_SIZE) - first + 1;
      gather.reset();
      return this.invalidateRange(first * MOCK_PAGE_SIZE, pages);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** CMD_INV_RANGE (or CMD_INV_DOMAIN for huge ranges) + CMD_SYNC. @internal */
  invalidateRange(iova: number, pages: number): Promise<void> {
    const dom = this.domainId;
    try {
      if (pages > MAX_RANGE_PAGES) return this.host.submit(1, (u32, w) => writeCmdInvDomain(u32, w, dom));
      return this.host.submit(1, (u32, w) => writeCmdInvRange(u32, w, dom, iova, pages));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async flushIotlbAll(): Promise<void> {
    this.check('flushIotlbAll');
    const dom = this.domainId;
    await this.host.submit(1, (u32, w) => writeCmdInvDomain(u32, w, dom));
  }

  iovaToPhys(iova: number): number {
    if (this.freed) return -1;
    return this.table.iovaToPhys(iova);
  }

  async setDirtyTracking(enable: boolean): Promise<void> {
    this.check('setDirtyTracking');
    if (!this.flags.dirtyTracking) {
      throw new IommuError('EOPNOTSUPP', `setDirtyTracking: domain ${this.id} was not allocated with dirty tracking`);
    }
    if (this.dirtyTracking === enable) return;
    this.dirtyTracking = enable;
    await this.host.refreshUsers(this);
    // Writable entries cached while tracking was off would let writes through without D.
    if (enable) await this.flushIotlbAll();
  }

  async readAndClearDirty(
    iova: number,
    size: number,
    flags: DirtyReadFlags,
    record: (iova: number, length: number) => void,
  ): Promise<void> {
    this.check('readAndClearDirty');
    if (!this.flags.dirtyTracking) {
      throw new IommuError('EOPNOTSUPP', `readAndClearDirty: domain ${this.id} was not allocated with dirty tracking`);
    }
    if (!this.dirtyTracking) throw new IommuError('EINVAL', `readAndClearDirty: dirty tracking is off on domain ${this.id}`);
    if (!Number.isSafeInteger(iova) || !Number.isSafeInteger(size) || iova % MOCK_PAGE_SIZE !== 0 || size % MOCK_PAGE_SIZE !== 0 || size <= 0) {
      throw new IommuError('EINVAL', `readAndClearDirty: [0x${iova.toString(16)}, +0x${size.toString(16)}) is not ${MOCK_PAGE_SIZE}-byte aligned`);
    }
    const cleared = this.table.readAndClearDirty(iova, size, flags.noClear === true, record);
    if (cleared > 0) await this.invalidateRange(iova, size / MOCK_PAGE_SIZE);
  }

  async free(): Promise<void> {
    this.check('free');
    if (this.users.size > 0 || this.nestedChildren > 0) {
      throw new IommuError('EBUSY', `domain ${this.id} is in use by ${this.users.size} device(s)/PASID(s) and ${this.nestedChildren} nested domain(s)`);
    }
    // Drop every cached translation before the DOMAIN_ID can be reused.
    await this.flushIotlbAll();
    this.freed = true;
    this.table.free();
    this.host.domainFreed(this);
  }
}
