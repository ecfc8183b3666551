/**
 * The VIOMMU object (drivers/iommu/iommufd/viommu.c: iommufd_viommu_alloc_ioctl /
 * iommufd_viommu_destroy; hw_pagetable.c: iommufd_viommu_alloc_hwpt_nested and the VIOMMU branch
 * of IOMMU_HWPT_INVALIDATE; driver.c: iommufd_viommu_alloc_mmap / iommufd_viommu_report_event;
 * main.c: iommufd_fops_mmap).
 *
 * Kernel behaviour kept:
 * - IOMMU_VIOMMU_ALLOC: flags or the DEFAULT type → EOPNOTSUPP; `dev_id` not a DEVICE → ENOENT; a
 *   driver without vIOMMU support → EOPNOTSUPP; `hwpt_id` not a HWPT_PAGING → ENOENT; not a
 *   NEST_PARENT → EINVAL; then the driver (unknown type → EOPNOTSUPP, data errors). The VIOMMU
 *   holds a users reference on its parent HWPT and belongs to the device's IOMMU (driver).
 * - Nested HWPTs allocated on a VIOMMU hold a users reference on it; the device must be behind
 *   the same IOMMU (EINVAL); flags other than FAULT_ID_VALID / PASID → EOPNOTSUPP; no data →
 *   EOPNOTSUPP.
 * - mmap of a driver's MMIO region through the iommufd: length not page aligned or a private
 *   mapping → EINVAL, executable → EPERM, an offset / length that is not exactly a region → ENXIO;
 *   each mapping holds a users reference on the VIOMMU (DESTROY → EBUSY) until munmap.
 * - Vendor events the driver reports go to the vIOMMU's VEVENTQ of that type (none → the driver
 *   gets EOPNOTSUPP).
 *
 * Model differences: a driver that does not list its `viommuTypes` has its type checked only
 * when it is called (after the HWPT lookup). Closing the iommufd unmaps what is still mapped.
 */
import { IommuError, type IommuViommu, type ViommuEvent } from '@iommulab/driver-api';
import type { IommufdCtx } from './context.js';
import { getDevice, type IommufdDevice } from './device.js';
import { fail, IommufdError } from './errors.js';
import type { IommufdVeventq } from './eventq.js';
import { driverFail, getHwptPaging, HwptNested, type HwptPaging } from './hw-pagetable.js';
import { IommufdObject } from './object-table.js';
import { IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_FAULT_ID_VALID, IOMMU_VIOMMU_TYPE_DEFAULT } from './uapi/constants.js';
import { hex, PAGE_SIZE, u32, u64 } from './uapi/u64.js';
import type { IommufdVdevice } from './vdevice.js';
import type { IommufdHwQueue } from './hw-queue.js';

/** A vIOMMU (`struct iommufd_viommu`). */
export class IommufdViommu extends IommufdObject {
  readonly type = 'viommu' as const;
  readonly ctx: IommufdCtx;
  /** The nest-parent HWPT_PAGING (holds a users reference on it). */
  readonly hwpt: HwptPaging;
  /** The driver of the IOMMU instance the vIOMMU belongs to (`iommu_dev`). */
  readonly driver: IommufdDevice['driver'];
  /** `IOMMU_VIOMMU_TYPE_*`. */
  readonly vtype: number;
  /** The driver's vIOMMU; null until created. */
  drv: IommuViommu | null = null;
  /** Virtual devices by virtual id (`vdevs`). */
  readonly vdevs = new Map<bigint, IommufdVdevice>();
  /** Event queues (`veventqs`). */
  readonly veventqs: IommufdVeventq[] = [];
  /** HW queues (model bookkeeping for index dependencies). */
  readonly hwQueues = new Set<IommufdHwQueue>();
  /** mmap offsets the driver allocated. */
  readonly mmapOffsets: number[] = [];
  private unsubscribe: (() => void) | null = null;
  private holdsParent = false;

  constructor(ctx: IommufdCtx, hwpt: HwptPaging, driver: IommufdDevice['driver'], vtype: number) {
    super();
    this.ctx = ctx;
    this.hwpt = hwpt;
    this.driver = driver;
    this.vtype = vtype;
  }

  /** @internal takes the parent reference and listens to the driver's events. */
  start(drv: IommuViommu): void {
    this.drv = drv;
    this.hwpt.users++;
    this.holdsParent = true;
    if (typeof drv.onViommuEvent === 'function') this.unsubscribe = drv.onViommuEvent((e) => this.onEvent(e));
  }

