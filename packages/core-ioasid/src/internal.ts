/**
 * @packageDocumentation
 * `@iommulab/core-ioasid/internal`: the object modules under IommuFd (the ioctl handlers per
 * object kind, the object table, the io_pagetable, the binary-ABI codec), for tools and tests that
 * work below the ioctl surface. Not covered by semver the way the root entry is.
 */
export { IommufdError, fail } from './errors.js';
export { IommuFd, type IommuFdOpenOptions } from './iommufd.js';
export { IommufdCtx } from './context.js';
export { ObjectTable, IommufdObject, type ObjType } from './object-table.js';
export {
  Ioas,
  getIoas,
  convIommuProt,
  ioasAlloc,
  ioasIovaRanges,
  ioasAllowIovas,
  ioasMap,
  ioasMapFile,
  ioasCopy,
  ioasUnmap,
  ioasChangeProcess,
  type IovaRange,
} from './ioas.js';
export { option } from './option.js';
export { vfioIoas, getCompatIoas } from './vfio-compat.js';
export {
  IoPagetable,
  type IoptLookup,
  type PagesSlice,
  type ReservedRange,
} from './io-pagetable/io-pagetable.js';
export { IoptArea } from './io-pagetable/area.js';
export { IoptPages, type PagesSource } from './io-pagetable/pages.js';
export { iommuPgsize, iommuMap, iommuUnmap, type IoptDomain } from './io-pagetable/domain-map.js';
export { allocIova, HPAGE_SIZE } from './io-pagetable/iova-alloc.js';
export * from './uapi/constants.js';
export { U64_MAX, ULONG_MAX, PAGE_SIZE, u64, u32, hex } from './uapi/u64.js';
export * from './user-memory/index.js';
export * from './abi/index.js';
// devices and HWPTs
export {
  IommufdDevice,
  getDevice,
  deviceBind,
  deviceUnbind,
  deviceAttach,
  deviceReplace,
  deviceDetach,
  getHwInfo,
  type DeviceBindArgs,
  type HwInfoResult,
} from './device.js';
export {
  HwPagetable,
  HwptPaging,
  HwptNested,
  IOMMU_NO_PASID,
  IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX,
  hwptAlloc,
  hwptInvalidate,
  hwptSetDirtyTracking,
  hwptGetDirtyBitmap,
  getHwptPaging,
  type HwptAllocArgs,
  type HwptInvalidateArgs,
  type HwptGetDirtyBitmapArgs,
} from './hw-pagetable.js';
// access
export {
  IommufdAccess,
  getAccess,
  accessesOf,
  accessCreateObject,
  accessAttach,
  accessDetach,
  accessReplaceIoas,
  accessDestroyObject,
  accessPinPages,
  unpinPages,
  accessRwData,
  IOMMUFD_ACCESS_RW_READ,
  IOMMUFD_ACCESS_RW_WRITE,
  IOMMUFD_ACCESS_RW_KTHREAD,
  IOMMUFD_ACCESS_RW_SLOW_PATH,
  type IommufdAccessOps,
  type AccessCreateArgs,
} from './access.js';
// faults and vIOMMU
export { IommufdFault, FaultFile, faultQueueAlloc, faultIopfCheck, faultSyncDevice, faultAutoResponse, faultFlush, getFault } from './fault.js';
export {
  EventqFile,
  IommufdVeventq,
  VeventqFile,
  veventqAlloc,
  IOMMUFD_VEVENT_HEADER_BYTES,
  type VeventqAllocArgs,
} from './eventq.js';
export {
  IommufdViommu,
  ViommuHwptNested,
  getViommu,
  viommuAlloc,
  viommuHwptNestedAlloc,
  viommuCacheInvalidate,
  iommufdMmap,
  type ViommuAllocArgs,
  type IommufdMapping,
  type IommufdMmapArgs,
} from './viommu.js';
export { IommufdVdevice, vdeviceAlloc, vdeviceOf, vdeviceDeviceGone } from './vdevice.js';
export { IommufdHwQueue, hwQueueAlloc, type HwQueueAllocArgs } from './hw-queue.js';
// VFIO type1 compatibility
export * from './vfio-type1.js';
// test cmd and dma-buf
export { IOMMU_TEST_CMD_NR, setTestCmdHandler, type TestCmdHandler } from './abi/dispatch.js';
// the selftest test-op contract (also `@iommulab/core-ioasid/selftest`)
export * from './selftest-entry.js';
export { IOMMU_TEST_CMD_UNION_OFFSET } from './abi/test-cmd.js';
export { dmabufMapFile } from './dmabuf.js';
