/**
 * The device port: how a device sends DMA requests to an IOMMU instance and gets translations back.
 * Three request kinds: translations (`translate`, the hot path), PCIe ATS Translation Requests
 * (`atsTranslate`, answered by the model's optional `atsTranslate`) and PCIe PRI Page Request
 * Messages (`pageRequest`, answered by the model's optional `pageRequest`).
 *
 * In-thread, {@link DirectDevicePort} calls the model directly. In worker mode the data path is only
 * shared memory: the host's {@link RingDevicePort} pushes 32-byte request records into a
 * {@link RecordRing}, the instance worker's {@link DevicePortServer} serves them and pushes
 * 32-byte completion records into a second ring. Nothing goes through postMessage. All kinds share
 * the two rings, so completions of every kind come back in submission order.
 *
 * Wire format (8 little-endian u32 words per record; request word 6 is the kind):
 * - translate (kind 0):     `rid, pasid + 1 (0 = none), iova lo, iova hi, access | privileged << 8, tag, 0, 0`
 * - ATS request (kind 1):   `rid, pasid + 1 (0 = none), iova lo, iova hi, access | privileged << 8, tag, 1, 0`
 * - page request (kind 2):  `rid, pasid + 1 (0 = none), addr lo, addr hi, perm | last << 8, tag, 2, grpid`
 * - completion: `tag, ok (0/1), pa lo, pa hi, fault, faultDetail, status, 0` (fault and faultDetail
 *   travel as unsigned 32-bit values). For a page request `ok` is the model's answer (1 queued,
 *   0 dropped) and the pa / fault words are 0. `status` is 0 when the model served the request,
 *   1 when it does not implement the kind (the call rejects with `UNSUPPORTED`; the translate
 *   path never sees it), 2 for an unknown kind.
 */
import { NO_PASID, dmaRequest, dmaResult, toDmaRequest } from './dma.js';
import type { DmaRequest, DmaRequestInit, DmaResult, PageRequestInit } from './dma.js';
import { InstanceError, RuntimeError, hex } from './errors.js';
import type { HostedHardware } from './hosted.js';
import { RecordRing } from './record-ring.js';
import type { RecordRingHandle } from './record-ring.js';

/**
 * A device's view of an IOMMU instance: submit DMA requests, get translations; ATS-capable devices
 * also send ATS translation requests and PRI page requests. Every call validates its input first
 * (`BAD_ARGUMENT`), and rejects with an {@link InstanceError} if the instance dies, shuts down or
 * times out.
 */
export interface DevicePort {
  /** Translate one request. Rejects with an {@link InstanceError} if the instance dies, shuts down or times out. */
  translate(req: DmaRequestInit): Promise<DmaResult>;
  /** Translate several requests; results are in request order. */
  translateMany(reqs: readonly DmaRequestInit[]): Promise<DmaResult[]>;
  /**
   * PCIe ATS Translation Request: the model translates `req` for the device's ATC (its
   * `atsTranslate`). Rejects with `UNSUPPORTED` when the model has no `atsTranslate` (no ATS).
   */
  atsTranslate(req: DmaRequestInit): Promise<DmaResult>;
  /**
   * PCIe PRI Page Request Message: the model queues it for software (its `pageRequest`).
   * Resolves with the model's answer: true when queued, false when dropped. Rejects with
   * `UNSUPPORTED` when the model has no `pageRequest` (no PRI).
   */
  pageRequest(req: PageRequestInit): Promise<boolean>;
}

/** Bytes per request / completion record. */
export const DEVICE_PORT_RECORD_BYTES = 32;
/** Default number of records in each device-port ring (also the in-flight limit). */
export const DEVICE_PORT_ENTRIES = 1024;