  /** `iommufd_viommu_report_event`: to the VEVENTQ of the event's type (EOPNOTSUPP: none). */
  private onEvent(e: ViommuEvent): void {
    const q = this.veventqs.find((v) => v.vtype === e.type);
    if (q === undefined) throw new IommuError('EOPNOTSUPP', `vIOMMU ${this.id} has no event queue of type ${hex(e.type)}`);
    q.report(e.data);
  }

  /** `iommufd_viommu_destroy`. */
  async destroy(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    try {
      if (this.drv !== null) await this.drv.destroy();
    } finally {
      this.drv = null;
      for (const off of this.mmapOffsets) mmapRegistry(this.ctx).regions.delete(off);
      this.mmapOffsets.length = 0;
      if (this.holdsParent) {
        this.holdsParent = false;
        this.hwpt.users--;
      }
    }
  }
}

/** `iommufd_get_viommu`: ENOENT unless `id` names a VIOMMU. */
export function getViommu(ctx: IommufdCtx, id: number): IommufdViommu {
  return ctx.objects.get<IommufdViommu>(id, 'viommu', 'VIOMMU');
}

/** Arguments of IOMMU_VIOMMU_ALLOC (`struct iommu_viommu_alloc`). */
export interface ViommuAllocArgs {
  flags?: number;
  type: number;
  devId: number;
  hwptId: number;
  /** Length of the driver data (default `data.length`, or 0). */
  dataLen?: number;
  /** The driver data (`data_uptr`, in/out). */
  data?: Uint8Array | null;
}

/**
 * IOMMU_VIOMMU_ALLOC (`iommufd_viommu_alloc_ioctl`). Returns the id and the driver's out data
 * (the binary ABI copies it back to `data_uptr`).
 */
export async function viommuAlloc(ctx: IommufdCtx, a: ViommuAllocArgs): Promise<{ outViommuId: number; data?: Uint8Array }> {
  const what = 'IOMMU_VIOMMU_ALLOC';
  const flags = u32(a.flags, 'flags');
  const type = u32(a.type, 'type');
  if (flags !== 0 || type === IOMMU_VIOMMU_TYPE_DEFAULT) fail('EOPNOTSUPP', `${what}: flags ${hex(flags)} / type ${hex(type)}`);
  const idev = getDevice(ctx, u32(a.devId, 'dev_id'));
  const driver = idev.driver;
  if (typeof driver.viommuAlloc !== 'function') fail('EOPNOTSUPP', `${what}: the ${driver.backendId} driver has no vIOMMU`);
  // get_viommu_size(type) == 0, checked before the HWPT
  if (driver.viommuTypes !== undefined && !driver.viommuTypes.includes(type)) {
    fail('EOPNOTSUPP', `${what}: the ${driver.backendId} driver has no vIOMMU of type ${hex(type)}`);
  }
  const hwpt = getHwptPaging(ctx, u32(a.hwptId, 'hwpt_id'));
  if (!hwpt.nestParent) fail('EINVAL', `${what}: HWPT ${hwpt.id} is not a nest parent`);
  const dataLen = u32(a.dataLen ?? (a.data instanceof Uint8Array ? a.data.length : 0), 'data_len');
  const viommu = ctx.objects.alloc(new IommufdViommu(ctx, hwpt, driver, type));
  try {
    let data: Uint8Array = new Uint8Array(0);
    if (dataLen !== 0) {
      const d = a.data; // may be a lazy user pointer (binary ABI): EFAULT here
      if (!(d instanceof Uint8Array)) fail('EFAULT', `${what}: no data buffer for data_len ${dataLen}`);
      if (d.length < dataLen) fail('EFAULT', `${what}: the data buffer holds ${d.length} of ${dataLen} bytes`);
      data = d.subarray(0, dataLen);
    }
    const env = {
      allocMmap: (pa: number, length: number): number => {
        const off = mmapRegistry(ctx).alloc(viommu, pa, length);
        viommu.mmapOffsets.push(off);
        return off;
      },
    };
    let drv: IommuViommu;
    try {
      drv = await driver.viommuAlloc!(idev.dev, hwpt.pagingDomain!, type, data, env);
    } catch (e) {
      return driverFail(what, e);
    }
    viommu.start(drv);
  } catch (e) {
    await ctx.objects.abortAndDestroy(viommu);
    throw e;
  }
  ctx.objects.finalize(viommu);
  const out = viommu.drv!.outData;
  return out === undefined ? { outViommuId: viommu.id } : { outViommuId: viommu.id, data: out.slice() };
}

