/**
 * UserProcess: a user address space over {@link PhysMem} — what iommufd's pages code pins from
 * (pin_user_pages on `current->mm`, or on the source mm of an iopt_pages object).
 *
 * Model (documented choices):
 * - Addresses are numbers; user space is `[0, TASK_SIZE)` with TASK_SIZE = 2^47 - 4096 as on
 *   x86-64. mmap without a fixed address allocates top-down below {@link MMAP_BASE}
 *   (0x7f00_0000_0000), like the kernel's default mmap layout, never below {@link MMAP_MIN_ADDR}.
 *   Consecutive mmaps are therefore adjacent (a pin may run across two mappings, as in Linux).
 * - mmap only reserves VA. The first CPU access, pin or translate populates a page: private and
 *   shared anonymous pages get a zero-filled frame, file pages come from the memfd's page cache.
 * - Frames are refcounted (see frames.ts): one reference per page-table / page-cache entry plus one
 *   per pin. munmap, truncate and exit drop the mapping references; a pinned frame survives until
 *   its last unpin, then goes back to PhysMem.
 * - fork copies private pages EAGERLY (every populated private page of the parent is copied into a
 *   fresh frame for the child at fork time), so parent and child never share a private frame and no
 *   later COW is needed; this is also what Linux does for a pinned anonymous page at fork. Shared
 *   mappings (MAP_SHARED anonymous, any memfd mapping's page cache) stay shared. Pins are not
 *   inherited; the child's vmPinned / vmLocked start at 0; the child runs as the same user.
 * - A MAP_PRIVATE mapping of a memfd reads the file's pages until a page is written; a CPU write
 *   (or a pin of a page of a writable private mapping, read-only pin included: GUP "unshares" so
 *   that a later write cannot move the pinned page, cf. selftest ro_unshare) copies it into a
 *   private frame.
 * - Errors: EFAULT for an access or pin that touches an unmapped page, a file page past EOF
 *   (SIGBUS), a CPU write to a read-only mapping, or an exited process; EPERM for a writable pin
 *   of a read-only mapping (the agreed API; note real GUP answers FOLL_WRITE on a read-only VMA with
 *   EFAULT); EINVAL for malformed arguments. A failing call changes nothing (pins are rolled back;
 *   pages populated before a mid-way ENOMEM may stay populated, as in Linux).
 */
import { type PhysMem } from '@iommulab/runtime';
import { fail, IommufdError } from '../errors.js';
import { PAGE_SIZE } from '../uapi/u64.js';
import { MemlockAccount } from './accounting.js';
import { FrameTable, PageObject, PageTable, forEachPageChunk, userMemoryFailpoint } from './frames.js';
import { Memfd } from './memfd.js';

/** Page protection of a mapping: read-only or read-write. */
export type Prot = 'r' | 'rw';

/** Top of user space (x86-64 TASK_SIZE_MAX = 2^47 - PAGE_SIZE). */
export const TASK_SIZE = 2 ** 47 - PAGE_SIZE;
/** Where top-down mmap placement starts (below it, downwards). */
export const MMAP_BASE = 0x7f00_0000_0000;
/** Lowest address mmap hands out or accepts (vm.mmap_min_addr = 65536). */
export const MMAP_MIN_ADDR = 0x1_0000;

const TASK_PAGES = TASK_SIZE / PAGE_SIZE;
const MMAP_BASE_PN = MMAP_BASE / PAGE_SIZE;
const MIN_PN = MMAP_MIN_ADDR / PAGE_SIZE;

// Access kinds for range checks and page resolution.
const READ = 0;
const CPU_WRITE = 1;
const PIN_READ = 2;
const PIN_WRITE = 3;
type Access = typeof READ | typeof CPU_WRITE | typeof PIN_READ | typeof PIN_WRITE;

