/**
 * The iommu core's I/O page fault layer for one IOMMU instance (`struct iopf_queue`,
 * drivers/iommu/io-pgfault.c; vmm-and-faults.md §3.2–§3.6, §3.8): it takes every fault the
 * driver drains (`IommuDriver.onFault`) and
 * - filters stop markers (Last, no Read / Write, with a PASID: no response, §3.2 step 3);
 * - holds non-Last requests on the device's partial list until the Last of the same PRG index
 *   arrives, then builds one group (partials in arrival order, Last at the end) and hands it to
 *   the handler of the attachment the request was routed to (`find_fault_handler`), once;
 * - answers INVALID right away a Last request that no attachment with a fault handler takes, or
 *   whose device never enabled IOPF (`iopf_error_response`); a non-Last one is dropped with no
 *   response (one response per PRG, PCIe §10.4.2);
 * - answers Response Failure a group its handler refuses (the kernel's abort path);
 * - sends each group's single response to the driver's `pageResponse` with the device and the
 *   Last request's PASID and PRG index (`iopf_group_response`); any later answer is a no-op;
 * - on a page-request queue overflow discards every partial request (`iopf_queue_discard_partial`);
 * - on `removeDevice` frees the device's partials and answers INVALID every pending group;
 * - optionally answers a group INVALID when it was not answered within `responseTimeout` ticks of
 *   a {@link LogicalClock} (off by default: Linux has no timer);
 * - keeps non-recoverable events in a bounded log (the host driver's log; iommufd does not deliver
 *   them) and counts everything it drops.
 */
import {
  isStopMarker,
  PageResponseCode,
  type FaultEvent,
  type IommuDevice,
  type IommuDriver,
  type IommuFault,
  type PageRequest,
  type PageResponse,
  type PageResponseCodeValue,
} from '@iommulab/driver-api';
import { FaultDevice, type FaultHandlerLookup } from './fault-device.js';
import { IopfGroup, type IopfFault } from './iopf-group.js';
import type { LogicalClock } from './logical-clock.js';
import { IOMMU_PGFAULT_FLAGS_LAST_PAGE, IOMMU_PGFAULT_FLAGS_PASID_VALID } from './pgfault-record.js';

/** Options of an {@link IopfQueue}. */
export interface IopfQueueOptions {
  /** Clock of the response timeouts (needed with `responseTimeout`). */
  readonly clock?: LogicalClock;
  /** Ticks after which a pending group is answered automatically; undefined (default): never. */
  readonly responseTimeout?: number;
  /** Code of a timed-out group's answer (default INVALID). */
  readonly timeoutCode?: PageResponseCodeValue;
  /** Partial requests held per device (default 4096); more are dropped and counted. */
  readonly maxPartial?: number;
  /** Non-recoverable events kept in {@link IopfQueue.events} (default 256; oldest dropped). */
  readonly eventLog?: number;
  /** Called for each non-recoverable event, with its device when known. */
  readonly onEvent?: (event: FaultEvent, device: FaultDevice | undefined) => void;
}

/** Counters of an {@link IopfQueue}. */
export interface IopfQueueStats {
  /** Page requests reported (all devices, stop markers included). */
  requests: number;
  /** Stop markers filtered. */
  stopMarkers: number;
  /** Requests from a requester id with no device added (left to the driver to answer). */
  unknownDevice: number;
  /** Groups handed to a handler. */
  groups: number;
  /** Last requests of an added device answered INVALID for want of a handler. */
  noHandler: number;
  /** Non-Last requests dropped (no handler, partial list full). */
  partialDropped: number;
  /** Partial requests discarded (overflow, device removal, their Last taken by no handler). */
  partialDiscarded: number;
  /** Groups a handler refused, answered Response Failure. */
  refused: number;
  /** Responses sent to the driver, by code. */
  success: number;
  invalid: number;
  failure: number;
  /** Groups answered automatically because their timeout expired. */
  timeouts: number;
  /** Answers to a group already answered (ignored). */
  lateResponses: number;
  /** Responses the driver failed to send (`pageResponse` rejected). */
  responseErrors: number;
  /** Page-request queue overflows the driver reported. */
  pageRequestOverflows: number;
  /** Event queue overflows the driver reported (events lost in hardware). */
  eventOverflows: number;
  /** Non-recoverable events received. */
  events: number;
  /** Events pushed out of the bounded log. */
  eventsDropped: number;
}

const queues = new WeakMap<IommuDriver, IopfQueue>();

