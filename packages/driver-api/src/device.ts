/**
 * How a device presents itself to the IOMMU driver at probe time: its requester id and the PCIe
 * capabilities that matter to translation. (What Linux learns from the PCI core and firmware.)
 */
export interface DeviceSpec {
  /** Requester id: PCI BDF (bus << 8 | devfn) or SMMU StreamID. */
  readonly rid: number;
  /** PASID width the device supports (0 = no PASID capability). */
  readonly pasidBits?: number;
  /** The device has an ATC and uses ATS. */
  readonly ats?: boolean;
  /** The device issues PCIe page requests (PRI). */
  readonly pri?: boolean;
  /**
   * A PCIe Virtual Function: its PRI capability is shared with the PF, so iommufd refuses to
   * enable I/O page faults on it when it has PRI (`iommufd_fault_iopf_enable`: EINVAL).
   */
  readonly vf?: boolean;
  /** The device cannot work with dirty tracking (the selftest's MOCK_FLAGS_DEVICE_NO_DIRTY). */
  readonly noDirty?: boolean;
  /** A label for messages and reports. */
  readonly name?: string;
}

/** A probed device: the handle every per-device driver call takes. */
export interface IommuDevice {
  readonly rid: number;
  readonly spec: DeviceSpec;
  /** Effective PASID width (min of device and IOMMU; 0 = none). */
  readonly maxPasidLog2: number;
}

/** What `IOMMU_GET_HW_INFO` reports for a device. */
export interface HwInfo {
  /** `IOMMU_HW_INFO_TYPE_*`. */
  readonly type: number;
  /** The vendor info struct, in its uAPI byte layout (e.g. `iommu_hw_info_arm_smmuv3`). */
  readonly data: Uint8Array;
  /** `IOMMU_HW_CAP_*` bits ({@link HwCap}). */
  readonly capabilities: number;
  /** `out_max_pasid_log2`: 0 when the device or IOMMU has no PASID. */
  readonly maxPasidLog2: number;
}

/** A range of IOVA a device cannot use for DMA mappings (e.g. the MSI doorbell window). */
export interface ReservedRegion {
  /** First IOVA of the region. */
  readonly start: number;
  /** Last IOVA of the region (inclusive). */
  readonly last: number;
  /** `msi`: software MSI window; `direct`: must stay identity mapped; `reserved`: unusable. */
  readonly type: 'msi' | 'direct' | 'reserved';
}
