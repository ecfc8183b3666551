/**
 * The ACCESS object (drivers/iommu/iommufd/device.c: iommufd_access_create / _attach / _replace /
 * _destroy / _pin_pages / _unpin_pages / _rw / iommufd_access_notify_unmap; io_pagetable.c:
 * iopt_add_access / iopt_remove_access; pages.c: iopt_area_add_access / iopt_area_remove_access /
 * iopt_pages_rw_access).
 *
 * An ACCESS lets in-kernel code (an emulated / mdev device; the selftest's access fd) use an IOAS
 * without an IOMMU: pin the pages under an IOVA range and get their physical addresses, or copy
 * bytes to / from the IOAS with the CPU.
 *
 * Kernel behaviour kept:
 * - The object sits in the context's table (its id is reserved like any object) with one extra
 *   `users` for its owner until {@link accessDestroy}: IOMMU_DESTROY of it answers `EBUSY`. While
 *   attached it holds a `users` reference on its IOAS, so DESTROY(ioas) answers `EBUSY`.
 * - Attaching adds the access's `iova_alignment` (PAGE_SIZE for owners that pin pages, else 1) to
 *   the IOAS alignment (`EADDRINUSE` if existing areas violate it); detaching removes it.
 * - Changing IOAS (replace, detach, destroy) first calls the owner's `unmap(0, ULONG_MAX)`, which
 *   must drop every pin, then leaves the old IOAS. Pins made on the old IOAS are unpinned against
 *   it (`ioas_unpin`) even while the change is in progress.
 * - Unmapping an area an access pins calls every access's `unmap(iova, length)` callback of that
 *   IOAS (`iommufd_access_notify_unmap`); the owner must unpin, then the unmap proceeds. While
 *   the unmap waits, new pins / rw on the area answer `EINVAL` (`prevent_access`).
 * - A pin covers contiguous areas; the first IOVA must be page aligned in its pages and every area
 *   boundary inside the range must fall on a page boundary (`EINVAL`); a hole is `ENOENT`; a
 *   write pin of a read-only area or pages is `EPERM`. A page is pinned once per pages object
 *   whoever uses it (domains, accesses), so pins are shared and charged once.
 * - rw: the fast path copies with the CPU through the source process's address space (when the
 *   caller is that process); the slow path (another process, memfd pages, or the selftest's
 *   `__IOMMUFD_ACCESS_RW_SLOW_PATH`) uses the pinned physical pages where there are some and
 *   otherwise pins each page for the copy. Both are byte exact across page boundaries.
 *
 * Model-only behaviour (the kernel WARNs instead): unpinning a range that was not pinned by this
 * access with the same iova / length answers `EINVAL`; pins still held after the owner's unmap
 * callback when the access leaves an IOAS are dropped by force; pinning needs an owner with
 * `needsPinPages` and an `unmap` callback (`EINVAL`, the kernel checks it under CONFIG_IOMMUFD_TEST).
 */
import { Prot } from '@iommulab/driver-api';
import type { IommufdCtx } from './context.js';
import { fail, IommufdError } from './errors.js';
import { failpoint } from './fail-nth.js';
import type { IoptArea } from './io-pagetable/area.js';
import type { IoPagetable } from './io-pagetable/io-pagetable.js';
import type { IoptPages } from './io-pagetable/pages.js';
import { getIoas, type Ioas } from './ioas.js';
import { IommufdObject } from './object-table.js';
import { hex, PAGE_SIZE, PAGE_SIZE_N, u32, u64, U64_MAX, ULONG_MAX } from './uapi/u64.js';
import type { UserProcess } from './user-memory/process.js';

/** `IOMMUFD_ACCESS_RW_READ` (include/linux/iommufd.h). */
export const IOMMUFD_ACCESS_RW_READ = 0;
/** `IOMMUFD_ACCESS_RW_WRITE`: write to the IOAS (and pin for writing). */
export const IOMMUFD_ACCESS_RW_WRITE = 1 << 0;
/** `IOMMUFD_ACCESS_RW_KTHREAD`: the caller is a kthread; rw may borrow the source mm. */
export const IOMMUFD_ACCESS_RW_KTHREAD = 1 << 1;
/** `__IOMMUFD_ACCESS_RW_SLOW_PATH` (selftest only): force the slow rw path. */
export const IOMMUFD_ACCESS_RW_SLOW_PATH = 1 << 2;