function newStats(): IopfQueueStats {
  return {
    requests: 0,
    stopMarkers: 0,
    unknownDevice: 0,
    groups: 0,
    noHandler: 0,
    partialDropped: 0,
    partialDiscarded: 0,
    refused: 0,
    success: 0,
    invalid: 0,
    failure: 0,
    timeouts: 0,
    lateResponses: 0,
    responseErrors: 0,
    pageRequestOverflows: 0,
    eventOverflows: 0,
    events: 0,
    eventsDropped: 0,
  };
}


/** The I/O page fault layer of one IOMMU driver (see the module comment). */
export class IopfQueue {
  /** Counters. */
  readonly stats: IopfQueueStats = newStats();
  readonly #driver: IommuDriver;
  readonly #devices = new Map<number, FaultDevice>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #events: FaultEvent[] = [];
  readonly #eventLog: number;
  readonly #maxPartial: number;
  readonly #timeout: number;
  readonly #timeoutCode: PageResponseCodeValue;
  readonly #clock: LogicalClock | undefined;
  readonly #onEvent: IopfQueueOptions['onEvent'];
  /** Pending groups with a deadline, in deadline order (deadlines only grow). */
  readonly #deadlines: IopfGroup[] = [];
  #deadlineHead = 0;
  #offClock: (() => void) | undefined;
  #instances = 0;
  #holds = 0;
  #unsubscribe: (() => void) | undefined;
  #closed = false;
  #lastError: unknown;

  /**
   * @param driver - the driver whose faults it takes (it subscribes while a device is added or a
   *   {@link IopfQueue.hold} is active)
   */
  constructor(driver: IommuDriver, options: IopfQueueOptions = {}) {
    this.#driver = driver;
    const t = options.responseTimeout;
    if (t !== undefined && (!Number.isSafeInteger(t) || t <= 0)) throw new RangeError(`IopfQueue: responseTimeout ${String(t)} is not a positive integer`);
    if (t !== undefined && options.clock === undefined) throw new RangeError('IopfQueue: responseTimeout needs a clock');
    const mp = options.maxPartial ?? 4096;
    if (!Number.isSafeInteger(mp) || mp < 0) throw new RangeError(`IopfQueue: maxPartial ${String(mp)}`);
    const el = options.eventLog ?? 256;
    if (!Number.isSafeInteger(el) || el < 0) throw new RangeError(`IopfQueue: eventLog ${String(el)}`);
    const tc = options.timeoutCode ?? PageResponseCode.INVALID;
    if (tc !== 0 && tc !== 1 && tc !== 2) throw new RangeError(`IopfQueue: timeoutCode ${String(tc)}`);
    this.#timeout = t ?? Infinity;
    this.#timeoutCode = tc;
    this.#clock = options.clock;
    this.#maxPartial = mp;
    this.#eventLog = el;
    this.#onEvent = options.onEvent;
    if (t !== undefined) this.#offClock = options.clock!.onAdvance((now) => this.#expire(now));
  }

  /**
   * The queue shared by every owner of `driver` (one per IOMMU instance, like the kernel's
   * per-IOMMU `iopf_queue`), created with `options` on first use.
   */
  static of(driver: IommuDriver, options?: IopfQueueOptions): IopfQueue {
    let q = queues.get(driver);
    if (q === undefined || q.#closed) {
      q = new IopfQueue(driver, options);
      queues.set(driver, q);
    }
    return q;
  }

  /** The driver. */
  get driver(): IommuDriver {
    return this.#driver;
  }

  /** The devices added, by requester id. */
  get devices(): ReadonlyMap<number, FaultDevice> {
    return this.#devices;
  }

  /** The last error a `pageResponse` failed with (for diagnostics). */
  get lastResponseError(): unknown {
    return this.#lastError;
  }

  /**
   * `iopf_queue_add_device`: the device's page requests are routed with `lookup` from now on.
   * @param devId - the id its records carry (iommufd `dev_id`); defaults to the requester id
   * @throws Error when a device with that requester id is already added (the kernel's EBUSY)
   */
  addDevice(dev: IommuDevice, lookup: FaultHandlerLookup, devId: number = dev.rid): FaultDevice {
    this.#checkOpen('addDevice');
    if (this.#devices.has(dev.rid)) throw new Error(`IopfQueue.addDevice: requester id 0x${dev.rid.toString(16)} is already added (EBUSY)`);
    const d = new FaultDevice(this, dev, lookup, devId);
    this.#devices.set(dev.rid, d);
    this.#ref(+1);
    return d;
  }

  /**
   * `iopf_queue_remove_device`: frees the device's partial requests (no response) and answers
   * INVALID every group still pending (withdrawn from its sink). A later answer is a no-op.
   * Removing a device that is not added does nothing.
   */
  removeDevice(dev: IommuDevice | FaultDevice): void {
    const d = this.#devices.get(dev.rid);
    if (d === undefined || (dev instanceof FaultDevice && dev !== d)) return;
    this.stats.partialDiscarded += d.partial.length;
    d.stats.partialDiscarded += d.partial.length;
    d.partial.length = 0;
    for (const g of [...d.pending]) this.respond(g, PageResponseCode.INVALID);
    this.#devices.delete(d.rid);
    this.#ref(-1);
  }

  /** The device with requester id `rid`, if added. */
  device(rid: number): FaultDevice | undefined {
    return this.#devices.get(rid);
  }

  /**
   * Listens to the driver's faults even without devices added (their requests are then counted
   * here and left to the driver to answer). Returns the release function.
   */
  hold(): () => void {
    this.#checkOpen('hold');
    this.#ref(+1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#ref(-1);
    };
  }

