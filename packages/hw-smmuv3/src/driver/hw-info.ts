/**
 * `IOMMU_GET_HW_INFO` for SMMUv3 (smmuv3.md §9.1, §9.2): type IOMMU_HW_INFO_TYPE_ARM_SMMUV3 (2)
 * with `struct iommu_hw_info_arm_smmuv3` (40 bytes: u32 flags, u32 __reserved, u32 idr[6],
 * u32 iidr, u32 aidr; little-endian), as Linux's `arm_smmu_hw_info`.
 */

/** IOMMU_HW_INFO_TYPE_ARM_SMMUV3. */
export const IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;
/** IOMMU_HWPT_DATA_ARM_SMMUV3 (nested-domain vendor data type). */
export const IOMMU_HWPT_DATA_ARM_SMMUV3 = 2;
/** IOMMU_VIOMMU_TYPE_ARM_SMMUV3. */
export const IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1;
/** IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3. */
export const IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 = 1;
/** IOMMU_VEVENTQ_TYPE_ARM_SMMUV3. */
export const IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 = 1;
/** sizeof(struct iommu_hw_info_arm_smmuv3). */
export const HW_INFO_ARM_SMMUV3_BYTES = 40;

/** Builds `struct iommu_hw_info_arm_smmuv3` from the raw ID registers. */
export function buildHwInfoArmSmmuv3(idr: readonly number[], iidr: number, aidr: number, flags = 0): Uint8Array {
  const out = new Uint8Array(HW_INFO_ARM_SMMUV3_BYTES);
  const v = new DataView(out.buffer);
  v.setUint32(0, flags >>> 0, true);
  v.setUint32(4, 0, true);
  for (let i = 0; i < 6; i++) v.setUint32(8 + 4 * i, (idr[i] ?? 0) >>> 0, true);
  v.setUint32(32, iidr >>> 0, true);
  v.setUint32(36, aidr >>> 0, true);
  return out;
}
