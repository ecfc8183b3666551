/**
 * The FAULT object (drivers/iommu/iommufd/eventq.c: iommufd_fault_alloc, iommufd_fault_fops_read /
 * _write, iommufd_fault_iopf_handler, iommufd_auto_response_faults, iommufd_fault_destroy; the
 * iommu core's io-pgfault.c: iommu_report_device_fault) and IOMMU_FAULT_QUEUE_ALLOC.
 *
 * Kernel behaviour kept:
 * - Page requests come from the backend driver (`IommuDriver.onFault`). A request is routed to the
 *   attachment of its device: the PASID's (when the request carries one; if that PASID is not
 *   attached, the RID's nested HWPT — drivers with a user-managed PASID table), else the RID's. If
 *   that HWPT has no FAULT the request is answered INVALID at once. Requests of a group (same
 *   `grpid`) wait until its LAST_PAGE request arrives; the whole group is then queued on the FAULT.
 * - read: position 0 and `count` a multiple of 40 (`ESPIPE`); whole groups of 40-byte
 *   `iommu_hwpt_pgfault` records while they fit (a group that does not fit stays queued); each
 *   delivered group gets a cookie (lowest free, from 1) and waits for its response.
 * - write: position 0 and a multiple of 8 (`ESPIPE`); each `{u32 cookie; u32 code}`: code not
 *   SUCCESS / INVALID → `EINVAL`, unknown cookie → `EINVAL`; the group is answered (the driver's
 *   `pageResponse`) and freed. Returns the bytes consumed before the first error (the error when
 *   none was).
 * - Detaching / replacing a device (RID or PASID) away from a HWPT with a FAULT answers INVALID
 *   every group of that attachment, queued or read; destroying the FAULT answers all of them.
 *
 * Responses reach the driver asynchronously (in order); {@link IommufdFault.flush} waits for them.
 */
import { PageResponseCode, type IommuDriver, type IommuFault, type PageRequest, type PageResponseCodeValue } from '@iommulab/driver-api';
import type { FdTable } from './abi/fd-table.js';
import type { IommufdCtx } from './context.js';
import type { IommufdDevice } from './device.js';
import { fail } from './errors.js';
import { countArg, EventqFile } from './eventq.js';
import type { HwPagetable } from './hw-pagetable.js';
import { IommufdObject } from './object-table.js';
import {
  IOMMU_HWPT_PAGE_RESPONSE_BYTES,
  IOMMU_HWPT_PGFAULT_BYTES,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
} from './uapi/constants.js';
import { hex, u32 } from './uapi/u64.js';

/** `IOMMU_NO_PASID` (hw-pagetable.ts; repeated here to keep this module free of load-time imports). */
const NO_PASID = 0;

/** One page request of a group (`struct iopf_fault`). */
interface IopfFault {
  /** IOMMU_PGFAULT_FLAGS_* bits. */
  readonly flags: number;
  readonly pasid: number;
  readonly grpid: number;
  readonly perm: number;
  readonly addr: number;
}

/** A page request group (`struct iopf_group`). */
interface IopfGroup {
  readonly idev: IommufdDevice;
  /** The attachment it was routed through (`attach_handle`): the PASID slot, 0 for the RID. */
  readonly attachPasid: number;
  readonly faults: readonly IopfFault[];
  cookie: number;
}

/** A fault queue (`struct iommufd_fault`). */
export class IommufdFault extends IommufdObject {
  readonly type = 'fault' as const;
  readonly ctx: IommufdCtx;
  /** @internal groups waiting to be read (`common.deliver`). */
  readonly deliver: IopfGroup[] = [];
  /** @internal groups read and waiting for their response, by cookie (`response`). */
  readonly response = new Map<number, IopfGroup>();
  /** The file (set by {@link faultQueueAlloc}). */
  file: FaultFile | null = null;
  /** Drivers whose faults this object made the context listen to. */
  private readonly drivers = new Set<IommuDriver>();
  private pending: Promise<void> = Promise.resolve();

  constructor(ctx: IommufdCtx) {
    super();
    this.ctx = ctx;
  }

