/**
 * Page response codes at each boundary (vmm-and-faults.md §6.5). The fault layer keeps the
 * kernel's three internal codes (`enum iommu_page_response_code`, driver-api
 * `PageResponseCode`: SUCCESS 0, INVALID 1, FAILURE 2) and maps them where they cross:
 * - the iommufd uAPI (`enum iommufd_page_response_code`) has only SUCCESS 0 and INVALID 1; a
 *   written 2 is `EINVAL` (FAILURE was removed from the uAPI: PRI is shared by a PF and its VFs);
 * - a PCIe PRG Response Message (PCIe §10.4.2) carries a 4-bit Response Code: 0000b Success,
 *   0001b Invalid Request, 1111b Response Failure, other values reserved. The VT-d page group
 *   response descriptor uses the same encoding.
 * The SMMUv3 encodings (CMD_PRI_RESP Resp 2/1/0, CMD_RESUME RETRY/ABORT) belong to hw-smmuv3.
 */
import { PageResponseCode, type PageResponseCodeValue } from '@iommulab/driver-api';

/** `IOMMUFD_PAGE_RESP_SUCCESS`: the fault was handled; the device retries. */
export const IOMMUFD_PAGE_RESP_SUCCESS = 0;
/** `IOMMUFD_PAGE_RESP_INVALID`: the fault could not be handled; the device must not retry. */
export const IOMMUFD_PAGE_RESP_INVALID = 1;

/** Whether `code` is one of the two codes the iommufd uAPI accepts in a response. */
export function isIommufdResponseCode(code: number): code is 0 | 1 {
  return code === IOMMUFD_PAGE_RESP_SUCCESS || code === IOMMUFD_PAGE_RESP_INVALID;
}

/** PCIe PRG Response Message codes (4 bits; the rest are reserved). */
export const PcieResponseCode = { SUCCESS: 0b0000, INVALID_REQUEST: 0b0001, RESPONSE_FAILURE: 0b1111 } as const;

/** The PCIe (and VT-d) 4-bit response code of an internal code. */
export function toPcieResponseCode(code: PageResponseCodeValue): number {
  return code === PageResponseCode.SUCCESS
    ? PcieResponseCode.SUCCESS
    : code === PageResponseCode.INVALID
      ? PcieResponseCode.INVALID_REQUEST
      : PcieResponseCode.RESPONSE_FAILURE;
}

/** The internal code of a PCIe 4-bit response code; `undefined` for a reserved value. */
export function fromPcieResponseCode(v: number): PageResponseCodeValue | undefined {
  if (v === PcieResponseCode.SUCCESS) return PageResponseCode.SUCCESS;
  if (v === PcieResponseCode.INVALID_REQUEST) return PageResponseCode.INVALID;
  if (v === PcieResponseCode.RESPONSE_FAILURE) return PageResponseCode.FAILURE;
  return undefined;
}
