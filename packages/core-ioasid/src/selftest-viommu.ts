/**
 * The fault / vIOMMU test ops of the iommufd selftest (drivers/iommu/iommufd/selftest.c:
 * iommufd_test_trigger_iopf, iommufd_test_dev_check_cache, iommufd_test_trigger_vevent), as
 * methods of {@link ViommuTestOps} over one IommuFd whose devices sit behind hw-mock drivers.
 *
 * Contracts (op numbers of iommufd_test.h):
 * - TRIGGER_IOPF (15) `triggerIopf(devId, pasid, grpid, perm, addr)`: the device sends one page
 *   request (the last of its group; PASID-tagged unless `pasid` is 0) through the hardware; the
 *   driver drains it before the call returns, so it has reached the FAULT of the HWPT the device
 *   is attached to (or been answered INVALID). ENOENT unless `devId` is a DEVICE; EOPNOTSUPP for
 *   a driver that cannot inject page requests.
 * - DEV_CHECK_CACHE (16) `devCheckCache(devId, slot, value)`: mock device cache slot `slot`
 *   equals `value`. EINVAL for a slot > 3 (checked first) or another value; ENOENT unless a
 *   DEVICE.
 * - TRIGGER_VEVENT (17) `triggerVevent(devId)`: the driver reports one selftest vEVENT
 *   `{u32 virt_id}` for the device on the vIOMMU its RID is attached through. ENOENT when it is
 *   not attached to a vIOMMU nested HWPT; EOPNOTSUPP when the vIOMMU has no queue of that type.
 */
import type { IommuDevice, IommuDriver } from '@iommulab/driver-api';
import type { IommufdDevice } from './device.js';
import { fail } from './errors.js';
import { faultFlush } from './fault.js';
import { driverFail } from './hw-pagetable.js';
import type { IommuFd } from './iommufd.js';
import { u32, u64 } from './uapi/u64.js';

/** IOMMU_TEST_OP_* numbers of the ops implemented here. */
export const IOMMU_TEST_OP_TRIGGER_IOPF = 15;
export const IOMMU_TEST_OP_DEV_CHECK_CACHE = 16;
export const IOMMU_TEST_OP_TRIGGER_VEVENT = 17;
/** `MOCK_DEV_CACHE_ID_MAX`. */
const MOCK_DEV_CACHE_ID_MAX = 3;

/** What the ops need of a mock driver (hw-mock's MockDriver). */
interface MockDriverLike extends IommuDriver {
  triggerPageRequest(dev: IommuDevice, req: { pasid: number; grpid: number; perm: number; addr: number; last?: boolean }): Promise<boolean>;
  triggerViommuEvent(dev: IommuDevice): void;
  deviceCacheValue(dev: IommuDevice, id: number): number;
}

/** The fault / vIOMMU test ops bound to one IommuFd. */
export class ViommuTestOps {
  constructor(readonly fd: IommuFd) {}

  private device(devId: number): IommufdDevice {
    if (this.fd.closed) fail('EBADF', 'IOMMU_TEST_CMD: the iommufd is closed');
    return this.fd.ctx.objects.get<IommufdDevice>(u32(devId, 'dev_id'), 'device', 'DEVICE');
  }

  private mockDriver(idev: IommufdDevice, op: keyof MockDriverLike): MockDriverLike {
    const drv = idev.driver as Partial<MockDriverLike>;
    if (typeof drv[op] !== 'function') fail('EOPNOTSUPP', `${String(op)}: the ${idev.driver.backendId} driver is not the mock`);
    return drv as MockDriverLike;
  }

  /** IOMMU_TEST_OP_TRIGGER_IOPF (`iommufd_test_trigger_iopf`). */
  async triggerIopf(devId: number, pasid: number, grpid: number, perm: number, addr: bigint | number): Promise<void> {
    const idev = this.device(devId);
    const p = u32(pasid, 'pasid');
    const g = u32(grpid, 'grpid');
    const pm = u32(perm, 'perm');
    const a = Number(u64(addr, 'addr'));
    const drv = this.mockDriver(idev, 'triggerPageRequest');
    try {
      await drv.triggerPageRequest(idev.dev, { pasid: p === 0 ? -1 : p, grpid: g, perm: pm, addr: a, last: true });
      // Drained now: routed to the FAULT, or answered INVALID (by the fault layer, or by the
      // driver for a device without IOPF).
      await drv.drainFaults();
      await faultFlush(this.fd.ctx);
    } catch (e) {
      driverFail('IOMMU_TEST_OP_TRIGGER_IOPF', e);
    }
  }

  /** IOMMU_TEST_OP_DEV_CHECK_CACHE (`iommufd_test_dev_check_cache`). */
  async devCheckCache(devId: number, slot: number, value: number): Promise<void> {
    const id = u32(slot, 'cache id');
    if (id > MOCK_DEV_CACHE_ID_MAX) fail('EINVAL', `DEV_CHECK_CACHE: cache id ${id} > ${MOCK_DEV_CACHE_ID_MAX}`);
    const idev = this.device(devId);
    const drv = this.mockDriver(idev, 'deviceCacheValue');
    let v: number;
    try {
      v = drv.deviceCacheValue(idev.dev, id);
    } catch (e) {
      return driverFail('DEV_CHECK_CACHE', e);
    }
    if (v !== u32(value, 'cache') >>> 0) fail('EINVAL', `DEV_CHECK_CACHE: device ${idev.id} slot ${id} is 0x${v.toString(16)}, expected 0x${value.toString(16)}`);
  }

  /** IOMMU_TEST_OP_TRIGGER_VEVENT (`iommufd_test_trigger_vevent`). */
  async triggerVevent(devId: number): Promise<void> {
    const idev = this.device(devId);
    const drv = this.mockDriver(idev, 'triggerViommuEvent');
    try {
      drv.triggerViommuEvent(idev.dev);
    } catch (e) {
      driverFail('IOMMU_TEST_OP_TRIGGER_VEVENT', e);
    }
  }
}
