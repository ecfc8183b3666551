/**
 * IoPagetable: the IOVA → user memory map of one IOAS (drivers/iommu/iommufd/io_pagetable.c,
 * struct io_pagetable): areas, reserved ranges, allowed ranges, `iova_alignment`, and the list of
 * paging domains that mirror it (every area is mapped into every domain).
 *
 * Concurrency follows the kernel's two locks: the IOVA bookkeeping here is synchronous (the
 * `iova_rwsem` critical sections never await), and {@link RwSem} `domainsSem` is held for reading
 * by map / unmap across their domain I/O and for writing by addDomain / removeDomain. An area is
 * visible with `pages == null` while it is being created or destroyed.
 */
import { IotlbGather, Prot } from '@iommulab/driver-api';
import { fail } from '../errors.js';
import { failpoint } from '../fail-nth.js';
import { hex, PAGE_SIZE, PAGE_SIZE_N, ULONG_MAX, U64_MAX } from '../uapi/u64.js';
import type { RlimitMode } from '../user-memory/accounting.js';
import type { Memfd } from '../user-memory/memfd.js';
import type { UserProcess } from '../user-memory/process.js';
import { IoptArea } from './area.js';
import { mapAreaIntoDomain, unmapAreaFromDomain, type IoptDomain } from './domain-map.js';
import { DisjointIntervals, mergeSpans, SpanArray, spanHoles, type Interval } from './interval-set.js';
import { allocIova } from './iova-alloc.js';
import { IoptPages, pagesSpan } from './pages.js';
import { RwSem } from './rwsem.js';

/** One element of a pages list (`struct iopt_pages_list`): a byte slice of a pages object. */
export interface PagesSlice {
  readonly pages: IoptPages;
  /** Byte offset of the slice inside the pages object. */
  readonly startByte: bigint;
  readonly length: bigint;
}

/** A reserved IOVA range and who reserved it (`struct iopt_reserved`). */
export interface ReservedRange extends Interval {
  /** The owner: a domain, a device, or null for selftest reservations (IOMMU_TEST_OP_ADD_RESERVED). */
  readonly owner: unknown;
}

/** Result of {@link IoPagetable.lookup}: where an IOVA points. */
export interface IoptLookup {
  readonly area: IoptArea;
  readonly pages: IoptPages;
  /** CPU page index inside the pages object. */
  readonly index: number;
  /** Byte offset inside that CPU page. */
  readonly offset: number;
  /** User VA (user pages) or file offset (file pages) of the byte. */
  readonly address: bigint;
  /** Physical address of the byte if its page is pinned, else -1. */
  readonly pa: number;
}

/** A value, or a Promise of it when the operation had to wait (domain I/O, locks). */
export type MaybePromise<T> = T | Promise<T>;

/** IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE bits for an area. */
export type IommuProt = number;

/** `PAGE_MASK` as a u64. */
const PAGE_MASK_N = U64_MAX & ~(PAGE_SIZE_N - 1n);

/** IOAS_UNMAP of a range holding no area. */
function nothingMapped(iova: bigint, last: bigint): never {
  return fail('ENOENT', `nothing is mapped in [${hex(iova)}, ${hex(last)}]`);
}

/** Unmap gives up after this many rounds of asking accesses to drop their pins (the kernel WARNs). */
const MAX_ACCESS_TRIES = 100;

/** The IO page table of one IOAS. */
export class IoPagetable {
  /** Areas, ordered by IOVA (`area_itree`). */
  readonly areas = new DisjointIntervals<IoptArea>();
  /** Domains mirroring this table, in attach order (`domains` xarray). */
  readonly domains: IoptDomain[] = [];
  /** `domains_rwsem`. */
  readonly domainsSem = new RwSem();
  /**
   * Called by unmap for an area that accesses still pin (`iommufd_access_notify_unmap`); the
   * accesses must drop their pins in it. Set by the ACCESS implementation.
   */
  accessNotifyUnmap: ((iova: bigint, length: bigint) => void | Promise<void>) | null = null;

  private readonly reserved: ReservedRange[] = [];
  private reservedSpansCache: SpanArray | null = null;
  private allowed: Interval[] = [];
  private allowedSpans: Interval[] = [];
  private alignment = 1n;
  /** `alignment - 1n`, kept in step with it. */
  private alignMask = 0n;
  private largePagesDisabled = false;
  /** Alignment required by other users (accesses), by owner. */
  private readonly alignRequirements = new Map<unknown, bigint>();

