/**
 * Doorbells: generation-counter words in shared memory. The ringer bumps the counter and calls
 * `Atomics.notify`; a waiter reads the counter, re-checks its condition, then waits with the
 * value it read as `expected`, so a ring that lands in between returns `not-equal` at once (no
 * lost wake-ups).
 */
import { RuntimeError } from './errors.js';

/** Outcome of a doorbell wait, as `Atomics.wait` reports it. */
export type WaitResult = 'ok' | 'not-equal' | 'timed-out';

type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };
type WaitAsyncFn = (ta: Int32Array, index: number, value: number, timeout?: number) => WaitAsyncResult;

/** `Atomics.waitAsync` (ES2024; present in Node 20, absent from the ES2022 lib typings). @internal */
export const atomicsWaitAsync: WaitAsyncFn | undefined = (Atomics as unknown as { waitAsync?: WaitAsyncFn })
  .waitAsync;

/**
 * Waits asynchronously until `ta[index]` is no longer `value` (or a notify), using
 * `Atomics.waitAsync`, falling back to a short timer poll where it is missing. @internal
 */
export function waitAsyncOn(ta: Int32Array, index: number, value: number, timeoutMs: number): Promise<WaitResult> {
  if (atomicsWaitAsync !== undefined) {
    const r = atomicsWaitAsync(ta, index, value, timeoutMs);
    return r.async ? r.value : Promise.resolve(r.value);
  }
  if (Atomics.load(ta, index) !== value) return Promise.resolve('not-equal');
  return new Promise((resolve) =>
    setTimeout(() => resolve(Atomics.load(ta, index) !== value ? 'ok' : 'timed-out'), Math.min(timeoutMs, 1)),
  );
}

/** Validates a timeout argument (a non-negative number of ms, Infinity allowed). @internal */
export function checkTimeout(timeoutMs: number, op: string): void {
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw new RuntimeError('BAD_ARGUMENT', `${op}: timeout ${String(timeoutMs)} ms is not a non-negative number`);
  }
}

/**
 * A generation counter word at `i32[index]` (an Int32Array over a SharedArrayBuffer).
 * Any thread may ring it; any thread may wait on it (`wait` in workers, `waitAsync` on the main thread).
 */
export class Doorbell {
  private readonly i32: Int32Array;
  private readonly index: number;

  /**
   * @param i32 - an Int32Array over a SharedArrayBuffer
   * @param index - the word of `i32` that holds the generation counter
   * @throws RuntimeError BAD_ARGUMENT if `i32` is not a shared Int32Array; OUT_OF_RANGE for a bad index.
   */
  constructor(i32: Int32Array, index: number) {
    if (!(i32 instanceof Int32Array) || !(i32.buffer instanceof SharedArrayBuffer)) {
      throw new RuntimeError('BAD_ARGUMENT', 'Doorbell needs an Int32Array over a SharedArrayBuffer');
    }
    if (!Number.isInteger(index) || index < 0 || index >= i32.length) {
      throw new RuntimeError('OUT_OF_RANGE', `Doorbell index ${String(index)} is outside 0..${i32.length - 1}`);
    }
    this.i32 = i32;
    this.index = index;
  }

  /** The current generation. */
  get value(): number {
    return Atomics.load(this.i32, this.index);
  }

  /** Bumps the generation and wakes every waiter. */
  ring(): void {
    Atomics.add(this.i32, this.index, 1);
    Atomics.notify(this.i32, this.index);
  }

  /**
   * Blocks (worker threads; blocks the event loop on Node's main thread) until the generation
   * differs from `seen`, a ring, or `timeoutMs`.
   */
  wait(seen: number, timeoutMs: number): WaitResult {
    checkTimeout(timeoutMs, 'Doorbell.wait');
    return Atomics.wait(this.i32, this.index, seen, timeoutMs);
  }

  /** Like {@link Doorbell.wait} but asynchronous (`Atomics.waitAsync`): usable on the main thread. */
  waitAsync(seen: number, timeoutMs: number): Promise<WaitResult> {
    checkTimeout(timeoutMs, 'Doorbell.waitAsync');
    return waitAsyncOn(this.i32, this.index, seen, timeoutMs);
  }
}

/** Options of {@link waitUntil}. */
export interface WaitUntilOptions {
  /** Doorbell rung whenever `pred` may have become true; without one, `pred` is polled each event-loop turn. */
  doorbell?: Doorbell;
  /** Give up after this many ms (required: nothing waits forever). */
  timeoutMs: number;
  /** Synchronous checks of `pred` before the first asynchronous wait (default 200; 0: none, and no {@link spinMs} either). */
  spin?: number;
  /**
   * Keep checking `pred` synchronously for at least this long (ms, default 0.25) before the first
   * asynchronous wait: a worker-hosted model typically answers within microseconds, far sooner
   * than an `Atomics.waitAsync` wake-up (an event-loop turn).
   */
  spinMs?: number;
  /** What is awaited, for the timeout message (e.g. `'CMD_SYNC'`). */
  what?: string;
}

/**
 * Longest single doorbell wait inside {@link waitUntil}: `pred` is re-checked at least this
 * often, so a condition that became true without a ring is still noticed.
 */
const WAIT_SLICE_MS = 20;

/** Default {@link WaitUntilOptions.spinMs}. */
const DEFAULT_SPIN_MS = 0.25;

/**
 * Resolves once `pred()` is true: spins a little, then waits on the doorbell (re-checking
 * `pred` after reading the generation, so no ring is lost) or, without a doorbell, polls with
 * `setImmediate`.
 * @throws RuntimeError TIMEOUT (naming `what`) when `timeoutMs` passes first; BAD_ARGUMENT for a bad timeout.
 */
export async function waitUntil(pred: () => boolean, opts: WaitUntilOptions): Promise<void> {
  const { doorbell, timeoutMs, what } = opts;
  checkTimeout(timeoutMs, 'waitUntil');
  const spin = opts.spin ?? 200;
  for (let i = 0; i <= spin; i++) if (pred()) return;
  if (spin > 0) {
    const spinMs = opts.spinMs ?? DEFAULT_SPIN_MS;
    if (spinMs > 0) {
      const until = performance.now() + Math.min(spinMs, timeoutMs);
      do {
        for (let i = 0; i < 16; i++) if (pred()) return;
      } while (performance.now() < until);
    }
  }
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (doorbell !== undefined) {
      const seen = doorbell.value;
      if (pred()) return;
      const remaining = deadline - performance.now();
      if (remaining <= 0) break;
      await doorbell.waitAsync(seen, Math.min(remaining, WAIT_SLICE_MS));
    } else {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (pred()) return;
    if (performance.now() >= deadline) break;
  }
  throw new RuntimeError('TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what ?? 'a condition'}`);
}
