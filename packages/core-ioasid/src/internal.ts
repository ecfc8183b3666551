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
export { FailNth, failpoint, armedInjector } from './fail-nth.js';
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
export {
  testAddReserved,
  testMdCheckRefs,
  testSetTempMemoryLimit,
  testTempMemoryLimit,
  IOMMU_TEST_OP_ADD_RESERVED,
  IOMMU_TEST_OP_MD_CHECK_REFS,
  IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
} from './selftest.js';
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
export {
  MockTestOps,
  SelftestObj,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_FLAGS_DEVICE_PASID,
  MOCK_PASID_WIDTH,
  IOMMU_TEST_OP_MOCK_DOMAIN,
  IOMMU_TEST_OP_MD_CHECK_MAP,
  IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
  IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
  IOMMU_TEST_OP_DIRTY,
  IOMMU_TEST_OP_MD_CHECK_IOTLB,
  IOMMU_TEST_OP_PASID_ATTACH,
  IOMMU_TEST_OP_PASID_REPLACE,
  IOMMU_TEST_OP_PASID_DETACH,
  IOMMU_TEST_OP_PASID_CHECK_HWPT,
  type MockDirtyArgs,
} from './selftest-mock.js';
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
export {
  AccessTestOps,
  SelftestAccess,
  IOMMU_TEST_OP_CREATE_ACCESS,
  IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
  IOMMU_TEST_OP_ACCESS_PAGES,
  IOMMU_TEST_OP_ACCESS_RW,
  IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_FLAGS_ACCESS_WRITE,
  MOCK_FLAGS_ACCESS_SYZ,
  MOCK_ACCESS_RW_WRITE,
  MOCK_ACCESS_RW_SLOW_PATH,
} from './selftest-access.js';
// faults and vIOMMU
export { IommufdFault, FaultFile, faultQueueAlloc, faultHwptAttached, faultAutoResponse, getFault } from './fault.js';
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
export {
  ViommuTestOps,
  IOMMU_TEST_OP_TRIGGER_IOPF,
  IOMMU_TEST_OP_DEV_CHECK_CACHE,
  IOMMU_TEST_OP_TRIGGER_VEVENT,
} from './selftest-viommu.js';
// VFIO type1 compatibility
export * from './vfio-type1.js';
// test cmd and dma-buf
export { IOMMU_TEST_CMD_NR, setTestCmdHandler, type TestCmdHandler } from './abi/dispatch.js';
export {
  enableSelftest,
  disableSelftest,
  selftestOf,
  testCmdIoctl,
  testOpLayout,
  dmabufOf,
  Selftest,
  IOMMU_TEST_CMD,
  IOMMU_TEST_CMD_LAYOUT,
  IOMMU_TEST_CMD_UNION_OFFSET,
  TEST_OP_LAYOUTS,
  type SelftestConfig,
  type TestOpLayout,
} from './abi/test-cmd.js';
export {
  DmaBuf,
  dmabufGet,
  dmabufRevoke,
  dmabufMapFile,
  DMABUF_MAX_PAGES,
  IOMMU_TEST_OP_DMABUF_GET,
  IOMMU_TEST_OP_DMABUF_REVOKE,
} from './dmabuf.js';
