/**
 * The page-fault phase of one instance: I/O page-fault round trips through the fault layer
 * (`@iommulab/fault-queues`), measured from the thread that runs the driver.
 *
 * A second device is probed on the instance with ATS + PRI (requester id `plan.rid` +
 * {@link FAULT_RID_OFFSET}), attached to an empty paging domain, and added to the instance's
 * {@link IopfQueue} with one {@link FaultQueue} (what an iommufd FAULT object holds) as its fault
 * handler. One round trip is what a VMM's fault handler sees:
 *
 *   device `port.pageRequest` (PCIe PRI Page Request, Last = 1) → the model queues it (SMMUv3
 *   PRIQ, mock fault queue) and raises its interrupt → the driver drains it into the IopfQueue →
 *   one group lands in the FaultQueue (`onReadable`) → `readInto` of the 40-byte record → `write`
 *   of `{cookie, SUCCESS}` → IopfQueue → `driver.pageResponse` (SMMUv3 CMD_PRI_RESP, mock
 *   CMD_PAGE_RESP) → `await iopf.flush()` resolves once the hardware consumed the response.
 *
 * Two measurements:
 * - latency: `roundTrips` round trips with one fault outstanding (after a warm-up), median / p90 /
 *   p99 in µs;
 * - throughput: `batches` batches of `batch` faults in flight at once (distinct PRG indices), one
 *   `readInto` and one `write` per batch, lock-step (the next batch is sent once this one's
 *   responses were consumed and its device-port completions arrived), after
 *   {@link FAULT_WARMUP_BATCHES} untimed batches; faults/s = faults / wall time of the timed
 *   batches, one run. The same steps and the same figure as row (b) "lock-step" of
 *   `packages/fault-queues/bench/round-trip.ts` (there: 16 devices x 16 PRG indices, a median of
 *   5 runs of 200 batches; here one device, PRG indices 0..batch-1, one run of `batches`).
 *
 * Nothing is mapped for the faults: the handler answers SUCCESS without mapping (the cost of the
 * fault path, not of a page allocator). A backend without PRI (no `capabilities.pri`, a
 * `probeDevice` that refuses `pri`, a device port that rejects page requests with `UNSUPPORTED`)
 * gets an `unsupported` record; any other failure (a timeout, a dropped request) an `error`
 * record naming what did not happen. Every wait is bounded.
 */
import { NO_PASID, PageResponseCode, PgFaultPerm, type BackendStack, type IommuDevice } from '@iommulab/driver-api';
import {
  FaultQueue,
  IOMMU_HWPT_PAGE_RESPONSE_BYTES,
  IOMMU_HWPT_PGFAULT_BYTES,
  IopfQueue,
  type IopfQueueStats,
} from '@iommulab/fault-queues';
import type { PageFaultCounts, PageFaultRecord } from './records.js';

/** The PRI device's requester id is the bench device's plus this (00:02.1 next to 00:00.1). */
export const FAULT_RID_OFFSET = 0x10;
/** Latency round trips before the timed ones (at most `roundTrips`); not in any figure or counter. */
export const FAULT_WARMUP = 100;
/**
 * Throughput batches before the timed ones; not in any figure or counter. The batch path (256
 * groups per PRIQ drain, one 10 KiB read, one 2 KiB write, 256 CMD_PRI_RESP) is new code after
 * the latency part, on the reader's thread for the first instance and in every instance's worker
 * (a V8 isolate of its own). While V8 compiles it (concurrent TurboFan jobs: about 0.3 s of CPU
 * for a fresh worker, 0.5 s with the reader's thread as well) the compiler threads take the CPU
 * from the spinning reader and worker: on a 2-core machine about 4 batches in 10 stall for 3 to
 * 20 ms over the first 20, 1.5 in 10 up to the 60th, and 0.3 to 0.5 in 10 after about 100 (the
 * steady state, GC pauses mostly). With 2 warm-up batches the 8 timed batches fell in that
 * window (instance 0, first to run the fault path, measured about 45 K faults/s and instance 1
 * about 140 K, against about 220 K for bench/round-trip.ts, which warms up with 20 batches and
 * then times runs of 200).
 */
