/**
 * The VDEVICE object (drivers/iommu/iommufd/viommu.c: iommufd_vdevice_alloc_ioctl /
 * iommufd_vdevice_destroy; device.c: iommufd_device_remove_vdev).
 *
 * Kernel behaviour kept:
 * - IOMMU_VDEVICE_ALLOC: `virt_id` > ULONG_MAX → EINVAL; VIOMMU missing → ENOENT; DEVICE missing
 *   → ENOENT; the device behind another IOMMU → EINVAL; the device being destroyed → ENOENT; the
 *   device has a VDEVICE already → EEXIST; `virt_id` used in the VIOMMU → EEXIST; then the
 *   driver's `vdevice_init`.
 * - A VDEVICE holds a users reference on its VIOMMU and on its DEVICE (the kernel's wait
 *   reference). When the DEVICE goes away first ({@link vdeviceDeviceGone}, called before the
 *   device is destroyed) the VDEVICE is destroyed and its id becomes a tombstone: DESTROY of it
 *   answers ENOENT and the id is not reused until the context closes.
 */
import type { IommufdCtx } from './context.js';
import type { IommufdDevice } from './device.js';
import { fail } from './errors.js';
import { driverFail } from './hw-pagetable.js';
import { IommufdObject } from './object-table.js';
import { hex, u32, u64, ULONG_MAX } from './uapi/u64.js';
import type { IommufdViommu } from './viommu.js';

/** `idev->vdev`. */
const deviceVdev = new WeakMap<IommufdDevice, IommufdVdevice>();

/** A virtual device (`struct iommufd_vdevice`). */
export class IommufdVdevice extends IommufdObject {
  readonly type = 'vdevice' as const;
  readonly viommu: IommufdViommu;
  readonly idev: IommufdDevice;
  /** The guest-visible id (`virt_id`). */
  readonly virtId: bigint;
  /** In the vIOMMU's table (`xa_cmpxchg` succeeded). */
  inTable = false;
  /** The driver's `vdevice_init` succeeded (`vdev->destroy` is set). */
  inited = false;
  private holds = false;

  constructor(viommu: IommufdViommu, idev: IommufdDevice, virtId: bigint) {
    super();
    this.viommu = viommu;
    this.idev = idev;
    this.virtId = virtId;
  }

  /** @internal takes the references (`refcount_inc(&viommu->obj.users)`, the device reference). */
  hold(): void {
    this.viommu.users++;
    this.idev.users++;
    deviceVdev.set(this.idev, this);
    this.holds = true;
  }

  /** `iommufd_vdevice_destroy` / `_abort`. */
  async destroy(): Promise<void> {
    try {
      if (this.inited) {
        this.inited = false;
        await this.viommu.drv?.vdeviceDestroy?.(this.idev.dev);
      }
    } finally {
      if (this.inTable && this.viommu.vdevs.get(this.virtId) === this) this.viommu.vdevs.delete(this.virtId);
      this.inTable = false;
      if (this.holds) {
        this.holds = false;
        if (deviceVdev.get(this.idev) === this) deviceVdev.delete(this.idev);
        this.viommu.users--;
        this.idev.users--;
      }
    }
  }
}

/** The VDEVICE of a device, if it has one (`idev->vdev`). */
export function vdeviceOf(idev: IommufdDevice): IommufdVdevice | undefined {
  return deviceVdev.get(idev);
}

/** IOMMU_VDEVICE_ALLOC (`iommufd_vdevice_alloc_ioctl`). */
export async function vdeviceAlloc(
  ctx: IommufdCtx,
  a: { viommuId: number; devId: number; virtId: bigint | number },
): Promise<{ outVdeviceId: number }> {
  const what = 'IOMMU_VDEVICE_ALLOC';
  const virtId = u64(a.virtId, 'virt_id');
  if (virtId > ULONG_MAX) fail('EINVAL', `${what}: virt_id ${hex(virtId)} does not fit an unsigned long`);
  const viommu = ctx.objects.get<IommufdViommu>(u32(a.viommuId, 'viommu_id'), 'viommu', 'VIOMMU');
  const idev = ctx.objects.get<IommufdDevice>(u32(a.devId, 'dev_id'), 'device', 'DEVICE');
  if (viommu.driver !== idev.driver) fail('EINVAL', `${what}: device ${idev.id} is not behind the IOMMU of vIOMMU ${viommu.id}`);
  if (idev.destroying) fail('ENOENT', `${what}: device ${idev.id} is being destroyed`);
  if (deviceVdev.has(idev)) fail('EEXIST', `${what}: device ${idev.id} has VDEVICE ${deviceVdev.get(idev)!.id} already`);
  const vdev = ctx.objects.alloc(new IommufdVdevice(viommu, idev, virtId));
  vdev.hold();
  try {
    if (viommu.vdevs.has(virtId)) fail('EEXIST', `${what}: virt_id ${hex(virtId)} is in use on vIOMMU ${viommu.id}`);
    viommu.vdevs.set(virtId, vdev);
    vdev.inTable = true;
    const drv = viommu.drv;
    if (drv !== null && typeof drv.vdeviceInit === 'function') {
      try {
        await drv.vdeviceInit(idev.dev, virtId);
      } catch (e) {
        driverFail(what, e);
      }
      vdev.inited = true;
    }
  } catch (e) {
    await ctx.objects.abortAndDestroy(vdev);
    throw e;
  }
  ctx.objects.finalize(vdev);
  return { outVdeviceId: vdev.id };
}

/**
 * `iommufd_device_remove_vdev` (the DEVICE's pre-destroy): the device is being destroyed; a
 * VDEVICE still alive is destroyed and its id left as a tombstone.
 */
export async function vdeviceDeviceGone(ctx: IommufdCtx, idev: IommufdDevice): Promise<void> {
  idev.destroying = true;
  const vdev = deviceVdev.get(idev);
  if (vdev === undefined || !vdev.visible) return;
  await ctx.objects.remove(vdev.id, { expect: vdev, tombstone: true });
}
