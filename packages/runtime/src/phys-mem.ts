/**
 * Host physical memory: one SharedArrayBuffer shared by the main thread and every instance
 * worker, carved into 4 KiB frames by a thread-safe bitmap allocator.
 *
 * Addresses are JS numbers (byte addresses, at most 2^32 bytes of memory). All accessors are
 * bounds-checked and little-endian (the typed-array views use the platform byte order, which is
 * little-endian on every platform Node supports; checked at load time below).
 */
import { RuntimeError, hex } from './errors.js';

/** Size of one physical frame in bytes. */
export const FRAME_SIZE = 4096;
/** log2 of {@link FRAME_SIZE}. */
export const FRAME_SHIFT = 12;
/** Default size of a {@link PhysMem}: 256 MiB. */
export const DEFAULT_PHYS_MEM_BYTES = 256 * 1024 * 1024;

/** Largest supported memory: 2^32 bytes (addresses fit a 32-bit unsigned word). */
const MAX_BYTES = 2 ** 32;
const TWO_32 = 4294967296;
/** Upper 32-bit half limit so that lo + hi * 2^32 stays below 2^53. */
const HI_LIMIT = 2 ** 21;

// Layout of the allocator SAB (Int32 words). The bitmap starts on its own 64-byte line.
const A_LOCK = 0; // spin lock: 0 free, 1 held
const A_USED = 1; // frames handed out (frame 0, reserved, not counted)
const A_HINT = 2; // next-fit search start (frame number)
const A_FRAMES = 3; // frame count, so attach() can validate the handle
const A_BITMAP = 16; // first bitmap word: bit (f & 31) of word A_BITMAP + (f >>> 5) = frame f in use

if (new Uint8Array(new Uint32Array([0x01020304]).buffer)[0] !== 0x04) {
  throw new RuntimeError('BAD_ARGUMENT', 'PhysMem needs a little-endian platform');
}

/**
 * The plain-data part of a {@link PhysMem}: both SharedArrayBuffers. Crosses postMessage and
 * workerData (SABs are shared, not copied); {@link PhysMem.attach} rebuilds a PhysMem from it.
 */
export interface PhysMemHandle {
  /** The memory bytes. */
  readonly data: SharedArrayBuffer;
  /** The allocator state (lock, counters, frame bitmap). */
  readonly alloc: SharedArrayBuffer;
}

/**
 * Host physical memory in a SharedArrayBuffer with a frame allocator.
 *
 * Frame 0 is never handed out, so PA 0 can mean "none". The allocator is safe to use from
 * several threads at once (a bitmap guarded by an Atomics spin lock in the `alloc` SAB).
 */
export class PhysMem {
  /** The shareable handle: pass it to another thread and call {@link PhysMem.attach} there. */
  readonly handle: PhysMemHandle;
  /** Size in bytes. */
  readonly size: number;
  /** Number of 4 KiB frames (`size / FRAME_SIZE`). */
  readonly frameCount: number;
  /** Byte view of the whole memory (hot paths: do your own bounds check). */
  readonly u8: Uint8Array;
  /** 32-bit word view of the whole memory: word `pa >>> 2` (hot paths: do your own bounds check). */
  readonly u32: Uint32Array;
  /** Signed 32-bit word view of the whole memory, for Atomics (wait/notify need an Int32Array). */
  readonly i32: Int32Array;
  private readonly a: Int32Array;

  /**
   * Allocates a new memory of `bytes` bytes (a positive multiple of 4096, at most 2^32).
   * @throws RuntimeError BAD_ARGUMENT for any other size.
   */
  static create(bytes: number = DEFAULT_PHYS_MEM_BYTES): PhysMem {
    if (!Number.isInteger(bytes) || bytes <= 0 || bytes > MAX_BYTES || bytes % FRAME_SIZE !== 0) {
      throw new RuntimeError(
        'BAD_ARGUMENT',
        `PhysMem size ${String(bytes)} is not a positive multiple of ${FRAME_SIZE} bytes up to 2^32`,
      );
    }
    const frames = bytes / FRAME_SIZE;
    const data = new SharedArrayBuffer(bytes);
    const alloc = new SharedArrayBuffer((A_BITMAP + Math.ceil(frames / 32)) * 4);
    const a = new Int32Array(alloc);
    a[A_FRAMES] = frames;
    a[A_HINT] = 1;
    a[A_BITMAP] = 1; // frame 0 reserved: never handed out
    return new PhysMem({ data, alloc });
  }

