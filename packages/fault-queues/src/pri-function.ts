/**
 * The device side of PCIe PRI (PCIe §10.4; vmm-and-faults.md §3.6, §4.5): a function with a
 * Page Request Interface capability that sends Page Request Messages in PRGs and waits for one
 * PRG Response per group.
 * - credits: Outstanding Page Request Capacity (RO) and Allocation (RW); a request is outstanding
 *   from emission until the response for its group; a group needing more credits than are free
 *   waits (in order) until responses refund them;
 * - PRG indices 0..511 are chosen by the function and not reused until the group's response;
 * - a response is matched by requester ID and PRG index (and PASID when "PRG Response PASID
 *   Required"); one matching nothing outstanding sets Status.UPRGI and is ignored;
 * - Response Failure sets Status.RF: the function stops issuing requests (those waiting fail)
 *   until PRI is reset; Success means "retry the translations", Invalid Request "do not";
 * - stop markers (L = 1, R = W = 0, with a PASID) take no credit and expect no response.
 * Transport-neutral: requests go out through `send` (a device port's `pageRequest`, or a model's
 * `pageRequest` in its thread); responses come in through {@link PriFunction.receive}.
 */
import { PageResponseCode, PgFaultPerm, type PageResponse, type PageResponseCodeValue } from '@iommulab/driver-api';
import type { PageRequestInit } from '@iommulab/runtime';

/** PRI Status register bits (capability offset 0x06). */
export const PriStatus = { RF: 0x0001, UPRGI: 0x0002, STOPPED: 0x0100, PRG_RESPONSE_PASID_REQUIRED: 0x8000 } as const;

/** Highest PRG index (9 bits). */
export const PRG_INDEX_MAX = 511;

/** Options of a {@link PriFunction}. */
export interface PriFunctionOptions {
  /** Requester id (BDF / StreamID). */
  readonly rid: number;
  /** Outstanding Page Request Capacity (default 512). */
  readonly capacity?: number;
  /** Outstanding Page Request Allocation (default: the capacity; 1..capacity). */
  readonly allocation?: number;
  /** PRG Response PASID Required (default false). */
  readonly responsePasidRequired?: boolean;
  /** Sends one Page Request Message; resolves whether the IOMMU queued it (informational). */
  readonly send: (req: PageRequestInit) => boolean | Promise<boolean>;
  /** Milliseconds a {@link PriFunction.request} waits for its response (default 10 000). */
  readonly timeoutMs?: number;
}

/** One page of a group: its address and `PgFaultPerm` bits (READ and/or WRITE, EXEC, PRIV). */
export interface PriPage {
  readonly addr: number;
  readonly perm: number;
}

/** Counters of a {@link PriFunction}. */
export interface PriFunctionStats {
  requests: number;
  groups: number;
  stopMarkers: number;
  /** Requests the IOMMU reported as not queued (dropped: overflow, disabled). */
  dropped: number;
  success: number;
  invalid: number;
  failure: number;
  /** Responses that matched no outstanding group (UPRGI). */
  unexpected: number;
  /** Groups that had to wait for credits. */
  creditWaits: number;
}

interface Outstanding {
  readonly index: number;
  readonly pasid: number;
  readonly count: number;
  resolve(code: PageResponseCodeValue): void;
}

interface Waiter {
  readonly count: number;
  readonly pasid: number;
  /** Resolves the request's response (the group's `Outstanding.resolve`). */
  readonly settle: (code: PageResponseCodeValue) => void;
  readonly go: (index: number) => void;
  readonly fail: (e: Error) => void;
}

/** A PCIe function's PRI (see the module comment). */
export class PriFunction {
  readonly rid: number;
  readonly capacity: number;
  readonly stats: PriFunctionStats = { requests: 0, groups: 0, stopMarkers: 0, dropped: 0, success: 0, invalid: 0, failure: 0, unexpected: 0, creditWaits: 0 };
  readonly #pasidRequired: boolean;
  readonly #send: PriFunctionOptions['send'];
  readonly #timeoutMs: number;
  readonly #outstanding = new Map<number, Outstanding>();
  readonly #waiters: Waiter[] = [];
  #allocation: number;
  #used = 0;
  #status = 0;
  #enabled = true;
  #nextIndex = 0;

