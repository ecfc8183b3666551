/**
 * @iommulab/fault-queues — I/O page faults end to end: who receives a fault, and how the answer
 * finds its way back (vmm-and-faults.md §3, §4, §6).
 *
 * - {@link IopfQueue}: the iommu core's fault layer for one driver: page requests grouped per
 *   device and PRG index, routed to the fault handler of the attachment, one response per group
 *   back to the driver (`CMD_PRI_RESP` / `CMD_RESUME` on SMMUv3), automatic answers, overflow,
 *   optional timeouts on a {@link LogicalClock}, counters for every drop.
 * - {@link FaultQueue}: a fault object's queue: 40-byte `iommu_hwpt_pgfault` records with
 *   cookies out, 8-byte responses in, with the kernel's errnos.
 * - {@link VeventQueue}: a vEVENTQ's bounded stream with sequence numbers and LOST_EVENTS.
 * - {@link PriFunction}: the device side of PCIe PRI (credits, PRG indices, response matching).
 */
export { IopfQueue, type IopfQueueOptions, type IopfQueueStats } from './iopf-queue.js';
/** The stop-marker test the fault layer filters with (driver-api's, re-exported). */
export { isStopMarker } from '@iommulab/driver-api';
export { FaultDevice, type FaultDeviceStats, type FaultHandler, type FaultHandlerLookup } from './fault-device.js';
export { IopfGroup, type FaultSink, type IopfFault, type IopfGroupState } from './iopf-group.js';
export { FaultQueue, type FaultQueueOptions, type FaultQueueStats } from './fault-queue.js';
export { CookieAllocator } from './cookie-alloc.js';
export {
  VeventQueue,
  IOMMUFD_VEVENT_HEADER_BYTES,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  type Vevent,
  type VeventQueueStats,
} from './vevent-queue.js';
export { LogicalClock } from './logical-clock.js';
export {
  IOMMU_HWPT_PGFAULT_BYTES,
  IOMMU_HWPT_PAGE_RESPONSE_BYTES,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID,
  encodePgfault,
  decodePgfaults,
  encodePageResponses,
  type HwptPgfault,
  type HwptPageResponse,
} from './pgfault-record.js';
export {
  IOMMUFD_PAGE_RESP_SUCCESS,
  IOMMUFD_PAGE_RESP_INVALID,
  PcieResponseCode,
  isIommufdResponseCode,
  toPcieResponseCode,
  fromPcieResponseCode,
} from './codes.js';
export { PriFunction, PriStatus, PRG_INDEX_MAX, type PriFunctionOptions, type PriFunctionStats, type PriPage } from './pri-function.js';
