/**
 * Event queues (drivers/iommu/iommufd/eventq.c, driver.c: iommufd_viommu_report_event,
 * iommufd_private.h: iommufd_vevent_handler): the file side shared by FAULT and VEVENTQ objects,
 * and the VEVENTQ object with IOMMU_VEVENTQ_ALLOC.
 *
 * The files are read and written like the kernel's anon-inode files: `read(count)` returns the
 * bytes read (a `Uint8Array` of the length read(2) would return), `write(bytes)` the count
 * written; errors throw an {@link IommufdError} with the errno read(2) / write(2) would set. The
 * file position is always 0 (non-seekable); a `pos` other than 0 models pread/pwrite: `ESPIPE`.
 * Each open file holds a `users` reference on its object (DESTROY answers `EBUSY` until it is
 * closed); closing the iommufd closes the files still open (the process let go of them).
 *
 * VEVENTQ (per vIOMMU, at most one per type):
 * - a read delivers whole `{struct iommufd_vevent_header {u32 flags; u32 sequence}; data}` records
 *   while they fit (a LOST_EVENTS header needs only its 8 bytes); 0 bytes when the first does not.
 * - every *reported* event takes the next sequence number (0..INT_MAX, then 0), delivered or not.
 * - with `depth` events pending a report is dropped: one LOST_EVENTS header (no data, the next
 *   sequence number) sits at the tail; a later report while it is still last replaces it (the loss
 *   then shows as a sequence gap). Reading an event frees a slot; the header does not take one.
 */
import { IommuError } from '@iommulab/driver-api';
import type { IommufdCtx } from './context.js';
import { fail } from './errors.js';
import { IommufdObject } from './object-table.js';
import { VeventQueue, type Vevent } from '@iommulab/fault-queues';
import { IOMMU_VEVENTQ_TYPE_DEFAULT } from './uapi/constants.js';
import { hex, u32 } from './uapi/u64.js';
import type { FdTable } from './abi/fd-table.js';
import type { IommufdViommu } from './viommu.js';

/** `sizeof(struct iommufd_vevent_header)`. */
export const IOMMUFD_VEVENT_HEADER_BYTES = 8;

// ---------------------------------------------------------------------------- common file part

/** Files of a context still open (closed when the context closes). */
const openFiles = new WeakMap<IommufdCtx, Set<EventqFile>>();
const closeHooked = new WeakSet<IommufdCtx>();

/** `iommufd_eventq_init` / `iommufd_eventq_fops_release`: the file side of an event queue. */
export abstract class EventqFile {
  private isClosed = false;

  protected constructor(
    /** The object behind the file (holds one `users` reference while open). */
    readonly object: IommufdObject,
    private readonly ctx: IommufdCtx,
  ) {
    object.users++;
    let set = openFiles.get(ctx);
    if (set === undefined) {
      set = new Set();
      openFiles.set(ctx, set);
    }
    set.add(this);
    if (!closeHooked.has(ctx)) {
      closeHooked.add(ctx);
      ctx.objects.beforeClose.add(() => {
        closeHooked.delete(ctx);
        for (const f of [...(openFiles.get(ctx) ?? [])]) f.close();
      });
    }
  }

  /** True once closed. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** `release`: drops the file's reference on the object. Closing twice does nothing. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    openFiles.get(this.ctx)?.delete(this);
    this.object.users--;
  }

  /** EBADF once closed; ESPIPE for a position other than 0 (`nonseekable_open`). */
  protected checkIo(what: string, pos: number): void {
    if (this.isClosed) fail('EBADF', `${what}: the file is closed`);
    if (pos !== 0) fail('ESPIPE', `${what}: position ${pos} on a non-seekable file`);
  }

  /** `read(2)`. */
  abstract read(count: number, pos?: number): Uint8Array;
  /** `write(2)`. */
  abstract write(bytes: Uint8Array, pos?: number): number;
  /** `poll(2)`: EPOLLIN when something is queued, EPOLLOUT for a FAULT file. */
  abstract poll(): { readable: boolean; writable: boolean };
}

/** A non-negative integer count of bytes (`size_t`). */
export function countArg(count: number, what: string): number {
  if (!Number.isSafeInteger(count) || count < 0) fail('EINVAL', `${what}: count ${String(count)}`);
  return count;
}

// ---------------------------------------------------------------------------- VEVENTQ

/** A vIOMMU event queue (`struct iommufd_veventq`); the stream is a fault-queues `VeventQueue`. */
export class IommufdVeventq extends IommufdObject {
  readonly type = 'veventq' as const;
  /** The vIOMMU (holds a users reference on it). */
  readonly viommu: IommufdViommu;
  /** `IOMMU_VEVENTQ_TYPE_*` of the queue. */
  readonly vtype: number;
  /** `veventq_depth`. */
  readonly depth: number;
  /** The bounded stream: sequence numbers, LOST_EVENTS. */
  readonly stream: VeventQueue;
  /** The file (set by {@link veventqAlloc}). */
  file: VeventqFile | null = null;
  private linked = false;

