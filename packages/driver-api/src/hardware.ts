import type { DmaRequest, DmaResult, HardwareContext, HostedHardware } from '@iommulab/runtime';

/**
 * A device-side page request (PCIe PRI Page Request Message), sent to the IOMMU by a device whose
 * translation faulted and which can wait for the page to be made present.
 */
export interface DevicePageRequest {
  readonly rid: number;
  /** PASID, or -1. */
  readonly pasid: number;
  /** The page address requested. */
  readonly addr: number;
  /** `PgFaultPerm` bits requested. */
  readonly perm: number;
  /** Page request group index. */
  readonly grpid: number;
  /** Last request of its group. */
  readonly last: boolean;
}

/**
 * The hardware-model half of a backend: it runs inside the instance's worker (or in-thread),
 * created over a {@link HardwareContext} (PhysMem + RegisterFile). Software reaches it only
 * through registers, memory and doorbells; devices reach it through the device port
 * (`translate`, and `pageRequest` for PRI-capable devices).
 *
 * The boundary is deliberately small, like the RISC-V IOMMU reference model's: reset, register
 * and queue processing (`service`, run on every doorbell), translate, page request, stats.
 */
export interface IommuHardware extends HostedHardware {
  /**
   * Device port: translates one DMA request into `out` and returns it. Must not allocate and
   * must not throw: a bad request is a fault (`out.ok = false`, `out.fault` a FaultReason).
   */
  translate(req: DmaRequest, out: DmaResult): DmaResult;
  /** Processes register writes and queues (command queue, enable bits...). Returns work done. */
  service(): number;
  /** Resets to the power-on state: registers to reset values, caches and queues empty. */
  reset(): void;
  /** Counters for reports (translations, IOTLB hits and misses, walks, commands, faults...). */
  stats(): Record<string, number>;
  /**
   * Device port for PRI: queues a page request for software. Returns false when the request was
   * dropped (queue overflow or PRI disabled); never throws.
   */
  pageRequest?(req: DevicePageRequest): boolean;
}

export type { HardwareContext };