  /** `iova_alignment`: IOVAs, lengths and user-VA page offsets must be multiples of it. */
  get iovaAlignment(): bigint {
    return this.alignment;
  }

  /** HUGE_PAGES option off: domains are filled page by page and alignment >= PAGE_SIZE. */
  get disableLargePages(): boolean {
    return this.largePagesDisabled;
  }

  /** Reserved ranges (a copy). */
  get reservedRanges(): ReservedRange[] {
    return this.reserved.map((r) => ({ ...r }));
  }

  /** Allowed ranges as set by ALLOW_IOVAS (a copy). */
  get allowedRanges(): Interval[] {
    return this.allowed.map((r) => ({ ...r }));
  }

  private get reservedSpans(): SpanArray {
    if (this.reservedSpansCache === null) this.reservedSpansCache = new SpanArray(mergeSpans(this.reserved));
    return this.reservedSpansCache;
  }

  private reservedIntersects(start: bigint, last: bigint): boolean {
    for (const r of this.reserved) if (r.start <= last && r.last >= start) return true;
    return false;
  }

  private allowedIntersects(start: bigint, last: bigint): boolean {
    for (const r of this.allowed) if (r.start <= last && r.last >= start) return true;
    return false;
  }

  // ------------------------------------------------------------------ map

  /**
   * `iopt_map_user_pages`: maps `length` bytes of `process` memory at `userVa`. `iova` null asks
   * for automatic placement. Pins only if domains exist. Returns the IOVA.
   */
  mapUser(o: {
    process: UserProcess;
    accountMode: RlimitMode;
    userVa: bigint;
    length: bigint;
    prot: IommuProt;
    iova: bigint | null;
  }): MaybePromise<bigint> {
    // iopt_alloc_user_pages
    if (o.userVa + o.length > U64_MAX) fail('EOVERFLOW', `user_va ${hex(o.userVa)} + length ${hex(o.length)} overflows`);
    const uptr = o.userVa & PAGE_MASK_N;
    const startByte = o.userVa - uptr;
    const npages = pagesSpan(startByte, o.length);
    failpoint(null, 'iopt.pages_alloc');
    const pages = new IoptPages({ kind: 'user', process: o.process, uptr }, npages, (o.prot & Prot.WRITE) !== 0, o.accountMode, o.process);
    return this.mapPages([{ pages, startByte, length: o.length }], o.length, o.iova, o.prot);
  }

  /** `iopt_map_file_pages`: maps `[start, start + length)` of `file`. */
  mapFile(o: {
    file: Memfd;
    process: UserProcess;
    accountMode: RlimitMode;
    start: bigint;
    length: bigint;
    prot: IommuProt;
    iova: bigint | null;
  }): MaybePromise<bigint> {
    // iopt_alloc_file_pages
    if (o.length !== 0n && o.start + o.length - 1n > U64_MAX) fail('EOVERFLOW', `start ${hex(o.start)} + length ${hex(o.length)} overflows`);
    const startDown = o.start & PAGE_MASK_N;
    const startByte = o.start - startDown;
    const npages = pagesSpan(startByte, o.length);
    failpoint(null, 'iopt.pages_alloc');
    const pages = new IoptPages({ kind: 'file', file: o.file, start: startDown }, npages, (o.prot & Prot.WRITE) !== 0, o.accountMode, o.process);
    return this.mapPages([{ pages, startByte, length: o.length }], o.length, o.iova, o.prot);
  }

  /** `iopt_check_iova`: a fixed IOVA must be aligned, not overflow, avoid reserved ranges and areas. */
  private checkIova(iova: bigint, length: bigint): bigint {
    if ((iova & this.alignMask) !== 0n) fail('EINVAL', `iova ${hex(iova)} is not aligned to ${this.alignment}`);
    const last = iova + length - 1n;
    if (last > U64_MAX) fail('EOVERFLOW', `iova ${hex(iova)} + length ${hex(length)} overflows`);
    if (this.reserved.length !== 0 && this.reservedIntersects(iova, last)) fail('EINVAL', `[${hex(iova)}, ${hex(last)}] intersects a reserved range`);
    if (this.areas.firstIntersecting(iova, last) !== undefined) fail('EEXIST', `[${hex(iova)}, ${hex(last)}] intersects an existing mapping`);
    return last;
  }

