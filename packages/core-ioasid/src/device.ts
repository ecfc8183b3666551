/**
 * The DEVICE object (drivers/iommu/iommufd/device.c): binding a physical device to the context
 * through its IOMMU's driver, attaching / replacing / detaching its RID or a PASID to a HWPT or
 * an IOAS (auto domain), and IOMMU_GET_HW_INFO.
 *
 * Kernel behaviour kept:
 * - Bind probes the device in the backend's IommuDriver and creates the DEVICE object; the binder
 *   holds a users reference until unbind (so IOMMU_DESTROY of a bound device answers EBUSY), and
 *   every attachment (RID or PASID) holds one more (`iommufd_device_attach` / `_detach`).
 * - Each attachment holds a users reference on its HWPT. Attaching the RID to a HWPT_PAGING first
 *   reserves the device's reserved regions (MSI window, direct regions) in that HWPT's IOAS
 *   (`iopt_table_enforce_dev_resv_regions`, EADDRINUSE when an area or allowed range is there);
 *   the IOAS alignment follows the domains' page sizes (io_pagetable).
 * - `pt_id` = IOAS asks for an auto domain: every *auto* HWPT_PAGING of the IOAS is tried in
 *   turn, EINVAL meaning "incompatible, try the next", any other error failing the call; if none
 *   fits a new auto HWPT (flags 0) is made. Manual HWPTs are never picked.
 * - Replace is atomic: on failure the old attachment stays. Replacing onto the current HWPT is a
 *   no-op; replacing an unattached RID / PASID is EINVAL. The old HWPT loses the reference; an
 *   auto HWPT left without devices is destroyed.
 * - PASIDs (`iommufd_hwpt_pasid_compat`): a PASID may only be attached to a HWPT allocated with
 *   IOMMU_HWPT_ALLOC_PASID, and only while the RID's HWPT (if any) is PASID-compatible; the RID
 *   cannot move to a non-PASID HWPT while a PASID is attached. Attaching an attached PASID is
 *   EBUSY; detaching an unattached one does nothing.
 *
 * Model simplifications: each device is its own iommu_group (as the selftest's mock devices);
 * the VFIO cdev ATTACH ioctl (attach-or-replace) maps to {@link deviceAttach} /
 * {@link deviceReplace} as the caller chooses.
 */
import type { BackendStack, IommuDevice, IommuDriver } from '@iommulab/driver-api';
import type { IommufdCtx } from './context.js';
import { fail } from './errors.js';
import { faultAutoResponse, faultIopfCheck, faultSyncDevice } from './fault.js'; // faults and vIOMMU helper's hooks
import { vdeviceDeviceGone } from './vdevice.js';
import { failpoint } from './fail-nth.js';
import {
  driverFail,
  findHwptPaging,
  HwPagetable,
  HwptPaging,
  hwptPagingAlloc,
  hwptPut,
  IOMMU_NO_PASID,
  withIoasLock,
  type ImmediateAttach,
} from './hw-pagetable.js';
import type { Ioas } from './ioas.js';
import type { IoPagetable } from './io-pagetable/io-pagetable.js';
import { IommufdObject } from './object-table.js';
import { IOMMU_HW_CAP_DIRTY_TRACKING, IOMMU_HW_INFO_FLAG_INPUT_TYPE, IOMMU_HW_INFO_TYPE_DEFAULT } from './uapi/constants.js';
import { hex, u32 } from './uapi/u64.js';

/**
 * `IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED` (include/uapi/linux/iommufd.h, newest kernels). Kept local so
 * the package's export list is unchanged.
 */
const IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED = 1 << 3;

/** A device bound to the context (`struct iommufd_device`). */
export class IommufdDevice extends IommufdObject {
  readonly type = 'device' as const;
  /** The driver of the IOMMU the device sits behind. */
  readonly driver: IommuDriver;
  /** The probed device (driver handle). */
  readonly dev: IommuDevice;
  /** The backend stack, when bound through one: its device port carries the device's DMA. */
  readonly stack: BackendStack | null;
  /** Attachments by PASID (IOMMU_NO_PASID = the RID): the group's `pasid_attach`. */
  readonly attached = new Map<number, HwPagetable>();
  /** Being destroyed (`idev->destroying`). */
  destroying = false;
  /** Bound by {@link deviceBind} (a VFIO device fd), not owned by another object: unbound at close. */
  userBound = false;
  private released = false;