/** The owner's side of an access (`struct iommufd_access_ops`). */
export interface IommufdAccessOps {
  /** `needs_pin_pages`: the owner pins pages (the access requires PAGE_SIZE IOVA alignment). */
  needsPinPages?: boolean;
  /**
   * `unmap`: `[iova, iova + length - 1]` is going away (or the access leaves its IOAS:
   * `(0, ULONG_MAX)`); the owner must unpin every pin intersecting it before returning.
   */
  unmap?: (iova: bigint, length: bigint) => void | Promise<void>;
}

/** One pinned range of an access (model bookkeeping for unpin checks and forced cleanup). */
interface PinnedRange {
  readonly iova: bigint;
  readonly length: bigint;
}

/** An in-kernel access to an IOAS (`struct iommufd_access`). */
export class IommufdAccess extends IommufdObject {
  readonly type = 'access' as const;
  /** The context. */
  readonly ctx: IommufdCtx;
  /** The owner's callbacks. */
  readonly ops: IommufdAccessOps;
  /** `iova_alignment`: PAGE_SIZE for owners that pin pages, else 1. */
  readonly iovaAlignment: bigint;
  /** The IOAS pins and rw go to (null while detached or changing IOAS). */
  ioas: Ioas | null = null;
  /** The IOAS unpins go to (`ioas_unpin`; stays set while the access changes IOAS). */
  ioasUnpin: Ioas | null = null;
  /** Pins not yet unpinned, in pin order (duplicates allowed). */
  readonly pins: PinnedRange[] = [];
  /** The owner called {@link accessDestroy}. */
  ownerGone = false;
  /** `ioas_lock`: serializes IOAS changes. */
  private lockTail: Promise<void> = Promise.resolve();

  constructor(ctx: IommufdCtx, ops: IommufdAccessOps) {
    super();
    this.ctx = ctx;
    this.ops = ops;
    this.iovaAlignment = ops.needsPinPages ? PAGE_SIZE_N : 1n;
  }

  /** @internal runs `f` under `ioas_lock`. */
  async locked<T>(f: () => Promise<T>): Promise<T> {
    const prev = this.lockTail;
    let release!: () => void;
    this.lockTail = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await f();
    } finally {
      release();
    }
  }

  /** `iommufd_access_destroy_object`: leaves the IOAS (the owner's unmap runs first). */
  async destroy(): Promise<void> {
    untrack(this);
    if (this.ioas !== null || this.ioasUnpin !== null) await this.locked(() => changeIoas(this, null));
  }
}

// ---------------------------------------------------------------------------- per-IOAS access list

/** `iopt->access_list`, per io_pagetable, in attach order. */
const accessLists = new WeakMap<IoPagetable, Set<IommufdAccess>>();
/** Live accesses per context (released when the context closes). */
const ctxAccesses = new WeakMap<IommufdCtx, Set<IommufdAccess>>();

function track(access: IommufdAccess): void {
  let set = ctxAccesses.get(access.ctx);
  if (set === undefined) {
    set = new Set();
    ctxAccesses.set(access.ctx, set);
  }
  access.ctx.objects.beforeClose.add(closeHook(access.ctx));
  set.add(access);
}

function untrack(access: IommufdAccess): void {
  ctxAccesses.get(access.ctx)?.delete(access);
}

const closeHooks = new WeakMap<IommufdCtx, () => Promise<void>>();

/**
 * The hook the object table runs when the context closes: every access still alive is released
 * like its owner would (its `unmap(0, ULONG_MAX)` runs, then it is destroyed). The kernel keeps
 * the context alive until the owners let go (each access holds a context reference); the model
 * releases them, as when the owning process exits.
 */
function closeHook(ctx: IommufdCtx): () => Promise<void> {
  let h = closeHooks.get(ctx);
  if (h === undefined) {
    h = async () => {
      const set = ctxAccesses.get(ctx);
      if (set === undefined) return;
      for (const access of [...set]) {
        const onClose = closeCallbacks.get(access);
        if (onClose !== undefined) await onClose();
        else if (!access.ownerGone) await accessDestroyObject(access);
      }
    };
    closeHooks.set(ctx, h);
  }
  return h;
}

/** Owner-specific release at context close (the selftest access file closes itself). */
const closeCallbacks = new WeakMap<IommufdAccess, () => Promise<void>>();

