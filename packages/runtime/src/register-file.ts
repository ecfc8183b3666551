/**
 * An MMIO register block in shared memory.
 *
 * Layout of the SharedArrayBuffer: a 64-byte header of Int32 words (0: sw→hw doorbell
 * generation, 1: hw→sw irq generation, 2: control counter), then `size` bytes of registers.
 * Register offsets are relative to the start of the registers. Registers are accessed with
 * Atomics (sequentially consistent), so a driver that writes tables into PhysMem and then
 * writes a register publishes the tables to the model thread, as an MMIO write orders prior
 * memory writes on real hardware.
 *
 * Software (driver) writes ring the doorbell and call same-thread write listeners; hardware
 * (model) writes do neither.
 */
import { Doorbell } from './doorbell.js';
import { RuntimeError, hex } from './errors.js';

/** Plain-data description of a register file; crosses postMessage / workerData. */
export interface RegisterFileHandle {
  /** Header + registers. */
  readonly sab: SharedArrayBuffer;
  /** Size of the register block in bytes (excluding the header). */
  readonly size: number;
}

const HEADER_BYTES = 64;
const H_DOORBELL = 0;
const H_IRQ = 1;
const H_CONTROL = 2;
const TWO_32 = 4294967296;
const HI_LIMIT = 2 ** 21;

/** An MMIO register block (e.g. 0x20000 bytes for SMMUv3's two 64 KiB pages) in a SharedArrayBuffer. */
export class RegisterFile {
  /** Register block size in bytes (excluding the header). */
  readonly size: number;
  /** Plain-data handle for {@link RegisterFile.attach} on another thread. */
  readonly handle: RegisterFileHandle;
  /** Register words, unsigned: word `off >>> 2`. */
  readonly u32: Uint32Array;
  /** Register words, signed (same indices as `u32`), for Atomics.wait/notify on a register. */
  readonly i32: Int32Array;
  /** sw→hw: rung once by every software write. The model waits on it. */
  readonly doorbell: Doorbell;
  /** hw→sw: rung by {@link RegisterFile.raiseIrq}. The driver waits on it. */
  readonly irq: Doorbell;
  /** Control-plane counter: bumped by the host after posting a control call, so a parked worker returns to its event loop. */
  readonly control: Doorbell;

  private writeListeners: ReadonlyArray<(offset: number) => void> = [];
  private irqListeners: ReadonlyArray<() => void> = [];

  /**
   * Creates a register file of `size` bytes (a positive multiple of 8), all zero.
   * @throws RuntimeError BAD_ARGUMENT for a bad size.
   */
  static create(size: number): RegisterFile {
    if (!Number.isInteger(size) || size <= 0 || size % 8 !== 0) {
      throw new RuntimeError('BAD_ARGUMENT', `RegisterFile size ${String(size)} is not a positive multiple of 8 bytes`);
    }
    return new RegisterFile({ sab: new SharedArrayBuffer(HEADER_BYTES + size), size });
  }

  /**
   * Opens a register file made elsewhere (typically on another thread) from its handle.
   * @throws RuntimeError BAD_ARGUMENT if the handle is inconsistent.
   */
  static attach(h: RegisterFileHandle): RegisterFile {
    return new RegisterFile(h);
  }

  private constructor(h: RegisterFileHandle) {
    if (
      h === null ||
      typeof h !== 'object' ||
      !(h.sab instanceof SharedArrayBuffer) ||
      !Number.isInteger(h.size) ||
      h.size <= 0 ||
      h.size % 8 !== 0 ||
      h.sab.byteLength !== HEADER_BYTES + h.size
    ) {
      throw new RuntimeError(
        'BAD_ARGUMENT',
        'not a RegisterFileHandle: expected { sab, size } with sab.byteLength = 64 + size, size a multiple of 8',
      );
    }
    this.size = h.size;
    this.handle = { sab: h.sab, size: h.size };
    const header = new Int32Array(h.sab, 0, HEADER_BYTES / 4);
    this.doorbell = new Doorbell(header, H_DOORBELL);
    this.irq = new Doorbell(header, H_IRQ);
    this.control = new Doorbell(header, H_CONTROL);
    this.u32 = new Uint32Array(h.sab, HEADER_BYTES, h.size / 4);
    this.i32 = new Int32Array(h.sab, HEADER_BYTES, h.size / 4);
  }

  /** Validates an offset and returns its word index. */
  private word(off: number, width: 4 | 8, op: string): number {
    if (!(Number.isInteger(off) && off >= 0 && off + width <= this.size)) {
      throw new RuntimeError(
        'OUT_OF_RANGE',
        `${op}: offset ${hex(off)} is outside the ${hex(this.size)}-byte register file`,
      );
    }
    if ((off & (width - 1)) !== 0) {
      throw new RuntimeError('MISALIGNED', `${op}: offset ${hex(off)} is not ${width}-byte aligned`);
    }
    return off >>> 2;
  }