  constructor(driver: IommuDriver, dev: IommuDevice, stack: BackendStack | null) {
    super();
    this.driver = driver;
    this.dev = dev;
    this.stack = stack;
  }

  /** The HWPT the RID is attached to, if any. */
  get ridHwpt(): HwPagetable | undefined {
    return this.attached.get(IOMMU_NO_PASID);
  }

  /** `iommufd_device_destroy`: gives the device back (the driver blocks its DMA and forgets it). */
  async destroy(): Promise<void> {
    this.destroying = true;
    if (this.released) return;
    this.released = true;
    try {
      await this.driver.releaseDevice(this.dev);
    } catch {
      // A driver already shut down has nothing left to release.
    }
  }
}

/** `iommufd_get_device`: ENOENT unless `id` names a DEVICE. */
export function getDevice(ctx: IommufdCtx, id: number): IommufdDevice {
  return ctx.objects.get<IommufdDevice>(id, 'device', 'DEVICE');
}

// ---------------------------------------------------------------------------- bind / unbind

/** Arguments of {@link deviceBind}: the backend (stack, or a bare driver) and the device. */
export interface DeviceBindArgs {
  /** A backend stack: its driver probes the device, its port carries the device's DMA. */
  stack?: BackendStack;
  /** A driver, when no stack is given. */
  driver?: IommuDriver;
  /** The device as it presents itself (requester id, PASID width, ...). */
  spec: import('@iommulab/driver-api').DeviceSpec;
}

/**
 * `iommufd_device_bind` (VFIO_DEVICE_BIND_IOMMUFD): probes the device in the driver and creates
 * its DEVICE object. The stack must share the context's PhysMem (EINVAL).
 */
export async function deviceBindObject(ctx: IommufdCtx, a: DeviceBindArgs): Promise<IommufdDevice> {
  const what = 'VFIO_DEVICE_BIND_IOMMUFD';
  const stack = a.stack ?? null;
  const driver = a.driver ?? stack?.driver;
  if (driver === undefined) return fail('EINVAL', `${what}: neither a backend stack nor a driver was given`);
  if (stack !== null && stack.mem !== ctx.mem) fail('EINVAL', `${what}: backend ${stack.id} does not share the iommufd's PhysMem`);
  failpoint(ctx, 'device.bind'); // iommufd_device_bind's allocations (fail_nth)
  let dev: IommuDevice;
  try {
    dev = await driver.probeDevice(a.spec);
  } catch (e) {
    return driverFail(what, e);
  }
  let idev: IommufdDevice;
  try {
    idev = ctx.objects.alloc(new IommufdDevice(driver, dev, stack));
  } catch (e) {
    await driver.releaseDevice(dev);
    throw e;
  }
  idev.users++; // the binder is a user until unbind
  ctx.objects.finalize(idev);
  return idev;
}

const closeHooked = new WeakSet<IommufdCtx>();

/**
 * VFIO_DEVICE_BIND_IOMMUFD: returns the DEVICE id (`out_devid`). A device still bound when the
 * iommufd closes is unbound first (its VFIO fd would hold the context open in the kernel).
 */
export async function deviceBind(ctx: IommufdCtx, a: DeviceBindArgs): Promise<{ outDevId: number }> {
  const idev = await deviceBindObject(ctx, a);
  idev.userBound = true;
  const hooks = (ctx.objects as { beforeClose?: Set<() => void | Promise<void>> }).beforeClose;
  if (hooks !== undefined && !closeHooked.has(ctx)) {
    closeHooked.add(ctx);
    hooks.add(async () => {
      closeHooked.delete(ctx);
      const bound = [...ctx.objects.objects()].filter((o): o is IommufdDevice => o instanceof IommufdDevice && o.userBound);
      for (const d of bound) await deviceUnbindObject(ctx, d);
    });
  }
  return { outDevId: idev.id };
}

/**
 * `iommufd_device_unbind` (closing the VFIO device fd): detaches every PASID and the RID, drops the
 * binder's reference and destroys the DEVICE.
 */
