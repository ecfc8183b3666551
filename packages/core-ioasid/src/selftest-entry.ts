/**
 * @packageDocumentation
 * `@iommulab/core-ioasid/selftest`: the test-op contract of the kernel's iommufd selftest
 * (iommufd_test.h) over an IommuFd and a hw-mock backend: mock devices and domains, accesses,
 * IOPF / vEVENT triggers, reserved ranges, page-reference checks, and fail_nth-style fault
 * injection. The ports of the kernel selftests in this package's test/ use exactly these.
 */
export {
  testAddReserved,
  testMdCheckRefs,
  testSetTempMemoryLimit,
  testTempMemoryLimit,
  IOMMU_TEST_OP_ADD_RESERVED,
  IOMMU_TEST_OP_MD_CHECK_REFS,
  IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
} from './selftest.js';
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
export {
  ViommuTestOps,
  IOMMU_TEST_OP_TRIGGER_IOPF,
  IOMMU_TEST_OP_DEV_CHECK_CACHE,
  IOMMU_TEST_OP_TRIGGER_VEVENT,
} from './selftest-viommu.js';
export { FailNth, failpoint, armedInjector } from './fail-nth.js';
// test cmd and dma-buf
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
  TEST_OP_LAYOUTS,
  type SelftestConfig,
  type TestOpLayout,
} from './abi/test-cmd.js';
export {
  DmaBuf,
  dmabufGet,
  dmabufRevoke,
  DMABUF_MAX_PAGES,
  IOMMU_TEST_OP_DMABUF_GET,
  IOMMU_TEST_OP_DMABUF_REVOKE,
} from './dmabuf.js';