/** One mapping (vm_area_struct). Page numbers, end exclusive. */
interface Vma {
  start: number;
  end: number;
  prot: Prot;
  shared: boolean;
  /** Backing page store: the memfd's page cache or a shared-anonymous object; null = private anonymous. */
  obj: PageObject | null;
  /** Page index in `obj` of page `start`. */
  pgoff: number;
  /** The memfd, for file mappings. */
  file: Memfd | null;
}

/** Options of {@link UserProcess.create}. */
export interface UserProcessOptions {
  /** Physical memory the process's pages come from. */
  mem: PhysMem;
  /** The user (uid) the process runs as; default a new {@link MemlockAccount}. */
  account?: MemlockAccount;
  /** RLIMIT_MEMLOCK in bytes; default `Infinity` (RLIM_INFINITY). */
  memlockLimit?: number;
  /** Whether the process has CAP_IPC_LOCK (no memlock limit; iommufd account mode NONE). */
  capIpcLock?: boolean;
}

/** Options of {@link UserProcess.mmap}. */
export interface MmapOptions {
  /** Length in bytes (> 0; rounded up to whole pages). */
  length: number;
  /** Protection, default `'rw'`. */
  prot?: Prot;
  /** MAP_SHARED (default false = MAP_PRIVATE). Anonymous shared pages survive fork as shared. */
  shared?: boolean;
  /** Map this memfd instead of anonymous memory. */
  file?: Memfd;
  /** Byte offset in `file` (page aligned), default 0. */
  offset?: number;
  /** MAP_FIXED-style address (page aligned). The range must be free: no replacement (EINVAL). */
  addr?: number;
  /** Alignment of the chosen address in bytes (power of two >= PAGE_SIZE), e.g. 2 MiB for hugepage-aligned buffers. */
  hugeAlign?: number;
}

let nextPid = 100;

/** A user process: address space (mappings + page table) and its mm accounting counters. */
export class UserProcess {
  /** Physical memory backing every page. */
  readonly mem: PhysMem;
  /** The user this process runs as (per-user locked_vm). */
  readonly account: MemlockAccount;
  /** RLIMIT_MEMLOCK in bytes (`Infinity` = unlimited). */
  memlockLimit: number;
  /** CAP_IPC_LOCK. */
  capIpcLock: boolean;
  /** Process id (unique in this JS realm). */
  readonly pid: number;
  /** mm->pinned_vm in pages (/proc VmPin shows pages * 4 kB). Maintained by chargeMemlock / unchargeMemlock. */
  vmPinned = 0;
  /** mm->locked_vm in pages (/proc VmLck). Maintained by chargeMemlock / unchargeMemlock in 'mm' mode. */
  vmLocked = 0;

  private readonly ft: FrameTable;
  /** Private pages (anonymous, and COW copies of private file pages), keyed by virtual page number. */
  private readonly pt = new PageTable();
  /** Mappings sorted by start, non-overlapping. */
  private vmas: Vma[] = [];
  private live = true;

  private constructor(o: UserProcessOptions) {
    this.mem = o.mem;
    this.account = o.account ?? new MemlockAccount();
    this.memlockLimit = o.memlockLimit ?? Infinity;
    this.capIpcLock = o.capIpcLock ?? false;
    this.pid = nextPid++;
    this.ft = FrameTable.of(o.mem);
  }

  /**
   * Creates a process with an empty address space.
   * @throws IommufdError EINVAL for a negative / non-numeric memlockLimit.
   */
  static create(o: UserProcessOptions): UserProcess {
    if (o.memlockLimit !== undefined && !(o.memlockLimit >= 0)) {
      fail('EINVAL', `UserProcess.create: memlockLimit ${String(o.memlockLimit)} is not >= 0`);
    }
    return new UserProcess(o);
  }

  /** False once {@link exit} ran. */
  get alive(): boolean {
    return this.live;
  }

  /** Number of mappings (VMAs). */
  get mappingCount(): number {
    return this.vmas.length;
  }

  /** Number of populated private pages (anonymous + COW copies). */
  get privatePages(): number {
    return this.pt.count(0, TASK_PAGES);
  }

  // ------------------------------------------------------------------ address space

