/**
 * Frame bookkeeping for the user-memory model: per-frame reference counts over a {@link PhysMem},
 * a sparse page table keyed by page number, and the shared page store behind memfds and shared
 * anonymous mappings.
 *
 * Kernel analogy (mm/): a frame's `refs` is the page refcount (one per page-table / page-cache
 * entry that maps it plus one per pin), and `pins` is the part of it taken by pin_user_pages()
 * (what `folio_maybe_dma_pinned()` and the selftest's MD_CHECK_REFS look at). A frame goes back to
 * PhysMem when `refs` drops to 0, so a page that is unmapped, truncated away, or left behind by an
 * exiting process stays allocated for as long as somebody holds a pin on it.
 *
 * Hot paths use typed arrays (refcounts indexed by frame number, page-table leaves of 512 frame
 * numbers) and do not allocate per page.
 */
import { RuntimeError, type PhysMem } from '@iommulab/runtime';
import { IommufdError } from '../errors.js';
import { PAGE_SIZE } from '../uapi/u64.js';

/** Entries per page-table leaf (one leaf covers 2 MiB of a 4 KiB-page address space, like a PMD). */
export const LEAF_ENTRIES = 512;

const tables = new WeakMap<PhysMem, FrameTable>();

/**
 * Fault-injection hook (the model's fail_nth, see src/fail-nth.ts): when set, it is called at each
 * allocation point of the user-memory model (`user.pin`: one pin call of a process or memfd;
 * `user.frame_alloc`: one allocation of frames from PhysMem) before anything changes, and may
 * throw (ENOMEM) to fail that allocation. The user-memory model does not know iommufd: the
 * injector installs and removes the hook itself.
 */
let faultHook: ((site: string) => void) | null = null;

/** Installs (or with null removes) the user-memory fault-injection hook. */
export function setUserMemoryFaultHook(hook: ((site: string) => void) | null): void {
  faultHook = hook;
}

/** Calls the fault-injection hook, if one is installed. */
export function userMemoryFailpoint(site: string): void {
  if (faultHook !== null) faultHook(site);
}

/**
 * Reference counts for every frame of one {@link PhysMem}. One table per PhysMem, shared by every
 * process and memfd built on it ({@link FrameTable.of}), so a frame can be referenced from several
 * owners (a memfd's page cache, a shared mapping, pins) and is freed exactly once.
 *
 * Frames are identified by frame number (`pa / PAGE_SIZE`); frame 0 is never handed out by
 * PhysMem, so 0 means "no frame" in page tables.
 */
export class FrameTable {
  /** The memory the frames come from. */
  readonly mem: PhysMem;
  /** Total references per frame (page-table / page-store entries + pins). */
  readonly refs: Uint32Array;
  /** Pin references per frame (a subset of {@link refs}). */
  readonly pins: Uint32Array;
  // Frames whose last reference went away, batched into runs for PhysMem.freeFrames.
  private pendStart = 0;
  private pendLen = 0;

  private constructor(mem: PhysMem) {
    this.mem = mem;
    this.refs = new Uint32Array(mem.frameCount);
    this.pins = new Uint32Array(mem.frameCount);
  }

  /** The (lazily created) frame table of `mem`. */
  static of(mem: PhysMem): FrameTable {
    let t = tables.get(mem);
    if (t === undefined) {
      t = new FrameTable(mem);
      tables.set(mem, t);
    }
    return t;
  }

  /**
   * Allocates one zero-filled frame with one reference.
   * @throws IommufdError ENOMEM when PhysMem is exhausted.
   */
  alloc1(): number {
    userMemoryFailpoint('user.frame_alloc');
    let pa: number;
    try {
      pa = this.mem.allocFrame();
    } catch (e) {
      throw toEnomem(e);
    }
    const f = pa / PAGE_SIZE;
    this.refs[f] = 1;
    return f;
  }

