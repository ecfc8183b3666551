/**
 * The FAULT object (drivers/iommu/iommufd/eventq.c: iommufd_fault_alloc, iommufd_fault_fops_read /
 * _write, iommufd_fault_iopf_handler, iommufd_fault_iopf_enable / _disable,
 * iommufd_auto_response_faults, iommufd_fault_destroy) and IOMMU_FAULT_QUEUE_ALLOC, over
 * `@iommulab/fault-queues`: the iommu core's fault layer (`IopfQueue`, one per driver: grouping,
 * routing, one response per group) and the fault object's queue (`FaultQueue`: records, cookies,
 * responses).
 *
 * - IOPF is enabled for a device (`IopfQueue.addDevice`) while one of its RID / PASID attachments
 *   is a HWPT with a FAULT (or a nested HWPT whose parent has one), and disabled when the last
 *   one goes. Faults are per handle: a stage-2 fault of a nested attachment goes to the parent's
 *   FAULT (level 2), any other to the attachment's own (level 1). Its page requests are routed to
 *   the attachment of the request's PASID (if that PASID is not attached, the RID's nested HWPT:
 *   drivers with a user-managed PASID table), else of the RID; a HWPT without FAULT gets its
 *   requests answered INVALID; a device without IOPF has them answered by the driver.
 * - read / write: the fault fd (`FaultQueue.read` / `.write`): ESPIPE for a position other than 0
 *   or a count not a multiple of 40 (read) / 8 (write); EINVAL for a bad code or an unknown cookie.
 * - Detaching / replacing a device (RID or PASID) away from a HWPT with a FAULT answers INVALID
 *   every group of that attachment, queued or read; destroying the FAULT answers all of them.
 *
 * Responses reach the driver asynchronously (in order); {@link IommufdFault.flush} waits for them.
 */
import { IommuError, type IommuDriver, type PageRequest } from '@iommulab/driver-api';
import { FaultQueue, IopfQueue, type FaultHandler, type IopfGroup } from '@iommulab/fault-queues';
import type { FdTable } from './abi/fd-table.js';
import type { IommufdCtx } from './context.js';
import type { IommufdDevice } from './device.js';
import { IommufdError, fail } from './errors.js';
import { countArg, EventqFile } from './eventq.js';
import type { HwPagetable } from './hw-pagetable.js';
import { IommufdObject } from './object-table.js';
import { hex, u32 } from './uapi/u64.js';

/** `IOMMU_NO_PASID` (hw-pagetable.ts; repeated here to keep this module free of load-time imports). */
const NO_PASID = 0;

/** The attach handle of a group: the device and the PASID slot (0 for the RID) it was routed through. */
interface AttachHandle {
  readonly idev: IommufdDevice;
  readonly pasid: number;
  /** 2 when routed to a nested attachment's parent (a stage-2 fault), else 1. */
  readonly level: 1 | 2;
}

/** What this module needs of a nested HWPT (hw-pagetable.ts is not imported at load time). */
interface HwptNestedLike {
  readonly parent: HwPagetable;
}

/** The FAULT of a nested HWPT's parent (level-2 faults); null for any other HWPT or no FAULT. */
function parentFaultOf(hwpt: HwPagetable): IommufdFault | null {
  return hwpt.type === 'hwpt_nested' ? faultOf((hwpt as unknown as HwptNestedLike).parent) : null;
}

/** A fault queue (`struct iommufd_fault`). */
export class IommufdFault extends IommufdObject {
  readonly type = 'fault' as const;
  readonly ctx: IommufdCtx;
  /** The queue: deliver list, response table by cookie. */
  readonly queue = new FaultQueue();
  /** The file (set by {@link faultQueueAlloc}). */
  file: FaultFile | null = null;

  constructor(ctx: IommufdCtx) {
    super();
    this.ctx = ctx;
  }

  /** Resolves once every response sent so far reached the driver. */
  async flush(): Promise<void> {
    await faultFlush(this.ctx);
  }

  /** `iommufd_fault_destroy`: every group queued or read is answered INVALID. */
  async destroy(): Promise<void> {
    this.queue.close();
    await this.flush();
  }
}

