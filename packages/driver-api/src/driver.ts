import type { PhysMem, RegisterFile } from '@iommulab/runtime';
import type { BackendCapabilities } from './capabilities.js';
import type { DeviceSpec, HwInfo, IommuDevice, ReservedRegion } from './device.js';
import type { AttachTarget, DomainAllocFlags, NestedDomain, PagingDomain, PagingUserData } from './domain.js';
import type { IommuFault, PageResponse } from './fault.js';
import type { IommuViommu, ViommuAllocEnv } from './viommu.js';

/**
 * What a host driver is given: the same things a kernel driver has. It reaches its hardware only
 * through `regs` (MMIO) and `mem` (tables and queues in host RAM); completion and interrupts
 * arrive through `regs.irq`. The driver never holds the hardware object.
 */
export interface DriverContext {
  /** Instance name, for messages. */
  readonly instanceId: string;
  readonly mem: PhysMem;
  readonly regs: RegisterFile;
  /** Backend-specific options (queue sizes, feature switches...). */
  readonly options: Readonly<Record<string, unknown>>;
  /** Upper bound for any wait on the hardware (sync completion, enable ack), in ms. */
  readonly timeoutMs: number;
}

/**
 * The host driver half of a backend: what Linux's `iommu_ops` offers the iommu core and
 * iommufd, minus what has no meaning here (bus notifiers, default domain policy, sysfs).
 *
 * Every method that refuses a request throws {@link IommuError} with the errno Linux returns,
 * and leaves every object as it was. Methods that must wait for the hardware (invalidation,
 * attach) are async and bounded by `DriverContext.timeoutMs`.
 */
export interface IommuDriver {
  /** The backend id (`BackendPlugin.id`). */
  readonly backendId: string;
  /** What the hardware this driver probed can do (may be narrower than the plugin's maximum). */
  readonly capabilities: BackendCapabilities;

  /** `probe_device`: `EBUSY` if the RID is already probed, `ENODEV`/`EINVAL` if out of range. */
  probeDevice(spec: DeviceSpec): Promise<IommuDevice>;
  /** `release_device`: blocks DMA from the device and forgets it. */
  releaseDevice(dev: IommuDevice): Promise<void>;
  /** `hw_info`, as `IOMMU_GET_HW_INFO` reports it. */
  hwInfo(dev: IommuDevice): HwInfo;
  /** `get_resv_regions`: IOVA ranges the device must not use. */
  reservedRegions(dev: IommuDevice): readonly ReservedRegion[];

  /**
   * `domain_alloc_paging_flags`. `dev` (when given) is the device the domain is created for, so
   * its capabilities can be checked: `EOPNOTSUPP` for flags the IOMMU or device cannot honour.
   * `userData` is driver-specific paging data; a driver that takes none must refuse it with
   * `EOPNOTSUPP` (bad contents: `EINVAL`, or `E2BIG` for a non-zero tail beyond its struct).
   */
  domainAllocPaging(dev: IommuDevice | null, flags?: DomainAllocFlags, userData?: PagingUserData): Promise<PagingDomain>;

  /**
   * `domain_alloc_nested`: a nested domain over `parent` (which must have been allocated with
   * `nestParent`, else `EINVAL`) from vendor data of `dataType` (`EOPNOTSUPP` for an unknown
   * type, `EINVAL` for bad contents or length).
   */
  domainAllocNested(
    dev: IommuDevice,
    parent: PagingDomain,
    dataType: number,
    data: Uint8Array,
    flags?: DomainAllocFlags,
  ): Promise<NestedDomain>;

  /**
   * Attaches the device's RID to `target` (replacing what it had: `attach_dev`). `EINVAL` when
   * the device cannot use the domain (e.g. dirty tracking on a `noDirty` device).
   */
  attachDevice(dev: IommuDevice, target: AttachTarget): Promise<void>;

  /**
   * `set_dev_pasid`: attaches (or replaces) `pasid` of the device to `target`. `EINVAL` when the
   * device has no PASID or the domain was not allocated with `pasid`; the old attachment stays on
   * failure.
   */
  attachPasid(dev: IommuDevice, pasid: number, target: AttachTarget): Promise<void>;

  /** `remove_dev_pasid`: the PASID blocks DMA again. Detaching an unattached PASID succeeds. */
  detachPasid(dev: IommuDevice, pasid: number): Promise<void>;

  /**
   * Whether the device can raise recoverable I/O page faults through this IOMMU
   * (`IOMMU_DEV_FEAT_IOPF`: PCIe PRI, or a stall-capable stream). Optional: a driver without it
   * accepts every device. iommufd refuses to attach a device that cannot (EINVAL) to a HWPT with a
   * fault object.
   */
  iopfCapable?(dev: IommuDevice): boolean;

  /** Sends a page response to the device (`page_response`): `ENODEV` for an unknown device. */
  pageResponse(dev: IommuDevice, response: PageResponse): Promise<void>;

  /**
   * Subscribes to faults the driver drains from the hardware (page requests, non-recoverable
   * events, queue overflows). Returns an unsubscribe function. A handler that returns `false`
   * for a page request did not take it (`iommu_report_device_fault` failed): when no handler
   * takes a Last page request, the driver answers it itself (INVALID; a stall is aborted), as it
   * does when nobody listens.
   */
  onFault(handler: (fault: IommuFault) => unknown): () => void;

  /** Drains the hardware's fault/event queues now (they are also drained on interrupt). */
  drainFaults(): Promise<number>;

  /**
   * The `IOMMU_VIOMMU_TYPE_*` values {@link IommuDriver.viommuAlloc} takes (`get_viommu_size`
   * != 0): the host refuses another type (`EOPNOTSUPP`) before it looks at the parent HWPT.
   */
  readonly viommuTypes?: readonly number[];

  /**
   * `viommu_init` (optional; without it the driver has no vIOMMU): a vIOMMU of `type` for the
   * IOMMU instance behind `dev`, over the nest-parent domain `parent` (`EINVAL` if it is not a
   * nest parent of this driver). `data` is the type's driver data (empty when none was given).
   * `EOPNOTSUPP` for an unknown type; data errors as the type defines them.
   */
  viommuAlloc?(dev: IommuDevice, parent: PagingDomain, type: number, data: Uint8Array, env?: ViommuAllocEnv): Promise<IommuViommu>;

  /** Disables the hardware and releases every table and queue. Further calls throw `ENODEV`. */
  shutdown(): Promise<void>;
}
