/**
 * The device port: how a device sends DMA requests to an IOMMU instance and gets translations back.
 *
 * In-thread, {@link DirectDevicePort} calls the model directly. In worker mode the data path is only
 * shared memory: the host's {@link RingDevicePort} pushes 32-byte request records into a
 * {@link RecordRing}, the instance worker's {@link DevicePortServer} translates them and pushes
 * 32-byte completion records into a second ring. Nothing goes through postMessage.
 *
 * Wire format (8 little-endian u32 words per record):
 * - request:    `rid, pasid + 1 (0 = none), iova lo, iova hi, access | privileged << 8, tag, 0, 0`
 * - completion: `tag, ok (0/1), pa lo, pa hi, fault, faultDetail, 0, 0` (fault and faultDetail
 *   travel as unsigned 32-bit values)
 */
import { NO_PASID, dmaRequest, dmaResult, toDmaRequest } from './dma.js';
import type { DmaRequest, DmaRequestInit, DmaResult } from './dma.js';
import { InstanceError, RuntimeError, hex } from './errors.js';
import type { HostedHardware } from './hosted.js';
import { RecordRing } from './record-ring.js';
import type { RecordRingHandle } from './record-ring.js';

/** A device's view of an IOMMU instance: submit DMA requests, get translations. */
export interface DevicePort {
  /** Translate one request. Rejects with an {@link InstanceError} if the instance dies, shuts down or times out. */
  translate(req: DmaRequestInit): Promise<DmaResult>;
  /** Translate several requests; results are in request order. */
  translateMany(reqs: readonly DmaRequestInit[]): Promise<DmaResult[]>;
}

/** Bytes per request / completion record. */
export const DEVICE_PORT_RECORD_BYTES = 32;
/** Default number of records in each device-port ring (also the in-flight limit). */
export const DEVICE_PORT_ENTRIES = 1024;

/** Counters an instance reports in its stats; shared by the control plane and the data plane. */
export interface InstanceCounters {
  /** `hw.service()` calls since start or the last reset. */
  serviceCalls: number;
  /** Device-port requests translated since start or the last reset. */
  devicePortRequests: number;
}

/** The two ring handles of a worker-mode device port (plain data, crosses into the worker). */
export interface DevicePortHandles {
  /** Host → worker request ring. */
  readonly requests: RecordRingHandle;
  /** Worker → host completion ring. */
  readonly completions: RecordRingHandle;
}

/**
 * Create the request and completion rings of a worker-mode device port.
 *
 * @param entries - records per ring (power of two), default {@link DEVICE_PORT_ENTRIES}
 */
export function createDevicePortRings(entries: number = DEVICE_PORT_ENTRIES): {
  requests: RecordRing;
  completions: RecordRing;
} {
  return {
    requests: RecordRing.create({ entries, recordBytes: DEVICE_PORT_RECORD_BYTES }),
    completions: RecordRing.create({ entries, recordBytes: DEVICE_PORT_RECORD_BYTES }),
  };
}

const TWO_32 = 2 ** 32;
const WORDS = DEVICE_PORT_RECORD_BYTES / 4;

function checkRequest(req: DmaRequest): string | undefined {
  if (req === null || typeof req !== 'object') return `request must be an object, got ${String(req)}`;
  if (!Number.isInteger(req.rid) || req.rid < 0 || req.rid > 0xffffffff) return `bad rid ${String(req.rid)}`;
  if (!Number.isInteger(req.pasid) || req.pasid < NO_PASID || req.pasid >= 0xffffffff) {
    return `bad pasid ${String(req.pasid)}`;
  }
  if (!Number.isInteger(req.iova) || req.iova < 0 || req.iova >= 2 ** 53) return `bad iova ${String(req.iova)}`;
  if (!Number.isInteger(req.access) || req.access < 0 || req.access > 0xff) return `bad access ${String(req.access)}`;
  return undefined;
}

/**
 * In-thread device port: calls the model's `translate` directly (same thread, same code).
 * Each call allocates its result (and a Promise); use {@link runWorkload} for allocation-free traffic.
 */
export class DirectDevicePort implements DevicePort {
  readonly #hw: HostedHardware;
  readonly #counters: InstanceCounters;
  readonly #check: () => void;

  /**
   * @param hw - the model
   * @param counters - `devicePortRequests` is incremented per translation
   * @param check - throws when the instance can no longer take requests (e.g. shut down)
   */
  constructor(hw: HostedHardware, counters: InstanceCounters, check: () => void = () => {}) {
    this.#hw = hw;
    this.#counters = counters;
    this.#check = check;
  }