  /** @internal the HWPTs using this FAULT belong to `driver`: route its faults. */
  listen(driver: IommuDriver): void {
    if (this.drivers.has(driver)) return;
    this.drivers.add(driver);
    faultRouter(this.ctx).acquire(driver);
  }

  /** Resolves once every response sent so far reached the driver. */
  flush(): Promise<void> {
    return this.pending;
  }

  /** @internal `iopf_group_response` (queued, in order). */
  respond(group: IopfGroup, code: PageResponseCodeValue): Promise<void> {
    const p = this.pending.then(() => groupResponse(group, code));
    this.pending = p;
    return p;
  }

  /** @internal `iommufd_fault_iopf_handler`. */
  enqueue(group: IopfGroup): void {
    this.deliver.push(group);
  }

  /** @internal the lowest free cookie from 1 (`xa_alloc` with XA_FLAGS_ALLOC1). */
  allocCookie(): number {
    let c = 1;
    while (this.response.has(c)) c++;
    return c;
  }

  /** `iommufd_fault_destroy`: every group queued or read is answered INVALID. */
  async destroy(): Promise<void> {
    const groups = [...this.deliver, ...this.response.values()];
    this.deliver.length = 0;
    this.response.clear();
    for (const g of groups) void this.respond(g, IOMMUFD_PAGE_RESP_INVALID);
    await this.pending;
    const router = faultRouter(this.ctx);
    for (const d of this.drivers) router.release(d);
    this.drivers.clear();
  }
}

/** Sends the response of a group to the device (a driver gone by then has nothing to answer). */
async function groupResponse(group: IopfGroup, code: PageResponseCodeValue): Promise<void> {
  const last = group.faults[group.faults.length - 1]!;
  const idev = group.idev;
  try {
    await idev.driver.pageResponse(idev.dev, {
      rid: idev.dev.rid,
      pasid: last.flags & IOMMU_PGFAULT_FLAGS_PASID_VALID ? last.pasid : -1,
      grpid: last.grpid,
      code,
    });
  } catch {
    // The device was released or the driver shut down: nobody waits for the answer.
  }
}

/** Encodes one `struct iommu_hwpt_pgfault`. */
function encodeFault(out: DataView, at: number, f: IopfFault, devId: number, cookie: number): void {
  out.setUint32(at + 0, f.flags, true);
  out.setUint32(at + 4, devId, true);
  out.setUint32(at + 8, f.pasid >>> 0, true);
  out.setUint32(at + 12, f.grpid >>> 0, true);
  out.setUint32(at + 16, f.perm >>> 0, true);
  out.setUint32(at + 20, 0, true);
  out.setBigUint64(at + 24, BigInt(f.addr), true);
  out.setUint32(at + 32, 0, true); // length: always 0
  out.setUint32(at + 36, cookie, true);
}

/** The file of a FAULT (`[iommufd-pgfault]`). */
export class FaultFile extends EventqFile {
  constructor(
    readonly fault: IommufdFault,
    ctx: IommufdCtx,
  ) {
    super(fault, ctx);
  }

  /** `iommufd_fault_fops_read`: whole groups of 40-byte records. */
  read(count: number, pos = 0): Uint8Array {
    const what = 'FAULT read';
    this.checkIo(what, pos);
    const n = countArg(count, what);
    if (n % IOMMU_HWPT_PGFAULT_BYTES !== 0) fail('ESPIPE', `${what}: count ${n} is not a multiple of ${IOMMU_HWPT_PGFAULT_BYTES}`);
    const fault = this.fault;
    const take: IopfGroup[] = [];
    let done = 0;
    while (fault.deliver.length > 0) {
      const group = fault.deliver[0]!;
      if (done >= n || group.faults.length * IOMMU_HWPT_PGFAULT_BYTES > n - done) break;
      fault.deliver.shift();
      group.cookie = fault.allocCookie();
      fault.response.set(group.cookie, group);
      take.push(group);
      done += group.faults.length * IOMMU_HWPT_PGFAULT_BYTES;
    }
    const buf = new Uint8Array(done);
    const dv = new DataView(buf.buffer);
    let at = 0;
    for (const g of take) {
      for (const f of g.faults) {
        encodeFault(dv, at, f, g.idev.id, g.cookie);
        at += IOMMU_HWPT_PGFAULT_BYTES;
      }
    }
    return buf;
  }

