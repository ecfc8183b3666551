/**
 * A single-producer single-consumer ring of fixed-size records in shared memory.
 *
 * PROD and CONS are kept in the SMMUv3 queue-index format (SMMUv3 §3.5.1: entry index in bits
 * [log2-1:0], wrap bit at bit log2), so all 2^log2 slots are usable: full = same index with a
 * different wrap bit, empty = same index and wrap bit.
 *
 * Publication: records are written with plain Uint32 stores, then published with one
 * `Atomics.store` of PROD (or CONS on the consumer side) per batch; JS Atomics are sequentially
 * consistent, which orders the payload stores before the index store for the other thread.
 * Each side caches the other side's index and re-reads the shared word only when its cache says
 * full (producer) or empty (consumer).
 *
 * Waking: the consumer parks on a data doorbell word, the producer on a data-taken word. After
 * each publish the other side bumps the word and calls `Atomics.notify` — but only when a
 * waiter has announced itself in the waiter-count word beside it, which saves ~100 ns per
 * publish (two atomics and a notify) when nobody sleeps without risking a lost wake-up.
 *
 * SPSC only: one thread (one RecordRing object) produces and one consumes.
 */
import { RuntimeError, hex } from './errors.js';
import { checkTimeout, waitAsyncOn } from './doorbell.js';
import { qCount, qInc } from './queue-index.js';

/** Plain-data description of a ring in a SharedArrayBuffer; crosses postMessage / workerData. */
export interface RecordRingHandle {
  /** The buffer holding the control block and the records. */
  readonly sab: SharedArrayBuffer;
  /** Where the ring starts in `sab` (a multiple of 16). */
  readonly byteOffset: number;
  /** Number of records (a power of two, 2..2^20). */
  readonly entries: number;
  /** Bytes per record (a multiple of 4, at least 4). */
  readonly recordBytes: number;
}

/** Options of {@link RecordRing.create}. */
export interface RecordRingOptions {
  /** Number of records (a power of two, 2..2^20). */
  entries: number;
  /** Bytes per record (a multiple of 4, at least 4). */
  recordBytes: number;
}

// Control block (Int32 word indices): each hot word on its own 64-byte line.
const C_PROD = 0; // byte 0: PROD (idx + wrap), written by the producer
const C_CONS = 16; // byte 64: CONS (idx + wrap), written by the consumer
const C_DATA = 32; // byte 128: data doorbell generation, bumped (+ notify) by the producer after a publish
const C_DATA_WAITERS = 33; // consumers parked or about to park on C_DATA; 0 lets the producer skip the bump
const C_TAKEN = 48; // byte 192: data-taken generation, bumped (+ notify) by the consumer after a drain
const C_TAKEN_WAITERS = 49; // producers parked or about to park on C_TAKEN
const CONTROL_BYTES = 256;
const CONTROL_WORDS = CONTROL_BYTES / 4;

const MIN_ENTRIES = 2;
const MAX_ENTRIES = 1 << 20;
/** Busy-check iterations before parking in a wait. */
const SPIN = 2000;
/** Word count under which a batch is copied with a loop instead of `TypedArray.set`. */
const SMALL_COPY_WORDS = 32;

/** Result of a ring wait. */
export type RingWaitResult = 'ok' | 'timed-out';

function checkGeometry(entries: number, recordBytes: number): void {
  if (!Number.isInteger(entries) || entries < MIN_ENTRIES || entries > MAX_ENTRIES || (entries & (entries - 1)) !== 0) {
    throw new RuntimeError(
      'BAD_ARGUMENT',
      `RecordRing entries ${String(entries)} is not a power of two in ${MIN_ENTRIES}..${MAX_ENTRIES}`,
    );
  }
  if (!Number.isInteger(recordBytes) || recordBytes < 4 || recordBytes % 4 !== 0) {
    throw new RuntimeError(
      'BAD_ARGUMENT',
      `RecordRing recordBytes ${String(recordBytes)} is not a multiple of 4 that is at least 4`,
    );
  }
}

/**
 * SPSC ring of fixed-size records (e.g. 16 or 32 bytes) over a SharedArrayBuffer, with
 * doorbells to park either side. See the module comment for the protocol.
 */