  constructor(viommu: IommufdViommu, vtype: number, depth: number) {
    super();
    this.viommu = viommu;
    this.vtype = vtype;
    this.depth = depth;
    this.stream = new VeventQueue(depth);
  }

  /** @internal the deliver list. */
  get list(): readonly Vevent[] {
    return this.stream.list;
  }

  /** Events pending (the LOST_EVENTS header not counted). */
  get numEvents(): number {
    return this.stream.numEvents;
  }

  /** The sequence number of the next report. */
  get sequence(): number {
    return this.stream.sequence;
  }

  set sequence(v: number) {
    this.stream.sequence = v;
  }

  /** @internal joins the vIOMMU's list and takes a users reference on it. */
  link(): void {
    this.viommu.veventqs.push(this);
    this.viommu.users++;
    this.linked = true;
  }

  /** `iommufd_veventq_destroy` / `_abort`: frees the queued events, leaves the vIOMMU. */
  destroy(): void {
    this.stream.clear();
    if (!this.linked) return;
    this.linked = false;
    const i = this.viommu.veventqs.indexOf(this);
    if (i >= 0) this.viommu.veventqs.splice(i, 1);
    this.viommu.users--;
  }

  /** `iommufd_viommu_report_event` for this queue: queues `data` or records a loss. */
  report(data: Uint8Array): void {
    if (data.length === 0) throw new IommuError('EINVAL', 'a vEVENT needs data');
    this.stream.report(data);
  }

  /** `iommufd_veventq_fops_read`. */
  readEvents(count: number): Uint8Array {
    return this.stream.read(count);
  }
}

/** The file of a VEVENTQ (`[iommufd-viommu-event]`): read-only. */
export class VeventqFile extends EventqFile {
  constructor(
    readonly veventq: IommufdVeventq,
    ctx: IommufdCtx,
  ) {
    super(veventq, ctx);
  }

  /** Reads whole events (see the module comment); 0 bytes when none fits. */
  read(count: number, pos = 0): Uint8Array {
    this.checkIo('vEVENTQ read', pos);
    return this.veventq.readEvents(countArg(count, 'vEVENTQ read'));
  }

  /** The file has no write op: `EINVAL`. */
  write(_bytes: Uint8Array, pos = 0): number {
    this.checkIo('vEVENTQ write', pos);
    return fail('EINVAL', 'vEVENTQ write: the file cannot be written');
  }

  poll(): { readable: boolean; writable: boolean } {
    // eventq.c iommufd_eventq_fops_poll (shared by FAULT and VEVENTQ): EPOLLOUT is always set.
    return { readable: this.veventq.stream.readable, writable: true };
  }
}

/** Arguments of IOMMU_VEVENTQ_ALLOC (`struct iommu_veventq_alloc`). */
export interface VeventqAllocArgs {
  flags?: number;
  viommuId: number;
  type: number;
  veventqDepth: number;
}

/**
 * IOMMU_VEVENTQ_ALLOC (`iommufd_veventq_alloc`): EOPNOTSUPP for flags or the DEFAULT type, EINVAL
 * for depth 0, ENOENT unless a VIOMMU, EEXIST when the vIOMMU has a queue of that type. The file
 * is installed in `files`.
 */
export async function veventqAlloc(
  ctx: IommufdCtx,
  files: FdTable,
  a: VeventqAllocArgs,
): Promise<{ outVeventqId: number; outVeventqFd: number; file: VeventqFile }> {
  const what = 'IOMMU_VEVENTQ_ALLOC';
  const flags = u32(a.flags, 'flags');
  const type = u32(a.type, 'type');
  const depth = u32(a.veventqDepth, 'veventq_depth');
  if (flags !== 0 || type === IOMMU_VEVENTQ_TYPE_DEFAULT) fail('EOPNOTSUPP', `${what}: flags ${hex(flags)} / type ${hex(type)}`);
  if (depth === 0) fail('EINVAL', `${what}: veventq_depth is 0`);
  const viommu = ctx.objects.get<IommufdViommu>(u32(a.viommuId, 'viommu_id'), 'viommu', 'VIOMMU');
  if (viommu.veventqs.some((q) => q.vtype === type)) fail('EEXIST', `${what}: vIOMMU ${viommu.id} has a queue of type ${hex(type)}`);
  const q = ctx.objects.alloc(new IommufdVeventq(viommu, type, depth));
  q.link();
  const file = new VeventqFile(q, ctx);
  q.file = file;
  ctx.objects.finalize(q);
  const fd = files.install(file);
  return { outVeventqId: q.id, outVeventqFd: fd, file };
}