  /**
   * Rebuilds a PhysMem from a handle made on another thread: same bytes, same allocator.
   * @throws RuntimeError BAD_ARGUMENT if the handle is not a PhysMem handle.
   */
  static attach(h: PhysMemHandle): PhysMem {
    return new PhysMem(h);
  }

  private constructor(h: PhysMemHandle) {
    if (
      h === null ||
      typeof h !== 'object' ||
      !(h.data instanceof SharedArrayBuffer) ||
      !(h.alloc instanceof SharedArrayBuffer) ||
      h.alloc.byteLength < A_BITMAP * 4
    ) {
      throw new RuntimeError('BAD_ARGUMENT', 'not a PhysMemHandle: expected { data, alloc } SharedArrayBuffers');
    }
    const a = new Int32Array(h.alloc);
    const frames = a[A_FRAMES];
    if (
      frames * FRAME_SIZE !== h.data.byteLength ||
      h.alloc.byteLength !== (A_BITMAP + Math.ceil(frames / 32)) * 4
    ) {
      throw new RuntimeError(
        'BAD_ARGUMENT',
        `PhysMemHandle is inconsistent: ${h.data.byteLength} data bytes, allocator for ${frames} frames`,
      );
    }
    this.handle = { data: h.data, alloc: h.alloc };
    this.size = h.data.byteLength;
    this.frameCount = frames;
    this.u8 = new Uint8Array(h.data);
    this.u32 = new Uint32Array(h.data);
    this.i32 = new Int32Array(h.data);
    this.a = a;
  }

  // ---------------------------------------------------------------- allocator

  /** Number of frames that can still be allocated (frame 0 is reserved and not counted). */
  get freeFrameCount(): number {
    return this.frameCount - 1 - Atomics.load(this.a, A_USED);
  }

  /** Number of frames currently handed out. */
  get allocatedFrameCount(): number {
    return Atomics.load(this.a, A_USED);
  }

  /**
   * Allocates one zero-filled frame.
   * @returns its physical address (frame aligned, never 0)
   * @throws RuntimeError NO_MEMORY when every frame is in use.
   */
  allocFrame(): number {
    return this.allocFrames(1, 1);
  }

  /**
   * Allocates `count` contiguous zero-filled frames whose first frame number is a multiple of
   * `alignFrames` (a power of two).
   * @returns the physical address of the first frame
   * @throws RuntimeError BAD_ARGUMENT for a bad count or alignment; NO_MEMORY when no such run is free.
   */
  allocFrames(count: number, alignFrames = 1): number {
    if (!Number.isInteger(count) || count <= 0 || count > this.frameCount) {
      throw new RuntimeError(
        'BAD_ARGUMENT',
        `allocFrames: count ${String(count)} is not an integer in 1..${this.frameCount}`,
      );
    }
    if (
      !Number.isInteger(alignFrames) ||
      alignFrames <= 0 ||
      alignFrames > this.frameCount ||
      (alignFrames & (alignFrames - 1)) !== 0
    ) {
      throw new RuntimeError(
        'BAD_ARGUMENT',
        `allocFrames: alignFrames ${String(alignFrames)} is not a power of two up to ${this.frameCount}`,
      );
    }
    const a = this.a;
    let first: number;
    this.lock();
    try {
      const hint = a[A_HINT];
      first = this.findRun(hint, count, alignFrames);
      if (first < 0 && hint > 1) first = this.findRun(1, count, alignFrames);
      if (first < 0) {
        throw new RuntimeError(
          'NO_MEMORY',
          `out of physical memory: no free run of ${count} frame(s) aligned to ${alignFrames} ` +
            `(${this.frameCount - 1 - a[A_USED]} of ${this.frameCount} frames free)`,
        );
      }
      for (let f = first; f < first + count; f++) a[A_BITMAP + (f >>> 5)] |= 1 << (f & 31);
      a[A_USED] += count;
      const next = first + count;
      a[A_HINT] = next >= this.frameCount ? 1 : next;
    } finally {
      this.unlock();
    }
    const pa = first * FRAME_SIZE;
    this.u8.fill(0, pa, pa + count * FRAME_SIZE);
    return pa;
  }

