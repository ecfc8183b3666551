/**
 * Constants of the Linux iommufd selftest mock (`iommufd_test.h`), kept under their kernel names.
 * See shared/spec/iommufd.md §3.2.
 */

/** First IOVA of the mock aperture (16 MiB). */
export const MOCK_APERTURE_START = 0x0100_0000;
/** Last IOVA of the mock aperture (inclusive). */
export const MOCK_APERTURE_LAST = 0x7fff_ffff;
/** The mock IO page size in bytes. */
export const MOCK_PAGE_SIZE = 2048;
/** log2 of {@link MOCK_PAGE_SIZE}. */
export const MOCK_PAGE_SHIFT = 11;
/** The mock huge (level-1 leaf) page size: 512 IO pages = 1 MiB. */
export const MOCK_HUGE_PAGE_SIZE = 512 * 2048;
/** log2 of {@link MOCK_HUGE_PAGE_SIZE}. */
export const MOCK_HUGE_PAGE_SHIFT = 20;
/** PASID width reported for PASID-capable mock devices. */
export const MOCK_PASID_WIDTH = 20;
/** Page-table format selectors of `iommu_hwpt_selftest.pagetable_type`. */
export const MOCK_IOMMUPT_DEFAULT = 0;
/** Huge-page capable page-table format selector. */
export const MOCK_IOMMUPT_HUGE = 1;
/** `IOMMU_HW_INFO_TYPE_SELFTEST`. */
export const IOMMU_HW_INFO_TYPE_SELFTEST = 0xfeedbeef;
/** `IOMMU_HW_INFO_SELFTEST_REGVAL`: the `test_reg` value of the hw_info data. */
export const IOMMU_HW_INFO_SELFTEST_REGVAL = 0xdeadbeef;
/** `IOMMU_HWPT_DATA_SELFTEST`: nested HWPT data type. */
export const IOMMU_HWPT_DATA_SELFTEST = 0xdead;
/** Highest nested-domain mock IOTLB slot id. */
export const MOCK_NESTED_DOMAIN_IOTLB_ID_MAX = 3;
/** Number of nested-domain mock IOTLB slots. */
export const MOCK_NESTED_DOMAIN_IOTLB_NUM = 4;
/** Initial value of every nested-domain mock IOTLB slot. */
export const IOMMU_TEST_IOTLB_DEFAULT = 0xbadbeef;
/** Highest mock device cache id. */
export const MOCK_DEV_CACHE_ID_MAX = 3;
/** Number of mock device cache slots. */
export const MOCK_DEV_CACHE_NUM = 4;
/** Initial value of every mock device cache slot. */
export const IOMMU_TEST_DEV_CACHE_DEFAULT = 0xbaddad;
/** `IOMMU_HWPT_INVALIDATE_DATA_SELFTEST`. */
export const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
/** `IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID` (a type the mock rejects). */
export const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID = 0xdadbeef;
/** Invalidate entry flag: ignore `iotlb_id`, clear all slots. */
export const IOMMU_TEST_INVALIDATE_FLAG_ALL = 1;
/** Attach / replace of this PASID is rigged to fail with ENOMEM. */
export const IOMMU_TEST_PASID_RESERVED = 1024;
/** Device flag: the device cannot track dirty pages. */
export const MOCK_FLAGS_DEVICE_NO_DIRTY = 1;
/** Device flag: the device supports PASID. */
export const MOCK_FLAGS_DEVICE_PASID = 1 << 2;
/** `IOMMU_VIOMMU_TYPE_SELFTEST`: data `{u32 in_data; u32 out_data; u64 out_mmap_offset; u64 out_mmap_length}`. */
export const IOMMU_VIOMMU_TYPE_SELFTEST = 0xdeadbeef;
/** `IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST`: entries `{u32 flags; u32 vdev_id; u32 cache_id}`. */
export const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
/** `IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID` (a type the mock rejects). */
export const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID = 0xdadbeef;
/** `IOMMU_VEVENTQ_TYPE_SELFTEST`: event `{u32 virt_id}`. */
export const IOMMU_VEVENTQ_TYPE_SELFTEST = 0xbeefbeef;
/** `IOMMU_HW_QUEUE_TYPE_SELFTEST`. */
export const IOMMU_HW_QUEUE_TYPE_SELFTEST = 0xdeadbeef;
/** Number of selftest HW queue indexes per vIOMMU (`IOMMU_TEST_HW_QUEUE_MAX`). */
export const IOMMU_TEST_HW_QUEUE_MAX = 2;