  /**
   * `iopt_map_pages`: creates one area per slice, contiguous from `dstIova` (or an automatically
   * allocated IOVA when null), fills every domain, then publishes the areas. Takes over the
   * caller's reference on every slice's pages (released on failure). Returns the IOVA —
   * synchronously when no domain I/O is needed, else a Promise. Errors may be thrown
   * synchronously.
   */
  mapPages(list: readonly PagesSlice[], length: bigint, dstIova: bigint | null, prot: IommuProt): MaybePromise<bigint> {
    if (list.length === 1 && dstIova !== null && this.domains.length === 0) {
      const r = this.mapOneFixed(list[0], length, dstIova, prot);
      if (r !== null) return r;
    }
    const created: IoptArea[] = [];
    let iova: bigint;
    try {
      // iopt_alloc_area_pages
      if ((length & this.alignMask) !== 0n || length === 0n) {
        fail('EINVAL', `length ${hex(length)} is 0 or not a multiple of the IOAS alignment ${this.alignment}`);
      }
      if (dstIova === null) {
        const first = list[0];
        iova = allocIova(
          { allowedSpans: this.allowedSpans, used: [this.reservedSpans, this.areas], iovaAlignment: this.alignment },
          first.pages.addressOf(0) + first.startByte,
          length,
        );
      } else {
        this.checkIova(dstIova, length);
        iova = dstIova;
      }
      let cur = iova;
      for (const elm of list) {
        // iopt_insert_area
        if ((prot & Prot.WRITE) !== 0 && !elm.pages.writable) fail('EPERM', 'writable mapping of pages that are not writable');
        const last = cur + elm.length - 1n;
        if (last > U64_MAX) fail('EOVERFLOW', `iova ${hex(cur)} + length ${hex(elm.length)} overflows`);
        failpoint(null, 'iopt.area_alloc');
        const area = new IoptArea(cur, last, elm.pages, elm.startByte, prot);
        if (this.alignment !== 1n && (BigInt(area.pageOffset) & this.alignMask) !== 0n) {
          fail('EINVAL', `user address page offset ${area.pageOffset} is not a multiple of the IOAS alignment ${this.alignment}`);
        }
        this.areas.insert(area);
        created.push(area);
        cur = last + 1n;
      }
    } catch (e) {
      this.abortMap(created, list);
      throw e;
    }
    // Fast path: nobody adding a domain: fill the domains synchronously as far as they let us
    // (the IOPTEs are written synchronously; only an iotlbSyncMap or a failure has to be awaited).
    if (this.domainsSem.tryRead()) {
      if (this.domains.length !== 0) {
        for (let i = 0; i < created.length; i++) {
          const r = this.fillAreaDomains(created[i]);
          if (r !== undefined) return this.fillRest(created, list, iova, i, r);
        }
      }
      for (let i = 0; i < created.length; i++) created[i].pages = list[i].pages;
      this.domainsSem.upRead();
      return iova;
    }
    return this.fillAndPublish(created, list, iova);
  }

  /**
   * The common case of {@link mapPages} (one slice, fixed IOVA, no domain) with fewer
   * allocations; same checks in the same order. Returns null if the fast path does not apply
   * after all (someone holds the domains lock for writing): nothing was changed then.
   */
  private mapOneFixed(elm: PagesSlice, length: bigint, iova: bigint, prot: IommuProt): bigint | null {
    let area: IoptArea | null = null;
    try {
      if ((length & this.alignMask) !== 0n || length === 0n) {
        fail('EINVAL', `length ${hex(length)} is 0 or not a multiple of the IOAS alignment ${this.alignment}`);
      }
      const last = this.checkIova(iova, length);
      if ((prot & Prot.WRITE) !== 0 && !elm.pages.writable) fail('EPERM', 'writable mapping of pages that are not writable');
      failpoint(null, 'iopt.area_alloc');
      area = new IoptArea(iova, last, elm.pages, elm.startByte, prot);
      if (this.alignment !== 1n && (BigInt(area.pageOffset) & this.alignMask) !== 0n) {
        fail('EINVAL', `user address page offset ${area.pageOffset} is not a multiple of the IOAS alignment ${this.alignment}`);
      }
    } catch (e) {
      elm.pages.put();
      throw e;
    }
    if (!this.domainsSem.tryRead()) return null;
    this.areas.insert(area);
    area.pages = elm.pages;
    this.domainsSem.upRead();
    return iova;
  }