/** Counters an instance reports in its stats; shared by the control plane and the data plane. */
export interface InstanceCounters {
  /** `hw.service()` calls since start or the last reset. */
  serviceCalls: number;
  /** Device-port requests served by the model (any kind) since start or the last reset. */
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

/** Request kind (request word 6): a translation. @internal */
export const DEVICE_PORT_KIND_TRANSLATE = 0;
/** Request kind (request word 6): a PCIe ATS Translation Request. @internal */
export const DEVICE_PORT_KIND_ATS = 1;
/** Request kind (request word 6): a PCIe PRI Page Request Message. @internal */
export const DEVICE_PORT_KIND_PAGE_REQUEST = 2;
/** Completion status (completion word 6): served by the model. @internal */
export const DEVICE_PORT_STATUS_DONE = 0;
/** Completion status (completion word 6): the model does not implement the request's kind. @internal */
export const DEVICE_PORT_STATUS_UNSUPPORTED = 1;
/** Completion status (completion word 6): unknown request kind. @internal */
export const DEVICE_PORT_STATUS_BAD_KIND = 2;

/** How a {@link Pending} call settles. */
const SETTLE_ONE = 0; // translate: the only result
const SETTLE_MANY = 1; // translateMany: the whole array
const SETTLE_ATS = 2; // atsTranslate: the only result, or UNSUPPORTED
const SETTLE_PAGE = 3; // pageRequest: the only result's ok, or UNSUPPORTED

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

function checkPageRequest(req: PageRequestInit): string | undefined {
  if (req === null || typeof req !== 'object') return `page request must be an object, got ${String(req)}`;
  if (!Number.isInteger(req.rid) || req.rid < 0 || req.rid > 0xffffffff) return `bad page request rid ${String(req.rid)}`;
  if (!Number.isInteger(req.pasid) || req.pasid < NO_PASID || req.pasid >= 0xffffffff) {
    return `bad page request pasid ${String(req.pasid)}`;
  }
  if (!Number.isInteger(req.addr) || req.addr < 0 || req.addr >= 2 ** 53) return `bad page request addr ${String(req.addr)}`;
  if (!Number.isInteger(req.perm) || req.perm < 0 || req.perm > 0xff) return `bad page request perm ${String(req.perm)}`;
  if (!Number.isInteger(req.grpid) || req.grpid < 0 || req.grpid > 0xffffffff) {
    return `bad page request grpid ${String(req.grpid)}`;
  }
  if (typeof req.last !== 'boolean') return `bad page request last ${String(req.last)} (must be a boolean)`;
  return undefined;
}

function unsupportedText(kind: number): string {
  return kind === DEVICE_PORT_KIND_ATS
    ? 'the model does not implement atsTranslate (no PCIe ATS)'
    : 'the model does not implement pageRequest (no PCIe PRI)';
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

  /** {@inheritDoc DevicePort.atsTranslate} */
  atsTranslate(init: DmaRequestInit): Promise<DmaResult> {
    try {
      this.#check();
      const req = toDmaRequest(init);
      const bad = checkRequest(req);
      if (bad !== undefined) throw new RuntimeError('BAD_ARGUMENT', `device port: ${bad}`);
      const hw = this.#hw;
      if (typeof hw.atsTranslate !== 'function') {
        throw new RuntimeError('UNSUPPORTED', `device port: ${unsupportedText(DEVICE_PORT_KIND_ATS)}`);
      }
      this.#counters.devicePortRequests++;
      return Promise.resolve(hw.atsTranslate(req, dmaResult()));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** {@inheritDoc DevicePort.pageRequest} */
  pageRequest(req: PageRequestInit): Promise<boolean> {
    try {
      this.#check();
      const bad = checkPageRequest(req);
      if (bad !== undefined) throw new RuntimeError('BAD_ARGUMENT', `device port: ${bad}`);
      const hw = this.#hw;
      if (typeof hw.pageRequest !== 'function') {
        throw new RuntimeError('UNSUPPORTED', `device port: ${unsupportedText(DEVICE_PORT_KIND_PAGE_REQUEST)}`);
      }
      this.#counters.devicePortRequests++;
      return Promise.resolve(hw.pageRequest(req) ? true : false);
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

/**
 * One submitted call (a single translate, a whole translateMany batch, an ATS request or a page
 * request). Completions come back in submission order (one SPSC ring each way, served in order),
 * so pending calls of every kind form one FIFO and a batch's records carry consecutive tags.
 */
interface Pending {
  /** Tag of the first record of the call. */
  firstTag: number;
  count: number;
  /** Completions received so far. */
  done: number;
  results: DmaResult[];
  /** SETTLE_*: the only result (translate), the whole array (translateMany), ATS, page request. */
  settle: number;
  resolve: (r: unknown) => void;
  reject: (e: Error) => void;
  deadline: number;
  /** Rejected by a timeout: its completions are still consumed, then dropped. */
  expired: boolean;
  rid: number;
  /** IOVA (translations) or page address (page requests) of the first record, for messages. */
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
 * Host side of a worker-mode device port. Requests are encoded into the request ring (a whole
 * `translateMany` batch with one publish and one wake-up); a single async pump drains the
 * completion ring (Atomics.waitAsync) and settles calls in submission order. At most
 * `requests.entries` requests are in flight; more wait in a local staging buffer. Every call has
 * a deadline; {@link RingDevicePort.fail} rejects everything pending and all later calls. One
 * producer thread (the host's) only.
 */
export class RingDevicePort implements DevicePort {
  readonly #o: RingDevicePortOptions;
  /** Pending calls in submission order: [#qHead, #queue.length). */
  #queue: Pending[] = [];
  #qHead = 0;
  #pendingRecords = 0;
  /** Encoded requests not yet in the ring: records [#stageHead, #stageTail). */
  #stage = new Uint32Array(256 * WORDS);
  #stageHead = 0;
  #stageTail = 0;
  readonly #inBuf: Uint32Array;
  #inFlight = 0;
  #nextTag = 1;
  #pumping = false;
  #failure: Error | undefined;

  /** @param o - rings, timeout, wake-up and instance id */
  constructor(o: RingDevicePortOptions) {
    this.#o = o;
    this.#inBuf = new Uint32Array(256 * WORDS);
  }

  /** Requests submitted and not yet settled. */
  get pendingCount(): number {
    return this.#pendingRecords;
  }

  /** {@inheritDoc DevicePort.translate} */
  translate(init: DmaRequestInit): Promise<DmaResult> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const req = toDmaRequest(init);
    const bad = checkRequest(req);
    if (bad !== undefined) return Promise.reject(this.#badRequest(bad));
    return this.#submit([req], false);
  }

  /**
   * {@inheritDoc DevicePort.translateMany}
   * The whole batch is published with one ring write and one wake-up of the worker, and settles
   * as one promise. A bad request rejects the batch before anything is sent.
   */
  translateMany(inits: readonly DmaRequestInit[]): Promise<DmaResult[]> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (inits.length === 0) return Promise.resolve([]);
    const reqs = inits.map(toDmaRequest);
    for (const req of reqs) {
      const bad = checkRequest(req);
      if (bad !== undefined) return Promise.reject(this.#badRequest(bad));
    }
    return this.#submit(reqs, true);
  }

  /**
   * {@inheritDoc DevicePort.atsTranslate}
   * One request record of kind 1; settles in submission order with every other call.
   */
  atsTranslate(init: DmaRequestInit): Promise<DmaResult> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const req = toDmaRequest(init);
    const bad = checkRequest(req);
    if (bad !== undefined) return Promise.reject(this.#badRequest(bad));
    const firstTag = this.#nextTag;
    this.#stageRecord(req);
    this.#stage[(this.#stageTail - 1) * WORDS + 6] = DEVICE_PORT_KIND_ATS;
    return this.#enqueue<DmaResult>(firstTag, [dmaResult()], SETTLE_ATS, req.rid, req.iova);
  }

  /**
   * {@inheritDoc DevicePort.pageRequest}
   * One request record of kind 2; settles in submission order with every other call.
   */
  pageRequest(req: PageRequestInit): Promise<boolean> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const bad = checkPageRequest(req);
    if (bad !== undefined) return Promise.reject(this.#badRequest(bad));
    const firstTag = this.#nextTag;
    this.#stagePageRequest(req);
    return this.#enqueue<boolean>(firstTag, [dmaResult()], SETTLE_PAGE, req.rid, req.addr);
  }

  #badRequest(what: string): InstanceError {
    return new InstanceError('BAD_ARGUMENT', this.#o.instanceId, `instance "${this.#o.instanceId}" device port: ${what}`);
  }

  #submit<T>(reqs: readonly DmaRequest[], many: boolean): Promise<T> {
    const firstTag = this.#nextTag;
    const results: DmaResult[] = new Array(reqs.length);
    for (let i = 0; i < reqs.length; i++) {
      results[i] = dmaResult();
      this.#stageRecord(reqs[i]);
    }
    return this.#enqueue<T>(firstTag, results, many ? SETTLE_MANY : SETTLE_ONE, reqs[0].rid, reqs[0].iova);
  }

  /** Queues a call whose records (one per result, tags from `firstTag`) are staged; flushes and pumps. */
  #enqueue<T>(firstTag: number, results: DmaResult[], settle: number, rid: number, iova: number): Promise<T> {
    const p = new Promise<T>((resolve, reject) => {
      this.#queue.push({
        firstTag,
        count: results.length,
        done: 0,
        results,
        settle,
        resolve: resolve as (r: unknown) => void,
        reject,
        deadline: performance.now() + this.#o.timeoutMs,
        expired: false,
        rid,
        iova,
      });
    });
    this.#pendingRecords += results.length;
    this.#flushBacklog();
    if (!this.#pumping) void this.#pump();
    return p;
  }

  /** Encodes one request record at the end of the staging buffer, with the next tag. */
  #stageRecord(req: DmaRequest): void {
    if ((this.#stageTail + 1) * WORDS > this.#stage.length) this.#growStage();
    const r = this.#stage;
    const o = this.#stageTail * WORDS;
    r[o] = req.rid;
    r[o + 1] = req.pasid + 1;
    r[o + 2] = req.iova >>> 0;
    r[o + 3] = Math.floor(req.iova / TWO_32);
    r[o + 4] = (req.access & 0xff) | (req.privileged ? 0x100 : 0);
    r[o + 5] = this.#nextTag;
    r[o + 6] = 0;
    r[o + 7] = 0;
    this.#nextTag = (this.#nextTag + 1) >>> 0;
    this.#stageTail++;
  }

  /** Encodes one page-request record (kind 2) at the end of the staging buffer, with the next tag. */
  #stagePageRequest(req: PageRequestInit): void {
    if ((this.#stageTail + 1) * WORDS > this.#stage.length) this.#growStage();
    const r = this.#stage;
    const o = this.#stageTail * WORDS;
    r[o] = req.rid;
    r[o + 1] = req.pasid + 1;
    r[o + 2] = req.addr >>> 0;
    r[o + 3] = Math.floor(req.addr / TWO_32);
    r[o + 4] = (req.perm & 0xff) | (req.last ? 0x100 : 0);
    r[o + 5] = this.#nextTag;
    r[o + 6] = DEVICE_PORT_KIND_PAGE_REQUEST;
    r[o + 7] = req.grpid;
    this.#nextTag = (this.#nextTag + 1) >>> 0;
    this.#stageTail++;
  }

  /** Makes room for one more staged record: compact the consumed head, or double the buffer. */
  #growStage(): void {
    const used = this.#stageTail - this.#stageHead;
    const words = this.#stage.length;
    const target = used + 1 > words / WORDS / 2 ? new Uint32Array(words * 2) : this.#stage;
    target.set(this.#stage.subarray(this.#stageHead * WORDS, this.#stageTail * WORDS));
    this.#stage = target;
    this.#stageHead = 0;
    this.#stageTail = used;
  }

  /**
   * Reject every pending request with `err`, and every later call at once.
   * @param err - the instance's error (worker died, shut down, ...)
   */
  fail(err: Error): void {
    if (this.#failure === undefined) this.#failure = err;
    const pending = this.#queue.slice(this.#qHead);
    this.#queue = [];
    this.#qHead = 0;
    this.#pendingRecords = 0;
    this.#stageHead = this.#stageTail = 0;
    for (const p of pending) if (!p.expired) p.reject(this.#failure);
  }

  /** Moves staged requests into the ring (as many as fit): one publish, one wake-up. */
  #flushBacklog(): void {
    const staged = this.#stageTail - this.#stageHead;
    if (staged === 0) return;
    const room = Math.min(staged, this.#o.requests.entries - this.#inFlight);
    if (room <= 0) return;
    const pushed = this.#o.requests.pushBatch(this.#stage, room, this.#stageHead);
    if (pushed === 0) return;
    this.#inFlight += pushed;
    this.#stageHead += pushed;
    if (this.#stageHead === this.#stageTail) this.#stageHead = this.#stageTail = 0;
    this.#o.wake();
  }

  /** Consumes completions in order and settles finished calls. Returns records consumed. */
  #drain(): number {
    const ring = this.#o.completions;
    const buf = this.#inBuf;
    const maxRecords = buf.length / WORDS;
    let total = 0;
    for (;;) {
      const n = ring.popBatch(buf, maxRecords);
      if (n === 0) return total;
      total += n;
      this.#inFlight -= n;
      for (let i = 0; i < n; i++) {
        const o = i * WORDS;
        const p = this.#queue[this.#qHead];
        const expectedTag = (p === undefined ? 0 : p.firstTag + p.done) >>> 0;
        if (p === undefined || buf[o] !== expectedTag) {
          const id = this.#o.instanceId;
          this.fail(
            new InstanceError(
              'WORKER_ERROR',
              id,
              `instance "${id}": device-port completion out of order (tag ${buf[o]}, expected ${expectedTag})`,
            ),
          );
          return total;
        }
        const res = p.results[p.done++];
        res.ok = buf[o + 1] !== 0;
        res.pa = buf[o + 2] + buf[o + 3] * TWO_32;
        res.fault = buf[o + 4];
        res.faultDetail = buf[o + 5];
        this.#pendingRecords--;
        if (p.done === p.count) {
          this.#queue[this.#qHead++] = undefined as unknown as Pending;
          if (this.#qHead === this.#queue.length) {
            this.#queue = [];
            this.#qHead = 0;
          }
          if (!p.expired) {
            if (p.settle === SETTLE_ONE) p.resolve(p.results[0]);
            else if (p.settle === SETTLE_MANY) p.resolve(p.results);
            else this.#settleKind(p, buf[o + 6]);
          }
        }
      }
    }
  }

  /** Settles a finished ATS or page-request call from its completion's status word. */
  #settleKind(p: Pending, status: number): void {
    if (status === DEVICE_PORT_STATUS_DONE) {
      p.resolve(p.settle === SETTLE_PAGE ? p.results[0].ok : p.results[0]);
      return;
    }
    const id = this.#o.instanceId;
    const kind = p.settle === SETTLE_ATS ? DEVICE_PORT_KIND_ATS : DEVICE_PORT_KIND_PAGE_REQUEST;
    p.reject(
      status === DEVICE_PORT_STATUS_UNSUPPORTED
        ? new InstanceError('UNSUPPORTED', id, `instance "${id}" device port: ${unsupportedText(kind)}`)
        : new InstanceError('WORKER_ERROR', id, `instance "${id}" device port: the worker did not know request kind ${kind}`),
    );
  }

  /** Rejects calls whose deadline passed (they stay queued until their completions are consumed). */
  #expire(now: number): void {
    for (let i = this.#qHead; i < this.#queue.length; i++) {
      const p = this.#queue[i];
      if (p.deadline > now) break; // submission order = deadline order
      if (p.expired) continue;
      p.expired = true;
      const id = this.#o.instanceId;
      const what =
        p.settle === SETTLE_PAGE
          ? `page request (rid ${hex(p.rid)}, addr ${hex(p.iova)})`
          : `${p.settle === SETTLE_ATS ? 'ATS translation request' : 'translate'} (rid ${hex(p.rid)}, iova ${hex(p.iova)})`;
      p.reject(
        new InstanceError('TIMEOUT', id, `instance "${id}": device-port ${what} got no completion within ${this.#o.timeoutMs} ms`),
      );
    }
  }

  #hasLivePending(): boolean {
    for (let i = this.#qHead; i < this.#queue.length; i++) if (!this.#queue[i].expired) return true;
    return false;
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#qHead < this.#queue.length && this.#failure === undefined) {
        this.#flushBacklog();
        if (this.#drain() > 0) continue;
        const now = performance.now();
        this.#expire(now);
        if (!this.#hasLivePending()) break;
        let first: Pending | undefined;
        for (let i = this.#qHead; i < this.#queue.length; i++) {
          if (!this.#queue[i].expired) {
            first = this.#queue[i];
            break;
          }
        }
        const wait = Math.max(1, Math.min(20, Math.ceil((first as Pending).deadline - now)));
        await this.#o.completions.waitForDataAsync(wait);
      }
    } finally {
      this.#pumping = false;
    }
  }
}

/**
 * Decodes the translate / ATS request record at word `o` of `buf` (wire format above) into `req`
 * and clears `res` for the model.
 */
function loadRequest(buf: Uint32Array, o: number, req: DmaRequest, res: DmaResult): void {
  req.rid = buf[o];
  req.pasid = buf[o + 1] - 1;
  req.iova = buf[o + 2] + buf[o + 3] * TWO_32;
  const a = buf[o + 4];
  req.access = a & 0xff;
  req.privileged = (a & 0x100) !== 0;
  res.ok = false;
  res.pa = 0;
  res.fault = 0;
  res.faultDetail = 0;
}

/**
 * Worker side of a worker-mode device port: drains the request ring through the model into the
 * completion ring. No allocation: one request, one page request, one result and two scratch
 * buffers are reused. Translations are served inline; the other kinds (one kind check per record)
 * go through a separate method.
 * Never blocks: completions that do not fit are kept and pushed on the next {@link DevicePortServer.drain}.
 */
export class DevicePortServer {
  readonly #hw: HostedHardware;
  readonly #requests: RecordRing;
  readonly #completions: RecordRing;
  readonly #counters: InstanceCounters;
  readonly #req = dmaRequest();
  readonly #res = dmaResult();
  readonly #page: PageRequestInit = { rid: 0, pasid: NO_PASID, addr: 0, perm: 0, grpid: 0, last: false };
  readonly #inBuf: Uint32Array;
  readonly #outBuf: Uint32Array;
  readonly #batch: number;
  #outStart = 0;
  #outCount = 0;

  /**
   * @param hw - the model
   * @param handles - the two rings (attached in this thread)
   * @param counters - `devicePortRequests` is incremented per request the model served
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

  /** Serve every queued request (in batches). @returns request records consumed by this call */
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
      let unserved = 0;
      for (let i = 0; i < n; i++) {
        const o = i * WORDS;
        if (inBuf[o + 6] !== DEVICE_PORT_KIND_TRANSLATE) {
          unserved += this.#serveKind(o);
          continue;
        }
        loadRequest(inBuf, o, req, res);
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
      this.#counters.devicePortRequests += n - unserved;
      total += n;
      this.#outStart = 0;
      this.#outCount = n;
      if (!this.#flushOut()) break;
    }
    return total;
  }

  /**
   * Serves the non-translate record at word `o` of the input buffer into the same place of the
   * output buffer. @returns 1 when the model did not serve it (unsupported or unknown kind), else 0
   */
  #serveKind(o: number): number {
    const hw = this.#hw;
    const inBuf = this.#inBuf;
    const out = this.#outBuf;
    const kind = inBuf[o + 6];
    let status = DEVICE_PORT_STATUS_DONE;
    let ok = 0;
    let pa = 0;
    let fault = 0;
    let detail = 0;
    if (kind === DEVICE_PORT_KIND_ATS) {
      if (typeof hw.atsTranslate === 'function') {
        const req = this.#req;
        const res = this.#res;
        loadRequest(inBuf, o, req, res);
        hw.atsTranslate(req, res);
        ok = res.ok ? 1 : 0;
        pa = res.pa;
        fault = res.fault;
        detail = res.faultDetail;
      } else status = DEVICE_PORT_STATUS_UNSUPPORTED;
    } else if (kind === DEVICE_PORT_KIND_PAGE_REQUEST) {
      if (typeof hw.pageRequest === 'function') {
        const pr = this.#page;
        pr.rid = inBuf[o];
        pr.pasid = inBuf[o + 1] - 1;
        pr.addr = inBuf[o + 2] + inBuf[o + 3] * TWO_32;
        const a = inBuf[o + 4];
        pr.perm = a & 0xff;
        pr.last = (a & 0x100) !== 0;
        pr.grpid = inBuf[o + 7];
        ok = hw.pageRequest(pr) ? 1 : 0;
      } else status = DEVICE_PORT_STATUS_UNSUPPORTED;
    } else status = DEVICE_PORT_STATUS_BAD_KIND;
    out[o] = inBuf[o + 5];
    out[o + 1] = ok;
    out[o + 2] = pa >>> 0;
    out[o + 3] = Math.floor(pa / TWO_32);
    out[o + 4] = fault >>> 0;
    out[o + 5] = detail >>> 0;
    out[o + 6] = status;
    out[o + 7] = 0;
    return status === DEVICE_PORT_STATUS_DONE ? 0 : 1;
  }

  /** Push buffered completions; true when all went out. */
  #flushOut(): boolean {
    const pushed = this.#completions.pushBatch(this.#outBuf, this.#outCount, this.#outStart);
    this.#outStart += pushed;
    this.#outCount -= pushed;
    return this.#outCount === 0;
  }
}