  /**
   * Allocates `count` zero-filled frames (one reference each) and stores their numbers in
   * `out[outOff .. outOff+count)`. Tries one contiguous run first (aligned to `alignFrames` when
   * asked: a 2 MiB-aligned VA chunk gets a 2 MiB-aligned PA run, the way THP backs an aligned
   * anonymous region), then falls back to single frames. All or nothing.
   * @throws IommufdError ENOMEM when PhysMem cannot supply them (nothing allocated then).
   */
  allocInto(count: number, out: Uint32Array, outOff: number, alignFrames = 1): void {
    userMemoryFailpoint('user.frame_alloc');
    const mem = this.mem;
    const refs = this.refs;
    let pa = -1;
    if (alignFrames > mem.frameCount) alignFrames = 1;
    if (count > 1 && count < mem.frameCount) {
      try {
        pa = mem.allocFrames(count, alignFrames);
      } catch (e) {
        if (!isNoMemory(e)) throw e;
        if (alignFrames > 1) {
          try {
            pa = mem.allocFrames(count, 1);
          } catch (e2) {
            if (!isNoMemory(e2)) throw e2;
          }
        }
      }
    }
    if (pa >= 0) {
      const f0 = pa / PAGE_SIZE;
      for (let i = 0; i < count; i++) {
        refs[f0 + i] = 1;
        out[outOff + i] = f0 + i;
      }
      return;
    }
    let i = 0;
    try {
      for (; i < count; i++) {
        const f = mem.allocFrame() / PAGE_SIZE;
        refs[f] = 1;
        out[outOff + i] = f;
      }
    } catch (e) {
      for (let j = 0; j < i; j++) {
        refs[out[outOff + j]] = 0;
        mem.freeFrames(out[outOff + j] * PAGE_SIZE, 1);
        out[outOff + j] = 0;
      }
      throw toEnomem(e);
    }
  }

  /** Drops one reference; the frame is queued for freeing at 0 (call {@link flush}). */
  unref(f: number): void {
    const r = this.refs[f];
    if (r === 0) throw new Error(`user-memory: frame ${f} has no reference to drop`);
    this.refs[f] = r - 1;
    if (r === 1) this.release(f);
  }

  /** Drops one pin (and the reference it holds). */
  unpin1(f: number): void {
    this.pins[f]--;
    this.unref(f);
  }

  /**
   * Unpins a list of PAs atomically: every PA must name a pinned frame (counting repeats), else
   * `EINVAL` and nothing changes. Frames whose last reference goes away are freed. Only the
   * entries `[from, to)` of `pas` are used (default: all; avoids a `subarray` per call).
   */
  unpinPas(pas: ArrayLike<number>, what: string, from = 0, to = pas.length): void {
    const pins = this.pins;
    const n = to;
    const limit = this.mem.size;
    let i = from;
    for (; i < n; i++) {
      const pa = pas[i];
      if (!(pa >= PAGE_SIZE && pa < limit && pa % PAGE_SIZE === 0) || pins[pa / PAGE_SIZE] === 0) break;
      pins[pa / PAGE_SIZE]--;
    }
    if (i !== n) {
      for (let j = from; j < i; j++) pins[pas[j] / PAGE_SIZE]++;
      throw new IommufdError('EINVAL', `${what}: PA ${String(pas[i])} (entry ${i - from}) is not a pinned page`);
    }
    try {
      for (let j = from; j < n; j++) this.unref(pas[j] / PAGE_SIZE);
    } finally {
      this.flush();
    }
  }

  /** Frees the frames queued by {@link unref} (coalescing runs of consecutive frames). */
  flush(): void {
    if (this.pendLen !== 0) {
      this.mem.freeFrames(this.pendStart * PAGE_SIZE, this.pendLen);
      this.pendLen = 0;
    }
  }

  private release(f: number): void {
    if (this.pendLen !== 0 && f === this.pendStart + this.pendLen) {
      this.pendLen++;
      return;
    }
    this.flush();
    this.pendStart = f;
    this.pendLen = 1;
  }
}

/**
 * A sparse table from page number to frame number (0 = not populated): a Map of 512-entry
 * Uint32Array leaves keyed by `floor(pn / 512)`. Used as a process's page table (key = virtual
 * page number) and as a page store (key = page index in a file). Each non-zero entry holds one
 * frame reference.
 */