  /** Undoes a failed map: removes the areas, drops the slices' references (`iopt_free_pages_list`). */
  private abortMap(created: readonly IoptArea[], list: readonly PagesSlice[]): void {
    for (const a of created) this.areas.delete(a);
    for (const elm of list) elm.pages.put();
  }

  /** The domain part of `iopt_map_pages`: fill every domain (all or nothing), then publish. */
  private async fillAndPublish(created: IoptArea[], list: readonly PagesSlice[], iova: bigint): Promise<bigint> {
    if (!this.domainsSem.tryRead()) await this.domainsSem.read();
    if (this.domains.length === 0) {
      for (let i = 0; i < created.length; i++) created[i].pages = list[i].pages;
      this.domainsSem.upRead();
      return iova;
    }
    return this.fillRest(created, list, iova, -1, undefined);
  }

  /**
   * The rest of {@link fillAndPublish}, entered with `domainsSem` held for reading, areas
   * `created[0 .. i)` filled and `pending` the fill of `created[i]` still in flight (i = -1:
   * nothing started). iopt_fill_domains_pages: all or nothing. Releases the lock.
   */
  private async fillRest(created: IoptArea[], list: readonly PagesSlice[], iova: bigint, i: number, pending: undefined | Promise<void>): Promise<bigint> {
    let published = false;
    try {
      try {
        for (;;) {
          if (pending !== undefined) {
            try {
              await pending;
            } catch (e) {
              for (let j = 0; j < i; j++) await this.unfillAreaDomains(created[j]);
              throw e;
            }
          }
          if (++i >= created.length) break;
          pending = this.fillAreaDomains(created[i]);
        }
        for (let k = 0; k < created.length; k++) created[k].pages = list[k].pages;
        published = true;
      } finally {
        this.domainsSem.upRead();
      }
      return iova;
    } finally {
      if (!published) this.abortMap(created, list);
    }
  }

  /**
   * Pins `area` and maps it into every domain (`iopt_area_fill_domains`); all or nothing.
   * Synchronous (undefined) unless a domain has something to wait for; never throws synchronously.
   */
  private fillAreaDomains(area: IoptArea): undefined | Promise<void> {
    const pages = area.pagesRef;
    try {
      pages.pin(area.firstIndex, area.lastIndex);
    } catch (e) {
      return Promise.reject(e);
    }
    area.filled = true;
    const domains = this.domains;
    for (let i = 0; i < domains.length; i++) {
      const r = mapAreaIntoDomain(domains[i], area, this.largePagesDisabled);
      if (r !== undefined) return this.fillAreaDomainsFrom(area, i, r);
    }
    return undefined;
  }

  /** {@link fillAreaDomains} from domain `i`, whose map `pending` is in flight. */
  private async fillAreaDomainsFrom(area: IoptArea, i: number, pending: Promise<void>): Promise<void> {
    try {
      for (;;) {
        await pending;
        if (++i >= this.domains.length) return;
        pending = mapAreaIntoDomain(this.domains[i], area, this.largePagesDisabled) ?? Promise.resolve();
      }
    } catch (e) {
      for (let j = 0; j < i; j++) {
        const g = new IotlbGather();
        unmapAreaFromDomain(this.domains[j], area, g);
        await this.domains[j].iotlbSync(g);
      }
      area.filled = false;
      area.pagesRef.unpin(area.firstIndex, area.lastIndex);
      throw e;
    }
  }

  /** Unmaps `area` from every domain, flushes, then unpins (`iopt_area_unfill_domains`). */
  private async unfillAreaDomains(area: IoptArea): Promise<void> {
    if (!area.filled) return;
    const domains = this.domains;
    for (let i = 0; i < domains.length; i++) {
      const d = domains[i];
      const g = new IotlbGather();
      unmapAreaFromDomain(d, area, g);
      await d.iotlbSync(g); // the IOTLB is clean before the pages are unpinned
    }
    area.filled = false;
    area.pagesRef.unpin(area.firstIndex, area.lastIndex);
  }

  // ------------------------------------------------------------------ copy

