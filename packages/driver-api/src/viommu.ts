import type { IommuDevice } from './device.js';
import type { DomainAllocFlags, NestedDomain, UserInvalidateResult } from './domain.js';

/**
 * vIOMMU support in the backend contract (Linux `struct iommufd_viommu_ops` and the
 * `get_viommu_size` / `viommu_init` iommu_ops). Everything here is optional for a backend: a
 * driver without `IommuDriver.viommuAlloc` has no vIOMMU (the host answers `EOPNOTSUPP`).
 *
 * A vIOMMU is a VM-private slice of one physical IOMMU instance over a nest-parent paging domain:
 * it owns the guest-ID namespace (virtual device ids), takes vIOMMU-wide invalidations, may hand
 * out nested domains, hardware queues and an MMIO page the guest maps, and reports vendor events
 * for the devices it knows.
 */

/** What the host offers a driver while it creates a vIOMMU (iommufd's driver.c helpers). */
export interface ViommuAllocEnv {
  /**
   * `iommufd_viommu_alloc_mmap`: makes `length` bytes of physical memory at `pa` (both page
   * aligned) mappable through the host's file at the returned offset (the driver reports it to
   * user space in its out data). The host releases the offset when the vIOMMU is destroyed.
   * @throws IommuError EINVAL for an unaligned `pa` / `length`
   */
  allocMmap(pa: number, length: number): number;
}

/** A vendor event the driver reports for a device (`iommufd_viommu_report_event`). */
export interface ViommuEvent {
  /** `IOMMU_VEVENTQ_TYPE_*` of the event. */
  readonly type: number;
  /** The device the event is about (the driver has put its virtual id in `data`). */
  readonly dev: IommuDevice;
  /** The type-specific event record, in its uAPI byte layout (e.g. `iommu_vevent_arm_smmuv3`). */
  readonly data: Uint8Array;
}

/**
 * A handler of vIOMMU events. It throws an `IommuError` when the event was not queued (the
 * driver passes it on to whoever triggered the event): `EOPNOTSUPP` when no event queue of that
 * type exists, `EINVAL` for an empty record.
 */
export type ViommuEventHandler = (event: ViommuEvent) => void;

/** A hardware queue the guest owns, created on a vIOMMU (`struct iommufd_hw_queue` driver part). */
export interface IommuHwQueue {
  /** The queue index the guest chose. */
  readonly index: number;
  /**
   * The index of another queue of the same vIOMMU this one depends on (it must not be destroyed
   * before this one: the host then answers `EBUSY`), as `iommufd_hw_queue_depend`.
   */
  readonly dependsOn?: number;
  /** Releases the queue (the host unpins its memory afterwards). */
  destroy(): void | Promise<void>;
}

/** One vIOMMU of a driver (`struct iommufd_viommu` + its ops). */
export interface IommuViommu {
  /** `IOMMU_VIOMMU_TYPE_*`. */
  readonly type: number;
  /**
   * The driver data written back to user space (`iommu_copy_struct_to_user`), in the type's uAPI
   * layout; absent when the call carried no data.
   */
  readonly outData?: Uint8Array;
  /**
   * The `IOMMU_HW_QUEUE_TYPE_*` values {@link IommuViommu.hwQueueAlloc} takes
   * (`get_hw_queue_size` != 0): the host checks the type before it pins the queue memory.
   */
  readonly hwQueueTypes?: readonly number[];
  /** The MMIO region user space may mmap (its offset from {@link ViommuAllocEnv.allocMmap}). */
  readonly mmapRegion?: { readonly offset: number; readonly length: number };

  /**
   * `cache_invalidate`: processes `count` entries of `entryLen` bytes in the vendor format
   * `dataType` (`IOMMU_VIOMMU_INVALIDATE_DATA_*`), in order, stopping at the first bad one.
   * `count` 0 only validates `dataType`.
   */
  cacheInvalidate(dataType: number, entryLen: number, entries: Uint8Array, count: number): Promise<UserInvalidateResult>;

  /**
   * `vdevice_init`: `dev` is known to the guest as `virtId` from now on (the host has checked the
   * id is unique in this vIOMMU and the device has no other virtual id).
   */
  vdeviceInit?(dev: IommuDevice, virtId: bigint): Promise<void>;
  /** The virtual device of `dev` goes away. */
  vdeviceDestroy?(dev: IommuDevice): void | Promise<void>;

  /**
   * `alloc_domain_nested`: a nested domain over the vIOMMU's parent from vendor data
   * (`EOPNOTSUPP` for an unknown type or flags, `EINVAL` for bad contents or length).
   */
  domainAllocNested?(dev: IommuDevice, dataType: number, data: Uint8Array, flags?: DomainAllocFlags): Promise<NestedDomain>;

  /**
   * `hw_queue_init_phys`: a hardware queue of `type` at physical address `basePa` (`length`
   * bytes; the host pinned it and checked it is contiguous). `iova` is the nesting-parent IOVA
   * the guest gave. Index rules are the driver's: typically `EINVAL` for an index out of range,
   * `EEXIST` for a used one, `EIO` when an earlier index is missing. `EOPNOTSUPP` for an unknown
   * type.
   */
  hwQueueAlloc?(type: number, index: number, basePa: number, length: number, iova?: bigint): Promise<IommuHwQueue>;

  /**
   * Subscribes to the vendor events the driver reports for devices of this vIOMMU. Returns an
   * unsubscribe function.
   */
  onViommuEvent?(handler: ViommuEventHandler): () => void;

  /** Releases the vIOMMU (every vdevice, queue and nested domain is gone by then). */
  destroy(): Promise<void>;
}