export async function deviceUnbindObject(ctx: IommufdCtx, idev: IommufdDevice): Promise<void> {
  for (const pasid of [...idev.attached.keys()].sort((x, y) => y - x)) await deviceDetachObject(ctx, idev, pasid);
  await vdeviceDeviceGone(ctx, idev); // src/vdevice.ts: a VDEVICE left behind becomes a tombstone
  idev.users--;
  try {
    await ctx.objects.remove(idev.id, { expect: idev });
  } catch (e) {
    idev.users++;
    throw e;
  }
}

/** Unbind by id. */
export async function deviceUnbind(ctx: IommufdCtx, a: { devId: number }): Promise<void> {
  await deviceUnbindObject(ctx, getDevice(ctx, u32(a.devId, 'dev_id')));
}

// ---------------------------------------------------------------------------- reserved regions

/**
 * `iopt_table_enforce_dev_resv_regions`: reserves every reserved region of the device in `iopt`
 * (owner = the device). More than one software MSI window is EINVAL; a region over an area or
 * allowed range is EADDRINUSE. All or nothing.
 */
function enforceDevResvRegions(iopt: IoPagetable, idev: IommufdDevice): void {
  let swMsi = 0;
  try {
    for (const r of idev.driver.reservedRegions(idev.dev)) {
      if (r.type === 'msi' && ++swMsi > 1) fail('EINVAL', `device ${idev.id} reports more than one MSI window`);
      iopt.addReservedRange(idev, BigInt(r.start), BigInt(r.last));
    }
  } catch (e) {
    iopt.removeReservedOwner(idev);
    throw e;
  }
}

// ---------------------------------------------------------------------------- attach helpers

/** `iommufd_hwpt_pasid_compat`. */
function checkPasidCompat(hwpt: HwPagetable, idev: IommufdDevice, pasid: number): void {
  if (pasid === IOMMU_NO_PASID) {
    if (!hwpt.pasidCompat) {
      for (const p of idev.attached.keys()) {
        if (p !== IOMMU_NO_PASID) fail('EINVAL', `device ${idev.id}: PASID ${p} is attached, the RID needs a PASID-compatible HWPT (HWPT ${hwpt.id} is not)`);
      }
    }
  } else {
    if (!hwpt.pasidCompat) fail('EINVAL', `device ${idev.id}: HWPT ${hwpt.id} was not allocated with IOMMU_HWPT_ALLOC_PASID`);
    const rid = idev.attached.get(IOMMU_NO_PASID);
    if (rid !== undefined && !rid.pasidCompat) fail('EINVAL', `device ${idev.id}: the RID's HWPT ${rid.id} is not PASID-compatible`);
  }
}

/** Programs the IOMMU: the RID or a PASID of the device now translates through `hwpt`. */
async function driverSetDomain(hwpt: HwPagetable, idev: IommufdDevice, pasid: number): Promise<void> {
  const what = pasid === IOMMU_NO_PASID ? 'attach' : `attach PASID ${pasid}`;
  if (hwpt.driver !== idev.driver) fail('EINVAL', `${what}: HWPT ${hwpt.id} belongs to another IOMMU than device ${idev.id}`);
  const domain = hwpt.domain;
  if (domain === null) fail('EINVAL', `${what}: HWPT ${hwpt.id} has no domain`);
  try {
    if (pasid === IOMMU_NO_PASID) await idev.driver.attachDevice(idev.dev, domain);
    else await idev.driver.attachPasid(idev.dev, pasid, domain);
  } catch (e) {
    driverFail(`device ${idev.id} ${what} to HWPT ${hwpt.id}`, e);
  }
}

/** `iommufd_hwpt_attach_device` / `iommufd_hwpt_replace_device` (the group is the device). */
async function hwptSetDevice(hwpt: HwPagetable, idev: IommufdDevice, pasid: number): Promise<void> {
  checkPasidCompat(hwpt, idev, pasid);
  await driverSetDomain(hwpt, idev, pasid);
}

/**
 * `iommufd_hw_pagetable_attach`: attaches an unattached RID / PASID to `hwpt` (EBUSY if already
 * attached), reserving the device's regions first for a RID attach to a HWPT_PAGING.
 */