  /**
   * Frees `count` frames starting at `pa`. Either every frame of the run is freed or none is.
   * @throws RuntimeError MISALIGNED if `pa` is not frame aligned; OUT_OF_RANGE if the run is
   *   outside memory; BAD_ARGUMENT for a bad count; DOUBLE_FREE if any frame of the run is not
   *   allocated (nothing is freed then).
   */
  freeFrames(pa: number, count = 1): void {
    if (!Number.isInteger(count) || count <= 0) {
      throw new RuntimeError('BAD_ARGUMENT', `freeFrames: count ${String(count)} is not a positive integer`);
    }
    if (!Number.isInteger(pa) || pa < 0 || pa + count * FRAME_SIZE > this.size) {
      throw new RuntimeError(
        'OUT_OF_RANGE',
        `freeFrames: ${count} frame(s) at PA ${hex(pa)} are outside physical memory (size ${hex(this.size)})`,
      );
    }
    if (pa % FRAME_SIZE !== 0) {
      throw new RuntimeError('MISALIGNED', `freeFrames: PA ${hex(pa)} is not ${FRAME_SIZE}-byte aligned`);
    }
    const a = this.a;
    const first = pa / FRAME_SIZE;
    this.lock();
    try {
      for (let f = first; f < first + count; f++) {
        if (f === 0 || (a[A_BITMAP + (f >>> 5)] & (1 << (f & 31))) === 0) {
          throw new RuntimeError(
            'DOUBLE_FREE',
            `freeFrames: frame at PA ${hex(f * FRAME_SIZE)} is not allocated` +
              (count > 1 ? ` (run of ${count} at ${hex(pa)}; nothing freed)` : ''),
          );
        }
      }
      for (let f = first; f < first + count; f++) a[A_BITMAP + (f >>> 5)] &= ~(1 << (f & 31));
      a[A_USED] -= count;
    } finally {
      this.unlock();
    }
  }

  /** Whether the frame containing `pa` is currently allocated (false for frame 0 and out-of-range addresses). */
  isAllocated(pa: number): boolean {
    if (!Number.isInteger(pa) || pa < FRAME_SIZE || pa >= this.size) return false;
    const f = Math.floor(pa / FRAME_SIZE);
    return (Atomics.load(this.a, A_BITMAP + (f >>> 5)) & (1 << (f & 31))) !== 0;
  }

  /** First-fit search from frame `start` for `count` free frames aligned to `align`; -1 if none. */
  private findRun(start: number, count: number, align: number): number {
    const a = this.a;
    const end = this.frameCount;
    let f = alignUp(start < 1 ? 1 : start, align);
    while (f + count <= end) {
      // skip fully used bitmap words quickly
      if ((f & 31) === 0 && a[A_BITMAP + (f >>> 5)] === -1) {
        f = alignUp(f + 32, align);
        continue;
      }
      let j = 0;
      while (j < count && (a[A_BITMAP + ((f + j) >>> 5)] & (1 << ((f + j) & 31))) === 0) j++;
      if (j === count) return f;
      f = alignUp(f + j + 1, align);
    }
    return -1;
  }

  private lock(): void {
    const a = this.a;
    let spins = 0;
    while (Atomics.compareExchange(a, A_LOCK, 0, 1) !== 0) {
      if (++spins > 1000) Atomics.wait(a, A_LOCK, 1, 1); // held for long: sleep ≤ 1 ms
    }
  }

  private unlock(): void {
    Atomics.store(this.a, A_LOCK, 0);
    Atomics.notify(this.a, A_LOCK, 1);
  }

  // ---------------------------------------------------------------- access

  /** Whether `[pa, pa + len)` lies inside memory (never throws). */
  inRange(pa: number, len: number): boolean {
    return Number.isInteger(pa) && Number.isInteger(len) && pa >= 0 && len >= 0 && pa + len <= this.size;
  }

  private check(pa: number, len: number, align: number, op: string): void {
    if (!(Number.isInteger(pa) && pa >= 0 && pa + len <= this.size)) {
      throw new RuntimeError(
        'OUT_OF_RANGE',
        `${op}: ${len} byte(s) at PA ${hex(pa)} are outside physical memory (size ${hex(this.size)})`,
      );
    }
    if ((pa & (align - 1)) !== 0) {
      throw new RuntimeError('MISALIGNED', `${op}: PA ${hex(pa)} is not ${align}-byte aligned`);
    }
  }

  private checkLen(len: number, op: string): void {
    if (!Number.isInteger(len) || len < 0) {
      throw new RuntimeError('BAD_ARGUMENT', `${op}: length ${String(len)} is not a non-negative integer`);
    }
  }

  /** Reads the byte at `pa`. @throws RuntimeError OUT_OF_RANGE */
  read8(pa: number): number {
    this.check(pa, 1, 1, 'read8');
    return this.u8[pa];
  }

