/**
 * The device-port wire types: what a device sends to an IOMMU (a DMA request) and what it gets
 * back (a translation or a fault). Plain objects of numbers so one request and one result can be
 * reused for a whole run without allocation.
 */

/** Access bit: the device reads memory. */
export const ACCESS_READ = 1;
/** Access bit: the device writes memory. */
export const ACCESS_WRITE = 2;
/** Access bit: instruction fetch. */
export const ACCESS_EXEC = 4;
/** `DmaRequest.pasid` value meaning "no PASID / SubstreamID on the request". */
export const NO_PASID = -1;

/** A DMA translation request from a device. */
export interface DmaRequest {
  /** Requester id (PCI BDF / SMMUv3 StreamID). */
  rid: number;
  /** PASID (SubstreamID), or {@link NO_PASID}. */
  pasid: number;
  /** I/O virtual address (a number below 2^53). */
  iova: number;
  /** ACCESS_* bits. */
  access: number;
  /** Privileged (PnU / PR) access. */
  privileged: boolean;
}

/** The outcome of a translation. */
export interface DmaResult {
  /** True when translated. */
  ok: boolean;
  /** Physical address (valid when `ok`). */
  pa: number;
  /** 0 when ok; a FaultReason code from driver-api otherwise. */
  fault: number;
  /** Backend-specific detail, e.g. the SMMUv3 event id; 0 when none. */
  faultDetail: number;
}

/** A new request: rid 0, no PASID, iova 0, read, unprivileged, overridden by `init`. */
export function dmaRequest(init?: Partial<DmaRequest>): DmaRequest {
  return {
    rid: init?.rid ?? 0,
    pasid: init?.pasid ?? NO_PASID,
    iova: init?.iova ?? 0,
    access: init?.access ?? ACCESS_READ,
    privileged: init?.privileged ?? false,
  };
}

/** A new, cleared result object (ok false, every number 0) to pass as `out` to `translate`. */
export function dmaResult(): DmaResult {
  return { ok: false, pa: 0, fault: 0, faultDetail: 0 };
}