/** @internal registers what closing the context does for `access` instead of a plain destroy. */
export function setAccessCloseCallback(access: IommufdAccess, f: () => Promise<void>): void {
  closeCallbacks.set(access, f);
}

/** `iommufd_access_notify_unmap`: every access of `iopt` must drop its pins in the range. */
async function notifyUnmap(iopt: IoPagetable, iova: bigint, length: bigint): Promise<void> {
  const list = accessLists.get(iopt);
  if (list === undefined) return;
  for (const access of [...list]) {
    // iommufd_lock_obj fails for an object being destroyed: it is unmapping everything anyway.
    if (!list.has(access)) continue;
    if (access.ops.unmap) await access.ops.unmap(iova, length);
  }
}

/** `iopt_add_access`: joins the access list and raises the IOAS alignment (`EADDRINUSE`). */
async function ioptAddAccess(iopt: IoPagetable, access: IommufdAccess): Promise<void> {
  await iopt.domainsSem.write();
  try {
    failpoint(access.ctx, 'iopt.access_add'); // xa_alloc in iopt->access_list
    iopt.setAlignmentRequirement(access, access.iovaAlignment);
    let list = accessLists.get(iopt);
    if (list === undefined) {
      list = new Set();
      accessLists.set(iopt, list);
    }
    list.add(access);
    if (iopt.accessNotifyUnmap === null) iopt.accessNotifyUnmap = (iova, length) => notifyUnmap(iopt, iova, length);
  } finally {
    iopt.domainsSem.upWrite();
  }
}

/** `iopt_remove_access`: leaves the access list and recomputes the alignment (cannot fail). */
async function ioptRemoveAccess(iopt: IoPagetable, access: IommufdAccess): Promise<void> {
  await iopt.domainsSem.write();
  try {
    accessLists.get(iopt)?.delete(access);
    iopt.setAlignmentRequirement(access, null);
  } finally {
    iopt.domainsSem.upWrite();
  }
}

/** The accesses attached to an IOAS's table (tests, diagnostics). */
export function accessesOf(iopt: IoPagetable): IommufdAccess[] {
  return [...(accessLists.get(iopt) ?? [])];
}

// ---------------------------------------------------------------------------- create / attach / replace

/**
 * `iommufd_access_change_ioas` (caller holds `ioas_lock`): joins `newIoas` (or none), runs the
 * owner's `unmap(0, ULONG_MAX)`, leaves the current IOAS. On failure nothing changed.
 */
async function changeIoas(access: IommufdAccess, newIoas: Ioas | null): Promise<void> {
  const cur = access.ioas;
  // Racing with a concurrent detach.
  if (cur !== access.ioasUnpin) fail('EBUSY', `ACCESS ${access.id}: its IOAS is changing`);
  if (cur === newIoas) return;
  // Block new pins; unpins keep using ioasUnpin.
  access.ioas = null;
  if (newIoas !== null) {
    try {
      await ioptAddAccess(newIoas.iopt, access);
    } catch (e) {
      access.ioas = cur;
      throw e;
    }
    newIoas.users++;
  }
  if (cur !== null) {
    if (access.ops.unmap) await access.ops.unmap(0n, ULONG_MAX);
    // Model: an owner that kept pins loses them here (the kernel would WARN later).
    while (access.pins.length > 0) {
      const p = access.pins[0];
      unpinPages(access, p.iova, p.length);
    }
    await ioptRemoveAccess(cur.iopt, access);
    cur.users--;
  }
  access.ioas = newIoas;
  access.ioasUnpin = newIoas;
}

/**
 * `iommufd_access_create`: a new ACCESS (visible, with one extra user for its owner until
 * {@link accessDestroy}), not attached to any IOAS yet.
 */
export function accessCreateObject(ctx: IommufdCtx, ops: IommufdAccessOps): IommufdAccess {
  const access = ctx.objects.alloc(new IommufdAccess(ctx, ops));
  access.users++; // the owner is a user until iommufd_access_destroy
  ctx.objects.finalize(access);
  track(access);
  return access;
}

/** `iommufd_access_attach`: `EINVAL` if attached already; `ENOENT` unless an IOAS; `EADDRINUSE`. */
export async function accessAttach(access: IommufdAccess, ioasId: number): Promise<void> {
  await access.locked(async () => {
    if (access.ioas !== null) fail('EINVAL', `ACCESS ${access.id} is already attached to IOAS ${access.ioas.id}`);
    await changeIoas(access, getIoas(access.ctx, ioasId));
  });
}