  /**
   * mmap(2). Reserves `ceil(length / PAGE_SIZE)` pages and returns the page-aligned start address.
   * @throws IommufdError EINVAL for a bad length / prot / offset / alignment / fixed address or a
   *   fixed range overlapping an existing mapping; EPERM for a fixed address below MMAP_MIN_ADDR;
   *   ENOMEM when no room is left; EBADF for a closed memfd; ESRCH after exit.
   */
  mmap(o: MmapOptions): number {
    this.checkLive('mmap');
    const { length } = o;
    if (!Number.isSafeInteger(length) || length <= 0) fail('EINVAL', `mmap: length ${String(length)}`);
    const prot = o.prot ?? 'rw';
    checkProt(prot, 'mmap');
    const shared = o.shared ?? false;
    const file = o.file;
    const offset = o.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % PAGE_SIZE !== 0) {
      fail('EINVAL', `mmap: offset ${String(offset)} is not a page-aligned file offset`);
    }
    if (file !== undefined) {
      if (!(file instanceof Memfd)) fail('EBADF', 'mmap: file is not a Memfd');
      if (!file.isOpen) fail('EBADF', `mmap: memfd ${file.fd} is closed`);
      if (file.mem !== this.mem) fail('EINVAL', `mmap: memfd ${file.fd} lives in another PhysMem`);
    }
    const npages = Math.ceil(length / PAGE_SIZE);
    if (npages > TASK_PAGES) fail('ENOMEM', `mmap: length ${length} exceeds the address space`);
    let start: number;
    if (o.addr !== undefined) {
      const addr = o.addr;
      if (!Number.isSafeInteger(addr) || addr < 0 || addr % PAGE_SIZE !== 0) {
        fail('EINVAL', `mmap: fixed address ${String(addr)} is not page aligned`);
      }
      if (addr < MMAP_MIN_ADDR) fail('EPERM', `mmap: fixed address ${hx(addr)} is below mmap_min_addr`);
      start = addr / PAGE_SIZE;
      if (start + npages > TASK_PAGES) fail('ENOMEM', `mmap: ${hx(addr)} + ${length} is beyond TASK_SIZE`);
      const i = this.firstEndingAfter(start);
      if (i < this.vmas.length && this.vmas[i].start < start + npages) {
        fail('EINVAL', `mmap: fixed range ${hx(addr)} + ${hx(npages * PAGE_SIZE)} overlaps an existing mapping`);
      }
    } else {
      const align = o.hugeAlign ?? PAGE_SIZE;
      if (!Number.isSafeInteger(align) || align < PAGE_SIZE || (align & (align - 1)) !== 0 || align > 2 ** 30) {
        fail('EINVAL', `mmap: hugeAlign ${String(align)} is not a power of two between PAGE_SIZE and 1 GiB`);
      }
      start = this.findFree(npages, align / PAGE_SIZE);
    }
    let obj: PageObject | null = null;
    if (file !== undefined) obj = file.obj.get();
    else if (shared) obj = new PageObject(this.ft, npages * PAGE_SIZE);
    const vma: Vma = {
      start,
      end: start + npages,
      prot,
      shared,
      obj,
      pgoff: file !== undefined ? offset / PAGE_SIZE : 0,
      file: file ?? null,
    };
    this.vmas.splice(this.firstEndingAfter(start), 0, vma);
    return start * PAGE_SIZE;
  }

  /**
   * munmap(2): removes every mapping page in `[addr, addr + length)` (holes are fine). Frames drop
   * their mapping reference; pinned frames stay allocated until unpinned.
   * @throws IommufdError EINVAL for an unaligned addr, a length <= 0 or a range outside user space;
   *   ESRCH after exit.
   */
  munmap(addr: number, length: number): void {
    this.checkLive('munmap');
    const [vs, ve] = this.userRange(addr, length, 'munmap', false);
    this.split(vs, ve, null);
  }

  /**
   * mprotect(2) on `[addr, addr + length)` (length 0 is a no-op). Existing pins are unaffected.
   * @throws IommufdError EINVAL for an unaligned addr, a negative length or a bad prot; ENOMEM if
   *   any page of the range is unmapped (nothing changed); ESRCH after exit.
   */
  mprotect(addr: number, length: number, prot: Prot): void {
    this.checkLive('mprotect');
    checkProt(prot, 'mprotect');
    const [vs, ve] = this.userRange(addr, length, 'mprotect', true);
    if (vs === ve) return;
    const hole = this.firstHole(vs, ve);
    if (hole >= 0) fail('ENOMEM', `mprotect: ${hx(hole * PAGE_SIZE)} is not mapped`);
    this.split(vs, ve, prot);
  }

  /**
   * CPU read of `length` bytes at `addr` (populates pages).
   * @throws IommufdError EFAULT if any byte is unmapped / past a file's end or the process exited.
   */
  read(addr: number, length: number): Uint8Array {
    if (!Number.isSafeInteger(length) || length < 0) fail('EINVAL', `read: length ${String(length)}`);
    const out = new Uint8Array(length);
    if (length === 0) return out;
    this.copy(addr, length, READ, out);
    return out;
  }

  /**
   * CPU write of `data` at `addr` (populates; private file pages are copied on write).
   * @throws IommufdError EFAULT if any byte is unmapped / read-only / past a file's end, or the
   *   process exited (nothing written then).
   */
  write(addr: number, data: Uint8Array): void {
    if (data.length === 0) return;
    this.copy(addr, data.length, CPU_WRITE, data);
  }

  /**
   * PA of the byte at `addr` as the CPU sees it now (a read fault populates the page; a private
   * file page not yet written resolves to the file's page). For checks like MD_CHECK_MAP.
   * @throws IommufdError EFAULT if unmapped or exited.
   */
  translate(addr: number): number {
    if (!this.live) fail('EFAULT', `translate: pid ${this.pid} has exited`);
    const [vs] = this.byteRange(addr, 1, 'translate');
    this.check(vs, vs + 1, READ, 'translate');
    const vma = this.vmas[this.firstEndingAfter(vs)];
    const f = this.resolve(vma, vs, READ);
    return f * PAGE_SIZE + (addr - vs * PAGE_SIZE);
  }

  /**
   * fork(2): a child with a copy of the address space (see the module notes: private pages copied
   * eagerly, shared mappings shared, pins not inherited, counters at 0, same user and limits).
   * @throws IommufdError ENOMEM if frames for the copies run out (no child then); ESRCH after exit.
   */
  fork(): UserProcess {
    this.checkLive('fork');
    const child = new UserProcess({
      mem: this.mem,
      account: this.account,
      memlockLimit: this.memlockLimit,
      capIpcLock: this.capIpcLock,
    });
    for (const v of this.vmas) {
      if (v.obj !== null) v.obj.get();
      child.vmas.push({ ...v });
    }
    const u8 = this.mem.u8;
    try {
      this.pt.forEach(0, TASK_PAGES, (pn, f) => {
        const nf = this.ft.alloc1();
        u8.copyWithin(nf * PAGE_SIZE, f * PAGE_SIZE, (f + 1) * PAGE_SIZE);
        child.pt.set(pn, nf);
      });
    } catch (e) {
      child.exit();
      throw e;
    }
    return child;
  }

  /**
   * The process exits: every mapping goes away (private frames are freed unless pinned; shared
   * objects lose this process's references). Afterwards pin / read / write fail with EFAULT and
   * address-space calls with ESRCH; unpin still works. Idempotent.
   */
  exit(): void {
    if (!this.live) return;
    this.live = false;
    this.pt.clearRange(0, TASK_PAGES, this.ft);
    for (const v of this.vmas) if (v.obj !== null) v.obj.put();
    this.vmas = [];
    this.ft.flush();
  }

  // ------------------------------------------------------------------ pinning

  /**
   * pin_user_pages() of `npages` pages starting at the page containing `addr` (an unaligned addr
   * is rounded down, as iopt_pages does with its uptr). Populates every page (a private file page
   * of a writable mapping, or any page pinned for write, is first unshared), then takes one pin and
   * one reference on each frame.
   * @returns the PA of each page (written to `into` from `intoOff` when given, and `into` returned:
   *   no allocation per call).
   * @throws IommufdError EFAULT if any page is unmapped / past a file's end or the process exited;
   *   EPERM if `write` and a page is mapped read-only; ENOMEM if frames run out; EINVAL for bad
   *   arguments. Nothing stays pinned on failure.
   */
  pin(addr: number, npages: number, write: boolean, into?: Float64Array, intoOff = 0): Float64Array {
    if (!this.live) fail('EFAULT', `pin: pid ${this.pid} has exited`);
    if (!Number.isSafeInteger(npages) || npages <= 0) fail('EINVAL', `pin: npages ${String(npages)}`);
    if (!Number.isSafeInteger(addr) || addr < 0) fail('EFAULT', `pin: address ${String(addr)}`);
    const vs = Math.floor(addr / PAGE_SIZE);
    const ve = vs + npages;
    if (ve > TASK_PAGES) fail('EFAULT', `pin: ${hx(addr)} + ${npages} pages is beyond user space`);
    const kind: Access = write ? PIN_WRITE : PIN_READ;
    this.check(vs, ve, kind, 'pin');
    userMemoryFailpoint('user.pin');
    const out = into ?? new Float64Array(npages);
    const off0 = into === undefined ? 0 : intoOff;
    const ft = this.ft;
    const refs = ft.refs;
    const pins = ft.pins;
    const progress = { done: 0 };
    let base = off0;
    try {
      let i = this.firstEndingAfter(vs);
      let pos = vs;
      while (pos < ve) {
        const v = this.vmas[i++];
        const end = Math.min(ve, v.end);
        base = off0 + (pos - vs);
        progress.done = 0;
        if (v.obj === null) {
          this.pt.acquire(pos, end - pos, ft, out, base, true, progress);
        } else if (v.shared) {
          v.obj.store.acquire(v.pgoff + (pos - v.start), end - pos, ft, out, base, true, progress);
        } else {
          for (let pn = pos; pn < end; pn++) {
            const f = this.resolve(v, pn, kind);
            refs[f]++;
            pins[f]++;
            out[base + progress.done++] = f * PAGE_SIZE;
          }
        }
        pos = end;
      }
    } catch (e) {
      const pinned = base + progress.done;
      for (let j = off0; j < pinned; j++) ft.unpin1(out[j] / PAGE_SIZE);
      ft.flush();
      throw e;
    }
    return out;
  }

  /**
   * unpin_user_pages(): drops one pin (and its reference) from each PA. A frame no longer mapped
   * anywhere is freed with its last pin. Works after exit.
   * @throws IommufdError EINVAL if a PA is not a pinned page (nothing changes).
   */
  unpin(pas: ArrayLike<number>, from?: number, to?: number): void {
    this.ft.unpinPas(pas, 'unpin', from, to);
  }

  /**
   * Pins held on the page currently mapped at `addr` (0 if the page is not populated): the
   * "extra references" the selftest's MD_CHECK_REFS compares.
   * @throws IommufdError EFAULT if `addr` is unmapped or the process exited.
   */
  pinCount(addr: number): number {
    if (!this.live) fail('EFAULT', `pinCount: pid ${this.pid} has exited`);
    const [vs] = this.byteRange(addr, 1, 'pinCount');
    const i = this.firstEndingAfter(vs);
    const v = this.vmas[i];
    if (v === undefined || v.start > vs) fail('EFAULT', `pinCount: ${hx(addr)} is not mapped`);
    let f: number;
    if (v.obj === null) f = this.pt.get(vs);
    else if (v.shared) f = v.obj.frame(v.pgoff + (vs - v.start), false);
    else f = this.pt.get(vs) || v.obj.frame(v.pgoff + (vs - v.start), false);
    return f === 0 ? 0 : this.ft.pins[f];
  }

  // ------------------------------------------------------------------ internals

  /** Copies between user memory and `buf` (direction by kind), after checking the whole range. */
  private copy(addr: number, length: number, kind: Access, buf: Uint8Array): void {
    const what = kind === READ ? 'read' : 'write';
    if (!this.live) fail('EFAULT', `${what}: pid ${this.pid} has exited`);
    const [vs, ve] = this.byteRange(addr, length, what);
    this.check(vs, ve, kind, what);
    const u8 = this.mem.u8;
    let i = this.firstEndingAfter(vs);
    forEachPageChunk(addr, addr + length, (pn, inPage, n, pos) => {
      while (this.vmas[i].end <= pn) i++;
      const pa = this.resolve(this.vmas[i], pn, kind) * PAGE_SIZE + inPage;
      if (kind === READ) buf.set(u8.subarray(pa, pa + n), pos - addr);
      else u8.set(buf.subarray(pos - addr, pos - addr + n), pa);
    });
  }

  /** Frame backing page `pn` of `v` for an access of `kind`, populating / unsharing as needed. */
  private resolve(v: Vma, pn: number, kind: Access): number {
    const obj = v.obj;
    if (obj === null) {
      let f = this.pt.get(pn);
      if (f === 0) {
        f = this.ft.alloc1();
        this.pt.set(pn, f);
      }
      return f;
    }
    const idx = v.pgoff + (pn - v.start);
    if (v.shared) return obj.frame(idx, true);
    const f = this.pt.get(pn);
    if (f !== 0) return f;
    const unshare = kind === CPU_WRITE || kind === PIN_WRITE || (kind === PIN_READ && v.prot === 'rw');
    if (!unshare) return obj.frame(idx, true);
    const src = obj.frame(idx, false);
    const nf = this.ft.alloc1();
    if (src !== 0) this.mem.u8.copyWithin(nf * PAGE_SIZE, src * PAGE_SIZE, (src + 1) * PAGE_SIZE);
    this.pt.set(pn, nf);
    return nf;
  }

  /**
   * Checks that pages `[vs, ve)` are all mapped and allow `kind`, in address order (the first bad
   * page decides the errno).
   */
  private check(vs: number, ve: number, kind: Access, what: string): void {
    let i = this.firstEndingAfter(vs);
    let pos = vs;
    while (pos < ve) {
      const v = this.vmas[i++];
      if (v === undefined || v.start > pos) fail('EFAULT', `${what}: ${hx(pos * PAGE_SIZE)} is not mapped`);
      if (v.prot === 'r') {
        if (kind === CPU_WRITE) fail('EFAULT', `${what}: ${hx(pos * PAGE_SIZE)} is mapped read-only`);
        if (kind === PIN_WRITE) fail('EPERM', `${what}: writable pin of read-only mapping at ${hx(pos * PAGE_SIZE)}`);
      }
      const end = Math.min(ve, v.end);
      if (v.file !== null) {
        const eofPn = v.start + (v.obj!.sizePages - v.pgoff);
        if (end > eofPn) {
          fail('EFAULT', `${what}: ${hx(Math.max(pos, eofPn) * PAGE_SIZE)} is past the end of memfd ${v.file.fd}`);
        }
      }
      pos = end;
    }
  }

  /** First page in `[vs, ve)` not covered by a mapping, or -1. */
  private firstHole(vs: number, ve: number): number {
    let i = this.firstEndingAfter(vs);
    let pos = vs;
    while (pos < ve) {
      const v = this.vmas[i++];
      if (v === undefined || v.start > pos) return pos;
      pos = v.end;
    }
    return -1;
  }

  /**
   * Cuts the mappings at `vs` and `ve` and then removes the pages in between (`prot === null`,
   * munmap) or gives them `prot` (mprotect). Shared objects keep one handle per mapping piece.
   */
  private split(vs: number, ve: number, prot: Prot | null): void {
    const vmas = this.vmas;
    const i0 = this.firstEndingAfter(vs);
    let i1 = i0;
    while (i1 < vmas.length && vmas[i1].start < ve) i1++;
    if (i0 === i1) return;
    const pieces: Vma[] = [];
    for (let i = i0; i < i1; i++) {
      const v = vmas[i];
      const kept: Vma[] = [];
      const piece = (s: number, e: number, p: Prot): void => {
        kept.push({ ...v, start: s, end: e, prot: p, pgoff: v.pgoff + (s - v.start) });
      };
      if (v.start < vs) piece(v.start, vs, v.prot);
      const ms = Math.max(v.start, vs);
      const me = Math.min(v.end, ve);
      if (prot !== null) piece(ms, me, prot);
      if (v.end > ve) piece(ve, v.end, v.prot);
      if (prot === null) this.pt.clearRange(ms, me, this.ft);
      if (v.obj !== null) {
        for (let k = 1; k < kept.length; k++) v.obj.get();
        if (kept.length === 0) v.obj.put();
      }
      pieces.push(...kept);
    }
    vmas.splice(i0, i1 - i0, ...pieces);
    this.ft.flush();
  }

  /** Top-down search for `npages` free pages aligned to `alignPages`, below MMAP_BASE. */
  private findFree(npages: number, alignPages: number): number {
    const vmas = this.vmas;
    let top = MMAP_BASE_PN;
    for (let i = vmas.length - 1; i >= -1; i--) {
      if (i >= 0 && vmas[i].start >= top) continue;
      const lo = i >= 0 ? Math.max(vmas[i].end, MIN_PN) : MIN_PN;
      const start = Math.floor((top - npages) / alignPages) * alignPages;
      if (top - npages >= 0 && start >= lo) return start;
      if (i >= 0) top = vmas[i].start;
    }
    return fail('ENOMEM', `mmap: no free range of ${npages} pages aligned to ${alignPages} pages`);
  }

  /** Index of the first mapping whose end is above page `pn` (binary search). */
  private firstEndingAfter(pn: number): number {
    const vmas = this.vmas;
    let lo = 0;
    let hi = vmas.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (vmas[mid].end <= pn) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** munmap / mprotect argument rules: page-aligned addr, length rounded up, inside user space. */
  private userRange(addr: number, length: number, what: string, allowZero: boolean): [number, number] {
    if (!Number.isSafeInteger(addr) || addr < 0 || addr % PAGE_SIZE !== 0) {
      fail('EINVAL', `${what}: address ${String(addr)} is not page aligned`);
    }
    if (!Number.isSafeInteger(length) || length < 0 || (length === 0 && !allowZero)) {
      fail('EINVAL', `${what}: length ${String(length)}`);
    }
    const vs = addr / PAGE_SIZE;
    const ve = vs + Math.ceil(length / PAGE_SIZE);
    if (ve > TASK_PAGES) fail(what === 'mprotect' ? 'ENOMEM' : 'EINVAL', `${what}: range ends beyond user space`);
    return [vs, ve];
  }

  /** Pages covering bytes `[addr, addr + length)`; EFAULT if outside user space. */
  private byteRange(addr: number, length: number, what: string): [number, number] {
    if (!Number.isSafeInteger(addr) || addr < 0 || addr + length > TASK_SIZE) {
      fail('EFAULT', `${what}: address ${String(addr)} (+${length}) is outside user space`);
    }
    return [Math.floor(addr / PAGE_SIZE), Math.ceil((addr + length) / PAGE_SIZE)];
  }

  private checkLive(what: string): void {
    if (!this.live) throw new IommufdError('ESRCH', `${what}: pid ${this.pid} has exited`);
  }
}

function checkProt(prot: unknown, what: string): void {
  if (prot !== 'r' && prot !== 'rw') fail('EINVAL', `${what}: prot ${String(prot)} is not 'r' or 'rw'`);
}

function hx(v: number): string {
  return `0x${v.toString(16)}`;
}