export class RecordRing {
  /** Number of record slots (a power of two). */
  readonly entries: number;
  /** Bytes per record. */
  readonly recordBytes: number;
  /** 32-bit words per record. */
  readonly recordWords: number;
  /** log2(entries): the wrap bit position in PROD/CONS. */
  readonly log2: number;
  /** Plain-data handle for {@link RecordRing.attach} on another thread. */
  readonly handle: RecordRingHandle;

  private readonly ctl: Int32Array;
  private readonly data: Uint32Array;
  private readonly idxMask: number;
  /** Producer's cached copy of CONS. */
  private consCache: number;
  /** Consumer's cached copy of PROD. */
  private prodCache: number;

  /** Bytes needed for a ring of `entries` records of `recordBytes` bytes: a 256-byte control block plus the records. */
  static byteLength(entries: number, recordBytes: number): number {
    checkGeometry(entries, recordBytes);
    return CONTROL_BYTES + entries * recordBytes;
  }

  /** Creates a ring in a new SharedArrayBuffer of its own. @throws RuntimeError BAD_ARGUMENT for bad sizes. */
  static create(opts: RecordRingOptions): RecordRing {
    const { entries, recordBytes } = opts;
    const sab = new SharedArrayBuffer(RecordRing.byteLength(entries, recordBytes));
    return new RecordRing({ sab, byteOffset: 0, entries, recordBytes });
  }

  /** Opens a ring made elsewhere (typically on another thread) from its handle. */
  static attach(h: RecordRingHandle): RecordRing {
    return new RecordRing(h);
  }

  /**
   * Places (or opens) a ring at `h.byteOffset` in `h.sab`. A new ring's region must be zero, as
   * a fresh SharedArrayBuffer is; nothing is initialised here, so attaching never disturbs a ring in use.
   * @throws RuntimeError BAD_ARGUMENT for bad sizes or buffer; MISALIGNED if byteOffset is not a
   *   multiple of 16; OUT_OF_RANGE if the ring does not fit in the buffer.
   */
  constructor(h: RecordRingHandle) {
    if (h === null || typeof h !== 'object' || !(h.sab instanceof SharedArrayBuffer)) {
      throw new RuntimeError('BAD_ARGUMENT', 'RecordRing handle needs a SharedArrayBuffer `sab`');
    }
    const { sab, byteOffset, entries, recordBytes } = h;
    checkGeometry(entries, recordBytes);
    if (!Number.isInteger(byteOffset) || byteOffset < 0) {
      throw new RuntimeError('OUT_OF_RANGE', `RecordRing byteOffset ${String(byteOffset)} is not a non-negative integer`);
    }
    if (byteOffset % 16 !== 0) {
      throw new RuntimeError('MISALIGNED', `RecordRing byteOffset ${hex(byteOffset)} is not 16-byte aligned`);
    }
    const len = CONTROL_BYTES + entries * recordBytes;
    if (byteOffset + len > sab.byteLength) {
      throw new RuntimeError(
        'OUT_OF_RANGE',
        `RecordRing of ${len} bytes at offset ${hex(byteOffset)} does not fit in a ${sab.byteLength}-byte buffer`,
      );
    }
    this.entries = entries;
    this.recordBytes = recordBytes;
    this.recordWords = recordBytes >>> 2;
    this.log2 = 31 - Math.clz32(entries);
    this.idxMask = entries - 1;
    this.handle = { sab, byteOffset, entries, recordBytes };
    this.ctl = new Int32Array(sab, byteOffset, CONTROL_WORDS);
    this.data = new Uint32Array(sab, byteOffset + CONTROL_BYTES, entries * this.recordWords);
    this.consCache = Atomics.load(this.ctl, C_CONS);
    this.prodCache = Atomics.load(this.ctl, C_PROD);
  }

  /** PROD in register format (index + wrap bit at bit log2). */
  get prod(): number {
    return Atomics.load(this.ctl, C_PROD);
  }

  /** CONS in register format (index + wrap bit at bit log2). */
  get cons(): number {
    return Atomics.load(this.ctl, C_CONS);
  }

  /** Records currently in the ring, 0..entries. */
  count(): number {
    const cons = Atomics.load(this.ctl, C_CONS);
    return qCount(Atomics.load(this.ctl, C_PROD), cons, this.log2);
  }