/** Rethrows a fault-queues IommuError as the iommufd error with the same errno. */
function asIommufd<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof IommuError && !(e instanceof IommufdError)) throw new IommufdError(e.errno, e.message);
    throw e;
  }
}

/** The file of a FAULT (`[iommufd-pgfault]`). */
export class FaultFile extends EventqFile {
  constructor(
    readonly fault: IommufdFault,
    ctx: IommufdCtx,
  ) {
    super(fault, ctx);
  }

  /** `iommufd_fault_fops_read`: whole groups of 40-byte `iommu_hwpt_pgfault` records. */
  read(count: number, pos = 0): Uint8Array {
    this.checkIo('FAULT read', pos);
    const n = countArg(count, 'FAULT read');
    return asIommufd(() => this.fault.queue.read(n));
  }

  /** `iommufd_fault_fops_write`: `{u32 cookie; u32 code}` responses. */
  write(bytes: Uint8Array, pos = 0): number {
    this.checkIo('FAULT write', pos);
    return asIommufd(() => this.fault.queue.write(bytes));
  }

  poll(): { readable: boolean; writable: boolean } {
    return { readable: this.fault.queue.readable, writable: true };
  }
}

/**
 * IOMMU_FAULT_QUEUE_ALLOC (`iommufd_fault_alloc`): EOPNOTSUPP for flags. The file is installed in
 * `files` (`out_fault_fd`).
 */
export async function faultQueueAlloc(
  ctx: IommufdCtx,
  files: FdTable,
  a: { flags?: number },
): Promise<{ outFaultId: number; outFaultFd: number; file: FaultFile }> {
  const flags = u32(a.flags, 'flags');
  if (flags !== 0) fail('EOPNOTSUPP', `IOMMU_FAULT_QUEUE_ALLOC: flags ${hex(flags)}`);
  const fault = ctx.objects.alloc(new IommufdFault(ctx));
  const file = new FaultFile(fault, ctx);
  fault.file = file;
  ctx.objects.finalize(fault);
  const fd = files.install(file);
  return { outFaultId: fault.id, outFaultFd: fd, file };
}

// ---------------------------------------------------------------------------- hooks for HWPTs / devices

/** The IopfQueues this context added devices to (for flush). */
const ctxQueues = new WeakMap<IommufdCtx, Set<IopfQueue>>();

function queuesOf(ctx: IommufdCtx): Set<IopfQueue> {
  let s = ctxQueues.get(ctx);
  if (s === undefined) {
    s = new Set();
    ctxQueues.set(ctx, s);
  }
  return s;
}

/** The FAULT of `hwpt` when it has one that is alive. */
function faultOf(hwpt: HwPagetable | undefined): IommufdFault | null {
  const f = hwpt?.fault;
  return f instanceof IommufdFault && f.visible ? f : null;
}

/**
 * `find_fault_handler` for one device: the attachment a request of `pasid` (-1: none) goes to.
 * Faults are per handle: a stage-2 fault (`req.stage === 2`) of a nested attachment goes to the
 * parent HWPT's FAULT when it has one (level-2 faults to the parent's owner, level-1 to the
 * child's).
 */
function handlerOf(idev: IommufdDevice, pasid: number, req?: PageRequest): FaultHandler | null {
  let slot = NO_PASID;
  let hwpt: HwPagetable | undefined;
  if (pasid >= 0) {
    hwpt = idev.attached.get(pasid);
    slot = pasid;
    if (hwpt === undefined) {
      // A user-managed PASID table: faults of any PASID go through the RID's nested HWPT.
      const rid = idev.attached.get(NO_PASID);
      if (rid === undefined || rid.type !== 'hwpt_nested') return null;
      hwpt = rid;
      slot = NO_PASID;
    }
  } else hwpt = idev.attached.get(NO_PASID);
  if (hwpt === undefined) return null;
  if (req?.stage === 2) {
    const parentFault = parentFaultOf(hwpt);
    if (parentFault !== null) return { handle: { idev, pasid: slot, level: 2 } satisfies AttachHandle, sink: parentFault.queue };
  }
  const f = faultOf(hwpt);
  const handle: AttachHandle = { idev, pasid: slot, level: 1 };
  return { handle, sink: f === null ? null : f.queue };
}

