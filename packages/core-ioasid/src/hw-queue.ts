/**
 * The HW_QUEUE object (drivers/iommu/iommufd/viommu.c: iommufd_hw_queue_alloc_ioctl,
 * iommufd_hw_queue_alloc_phys, iommufd_hw_queue_destroy; device.c: the internal access;
 * pages.c: `area->num_locks`).
 *
 * Kernel behaviour kept:
 * - IOMMU_HW_QUEUE_ALLOC: flags or the DEFAULT type → EOPNOTSUPP; length 0 → EINVAL;
 *   `nesting_parent_iova + length - 1` overflowing → EOVERFLOW; VIOMMU missing → ENOENT; the
 *   vIOMMU takes no HW queue of that type → EOPNOTSUPP.
 * - The guest queue memory `[PAGE_ALIGN_DOWN(iova), PAGE_ALIGN(iova + length))` of the parent
 *   HWPT's IOAS is pinned through an internal ACCESS (an object of its own, created after the
 *   HW_QUEUE object): a hole → ENOENT, size overflow → ERANGE, pages not physically contiguous →
 *   EFAULT. The areas pinned are locked: IOMMU_IOAS_UNMAP of them answers EBUSY until the queue
 *   is destroyed.
 * - The driver then checks the index (`hw_queue_init_phys`); a queue the driver makes depend on
 *   another holds a users reference on it (`iommufd_hw_queue_depend`), so that one answers EBUSY
 *   to DESTROY until the dependent queue is gone.
 */
import type { IommuHwQueue } from '@iommulab/driver-api';
import {
  accessAttach,
  accessCreateObject,
  accessDestroyObject,
  accessPinPages,
  setAccessCloseCallback,
  unpinPages,
  type IommufdAccess,
} from './access.js';
import type { IommufdCtx } from './context.js';
import { fail } from './errors.js';
import { driverFail } from './hw-pagetable.js';
import type { IoptArea } from './io-pagetable/area.js';
import { IommufdObject } from './object-table.js';
import { IOMMU_HW_QUEUE_TYPE_DEFAULT } from './uapi/constants.js';
import { hex, PAGE_SIZE, PAGE_SIZE_N, u32, u64, U64_MAX } from './uapi/u64.js';
import type { IommufdViommu } from './viommu.js';

/** A hardware queue (`struct iommufd_hw_queue`). */
export class IommufdHwQueue extends IommufdObject {
  readonly type = 'hw_queue' as const;
  readonly viommu: IommufdViommu;
  /** `IOMMU_HW_QUEUE_TYPE_*`. */
  readonly qtype: number;
  readonly index: number;
  /** `base_addr`: the nesting-parent IOVA. */
  readonly baseAddr: bigint;
  readonly length: bigint;
  /** The internal access pinning the queue memory. */
  access: IommufdAccess | null = null;
  /** The pinned range (`PAGE_ALIGN_DOWN(base_addr)`, page multiple). */
  pinIova = 0n;
  pinLength = 0n;
  /** Areas locked against unmap. */
  lockedAreas: IoptArea[] = [];
  /** The driver's queue. */
  drvQueue: IommuHwQueue | null = null;
  /** The queue this one depends on (holds a users reference on it). */
  dependsOn: IommufdHwQueue | null = null;
  private holdsViommu = false;

  constructor(viommu: IommufdViommu, qtype: number, index: number, baseAddr: bigint, length: bigint) {
    super();
    this.viommu = viommu;
    this.qtype = qtype;
    this.index = index;
    this.baseAddr = baseAddr;
    this.length = length;
  }

  /** @internal */
  holdViommu(): void {
    this.viommu.users++;
    this.viommu.hwQueues.add(this);
    this.holdsViommu = true;
  }

  /** `iommufd_hw_queue_destroy`: the driver's destroy, then the pin goes, then the vIOMMU reference. */
  async destroy(): Promise<void> {
    try {
      if (this.drvQueue !== null) {
        const q = this.drvQueue;
        this.drvQueue = null;
        await q.destroy();
      }
    } finally {
      if (this.dependsOn !== null) {
        this.dependsOn.users--;
        this.dependsOn = null;
      }
      await releasePin(this);
      if (this.holdsViommu) {
        this.holdsViommu = false;
        this.viommu.hwQueues.delete(this);
        this.viommu.users--;
      }
    }
  }
}

/** `iommufd_hw_queue_destroy_access`: unlock, unpin, detach and destroy the internal access. */
async function releasePin(q: IommufdHwQueue): Promise<void> {
  for (const area of q.lockedAreas) area.numLocks--;
  q.lockedAreas = [];
  const access = q.access;
  if (access === null) return;
  q.access = null;
  if (access.pins.some((p) => p.iova === q.pinIova && p.length === q.pinLength)) unpinPages(access, q.pinIova, q.pinLength);
  await accessDestroyObject(access);
}