// ---------------------------------------------------------------------------- nested HWPT on a vIOMMU

/** A HWPT_NESTED allocated on a VIOMMU: holds a users reference on the VIOMMU too. */
export class ViommuHwptNested extends HwptNested {
  /** The vIOMMU (`hwpt_nested->viommu`). */
  readonly viommu: IommufdViommu;

  private holdsViommu = false;

  constructor(viommu: IommufdViommu, flags: number) {
    super(viommu.driver, viommu.hwpt, flags);
    this.viommu = viommu;
  }

  /** @internal takes the references once the object exists (a failed alloc holds nothing). */
  hold(parentUsersBefore: number): void {
    // HwptNested.destroy drops one reference on the parent: make sure it was taken.
    if (this.parent.users === parentUsersBefore) this.parent.users++;
    this.viommu.users++;
    this.holdsViommu = true;
  }

  override async destroy(): Promise<void> {
    try {
      await super.destroy();
    } finally {
      if (this.holdsViommu) {
        this.holdsViommu = false;
        this.viommu.users--;
      }
    }
  }
}

/**
 * `iommufd_viommu_alloc_hwpt_nested` (IOMMU_HWPT_ALLOC with `pt_id` = VIOMMU): a hidden HWPT_NESTED
 * for the caller to finalize or abort. `userData.read()` copies the data (EFAULT).
 */
export async function viommuHwptNestedAlloc(
  ctx: IommufdCtx,
  viommu: IommufdViommu,
  idev: IommufdDevice,
  flags: number,
  userData: { type: number; len: number; read: () => Uint8Array },
): Promise<HwptNested> {
  const what = 'IOMMU_HWPT_ALLOC (nested on a vIOMMU)';
  if (viommu.driver !== idev.driver) fail('EINVAL', `${what}: device ${idev.id} is not behind the IOMMU of vIOMMU ${viommu.id}`);
  const valid = IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID;
  if (flags & ~valid) fail('EOPNOTSUPP', `${what}: flags ${hex(flags & ~valid)}`);
  if (userData.len === 0) fail('EOPNOTSUPP', `${what}: a nested HWPT needs driver data`);
  const drv = viommu.drv;
  if (drv === null || typeof drv.domainAllocNested !== 'function') fail('EOPNOTSUPP', `${what}: vIOMMU ${viommu.id} cannot allocate nested domains`);
  const parentUsers = viommu.hwpt.users;
  const hwpt = ctx.objects.alloc(new ViommuHwptNested(viommu, flags));
  hwpt.hold(parentUsers);
  try {
    const data = userData.read();
    try {
      hwpt.nestedDomain = await drv.domainAllocNested(idev.dev, userData.type, data, { pasid: (flags & IOMMU_HWPT_ALLOC_PASID) !== 0 });
    } catch (e) {
      driverFail(what, e);
    }
    return hwpt;
  } catch (e) {
    await ctx.objects.abortAndDestroy(hwpt);
    throw e;
  }
}

/**
 * The VIOMMU branch of IOMMU_HWPT_INVALIDATE: the driver's `cache_invalidate` (EOPNOTSUPP without
 * it). `entryNum` handled is returned, and on failure carried in `err.out.entryNum`.
 */
export async function viommuCacheInvalidate(
  viommu: IommufdViommu,
  dataType: number,
  entryLen: number,
  entries: Uint8Array,
  entryNum: number,
): Promise<{ entryNum: number }> {
  const what = 'IOMMU_HWPT_INVALIDATE';
  const drv = viommu.drv;
  if (drv === null || typeof drv.cacheInvalidate !== 'function') fail('EOPNOTSUPP', `${what}: vIOMMU ${viommu.id} has no cache_invalidate`, { entryNum: 0 });
  let r;
  try {
    r = await drv.cacheInvalidate(dataType, entryLen, entries, entryNum);
  } catch (e) {
    if (e instanceof IommuError) throw new IommufdError(e.errno, `${what}: ${e.message}`, { entryNum: 0 }, { cause: e });
    throw e;
  }
  if (r.error !== undefined) {
    throw new IommufdError(r.error.errno, `${what}: entry ${r.handled}: ${r.error.message}`, { entryNum: r.handled }, { cause: r.error });
  }
  return { entryNum: r.handled };
}

// ---------------------------------------------------------------------------- mmap