/**
 * `iommufd_fault_iopf_enable`, the refusals: before attaching `idev` to `hwpt` with a FAULT (its
 * own, or its nest parent's), a PCIe VF with PRI is EINVAL (PRI is shared with the PF: a response
 * failure cannot be forwarded), and so is a device the IOMMU cannot take I/O page faults from
 * (`IOMMU_DEV_FEAT_IOPF`: no PRI, no stall).
 */
export function faultIopfCheck(hwpt: HwPagetable, idev: IommufdDevice, what: string): void {
  if (faultOf(hwpt) === null && parentFaultOf(hwpt) === null) return;
  const spec = idev.dev.spec;
  if (spec.vf === true && spec.pri === true) fail('EINVAL', `${what}: device ${idev.id} is a VF with PRI: I/O page faults cannot be enabled (PRI is shared with the PF)`);
  const drv = idev.driver as IommuDriver;
  let ok = true;
  try {
    ok = typeof drv.iopfCapable !== 'function' || drv.iopfCapable(idev.dev);
  } catch {
    ok = false;
  }
  if (!ok) fail('EINVAL', `${what}: device ${idev.id} cannot raise I/O page faults (no PRI, no stall), HWPT ${hwpt.id} has a FAULT`);
}

/** Which iommufd device added each device of a queue (several contexts may share a driver). */
const owners = new WeakMap<IopfQueue, Map<number, IommufdDevice>>();

/**
 * `iommufd_fault_iopf_enable` / `_disable`, called after every change of `idev`'s attachments:
 * IOPF is on while one of them is a HWPT with a FAULT.
 */
export function faultSyncDevice(idev: IommufdDevice): void {
  let wants: IommufdFault | null = null;
  for (const h of idev.attached.values()) wants ??= faultOf(h) ?? parentFaultOf(h);
  let q: IopfQueue;
  try {
    q = IopfQueue.of(idev.driver as IommuDriver);
  } catch {
    return;
  }
  let own = owners.get(q);
  if (own === undefined) {
    own = new Map();
    owners.set(q, own);
  }
  const rid = idev.dev.rid;
  const mine = own.get(rid) === idev;
  if (wants !== null && !mine) {
    if (q.device(rid) !== undefined) return; // another context owns the requester id
    q.addDevice(idev.dev, (pasid, req) => handlerOf(idev, pasid, req), idev.id);
    own.set(rid, idev);
    queuesOf(wants.ctx).add(q);
  } else if (wants === null && mine) {
    q.removeDevice(idev.dev);
    own.delete(rid);
  }
}

/**
 * `iommufd_auto_response_faults`: the RID / PASID `pasid` of `idev` left `hwpt` (detach or
 * replace); its groups still queued or awaiting a response are answered INVALID.
 */
export async function faultAutoResponse(hwpt: HwPagetable, idev: IommufdDevice, pasid: number): Promise<void> {
  const mine = (g: IopfGroup): boolean => {
    const h = g.handle as AttachHandle;
    return h.idev === idev && h.pasid === pasid;
  };
  const fault = hwpt.fault;
  if (fault instanceof IommufdFault) fault.queue.autoRespond((g) => mine(g) && (g.handle as AttachHandle).level === 1);
  // Stage-2 faults of a nested attachment went to the parent's FAULT.
  const parentFault = parentFaultOf(hwpt);
  if (parentFault !== null) parentFault.queue.autoRespond((g) => mine(g) && (g.handle as AttachHandle).level === 2);
  faultSyncDevice(idev);
  const q = IopfQueue.of(idev.driver as IommuDriver);
  await q.flush();
}

/** Waits until every page response this context's devices caused reached their drivers. */
export async function faultFlush(ctx: IommufdCtx): Promise<void> {
  for (const q of queuesOf(ctx)) await q.flush();
}

/** The FAULT object `id` (`iommufd_get_fault`): ENOENT otherwise. */
export function getFault(ctx: IommufdCtx, id: number): IommufdFault {
  return ctx.objects.get<IommufdFault>(id, 'fault', 'FAULT');
}