/** `iommufd_access_replace`: `ENOENT` when detached or `ioasId` is not an IOAS; `EADDRINUSE`. */
export async function accessReplaceIoas(access: IommufdAccess, ioasId: number): Promise<void> {
  await access.locked(async () => {
    if (access.ioas === null) fail('ENOENT', `ACCESS ${access.id} is not attached to an IOAS`);
    await changeIoas(access, getIoas(access.ctx, ioasId));
  });
}

/** `iommufd_access_detach`. */
export async function accessDetach(access: IommufdAccess): Promise<void> {
  await access.locked(async () => {
    if (access.ioas === null) return;
    await changeIoas(access, null);
  });
}

/** `iommufd_access_destroy`: the owner lets go; the object is removed and leaves its IOAS. */
export async function accessDestroyObject(access: IommufdAccess): Promise<void> {
  if (access.ownerGone) return;
  access.ownerGone = true;
  access.users--;
  if (!access.visible) {
    // The context is closing and already took the object.
    return;
  }
  try {
    await access.ctx.objects.remove(access.id, { expect: access });
  } catch (e) {
    access.users++;
    access.ownerGone = false;
    throw e;
  }
}

/** `ENOENT` unless `id` names an ACCESS. */
export function getAccess(ctx: IommufdCtx, id: number): IommufdAccess {
  return ctx.objects.get<IommufdAccess>(id, 'access', 'ACCESS');
}

// ---------------------------------------------------------------------------- contiguous areas

/**
 * `iopt_for_each_contig_area`: calls `f(area, curIova)` for each area covering `[iova, last]`
 * without a gap, starting with the one containing `iova`; stops at a hole or an area being
 * created / destroyed. Returns the IOVA reached and whether the range was fully covered
 * (`iopt_area_contig_done`). `f` may throw.
 */
function forEachContigArea(
  iopt: IoPagetable,
  iova: bigint,
  last: bigint,
  f: (area: IoptArea, cur: bigint, done: boolean) => void,
): { cur: bigint; done: boolean } {
  let cur = iova;
  let area = iopt.areas.containing(iova);
  while (area !== undefined && area.pages !== null && area.start <= cur) {
    const done = last <= area.last;
    f(area, cur, done);
    if (done) return { cur, done: true };
    cur = area.last + 1n;
    const n = iopt.areas.next(area);
    area = n !== undefined && n.start === cur ? n : undefined;
  }
  return { cur, done: false };
}

/** `iopt_area_iova_to_index`. */
function iovaToIndex(area: IoptArea, iova: bigint): number {
  return Number(area.startByte(iova) / PAGE_SIZE_N);
}

/** `check_area_prot`. */
function checkAreaProt(area: IoptArea, flags: number): boolean {
  return (flags & IOMMUFD_ACCESS_RW_WRITE ? area.prot & Prot.WRITE : area.prot & Prot.READ) !== 0;
}

function rangeLast(what: string, iova: bigint, length: bigint): bigint {
  if (length === 0n) fail('EINVAL', `${what}: length is 0`);
  const last = iova + length - 1n;
  if (last > U64_MAX) fail('EOVERFLOW', `${what}: iova ${hex(iova)} + length ${hex(length)} overflows`);
  return last;
}

// ---------------------------------------------------------------------------- pin / unpin

/** `iopt_area_remove_access`. */
function areaRemoveAccess(area: IoptArea, first: number, last: number): void {
  area.pagesRef.unpin(first, last);
  area.numAccesses--;
}

/**
 * `iommufd_access_pin_pages`: pins the pages under `[iova, iova + length)` for the access and
 * returns the physical address of each CPU page (in IOVA order).
 * @throws IommufdError EINVAL (length 0, owner cannot pin, misaligned, area being unmapped),
 *   EOVERFLOW, ENOENT (detached, or a hole in the range), EPERM (write to read-only), and the
 *   pinning errors (EFAULT, ENOMEM, ...). Nothing stays pinned on failure.
 */
