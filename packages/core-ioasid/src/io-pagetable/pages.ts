/**
 * IoptPages: a run of user memory (a VA range of a process, or a byte range of a memfd) that
 * IOAS areas point at (drivers/iommu/iommufd/pages.c, struct iopt_pages).
 *
 * Kernel behaviour kept:
 * - Creating a pages object pins nothing. Pages are pinned only when something needs the PFNs:
 *   an area being mapped into an iommu_domain (the area "fills" its domains) or an ACCESS pinning
 *   a range. Without domains an IOAS_MAP is pure bookkeeping (fork_gone relies on it: a map of an
 *   exited process only fails once a domain is added).
 * - A CPU page is pinned once per pages object however many areas / domains / accesses use it
 *   (the kernel keeps one pin per page while any span in domains_itree / access_itree covers
 *   it); `users[i]` counts those spans here.
 * - Every newly pinned page is charged (RLIMIT_MEMLOCK, VmPin) once, to the process recorded at
 *   creation, with the account mode fixed at creation (iopt_alloc_pages / iopt_map_common).
 * - COPY shares the pages object between areas (kref), so pins and charges are shared.
 */
import { fail, IommufdError } from '../errors.js';
import { failpoint } from '../fail-nth.js';
import { PAGE_SIZE } from '../uapi/u64.js';
import { chargeMemlock, unchargeMemlock, type RlimitMode } from '../user-memory/accounting.js';
import type { Memfd } from '../user-memory/memfd.js';
import type { UserProcess } from '../user-memory/process.js';

/** Where a pages object's memory comes from (IOPT_ADDRESS_USER / IOPT_ADDRESS_FILE). */
export type PagesSource =
  | { readonly kind: 'user'; readonly process: UserProcess; /** page-aligned user VA */ readonly uptr: bigint }
  | { readonly kind: 'file'; readonly file: Memfd; /** page-aligned file offset */ readonly start: bigint };

/** A pinned-on-demand run of user pages shared by areas. */
export class IoptPages {
  readonly source: PagesSource;
  /** Number of CPU pages the object spans (`DIV_ROUND_UP(start_byte + length, PAGE_SIZE)`). */
  readonly npages: number;
  /** Mapped writable: pins ask for write access (FOLL_WRITE). */
  readonly writable: boolean;
  /** Accounting mode, fixed at creation. */
  accountMode: RlimitMode;
  /** The process charged for pins (`source_mm` / `source_user`; IOAS_CHANGE_PROCESS moves it). */
  accountProcess: UserProcess;
  /** kref: one per area pointing here plus transient holders (COPY lists). */
  refs = 1;
  /** PA of each pinned CPU page (valid where `users[i] > 0`). Allocated on first pin. */
  private frames: Float64Array | null = null;
  /** Pin users per page. */
  private users: Uint32Array | null = null;
  /** Pages currently pinned (and charged). */
  npinned = 0;
  /**
   * dma-buf pages whose exporter revoked them (`iopt_dmabuf_revoked`): never mapped into a domain
   * again (dmabuf.ts sets it and zaps the existing IOPTEs).
   */
  revoked = false;
  /** Called when the last reference goes (dmabuf.ts: the pages' hold on the dma-buf). */
  onRelease: (() => void) | null = null;

  constructor(source: PagesSource, npages: number, writable: boolean, accountMode: RlimitMode, accountProcess: UserProcess) {
    this.source = source;
    this.npages = npages;
    this.writable = writable;
    this.accountMode = accountMode;
    this.accountProcess = accountProcess;
  }

  /** The user VA (user pages) or file offset (file pages) of page `index`'s first byte, as a bigint. */
  addressOf(index: number): bigint {
    const base = this.source.kind === 'user' ? this.source.uptr : this.source.start;
    return base + BigInt(index) * BigInt(PAGE_SIZE);
  }

  /** `kref_get`. */
  get(): this {
    this.refs++;
    return this;
  }

  /** `iopt_put_pages`: drops a reference. The last one requires nothing pinned. */
  put(): void {
    if (--this.refs === 0 && this.npinned !== 0) {
      throw new Error(`IoptPages released with ${this.npinned} pages still pinned`);
    }
    if (this.refs === 0 && this.onRelease !== null) this.onRelease();
  }

  /** True when page `index` is pinned. */
  isPinned(index: number): boolean {
    return this.users !== null && this.users[index] > 0;
  }

  /** PA of pinned page `index` (-1 if not pinned). */
  pa(index: number): number {
    return this.users !== null && this.users[index] > 0 ? this.frames![index] : -1;
  }

  /** @internal the PA array (valid where pinned); for domain filling loops. */
  get frameArray(): Float64Array {
    return this.frames!;
  }