/** One driver region (`struct iommufd_mmap`). */
interface MmapRegion {
  readonly owner: IommufdViommu;
  readonly pa: number;
  readonly length: number;
}

/** A mapping of a region made by {@link iommufdMmap}. */
export interface IommufdMapping {
  /** The mapped bytes (a live view of the region's memory). */
  readonly data: Uint8Array;
  /** The mmap offset it was made at. */
  readonly offset: number;
  /** munmap(2): drops the mapping's reference on the VIOMMU. Twice does nothing. */
  munmap(): void;
  /** True once unmapped. */
  readonly unmapped: boolean;
}

/** `ictx->mt_mmap` plus the live mappings of a context. */
class MmapRegistry {
  readonly regions = new Map<number, MmapRegion>();
  readonly mappings = new Set<IommufdMapping>();
  hooked = false;

  /** `_iommufd_alloc_mmap`: the lowest free offset from PAGE_SIZE (the first page is skipped). */
  alloc(owner: IommufdViommu, pa: number, length: number): number {
    if (pa % PAGE_SIZE !== 0 || length <= 0 || length % PAGE_SIZE !== 0) {
      throw new IommuError('EINVAL', `allocMmap: pa ${hex(pa)} / length ${hex(length)} not page aligned`);
    }
    const used = [...this.regions].sort((x, y) => x[0] - y[0]);
    let off = PAGE_SIZE;
    for (const [o, r] of used) {
      if (off + length <= o) break;
      off = Math.max(off, o + r.length);
    }
    this.regions.set(off, { owner, pa, length });
    return off;
  }
}

const registries = new WeakMap<IommufdCtx, MmapRegistry>();

function mmapRegistry(ctx: IommufdCtx): MmapRegistry {
  let r = registries.get(ctx);
  if (r === undefined) {
    r = new MmapRegistry();
    registries.set(ctx, r);
  }
  return r;
}

/** Arguments of {@link iommufdMmap} (an `mmap(2)` of the iommufd). */
export interface IommufdMmapArgs {
  /** The file offset (`out_mmap_offset` of the driver data). */
  offset: bigint | number;
  /** Bytes to map. */
  length: bigint | number;
  /** MAP_SHARED (default true; a private mapping is EINVAL). */
  shared?: boolean;
  /** PROT_EXEC (EPERM). */
  exec?: boolean;
}

/** `iommufd_fops_mmap`. */
export function iommufdMmap(ctx: IommufdCtx, a: IommufdMmapArgs): IommufdMapping {
  const what = 'mmap';
  const offset = u64(a.offset, 'offset');
  const length = u64(a.length, 'length');
  if (length === 0n || offset % BigInt(PAGE_SIZE) !== 0n) fail('EINVAL', `${what}: length ${hex(length)} / offset ${hex(offset)}`);
  if (length % BigInt(PAGE_SIZE) !== 0n) fail('EINVAL', `${what}: length ${hex(length)} is not page aligned`);
  if (a.shared === false) fail('EINVAL', `${what}: the iommufd can only be mapped MAP_SHARED`);
  if (a.exec === true) fail('EPERM', `${what}: the iommufd cannot be mapped executable`);
  const reg = mmapRegistry(ctx);
  let region: MmapRegion | undefined;
  let start = -1;
  for (const [o, r] of reg.regions) {
    if (offset >= BigInt(o) && offset < BigInt(o + r.length)) {
      region = r;
      start = o;
    }
  }
  if (region === undefined) return fail('ENXIO', `${what}: no region at offset ${hex(offset)}`);
  if (offset !== BigInt(start) || length !== BigInt(region.length)) {
    fail('ENXIO', `${what}: offset ${hex(offset)} / length ${hex(length)} is not the region [${hex(start)}, +${hex(region.length)})`);
  }
  const owner = region.owner;
  owner.users++;
  let unmapped = false;
  const m: IommufdMapping = {
    data: ctx.mem.u8.subarray(region.pa, region.pa + region.length),
    offset: start,
    munmap(): void {
      if (unmapped) return;
      unmapped = true;
      reg.mappings.delete(m);
      owner.users--;
    },
    get unmapped(): boolean {
      return unmapped;
    },
  };
  reg.mappings.add(m);
  if (!reg.hooked) {
    reg.hooked = true;
    ctx.objects.beforeClose.add(() => {
      reg.hooked = false;
      for (const x of [...reg.mappings]) x.munmap();
    });
  }
  return m;
}