  /** Writes the low 8 bits of `v` at `pa`. @throws RuntimeError OUT_OF_RANGE */
  write8(pa: number, v: number): void {
    this.check(pa, 1, 1, 'write8');
    this.u8[pa] = v;
  }

  /** Reads the unsigned 32-bit word at `pa` (4-aligned). @throws RuntimeError OUT_OF_RANGE, MISALIGNED */
  read32(pa: number): number {
    this.check(pa, 4, 4, 'read32');
    return this.u32[pa >>> 2];
  }

  /** Writes `v` (taken modulo 2^32) at `pa` (4-aligned). @throws RuntimeError OUT_OF_RANGE, MISALIGNED */
  write32(pa: number, v: number): void {
    this.check(pa, 4, 4, 'write32');
    this.u32[pa >>> 2] = v;
  }

  /**
   * Reads the 64-bit little-endian value at `pa` (8-aligned) as a number.
   * @throws RuntimeError OUT_OF_RANGE, MISALIGNED; BAD_ARGUMENT if the value is 2^53 or more
   *   (use {@link PhysMem.read32} / {@link PhysMem.read64Hi} for full 64-bit fields).
   */
  read64(pa: number): number {
    this.check(pa, 8, 8, 'read64');
    const i = pa >>> 2;
    const hi = this.u32[i + 1];
    if (hi >= HI_LIMIT) {
      throw new RuntimeError(
        'BAD_ARGUMENT',
        `read64: value at PA ${hex(pa)} (hi ${hex(hi)}, lo ${hex(this.u32[i])}) does not fit below 2^53; read it as two halves`,
      );
    }
    return this.u32[i] + hi * TWO_32;
  }

  /** Reads the upper 32 bits of the 64-bit value at `pa` (8-aligned). @throws RuntimeError OUT_OF_RANGE, MISALIGNED */
  read64Hi(pa: number): number {
    this.check(pa, 8, 8, 'read64Hi');
    return this.u32[(pa >>> 2) + 1];
  }

  /**
   * Writes the integer `v` (0 <= v < 2^53) as a 64-bit little-endian value at `pa` (8-aligned).
   * @throws RuntimeError OUT_OF_RANGE, MISALIGNED; BAD_ARGUMENT for a bad value (memory unchanged).
   */
  write64(pa: number, v: number): void {
    this.check(pa, 8, 8, 'write64');
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new RuntimeError('BAD_ARGUMENT', `write64: value ${String(v)} is not an integer in 0..2^53-1`);
    }
    const i = pa >>> 2;
    this.u32[i] = v >>> 0;
    this.u32[i + 1] = Math.floor(v / TWO_32);
  }

  /**
   * Writes a 64-bit value given as two 32-bit halves (each taken modulo 2^32) at `pa` (8-aligned).
   * @throws RuntimeError OUT_OF_RANGE, MISALIGNED
   */
  write64Parts(pa: number, lo: number, hi: number): void {
    this.check(pa, 8, 8, 'write64Parts');
    const i = pa >>> 2;
    this.u32[i] = lo;
    this.u32[i + 1] = hi;
  }

  /** Returns a copy of `len` bytes at `pa`. @throws RuntimeError OUT_OF_RANGE, BAD_ARGUMENT */
  readBytes(pa: number, len: number): Uint8Array {
    this.checkLen(len, 'readBytes');
    this.check(pa, len, 1, 'readBytes');
    return this.u8.slice(pa, pa + len);
  }

  /** Copies `src` into memory at `pa`. @throws RuntimeError OUT_OF_RANGE */
  writeBytes(pa: number, src: Uint8Array): void {
    this.check(pa, src.length, 1, 'writeBytes');
    this.u8.set(src, pa);
  }

  /** Copies `len` bytes from `srcPa` to `dstPa` (overlap-safe). @throws RuntimeError OUT_OF_RANGE, BAD_ARGUMENT */
  copy(dstPa: number, srcPa: number, len: number): void {
    this.checkLen(len, 'copy');
    this.check(srcPa, len, 1, 'copy (source)');
    this.check(dstPa, len, 1, 'copy (destination)');
    this.u8.copyWithin(dstPa, srcPa, srcPa + len);
  }

  /** Sets `len` bytes at `pa` to `byte` (default 0). @throws RuntimeError OUT_OF_RANGE, BAD_ARGUMENT */
  fill(pa: number, len: number, byte = 0): void {
    this.checkLen(len, 'fill');
    this.check(pa, len, 1, 'fill');
    this.u8.fill(byte, pa, pa + len);
  }
}

function alignUp(v: number, align: number): number {
  return Math.ceil(v / align) * align;
}