  /** Free slots, 0..entries. */
  space(): number {
    return this.entries - this.count();
  }

  /** True when no record is waiting (same index, same wrap). */
  isEmpty(): boolean {
    return this.count() === 0;
  }

  /** True when every slot is in use (same index, different wrap). */
  isFull(): boolean {
    return this.count() === this.entries;
  }

  // ------------------------------------------------------------------ producer

  /** Free slots as the producer sees them, refreshing the cached CONS when it says fewer than `want`. */
  private producerSpace(prod: number, want: number): number {
    let space = this.entries - qCount(prod, this.consCache, this.log2);
    if (space < want || space < 0) {
      this.consCache = Atomics.load(this.ctl, C_CONS);
      space = this.entries - qCount(prod, this.consCache, this.log2);
    }
    return space;
  }

  /** Publishes PROD and rings the data doorbell. */
  private publishProd(prod: number): void {
    const ctl = this.ctl;
    Atomics.store(ctl, C_PROD, prod);
    // Bump + notify only when a consumer announced it may park (see waitSync for why no wake-up is lost).
    if (Atomics.load(ctl, C_DATA_WAITERS) !== 0) {
      Atomics.add(ctl, C_DATA, 1);
      Atomics.notify(ctl, C_DATA);
    }
  }

  /**
   * Pushes one record: `recordWords` words of `words` starting at `offset` (each taken modulo 2^32).
   * @returns false (ring unchanged) when the ring is full
   * @throws RuntimeError BAD_ARGUMENT if `words` holds fewer than `recordWords` words from `offset`.
   */
  tryPush(words: ArrayLike<number>, offset = 0): boolean {
    const rw = this.recordWords;
    if (!(offset >= 0 && offset + rw <= words.length)) {
      throw new RuntimeError(
        'BAD_ARGUMENT',
        `RecordRing.tryPush: need ${rw} words at offset ${String(offset)}, source has ${words.length}`,
      );
    }
    const prod = this.ctl[C_PROD]; // own index: only this side writes it
    if (this.producerSpace(prod, 1) < 1) return false;
    const data = this.data;
    const d = (prod & this.idxMask) * rw;
    for (let i = 0; i < rw; i++) data[d + i] = words[offset + i];
    this.publishProd(qInc(prod, this.log2, 1));
    return true;
  }

  /**
   * Pushes one record like {@link RecordRing.tryPush}, but a full ring is an error.
   * @throws RuntimeError RING_OVERRUN (naming the ring size; ring unchanged) when full.
   */
  pushOrThrow(words: ArrayLike<number>, offset = 0): void {
    if (!this.tryPush(words, offset)) {
      throw new RuntimeError(
        'RING_OVERRUN',
        `RecordRing overrun: all ${this.entries} entries of ${this.recordBytes} bytes are in use ` +
          `(prod ${hex(this.prod)}, cons ${hex(this.cons)}); record not pushed`,
      );
    }
  }

  /**
   * Pushes up to `count` records from `src`, starting at record `srcOffsetRecords`; stops when
   * the ring is full. Copies in two parts at the wrap, then publishes PROD once and rings.
   * @returns the number of records pushed (0..count)
   * @throws RuntimeError BAD_ARGUMENT if `count`/`srcOffsetRecords` are bad or `src` is too short.
   */
  pushBatch(src: Uint32Array, count: number, srcOffsetRecords = 0): number {
    const rw = this.recordWords;
    if (
      !(count >= 0 && srcOffsetRecords >= 0 && (srcOffsetRecords + count) * rw <= src.length) ||
      !Number.isInteger(count) ||
      !Number.isInteger(srcOffsetRecords)
    ) {
      throw new RuntimeError(
        'BAD_ARGUMENT',
        `RecordRing.pushBatch: ${String(count)} records at record ${String(srcOffsetRecords)} ` +
          `do not fit a source of ${src.length} words (${rw} words per record)`,
      );
    }
    if (count === 0) return 0;
    const prod = this.ctl[C_PROD]; // own index: only this side writes it
    const space = this.producerSpace(prod, count);
    const n = count < space ? count : space;
    if (n <= 0) return 0;
    const idx = prod & this.idxMask;
    const first = n < this.entries - idx ? n : this.entries - idx;
    const s = srcOffsetRecords * rw;
    copyWords(this.data, idx * rw, src, s, first * rw);
    if (first < n) copyWords(this.data, 0, src, s + first * rw, (n - first) * rw);
    this.publishProd(qInc(prod, this.log2, n));
    return n;
  }

