/**
 * Memfd: an in-memory file of pages (memfd_create(2) / shmem), the source of IOMMU_IOAS_MAP_FILE.
 *
 * Pages live in a {@link PageObject} (the page cache) and are populated on first write, pin or
 * mapping fault (reads of a hole return zeros without populating). `mmap(..., { file })` of a
 * process maps the same pages (MAP_SHARED: writes go to the file; MAP_PRIVATE: copy-on-write).
 * Truncating below a pinned range drops the pages from the file but the pinned frames stay
 * allocated until unpinned (iommufd keeps DMA to them working, like the kernel's pinned folios).
 */
import { type PhysMem } from '@iommulab/runtime';
import { fail } from '../errors.js';
import { PAGE_SIZE } from '../uapi/u64.js';
import { FrameTable, PageObject, forEachPageChunk, userMemoryFailpoint } from './frames.js';

let nextFd = 3;

/** A memfd: a resizable file of 4 KiB pages backed by {@link PhysMem} frames. */
export class Memfd {
  /** The memory its pages come from. */
  readonly mem: PhysMem;
  /** A file-descriptor-like number (informational; unique per memfd). */
  readonly fd: number;
  /** @internal The page cache (shared with mappings of this file). */
  readonly obj: PageObject;
  private open = true;

  private constructor(mem: PhysMem, size: number) {
    this.mem = mem;
    this.fd = nextFd++;
    this.obj = new PageObject(FrameTable.of(mem), size);
  }

  /**
   * Creates a memfd of `size` bytes (memfd_create + ftruncate); its pages read as zeros.
   * @throws IommufdError EINVAL for a size that is not a non-negative safe integer.
   */
  static create(mem: PhysMem, size: number): Memfd {
    checkSize(size, 'Memfd.create');
    return new Memfd(mem, size);
  }

  /** Size in bytes (i_size). */
  get size(): number {
    return this.obj.size;
  }

  /** False after {@link close}. */
  get isOpen(): boolean {
    return this.open;
  }

  /**
   * ftruncate(2). Shrinking drops the pages wholly past the new end (pinned frames stay allocated
   * until unpinned) and zeroes the rest of a partial last page; growing adds holes.
   * @throws IommufdError EINVAL for a bad size; EBADF after close.
   */
  truncate(size: number): void {
    this.checkOpen('truncate');
    checkSize(size, 'Memfd.truncate');
    this.obj.truncate(size);
  }

  /**
   * pread(2): up to `length` bytes from `offset`; short (possibly empty) at end of file.
   * @throws IommufdError EINVAL for a bad offset/length; EBADF after close.
   */
  read(offset: number, length: number): Uint8Array {
    this.checkOpen('read');
    checkSize(offset, 'Memfd.read offset');
    checkSize(length, 'Memfd.read length');
    const end = Math.min(this.obj.size, offset + length);
    const out = new Uint8Array(Math.max(0, end - offset));
    const u8 = this.mem.u8;
    forEachPageChunk(offset, end, (idx, inPage, n, pos) => {
      const f = this.obj.frame(idx, false);
      if (f !== 0) out.set(u8.subarray(f * PAGE_SIZE + inPage, f * PAGE_SIZE + inPage + n), pos - offset);
    });
    return out;
  }

  /**
   * pwrite(2): writes `data` at `offset`, extending the file if it ends beyond the current size.
   * @throws IommufdError EINVAL for a bad offset; ENOMEM if frames run out; EBADF after close.
   */
  write(offset: number, data: Uint8Array): void {
    this.checkOpen('write');
    checkSize(offset, 'Memfd.write offset');
    const end = offset + data.length;
    if (!Number.isSafeInteger(end)) fail('EINVAL', `Memfd.write: end ${end} out of range`);
    if (end > this.obj.size) this.obj.size = end;
    const u8 = this.mem.u8;
    forEachPageChunk(offset, end, (idx, inPage, n, pos) => {
      const f = this.obj.frame(idx, true);
      u8.set(data.subarray(pos - offset, pos - offset + n), f * PAGE_SIZE + inPage);
    });
  }

  /**
   * Pins `npages` pages of the file starting at the page containing byte `offset` (what
   * memfd_pin_folios() does for IOMMU_IOAS_MAP_FILE): populates holes, takes a pin + reference on
   * each frame. A memfd is always writable, so `write` changes nothing.
   * @returns the PA of each page (written to `into` from `intoOff` when given, and `into` returned).
   * @throws IommufdError EINVAL if the range reaches past the (page-rounded) end of file or the
   *   arguments are bad (nothing pinned); ENOMEM if frames run out (nothing stays pinned);
   *   EBADF after close.
   */
  pin(offset: number, npages: number, write: boolean, into?: Float64Array, intoOff = 0): Float64Array {
    void write;
    this.checkOpen('pin');
    checkSize(offset, 'Memfd.pin offset');
    if (!Number.isSafeInteger(npages) || npages <= 0) fail('EINVAL', `Memfd.pin: npages ${String(npages)}`);
    const first = Math.floor(offset / PAGE_SIZE);
    if (first + npages > this.obj.sizePages) {
      fail(
        'EINVAL',
        `Memfd.pin: pages [${first}, ${first + npages}) reach past the end of the file (${this.obj.size} bytes)`,
      );
    }
    userMemoryFailpoint('user.pin');
    const out = into ?? new Float64Array(npages);
    const off0 = into === undefined ? 0 : intoOff;
    const progress = { done: 0 };
    const ft = this.obj.ft;
    try {
      this.obj.store.acquire(first, npages, ft, out, off0, true, progress);
    } catch (e) {
      for (let i = 0; i < progress.done; i++) ft.unpin1(out[off0 + i] / PAGE_SIZE);
      ft.flush();
      throw e;
    }
    return out;
  }

  /**
   * Drops one pin from each PA (as returned by {@link pin}; a frame pinned through a process works
   * too). A frame no longer in the file (truncated) is freed with its last pin.
   * @throws IommufdError EINVAL if a PA is not pinned (nothing changes).
   */
  unpin(pas: ArrayLike<number>, from?: number, to?: number): void {
    this.obj.ft.unpinPas(pas, 'Memfd.unpin', from, to);
  }

  /**
   * Pins held on the page containing byte `offset` (0 for a hole).
   * @throws IommufdError EINVAL for an offset at or beyond the page-rounded end of file.
   */
  pinCount(offset: number): number {
    checkSize(offset, 'Memfd.pinCount offset');
    const idx = Math.floor(offset / PAGE_SIZE);
    if (idx >= this.obj.sizePages) fail('EINVAL', `Memfd.pinCount: offset ${offset} is past the end of the file`);
    const f = this.obj.frame(idx, false);
    return f === 0 ? 0 : this.obj.ft.pins[f];
  }

  /**
   * close(2): drops the file's own reference. Pages stay while a process maps the file; pinned
   * frames stay until unpinned. Later calls (other than unpin / close) throw EBADF.
   */
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.obj.put();
    this.obj.ft.flush();
  }

  private checkOpen(what: string): void {
    if (!this.open) fail('EBADF', `Memfd.${what}: memfd ${this.fd} is closed`);
  }
}

function checkSize(v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) fail('EINVAL', `${what} ${String(v)} is not a non-negative integer`);
}