export class PageTable {
  /** Leaves by `floor(pn / LEAF_ENTRIES)`. */
  readonly leaves = new Map<number, Uint32Array>();

  /** Frame number at `pn`, 0 if none. */
  get(pn: number): number {
    const key = Math.floor(pn / LEAF_ENTRIES);
    const leaf = this.leaves.get(key);
    return leaf === undefined ? 0 : leaf[pn - key * LEAF_ENTRIES];
  }

  /** Stores frame `f` at `pn` (the caller transfers one reference to the table). */
  set(pn: number, f: number): void {
    const key = Math.floor(pn / LEAF_ENTRIES);
    let leaf = this.leaves.get(key);
    if (leaf === undefined) {
      leaf = new Uint32Array(LEAF_ENTRIES);
      this.leaves.set(key, leaf);
    }
    leaf[pn - key * LEAF_ENTRIES] = f;
  }

  /** Number of populated entries in `[start, end)`. */
  count(start: number, end: number): number {
    let n = 0;
    this.forEach(start, end, () => {
      n++;
    });
    return n;
  }

  /** Calls `cb(pn, frame)` for each populated entry in `[start, end)`, ascending. */
  forEach(start: number, end: number, cb: (pn: number, f: number) => void): void {
    for (const key of this.keysIn(start, end)) {
      const leaf = this.leaves.get(key);
      if (leaf === undefined) continue;
      const base = key * LEAF_ENTRIES;
      const lo = Math.max(start, base) - base;
      const hi = Math.min(end, base + LEAF_ENTRIES) - base;
      for (let i = lo; i < hi; i++) if (leaf[i] !== 0) cb(base + i, leaf[i]);
    }
  }

  /** Removes every entry in `[start, end)`, dropping its frame reference (caller flushes `ft`). */
  clearRange(start: number, end: number, ft: FrameTable): void {
    for (const key of this.keysIn(start, end)) {
      const leaf = this.leaves.get(key);
      if (leaf === undefined) continue;
      const base = key * LEAF_ENTRIES;
      const lo = Math.max(start, base) - base;
      const hi = Math.min(end, base + LEAF_ENTRIES) - base;
      for (let i = lo; i < hi; i++) {
        const f = leaf[i];
        if (f !== 0) {
          leaf[i] = 0;
          ft.unref(f);
        }
      }
      if (lo === 0 && hi === LEAF_ENTRIES) this.leaves.delete(key);
    }
  }

  /**
   * Populates `[start, start+n)` (missing entries get fresh zero-filled frames; a missing run that
   * is a whole 2 MiB leaf gets a 2 MiB-aligned PA run) and writes each page's PA to
   * `out[outOff + i]`. With `pin`, each frame also gains a pin and a reference.
   * @throws IommufdError ENOMEM if frames run out (entries populated so far stay populated; the
   *   first `done` outputs, pinned when `pin`, are reported through `progress.done`).
   */
  acquire(
    start: number,
    n: number,
    ft: FrameTable,
    out: Float64Array,
    outOff: number,
    pin: boolean,
    progress: { done: number },
  ): void {
    const refs = ft.refs;
    const pins = ft.pins;
    let i = 0;
    while (i < n) {
      const pn = start + i;
      const key = Math.floor(pn / LEAF_ENTRIES);
      let leaf = this.leaves.get(key);
      if (leaf === undefined) {
        leaf = new Uint32Array(LEAF_ENTRIES);
        this.leaves.set(key, leaf);
      }
      const base = key * LEAF_ENTRIES;
      let li = pn - base;
      const lend = Math.min(LEAF_ENTRIES, li + (n - i));
      while (li < lend) {
        let f = leaf[li];
        if (f === 0) {
          let m = 1;
          while (li + m < lend && leaf[li + m] === 0) m++;
          ft.allocInto(m, leaf, li, m === LEAF_ENTRIES ? LEAF_ENTRIES : 1);
          f = leaf[li];
        }
        if (pin) {
          refs[f]++;
          pins[f]++;
        }
        out[outOff + i] = f * PAGE_SIZE;
        i++;
        li++;
        progress.done = i;
      }
    }
  }