  /**
   * `iommu_report_device_fault` (also what the driver subscription calls). Never throws.
   * Returns false for a page request of a requester id with no device added: as in the kernel,
   * the driver must then complete it (answer a Last request INVALID) itself.
   */
  report(fault: IommuFault): boolean {
    if (this.#closed) return false;
    switch (fault.kind) {
      case 'page-request':
        return this.#pageRequest(fault);
      case 'event':
        this.#event(fault);
        return true;
      case 'overflow':
        if (fault.queue === 'page-request') {
          this.stats.pageRequestOverflows++;
          this.discardPartial();
        } else this.stats.eventOverflows++;
        return true;
      default:
        return false;
    }
  }

  /** `iopf_queue_discard_partial`: drops every partial request of every device. Returns how many. */
  discardPartial(): number {
    let n = 0;
    for (const d of this.#devices.values()) {
      n += d.partial.length;
      d.stats.partialDiscarded += d.partial.length;
      d.partial.length = 0;
    }
    this.stats.partialDiscarded += n;
    return n;
  }

  /**
   * `iopf_group_response`: sends the group's one response (`code`) to the driver, addressed with
   * the device and the Last request's PASID and PRG index, and withdraws the group from its sink
   * (a fault queue then neither hands it to a reader nor takes a response for it). Returns false,
   * sending nothing, when the group was already answered or is not pending on its device.
   */
  respond(group: IopfGroup, code: PageResponseCodeValue): boolean {
    return this.#answer(group, code, true);
  }

  #answer(group: IopfGroup, code: PageResponseCodeValue, withdraw: boolean): boolean {
    if (code !== 0 && code !== 1 && code !== 2) throw new RangeError(`respond: code ${String(code)} is not SUCCESS / INVALID / FAILURE`);
    const d = group.device;
    if (d.queue !== this || !d.pending.has(group) || !group.markAnswered(code)) {
      this.stats.lateResponses++;
      return false;
    }
    d.pending.delete(group);
    d.stats.answered++;
    if (withdraw) {
      try {
        group.sink.withdraw(group);
      } catch {
        // A broken sink must not keep the device waiting.
      }
    }
    const last = group.last;
    this.#send(d.dev, {
      rid: d.rid,
      pasid: last.flags & IOMMU_PGFAULT_FLAGS_PASID_VALID ? last.pasid : -1,
      grpid: last.grpid,
      code,
    });
    return true;
  }

  /** Resolves once every response sent so far has been handled by the driver. */
  async flush(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.all([...this.#inflight]);
  }

  /** The non-recoverable events logged (oldest first; at most `eventLog`). */
  events(): readonly FaultEvent[] {
    return this.#events;
  }

  /** Groups pending on every device. */
  get outstanding(): number {
    let n = 0;
    for (const d of this.#devices.values()) n += d.pending.size;
    return n;
  }

  /**
   * Removes every device (their pending groups answered INVALID), stops listening to the driver
   * and forgets the queue; further reports are ignored.
   */
  close(): void {
    if (this.#closed) return;
    for (const d of [...this.#devices.values()]) this.removeDevice(d);
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#offClock?.();
    if (queues.get(this.#driver) === this) queues.delete(this.#driver);
  }

  // ---------------------------------------------------------------------------- internals

  #checkOpen(what: string): void {
    if (this.#closed) throw new Error(`IopfQueue.${what}: the queue is closed`);
  }

  #ref(delta: number): void {
    this.#holds += delta;
    if (this.#holds > 0 && this.#unsubscribe === undefined) {
      try {
        this.#unsubscribe = this.#driver.onFault((f) => this.report(f));
      } catch {
        // A driver already shut down reports nothing.
        this.#unsubscribe = () => {};
      }
    } else if (this.#holds === 0 && this.#unsubscribe !== undefined) {
      this.#unsubscribe();
      this.#unsubscribe = undefined;
    }
  }

  #send(dev: IommuDevice, resp: PageResponse): void {
    const s = this.stats;
    if (resp.code === PageResponseCode.SUCCESS) s.success++;
    else if (resp.code === PageResponseCode.INVALID) s.invalid++;
    else s.failure++;
    let p: Promise<void>;
    try {
      p = this.#driver.pageResponse(dev, resp);
    } catch (e) {
      p = Promise.reject(e);
    }
    const tracked: Promise<void> = p.then(
      () => {
        this.#inflight.delete(tracked);
      },
      (e: unknown) => {
        this.#inflight.delete(tracked);
        s.responseErrors++;
        this.#lastError = e;
      },
    );
    this.#inflight.add(tracked);
  }

  /** `iopf_error_response` for a Last request nobody takes. */
  #errorResponse(dev: IommuDevice, req: PageRequest): void {
    this.stats.noHandler++;
    this.#send(dev, { rid: req.rid, pasid: req.pasid, grpid: req.grpid, code: PageResponseCode.INVALID });
  }

  #pageRequest(req: PageRequest): boolean {
    const s = this.stats;
    s.requests++;
    const d = this.#devices.get(req.rid);
    if (d !== undefined) d.stats.requests++;
    if (isStopMarker(req)) {
      s.stopMarkers++;
      if (d !== undefined) d.stats.stopMarkers++;
      return true;
    }
    if (d === undefined) {
      // No fault parameters (IOPF not enabled for it): the driver completes the request.
      s.unknownDevice++;
      if (!req.last) s.partialDropped++;
      return false;
    }
    const hasPasid = req.pasid >= 0;
    const f: IopfFault = {
      flags: (hasPasid ? IOMMU_PGFAULT_FLAGS_PASID_VALID : 0) | (req.last ? IOMMU_PGFAULT_FLAGS_LAST_PAGE : 0),
      pasid: hasPasid ? req.pasid : 0,
      grpid: req.grpid,
      perm: req.perm,
      addr: req.addr,
    };
    let h: ReturnType<FaultHandlerLookup>;
    try {
      h = d.lookup(req.pasid, req);
    } catch {
      h = null;
    }
    const sink = h === null ? null : h.sink;
    if (!req.last) {
      // report_partial_fault: no response for a request that is not the last one.
      if (sink === null || d.partial.length >= this.#maxPartial) {
        s.partialDropped++;
        d.stats.partialDropped++;
        return true;
      }
      d.partial.push(f);
      return true;
    }
    // The Last request: collect the partials of the same PRG index (kept in arrival order).
    const faults: IopfFault[] = [];
    if (d.partial.length > 0) {
      let w = 0;
      for (let i = 0; i < d.partial.length; i++) {
        const p = d.partial[i]!;
        if (p.grpid === f.grpid) faults.push(p);
        else d.partial[w++] = p;
      }
      d.partial.length = w;
    }
    if (h === null || sink === null) {
      // Its partials go with it (freed unanswered; the kernel would leave them until a discard).
      s.partialDiscarded += faults.length;
      d.stats.partialDiscarded += faults.length;
      d.stats.noHandler++;
      this.#errorResponse(d.dev, req);
      return true;
    }
    faults.push(f);
    const now = this.#clock?.now ?? 0;
    const group = new IopfGroup(faults, d, h.handle, sink, ++this.#instances, now, now + this.#timeout);
    d.pending.add(group);
    s.groups++;
    d.stats.groups++;
    if (this.#timeout !== Infinity) this.#deadlines.push(group);
    let taken: boolean;
    try {
      taken = sink.deliver(group);
    } catch {
      taken = false;
    }
    if (!taken) {
      s.refused++;
      this.#answer(group, PageResponseCode.FAILURE, false);
    }
    return true;
  }

  #event(ev: FaultEvent): void {
    const s = this.stats;
    s.events++;
    const d = this.#devices.get(ev.rid);
    if (d !== undefined) d.stats.events++;
    if (this.#eventLog > 0) {
      if (this.#events.length >= this.#eventLog) {
        this.#events.shift();
        s.eventsDropped++;
      }
      this.#events.push(ev);
    } else s.eventsDropped++;
    try {
      this.#onEvent?.(ev, d);
    } catch {
      // A broken listener must not break the drain.
    }
  }

  #expire(now: number): void {
    const list = this.#deadlines;
    while (this.#deadlineHead < list.length) {
      const g = list[this.#deadlineHead]!;
      if (g.deadline > now) break;
      this.#deadlineHead++;
      if (g.state !== 'pending' || !g.device.pending.has(g)) continue;
      if (this.respond(g, this.#timeoutCode)) this.stats.timeouts++;
    }
    if (this.#deadlineHead > 1024 && this.#deadlineHead * 2 > list.length) {
      list.splice(0, this.#deadlineHead);
      this.#deadlineHead = 0;
    }
  }
}