export const FAULT_WARMUP_BATCHES = 100;
/** A time-limited phase stops warming up after {@link FAULT_WARMUP_LIMIT_MS}, once it has at least this many warm-up batches. */
export const FAULT_MIN_WARMUP_BATCHES = 2;
/**
 * How long a wait for fault groups polls `driver.drainFaults()` itself before it sleeps on the
 * driver's interrupt path, ms (worker mode; in-thread the request is queued synchronously, so one
 * drain finds it). A polling driver's reader: the figure is the fault path, not the latency of
 * waking the main thread, which on a loaded machine dominates (hundreds of µs to milliseconds).
 * Kept short: a longer spin only takes CPU from the instance's worker on a busy machine.
 */
export const FAULT_POLL_MS = 2;
/** A sleeping wait for fault groups calls `driver.drainFaults()` itself after this long, ms. */
export const FAULT_DRAIN_AFTER_MS = 20;
/** Upper bound of any single wait of the phase (a group, a response, a completion), ms. */
export const FAULT_WAIT_TIMEOUT_MS = 5000;
/**
 * Time limits of the timed parts with the default counts (`timeLimited`), ms: the latency part
 * stops starting round trips after this long (once it has at least {@link FAULT_WARMUP}), ...
 */
export const FAULT_LATENCY_LIMIT_MS = 600;
/** ... and the throughput part stops starting batches after this long (once it has at least {@link FAULT_MIN_LIMITED_BATCHES}), ... */
export const FAULT_THROUGHPUT_LIMIT_MS = 300;
/** ... and its warm-up after this long (once it has at least {@link FAULT_MIN_WARMUP_BATCHES}). */
export const FAULT_WARMUP_LIMIT_MS = 300;
/** Fewest timed batches of a time-limited throughput part. */
export const FAULT_MIN_LIMITED_BATCHES = 3;
/** Largest batch: one PRG index per fault in flight (PCIe PRG indices are 9 bits). */
export const MAX_FAULT_BATCH = 512;

const PAGE = 4096;
const REC = IOMMU_HWPT_PGFAULT_BYTES;
const RESP = IOMMU_HWPT_PAGE_RESPONSE_BYTES;
/** Byte offset of the cookie in an `iommu_hwpt_pgfault` record. */
const COOKIE_OFFSET = 36;

/** What the phase needs of an instance (plain data and its open stack). */
export interface FaultPhaseInput {
  readonly stack: BackendStack;
  /** Instance id, for messages. */
  readonly id: string;
  /** Requester id of the bench device (the PRI device gets this + {@link FAULT_RID_OFFSET}). */
  readonly rid: number;
  readonly roundTrips: number;
  readonly batch: number;
  readonly batches: number;
  /**
   * Each timed part may stop at its time limit ({@link FAULT_LATENCY_LIMIT_MS},
   * {@link FAULT_THROUGHPUT_LIMIT_MS}); false runs every round trip and batch.
   */
  readonly timeLimited?: boolean;
}

/** Bounds (for tests). */
export interface FaultPhaseTimeouts {
  readonly waitTimeoutMs?: number;
  readonly drainAfterMs?: number;
  /** Poll budget of a wait for fault groups, ms (default {@link FAULT_POLL_MS} in worker mode, 0 in-thread). */
  readonly pollMs?: number;
  /** Time limits of a `timeLimited` phase, ms (defaults {@link FAULT_LATENCY_LIMIT_MS}, {@link FAULT_THROUGHPUT_LIMIT_MS}, {@link FAULT_WARMUP_LIMIT_MS}). */
  readonly latencyLimitMs?: number;
  readonly throughputLimitMs?: number;
  readonly warmupLimitMs?: number;
}