  /**
   * `iopt_get_pages`: the pages slices covering `[iova, iova + length)`, which must be covered by
   * contiguous, fully created areas (any sub-range, at any byte offset). Each slice holds a
   * reference on its pages. `EINVAL` for length 0, `EOVERFLOW`, `ENOENT` for a hole.
   */
  getPages(iova: bigint, length: bigint): PagesSlice[] {
    if (length === 0n) fail('EINVAL', 'length is 0');
    const last = iova + length - 1n;
    if (last > U64_MAX) fail('EOVERFLOW', `iova ${hex(iova)} + length ${hex(length)} overflows`);
    const out: PagesSlice[] = [];
    let area = this.areas.containing(iova);
    let cur = iova;
    let done = false;
    while (area !== undefined && area.pages !== null && area.start <= cur) {
      const l = last < area.last ? last : area.last;
      try {
        failpoint(null, 'iopt.pages_list');
      } catch (e) {
        for (const s of out) s.pages.put();
        throw e;
      }
      out.push({ pages: area.pages.get(), startByte: area.startByte(cur), length: l - cur + 1n });
      if (last <= area.last) {
        done = true;
        break;
      }
      cur = area.last + 1n;
      const n = this.areas.next(area);
      area = n !== undefined && n.start === cur ? n : undefined;
    }
    if (!done) {
      for (const s of out) s.pages.put();
      fail('ENOENT', `[${hex(iova)}, ${hex(last)}] is not fully mapped`);
    }
    return out;
  }

  // ------------------------------------------------------------------ unmap

  /**
   * `iopt_unmap_iova` + the IOAS_UNMAP rule that nothing unmapped is `ENOENT`: removes every area
   * inside `[iova, iova + length)`; an area sticking out is `ENOENT`, one being created/destroyed
   * or locked `EBUSY`. Areas before an offending one stay removed (the kernel is not atomic here).
   * Returns the bytes unmapped.
   */
  unmap(iova: bigint, length: bigint): MaybePromise<bigint> {
    if (length === 0n) fail('EINVAL', 'length is 0');
    const last = iova + length - 1n;
    if (last > U64_MAX) fail('EOVERFLOW', `iova ${hex(iova)} + length ${hex(length)} overflows`);
    const n = this.unmapRange(iova, last);
    if (typeof n === 'bigint') return n === 0n ? nothingMapped(iova, last) : n;
    return n.then((v) => (v === 0n ? nothingMapped(iova, last) : v));
  }

  /** `iopt_unmap_all`: removes every area; succeeds (0) on an empty table. */
  unmapAll(): MaybePromise<bigint> {
    return this.unmapRange(0n, ULONG_MAX);
  }

