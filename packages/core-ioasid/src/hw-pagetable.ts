/**
 * HW page tables (drivers/iommu/iommufd/hw_pagetable.c): HWPT_PAGING (a kernel-owned IO page
 * table mirrored from one IOAS) and HWPT_NESTED (a user-owned stage 1 over a nest-parent
 * HWPT_PAGING), and the ioctls IOMMU_HWPT_ALLOC, IOMMU_HWPT_INVALIDATE,
 * IOMMU_HWPT_SET_DIRTY_TRACKING and IOMMU_HWPT_GET_DIRTY_BITMAP.
 *
 * Kernel behaviour kept:
 * - A HWPT_PAGING holds a users reference on its IOAS and sits on the IOAS's `hwpt_list`; its
 *   domain is added to the IOAS's io_pagetable (`iopt_table_add_domain`), which maps every area
 *   into it, reserves everything outside the domain's aperture and may raise the IOAS alignment.
 *   Destroying it removes the domain (every area unmapped, IOTLB flushed) and frees it.
 * - Auto HWPTs (`auto_domain`, made by attaching a device to an IOAS) are destroyed with their
 *   last device (`iommufd_hw_pagetable_put`); manual ones live until IOMMU_DESTROY.
 * - HWPT_NESTED holds its parent; the parent must be a manual NEST_PARENT HWPT of the same driver.
 * - IOMMU_HWPT_ALLOC check order: `__reserved` (ABI) → data_type / data_len consistency (EINVAL)
 *   → dev_id (ENOENT) → pt_id (missing or wrong type: EINVAL) → per-kind checks → fault_id (ENOENT).
 *
 * vIOMMU-based nesting (pt_id = VIOMMU) and vIOMMU invalidation are src/viommu.ts's; a HWPT's
 * FAULT is routed by src/fault.ts.
 */
import {
  HwCap,
  IommuError,
  type IommuDriver,
  type NestedDomain,
  type PagingDomain,
} from '@iommulab/driver-api';
import type { IommufdCtx } from './context.js';
import { getDevice, type IommufdDevice } from './device.js';
import { fail, IommufdError } from './errors.js';
import type { IommufdViommu } from './viommu.js';
import { failpoint } from './fail-nth.js';
import type { Ioas } from './ioas.js';
import { IommufdObject } from './object-table.js';
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
} from './uapi/constants.js';
import { hex, u32, u64, U64_MAX, ULONG_MAX } from './uapi/u64.js';

/** `IOMMU_NO_PASID`: the PASID value naming the RID (no-PASID) attachment. */
export const IOMMU_NO_PASID = 0;

/**
 * Kept for API compatibility only: the kernel has no such cap (iommufd_hwpt_invalidate checks only
 * `entry_num && (!data_uptr || !entry_len)`), so IOMMU_HWPT_INVALIDATE no longer enforces it.
 */
export const IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX = 1 << 19;

/** Common part of both HWPT kinds (`struct iommufd_hw_pagetable`). */
export abstract class HwPagetable extends IommufdObject {
  abstract override readonly type: 'hwpt_paging' | 'hwpt_nested';
  /** The driver that made the domain (`domain->owner`). */
  readonly driver: IommuDriver;
  /** The iommu_domain; null only while being created or after a failed creation. */
  abstract get domain(): PagingDomain | NestedDomain | null;
  /** Allocated with IOMMU_HWPT_ALLOC_PASID: may be attached to PASIDs (`pasid_compat`). */
  readonly pasidCompat: boolean;
  /** FAULT object (IOMMU_HWPT_FAULT_ID_VALID), holding a users reference on it. */
  fault: IommufdObject | null = null;

  protected constructor(driver: IommuDriver, pasidCompat: boolean) {
    super();
    this.driver = driver;
    this.pasidCompat = pasidCompat;
  }

  /** `__iommufd_hwpt_destroy`: frees the domain and drops the fault reference. */
  protected async releaseCommon(domain: PagingDomain | NestedDomain | null): Promise<void> {
    if (domain !== null) await domain.free();
    if (this.fault !== null) {
      this.fault.users--;
      this.fault = null;
    }
  }
}