/** A device-port rejection because the model has no `pageRequest` (runtime error code `UNSUPPORTED`). */
function isUnsupported(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'UNSUPPORTED';
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Bounds every wait of the phase with one interval timer (no timer per round trip). A wait for
 * `need` fault groups first polls `driver.drainFaults()` for `pollMs` (at least one drain), then
 * sleeps until
 * the FaultQueue's `onReadable` fires (the driver's interrupt loop delivered them) or, when
 * nothing arrived for `drainAfterMs`, until a `driver.drainFaults()` from the timer delivers
 * them; any wait that lasts `timeoutMs` fails with an error naming it. {@link Waiter.fail} makes
 * the current and every later wait fail (a dropped or refused page request).
 */
class Waiter {
  /** How the waits for fault groups ended (see `PageFaultRecord.noticed`). */
  readonly noticed = { poll: 0, irq: 0, fallback: 0 };
  #wait:
    | { readonly need: number; readonly since: number; readonly what: string; readonly resolve: () => void; readonly reject: (e: unknown) => void }
    | undefined;
  #failed: unknown;
  #draining = false;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly stack: BackendStack,
    private readonly fq: FaultQueue,
    private readonly label: string,
    private readonly timeoutMs: number,
    private readonly drainAfterMs: number,
    private readonly pollMs: number,
  ) {
    fq.onReadable(() => {
      const w = this.#wait;
      if (w !== undefined && w.need > 0 && fq.pendingRead >= w.need) {
        this.#wait = undefined;
        if (this.#draining) this.noticed.fallback++;
        else this.noticed.irq++;
        w.resolve();
      }
    });
    this.#timer = setInterval(() => this.#tick(), Math.max(1, Math.min(10, drainAfterMs >> 1)));
  }

  /** Undefined when `need` groups are already readable, else a promise that resolves when they are. */
  readable(need: number, what: string): Promise<void> | undefined {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    const fq = this.fq;
    const until = performance.now() + this.pollMs;
    do {
      if (fq.pendingRead >= need) {
        this.noticed.poll++;
        return undefined;
      }
      this.#drain();
    } while (performance.now() < until);
    if (fq.pendingRead >= need) {
      this.noticed.poll++;
      return undefined;
    }
    return new Promise<void>((resolve, reject) => {
      this.#wait = { need, since: performance.now(), what, resolve, reject };
    });
  }

  /** `p`, failing after the timeout. */
  bound<T>(p: Promise<T>, what: string): Promise<T> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    return new Promise<T>((resolve, reject) => {
      const w = { need: 0, since: performance.now(), what, resolve: () => {}, reject };
      this.#wait = w;
      p.then(
        (x) => {
          if (this.#wait === w) this.#wait = undefined;
          resolve(x);
        },
        (e: unknown) => {
          if (this.#wait === w) this.#wait = undefined;
          reject(e);
        },
      );
    });
  }

  /** Fails the current wait and every later one with `e`. */
  fail(e: unknown): void {
    if (this.#failed !== undefined) return;
    this.#failed = e;
    const w = this.#wait;
    this.#wait = undefined;
    w?.reject(e);
  }

  close(): void {
    clearInterval(this.#timer);
    this.fq.onReadable(undefined);
  }

  /** `driver.drainFaults()`: delivers synchronously (the promise only carries the count). */
  #drain(): void {
    try {
      this.stack.driver.drainFaults().catch(() => undefined);
    } catch {
      // A driver that cannot drain is caught by the timeout.
    }
  }

  #tick(): void {
    const w = this.#wait;
    if (w === undefined) return;
    const waited = performance.now() - w.since;
    if (w.need > 0 && waited >= this.drainAfterMs) {
      this.#draining = true;
      this.#drain(); // onReadable may resolve the wait
      this.#draining = false;
      if (this.#wait !== w) return;
    }
    if (waited >= this.timeoutMs) {
      this.#wait = undefined;
      const got = w.need > 0 ? ` (${this.fq.pendingRead} of ${w.need} fault groups arrived; the driver's interrupt loop and drainFaults() delivered nothing more)` : '';
      w.reject(new Error(`${this.label}: ${w.what} did not happen within ${this.timeoutMs} ms${got}`));
    }
  }
}

/** Copies of the counters the phase reads, at one point. */
export interface FaultSnapshot {
  readonly hw: Readonly<Record<string, number>>;
  readonly iopf: IopfQueueStats;
}

const num = (s: Readonly<Record<string, number>>, k: string): number | undefined => {
  const v = s[k];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
};

/**
 * The model's page-request counters in a `stats()` record, under either backend's names: the
 * SMMUv3's `priRequests` / `priQueued` / `priDropped` (rejected included) / `pageResponses`; the
 * mock's `pageRequests` (accepted by the device port) + `pageRequestsRejected`,
 * `faultRecordsDropped` (its one fault queue: in this phase only page requests are written) and
 * `pageResponses`. A counter the backend does not report is undefined.
 */
export function priFromStats(s: Readonly<Record<string, number>>): {
  requests?: number;
  queued?: number;
  dropped?: number;
  responses?: number;
} {
  const priRequests = num(s, 'priRequests');
  if (priRequests !== undefined) {
    return { requests: priRequests, queued: num(s, 'priQueued'), dropped: num(s, 'priDropped'), responses: num(s, 'pageResponses') };
  }
  const accepted = num(s, 'pageRequests');
  const rejected = num(s, 'pageRequestsRejected');
  const lost = num(s, 'faultRecordsDropped');
  const requests = accepted === undefined && rejected === undefined ? undefined : (accepted ?? 0) + (rejected ?? 0);
  const dropped = rejected === undefined && lost === undefined ? undefined : (rejected ?? 0) + (lost ?? 0);
  return {
    requests,
    queued: accepted === undefined ? undefined : accepted - (lost ?? 0),
    dropped,
    responses: num(s, 'pageResponses'),
  };
}

/**
 * IopfQueue counters that stay 0 when every fault becomes one group answered SUCCESS, each loss
 * counted once: a request of an unknown device, a partial request dropped or discarded, a group
 * answered INVALID (no handler, a timeout) or FAILURE (refused), a `pageResponse` that failed, a
 * page-request queue overflow.
 */
const IOPF_DROP_KEYS = [
  'unknownDevice',
  'partialDropped',
  'partialDiscarded',
  'invalid',
  'failure',
  'responseErrors',
  'pageRequestOverflows',
] as const satisfies readonly (keyof IopfQueueStats)[];

/** The counts of one part of the phase: `after - before`. */
export function faultCounts(before: FaultSnapshot, after: FaultSnapshot, sent: number): PageFaultCounts {
  const a = priFromStats(after.hw);
  const b = priFromStats(before.hw);
  const d = (x: number | undefined, y: number | undefined): number | null => (x === undefined || y === undefined ? null : x - y);
  let iopfDrops = 0;
  for (const k of IOPF_DROP_KEYS) iopfDrops += after.iopf[k] - before.iopf[k];
  return {
    sent,
    queued: d(a.queued, b.queued),
    dropped: d(a.dropped, b.dropped),
    responses: d(a.responses, b.responses),
    groups: after.iopf.groups - before.iopf.groups,
    success: after.iopf.success - before.iopf.success,
    iopfDrops,
  };
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function unsupportedRecord(input: FaultPhaseInput, reason: string, t0: number): PageFaultRecord {
  return {
    status: 'unsupported',
    reason,
    rid: input.rid + FAULT_RID_OFFSET,
    warmup: 0,
    latency: null,
    throughput: null,
    noticed: { poll: 0, irq: 0, fallback: 0 },
    crossThread: input.stack.host.mode === 'worker',
    elapsedMs: performance.now() - t0,
  };
}

/**
 * Runs the page-fault phase on one instance (see the module comment). A backend without PRI gives
 * `status: 'unsupported'`, any failure of the backend or a wait `status: 'error'` with the reason.
 *
 * @throws RangeError only for a batch outside 1..{@link MAX_FAULT_BATCH} (a caller's mistake)
 */
export async function measurePageFaults(input: FaultPhaseInput, timeouts: FaultPhaseTimeouts = {}): Promise<PageFaultRecord> {
  const t0 = performance.now();
  const { stack, id } = input;
  const driver = stack.driver;
  const rid = input.rid + FAULT_RID_OFFSET;
  const batch = input.batch;
  if (!Number.isInteger(batch) || batch < 1 || batch > MAX_FAULT_BATCH) {
    throw new RangeError(`page-fault batch ${batch} is not 1..${MAX_FAULT_BATCH}`);
  }
  if (driver.capabilities.pri !== true) {
    return unsupportedRecord(input, `the ${driver.backendId} IOMMU has no PRI (capabilities.pri is false)`, t0);
  }
  let dev: IommuDevice;
  try {
    dev = await driver.probeDevice({ rid, ats: true, pri: true, name: `bench-pri-${id}` });
  } catch (e) {
    return unsupportedRecord(input, `probeDevice({ rid: ${rid}, ats: true, pri: true }) refused: ${message(e)}`, t0);
  }
  const label = `${id} page-fault phase`;
  const fq = new FaultQueue();
  const iopf = IopfQueue.of(driver);
  const w = new Waiter(
    stack,
    fq,
    label,
    timeouts.waitTimeoutMs ?? FAULT_WAIT_TIMEOUT_MS,
    timeouts.drainAfterMs ?? FAULT_DRAIN_AFTER_MS,
    timeouts.pollMs ?? (stack.host.mode === 'worker' ? FAULT_POLL_MS : 0),
  );
  const warmup = Math.min(FAULT_WARMUP, input.roundTrips);
  let latency: PageFaultRecord['latency'] = null;
  let throughput: PageFaultRecord['throughput'] = null;
  /** The record, with what was measured so far. */
  const result = (status: 'ok' | 'error', reason: string | null): PageFaultRecord => ({
    status,
    reason,
    rid,
    warmup,
    latency,
    throughput,
    noticed: { ...w.noticed },
    crossThread: stack.host.mode === 'worker',
    elapsedMs: performance.now() - t0,
  });
  try {
    const domain = await w.bound(driver.domainAllocPaging(dev), 'domainAllocPaging for the PRI device');
    await w.bound(driver.attachDevice(dev, domain), 'attachDevice of the PRI device');
    // The faulting addresses: page-aligned, inside the domain's aperture (nothing is mapped).
    const span = Math.max(0x1000, batch) * PAGE;
    const base = Math.ceil(domain.aperture.start / (2 << 20)) * (2 << 20);
    if (base + span - 1 > domain.aperture.last) throw new Error(`${label}: the aperture has no ${span} bytes for the faulting addresses`);
    const token = { id, rid };
    iopf.addDevice(dev, (pasid) => (pasid === NO_PASID ? { handle: token, sink: fq } : null), rid);
    // Whatever earlier phases left in the fault queues (the invalidation phase's translation
    // faults, a past overflow) is drained now, outside every count.
    await w.bound(driver.drainFaults(), 'the initial drainFaults()');

    const snapshot = async (): Promise<FaultSnapshot> => ({
      hw: await w.bound(stack.host.stats(), 'host.stats()'),
      iopf: { ...iopf.stats },
    });
    const watch = (sent: Promise<boolean>, what: string): void => {
      sent.then(
        (ok) => {
          if (!ok) w.fail(new Error(`${label}: the model dropped ${what} (port.pageRequest resolved false)`));
        },
        (e: unknown) => w.fail(e),
      );
    };

    // (1) One fault outstanding.
    const rec = new Uint8Array(REC);
    const recDv = new DataView(rec.buffer);
    const resp = new Uint8Array(RESP);
    const respDv = new DataView(resp.buffer);
    respDv.setUint32(4, PageResponseCode.SUCCESS, true);
    const req = { rid, pasid: NO_PASID, addr: base, perm: PgFaultPerm.READ, grpid: 0, last: true };
    const one = async (i: number): Promise<number> => {
      req.grpid = i & 511;
      req.addr = base + (i & 0xfff) * PAGE;
      const t = performance.now();
      const sent = stack.port.pageRequest(req);
      watch(sent, `page request ${i}`);
      const r = w.readable(1, `the fault group of page request ${i}`);
      if (r !== undefined) await r;
      if (fq.readInto(rec) !== REC) throw new Error(`${label}: readInto returned no record for page request ${i}`);
      respDv.setUint32(0, recDv.getUint32(COOKIE_OFFSET, true), true);
      fq.write(resp);
      await w.bound(iopf.flush(), `the page response to request ${i} (IopfQueue.flush)`);
      const us = (performance.now() - t) * 1000;
      await w.bound(sent, `the device-port completion of page request ${i}`);
      return us;
    };
    let n = 0;
    for (let i = 0; i < warmup; i++) await one(n++);
    const limited = input.timeLimited === true;
    if (input.roundTrips > 0) {
      const limit = limited ? (timeouts.latencyLimitMs ?? FAULT_LATENCY_LIMIT_MS) : Infinity;
      const least = Math.min(input.roundTrips, FAULT_WARMUP);
      const before = await snapshot();
      const xs: number[] = [];
      const start = performance.now();
      for (let i = 0; i < input.roundTrips; i++) {
        if (i >= least && performance.now() - start >= limit) break;
        xs.push(await one(n++));
      }
      const after = await snapshot();
      xs.sort((a, b) => a - b);
      latency = {
        roundTrips: xs.length,
        stoppedAtTimeLimit: xs.length < input.roundTrips,
        medianUs: round2(quantile(xs, 0.5)),
        p90Us: round2(quantile(xs, 0.9)),
        p99Us: round2(quantile(xs, 0.99)),
        minUs: round2(xs[0]),
        maxUs: round2(xs[xs.length - 1]),
        counts: faultCounts(before, after, xs.length),
      };
    }

    // (2) `batch` faults in flight, lock-step: distinct PRG indices, one read and one write per
    // batch, the next batch sent once this one's responses were consumed and its device-port
    // completions arrived (the steps of fault-queues' bench/round-trip.ts row (b), lock-step).
    if (input.batches > 0) {
      const recs = new Uint8Array(batch * REC);
      const recsDv = new DataView(recs.buffer);
      const resps = new Uint8Array(batch * RESP);
      const respsDv = new DataView(resps.buffer);
      for (let i = 0; i < batch; i++) respsDv.setUint32(i * RESP + 4, PageResponseCode.SUCCESS, true);
      const reqs = Array.from({ length: batch }, (_, i) => ({
        rid,
        pasid: NO_PASID,
        addr: base + i * PAGE,
        perm: PgFaultPerm.READ | PgFaultPerm.WRITE,
        grpid: i,
        last: true,
      }));
      const sent: Promise<boolean>[] = new Array(batch);
      const lostIn = (oks: readonly boolean[]): number => oks.reduce((n, ok) => (ok ? n : n + 1), 0);
      const dropped = (lost: number, b: string): Error =>
        new Error(`${label}: the model dropped ${lost} of the ${batch} page requests of batch ${b} (port.pageRequest resolved false)`);
      const runBatch = async (b: string): Promise<void> => {
        for (let i = 0; i < batch; i++) sent[i] = stack.port.pageRequest(reqs[i]);
        const all = Promise.all(sent);
        // A drop fails the wait for the groups at once (not after its timeout).
        all.then(
          (oks) => {
            const lost = lostIn(oks);
            if (lost > 0) w.fail(dropped(lost, b));
          },
          (e: unknown) => w.fail(e),
        );
        const r = w.readable(batch, `the ${batch} fault groups of batch ${b}`);
        if (r !== undefined) await r;
        const got = fq.readInto(recs);
        if (got !== batch * REC) throw new Error(`${label}: batch ${b}: read ${got / REC} of ${batch} records`);
        for (let i = 0; i < batch; i++) respsDv.setUint32(i * RESP, recsDv.getUint32(i * REC + COOKIE_OFFSET, true), true);
        if (fq.write(resps) !== resps.length) throw new Error(`${label}: batch ${b}: short write of the responses`);
        await w.bound(iopf.flush(), `the ${batch} page responses of batch ${b} (IopfQueue.flush)`);
        const lost = lostIn(await w.bound(all, `the device-port completions of batch ${b}`));
        if (lost > 0) throw dropped(lost, b);
      };
      // Warm-up: the batch path is new code; its first batches run while V8 still compiles it
      // and stall for milliseconds (see FAULT_WARMUP_BATCHES).
      const warmLimit = limited ? (timeouts.warmupLimitMs ?? FAULT_WARMUP_LIMIT_MS) : Infinity;
      const warmStart = performance.now();
      for (let b = 1; b <= FAULT_WARMUP_BATCHES; b++) {
        if (b > FAULT_MIN_WARMUP_BATCHES && performance.now() - warmStart >= warmLimit) break;
        await runBatch(`warm-up ${b}`);
      }
      const limit = limited ? (timeouts.throughputLimitMs ?? FAULT_THROUGHPUT_LIMIT_MS) : Infinity;
      const least = Math.min(input.batches, FAULT_MIN_LIMITED_BATCHES);
      const before = await snapshot();
      // One run of consecutive batches: faults / wall time of the run (a GC pause or a
      // preemption inside the run counts, as in any throughput); each batch's share of the run
      // (its send to the next batch's send) gives the slowest and the fastest batch.
      let slowest = 0;
      let fastest = Infinity;
      const start = performance.now();
      let t = start;
      let done = 0;
      while (done < input.batches) {
        if (done >= least && t - start >= limit) break;
        await runBatch(String(done + 1));
        const now = performance.now();
        slowest = Math.max(slowest, now - t);
        fastest = Math.min(fastest, now - t);
        t = now;
        done++;
      }
      const runMs = t - start;
      const after = await snapshot();
      const rate = (ms: number): number => (ms > 0 ? Math.round((batch * 1000) / ms) : 0);
      throughput = {
        batch,
        batches: done,
        stoppedAtTimeLimit: done < input.batches,
        faults: batch * done,
        faultsPerSec: runMs > 0 ? Math.round((batch * done * 1000) / runMs) : 0,
        minFaultsPerSec: rate(slowest),
        maxFaultsPerSec: rate(fastest),
        counts: faultCounts(before, after, batch * done),
      };
    }
    return result('ok', null);
  } catch (e) {
    if (isUnsupported(e)) return unsupportedRecord(input, `port.pageRequest: ${message(e)}`, t0);
    return result('error', message(e));
  } finally {
    w.close();
    // Pending groups (after a failure) are answered INVALID; the device leaves the driver's shared
    // fault layer (other owners' devices stay).
    iopf.removeDevice(dev);
    fq.close();
    await settleWithin(iopf.flush(), FAULT_WAIT_TIMEOUT_MS);
    await settleWithin(driver.releaseDevice(dev), FAULT_WAIT_TIMEOUT_MS);
  }
}

/** Waits for `p` (ignoring its outcome) at most `ms`. */
async function settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