  /** Leaf keys that may hold entries of `[start, end)`: the smaller of the key range and the map. */
  private keysIn(start: number, end: number): number[] {
    if (end <= start) return [];
    const k0 = Math.floor(start / LEAF_ENTRIES);
    const k1 = Math.floor((end - 1) / LEAF_ENTRIES);
    const keys: number[] = [];
    if (k1 - k0 + 1 <= this.leaves.size) {
      for (let k = k0; k <= k1; k++) keys.push(k);
    } else {
      for (const k of this.leaves.keys()) if (k >= k0 && k <= k1) keys.push(k);
      keys.sort((a, b) => a - b);
    }
    return keys;
  }
}

/**
 * A shared page store: the page cache of a memfd, or the shmem object behind a MAP_SHARED
 * anonymous mapping. Pages are populated on first use (zero-filled). `users` counts the handles
 * that keep it alive (the memfd's own file reference, one per mapping VMA); at 0 every page
 * reference is dropped (pinned frames survive until unpinned).
 */
export class PageObject {
  /** Page index -> frame. */
  readonly store = new PageTable();
  /** Size in bytes (pages beyond `ceil(size / PAGE_SIZE)` do not exist: SIGBUS / EINVAL). */
  size: number;
  /** Handles keeping the object alive. */
  users = 1;

  constructor(
    readonly ft: FrameTable,
    size: number,
  ) {
    this.size = size;
  }

  /** Number of pages (the last one may be partial). */
  get sizePages(): number {
    return Math.ceil(this.size / PAGE_SIZE);
  }

  /** Frame of page `idx`, populating it (zero-filled) if `populate`; 0 if absent and not populating. */
  frame(idx: number, populate: boolean): number {
    let f = this.store.get(idx);
    if (f === 0 && populate) {
      f = this.ft.alloc1();
      this.store.set(idx, f);
    }
    return f;
  }

  /** Takes a handle. */
  get(): this {
    this.users++;
    return this;
  }

  /** Drops a handle; the last one releases every page (caller flushes `ft`). */
  put(): void {
    if (--this.users === 0) this.store.clearRange(0, Number.MAX_SAFE_INTEGER, this.ft);
  }

  /**
   * Sets the size. Shrinking drops the pages wholly beyond the new end (pinned frames survive
   * until unpinned) and zeroes the tail of a now-partial last page, as truncate_pagecache() does.
   */
  truncate(size: number): void {
    if (size < this.size) {
      const keep = Math.ceil(size / PAGE_SIZE);
      this.store.clearRange(keep, Number.MAX_SAFE_INTEGER, this.ft);
      this.ft.flush();
      const tail = size % PAGE_SIZE;
      if (tail !== 0) {
        const f = this.store.get(keep - 1);
        if (f !== 0) this.ft.mem.u8.fill(0, f * PAGE_SIZE + tail, (f + 1) * PAGE_SIZE);
      }
    }
    this.size = size;
  }
}

function isNoMemory(e: unknown): boolean {
  return e instanceof RuntimeError && e.code === 'NO_MEMORY';
}

function toEnomem(e: unknown): unknown {
  if (isNoMemory(e)) {
    return new IommufdError('ENOMEM', `user-memory: out of physical memory (${(e as Error).message})`);
  }
  return e;
}

/**
 * Splits the byte range [start, end) at page boundaries: `fn(pageIndex, offsetInPage, bytes, pos)`
 * per piece, in order.
 */
export function forEachPageChunk(start: number, end: number, fn: (idx: number, inPage: number, n: number, pos: number) => void): void {
  let pos = start;
  while (pos < end) {
    const idx = Math.floor(pos / PAGE_SIZE);
    const inPage = pos - idx * PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - inPage, end - pos);
    fn(idx, inPage, n, pos);
    pos += n;
  }
}
