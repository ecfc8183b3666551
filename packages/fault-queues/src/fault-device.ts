/**
 * The fault state of one device (`struct iommu_fault_param`; vmm-and-faults.md §3.2 step 5):
 * its partial list (non-Last requests, keyed by PRG index only: the index space is per function,
 * not per PASID), its pending list (groups reported and not yet answered: what guarantees an
 * eventual response) and its counters. Created by {@link IopfQueue.addDevice}.
 */
import type { IommuDevice, PageRequest } from '@iommulab/driver-api';
import type { FaultSink, IopfFault, IopfGroup } from './iopf-group.js';
import type { IopfQueue } from './iopf-queue.js';

/** The attachment a request is routed to (`find_fault_handler`'s attach handle). */
export interface FaultHandler {
  /** Identity of the attachment (for automatic responses when it goes away). */
  readonly handle: object;
  /** Its domain's fault handler: the HWPT's fault queue; null when the HWPT has none. */
  readonly sink: FaultSink | null;
}

/**
 * Finds where a request of `pasid` (-1: no PASID) goes, at the time it arrives: the PASID's
 * attachment, else (drivers with a user-managed PASID table) the RID's nested one; the RID's for
 * a request without PASID. `req` is the request itself (its `stage` lets an owner send stage-2
 * faults of a nested attachment to the parent's queue: faults are per handle). Null when there
 * is none.
 */
export type FaultHandlerLookup = (pasid: number, req: PageRequest) => FaultHandler | null;

/** Counters of one device. */
export interface FaultDeviceStats {
  /** Page requests reported (stop markers included). */
  requests: number;
  /** Stop markers filtered (never answered). */
  stopMarkers: number;
  /** Groups built and handed to a sink. */
  groups: number;
  /** Last requests answered INVALID because no attachment with a fault handler took them. */
  noHandler: number;
  /** Non-Last requests dropped: no handler, or the partial list was full. */
  partialDropped: number;
  /** Partial requests discarded: an overflow, the device's removal, their Last taken by no handler. */
  partialDiscarded: number;
  /** Groups answered (any way). */
  answered: number;
  /** Non-recoverable events of the device. */
  events: number;
}

/** One device known to an {@link IopfQueue} (`iommu_fault_param`). */
export class FaultDevice {
  /** Non-Last requests waiting for their Last (arrival order). @internal */
  readonly partial: IopfFault[] = [];
  /** Groups reported and not answered (report order). @internal */
  readonly pending = new Set<IopfGroup>();
  /** Counters. */
  readonly stats: FaultDeviceStats = {
    requests: 0,
    stopMarkers: 0,
    groups: 0,
    noHandler: 0,
    partialDropped: 0,
    partialDiscarded: 0,
    answered: 0,
    events: 0,
  };

  /** @internal built by {@link IopfQueue.addDevice}. */
  constructor(
    /** The queue it belongs to. */
    readonly queue: IopfQueue,
    /** The device. */
    readonly dev: IommuDevice,
    /** Routes its requests. */
    readonly lookup: FaultHandlerLookup,
    /** The id readers see in `iommu_hwpt_pgfault.dev_id` (the iommufd device object id). */
    readonly devId: number,
  ) {}

  /** Requester id (PCI BDF / StreamID). */
  get rid(): number {
    return this.dev.rid;
  }

  /** Groups waiting for their response. */
  get outstanding(): number {
    return this.pending.size;
  }

  /** Partial requests held. */
  get partialCount(): number {
    return this.partial.length;
  }
}