export function accessPinPages(access: IommufdAccess, iova: bigint, length: bigint, flags: number): number[] {
  const what = 'iommufd_access_pin_pages';
  // Driver's ops don't support pin_pages.
  if (access.iovaAlignment !== PAGE_SIZE_N || !access.ops.unmap) fail('EINVAL', `${what}: ACCESS ${access.id} was not created to pin pages`);
  const lastIova = rangeLast(what, iova, length);
  const ioas = access.ioas;
  if (ioas === null) return fail('ENOENT', `${what}: ACCESS ${access.id} is not attached to an IOAS`);
  const iopt = ioas.iopt;
  const out: number[] = [];
  const done: { area: IoptArea; first: number; last: number }[] = [];
  try {
    const r = forEachContigArea(iopt, iova, lastIova, (area, cur, areaDone) => {
      const last = lastIova < area.last ? lastIova : area.last;
      const first = iovaToIndex(area, cur);
      const lastIndex = iovaToIndex(area, last);
      // iopt_area_contig_is_aligned
      if (area.preventAccess) fail('EINVAL', `${what}: [${hex(area.start)}, ${hex(area.last)}] is being unmapped`);
      if (area.startByte(cur) % PAGE_SIZE_N !== 0n || (!areaDone && area.startByte(area.last) % PAGE_SIZE_N !== PAGE_SIZE_N - 1n)) {
        fail('EINVAL', `${what}: iova ${hex(cur)} of [${hex(area.start)}, ${hex(area.last)}] is not on a page boundary of its pages`);
      }
      if (!checkAreaProt(area, flags)) fail('EPERM', `${what}: [${hex(area.start)}, ${hex(area.last)}] is not ${flags & IOMMUFD_ACCESS_RW_WRITE ? 'writable' : 'readable'}`);
      // iopt_area_add_access
      const pages = area.pages!;
      if (flags & IOMMUFD_ACCESS_RW_WRITE && !pages.writable) fail('EPERM', `${what}: the pages under ${hex(cur)} are not writable`);
      pages.pin(first, lastIndex);
      area.numAccesses++;
      done.push({ area, first, last: lastIndex });
      for (let i = first; i <= lastIndex; i++) out.push(pages.pa(i));
    });
    if (!r.done) fail('ENOENT', `${what}: [${hex(iova)}, ${hex(lastIova)}] is not fully mapped (hole at ${hex(r.cur)})`);
  } catch (e) {
    for (const d of done) areaRemoveAccess(d.area, d.first, d.last);
    throw e;
  }
  access.pins.push({ iova, length });
  return out;
}

/**
 * `iommufd_access_unpin_pages`: undoes a pin with the same `iova` / `length`, on the IOAS the
 * pin was made on. The model answers `EINVAL` for a range this access has not pinned (the
 * kernel WARNs).
 */
export function unpinPages(access: IommufdAccess, iova: bigint, length: bigint): void {
  const what = 'iommufd_access_unpin_pages';
  const lastIova = rangeLast(what, iova, length);
  const k = access.pins.findIndex((p) => p.iova === iova && p.length === length);
  const ioas = access.ioasUnpin;
  if (k < 0 || ioas === null) fail('EINVAL', `${what}: ACCESS ${access.id} has no pin of [${hex(iova)}, ${hex(lastIova)}]`);
  access.pins.splice(k, 1);
  const r = forEachContigArea(ioas.iopt, iova, lastIova, (area, cur) => {
    const last = lastIova < area.last ? lastIova : area.last;
    areaRemoveAccess(area, iovaToIndex(area, cur), iovaToIndex(area, last));
  });
  if (!r.done) throw new Error(`${what}: the pinned range [${hex(iova)}, ${hex(lastIova)}] lost its areas`);
}

// ---------------------------------------------------------------------------- rw

/** The process or file a pages object reads from, and its PhysMem. */
function sourceMem(pages: IoptPages): { u8: Uint8Array } {
  const src = pages.source;
  return src.kind === 'user' ? src.process.mem : src.file.mem;
}

/** Pins one page of the source for a copy (`pfn_reader_user_pin` of one page). */
function pinOne(pages: IoptPages, index: number, write: boolean): number {
  const src = pages.source;
  try {
    if (src.kind === 'user') {
      const addr = src.uptr + BigInt(index) * PAGE_SIZE_N;
      if (addr > BigInt(Number.MAX_SAFE_INTEGER)) fail('EFAULT', `user address ${hex(addr)} is not mapped`);
      return src.process.pin(Number(addr), 1, write)[0];
    }
    const off = src.start + BigInt(index) * PAGE_SIZE_N;
    if (off > BigInt(Number.MAX_SAFE_INTEGER)) fail('EINVAL', `file offset ${hex(off)} is beyond the file`);
    return src.file.pin(Number(off), 1, write)[0];
  } catch (e) {
    if (e instanceof IommufdError && e.errno === 'ESRCH') throw new IommufdError('EFAULT', e.message);
    throw e;
  }
}