  /**
   * `iopt_unmap_iova_range`. Fast path (nobody adding / removing a domain): areas no domain holds
   * are removed synchronously; at the first area that domains hold (its IOTLB sync must be
   * awaited before the unpin) or that accesses pin, it continues asynchronously from there.
   */
  private unmapRange(start: bigint, last: bigint): MaybePromise<bigint> {
    if (!this.domainsSem.tryRead()) return this.unmapRangeSlow(start, last, 0n, null);
    if (this.domains.length === 0) return this.unmapRangeFast(start, last);
    // With domains the unmap has always been asynchronous: its errors are rejections
    // (vfio-type1's withSizeOut relies on it).
    try {
      return this.unmapRangeFast(start, last);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** {@link unmapRange} entered with `domainsSem` held for reading (released or handed over). */
  private unmapRangeFast(start: bigint, last: bigint): MaybePromise<bigint> {
    let unmapped = 0n;
    let handOver: IoptArea | null = null;
    let slow = false;
    try {
      for (;;) {
        const area = this.areas.firstIntersecting(start, last);
        if (area === undefined) break;
        this.checkUnmappable(area, start, last);
        if (area.numAccesses > 0) {
          slow = true;
          break;
        }
        if (area.filled) {
          handOver = area; // unmapRangeSlow takes it (and the lock) from here
          break;
        }
        const pages = area.pages!;
        area.pages = null;
        this.areas.delete(area);
        pages.put();
        unmapped += area.last - area.start + 1n;
      }
    } finally {
      if (handOver === null) this.domainsSem.upRead();
    }
    if (handOver !== null) return this.unmapRangeSlow(start, last, unmapped, handOver);
    return slow ? this.unmapRangeSlow(start, last, unmapped, null) : unmapped;
  }

  /** The per-area checks of `iopt_unmap_iova_range`. */
  private checkUnmappable(area: IoptArea, start: bigint, last: bigint): void {
    if (area.pages === null) fail('EBUSY', `area [${hex(area.start)}, ${hex(area.last)}] is being created or destroyed`);
    if (area.numLocks > 0) fail('EBUSY', `area [${hex(area.start)}, ${hex(area.last)}] is locked`);
    if (area.start < start || area.last > last) {
      fail('ENOENT', `area [${hex(area.start)}, ${hex(area.last)}] is not inside [${hex(start)}, ${hex(last)}] (no splitting)`);
    }
  }

  /**
   * The asynchronous rest of {@link unmapRange}. With `held` non-null the caller holds
   * `domainsSem` for reading and `held` (checked, filled by domains, no access pins) is the
   * first area to remove.
   */
  private async unmapRangeSlow(start: bigint, last: bigint, already: bigint, held: IoptArea | null): Promise<bigint> {
    let unmapped = already;
    let tries = 0;
    let s = start;
    for (;;) {
      if (held === null && !this.domainsSem.tryRead()) await this.domainsSem.read();
      let retry = false;
      try {
        if (held !== null) {
          const area = held;
          held = null;
          const pages = area.pages!;
          area.pages = null;
          await this.unfillAreaDomains(area);
          this.areas.delete(area);
          pages.put();
          unmapped += area.last - area.start + 1n;
        }
        for (;;) {
          const area = this.areas.firstIntersecting(s, last);
          if (area === undefined) break;
          this.checkUnmappable(area, s, last);
          if (area.start !== s) tries = 0;
          if (area.numAccesses > 0) {
            s = area.start;
            area.preventAccess = true;
            retry = true;
            break;
          }
          const pages = area.pages!;
          area.pages = null;
          if (area.filled) await this.unfillAreaDomains(area);
          this.areas.delete(area);
          pages.put();
          unmapped += area.last - area.start + 1n;
        }
      } finally {
        this.domainsSem.upRead();
      }
      if (!retry) return unmapped;
      const area = this.areas.containing(s)!;
      if (this.accessNotifyUnmap !== null) await this.accessNotifyUnmap(area.start, area.length);
      if (++tries > MAX_ACCESS_TRIES) fail('EBUSY', `accesses do not release their pins at ${hex(area.start)}`);
    }
  }

  // ------------------------------------------------------------------ ranges

  /** IOVA_RANGES: the holes of the reserved ranges over `[0, ULONG_MAX]`, ascending. */
  iovaRanges(): Interval[] {
    const out: Interval[] = [];
    spanHoles([this.reservedSpans], 0n, ULONG_MAX, (start, last) => {
      out.push({ start, last });
      return false;
    });
    return out;
  }

  /**
   * ALLOW_IOVAS (`iommufd_ioas_load_iovas` + `iopt_set_allow_iova`): replaces the allowed list
   * atomically; empty clears it. `EINVAL` for `start >= last` or ranges overlapping each other,
   * `EADDRINUSE` when one intersects a reserved range (old list kept).
   */
  setAllowedIovas(ranges: readonly Interval[]): void {
    const next: Interval[] = [];
    for (const r of ranges) {
      if (r.start >= r.last) fail('EINVAL', `allowed range [${hex(r.start)}, ${hex(r.last)}]: start must be below last`);
      for (const o of next) {
        if (o.start <= r.last && o.last >= r.start) fail('EINVAL', `allowed range [${hex(r.start)}, ${hex(r.last)}] overlaps another`);
      }
      failpoint(null, 'iopt.allowed_alloc');
      next.push({ start: r.start, last: r.last });
    }
    for (const r of next) {
      if (this.reservedIntersects(r.start, r.last)) fail('EADDRINUSE', `allowed range [${hex(r.start)}, ${hex(r.last)}] intersects a reserved range`);
    }
    next.sort((a, b) => (a.start < b.start ? -1 : 1));
    this.allowed = next;
    this.allowedSpans = mergeSpans(next);
  }

  /**
   * `iopt_reserve_iova`: reserves `[start, last]` for `owner`. `EADDRINUSE` if it intersects an
   * area or an allowed range. Reserved ranges of different owners may overlap.
   */
  addReservedRange(owner: unknown, start: bigint, last: bigint): void {
    if (start > last) fail('EINVAL', `reserved range [${hex(start)}, ${hex(last)}] is empty`);
    if (this.areas.firstIntersecting(start, last) !== undefined || this.allowedIntersects(start, last)) {
      fail('EADDRINUSE', `reserved range [${hex(start)}, ${hex(last)}] intersects a mapping or an allowed range`);
    }
    failpoint(null, 'iopt.reserved_alloc');
    this.reserved.push({ start, last, owner });
    this.reservedSpansCache = null;
  }

  /** `iopt_remove_reserved_iova`: drops every reserved range of `owner`. */
  removeReservedOwner(owner: unknown): void {
    let w = 0;
    for (const r of this.reserved) if (r.owner !== owner) this.reserved[w++] = r;
    if (w !== this.reserved.length) {
      this.reserved.length = w;
      this.reservedSpansCache = null;
    }
  }

  // ------------------------------------------------------------------ alignment

  private setAlignment(a: bigint): void {
    this.alignment = a;
    this.alignMask = a - 1n;
  }

  /** `iopt_check_iova_alignment`: every area's IOVA, length and page offset must be multiples of `align`. */
  private checkAlignment(align: bigint): void {
    const mask = align - 1n;
    for (const a of this.areas) {
      if ((a.start & mask) !== 0n || ((a.last - a.start + 1n) & mask) !== 0n || (BigInt(a.pageOffset) & mask) !== 0n) {
        fail('EADDRINUSE', `area [${hex(a.start)}, ${hex(a.last)}] is not aligned to ${align}`);
      }
    }
  }

  /** `iopt_calculate_iova_alignment`. */
  private calculateAlignment(): void {
    let next = this.largePagesDisabled ? PAGE_SIZE_N : 1n;
    for (const d of this.domains) {
      const m = BigInt(Math.min(...d.pageSizes));
      if (m > next) next = m;
    }
    for (const a of this.alignRequirements.values()) if (a > next) next = a;
    if (next > this.alignment) this.checkAlignment(next);
    this.setAlignment(next);
  }

  /**
   * Sets (or with null clears) the IOVA alignment `owner` requires (an ACCESS's
   * `iova_alignment`, `iopt_add_access` / `iopt_remove_access`) and recomputes the IOAS
   * alignment. `EADDRINUSE` (nothing changed) if existing areas violate the new alignment.
   */
  setAlignmentRequirement(owner: unknown, align: bigint | number | null): void {
    const had = this.alignRequirements.has(owner);
    const old = this.alignRequirements.get(owner);
    if (align === null) this.alignRequirements.delete(owner);
    else this.alignRequirements.set(owner, BigInt(align));
    try {
      this.calculateAlignment();
    } catch (e) {
      if (had) this.alignRequirements.set(owner, old!);
      else this.alignRequirements.delete(owner);
      throw e;
    }
  }

  /**
   * `iopt_disable_large_pages` (HUGE_PAGES = 0): `EINVAL` when domains exist and areas exist,
   * `EADDRINUSE` when areas are not PAGE_SIZE aligned.
   */
  async setLargePagesDisabled(disable: boolean): Promise<void> {
    await this.domainsSem.write();
    try {
      if (!disable) {
        // iopt_enable_large_pages: lowering the alignment cannot fail.
        this.largePagesDisabled = false;
        this.calculateAlignment();
        return;
      }
      if (this.largePagesDisabled) return;
      if (this.domains.length > 0 && this.areas.size > 0) fail('EINVAL', 'cannot disable huge pages while domains hold mappings');
      this.largePagesDisabled = true;
      try {
        this.calculateAlignment();
      } catch (e) {
        this.largePagesDisabled = false;
        throw e;
      }
    } finally {
      this.domainsSem.upWrite();
    }
  }

  // ------------------------------------------------------------------ domains

  /**
   * `iopt_table_add_domain`: the domain's smallest page size must be <= PAGE_SIZE (`EINVAL`) and
   * every area aligned to it (`EADDRINUSE`); everything outside its aperture is reserved for it
   * (`EADDRINUSE` if an area or allowed range is there); then every area is pinned (if this is
   * the first domain) and mapped into it with the largest page sizes alignment allows. All or
   * nothing.
   */
  async addDomain(domain: IoptDomain): Promise<void> {
    await this.domainsSem.write();
    try {
      if (this.domains.includes(domain)) fail('EEXIST', 'domain is already attached to this IOAS');
      const minPg = BigInt(Math.min(...domain.pageSizes));
      const newAlign = minPg > this.alignment ? minPg : this.alignment;
      if (newAlign > PAGE_SIZE_N) fail('EINVAL', `domain page size ${minPg} is larger than PAGE_SIZE`);
      if (newAlign !== this.alignment) this.checkAlignment(newAlign);
      try {
        const apStart = BigInt(domain.aperture.start);
        const apLast = BigInt(domain.aperture.last);
        if (apStart !== 0n) this.addReservedRange(domain, 0n, apStart - 1n);
        if (apLast !== ULONG_MAX) this.addReservedRange(domain, apLast + 1n, ULONG_MAX);
        await this.fillDomain(domain);
      } catch (e) {
        this.removeReservedOwner(domain);
        throw e;
      }
      this.setAlignment(newAlign);
      this.domains.push(domain);
    } finally {
      this.domainsSem.upWrite();
    }
  }

  /** `iopt_fill_domain`: maps every published area into `domain`; on failure undoes everything. */
  private async fillDomain(domain: IoptDomain): Promise<void> {
    const areas = this.areas.toArray().filter((a) => a.pages !== null);
    const firstDomain = this.domains.length === 0;
    let i = 0;
    try {
      for (; i < areas.length; i++) {
        const area = areas[i];
        if (firstDomain) {
          area.pagesRef.pin(area.firstIndex, area.lastIndex);
          area.filled = true;
        }
        try {
          await mapAreaIntoDomain(domain, area, this.largePagesDisabled);
        } catch (e) {
          if (firstDomain) {
            area.filled = false;
            area.pagesRef.unpin(area.firstIndex, area.lastIndex);
          }
          throw e;
        }
      }
    } catch (e) {
      const g = new IotlbGather();
      for (let j = 0; j < i; j++) unmapAreaFromDomain(domain, areas[j], g);
      await domain.iotlbSync(g);
      if (firstDomain) {
        for (let j = 0; j < i; j++) {
          areas[j].filled = false;
          areas[j].pagesRef.unpin(areas[j].firstIndex, areas[j].lastIndex);
        }
      }
      throw e;
    }
  }

  /**
   * `iopt_table_remove_domain`: unmaps every area from `domain` (flushing its IOTLB), unpins
   * everything if it was the last domain, drops its reserved ranges and lowers the alignment.
   */
  async removeDomain(domain: IoptDomain): Promise<void> {
    await this.domainsSem.write();
    try {
      const idx = this.domains.indexOf(domain);
      if (idx < 0) throw new Error('removeDomain: domain is not attached to this IOAS');
      this.domains.splice(idx, 1);
      const last = this.domains.length === 0;
      const areas = this.areas.toArray().filter((a) => a.pages !== null);
      const g = new IotlbGather();
      for (const a of areas) unmapAreaFromDomain(domain, a, g);
      await domain.iotlbSync(g);
      if (last) {
        for (const a of areas) {
          if (!a.filled) continue;
          a.filled = false;
          a.pagesRef.unpin(a.firstIndex, a.lastIndex);
        }
      }
      this.removeReservedOwner(domain);
      this.calculateAlignment();
    } finally {
      this.domainsSem.upWrite();
    }
  }

  // ------------------------------------------------------------------ inspection

  /** Where `iova` points (for tests and the ACCESS rw path); undefined if unmapped. */
  lookup(iova: bigint | number): IoptLookup | undefined {
    const x = BigInt(iova);
    const area = this.areas.containing(x);
    if (area === undefined || area.pages === null) return undefined;
    const byte = area.startByte(x);
    const index = Number(byte / PAGE_SIZE_N);
    const offset = Number(byte % PAGE_SIZE_N);
    const pages = area.pages;
    const pa = pages.pa(index);
    return { area, pages, index, offset, address: pages.addressOf(index) + BigInt(offset), pa: pa < 0 ? -1 : pa + offset };
  }

  /** `iopt_destroy_table` (after the IOAS's unmap-all): forgets test reservations and allowed ranges. */
  async destroy(): Promise<void> {
    await this.unmapAll();
    this.removeReservedOwner(null);
    this.allowed = [];
    this.allowedSpans = [];
  }
}