export async function hwptAttach(hwpt: HwPagetable, idev: IommufdDevice, pasid: number): Promise<void> {
  if (idev.attached.has(pasid)) {
    fail('EBUSY', `device ${idev.id} ${pasid === IOMMU_NO_PASID ? 'RID' : `PASID ${pasid}`} is already attached (use replace)`);
  }
  faultIopfCheck(hwpt, idev, 'attach'); // src/fault.ts: iommufd_fault_iopf_enable refusals
  const paging = findHwptPaging(hwpt);
  const attachResv = paging !== null && pasid === IOMMU_NO_PASID;
  if (attachResv) enforceDevResvRegions(paging.ioas.iopt, idev);
  try {
    await hwptSetDevice(hwpt, idev, pasid);
  } catch (e) {
    if (attachResv) paging.ioas.iopt.removeReservedOwner(idev);
    throw e;
  }
  hwpt.users++;
  idev.attached.set(pasid, hwpt);
  faultSyncDevice(idev); // src/fault.ts: IOPF on while an attachment has a FAULT
}

/**
 * `iommufd_hw_pagetable_detach`: the RID / PASID blocks DMA again; the device's reservations leave
 * the IOAS. Returns the HWPT it was attached to (its reference already dropped: an auto HWPT
 * without devices is gone), or null when it was not attached.
 */
export async function hwptDetach(ctx: IommufdCtx, idev: IommufdDevice, pasid: number): Promise<HwPagetable | null> {
  const hwpt = idev.attached.get(pasid);
  if (hwpt === undefined) return null;
  try {
    if (pasid === IOMMU_NO_PASID) await idev.driver.attachDevice(idev.dev, 'blocked');
    else await idev.driver.detachPasid(idev.dev, pasid);
  } catch {
    // Detach cannot fail in the kernel; a driver already shut down blocks DMA anyway.
  }
  idev.attached.delete(pasid);
  await faultAutoResponse(hwpt, idev, pasid); // src/fault.ts: pending page requests answered INVALID
  const paging = findHwptPaging(hwpt);
  if (paging !== null && pasid === IOMMU_NO_PASID) paging.ioas.iopt.removeReservedOwner(idev);
  await hwptPut(ctx, hwpt);
  return hwpt;
}

/**
 * `iommufd_device_do_replace`: moves an attached RID / PASID to `hwpt` atomically. Returns the old
 * HWPT for the caller to put (after the IOAS lock), or null for a no-op.
 */
async function doReplace(idev: IommufdDevice, pasid: number, hwpt: HwPagetable): Promise<HwPagetable | null> {
  const old = idev.attached.get(pasid);
  if (old === undefined) {
    fail('EINVAL', `device ${idev.id} ${pasid === IOMMU_NO_PASID ? 'RID' : `PASID ${pasid}`} is not attached (replace needs an attachment)`);
  }
  if (old === hwpt) return null;
  faultIopfCheck(hwpt, idev, 'replace'); // src/fault.ts: iommufd_fault_iopf_enable refusals
  const paging = findHwptPaging(hwpt);
  const oldPaging = findHwptPaging(old);
  const attachResv = paging !== null && pasid === IOMMU_NO_PASID;
  let addedResv = false;
  if (attachResv && (oldPaging === null || oldPaging.ioas !== paging.ioas)) {
    enforceDevResvRegions(paging.ioas.iopt, idev);
    addedResv = true;
  }
  try {
    await hwptSetDevice(hwpt, idev, pasid);
  } catch (e) {
    if (addedResv) paging!.ioas.iopt.removeReservedOwner(idev);
    throw e;
  }
  if (oldPaging !== null && pasid === IOMMU_NO_PASID && (paging === null || paging.ioas !== oldPaging.ioas)) {
    oldPaging.ioas.iopt.removeReservedOwner(idev);
  }
  idev.attached.set(pasid, hwpt);
  hwpt.users++;
  await faultAutoResponse(old, idev, pasid); // src/fault.ts: pending page requests answered INVALID
  return old;
}

type AttachMode = 'attach' | 'replace';

async function doAttachOrReplace(mode: AttachMode, idev: IommufdDevice, pasid: number, hwpt: HwPagetable): Promise<HwPagetable | null> {
  if (mode === 'attach') {
    await hwptAttach(hwpt, idev, pasid);
    return null;
  }
  return doReplace(idev, pasid, hwpt);
}

