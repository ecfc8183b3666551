/**
 * DMA traffic generator. Runs next to the model (in-thread, or inside the instance worker), calling
 * `hw.translate` directly with one reused request and one reused result: no allocation per
 * translation, no postMessage.
 */
import { ACCESS_READ, NO_PASID, dmaRequest, dmaResult } from './dma.js';
import type { DmaRequest, DmaResult } from './dma.js';
import { RuntimeError } from './errors.js';
import type { HostedHardware } from './hosted.js';

/** What traffic to generate. Plain data (crosses the control plane). */
export interface WorkloadSpec {
  /**
   * Address pattern:
   * - `'sequential'`: `iovaBase + (i * step) mod length` — walk the range in order (step is
   *   usually the page size);
   * - `'strided'`: the same formula with an arbitrary stride `step`;
   * - `'random'`: xorshift32 over the `floor(length / step)` granules (pages) of the range,
   *   `iovaBase + floor(rand * granules / 2^32) * step`.
   */
  pattern: 'sequential' | 'random' | 'strided';
  /** Requester id of every request. */
  rid: number;
  /** PASID of every request; `NO_PASID` (default) for none. */
  pasid?: number;
  /** First IOVA of the range (byte address, < 2^53). */
  iovaBase: number;
  /** Range length in bytes (> 0). */
  length: number;
  /** Bytes between accesses (sequential: e.g. page size; strided: the stride; random: the granule). */
  step: number;
  /** Number of translations to issue. */
  count: number;
  /** `ACCESS_*` bits; default `ACCESS_READ`. */
  access?: number;
  /** PRNG seed for `'random'` (non-zero 32-bit; 0 or absent uses a fixed default). */
  seed?: number;
}

/** What a workload run measured. Plain data. */
export interface WorkloadResult {
  /** Translations issued (successful + faulted). */
  translations: number;
  /** Translations that faulted (`ok === false`). */
  faults: number;
  /** Time spent in the translation loop (excluding yields between chunks), ms. */
  elapsedMs: number;
  /** `translations / elapsed seconds` (0 when nothing was timed). */
  translationsPerSec: number;
  /**
   * `process.memoryUsage().heapUsed` after minus before the timed loop (summed per chunk for
   * {@link runWorkload}). Near zero when the model does not allocate per translation; a garbage
   * collection inside the loop can make it negative.
   */
  heapUsedDelta: number;
  /** Sum, mod 2^32, of the low 32 bits of every successful PA, so the work can't be optimised away. */
  checksum: number;
}

/** Translations per chunk in {@link runWorkload} (it yields to the event loop between chunks). */
export const WORKLOAD_CHUNK = 65536;

const DEFAULT_SEED = 0x9e3779b9 | 0;
const MAX_ADDR = 2 ** 53;

/** Generator state, reused across chunks. @internal */
interface Cursor {
  readonly spec: WorkloadSpec;
  readonly req: DmaRequest;
  readonly res: DmaResult;
  readonly mode: 0 | 1; // 0 = linear (sequential/strided), 1 = random
  readonly granules: number;
  offset: number;
  rng: number;
  faults: number;
  checksum: number;
  done: number;
}

function validate(spec: WorkloadSpec): void {
  const bad = (what: string, v: unknown): never => {
    throw new RuntimeError('BAD_ARGUMENT', `workload ${what} is invalid: ${String(v)}`);
  };
  if (spec === null || typeof spec !== 'object') bad('spec', spec);
  if (spec.pattern !== 'sequential' && spec.pattern !== 'random' && spec.pattern !== 'strided') {
    bad('pattern', spec.pattern);
  }
  if (!Number.isInteger(spec.rid) || spec.rid < 0) bad('rid', spec.rid);
  if (spec.pasid !== undefined && (!Number.isInteger(spec.pasid) || spec.pasid < NO_PASID)) bad('pasid', spec.pasid);
  if (!Number.isInteger(spec.iovaBase) || spec.iovaBase < 0) bad('iovaBase', spec.iovaBase);
  if (!Number.isInteger(spec.length) || spec.length <= 0) bad('length', spec.length);
  if (spec.iovaBase + spec.length > MAX_ADDR) bad('iovaBase + length (must be <= 2^53)', spec.iovaBase + spec.length);
  if (!Number.isInteger(spec.step) || spec.step <= 0) bad('step', spec.step);
  if (spec.pattern === 'random' && spec.step > spec.length) bad('step (random: must be <= length)', spec.step);
  if (!Number.isInteger(spec.count) || spec.count < 0) bad('count', spec.count);
  if (spec.access !== undefined && (!Number.isInteger(spec.access) || spec.access < 0)) bad('access', spec.access);
  if (spec.seed !== undefined && !Number.isInteger(spec.seed)) bad('seed', spec.seed);
}