/**
 * `iommufd_hw_queue_alloc_phys`: pins the queue memory through an internal access and returns the
 * physical address of `base_addr`.
 */
async function allocPhys(ctx: IommufdCtx, q: IommufdHwQueue): Promise<number> {
  const what = 'IOMMU_HW_QUEUE_ALLOC';
  const aligned = q.baseAddr & ~(PAGE_SIZE_N - 1n);
  const offset = q.baseAddr - aligned;
  let length = offset + q.length;
  if (length > U64_MAX) fail('ERANGE', `${what}: offset + length overflows`);
  length += PAGE_SIZE_N - 1n;
  if (length > U64_MAX) fail('ERANGE', `${what}: length rounded to pages overflows`);
  const npages = length / PAGE_SIZE_N;
  length = npages * PAGE_SIZE_N;
  // iommufd_access_create_internal: an ACCESS object of its own (PAGE_SIZE alignment).
  const access = accessCreateObject(ctx, { needsPinPages: true, unmap: () => {} });
  // The HW queue releases it (ictx → hw_queue → access), not the context's access cleanup.
  setAccessCloseCallback(access, async () => {});
  q.access = access;
  await accessAttach(access, q.viommu.hwpt.ioas.id);
  const pages = accessPinPages(access, aligned, length, 0);
  q.pinIova = aligned;
  q.pinLength = length;
  for (let i = 1; i < pages.length; i++) {
    if (pages[i] !== pages[i - 1]! + PAGE_SIZE) fail('EFAULT', `${what}: the queue memory at ${hex(q.baseAddr)} is not physically contiguous`);
  }
  // The internal access locks the areas it pinned (pages.c: area->num_locks).
  const iopt = q.viommu.hwpt.ioas.iopt;
  const last = aligned + length - 1n;
  for (let area = iopt.areas.containing(aligned); area !== undefined && area.start <= last; area = iopt.areas.next(area)) {
    area.numLocks++;
    q.lockedAreas.push(area);
  }
  return pages[0]! + Number(offset);
}

/** Arguments of IOMMU_HW_QUEUE_ALLOC (`struct iommu_hw_queue_alloc`). */
export interface HwQueueAllocArgs {
  flags?: number;
  viommuId: number;
  type: number;
  index: number;
  nestingParentIova: bigint | number;
  length: bigint | number;
}

/** IOMMU_HW_QUEUE_ALLOC (`iommufd_hw_queue_alloc_ioctl`). */
export async function hwQueueAlloc(ctx: IommufdCtx, a: HwQueueAllocArgs): Promise<{ outHwQueueId: number }> {
  const what = 'IOMMU_HW_QUEUE_ALLOC';
  const flags = u32(a.flags, 'flags');
  const type = u32(a.type, 'type');
  const index = u32(a.index, 'index');
  const iova = u64(a.nestingParentIova, 'nesting_parent_iova');
  const length = u64(a.length, 'length');
  if (flags !== 0 || type === IOMMU_HW_QUEUE_TYPE_DEFAULT) fail('EOPNOTSUPP', `${what}: flags ${hex(flags)} / type ${hex(type)}`);
  if (length === 0n) fail('EINVAL', `${what}: length is 0`);
  if (iova + length - 1n > U64_MAX) fail('EOVERFLOW', `${what}: nesting_parent_iova ${hex(iova)} + length ${hex(length)} overflows`);
  const viommu = ctx.objects.get<IommufdViommu>(u32(a.viommuId, 'viommu_id'), 'viommu', 'VIOMMU');
  const drv = viommu.drv;
  if (drv === null || typeof drv.hwQueueAlloc !== 'function' || (drv.hwQueueTypes !== undefined && !drv.hwQueueTypes.includes(type))) {
    fail('EOPNOTSUPP', `${what}: vIOMMU ${viommu.id} takes no HW queue of type ${hex(type)}`);
  }
  const q = ctx.objects.alloc(new IommufdHwQueue(viommu, type, index, iova, length));
  try {
    const basePa = await allocPhys(ctx, q);
    q.holdViommu();
    try {
      q.drvQueue = await drv.hwQueueAlloc(type, index, basePa, Number(length), iova);
    } catch (e) {
      driverFail(what, e);
    }
    const dep = q.drvQueue.dependsOn;
    if (dep !== undefined) {
      const prev = [...viommu.hwQueues].find((x) => x !== q && x.index === dep && x.visible);
      if (prev !== undefined) {
        prev.users++;
        q.dependsOn = prev;
      }
    }
  } catch (e) {
    await ctx.objects.abortAndDestroy(q);
    throw e;
  }
  ctx.objects.finalize(q);
  return { outHwQueueId: q.id };
}