/** A kernel-managed IO page table mirrored from an IOAS (`struct iommufd_hwpt_paging`). */
export class HwptPaging extends HwPagetable {
  readonly type = 'hwpt_paging' as const;
  /** The IOAS (holds a users reference on it). */
  readonly ioas: Ioas;
  /** Made by attaching a device to the IOAS: picked by later auto attaches, destroyed with its last device. */
  autoDomain = false;
  /** IOMMU_HWPT_ALLOC_NEST_PARENT. */
  readonly nestParent: boolean;
  /** IOMMU_HWPT_ALLOC_DIRTY_TRACKING. */
  readonly dirtyTracking: boolean;
  /** @internal */
  pagingDomain: PagingDomain | null = null;
  /** @internal on the IOAS's hwpt_list with its domain in the io_pagetable. */
  inIoas = false;

  constructor(driver: IommuDriver, ioas: Ioas, flags: number) {
    super(driver, (flags & IOMMU_HWPT_ALLOC_PASID) !== 0);
    this.ioas = ioas;
    this.nestParent = (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0;
    this.dirtyTracking = (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0;
  }

  get domain(): PagingDomain | null {
    return this.pagingDomain;
  }

  /** `iommufd_hwpt_paging_destroy` (and `_abort`): leaves the IOAS, frees the domain. */
  async destroy(): Promise<void> {
    const domain = this.pagingDomain;
    try {
      if (this.inIoas) {
        this.inIoas = false;
        const i = this.ioas.hwptList.indexOf(this);
        if (i >= 0) this.ioas.hwptList.splice(i, 1);
        if (domain !== null) await this.ioas.iopt.removeDomain(domain);
      }
      this.pagingDomain = null;
      await this.releaseCommon(domain);
    } finally {
      this.ioas.users--;
    }
  }
}

/** A user-managed stage 1 over a nest-parent HWPT_PAGING (`struct iommufd_hwpt_nested`). */
export class HwptNested extends HwPagetable {
  readonly type = 'hwpt_nested' as const;
  /** The stage-2 parent (holds a users reference on it). */
  readonly parent: HwptPaging;
  /** @internal */
  nestedDomain: NestedDomain | null = null;

  constructor(driver: IommuDriver, parent: HwptPaging, flags: number) {
    super(driver, (flags & IOMMU_HWPT_ALLOC_PASID) !== 0);
    this.parent = parent;
  }

  get domain(): NestedDomain | null {
    return this.nestedDomain;
  }

  /** `iommufd_hwpt_nested_destroy`. */
  async destroy(): Promise<void> {
    const d = this.nestedDomain;
    this.nestedDomain = null;
    try {
      await this.releaseCommon(d);
    } finally {
      this.parent.users--;
    }
  }
}

// ---------------------------------------------------------------------------- ioas->mutex

const ioasLocks = new WeakMap<Ioas, Promise<void>>();

/**
 * Runs `fn` holding the IOAS's `mutex` (serialises HWPT creation and the auto-domain search on
 * one IOAS, as the kernel's `ioas->mutex`). Not re-entrant.
 */
export async function withIoasLock<T>(ioas: Ioas, fn: () => Promise<T>): Promise<T> {
  const prev = ioasLocks.get(ioas) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const tail = prev.then(() => mine);
  ioasLocks.set(ioas, tail);
  await prev;
  try {
    return await fn();
  } finally {
    release();
    if (ioasLocks.get(ioas) === tail) ioasLocks.delete(ioas);
  }
}

/** Rethrows a driver's IommuError as an IommufdError naming the call (same errno). */
export function driverFail(what: string, e: unknown): never {
  if (e instanceof IommufdError) throw e;
  if (e instanceof IommuError) throw new IommufdError(e.errno, `${what}: ${e.message}`, undefined, { cause: e });
  throw e;
}

/**
 * The HWPT_PAGING under `hwpt` (`find_hwpt_paging`): itself, or a nested HWPT's parent (so a RID
 * attached to a nested HWPT reserves its regions in the parent's IOAS).
 */
export function findHwptPaging(hwpt: HwPagetable): HwptPaging | null {
  if (hwpt instanceof HwptPaging) return hwpt;
  if (hwpt instanceof HwptNested) return hwpt.parent;
  return null;
}

/**
 * `iommufd_hw_pagetable_put`: drops one users reference; an auto HWPT whose last device left is
 * destroyed (its id then answers ENOENT).
 */
export async function hwptPut(ctx: IommufdCtx, hwpt: HwPagetable): Promise<void> {
  hwpt.users--;
  if (hwpt instanceof HwptPaging && hwpt.autoDomain && hwpt.users === 1 && hwpt.visible) {
    await ctx.objects.remove(hwpt.id, { expect: hwpt });
  }
}

/** Hooks device.ts gives for immediate attachment (avoids an import cycle at load time). */
export interface ImmediateAttach {
  attach(hwpt: HwPagetable, idev: IommufdDevice, pasid: number): Promise<void>;
  detach(idev: IommufdDevice, pasid: number): Promise<void>;
}

const PAGING_VALID_FLAGS =
  IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID;

/** True when the device's IOMMU can track dirty pages for it (`IOMMU_CAP_DIRTY_TRACKING`). */
export function deviceDirtyCapable(idev: IommufdDevice): boolean {
  return (idev.driver.hwInfo(idev.dev).capabilities & HwCap.DIRTY_TRACKING) !== 0;
}

/**
 * `iommufd_hwpt_paging_alloc`: a new hidden HWPT_PAGING on `ioas` for `idev`, filled with every
 * area of the IOAS. With `immediate` the device (`pasid`) is attached before the domain is added
 * (the auto-domain attach path). The caller holds the IOAS lock and finalizes or aborts it.
 * `userData` (driver-specific paging data, e.g. the mock's page-table format) goes to the driver,
 * which validates it (`domain_alloc_paging_flags` with `user_data`).
 */
export async function hwptPagingAlloc(
  ctx: IommufdCtx,
  ioas: Ioas,
  idev: IommufdDevice,
  pasid: number,
  flags: number,
  immediate: ImmediateAttach | null,
  userData: { type: number; len: number; read: () => Uint8Array } | null,
): Promise<HwptPaging> {
  const what = 'IOMMU_HWPT_ALLOC';
  if (flags & ~PAGING_VALID_FLAGS) fail('EOPNOTSUPP', `${what}: unknown flags ${hex(flags & ~PAGING_VALID_FLAGS)}`);
  if (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING && !deviceDirtyCapable(idev)) {
    fail('EOPNOTSUPP', `${what}: device ${idev.id} cannot do dirty tracking`);
  }
  if (flags & IOMMU_HWPT_FAULT_ID_VALID && flags & IOMMU_HWPT_ALLOC_NEST_PARENT) {
    fail('EOPNOTSUPP', `${what}: IOMMU_HWPT_FAULT_ID_VALID with IOMMU_HWPT_ALLOC_NEST_PARENT`);
  }
  const hwpt = ctx.objects.alloc(new HwptPaging(idev.driver, ioas, flags));
  ioas.users++; // pairs with destroy; taken once the object exists (a failed alloc holds nothing)
  let attached = false;
  try {
    try {
      failpoint(ctx, 'driver.domain_alloc'); // the driver fails with ENOMEM before allocating
      const driverData = userData === null ? undefined : { type: userData.type, data: userData.read() };
      hwpt.pagingDomain = await idev.driver.domainAllocPaging(
        idev.dev,
        { nestParent: hwpt.nestParent, dirtyTracking: hwpt.dirtyTracking, pasid: hwpt.pasidCompat },
        driverData,
      );
    } catch (e) {
      driverFail(what, e);
    }
    if (immediate !== null) {
      await immediate.attach(hwpt, idev, pasid);
      attached = true;
    }
    await ioas.iopt.addDomain(hwpt.pagingDomain);
    ioas.hwptList.push(hwpt);
    hwpt.inIoas = true;
    return hwpt;
  } catch (e) {
    if (attached) await immediate!.detach(idev, pasid);
    await ctx.objects.abortAndDestroy(hwpt);
    throw e;
  }
}

/**
 * `iommufd_hwpt_nested_alloc`: a hidden HWPT_NESTED over `parent` from vendor data. The data is
 * read (EFAULT) only after the driver recognised its type (EOPNOTSUPP), as the driver's
 * `iommu_copy_struct_from_user` does.
 */
async function hwptNestedAlloc(
  ctx: IommufdCtx,
  parent: HwptPaging,
  idev: IommufdDevice,
  flags: number,
  userData: { type: number; len: number; read: () => Uint8Array },
): Promise<HwptNested> {
  const what = 'IOMMU_HWPT_ALLOC (nested)';
  const valid = IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID;
  if (flags & ~valid) fail('EOPNOTSUPP', `${what}: flags ${hex(flags & ~valid)} are not allowed on a nested HWPT`);
  if (userData.len === 0) fail('EOPNOTSUPP', `${what}: a nested HWPT needs driver data`);
  if (!idev.driver.capabilities.nesting) fail('EOPNOTSUPP', `${what}: the ${idev.driver.backendId} driver has no nesting`);
  if (parent.autoDomain || !parent.nestParent || parent.driver !== idev.driver) {
    fail('EINVAL', `${what}: HWPT ${parent.id} is ${parent.autoDomain ? 'an auto domain' : !parent.nestParent ? 'not a nest parent' : 'of another IOMMU'}`);
  }
  const hwpt = ctx.objects.alloc(new HwptNested(idev.driver, parent, flags));
  parent.users++; // pairs with destroy; taken once the object exists (a failed alloc holds nothing)
  try {
    if (!idev.driver.capabilities.nestedDataTypes.includes(userData.type)) {
      fail('EOPNOTSUPP', `${what}: data type ${hex(userData.type)} is not supported by the ${idev.driver.backendId} driver`);
    }
    const data = userData.read();
    try {
      // The PASID flag stays in the core (pasid_compat): the driver API's nested alloc takes none.
      failpoint(ctx, 'driver.domain_alloc_nested');
      hwpt.nestedDomain = await idev.driver.domainAllocNested(idev.dev, parent.pagingDomain!, userData.type, data, {});
    } catch (e) {
      driverFail(what, e);
    }
    return hwpt;
  } catch (e) {
    await ctx.objects.abortAndDestroy(hwpt);
    throw e;
  }
}

/** Arguments of IOMMU_HWPT_ALLOC (`struct iommu_hwpt_alloc`). */
export interface HwptAllocArgs {
  flags?: number;
  devId: number;
  ptId: number;
  dataType?: number;
  /** Length of the driver data (default `data.length`, or 0). */
  dataLen?: number;
  /** The driver data (`data_uptr`): bytes, or a user VA read from the calling process. */
  data?: Uint8Array | null;
  /** `data_uptr` as a user VA in the calling process (used when `data` is absent). */
  dataUptr?: bigint | number;
  faultId?: number;
}

/**
 * True when a data pointer was given: bytes, a non-NULL `dataUptr`, or a lazy user pointer (a
 * getter installed by the binary ABI, not invoked here so a bad pointer faults where the kernel
 * copies it).
 */
function hasUserData(a: { data?: Uint8Array | null; dataUptr?: bigint | number }): boolean {
  if (typeof Object.getOwnPropertyDescriptor(a, 'data')?.get === 'function') return true;
  return a.data instanceof Uint8Array || (a.dataUptr !== undefined && a.dataUptr !== 0 && a.dataUptr !== 0n);
}

/** Reads `len` bytes of user data (`copy_from_user`): EFAULT for a NULL or unmapped pointer. */
function userBytes(ctx: IommufdCtx, what: string, a: { data?: Uint8Array | null; dataUptr?: bigint | number }, len: number): () => Uint8Array {
  return () => {
    const d = a.data;
    if (d instanceof Uint8Array) {
      if (d.length < len) fail('EFAULT', `${what}: the data buffer holds ${d.length} of ${len} bytes`);
      return d.subarray(0, len);
    }
    const p = u64(a.dataUptr, `${what} data_uptr`);
    if (p === 0n) fail('EFAULT', `${what}: data_uptr is NULL`);
    try {
      return ctx.current.read(Number(p), len);
    } catch (e) {
      return fail('EFAULT', `${what}: data_uptr ${hex(p)}: ${(e as Error).message}`);
    }
  };
}

/** IOMMU_HWPT_ALLOC (`iommufd_hwpt_alloc`). */
export async function hwptAlloc(ctx: IommufdCtx, a: HwptAllocArgs): Promise<{ outHwptId: number }> {
  const what = 'IOMMU_HWPT_ALLOC';
  const flags = u32(a.flags, 'flags');
  const dataType = u32(a.dataType, 'data_type');
  // `data` may be a lazy user pointer (binary ABI): it is only read where the driver copies it.
  const dataLen = u32(a.dataLen ?? (a.data instanceof Uint8Array ? a.data.length : 0), 'data_len');
  if ((dataType === IOMMU_HWPT_DATA_NONE && dataLen !== 0) || (dataType !== IOMMU_HWPT_DATA_NONE && dataLen === 0)) {
    fail('EINVAL', `${what}: data_type ${hex(dataType)} with data_len ${dataLen}`);
  }
  const idev = getDevice(ctx, u32(a.devId, 'dev_id'));
  const ptId = u32(a.ptId, 'pt_id');
  const pt = ctx.objects.find(ptId);
  if (pt === undefined) fail('EINVAL', `${what}: pt_id ${ptId} does not exist`);
  let hwpt: HwPagetable;
  if (pt.type === 'ioas') {
    const ioas = pt as Ioas;
    hwpt = await withIoasLock(ioas, () =>
      hwptPagingAlloc(
        ctx,
        ioas,
        idev,
        IOMMU_NO_PASID,
        flags,
        null,
        dataLen !== 0 ? { type: dataType, len: dataLen, read: userBytes(ctx, what, a, dataLen) } : null,
      ),
    );
  } else if (pt.type === 'hwpt_paging') {
    hwpt = await hwptNestedAlloc(ctx, pt as HwptPaging, idev, flags, { type: dataType, len: dataLen, read: userBytes(ctx, what, a, dataLen) });
  } else if (pt.type === 'viommu') {
    // vIOMMU-based nesting lives in src/viommu.ts (loaded lazily: it extends HwptNested).
    const { viommuHwptNestedAlloc } = await import('./viommu.js');
    hwpt = await viommuHwptNestedAlloc(ctx, pt as IommufdViommu, idev, flags, { type: dataType, len: dataLen, read: userBytes(ctx, what, a, dataLen) });
  } else {
    return fail('EINVAL', `${what}: pt_id ${ptId} is a ${pt.type}, not an IOAS or a HWPT_PAGING`);
  }
  if (flags & IOMMU_HWPT_FAULT_ID_VALID) {
    const faultId = u32(a.faultId, 'fault_id');
    const fault = ctx.objects.find(faultId, 'fault');
    if (fault === undefined) {
      await ctx.objects.abortAndDestroy(hwpt);
      return fail('ENOENT', `${what}: fault_id ${faultId} is not a FAULT`);
    }
    hwpt.fault = fault;
    fault.users++;
  }
  ctx.objects.finalize(hwpt);
  return { outHwptId: hwpt.id };
}

/** `iommufd_get_hwpt_paging`: ENOENT unless `id` names a HWPT_PAGING. */
export function getHwptPaging(ctx: IommufdCtx, id: number): HwptPaging {
  return ctx.objects.get<HwptPaging>(id, 'hwpt_paging', 'HWPT_PAGING');
}

// ---------------------------------------------------------------------------- invalidate

/** Arguments of IOMMU_HWPT_INVALIDATE (`struct iommu_hwpt_invalidate`). */
export interface HwptInvalidateArgs {
  hwptId: number;
  dataType: number;
  entryLen: number;
  entryNum: number;
  /** The entry array (`data_uptr`), `entryNum * entryLen` bytes; or a user VA in `dataUptr`. */
  data?: Uint8Array | null;
  dataUptr?: bigint | number;
}

/**
 * IOMMU_HWPT_INVALIDATE (`iommufd_hwpt_invalidate`): entries are handled in order until the first
 * failure; `entryNum` (handled count) is returned, and on failure carried in `err.out.entryNum`.
 */
export async function hwptInvalidate(ctx: IommufdCtx, a: HwptInvalidateArgs): Promise<{ entryNum: number }> {
  const what = 'IOMMU_HWPT_INVALIDATE';
  let done = 0;
  try {
    const entryNum = u32(a.entryNum, 'entry_num');
    const entryLen = u32(a.entryLen, 'entry_len');
    const dataType = u32(a.dataType, 'data_type');
    const hasPtr = hasUserData(a);
    // hw_pagetable.c iommufd_hwpt_invalidate: `entry_num && (!data_uptr || !entry_len)` is the only
    // core check before the object lookup; entry_len / entry_num sizes are left to the driver.
    if (entryNum !== 0 && (!hasPtr || entryLen === 0)) {
      fail('EINVAL', `${what}: entry_num ${entryNum} with entry_len ${entryLen} and ${hasPtr ? 'a' : 'no'} data pointer`);
    }
    const hwptId = u32(a.hwptId, 'hwpt_id');
    const pt = ctx.objects.get(hwptId, undefined, 'HWPT');
    if (pt.type === 'hwpt_nested') {
      const hwpt = pt as HwptNested;
      const domain = hwpt.nestedDomain;
      if (domain === null || typeof domain.cacheInvalidateUser !== 'function') fail('EOPNOTSUPP', `${what}: HWPT ${hwptId} has no cache_invalidate_user`);
      const bytes = entryNum === 0 ? new Uint8Array(0) : userBytes(ctx, what, a, entryNum * entryLen)();
      let r;
      try {
        r = await domain.cacheInvalidateUser(dataType, entryLen, bytes, entryNum);
      } catch (e) {
        driverFail(what, e);
      }
      done = r.handled;
      if (r.error !== undefined) {
        throw new IommufdError(r.error.errno, `${what}: entry ${r.handled}: ${r.error.message}`, { entryNum: done }, { cause: r.error });
      }
      return { entryNum: done };
    }
    if (pt.type === 'viommu') {
      // vIOMMU invalidation: src/viommu.ts (the driver's cache_invalidate).
      const { viommuCacheInvalidate } = await import('./viommu.js');
      const bytes = entryNum === 0 ? new Uint8Array(0) : userBytes(ctx, what, a, entryNum * entryLen)();
      return await viommuCacheInvalidate(pt as IommufdViommu, dataType, entryLen, bytes, entryNum);
    }
    return fail('EINVAL', `${what}: object ${hwptId} is a ${pt.type}, not a HWPT_NESTED or VIOMMU`);
  } catch (e) {
    if (e instanceof IommufdError && e.out !== undefined && 'entryNum' in e.out) throw e;
    if (e instanceof IommuError) throw new IommufdError(e.errno, e.message.replace(/^E[A-Z0-9]+: /, ''), { entryNum: done }, { cause: e });
    throw e;
  }
}

// ---------------------------------------------------------------------------- dirty tracking

/**
 * IOMMU_HWPT_SET_DIRTY_TRACKING (`iommufd_hwpt_set_dirty_tracking` → `iopt_set_dirty_tracking`):
 * EOPNOTSUPP for unknown flags or a domain without dirty tracking, ENOENT unless a HWPT_PAGING.
 * Enabling discards dirty state left from before (`iopt_clear_dirty_data`).
 */
export async function hwptSetDirtyTracking(ctx: IommufdCtx, a: { flags: number; hwptId: number }): Promise<void> {
  const what = 'IOMMU_HWPT_SET_DIRTY_TRACKING';
  const flags = u32(a.flags, 'flags');
  if (flags & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) fail('EOPNOTSUPP', `${what}: unknown flags ${hex(flags)}`);
  const hwpt = getHwptPaging(ctx, u32(a.hwptId, 'hwpt_id'));
  const domain = hwpt.pagingDomain;
  if (domain === null || !domain.flags.dirtyTracking) fail('EOPNOTSUPP', `${what}: HWPT ${hwpt.id} has no dirty tracking`);
  const enable = (flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE) !== 0;
  try {
    await domain.setDirtyTracking(enable);
    if (enable) {
      // iopt_clear_dirty_data: drop whatever was recorded before tracking (re)started.
      for (const area of hwpt.ioas.iopt.areas) {
        if (area.pages === null) continue;
        await domain.readAndClearDirty(Number(area.start), Number(area.length), {}, () => {});
      }
    }
  } catch (e) {
    driverFail(what, e);
  }
}

/** Arguments of IOMMU_HWPT_GET_DIRTY_BITMAP. */
export interface HwptGetDirtyBitmapArgs {
  hwptId: number;
  flags?: number;
  iova: bigint | number;
  length: bigint | number;
  pageSize: bigint | number;
  /** User VA of the bitmap (`data`) in the calling process: bits are OR-ed into it. Optional. */
  data?: bigint | number;
}

/**
 * IOMMU_HWPT_GET_DIRTY_BITMAP (`iommufd_hwpt_get_dirty_bitmap` → `iopt_read_and_clear_dirty_data`):
 * bit `(X - iova) / page_size` (little-endian u64 words) is set for every dirty IO page X in
 * `[iova, iova + length)`; a dirty IOPTE sets every bit it covers. Reading clears the dirty state
 * unless IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR. Returns the bitmap; when `data` is given the bits
 * are also OR-ed into the caller's memory there (as the kernel's iova_bitmap does).
 */
export async function hwptGetDirtyBitmap(ctx: IommufdCtx, a: HwptGetDirtyBitmapArgs): Promise<{ bitmap: Uint8Array }> {
  const what = 'IOMMU_HWPT_GET_DIRTY_BITMAP';
  const flags = u32(a.flags, 'flags');
  const iova = u64(a.iova, 'iova');
  const length = u64(a.length, 'length');
  const pageSize = u64(a.pageSize, 'page_size');
  if (flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) fail('EOPNOTSUPP', `${what}: unknown flags ${hex(flags)}`);
  const hwpt = getHwptPaging(ctx, u32(a.hwptId, 'hwpt_id'));
  // iopt_read_and_clear_dirty_data: iommufd_check_iova_range first, then the domain's dirty ops
  // (iommu_read_and_clear_dirty → EOPNOTSUPP), so a bad range is reported even without dirty ops.
  // iommufd_check_iova_range: `check_add_overflow(iova, length - 1)` in u64 (length 0 wraps to
  // U64_MAX, so any iova but 0 overflows); no power-of-two rule for page_size, only masks with
  // `page_size - 1`; the bitmap then uses `__ffs(page_size)` as its page shift.
  const last = iova + ((length - 1n) & U64_MAX);
  if (last > U64_MAX || last > ULONG_MAX) fail('EOVERFLOW', `${what}: iova ${hex(iova)} + length ${hex(length)} overflows`);
  const align = hwpt.ioas.iopt.iovaAlignment;
  const endIova = (last + 1n) & U64_MAX;
  if ((iova & (align - 1n)) !== 0n || (endIova & (align - 1n)) !== 0n) {
    fail('EINVAL', `${what}: [${hex(iova)}, ${hex(last)}] is not aligned to the IOAS alignment ${align}`);
  }
  if (pageSize === 0n) fail('EINVAL', `${what}: page_size is 0`);
  if ((iova & (pageSize - 1n)) !== 0n || (endIova & (pageSize - 1n)) !== 0n) {
    fail('EINVAL', `${what}: [${hex(iova)}, ${hex(last)}] is not aligned to page_size ${pageSize}`);
  }
  const domain = hwpt.pagingDomain;
  if (domain === null || !domain.flags.dirtyTracking) fail('EOPNOTSUPP', `${what}: HWPT ${hwpt.id} has no dirty tracking`);
  if (length === 0n) fail('EINVAL', `${what}: length is 0`); // iova 0, length 0: not modelled (see report)
  const effPageSize = pageSize & -pageSize; // 1 << __ffs(page_size)
  const nbits = Number((length + effPageSize - 1n) / effPageSize);
  const bitmap = new Uint8Array(Math.ceil(nbits / 8));
  const base = Number(iova);
  const ps = Number(effPageSize);
  const end = base + Number(length);
  try {
    await domain.readAndClearDirty(base, Number(length), { noClear: (flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0 }, (x, len) => {
      const s = Math.max(x, base);
      const e = Math.min(x + len, end);
      for (let b = Math.floor((s - base) / ps); b * ps + base < e; b++) bitmap[b >>> 3] |= 1 << (b & 7);
    });
  } catch (e) {
    driverFail(what, e);
  }
  if (a.data !== undefined) {
    const p = u64(a.data, 'data');
    if (p === 0n) fail('EFAULT', `${what}: data is NULL`);
    try {
      const cur = ctx.current.read(Number(p), bitmap.length);
      for (let i = 0; i < bitmap.length; i++) cur[i] |= bitmap[i];
      ctx.current.write(Number(p), cur);
    } catch (e) {
      fail('EFAULT', `${what}: data ${hex(p)}: ${(e as Error).message}`);
    }
  }
  return { bitmap };
}