function makeCursor(spec: WorkloadSpec): Cursor {
  validate(spec);
  const req = dmaRequest({
    rid: spec.rid,
    pasid: spec.pasid ?? NO_PASID,
    iova: spec.iovaBase,
    access: spec.access ?? ACCESS_READ,
    privileged: false,
  });
  const seed = (spec.seed ?? 0) | 0;
  return {
    spec,
    req,
    res: dmaResult(),
    mode: spec.pattern === 'random' ? 1 : 0,
    granules: Math.floor(spec.length / spec.step),
    offset: 0,
    rng: seed === 0 ? DEFAULT_SEED : seed,
    faults: 0,
    checksum: 0,
    done: 0,
  };
}

/** Runs `n` translations from the cursor's position. Hot loop: no allocation. */
function runChunk(hw: HostedHardware, c: Cursor, n: number): void {
  const req = c.req;
  const res = c.res;
  const base = c.spec.iovaBase;
  const length = c.spec.length;
  const step = c.spec.step;
  // Random granule = floor(u32 * granules / 2^32): a multiply instead of a modulo of a
  // non-Smi uint32, and uniform enough for traffic generation.
  const scale = c.granules / 4294967296;
  let offset = c.offset;
  let rng = c.rng;
  let faults = c.faults;
  let checksum = c.checksum;
  if (c.mode === 1) {
    for (let i = 0; i < n; i++) {
      rng ^= rng << 13;
      rng ^= rng >>> 17;
      rng ^= rng << 5;
      req.iova = base + Math.floor((rng >>> 0) * scale) * step;
      hw.translate(req, res);
      if (res.ok) checksum = (checksum + (res.pa | 0)) | 0;
      else faults++;
    }
  } else {
    for (let i = 0; i < n; i++) {
      req.iova = base + offset;
      offset += step;
      if (offset >= length) offset %= length;
      hw.translate(req, res);
      if (res.ok) checksum = (checksum + (res.pa | 0)) | 0;
      else faults++;
    }
  }
  c.offset = offset;
  c.rng = rng;
  c.faults = faults;
  c.checksum = checksum;
  c.done += n;
}

function result(c: Cursor, elapsedMs: number, heapUsedDelta: number): WorkloadResult {
  return {
    translations: c.done,
    faults: c.faults,
    elapsedMs,
    translationsPerSec: elapsedMs > 0 ? (c.done * 1000) / elapsedMs : 0,
    heapUsedDelta,
    checksum: c.checksum >>> 0,
  };
}

/**
 * Run a workload to completion without yielding (blocks the thread for its whole duration).
 *
 * @param hw - the model to drive (its device port)
 * @param spec - the traffic to generate
 * @returns counts, timing, heap delta and checksum
 * @throws RuntimeError `BAD_ARGUMENT` for a malformed spec (before any translation)
 */
export function runWorkloadSync(hw: HostedHardware, spec: WorkloadSpec): WorkloadResult {
  const c = makeCursor(spec);
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  runChunk(hw, c, spec.count);
  const t1 = performance.now();
  const heap1 = process.memoryUsage().heapUsed;
  return result(c, t1 - t0, heap1 - heap0);
}

/**
 * Run a workload in chunks of {@link WORKLOAD_CHUNK} translations, yielding to the event loop
 * (`setImmediate`) between chunks so the instance's control plane keeps answering.
 *
 * @param hw - the model to drive (its device port)
 * @param spec - the traffic to generate
 * @param onProgress - called after each chunk with the number of translations done so far
 * @returns counts, timing (loop time only), heap delta (summed per chunk) and checksum
 * @throws RuntimeError `BAD_ARGUMENT` for a malformed spec (before any translation)
 */
export async function runWorkload(
  hw: HostedHardware,
  spec: WorkloadSpec,
  onProgress?: (done: number) => void,
): Promise<WorkloadResult> {
  const c = makeCursor(spec);
  let elapsed = 0;
  let heapDelta = 0;
  while (c.done < spec.count) {
    const n = Math.min(WORKLOAD_CHUNK, spec.count - c.done);
    const heap0 = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    runChunk(hw, c, n);
    const t1 = performance.now();
    heapDelta += process.memoryUsage().heapUsed - heap0;
    elapsed += t1 - t0;
    onProgress?.(c.done);
    if (c.done < spec.count) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return result(c, elapsed, heapDelta);
}
