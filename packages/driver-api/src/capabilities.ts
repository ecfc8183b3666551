/**
 * What a backend's hardware can do, declared by the backend (never guessed by the host). Hosts
 * (core-ioasid, the bench, the conformance suite) read these to choose behaviour and test cases.
 */
export interface BackendCapabilities {
  /** Page sizes the IO page table can map, in bytes, ascending (e.g. `[4096, 2097152, 1073741824]`). */
  readonly pageSizes: readonly number[];
  /** The IOVA range paging domains accept, inclusive. */
  readonly aperture: { readonly start: number; readonly last: number };
  /** Width of the requester id space the hardware decodes (16 for PCI BDFs). */
  readonly ridBits: number;
  /** PASID width (0 = no PASID support). */
  readonly pasidBits: number;
  /** Nested translation (a user-owned first stage over a host-owned second stage). */
  readonly nesting: boolean;
  /** Hardware dirty tracking of IO page table entries. */
  readonly dirtyTracking: boolean;
  /** PCIe page requests (PRI). */
  readonly pri: boolean;
  /** Stall model for recoverable faults. */
  readonly stall: boolean;
  /** Address translation services (device ATC). */
  readonly ats: boolean;
  /** Range invalidation of the IOTLB in one command. */
  readonly rangeInvalidation: boolean;
  /** `IOMMU_HW_INFO_TYPE_*` this backend reports through `hwInfo`. */
  readonly hwInfoType: number;
  /** Nested-domain vendor data types accepted by `domainAllocNested` (`IOMMU_HWPT_DATA_*`). */
  readonly nestedDataTypes: readonly number[];
}

/** `IOMMU_HW_CAP_*` bits of `IOMMU_GET_HW_INFO.out_capabilities`. */
export const HwCap = {
  DIRTY_TRACKING: 1 << 0,
  PCI_PASID_EXEC: 1 << 1,
  PCI_PASID_PRIV: 1 << 2,
} as const;
