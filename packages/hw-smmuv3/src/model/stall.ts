/**
 * Stalled transactions (smmuv3.md §5.1 STAG/Stall, §5.2, §4.2 CMD_RESUME / CMD_STALL_TERM).
 *
 * A stage-1 fault with CD.S = 1 (STE.S1STALLD = 0) or a stage-2 fault with STE.S2S = 1 on a
 * stall-capable SMMU is recorded with Stall = 1 and a STAG unique among the stream's outstanding
 * stalls, and the transaction is parked here until software answers:
 * - CMD_RESUME(SID, STAG, Action): Action 1 (RETRY, or 3: Ac set) → the device retries the
 *   access; 0 (TERMINATE) / 2 (ABORT) → it is terminated. A STAG that is not outstanding for
 *   that SID is ignored (CONSTRAINED UNPREDICTABLE, model: no effect).
 * - CMD_STALL_TERM(SID): every stalled transaction of the SID is terminated.
 * Each resolution is logged for the device side ({@link StallTable.take}).
 *
 * - SMMUEN 1 → 0: every stalled transaction is terminated with an abort (IHI 0070 §6.3.9.6).
 * With IDR0.TERM_MODEL = 1 a terminate always aborts (§4.7.1; applied by the command side).
 * At most `capacity` (IDR5.STALL_MAX) transactions are parked; beyond that the fault is not
 * stalled (the caller terminates it).
 */

/** How a stalled transaction was resolved. */
export type StallAction = 'retry' | 'terminate' | 'abort';

/** One resolved stalled transaction, as the device sees it. */
export interface StallResolution {
  readonly sid: number;
  /** SubstreamID, or -1. */
  readonly ssid: number;
  readonly stag: number;
  /** Input address of the stalled transaction. */
  readonly iova: number;
  /** ACCESS_* bits of the stalled transaction. */
  readonly access: number;
  /** Event id recorded for it. */
  readonly evt: number;
  readonly action: StallAction;
}

/** Outstanding stalled transactions, keyed by (StreamID, STAG). */
export class StallTable {
  private readonly sid: Float64Array;
  private readonly stag: Int32Array;
  private readonly ssid: Int32Array;
  private readonly iova: Float64Array;
  private readonly access: Uint8Array;
  private readonly evt: Uint8Array;
  private readonly used: Uint8Array;
  private nextStag = 0;
  private log: StallResolution[] = [];
  /** Outstanding stalls. */
  count = 0;
  /** Transactions stalled (stats). */
  stalled = 0;
  /** Resolutions by kind (stats). */
  retried = 0;
  terminated = 0;
  /** Stall requests refused because the table was full. */
  refused = 0;

  /**
   * @param capacity - most outstanding stalls (IDR5.STALL_MAX)
   * @param logCapacity - resolutions kept for {@link StallTable.take} (oldest dropped beyond)
   */
  constructor(
    readonly capacity: number,
    private readonly logCapacity = 4096,
  ) {
    this.sid = new Float64Array(capacity);
    this.stag = new Int32Array(capacity);
    this.ssid = new Int32Array(capacity);
    this.iova = new Float64Array(capacity);
    this.access = new Uint8Array(capacity);
    this.evt = new Uint8Array(capacity);
    this.used = new Uint8Array(capacity);
  }

  private inUse(sid: number, stag: number): boolean {
    for (let i = 0; i < this.capacity; i++) if (this.used[i] === 1 && this.sid[i] === sid && this.stag[i] === stag) return true;
    return false;
  }

  /**
   * Parks a faulting transaction.
   * @returns its STAG (0..65535), or -1 when the table is full (do not stall)
   */
  park(sid: number, ssid: number, iova: number, access: number, evt: number): number {
    if (this.count >= this.capacity) {
      this.refused++;
      return -1;
    }
    let stag = this.nextStag;
    while (this.inUse(sid, stag)) stag = (stag + 1) & 0xffff;
    this.nextStag = (stag + 1) & 0xffff;
    let i = 0;
    while (this.used[i] === 1) i++;
    this.used[i] = 1;
    this.sid[i] = sid;
    this.stag[i] = stag;
    this.ssid[i] = ssid;
    this.iova[i] = iova;
    this.access[i] = access;
    this.evt[i] = evt;
    this.count++;
    this.stalled++;
    return stag;
  }

  private resolve(i: number, action: StallAction): void {
    this.used[i] = 0;
    this.count--;
    if (action === 'retry') this.retried++;
    else this.terminated++;
    if (this.log.length >= this.logCapacity) this.log.shift();
    this.log.push({
      sid: this.sid[i],
      ssid: this.ssid[i],
      stag: this.stag[i],
      iova: this.iova[i],
      access: this.access[i],
      evt: this.evt[i],
      action,
    });
  }

  /**
   * CMD_RESUME: resolves the stall (sid, stag).
   * @param action - the command's Action field (0 terminate, 1 retry, 2 abort, 3 retry)
   * @returns true when such a stall was outstanding
   */
  resume(sid: number, stag: number, action: number): boolean {
    for (let i = 0; i < this.capacity; i++) {
      if (this.used[i] === 1 && this.sid[i] === sid && this.stag[i] === stag) {
        this.resolve(i, (action & 1) !== 0 ? 'retry' : action === 2 ? 'abort' : 'terminate');
        return true;
      }
    }
    return false;
  }

  /** Withdraws a stall that was just parked but could not be reported (no resolution logged). */
  cancel(sid: number, stag: number): void {
    for (let i = 0; i < this.capacity; i++) {
      if (this.used[i] === 1 && this.sid[i] === sid && this.stag[i] === stag) {
        this.used[i] = 0;
        this.count--;
        this.stalled--;
        return;
      }
    }
  }

  /** CMD_STALL_TERM: terminates every stall of `sid`; returns how many. */
  terminateSid(sid: number): number {
    let n = 0;
    for (let i = 0; i < this.capacity; i++) {
      if (this.used[i] === 1 && this.sid[i] === sid) {
        this.resolve(i, 'terminate');
        n++;
      }
    }
    return n;
  }

  /** True while (sid, stag) is an outstanding stall. */
  isStalled(sid: number, stag: number): boolean {
    return this.inUse(sid, stag);
  }

  /** SMMUEN 1 → 0 (IHI 0070 §6.3.9.6): every stall is terminated with an abort; returns how many. */
  abortAll(): number {
    let n = 0;
    for (let i = 0; i < this.capacity; i++) {
      if (this.used[i] === 1) {
        this.resolve(i, 'abort');
        n++;
      }
    }
    return n;
  }

  /** Returns (and forgets) the logged resolutions, oldest first. */
  take(): StallResolution[] {
    const l = this.log;
    this.log = [];
    return l;
  }

  /** Outstanding stalls as (sid, stag) pairs (tests, debugging). */
  outstanding(): { sid: number; stag: number; ssid: number; iova: number }[] {
    const out: { sid: number; stag: number; ssid: number; iova: number }[] = [];
    for (let i = 0; i < this.capacity; i++) {
      if (this.used[i] === 1) out.push({ sid: this.sid[i], stag: this.stag[i], ssid: this.ssid[i], iova: this.iova[i] });
    }
    return out;
  }

  /** Drops every stall and the log (reset). */
  reset(): void {
    this.used.fill(0);
    this.count = 0;
    this.nextStag = 0;
    this.log = [];
  }
}