  // ------------------------------------------------------------------ consumer

  /** Records available as the consumer sees them, refreshing the cached PROD when it says fewer than `want`. */
  private consumerAvail(cons: number, want: number): number {
    let avail = qCount(this.prodCache, cons, this.log2);
    if (avail < want || avail > this.entries) {
      this.prodCache = Atomics.load(this.ctl, C_PROD);
      avail = qCount(this.prodCache, cons, this.log2);
    }
    return avail;
  }

  /** Publishes CONS and rings the data-taken word. */
  private publishCons(cons: number): void {
    const ctl = this.ctl;
    Atomics.store(ctl, C_CONS, cons);
    if (Atomics.load(ctl, C_TAKEN_WAITERS) !== 0) {
      Atomics.add(ctl, C_TAKEN, 1);
      Atomics.notify(ctl, C_TAKEN);
    }
  }

  /**
   * Pops one record into `dst` at word `dstOffsetWords`.
   * @returns false (nothing written) when the ring is empty
   * @throws RuntimeError BAD_ARGUMENT if `dst` has no room for a record at that offset.
   */
  tryPop(dst: Uint32Array, dstOffsetWords = 0): boolean {
    const rw = this.recordWords;
    if (!(dstOffsetWords >= 0 && dstOffsetWords + rw <= dst.length)) {
      throw new RuntimeError(
        'BAD_ARGUMENT',
        `RecordRing.tryPop: need ${rw} words at offset ${String(dstOffsetWords)}, destination has ${dst.length}`,
      );
    }
    const cons = this.ctl[C_CONS]; // own index: only this side writes it
    if (this.consumerAvail(cons, 1) < 1) return false;
    const data = this.data;
    const s = (cons & this.idxMask) * rw;
    for (let i = 0; i < rw; i++) dst[dstOffsetWords + i] = data[s + i];
    this.publishCons(qInc(cons, this.log2, 1));
    return true;
  }

  /**
   * Pops up to `maxCount` records into `dst` (from word 0), in order, copying in two parts at
   * the wrap; publishes CONS once and rings the data-taken word.
   * @returns the number of records popped (0..maxCount)
   * @throws RuntimeError BAD_ARGUMENT if `maxCount` is bad or `dst` holds fewer than `maxCount` records.
   */
  popBatch(dst: Uint32Array, maxCount: number): number {
    const rw = this.recordWords;
    if (!(maxCount >= 0 && maxCount * rw <= dst.length) || !Number.isInteger(maxCount)) {
      throw new RuntimeError(
        'BAD_ARGUMENT',
        `RecordRing.popBatch: ${String(maxCount)} records do not fit a destination of ${dst.length} words ` +
          `(${rw} words per record)`,
      );
    }
    if (maxCount === 0) return 0;
    const cons = this.ctl[C_CONS]; // own index: only this side writes it
    const avail = this.consumerAvail(cons, maxCount);
    const n = maxCount < avail ? maxCount : avail;
    if (n <= 0) return 0;
    const idx = cons & this.idxMask;
    const first = n < this.entries - idx ? n : this.entries - idx;
    copyWords(dst, 0, this.data, idx * rw, first * rw);
    if (first < n) copyWords(dst, first * rw, this.data, 0, (n - first) * rw);
    this.publishCons(qInc(cons, this.log2, n));
    return n;
  }

  /**
   * Reads word `word` of the `i`-th waiting record (0 = oldest) without consuming it (consumer side).
   * @throws RuntimeError OUT_OF_RANGE if fewer than `i + 1` records wait or `word` is not in 0..recordWords-1.
   */
  peek(i: number, word: number): number {
    const cons = Atomics.load(this.ctl, C_CONS);
    const avail = this.consumerAvail(cons, i + 1);
    if (!Number.isInteger(i) || i < 0 || i >= avail || !Number.isInteger(word) || word < 0 || word >= this.recordWords) {
      throw new RuntimeError(
        'OUT_OF_RANGE',
        `RecordRing.peek(${String(i)}, ${String(word)}): ${avail} record(s) of ${this.recordWords} words waiting`,
      );
    }
    return this.data[((cons + i) & this.idxMask) * this.recordWords + word];
  }