function immediateHooks(ctx: IommufdCtx): ImmediateAttach {
  return {
    attach: (hwpt, idev, pasid) => hwptAttach(hwpt, idev, pasid),
    detach: async (idev, pasid) => {
      await hwptDetach(ctx, idev, pasid);
    },
  };
}

/**
 * `iommufd_device_auto_get_domain`: tries every auto HWPT of the IOAS (EINVAL = incompatible,
 * try the next), else makes a new auto HWPT. Returns the HWPT used and the old one to put.
 */
async function autoGetDomain(
  ctx: IommufdCtx,
  mode: AttachMode,
  idev: IommufdDevice,
  pasid: number,
  ioas: Ioas,
): Promise<{ hwpt: HwPagetable; destroy: HwPagetable | null }> {
  return withIoasLock(ioas, async () => {
    for (const h of [...ioas.hwptList]) {
      if (!(h instanceof HwptPaging) || !h.autoDomain || !h.visible || h.users === 0) continue;
      try {
        const destroy = await doAttachOrReplace(mode, idev, pasid, h);
        return { hwpt: h, destroy };
      } catch (e) {
        if ((e as { errno?: string }).errno === 'EINVAL') continue;
        throw e;
      }
    }
    const immediate = mode === 'attach';
    const hwpt = await hwptPagingAlloc(ctx, ioas, idev, pasid, 0, immediate ? immediateHooks(ctx) : null, null);
    let destroy: HwPagetable | null = null;
    if (!immediate) {
      try {
        destroy = await doReplace(idev, pasid, hwpt);
      } catch (e) {
        await ctx.objects.abortAndDestroy(hwpt);
        throw e;
      }
    }
    hwpt.autoDomain = true;
    ctx.objects.finalize(hwpt);
    return { hwpt, destroy };
  });
}

/** `iommufd_device_change_pt`: resolves `ptId` (HWPT, or IOAS → auto domain); returns the HWPT id used. */
async function changePt(ctx: IommufdCtx, mode: AttachMode, idev: IommufdDevice, pasid: number, ptId: number): Promise<number> {
  const pt = ctx.objects.get(ptId, undefined, 'pt_id');
  let used: HwPagetable;
  let destroy: HwPagetable | null;
  if (pt.type === 'hwpt_paging' || pt.type === 'hwpt_nested') {
    used = pt as HwPagetable;
    destroy = await doAttachOrReplace(mode, idev, pasid, used);
  } else if (pt.type === 'ioas') {
    ({ hwpt: used, destroy } = await autoGetDomain(ctx, mode, idev, pasid, pt as Ioas));
  } else {
    return fail('EINVAL', `pt_id ${ptId} is a ${pt.type}, not an IOAS or a HWPT`);
  }
  // This destruction has to be after the IOAS lock is dropped (device.c).
  if (destroy !== null) await hwptPut(ctx, destroy);
  return used.id;
}

function pasidArg(pasid: number | undefined): number {
  return u32(pasid ?? IOMMU_NO_PASID, 'pasid');
}

/** `iommufd_device_attach` on a device object; returns the HWPT id used. */
export async function deviceAttachObject(ctx: IommufdCtx, idev: IommufdDevice, pasid: number, ptId: number): Promise<number> {
  const id = await changePt(ctx, 'attach', idev, pasid, ptId);
  idev.users++; // pairs with detach
  return id;
}

/** `iommufd_device_replace` on a device object; returns the HWPT id used. */
export function deviceReplaceObject(ctx: IommufdCtx, idev: IommufdDevice, pasid: number, ptId: number): Promise<number> {
  return changePt(ctx, 'replace', idev, pasid, ptId);
}

/** `iommufd_device_detach` on a device object (an unattached RID / PASID is a no-op). */
export async function deviceDetachObject(ctx: IommufdCtx, idev: IommufdDevice, pasid: number): Promise<void> {
  const hwpt = await hwptDetach(ctx, idev, pasid);
  if (hwpt !== null) idev.users--;
}

/**
 * Attach (VFIO_DEVICE_ATTACH_IOMMUFD_PT on an unattached device / PASID): `ptId` is a HWPT or an
 * IOAS (auto domain); returns the HWPT used. EBUSY if already attached (see {@link deviceReplace}).
 */
