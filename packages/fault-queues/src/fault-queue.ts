/**
 * The queue of a fault object (`struct iommufd_fault`, drivers/iommu/iommufd/eventq.c;
 * vmm-and-faults.md §3.2 steps 6–7 and 12–13, §3.4, §4.2): the {@link FaultSink} of every HWPT
 * allocated with it.
 * - deliver list: complete groups in FIFO order (`common.deliver`);
 * - read: whole groups of 40-byte `iommu_hwpt_pgfault` records while they fit; each group read
 *   gets the next cookie of a cyclic allocator over [1, 2^32 − 1] ({@link CookieAllocator}: 1, 2,
 *   3..., a freed cookie not handed out again until the cursor wraps; on purpose unlike the
 *   kernel's lowest-free `xa_alloc`, so a late response can never answer a newer group) and moves
 *   to the response table; count not a multiple of 40 → ESPIPE; the first group does not fit →
 *   0 bytes;
 * - write: 8-byte `{cookie, code}` responses in order; count not a multiple of 8 → ESPIPE; a code
 *   other than SUCCESS / INVALID or a cookie not awaiting a response → EINVAL when it is the first
 *   entry, else the bytes consumed before it; each valid one answers its group once and frees the
 *   cookie;
 * - automatic INVALID for the groups of an attachment that goes away ({@link FaultQueue.autoRespond})
 *   and for everything on {@link FaultQueue.close};
 * - an optional capacity (groups held, read or not; the kernel has none: the device's PRI credits
 *   bound it): a group beyond it is refused, which the fault layer answers Response Failure.
 */
import { IommuError, PageResponseCode, type PageResponseCodeValue } from '@iommulab/driver-api';
import { isIommufdResponseCode } from './codes.js';
import { CookieAllocator } from './cookie-alloc.js';
import type { FaultSink, IopfGroup } from './iopf-group.js';
import { encodePgfault, IOMMU_HWPT_PAGE_RESPONSE_BYTES, IOMMU_HWPT_PGFAULT_BYTES } from './pgfault-record.js';

/** Options of a {@link FaultQueue}. */
export interface FaultQueueOptions {
  /** Groups held at once (delivered + awaiting a response); default unbounded, as the kernel. */
  readonly capacity?: number;
}

/** Counters of a {@link FaultQueue}. */
export interface FaultQueueStats {
  /** Groups accepted. */
  delivered: number;
  /** Groups refused (full or closed). */
  refused: number;
  /** Groups read (given a cookie). */
  read: number;
  /** Responses written and accepted. */
  responses: number;
  /** Written entries rejected (bad code or unknown cookie). */
  rejected: number;
  /** Groups answered automatically (detach, replace, destroy, close). */
  autoResponses: number;
  /** Groups answered elsewhere and withdrawn (timeout, device removal, a direct respond). */
  withdrawn: number;
}

/** A fault object's queue (see the module comment). */
export class FaultQueue implements FaultSink {
  /** Counters. */
  readonly stats: FaultQueueStats = { delivered: 0, refused: 0, read: 0, responses: 0, rejected: 0, autoResponses: 0, withdrawn: 0 };
  readonly #capacity: number;
  /** Deliver list: `#deliver[#head..]`. */
  #deliver: IopfGroup[] = [];
  #head = 0;
  /** The groups of the deliver list (O(1) membership for withdraw). */
  readonly #queued = new Set<IopfGroup>();
  readonly #response = new Map<number, IopfGroup>();
  readonly #cookies = new CookieAllocator();
  #closed = false;
  #onReadable: (() => void) | undefined;

  constructor(options: FaultQueueOptions = {}) {
    const c = options.capacity ?? Infinity;
    if (c !== Infinity && (!Number.isSafeInteger(c) || c <= 0)) throw new RangeError(`FaultQueue: capacity ${String(c)} is not a positive integer`);
    this.#capacity = c;
  }

  /** Groups waiting to be read. */
  get pendingRead(): number {
    return this.#deliver.length - this.#head;
  }

  /** Groups read and waiting for their response. */
  get awaitingResponse(): number {
    return this.#response.size;
  }

