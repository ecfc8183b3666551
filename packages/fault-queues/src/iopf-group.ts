/**
 * A page request group (`struct iopf_group`; vmm-and-faults.md §3.3, §4.1): the Last page request
 * of a PRG and the partial requests of the same PRG index that came before it, in arrival order.
 * A group is answered exactly once, by whoever answers first: the reader of its fault queue, an
 * automatic response (detach, replace, destroy, device removal, timeout) or a refusal. Any later
 * attempt is a no-op that returns false, so a late answer can never reach a newer group that
 * reused the PRG index: responses are matched by group object, not by (device, PASID, index).
 */
import type { PageResponseCodeValue } from '@iommulab/driver-api';
import type { FaultDevice } from './fault-device.js';

/** One page request as the fault layer keeps it (`struct iommu_fault_page_request`). */
export interface IopfFault {
  /** `IOMMU_PGFAULT_FLAGS_*`: PASID_VALID (bit 0), LAST_PAGE (bit 1). */
  readonly flags: number;
  /** PASID (0 when PASID_VALID is clear). */
  readonly pasid: number;
  /** PRG index (PRI) or STAG (SMMUv3 stall). */
  readonly grpid: number;
  /** `IOMMU_PGFAULT_PERM_*` bits. */
  readonly perm: number;
  /** Page address, as the device sent it. */
  readonly addr: number;
}

/**
 * Where complete groups go (a domain's `iopf_handler`): a fault object's queue, a kernel handler.
 * The fault layer calls it synchronously, in report order.
 */
export interface FaultSink {
  /**
   * Takes a complete group. Returns false to refuse it (e.g. the queue is full or closed): the
   * fault layer then answers the group Response Failure, as the kernel does when a handler fails.
   */
  deliver(group: IopfGroup): boolean;
  /**
   * `group` was answered (a timeout, the device's removal, a direct {@link IopfGroup.respond},
   * or the sink's own answer): forget it if still held. Called once per delivered group.
   */
  withdraw(group: IopfGroup): void;
}

/** What a group is waiting for. */
export type IopfGroupState = 'pending' | 'answered';

/** A page request group (`struct iopf_group`). */
export class IopfGroup {
  /** Faults of the group in arrival order; the last one has LAST_PAGE. */
  readonly faults: readonly IopfFault[];
  /** The device (`fault_param`). */
  readonly device: FaultDevice;
  /** The attach handle the group was routed through (owner-defined identity). */
  readonly handle: object;
  /** Where it was delivered. */
  readonly sink: FaultSink;
  /** Unique per queue, increasing: tells two instances of one PRG index apart. */
  readonly instance: number;
  /** Logical time it was reported. */
  readonly reportedAt: number;
  /** Logical time its automatic timeout answer is due (Infinity: none). */
  readonly deadline: number;
  /** Cookie given by the fault queue that delivered it to a reader (0 until read). */
  cookie = 0;
  #code: PageResponseCodeValue | -1 = -1;

  /** @internal built by the IopfQueue. */
  constructor(
    faults: readonly IopfFault[],
    device: FaultDevice,
    handle: object,
    sink: FaultSink,
    instance: number,
    reportedAt: number,
    deadline: number,
  ) {
    this.faults = faults;
    this.device = device;
    this.handle = handle;
    this.sink = sink;
    this.instance = instance;
    this.reportedAt = reportedAt;
    this.deadline = deadline;
  }

  /** The Last request: its PASID and PRG index address the response. */
  get last(): IopfFault {
    return this.faults[this.faults.length - 1]!;
  }

  /** Whether it is still waiting for its response. */
  get state(): IopfGroupState {
    return this.#code === -1 ? 'pending' : 'answered';
  }

  /** The code it was answered with; -1 while pending. */
  get code(): PageResponseCodeValue | -1 {
    return this.#code;
  }

  /** @internal marks it answered (once). */
  markAnswered(code: PageResponseCodeValue): boolean {
    if (this.#code !== -1) return false;
    this.#code = code;
    return true;
  }

  /**
   * `iopf_group_response`: sends `code` to the device, once. Returns false (and sends nothing)
   * when the group was already answered or its device was removed.
   */
  respond(code: PageResponseCodeValue): boolean {
    return this.device.queue.respond(this, code);
  }
}
