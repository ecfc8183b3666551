/**
 * Backend-neutral reasons a translation fails. A backend also reports its own architectural code
 * in `DmaResult.faultDetail` (e.g. an SMMUv3 event id or a VT-d fault reason).
 */
export const FaultReason = {
  /** No fault. */
  NONE: 0,
  /** No valid translation for the address (unmapped). */
  TRANSLATION: 1,
  /** A translation exists but does not allow the access (read, write, exec or privilege). */
  PERMISSION: 2,
  /** The device (or PASID) is not attached, or attached to a blocking domain. */
  BLOCKED: 3,
  /** The requester id is outside what the IOMMU's tables describe. */
  BAD_RID: 4,
  /** The PASID is not enabled or not valid for this device. */
  BAD_PASID: 5,
  /** The address is outside the domain's input range (aperture / address size). */
  ADDRESS_SIZE: 6,
  /** A configuration structure (device/stream/context entry) is malformed. */
  BAD_CONFIG: 7,
  /** A table walk touched memory that does not exist. */
  WALK_ABORT: 8,
  /** Access flag fault (access flag clear, no hardware update). */
  ACCESS_FLAG: 9,
  /** The request became a recoverable page request; the device must wait for the response. */
  PAGE_REQUEST: 10,
} as const;

/** A {@link FaultReason} code. */
export type FaultReasonCode = (typeof FaultReason)[keyof typeof FaultReason];

/** Name of a {@link FaultReason} code, for messages and reports. */
export function faultReasonName(code: number): string {
  for (const [name, value] of Object.entries(FaultReason)) if (value === code) return name;
  return `UNKNOWN(${code})`;
}

/** Page-request permission bits, as `IOMMU_PGFAULT_PERM_*` in the iommufd uAPI. */
export const PgFaultPerm = { READ: 1 << 0, WRITE: 1 << 1, EXEC: 1 << 2, PRIV: 1 << 3 } as const;

/** Response codes to a page request, as `IOMMUFD_PAGE_RESP_*` (plus the kernel's internal FAILURE). */
export const PageResponseCode = { SUCCESS: 0, INVALID: 1, FAILURE: 2 } as const;

/** A {@link PageResponseCode} value. */
export type PageResponseCodeValue = (typeof PageResponseCode)[keyof typeof PageResponseCode];

/**
 * A recoverable I/O page fault: one page request from a device (PCIe PRI, or a stalled
 * transaction), as the driver hands it to the fault layer.
 */
export interface PageRequest {
  readonly kind: 'page-request';
  /** Requester id (PCI BDF or StreamID) of the faulting function. */
  readonly rid: number;
  /** PASID, or -1 when the request carried none. */
  readonly pasid: number;
  /** Page request group index: the response answers the whole group. */
  readonly grpid: number;
  /** {@link PgFaultPerm} bits requested. */
  readonly perm: number;
  /** Faulting address (page aligned by the device or not; reported as received). */
  readonly addr: number;
  /** Last request of its group. */
  readonly last: boolean;
  /** Stall-model faults are answered by resume/terminate instead of a PRI response. */
  readonly stall?: boolean;
  /**
   * The translation stage that faulted, when the hardware says (an SMMUv3 stall record's S2 bit):
   * 2 for a stage-2 (host-owned, level-2) fault. Absent when unknown or stage 1 — a PCIe page
   * request never says. The fault layer routes stage-2 faults of a nested attachment to the
   * parent's fault queue.
   */
  readonly stage?: 1 | 2;
}

/** A non-recoverable fault or event record drained from the hardware's event/fault queue. */
export interface FaultEvent {
  readonly kind: 'event';
  readonly rid: number;
  /** PASID, or -1. */
  readonly pasid: number;
  /** Faulting address, when the record carries one (else 0). */
  readonly addr: number;
  /** Backend-neutral reason. */
  readonly reason: FaultReasonCode;
  /** Architectural code (SMMUv3 event id, VT-d fault reason, mock reason). */
  readonly detail: number;
  /** Access that faulted (ACCESS_* bits). */
  readonly access: number;
  /** The raw record words, in the hardware's own format. */
  readonly raw: Uint32Array;
}

/**
 * The driver found one of the hardware's fault queues overflowed: records were lost since the
 * last drain (SMMUv3 PROD.OVFLG toggled, VT-d PRO, the mock's OVFLG). Reported once per drain
 * that saw it, after the records that were drained; for `'page-request'` the fault layer then
 * discards the partial page requests (`iopf_queue_discard_partial`), whose Last may be lost.
 */
export interface FaultQueueOverflow {
  readonly kind: 'overflow';
  /** The queue that overflowed: the page request queue (PRIQ / PRQ) or the event / fault queue. */
  readonly queue: 'page-request' | 'event';
}

/** Everything a driver reports through `IommuDriver.onFault`. */
export type IommuFault = PageRequest | FaultEvent | FaultQueueOverflow;

/** The answer to a page request group, routed back to the device. */
export interface PageResponse {
  readonly rid: number;
  /** PASID, or -1. */
  readonly pasid: number;
  readonly grpid: number;
  readonly code: PageResponseCodeValue;
}

/**
 * Whether a page request is a PCIe stop marker (L = 1, R = W = 0, with a PASID; PCIe §10.4.1.2):
 * it tells the host a PASID may be reused and is never answered.
 */
export function isStopMarker(req: { readonly last: boolean; readonly perm: number; readonly pasid: number }): boolean {
  return req.last && req.pasid >= 0 && (req.perm & (PgFaultPerm.READ | PgFaultPerm.WRITE)) === 0;
}

/**
 * For driver implementations of `IommuDriver.onFault`: hands `fault` to every handler and returns
 * whether one took it (returned anything but `false` and did not throw). A handler's failure does
 * not stop the others. When no handler takes a Last page request, the driver answers it itself.
 */
export function deliverFault(handlers: Iterable<(fault: IommuFault) => unknown>, fault: IommuFault): boolean {
  let taken = false;
  for (const h of handlers) {
    try {
      if (h(fault) !== false) taken = true;
    } catch {
      // One handler's failure must not stop the drain.
    }
  }
  return taken;
}