  /** `iommufd_fault_fops_write`: `{u32 cookie; u32 code}` responses. */
  write(bytes: Uint8Array, pos = 0): number {
    const what = 'FAULT write';
    this.checkIo(what, pos);
    const count = bytes.length;
    if (count % IOMMU_HWPT_PAGE_RESPONSE_BYTES !== 0) fail('ESPIPE', `${what}: count ${count} is not a multiple of ${IOMMU_HWPT_PAGE_RESPONSE_BYTES}`);
    const fault = this.fault;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let done = 0;
    while (count > done) {
      const cookie = dv.getUint32(done, true);
      const code = dv.getUint32(done + 4, true);
      let err: string | null = null;
      if (code !== IOMMUFD_PAGE_RESP_SUCCESS && code !== IOMMUFD_PAGE_RESP_INVALID) err = `code ${code} is not SUCCESS / INVALID`;
      else if (!fault.response.has(cookie)) err = `cookie ${cookie} is not awaiting a response`;
      if (err !== null) {
        if (done === 0) fail('EINVAL', `${what}: ${err}`);
        break;
      }
      const group = fault.response.get(cookie)!;
      fault.response.delete(cookie);
      void fault.respond(group, code as PageResponseCodeValue);
      done += IOMMU_HWPT_PAGE_RESPONSE_BYTES;
    }
    return done;
  }

