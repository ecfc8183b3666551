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

/**
 * A device's page request (PCIe PRI Page Request Message), sent through the device port after a
 * translation faulted, when the device can wait for the page to be made present. driver-api's
 * `DevicePageRequest` is this type (read-only).
 */
export interface PageRequestInit {
  /** Requester id (PCI BDF / SMMUv3 StreamID). */
  rid: number;
  /** PASID (SubstreamID), or {@link NO_PASID} (-1). */
  pasid: number;
  /** The page address requested (a number below 2^53). */
  addr: number;
  /** Permissions requested: READ 1, WRITE 2, EXEC 4, PRIV 8 (driver-api's `PgFaultPerm` bits). */
  perm: number;
  /** Page request group index (PRG index). */
  grpid: number;
  /** Last request of its group. */
  last: boolean;
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

/** Access names accepted at the API edge (`'read'`, `'write'`, `'exec'`). */
export type AccessName = 'read' | 'write' | 'exec';

/**
 * A DMA request as callers may write it: `pasid` and `privileged` optional, `access` as ACCESS_*
 * bits or names (`'read'`, `['read', 'write']`). The device port normalises it with
 * {@link toDmaRequest}; the model's hot path only ever sees {@link DmaRequest}.
 */
export interface DmaRequestInit {
  rid: number;
  pasid?: number;
  iova: number;
  access?: number | AccessName | readonly AccessName[];
  privileged?: boolean;
}

const ACCESS_BY_NAME: Readonly<Record<string, number>> = { read: ACCESS_READ, write: ACCESS_WRITE, exec: ACCESS_EXEC };

/**
 * Normalises a {@link DmaRequestInit}: returns `init` itself when it is already a complete
 * {@link DmaRequest} (no allocation), else a new request. An unknown access name gives
 * `access = -1`, which the device port rejects as a bad request.
 */
export function toDmaRequest(init: DmaRequestInit): DmaRequest {
  if (init === null || typeof init !== 'object') return init as unknown as DmaRequest;
  if (typeof init.access === 'number' && typeof init.pasid === 'number' && typeof init.privileged === 'boolean') {
    return init as DmaRequest;
  }
  let access: number;
  if (init.access === undefined) access = ACCESS_READ;
  else if (typeof init.access === 'number') access = init.access;
  else if (typeof init.access === 'string') access = ACCESS_BY_NAME[init.access] ?? -1;
  else {
    access = 0;
    for (const n of init.access) {
      const bit = ACCESS_BY_NAME[n];
      if (bit === undefined) {
        access = -1;
        break;
      }
      access |= bit;
    }
  }
  return {
    rid: init.rid,
    pasid: init.pasid ?? NO_PASID,
    iova: init.iova,
    access,
    privileged: init.privileged ?? false,
  };
}
