/**
 * The iommufd fault-fd records (include/uapi/linux/iommufd.h; vmm-and-faults.md §4.2):
 * `struct iommu_hwpt_pgfault` (40 bytes, one per page request, produced by read) and
 * `struct iommu_hwpt_page_response` (8 bytes, written back). Little-endian.
 *
 * | off | field      |  | off | field    |
 * |-----|------------|--|-----|----------|
 * | 0   | flags      |  | 20  | reserved |
 * | 4   | dev_id     |  | 24  | addr u64 |
 * | 8   | pasid      |  | 32  | length   |
 * | 12  | grpid      |  | 36  | cookie   |
 * | 16  | perm       |  |     |          |
 */
import type { IopfFault } from './iopf-group.js';

/** `sizeof(struct iommu_hwpt_pgfault)`. */
export const IOMMU_HWPT_PGFAULT_BYTES = 40;
/** `sizeof(struct iommu_hwpt_page_response)`. */
export const IOMMU_HWPT_PAGE_RESPONSE_BYTES = 8;
/** `IOMMU_PGFAULT_FLAGS_PASID_VALID`: the `pasid` field is valid. */
export const IOMMU_PGFAULT_FLAGS_PASID_VALID = 1 << 0;
/** `IOMMU_PGFAULT_FLAGS_LAST_PAGE`: the last page request of its group. */
export const IOMMU_PGFAULT_FLAGS_LAST_PAGE = 1 << 1;
/** Kernel-internal `IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID` (copied verbatim into `flags`). */
export const IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID = 1 << 2;

/** One decoded `struct iommu_hwpt_pgfault`. */
export interface HwptPgfault {
  flags: number;
  devId: number;
  pasid: number;
  grpid: number;
  perm: number;
  addr: number;
  length: number;
  cookie: number;
}

/** One `struct iommu_hwpt_page_response`. */
export interface HwptPageResponse {
  cookie: number;
  code: number;
}

const TWO_32 = 4294967296;

/** Writes one `iommu_hwpt_pgfault` for fault `f` of device `devId` at byte `at` of `out`. */
export function encodePgfault(out: DataView, at: number, f: IopfFault, devId: number, cookie: number): void {
  out.setUint32(at + 0, f.flags >>> 0, true);
  out.setUint32(at + 4, devId >>> 0, true);
  out.setUint32(at + 8, f.pasid >>> 0, true);
  out.setUint32(at + 12, f.grpid >>> 0, true);
  out.setUint32(at + 16, f.perm >>> 0, true);
  out.setUint32(at + 20, 0, true); // __reserved
  out.setUint32(at + 24, f.addr % TWO_32 >>> 0, true);
  out.setUint32(at + 28, Math.floor(f.addr / TWO_32) >>> 0, true);
  out.setUint32(at + 32, 0, true); // length: the kernel always writes 0
  out.setUint32(at + 36, cookie >>> 0, true);
}

/**
 * Decodes the records of a fault-fd read (whole 40-byte records; a trailing partial record is
 * ignored). `addr` is exact below 2^53.
 */
export function decodePgfaults(bytes: Uint8Array): HwptPgfault[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: HwptPgfault[] = [];
  for (let at = 0; at + IOMMU_HWPT_PGFAULT_BYTES <= bytes.length; at += IOMMU_HWPT_PGFAULT_BYTES) {
    out.push({
      flags: dv.getUint32(at, true),
      devId: dv.getUint32(at + 4, true),
      pasid: dv.getUint32(at + 8, true),
      grpid: dv.getUint32(at + 12, true),
      perm: dv.getUint32(at + 16, true),
      addr: dv.getUint32(at + 24, true) + dv.getUint32(at + 28, true) * TWO_32,
      length: dv.getUint32(at + 32, true),
      cookie: dv.getUint32(at + 36, true),
    });
  }
  return out;
}

/** Encodes responses for a fault-fd write (8 bytes each). */
export function encodePageResponses(responses: readonly HwptPageResponse[]): Uint8Array {
  const buf = new Uint8Array(responses.length * IOMMU_HWPT_PAGE_RESPONSE_BYTES);
  const dv = new DataView(buf.buffer);
  responses.forEach((r, i) => {
    dv.setUint32(i * 8, r.cookie >>> 0, true);
    dv.setUint32(i * 8 + 4, r.code >>> 0, true);
  });
  return buf;
}