function unpinOne(pages: IoptPages, pa: number): void {
  const src = pages.source;
  if (src.kind === 'user') src.process.unpin([pa]);
  else src.file.unpin([pa]);
}

/** Copies between `data` and the page at `pa` + `offset`. */
function copyPage(mem: { u8: Uint8Array }, pa: number, offset: number, data: Uint8Array, pos: number, n: number, write: boolean): void {
  if (write) mem.u8.set(data.subarray(pos, pos + n), pa + offset);
  else data.set(mem.u8.subarray(pa + offset, pa + offset + n), pos);
}

/**
 * `iopt_pages_rw_slow` / `iopt_pages_rw_page`: page by page through physical memory: pinned
 * pages are used as they are, the others are pinned for the copy and unpinned after it.
 */
function rwSlow(pages: IoptPages, startByte: bigint, data: Uint8Array, pos: number, length: number, write: boolean, pinWrite: boolean): void {
  const mem = sourceMem(pages);
  let index = Number(startByte / PAGE_SIZE_N);
  let offset = Number(startByte % PAGE_SIZE_N);
  let left = length;
  while (left > 0) {
    const n = Math.min(left, PAGE_SIZE - offset);
    const pinned = pages.pa(index);
    if (pinned >= 0) copyPage(mem, pinned, offset, data, pos, n, write);
    else {
      const pa = pinOne(pages, index, pinWrite);
      try {
        copyPage(mem, pa, offset, data, pos, n, write);
      } finally {
        unpinOne(pages, pa);
      }
    }
    pos += n;
    left -= n;
    offset = 0;
    index++;
  }
}

/**
 * `iopt_pages_rw_page`: one page, pinned from the source process for the copy whether or not it is
 * pinned already (it reads what the CPU of that process sees now).
 */
function rwPage(pages: IoptPages, startByte: bigint, data: Uint8Array, pos: number, length: number, write: boolean): void {
  const pa = pinOne(pages, Number(startByte / PAGE_SIZE_N), write);
  try {
    copyPage(sourceMem(pages), pa, Number(startByte % PAGE_SIZE_N), data, pos, length, write);
  } finally {
    unpinOne(pages, pa);
  }
}

/** `iopt_pages_rw_access`: copies `length` bytes at `startByte` of `pages` to / from `data[pos..]`. */
function pagesRwAccess(pages: IoptPages, startByte: bigint, data: Uint8Array, pos: number, length: number, flags: number, current: UserProcess): void {
  const write = (flags & IOMMUFD_ACCESS_RW_WRITE) !== 0;
  const src = pages.source;
  let changeMm = src.kind !== 'user' || src.process !== current;
  if (flags & IOMMUFD_ACCESS_RW_SLOW_PATH) changeMm = true;
  if (write && !pages.writable) fail('EPERM', 'iommufd_access_rw: the pages are not writable');
  if (src.kind !== 'user') return rwSlow(pages, startByte, data, pos, length, write, pages.writable);
  const single = startByte / PAGE_SIZE_N === (startByte + BigInt(length) - 1n) / PAGE_SIZE_N;
  if (!(flags & IOMMUFD_ACCESS_RW_KTHREAD) && changeMm) {
    if (single && src.process.alive) return rwPage(pages, startByte, data, pos, length, write);
    return rwSlow(pages, startByte, data, pos, length, write, pages.writable);
  }
  if (changeMm && !src.process.alive) return rwSlow(pages, startByte, data, pos, length, write, pages.writable);
  // Fast path: copy_to_user / copy_from_user in the source mm.
  const addr = src.uptr + startByte;
  if (addr + BigInt(length) > BigInt(Number.MAX_SAFE_INTEGER)) fail('EFAULT', `iommufd_access_rw: user address ${hex(addr)} is not mapped`);
  try {
    if (write) src.process.write(Number(addr), data.subarray(pos, pos + length));
    else data.set(src.process.read(Number(addr), length), pos);
  } catch (e) {
    if (e instanceof IommufdError) throw new IommufdError('EFAULT', `iommufd_access_rw: ${e.message}`);
    throw e;
  }
}