  /**
   * Adds a pin user to every page of `[first, last]` (inclusive page indices), pinning and
   * charging the pages that had none. All or nothing: on failure nothing changed.
   * @throws IommufdError EFAULT (unmapped memory, exited process), EPERM (write to read-only
   *   memory), EINVAL (file range beyond end of file), ENOMEM (RLIMIT_MEMLOCK).
   */
  pin(first: number, last: number): void {
    if (first < 0 || last >= this.npages || first > last) throw new Error(`IoptPages.pin: bad range [${first}, ${last}]`);
    failpoint(null, 'pages.pin'); // the pfn batch / xarray allocations of iopt_pages_fill
    if (this.users === null) {
      this.users = new Uint32Array(this.npages);
      this.frames = new Float64Array(this.npages);
    }
    const users = this.users;
    const frames = this.frames!;
    // Runs pinned so far, for the rollback: the first inline, the rest (rare) in an array.
    let run0 = -1;
    let run0n = 0;
    let more: number[] | null = null;
    let newly = 0;
    try {
      let i = first;
      while (i <= last) {
        if (users[i] > 0) {
          i++;
          continue;
        }
        let j = i;
        while (j < last && users[j + 1] === 0) j++;
        const n = j - i + 1;
        this.pinSource(i, n, frames); // writes frames[i .. i + n)
        try {
          chargeMemlock(this.accountMode, this.accountProcess, n);
        } catch (e) {
          this.unpinSource(frames, i, i + n);
          throw e;
        }
        if (run0 < 0) {
          run0 = i;
          run0n = n;
        } else (more ??= []).push(i, n);
        newly += n;
        i = j + 1;
      }
    } catch (e) {
      if (run0 >= 0) {
        this.unpinSource(frames, run0, run0 + run0n);
        unchargeMemlock(this.accountMode, this.accountProcess, run0n);
      }
      if (more !== null) {
        for (let d = 0; d < more.length; d += 2) {
          this.unpinSource(frames, more[d], more[d] + more[d + 1]);
          unchargeMemlock(this.accountMode, this.accountProcess, more[d + 1]);
        }
      }
      throw e;
    }
    for (let k = first; k <= last; k++) users[k]++;
    this.npinned += newly;
  }

  /** Drops a pin user from every page of `[first, last]`; pages left with none are unpinned and uncharged. */
  unpin(first: number, last: number): void {
    const users = this.users;
    const frames = this.frames;
    if (users === null || frames === null) throw new Error('IoptPages.unpin: nothing pinned');
    let runStart = -1;
    let freed = 0;
    for (let k = first; k <= last + 1; k++) {
      const drop = k <= last && --users[k] === 0;
      if (k <= last && users[k] === 0xffff_ffff) throw new Error(`IoptPages.unpin: page ${k} was not pinned`);
      if (drop) {
        if (runStart < 0) runStart = k;
      } else if (runStart >= 0) {
        this.unpinSource(frames, runStart, k);
        freed += k - runStart;
        runStart = -1;
      }
    }
    if (freed > 0) {
      unchargeMemlock(this.accountMode, this.accountProcess, freed);
      this.npinned -= freed;
    }
  }

  /** Pins pages `[index, index + n)` of the source, writing their PAs to `frames[index ..]`. */
  private pinSource(index: number, n: number, frames: Float64Array): void {
    const src = this.source;
    try {
      if (src.kind === 'user') {
        const addr = src.uptr + BigInt(index * PAGE_SIZE);
        if (addr > MAX_SAFE_N) fail('EFAULT', `pin: user address 0x${addr.toString(16)} is not mapped`);
        src.process.pin(Number(addr), n, this.writable, frames, index);
        return;
      }
      const off = src.start + BigInt(index * PAGE_SIZE);
      if (off > MAX_SAFE_N) fail('EINVAL', `pin: file offset 0x${off.toString(16)} is beyond the file`);
      src.file.pin(Number(off), n, this.writable, frames, index);
    } catch (e) {
      // A pin from a process whose mm is gone fails like get_user_pages on a dead mm: EFAULT.
      if (e instanceof IommufdError && e.errno === 'ESRCH') throw new IommufdError('EFAULT', e.message);
      throw e;
    }
  }

  /** Unpins the pages whose PAs are `frames[from .. to)`. */
  private unpinSource(frames: Float64Array, from: number, to: number): void {
    const src = this.source;
    if (src.kind === 'user') src.process.unpin(frames, from, to);
    else src.file.unpin(frames, from, to);
  }
}

const MAX_SAFE_N = BigInt(Number.MAX_SAFE_INTEGER);
const SIZE_MAX_MINUS_PAGE = (1n << 64n) - 1n - BigInt(PAGE_SIZE);
const SAFE = 1n << 52n;

/**
 * Validation shared by user and file pages (iopt_alloc_pages): `length` 0 or above
 * `SIZE_MAX - PAGE_SIZE` is EINVAL. Returns npages.
 */
export function pagesSpan(startByte: bigint, length: bigint): number {
  if (length === 0n || length > SIZE_MAX_MINUS_PAGE) {
    fail('EINVAL', `length 0x${length.toString(16)} is 0 or too large`);
  }
  if (length < SAFE && startByte < SAFE) return Math.ceil((Number(length) + Number(startByte)) / PAGE_SIZE);
  return Number((length + startByte + BigInt(PAGE_SIZE) - 1n) / BigInt(PAGE_SIZE));
}