export async function deviceAttach(ctx: IommufdCtx, a: { devId: number; ptId: number; pasid?: number }): Promise<{ ptId: number }> {
  const idev = getDevice(ctx, u32(a.devId, 'dev_id'));
  return { ptId: await deviceAttachObject(ctx, idev, pasidArg(a.pasid), u32(a.ptId, 'pt_id')) };
}

/** Replace (VFIO_DEVICE_ATTACH_IOMMUFD_PT on an attached device / PASID); returns the HWPT used. */
export async function deviceReplace(ctx: IommufdCtx, a: { devId: number; ptId: number; pasid?: number }): Promise<{ ptId: number }> {
  const idev = getDevice(ctx, u32(a.devId, 'dev_id'));
  return { ptId: await deviceReplaceObject(ctx, idev, pasidArg(a.pasid), u32(a.ptId, 'pt_id')) };
}

/** Detach (VFIO_DEVICE_DETACH_IOMMUFD_PT): back to blocked DMA. */
export async function deviceDetach(ctx: IommufdCtx, a: { devId: number; pasid?: number }): Promise<void> {
  const idev = getDevice(ctx, u32(a.devId, 'dev_id'));
  await deviceDetachObject(ctx, idev, pasidArg(a.pasid));
}

// ---------------------------------------------------------------------------- GET_HW_INFO

/** Result of IOMMU_GET_HW_INFO. */
export interface HwInfoResult {
  /** The driver's info struct (the ABI copies `min(data_len, data.length)` bytes, zeroes the rest). */
  data: Uint8Array;
  /** The kernel's length of the info struct (`data_len` written back). */
  dataLen: number;
  outDataType: number;
  outMaxPasidLog2: number;
  outCapabilities: bigint;
}

/**
 * IOMMU_GET_HW_INFO (`iommufd_get_hw_info`): EOPNOTSUPP for unknown flags or a requested type the
 * driver does not report (without IOMMU_HW_INFO_FLAG_INPUT_TYPE the input type is DEFAULT), ENOENT
 * unless `devId` is a DEVICE. Typed callers get the whole struct in `data`.
 */
export async function getHwInfo(
  ctx: IommufdCtx,
  a: { flags?: number; devId: number; dataLen?: number; inDataType?: number },
): Promise<HwInfoResult> {
  const what = 'IOMMU_GET_HW_INFO';
  const flags = u32(a.flags, 'flags');
  if (flags & ~IOMMU_HW_INFO_FLAG_INPUT_TYPE) fail('EOPNOTSUPP', `${what}: unknown flags ${hex(flags)}`);
  const inType = flags & IOMMU_HW_INFO_FLAG_INPUT_TYPE ? u32(a.inDataType, 'in_data_type') : IOMMU_HW_INFO_TYPE_DEFAULT;
  const idev = getDevice(ctx, u32(a.devId, 'dev_id'));
  let info;
  try {
    info = idev.driver.hwInfo(idev.dev);
  } catch (e) {
    return driverFail(what, e);
  }
  if (inType !== IOMMU_HW_INFO_TYPE_DEFAULT && inType !== info.type) {
    fail('EOPNOTSUPP', `${what}: type ${hex(inType)} is not reported by the ${idev.driver.backendId} driver (it reports ${hex(info.type)})`);
  }
  // The core reports dirty tracking and (for PCI devices) PASID EXEC / PRIV; the driver computed them.
  let caps = BigInt(info.capabilities >>> 0) & BigInt(IOMMU_HW_CAP_DIRTY_TRACKING | (info.maxPasidLog2 > 0 ? 0b110 : 0));
  // device.c iommufd_get_hw_info: "Report when ATS cannot be used for this device" —
  // `!device_iommu_capable(dev, IOMMU_CAP_PCI_ATS_SUPPORTED)`. Modelled from the device's ATS
  // capability (the selftest mock never reports ATS support, so its devices get the bit).
  if (idev.dev.spec.ats !== true) caps |= BigInt(IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED);
  return {
    data: info.data.slice(),
    dataLen: info.data.length,
    outDataType: info.type,
    outMaxPasidLog2: info.maxPasidLog2,
    outCapabilities: caps,
  };
}