/**
 * `iommufd_access_rw`: copies `data` to (`IOMMUFD_ACCESS_RW_WRITE`) or from the IOAS at `iova`
 * with the CPU, `data.length` bytes.
 * @throws IommufdError EINVAL (length 0, area being unmapped), EOVERFLOW, ENOENT (detached or a
 *   hole), EPERM (direction not allowed by the map), EFAULT (memory gone).
 */
export function accessRwData(access: IommufdAccess, iova: bigint, data: Uint8Array, flags: number, current: UserProcess): void {
  const what = 'iommufd_access_rw';
  const lastIova = rangeLast(what, iova, BigInt(data.length));
  const ioas = access.ioas;
  if (ioas === null) return fail('ENOENT', `${what}: ACCESS ${access.id} is not attached to an IOAS`);
  let pos = 0;
  const r = forEachContigArea(ioas.iopt, iova, lastIova, (area, cur) => {
    const last = lastIova < area.last ? lastIova : area.last;
    const bytes = Number(last - cur + 1n);
    if (area.preventAccess) fail('EINVAL', `${what}: [${hex(area.start)}, ${hex(area.last)}] is being unmapped`);
    if (!checkAreaProt(area, flags)) fail('EPERM', `${what}: [${hex(area.start)}, ${hex(area.last)}] is not ${flags & IOMMUFD_ACCESS_RW_WRITE ? 'writable' : 'readable'}`);
    pagesRwAccess(area.pages!, area.startByte(cur), data, pos, bytes, flags, current);
    pos += bytes;
  });
  if (!r.done) fail('ENOENT', `${what}: [${hex(iova)}, ${hex(lastIova)}] is not fully mapped (hole at ${hex(r.cur)})`);
}

// ---------------------------------------------------------------------------- typed API (IommuFd methods)

/** Arguments of `IommuFd.accessCreate`. */
export interface AccessCreateArgs {
  /** The IOAS to attach to. */
  ioasId: number;
  /** The owner's callbacks. */
  ops?: IommufdAccessOps;
}

/** `iommufd_access_create` + `iommufd_access_attach`: returns the ACCESS id. */
export async function accessCreate(ctx: IommufdCtx, a: AccessCreateArgs): Promise<{ accessId: number }> {
  const ioasId = u32(a.ioasId, 'ioas_id');
  const access = accessCreateObject(ctx, a.ops ?? {});
  try {
    await accessAttach(access, ioasId);
  } catch (e) {
    await accessDestroyObject(access);
    throw e;
  }
  return { accessId: access.id };
}

/** `iommufd_access_destroy` by id. */
export async function accessDestroy(ctx: IommufdCtx, a: { accessId: number }): Promise<void> {
  await accessDestroyObject(getAccess(ctx, u32(a.accessId, 'access id')));
}

/** `iommufd_access_replace` by id. */
export async function accessReplace(ctx: IommufdCtx, a: { accessId: number; ioasId: number }): Promise<void> {
  await accessReplaceIoas(getAccess(ctx, u32(a.accessId, 'access id')), u32(a.ioasId, 'ioas_id'));
}

/** `iommufd_access_pin_pages` by id: the physical address of each CPU page. */
export async function accessPin(
  ctx: IommufdCtx,
  a: { accessId: number; iova: bigint | number; length: bigint | number; flags?: number },
): Promise<{ pages: number[] }> {
  const access = getAccess(ctx, u32(a.accessId, 'access id'));
  return { pages: accessPinPages(access, u64(a.iova, 'iova'), u64(a.length, 'length'), u32(a.flags, 'flags')) };
}

/** `iommufd_access_unpin_pages` by id. */
export async function accessUnpin(ctx: IommufdCtx, a: { accessId: number; iova: bigint | number; length: bigint | number }): Promise<void> {
  const access = getAccess(ctx, u32(a.accessId, 'access id'));
  unpinPages(access, u64(a.iova, 'iova'), u64(a.length, 'length'));
}

/**
 * `iommufd_access_rw` by id: with `IOMMUFD_ACCESS_RW_WRITE` writes `data` to the IOAS, else fills
 * `data` from it.
 */
export async function accessRw(ctx: IommufdCtx, a: { accessId: number; iova: bigint | number; data: Uint8Array; flags?: number }): Promise<void> {
  const access = getAccess(ctx, u32(a.accessId, 'access id'));
  accessRwData(access, u64(a.iova, 'iova'), a.data, u32(a.flags, 'flags'), ctx.current);
}