  private static checkValue64(v: number, op: string): void {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new RuntimeError('BAD_ARGUMENT', `${op}: value ${String(v)} is not an integer in 0..2^53-1`);
    }
  }

  private notifyWrite(off: number): void {
    this.doorbell.ring();
    const ls = this.writeListeners;
    for (let i = 0; i < ls.length; i++) ls[i](off);
  }

  // ------------------------------------------------------------------ software side

  /** Reads the unsigned 32-bit register at `off` (4-aligned). @throws RuntimeError OUT_OF_RANGE, MISALIGNED */
  read32(off: number): number {
    return Atomics.load(this.i32, this.word(off, 4, 'read32')) >>> 0;
  }

  /**
   * Reads the 64-bit register at `off` (8-aligned) as lo + hi * 2^32.
   * @throws RuntimeError OUT_OF_RANGE, MISALIGNED; BAD_ARGUMENT if the value is 2^53 or more (use read32 + read64Hi).
   */
  read64(off: number): number {
    const i = this.word(off, 8, 'read64');
    const lo = Atomics.load(this.i32, i) >>> 0;
    const hi = Atomics.load(this.i32, i + 1) >>> 0;
    if (hi >= HI_LIMIT) {
      throw new RuntimeError(
        'BAD_ARGUMENT',
        `read64: register at ${hex(off)} (hi ${hex(hi)}, lo ${hex(lo)}) does not fit below 2^53; read it as two halves`,
      );
    }
    return lo + hi * TWO_32;
  }

  /** Reads the upper 32 bits of the 64-bit register at `off` (8-aligned). @throws RuntimeError OUT_OF_RANGE, MISALIGNED */
  read64Hi(off: number): number {
    return Atomics.load(this.i32, this.word(off, 8, 'read64Hi') + 1) >>> 0;
  }

  /** Software write of a 32-bit register (`v` modulo 2^32); rings the doorbell and calls write listeners. */
  write32(off: number, v: number): void {
    Atomics.store(this.i32, this.word(off, 4, 'write32'), v | 0);
    this.notifyWrite(off);
  }

  /**
   * Software write of a 64-bit register (0 <= v < 2^53): lo half, then hi half, then one doorbell
   * ring and one listener call with `off`.
   * @throws RuntimeError OUT_OF_RANGE, MISALIGNED, BAD_ARGUMENT (register unchanged)
   */
  write64(off: number, v: number): void {
    const i = this.word(off, 8, 'write64');
    RegisterFile.checkValue64(v, 'write64');
    Atomics.store(this.i32, i, v | 0);
    Atomics.store(this.i32, i + 1, Math.floor(v / TWO_32) | 0);
    this.notifyWrite(off);
  }

  /** Software write of a 64-bit register given as 32-bit halves (each modulo 2^32): lo, hi, then one ring. */
  write64Parts(off: number, lo: number, hi: number): void {
    const i = this.word(off, 8, 'write64Parts');
    Atomics.store(this.i32, i, lo | 0);
    Atomics.store(this.i32, i + 1, hi | 0);
    this.notifyWrite(off);
  }

  // ------------------------------------------------------------------ hardware side

  /** Model-side read of a 32-bit register (same as {@link RegisterFile.read32}). */
  hwRead32(off: number): number {
    return Atomics.load(this.i32, this.word(off, 4, 'hwRead32')) >>> 0;
  }

  /** Model-side write of a 32-bit register: no doorbell, no listeners. */
  hwWrite32(off: number, v: number): void {
    Atomics.store(this.i32, this.word(off, 4, 'hwWrite32'), v | 0);
  }

  /** Model-side write of a 64-bit register (0 <= v < 2^53): no doorbell, no listeners. */
  hwWrite64(off: number, v: number): void {
    const i = this.word(off, 8, 'hwWrite64');
    RegisterFile.checkValue64(v, 'hwWrite64');
    Atomics.store(this.i32, i, v | 0);
    Atomics.store(this.i32, i + 1, Math.floor(v / TWO_32) | 0);
  }

  /** Model-side write of a 64-bit register as 32-bit halves: no doorbell, no listeners. */
  hwWrite64Parts(off: number, lo: number, hi: number): void {
    const i = this.word(off, 8, 'hwWrite64Parts');
    Atomics.store(this.i32, i, lo | 0);
    Atomics.store(this.i32, i + 1, hi | 0);
  }

  /** Model side: rings {@link RegisterFile.irq} and calls same-thread irq listeners. */
  raiseIrq(): void {
    this.irq.ring();
    const ls = this.irqListeners;
    for (let i = 0; i < ls.length; i++) ls[i]();
  }

  // ------------------------------------------------------------------ listeners

  /**
   * Calls `listener(offset)` after every software write made through this object (same thread
   * only). InstanceHost's in-thread mode runs the model's `service()` from here.
   * @returns a function that unsubscribes
   */
  onWrite(listener: (offset: number) => void): () => void {
    this.writeListeners = [...this.writeListeners, listener];
    return () => {
      this.writeListeners = this.writeListeners.filter((l) => l !== listener);
    };
  }

  /**
   * Calls `listener()` after every {@link RegisterFile.raiseIrq} made through this object (same thread only).
   * @returns a function that unsubscribes
   */
  onIrq(listener: () => void): () => void {
    this.irqListeners = [...this.irqListeners, listener];
    return () => {
      this.irqListeners = this.irqListeners.filter((l) => l !== listener);
    };
  }
}