  poll(): { readable: boolean; writable: boolean } {
    return { readable: this.fault.deliver.length > 0, writable: true };
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

/**
 * Called once a HWPT took its FAULT (IOMMU_HWPT_FAULT_ID_VALID): the context listens to the page
 * requests of the HWPT's driver from now on.
 */
export function faultHwptAttached(hwpt: HwPagetable): void {
  const f = hwpt.fault;
  if (f instanceof IommufdFault) f.listen(hwpt.driver);
}

/**
 * `iommufd_auto_response_faults`: the RID / PASID `pasid` of `idev` left `hwpt` (detach or
 * replace); its groups still queued or awaiting a response are answered INVALID.
 */
export async function faultAutoResponse(hwpt: HwPagetable, idev: IommufdDevice, pasid: number): Promise<void> {
  const fault = hwpt.fault;
  if (!(fault instanceof IommufdFault)) return;
  const mine = (g: IopfGroup): boolean => g.idev === idev && g.attachPasid === pasid;
  const groups: IopfGroup[] = [];
  for (let i = 0; i < fault.deliver.length; ) {
    if (mine(fault.deliver[i]!)) groups.push(...fault.deliver.splice(i, 1));
    else i++;
  }
  for (const [cookie, g] of [...fault.response]) {
    if (!mine(g)) continue;
    fault.response.delete(cookie);
    groups.push(g);
  }
  for (const g of groups) void fault.respond(g, IOMMUFD_PAGE_RESP_INVALID);
  await fault.flush();
}

// ---------------------------------------------------------------------------- routing (iommu core)

/** Per context: which drivers it listens to, and the partial groups per device. */
class FaultRouter {
  private readonly subs = new Map<IommuDriver, { count: number; unsubscribe: () => void }>();
  private readonly partial = new Map<IommufdDevice['dev'], IopfFault[]>();
  private errors: Promise<void> = Promise.resolve();

  constructor(private readonly ctx: IommufdCtx) {}

  /** Starts (or keeps) listening to `driver`'s faults. */
  acquire(driver: IommuDriver): void {
    const s = this.subs.get(driver);
    if (s !== undefined) {
      s.count++;
      return;
    }
    let unsubscribe: () => void = () => {};
    try {
      unsubscribe = driver.onFault((f) => this.onFault(driver, f));
    } catch {
      // A driver already shut down reports nothing.
    }
    this.subs.set(driver, { count: 1, unsubscribe });
  }

  /** Stops listening when nobody needs `driver`'s faults any more. */
  release(driver: IommuDriver): void {
    const s = this.subs.get(driver);
    if (s === undefined) return;
    if (--s.count > 0) return;
    this.subs.delete(driver);
    s.unsubscribe();
  }

  /** Error responses sent so far have reached the driver. */
  flush(): Promise<void> {
    return this.errors;
  }

  private deviceOf(driver: IommuDriver, rid: number): IommufdDevice | undefined {
    for (const o of this.ctx.objects.objects()) {
      if (o.type !== 'device') continue;
      const d = o as IommufdDevice;
      if (d.driver === driver && d.dev.rid === rid) return d;
    }
    return undefined;
  }

  /** `find_fault_handler`: the attachment a request goes to. */
  private handler(idev: IommufdDevice, f: IopfFault): { hwpt: HwPagetable; pasid: number } | null {
    if (f.flags & IOMMU_PGFAULT_FLAGS_PASID_VALID) {
      const h = idev.attached.get(f.pasid);
      if (h !== undefined) return { hwpt: h, pasid: f.pasid };
      // A user-managed PASID table: faults of any PASID go through the RID's nested HWPT.
      const rid = idev.attached.get(NO_PASID);
      return rid !== undefined && rid.type === 'hwpt_nested' ? { hwpt: rid, pasid: NO_PASID } : null;
    }
    const h = idev.attached.get(NO_PASID);
    return h === undefined ? null : { hwpt: h, pasid: NO_PASID };
  }

  /** `iommu_report_device_fault`. */
  private onFault(driver: IommuDriver, fault: IommuFault): void {
    if (fault.kind !== 'page-request') return;
    const req = fault as PageRequest;
    const idev = this.deviceOf(driver, req.rid);
    if (idev === undefined) return; // another context's device
    const f: IopfFault = {
      flags: (req.pasid >= 0 ? IOMMU_PGFAULT_FLAGS_PASID_VALID : 0) | (req.last ? IOMMU_PGFAULT_FLAGS_LAST_PAGE : 0),
      pasid: req.pasid >= 0 ? req.pasid : 0,
      grpid: req.grpid,
      perm: req.perm,
      addr: req.addr,
    };
    const h = this.handler(idev, f);
    const target = h?.hwpt.fault;
    if (h === null || !(target instanceof IommufdFault) || !target.visible) {
      // iopf_error_response
      this.errors = this.errors.then(() =>
        driver
          .pageResponse(idev.dev, { rid: req.rid, pasid: req.pasid, grpid: req.grpid, code: PageResponseCode.INVALID })
          .catch(() => undefined),
      );
      return;
    }
    if (!req.last) {
      // report_partial_fault
      let list = this.partial.get(idev.dev);
      if (list === undefined) {
        list = [];
        this.partial.set(idev.dev, list);
      }
      list.push(f);
      return;
    }
    // iopf_group_alloc: the partial requests of the same group, then this last one.
    const list = this.partial.get(idev.dev) ?? [];
    const faults = list.filter((p) => p.grpid === f.grpid);
    this.partial.set(
      idev.dev,
      list.filter((p) => p.grpid !== f.grpid),
    );
    faults.push(f);
    target.enqueue({ idev, attachPasid: h.pasid, faults, cookie: 0 });
  }
}

const routers = new WeakMap<IommufdCtx, FaultRouter>();

/** The context's fault router. @internal */
export function faultRouter(ctx: IommufdCtx): FaultRouter {
  let r = routers.get(ctx);
  if (r === undefined) {
    r = new FaultRouter(ctx);
    routers.set(ctx, r);
  }
  return r;
}

/** The FAULT object `id` (`iommufd_get_fault`): ENOENT otherwise. */
export function getFault(ctx: IommufdCtx, id: number): IommufdFault {
  return ctx.objects.get<IommufdFault>(id, 'fault', 'FAULT');
}

export type { FaultRouter };