  constructor(options: PriFunctionOptions) {
    const cap = options.capacity ?? 512;
    if (!Number.isSafeInteger(cap) || cap < 1 || cap > 0xffff_ffff) throw new RangeError(`PriFunction: capacity ${String(cap)}`);
    this.rid = options.rid;
    this.capacity = cap;
    this.#allocation = cap;
    this.#pasidRequired = options.responsePasidRequired === true;
    this.#send = options.send;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    if (options.allocation !== undefined) this.allocation = options.allocation;
  }

  /** Outstanding Page Request Allocation (1..capacity). */
  get allocation(): number {
    return this.#allocation;
  }

  set allocation(n: number) {
    if (!Number.isSafeInteger(n) || n < 1 || n > this.capacity) throw new RangeError(`PriFunction: allocation ${String(n)} is not 1..${this.capacity}`);
    this.#allocation = n;
    this.#wake();
  }

  /** The PRI Status register value. */
  get status(): number {
    let s = this.#status;
    if (this.#pasidRequired) s |= PriStatus.PRG_RESPONSE_PASID_REQUIRED;
    if (!this.#enabled && this.#outstanding.size === 0) s |= PriStatus.STOPPED;
    return s;
  }

  /** Requests outstanding (credits in use). */
  get outstanding(): number {
    return this.#used;
  }

  /** PRG indices waiting for a response. */
  get outstandingGroups(): number {
    return this.#outstanding.size;
  }

  /**
   * Sends one PRG for `pages` (1..allocation pages; Last on the final one) with `pasid` (-1:
   * none), once enough credits are free, and resolves with the response code.
   * @throws Error when PRI is stopped (Response Failure received, or disabled), when the wait for
   *   credits or the response outlasts `timeoutMs` (the group stays outstanding, as on a device)
   */
  async request(pages: readonly PriPage[], pasid = -1): Promise<PageResponseCodeValue> {
    const n = pages.length;
    if (n < 1 || n > this.#allocation) throw new RangeError(`PriFunction.request: ${n} pages; 1..${this.#allocation} fit the allocation`);
    if (pasid !== -1 && (!Number.isInteger(pasid) || pasid < 0 || pasid > 0xfffff)) throw new RangeError(`PriFunction.request: PASID ${pasid}`);
    for (const p of pages) {
      if (!Number.isSafeInteger(p.addr) || p.addr < 0) throw new RangeError(`PriFunction.request: page address ${String(p.addr)}`);
      if (!Number.isInteger(p.perm) || p.perm < 0 || p.perm > 0xf) throw new RangeError(`PriFunction.request: perm ${String(p.perm)}`);
      if ((p.perm & (PgFaultPerm.READ | PgFaultPerm.WRITE)) === 0) throw new RangeError('PriFunction.request: a page request needs Read or Write (no Read and no Write is a stop marker)');
    }
    this.#checkRunning();
    let settle!: (code: PageResponseCodeValue) => void;
    const answered = new Promise<PageResponseCodeValue>((r) => (settle = r));
    let index: number;
    if (this.#waiters.length === 0 && this.#fits(n)) index = this.#start(n, pasid, settle);
    else {
      this.stats.creditWaits++;
      // #wake takes the credits and the index and registers the group before resuming us.
      index = await this.#waitCredits(n, pasid, settle);
      const o = this.#outstanding.get(index);
      // A reset between the wake and now forgot the group (it resolved FAILURE): send nothing.
      if (o === undefined || o.resolve !== settle) return answered;
      if (!this.#enabled || this.#status & PriStatus.RF) {
        // PRI stopped between the wake and now: the group never goes out.
        this.#outstanding.delete(index);
        this.#used -= n;
        this.#checkRunning();
      }
    }
    this.stats.groups++;
    for (let i = 0; i < n; i++) {
      const p = pages[i]!;
      this.stats.requests++;
      let ok: boolean;
      try {
        ok = await this.#send({ rid: this.rid, pasid, addr: p.addr, perm: p.perm, grpid: index, last: i === n - 1 });
      } catch (e) {
        // The transport failed (the Last never went out): nobody will answer this group, so the
        // function takes its credits and index back instead of leaking them.
        const o = this.#outstanding.get(index);
        if (o !== undefined && o.resolve === settle) {
          this.#outstanding.delete(index);
          this.#used -= n;
          this.#wake();
        }
        throw e;
      }
      if (!ok) this.stats.dropped++;
    }
    return withTimeout(answered, this.#timeoutMs, () => `PriFunction 0x${this.rid.toString(16)}: no PRG Response for index ${index} within ${this.#timeoutMs} ms`);
  }

  /** Sends a stop marker for `pasid` (no credit, no response). */
  async stopMarker(pasid: number): Promise<boolean> {
    if (!Number.isInteger(pasid) || pasid < 0 || pasid > 0xfffff) throw new RangeError(`PriFunction.stopMarker: PASID ${pasid}`);
    this.stats.stopMarkers++;
    return this.#send({ rid: this.rid, pasid, addr: 0, perm: 0, grpid: 0, last: true });
  }

  /**
   * A PRG Response Message arrives (from the IOMMU's host bridge). Returns true when it matched
   * an outstanding group (credits refunded, the request resolved), false otherwise (UPRGI set).
   */
  receive(resp: PageResponse): boolean {
    if (resp.rid !== this.rid) return false;
    const o = this.#outstanding.get(resp.grpid);
    if (o === undefined || (this.#pasidRequired && o.pasid !== resp.pasid)) {
      this.#status |= PriStatus.UPRGI;
      this.stats.unexpected++;
      return false;
    }
    this.#outstanding.delete(resp.grpid);
    this.#used -= o.count;
    const code = resp.code;
    if (code === PageResponseCode.SUCCESS) this.stats.success++;
    else if (code === PageResponseCode.INVALID) this.stats.invalid++;
    else {
      this.stats.failure++;
      this.#status |= PriStatus.RF;
      this.#failWaiters('Response Failure received: PRI stopped until reset');
    }
    o.resolve(code);
    this.#wake();
    return true;
  }

  /** Control.ENABLE: clearing it stops new requests (those waiting for credits fail). */
  setEnabled(on: boolean): void {
    this.#enabled = on;
    if (!on) this.#failWaiters('PRI disabled');
  }

  /**
   * Control.RESET (with PRI disabled in hardware terms): clears RF and UPRGI, forgets every
   * outstanding group (their requests resolve FAILURE) and frees all credits.
   */
  reset(): void {
    for (const o of this.#outstanding.values()) o.resolve(PageResponseCode.FAILURE);
    this.#outstanding.clear();
    this.#used = 0;
    this.#status = 0;
    this.#failWaiters('PRI reset');
    this.#enabled = true;
  }

  #checkRunning(): void {
    if (!this.#enabled) throw new Error(`PriFunction 0x${this.rid.toString(16)}: PRI is disabled`);
    if (this.#status & PriStatus.RF) throw new Error(`PriFunction 0x${this.rid.toString(16)}: Response Failure received; PRI stopped until reset`);
  }

  #fits(n: number): boolean {
    return this.#used + n <= this.#allocation && this.#outstanding.size <= PRG_INDEX_MAX;
  }

  /**
   * Takes `n` credits and a free PRG index (not reused until its response) and registers the
   * group as outstanding.
   */
  #start(n: number, pasid: number, settle: (code: PageResponseCodeValue) => void): number {
    for (let k = 0; k <= PRG_INDEX_MAX; k++) {
      const i = (this.#nextIndex + k) & PRG_INDEX_MAX;
      if (!this.#outstanding.has(i)) {
        this.#nextIndex = (i + 1) & PRG_INDEX_MAX;
        this.#used += n;
        this.#outstanding.set(i, { index: i, pasid, count: n, resolve: settle });
        return i;
      }
    }
    throw new Error('PriFunction: no free PRG index');
  }

  #waitCredits(n: number, pasid: number, settle: (code: PageResponseCodeValue) => void): Promise<number> {
    let w!: Waiter;
    const p = new Promise<number>((go, fail) => {
      w = { count: n, pasid, settle, go, fail };
      this.#waiters.push(w);
    });
    return withTimeout(p, this.#timeoutMs, () => {
      const i = this.#waiters.indexOf(w);
      if (i >= 0) this.#waiters.splice(i, 1);
      return `PriFunction 0x${this.rid.toString(16)}: no credits for ${n} requests within ${this.#timeoutMs} ms`;
    });
  }

  /** Hands credits and an index to waiters, in order, while they fit. */
  #wake(): void {
    while (this.#waiters.length > 0) {
      const w = this.#waiters[0]!;
      if (this.#status & PriStatus.RF || !this.#enabled || !this.#fits(w.count)) return;
      this.#waiters.shift();
      w.go(this.#start(w.count, w.pasid, w.settle));
    }
  }

  #failWaiters(why: string): void {
    for (const w of this.#waiters.splice(0)) w.fail(new Error(`PriFunction 0x${this.rid.toString(16)}: ${why}`));
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(what())), ms);
    timer.unref?.();
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}