  // ------------------------------------------------------------------ waiting

  /**
   * Blocks until a record is waiting or `timeoutMs` passes: spins ~2000 checks, then parks in
   * `Atomics.wait` on the data doorbell. For worker threads (it blocks the event loop).
   */
  waitForData(timeoutMs: number): RingWaitResult {
    checkTimeout(timeoutMs, 'RecordRing.waitForData');
    return this.waitSync(C_DATA, C_DATA_WAITERS, true, timeoutMs);
  }

  /**
   * Blocks until at least one slot is free or `timeoutMs` passes (producer side; worker threads).
   */
  waitForSpace(timeoutMs: number): RingWaitResult {
    checkTimeout(timeoutMs, 'RecordRing.waitForSpace');
    return this.waitSync(C_TAKEN, C_TAKEN_WAITERS, false, timeoutMs);
  }

  /** Like {@link RecordRing.waitForData} but asynchronous (`Atomics.waitAsync`): for the main thread. */
  waitForDataAsync(timeoutMs: number): Promise<RingWaitResult> {
    checkTimeout(timeoutMs, 'RecordRing.waitForDataAsync');
    return this.waitAsync(C_DATA, C_DATA_WAITERS, true, timeoutMs);
  }

  /** Like {@link RecordRing.waitForSpace} but asynchronous (`Atomics.waitAsync`): for the main thread. */
  waitForSpaceAsync(timeoutMs: number): Promise<RingWaitResult> {
    checkTimeout(timeoutMs, 'RecordRing.waitForSpaceAsync');
    return this.waitAsync(C_TAKEN, C_TAKEN_WAITERS, false, timeoutMs);
  }

  private ready(forData: boolean): boolean {
    const n = this.count();
    return forData ? n > 0 : n < this.entries;
  }

  private waitSync(gen: number, waiters: number, forData: boolean, timeoutMs: number): RingWaitResult {
    for (let i = 0; i < SPIN; i++) if (this.ready(forData)) return 'ok';
    const ctl = this.ctl;
    const deadline = performance.now() + timeoutMs;
    // Lost-wake-up argument (JS Atomics are sequentially consistent): we announce (waiters++),
    // then read the generation, then re-check the indices. The other side stores its index,
    // then loads the waiter count. If it saw 0, its index store came before our announcement,
    // so our re-check sees it. If it saw us, it bumps the generation and notifies: either our
    // wait sees a changed value ('not-equal') or it is woken.
    Atomics.add(ctl, waiters, 1);
    try {
      for (;;) {
        const seen = Atomics.load(ctl, gen);
        if (this.ready(forData)) return 'ok';
        const remaining = deadline - performance.now();
        if (remaining <= 0) return 'timed-out';
        Atomics.wait(ctl, gen, seen, remaining);
      }
    } finally {
      Atomics.sub(ctl, waiters, 1);
    }
  }

  private async waitAsync(gen: number, waiters: number, forData: boolean, timeoutMs: number): Promise<RingWaitResult> {
    for (let i = 0; i < SPIN; i++) if (this.ready(forData)) return 'ok';
    const ctl = this.ctl;
    const deadline = performance.now() + timeoutMs;
    Atomics.add(ctl, waiters, 1);
    try {
      for (;;) {
        const seen = Atomics.load(ctl, gen);
        if (this.ready(forData)) return 'ok';
        const remaining = deadline - performance.now();
        if (remaining <= 0) return 'timed-out';
        await waitAsyncOn(ctl, gen, seen, remaining);
      }
    } finally {
      Atomics.sub(ctl, waiters, 1);
    }
  }
}

/** Copies `len` words; a plain loop for short runs, `TypedArray.set` (memmove) for long ones. */
function copyWords(dst: Uint32Array, d: number, src: Uint32Array, s: number, len: number): void {
  if (len <= SMALL_COPY_WORDS) {
    for (let i = 0; i < len; i++) dst[d + i] = src[s + i];
  } else {
    dst.set(src.subarray(s, s + len), d);
  }
}
