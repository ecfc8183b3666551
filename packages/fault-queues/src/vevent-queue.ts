/**
 * A vIOMMU event queue's stream (`struct iommufd_veventq`, drivers/iommu/iommufd/eventq.c and
 * driver.c `iommufd_viommu_report_event`; vmm-and-faults.md §3.7, §4.4): non-recoverable faults
 * of nested HWPTs (for SMMUv3 the raw 32-byte event record with the virtual StreamID), bounded by
 * `veventq_depth`.
 * - every *reported* event takes the next sequence number (0..INT_MAX, then 0), queued or not;
 * - with `depth` events queued a report is lost: one LOST_EVENTS header (no data, that sequence
 *   number) sits at the tail; a later report while it is still last replaces it (the loss then
 *   also shows as a sequence gap). Reading an event frees a slot; the header takes none;
 * - a read returns whole `{struct iommufd_vevent_header {u32 flags; u32 sequence}; data}` records
 *   while they fit (the header alone needs 8 bytes); 0 bytes when the first does not fit.
 */

/** `sizeof(struct iommufd_vevent_header)`. */
export const IOMMUFD_VEVENT_HEADER_BYTES = 8;
/** `IOMMU_VEVENTQ_FLAG_LOST_EVENTS`. */
export const IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1 << 0;
const INT_MAX = 0x7fff_ffff;

/** One queued vEVENT (`struct iommufd_vevent`); `data` null for the LOST_EVENTS header. */
export interface Vevent {
  flags: number;
  sequence: number;
  data: Uint8Array | null;
}

/** Counters of a {@link VeventQueue}. */
export interface VeventQueueStats {
  /** Events reported. */
  reported: number;
  /** Events lost because the queue was full. */
  lost: number;
  /** Events read. */
  read: number;
}

/** The bounded vEVENT stream of one vEVENTQ (see the module comment). */
export class VeventQueue {
  /** `veventq_depth`. */
  readonly depth: number;
  /** Counters. */
  readonly stats: VeventQueueStats = { reported: 0, lost: 0, read: 0 };
  /** Queued records, oldest first (the LOST_EVENTS header included). @internal */
  readonly list: Vevent[] = [];
  readonly #lost: Vevent = { flags: IOMMU_VEVENTQ_FLAG_LOST_EVENTS, sequence: 0, data: null };
  /** Events queued (the LOST_EVENTS header not counted). */
  numEvents = 0;
  /** Sequence number of the next report. */
  sequence = 0;

  /** @param depth - `veventq_depth` (≥ 1) */
  constructor(depth: number) {
    if (!Number.isSafeInteger(depth) || depth < 1 || depth > 0xffff_ffff) throw new RangeError(`VeventQueue: depth ${String(depth)}`);
    this.depth = depth;
  }

  /** Whether a read would return something. */
  get readable(): boolean {
    return this.list.length > 0;
  }

  /** Queues a copy of `data` or records a loss. @throws RangeError for empty data */
  report(data: Uint8Array): void {
    if (data.length === 0) throw new RangeError('VeventQueue.report: a vEVENT needs data');
    this.stats.reported++;
    let ev: Vevent;
    if (this.numEvents === this.depth) {
      ev = this.#lost;
      this.stats.lost++;
    } else {
      ev = { flags: 0, sequence: 0, data: data.slice() };
      this.numEvents++;
    }
    // The LOST_EVENTS header leaves the tail as the new record joins it.
    if (this.list.length > 0 && this.list[this.list.length - 1] === this.#lost) this.list.pop();
    this.list.push(ev);
    ev.sequence = this.sequence;
    this.sequence = (this.sequence + 1) & INT_MAX;
  }

  /** Reads whole records up to `count` bytes (a non-negative integer). */
  read(count: number): Uint8Array {
    if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`VeventQueue.read: count ${String(count)}`);
    let take = 0;
    let bytes = 0;
    for (const cur of this.list) {
      const len = IOMMUFD_VEVENT_HEADER_BYTES + (cur.data === null ? 0 : cur.data.length);
      if (len > count - bytes) break;
      bytes += len;
      take++;
    }
    const buf = new Uint8Array(bytes);
    const dv = new DataView(buf.buffer);
    let at = 0;
    for (const cur of this.list.splice(0, take)) {
      dv.setUint32(at, cur.flags, true);
      dv.setUint32(at + 4, cur.sequence, true);
      at += IOMMUFD_VEVENT_HEADER_BYTES;
      if (cur.data !== null) {
        buf.set(cur.data, at);
        at += cur.data.length;
        this.numEvents--;
        this.stats.read++;
      }
    }
    return buf;
  }

  /** Frees every queued record (`iommufd_veventq_abort`). */
  clear(): void {
    this.list.length = 0;
    this.numEvents = 0;
  }
}