  /** Whether a read would return something (poll EPOLLIN). */
  get readable(): boolean {
    return this.#deliver.length > this.#head;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Called (synchronously) each time a group is delivered: wake a reader. */
  onReadable(listener: (() => void) | undefined): void {
    this.#onReadable = listener;
  }

  /** {@inheritDoc FaultSink.deliver} */
  deliver(group: IopfGroup): boolean {
    if (this.#closed || this.pendingRead + this.#response.size >= this.#capacity) {
      this.stats.refused++;
      return false;
    }
    this.#deliver.push(group);
    this.#queued.add(group);
    this.stats.delivered++;
    const l = this.#onReadable;
    if (l !== undefined) {
      try {
        l();
      } catch {
        // A broken listener must not refuse the group.
      }
    }
    return true;
  }

  /** {@inheritDoc FaultSink.withdraw} */
  withdraw(group: IopfGroup): void {
    if (this.#remove(group)) this.stats.withdrawn++;
  }

  /**
   * `read(2)` of the fault fd: up to `count` bytes of whole groups (see the module comment).
   * @throws IommuError ESPIPE (count not a multiple of 40), EINVAL (count not a size), EBUSY
   *   (no cookie left for the first group)
   */
  read(count: number): Uint8Array {
    const n = checkCount(count, 'FAULT read');
    if (n % IOMMU_HWPT_PGFAULT_BYTES !== 0) throw new IommuError('ESPIPE', `FAULT read: count ${n} is not a multiple of ${IOMMU_HWPT_PGFAULT_BYTES}`);
    // Size the buffer to what will be read.
    let need = 0;
    for (let i = this.#head; i < this.#deliver.length; i++) {
      const b = this.#deliver[i]!.faults.length * IOMMU_HWPT_PGFAULT_BYTES;
      if (need + b > n) break;
      need += b;
    }
    const buf = new Uint8Array(need);
    const got = this.readInto(buf);
    return got === need ? buf : buf.subarray(0, got);
  }

  /**
   * Like {@link FaultQueue.read} into `buf` (its length is the count; a multiple of 40), without
   * allocating. Returns the bytes written.
   */
  readInto(buf: Uint8Array): number {
    const n = buf.length;
    if (n % IOMMU_HWPT_PGFAULT_BYTES !== 0) throw new IommuError('ESPIPE', `FAULT read: count ${n} is not a multiple of ${IOMMU_HWPT_PGFAULT_BYTES}`);
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let done = 0;
    while (this.#head < this.#deliver.length) {
      const g = this.#deliver[this.#head]!;
      const bytes = g.faults.length * IOMMU_HWPT_PGFAULT_BYTES;
      if (bytes > n - done) break;
      const cookie = this.#cookies.alloc();
      if (cookie === undefined) {
        // No free cookie (all 2^32 − 1 in use): the group stays at the head.
        if (done === 0) throw new IommuError('EBUSY', 'FAULT read: no free cookie');
        break;
      }
      this.#head++;
      this.#queued.delete(g);
      g.cookie = cookie;
      this.#response.set(cookie, g);
      this.stats.read++;
      for (const f of g.faults) {
        encodePgfault(dv, done, f, g.device.devId, cookie);
        done += IOMMU_HWPT_PGFAULT_BYTES;
      }
    }
    this.#compact();
    return done;
  }

  /**
   * `write(2)` of the fault fd: `{u32 cookie; u32 code}` responses (see the module comment).
   * @returns bytes consumed
   * @throws IommuError ESPIPE (length not a multiple of 8), EINVAL (first entry invalid)
   */
  write(bytes: Uint8Array): number {
    const count = bytes.length;
    if (count % IOMMU_HWPT_PAGE_RESPONSE_BYTES !== 0) {
      throw new IommuError('ESPIPE', `FAULT write: count ${count} is not a multiple of ${IOMMU_HWPT_PAGE_RESPONSE_BYTES}`);
    }
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let done = 0;
    while (done < count) {
      const cookie = dv.getUint32(done, true);
      const code = dv.getUint32(done + 4, true);
      const err = this.respond(cookie, code);
      if (err !== undefined) {
        this.stats.rejected++;
        if (done === 0) throw new IommuError('EINVAL', `FAULT write: ${err}`);
        break;
      }
      done += IOMMU_HWPT_PAGE_RESPONSE_BYTES;
    }
    return done;
  }

  /**
   * Answers the group read with `cookie` (one entry of a write). Returns undefined when accepted,
   * else why it was rejected (the write's EINVAL).
   */
  respond(cookie: number, code: number): string | undefined {
    if (!isIommufdResponseCode(code)) return `code ${code} is not IOMMUFD_PAGE_RESP_SUCCESS / _INVALID`;
    const g = this.#response.get(cookie);
    if (g === undefined) return `cookie ${cookie} is not awaiting a response`;
    this.#response.delete(cookie);
    this.#cookies.free(cookie);
    this.stats.responses++;
    g.respond(code as PageResponseCodeValue);
    return undefined;
  }

  /**
   * `iommufd_auto_response_faults`: every group (queued or read) for which `match` is true is
   * answered INVALID and forgotten. Returns how many.
   */
  autoRespond(match: (group: IopfGroup) => boolean): number {
    const groups: IopfGroup[] = [];
    const keep: IopfGroup[] = [];
    for (let i = this.#head; i < this.#deliver.length; i++) {
      const g = this.#deliver[i]!;
      if (match(g)) {
        groups.push(g);
        this.#queued.delete(g);
      } else keep.push(g);
    }
    this.#deliver = keep;
    this.#head = 0;
    for (const [cookie, g] of this.#response) {
      if (!match(g)) continue;
      this.#response.delete(cookie);
      this.#cookies.free(cookie);
      groups.push(g);
    }
    for (const g of groups) g.respond(PageResponseCode.INVALID);
    this.stats.autoResponses += groups.length;
    return groups.length;
  }

  /**
   * `iommufd_fault_destroy`: every group queued or read is answered INVALID; later deliveries are
   * refused. Returns how many were answered. Closing twice does nothing.
   */
  close(): number {
    if (this.#closed) return 0;
    // Refuse first: a group delivered while the answers go out (a drain the driver runs from
    // pageResponse) must be refused, not queued behind the close and left unanswered.
    this.#closed = true;
    return this.autoRespond(() => true);
  }

  #remove(group: IopfGroup): boolean {
    if (group.cookie !== 0 && this.#response.get(group.cookie) === group) {
      this.#response.delete(group.cookie);
      this.#cookies.free(group.cookie);
      return true;
    }
    if (!this.#queued.delete(group)) return false;
    this.#deliver.splice(this.#deliver.indexOf(group, this.#head), 1);
    return true;
  }

  #compact(): void {
    if (this.#head === this.#deliver.length) {
      this.#deliver.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#deliver.length) {
      this.#deliver = this.#deliver.slice(this.#head);
      this.#head = 0;
    }
  }
}

function checkCount(count: number, what: string): number {
  if (!Number.isSafeInteger(count) || count < 0) throw new IommuError('EINVAL', `${what}: count ${String(count)}`);
  return count;
}
