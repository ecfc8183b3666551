/**
 * @packageDocumentation
 * `@iommulab/core-ioasid`: a model of Linux /dev/iommu (iommufd) with the kernel's errno
 * semantics. {@link IommuFd} is one open /dev/iommu: one async method per ioctl (camelCase name,
 * camelCase struct fields) and the binary ABI (`ioctl(cmd, bytes)`). User memory is a process
 * model over PhysMem ({@link UserProcess}, {@link Memfd}). The selftest test ops are at
 * `@iommulab/core-ioasid/selftest`; the object modules under the ioctls at `/internal`.
 */
export { IommufdError } from './errors.js';
export { IommuFd, type IommuFdOpenOptions } from './iommufd.js';
export type { IovaRange } from './ioas.js';
export type { DeviceBindArgs, HwInfoResult } from './device.js';
export { IOMMU_NO_PASID, type HwptAllocArgs, type HwptInvalidateArgs, type HwptGetDirtyBitmapArgs } from './hw-pagetable.js';
export {
  IOMMUFD_ACCESS_RW_READ,
  IOMMUFD_ACCESS_RW_WRITE,
  IOMMUFD_ACCESS_RW_KTHREAD,
  IOMMUFD_ACCESS_RW_SLOW_PATH,
  type IommufdAccessOps,
  type AccessCreateArgs,
} from './access.js';
export type { FaultFile } from './fault.js';
export { IOMMUFD_VEVENT_HEADER_BYTES, type VeventqFile, type VeventqAllocArgs } from './eventq.js';
export type { ViommuAllocArgs, IommufdMapping, IommufdMmapArgs } from './viommu.js';
export type { HwQueueAllocArgs } from './hw-queue.js';
export { FdTable, type FdObject } from './abi/fd-table.js';
export * from './uapi/constants.js';
export { U64_MAX, ULONG_MAX, PAGE_SIZE } from './uapi/u64.js';
export * from './user-memory/index.js';
// VFIO type1 compatibility
export {
  VFIO_API_VERSION,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_DMA_CC_IOMMU,
  VFIO_TYPE1_NESTING_IOMMU,
  VFIO_NOIOMMU_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
  VFIO_TYPE,
  VFIO_BASE,
  VFIO_GET_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_SET_IOMMU,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  type VfioType1Info,
} from './vfio-type1.js';