  /** {@inheritDoc DevicePort.translate} */
  translate(init: DmaRequestInit): Promise<DmaResult> {
    try {
      this.#check();
      const req = toDmaRequest(init);
      const bad = checkRequest(req);
      if (bad !== undefined) throw new RuntimeError('BAD_ARGUMENT', `device port: ${bad}`);
      this.#counters.devicePortRequests++;
      return Promise.resolve(this.#hw.translate(req, dmaResult()));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** {@inheritDoc DevicePort.translateMany} */
  translateMany(reqs: readonly DmaRequestInit[]): Promise<DmaResult[]> {
    return Promise.all(reqs.map((r) => this.translate(r)));
  }
}

interface Pending {
  resolve: (r: DmaResult) => void;
  reject: (e: Error) => void;
  deadline: number;
  rid: number;
  iova: number;
}

/** Options of {@link RingDevicePort}. */
export interface RingDevicePortOptions {
  /** Instance id, for error messages. */
  readonly instanceId: string;
  /** Host → worker ring (this side produces). */
  readonly requests: RecordRing;
  /** Worker → host ring (this side consumes). */
  readonly completions: RecordRing;
  /** A request with no completion after this many ms rejects with `TIMEOUT`. */
  readonly timeoutMs: number;
  /** Wakes the worker after requests were published (e.g. notify its parked doorbell). */
  readonly wake: () => void;
}

/**
 * Host side of a worker-mode device port. Requests are encoded into the request ring; a single
 * async pump drains the completion ring (Atomics.waitAsync) and settles the callers' promises by
 * tag. At most `requests.entries` requests are in flight; more wait in a local backlog.
 * Every request has a deadline; {@link RingDevicePort.fail} rejects everything pending and all later
 * calls. One producer thread (the host's) only.
 */
export class RingDevicePort implements DevicePort {
  readonly #o: RingDevicePortOptions;
  readonly #pending = new Map<number, Pending>();
  readonly #backlog: number[] = []; // tags whose request record sits in #backlogWords
  readonly #backlogWords: number[] = [];
  readonly #rec = new Uint32Array(WORDS);
  readonly #inBuf: Uint32Array;
  #inFlight = 0;
  #nextTag = 1;
  #pumping = false;
  #failure: Error | undefined;

  /** @param o - rings, timeout, wake-up and instance id */
  constructor(o: RingDevicePortOptions) {
    this.#o = o;
    this.#inBuf = new Uint32Array(64 * WORDS);
  }

  /** Requests submitted and not yet settled. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** {@inheritDoc DevicePort.translate} */
  translate(init: DmaRequestInit): Promise<DmaResult> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const req = toDmaRequest(init);
    const bad = checkRequest(req);
    if (bad !== undefined) {
      return Promise.reject(
        new InstanceError('BAD_ARGUMENT', this.#o.instanceId, `instance "${this.#o.instanceId}" device port: ${bad}`),
      );
    }
    const tag = this.#nextTag;
    this.#nextTag = this.#nextTag >= 0x7fffffff ? 1 : this.#nextTag + 1;
    const p = new Promise<DmaResult>((resolve, reject) => {
      this.#pending.set(tag, {
        resolve,
        reject,
        deadline: performance.now() + this.#o.timeoutMs,
        rid: req.rid,
        iova: req.iova,
      });
    });
    const r = this.#rec;
    r[0] = req.rid;
    r[1] = req.pasid + 1;
    r[2] = req.iova >>> 0;
    r[3] = Math.floor(req.iova / TWO_32);
    r[4] = (req.access & 0xff) | (req.privileged ? 0x100 : 0);
    r[5] = tag;
    r[6] = 0;
    r[7] = 0;
    if (this.#backlog.length === 0 && this.#inFlight < this.#o.requests.entries && this.#o.requests.tryPush(r)) {
      this.#inFlight++;
      this.#o.wake();
    } else {
      this.#backlog.push(tag);
      for (let i = 0; i < WORDS; i++) this.#backlogWords.push(r[i]);
    }
    if (!this.#pumping) void this.#pump();
    return p;
  }

  /** {@inheritDoc DevicePort.translateMany} */
  translateMany(reqs: readonly DmaRequestInit[]): Promise<DmaResult[]> {
    return Promise.all(reqs.map((r) => this.translate(r)));
  }

  /**
   * Reject every pending request with `err`, and every later call at once.
   * @param err - the instance's error (worker died, shut down, ...)
   */
  fail(err: Error): void {
    if (this.#failure === undefined) this.#failure = err;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    this.#backlog.length = 0;
    this.#backlogWords.length = 0;
    for (const p of pending) p.reject(this.#failure);
  }

  #flushBacklog(): void {
    const ring = this.#o.requests;
    const r = this.#rec;
    let pushed = 0;
    while (pushed < this.#backlog.length && this.#inFlight < ring.entries) {
      for (let i = 0; i < WORDS; i++) r[i] = this.#backlogWords[pushed * WORDS + i];
      if (!ring.tryPush(r)) break;
      this.#inFlight++;
      pushed++;
    }
    if (pushed > 0) {
      this.#backlog.splice(0, pushed);
      this.#backlogWords.splice(0, pushed * WORDS);
      this.#o.wake();
    }
  }

  #drain(): number {
    const ring = this.#o.completions;
    const buf = this.#inBuf;
    const maxRecords = buf.length / WORDS;
    let total = 0;
    for (;;) {
      const n = ring.popBatch(buf, maxRecords);
      if (n === 0) return total;
      total += n;
      for (let i = 0; i < n; i++) {
        const o = i * WORDS;
        const tag = buf[o];
        this.#inFlight--;
        const p = this.#pending.get(tag);
        if (p === undefined) continue; // timed out earlier
        this.#pending.delete(tag);
        const res = dmaResult();
        res.ok = buf[o + 1] !== 0;
        res.pa = buf[o + 2] + buf[o + 3] * TWO_32;
        res.fault = buf[o + 4];
        res.faultDetail = buf[o + 5];
        p.resolve(res);
      }
    }
  }

  #expire(now: number): void {
    for (const [tag, p] of this.#pending) {
      if (p.deadline > now) break; // insertion order = deadline order
      this.#pending.delete(tag);
      const id = this.#o.instanceId;
      p.reject(
        new InstanceError(
          'TIMEOUT',
          id,
          `instance "${id}": device-port translate (rid ${hex(p.rid)}, iova ${hex(p.iova)}) got no completion ` +
            `within ${this.#o.timeoutMs} ms`,
        ),
      );
    }
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#pending.size > 0 && this.#failure === undefined) {
        if (this.#backlog.length > 0) this.#flushBacklog();
        if (this.#drain() > 0) continue;
        const now = performance.now();
        this.#expire(now);
        if (this.#pending.size === 0) break;
        const first = this.#pending.values().next().value as Pending;
        const wait = Math.max(1, Math.min(20, Math.ceil(first.deadline - now)));
        await this.#o.completions.waitForDataAsync(wait);
      }
    } finally {
      this.#pumping = false;
    }
  }
}

/**
 * Worker side of a worker-mode device port: drains the request ring through the model into the
 * completion ring. No allocation: one request, one result and two scratch buffers are reused.
 * Never blocks: completions that do not fit are kept and pushed on the next {@link DevicePortServer.drain}.
 */
export class DevicePortServer {
  readonly #hw: HostedHardware;
  readonly #requests: RecordRing;
  readonly #completions: RecordRing;
  readonly #counters: InstanceCounters;
  readonly #req = dmaRequest();
  readonly #res = dmaResult();
  readonly #inBuf: Uint32Array;
  readonly #outBuf: Uint32Array;
  readonly #batch: number;
  #outStart = 0;
  #outCount = 0;

  /**
   * @param hw - the model
   * @param handles - the two rings (attached in this thread)
   * @param counters - `devicePortRequests` is incremented per translated request
   */
  constructor(hw: HostedHardware, handles: DevicePortHandles, counters: InstanceCounters) {
    this.#hw = hw;
    this.#requests = RecordRing.attach(handles.requests);
    this.#completions = RecordRing.attach(handles.completions);
    this.#counters = counters;
    this.#batch = Math.min(64, this.#requests.entries);
    this.#inBuf = new Uint32Array(this.#batch * WORDS);
    this.#outBuf = new Uint32Array(this.#batch * WORDS);
  }

  /** Whether requests are waiting (cheap check for the service loop). */
  hasWork(): boolean {
    return this.#outCount > 0 || !this.#requests.isEmpty();
  }

  /** Translate every queued request (in batches). @returns requests translated by this call */
  drain(): number {
    if (this.#outCount > 0 && !this.#flushOut()) return 0;
    const hw = this.#hw;
    const req = this.#req;
    const res = this.#res;
    const inBuf = this.#inBuf;
    const out = this.#outBuf;
    let total = 0;
    for (;;) {
      const n = this.#requests.popBatch(inBuf, this.#batch);
      if (n === 0) break;
      for (let i = 0; i < n; i++) {
        const o = i * WORDS;
        req.rid = inBuf[o];
        req.pasid = inBuf[o + 1] - 1;
        req.iova = inBuf[o + 2] + inBuf[o + 3] * TWO_32;
        const a = inBuf[o + 4];
        req.access = a & 0xff;
        req.privileged = (a & 0x100) !== 0;
        res.ok = false;
        res.pa = 0;
        res.fault = 0;
        res.faultDetail = 0;
        hw.translate(req, res);
        out[o] = inBuf[o + 5];
        out[o + 1] = res.ok ? 1 : 0;
        out[o + 2] = res.pa >>> 0;
        out[o + 3] = Math.floor(res.pa / TWO_32);
        out[o + 4] = res.fault >>> 0;
        out[o + 5] = res.faultDetail >>> 0;
        out[o + 6] = 0;
        out[o + 7] = 0;
      }
      this.#counters.devicePortRequests += n;
      total += n;
      this.#outStart = 0;
      this.#outCount = n;
      if (!this.#flushOut()) break;
    }
    return total;
  }

  /** Push buffered completions; true when all went out. */
  #flushOut(): boolean {
    const pushed = this.#completions.pushBatch(this.#outBuf, this.#outCount, this.#outStart);
    this.#outStart += pushed;
    this.#outCount -= pushed;
    return this.#outCount === 0;
  }
}
