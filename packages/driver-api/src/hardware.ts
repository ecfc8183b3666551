import type { DmaRequest, DmaResult, HardwareContext, HostedHardware, PageRequestInit } from '@iommulab/runtime';

/**
 * A device-side page request (PCIe PRI Page Request Message), sent to the IOMMU by a device whose
 * translation faulted and which can wait for the page to be made present: `rid`, `pasid` (-1 for
 * none), the page `addr`, the `PgFaultPerm` bits requested in `perm`, the page request group index
 * `grpid` and `last` (last request of its group). It is the runtime's device-port
 * `PageRequestInit`, read-only, so a request sent with `DevicePort.pageRequest` reaches
 * {@link IommuHardware.pageRequest} field for field.
 */
export type DevicePageRequest = Readonly<PageRequestInit>;

/**
 * The hardware-model half of a backend: it runs inside the instance's worker (or in-thread),
 * created over a {@link HardwareContext} (PhysMem + RegisterFile). Software reaches it only
 * through registers, memory and doorbells; devices reach it through the device port
 * (`translate`; `atsTranslate` and `pageRequest` for ATS / PRI-capable devices).
 *
 * The boundary is deliberately small, like the RISC-V IOMMU reference model's: reset, register
 * and queue processing (`service`, run on every doorbell), translate, ATS translation, page
 * request, stats.
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
   * PCIe ATS Translation Request: translate for the device's ATC; a backend without ATS omits it
   * (the device port then rejects with `UNSUPPORTED`). Writes into `out` and returns it; like
   * `translate`, must not allocate and must not throw.
   */
  atsTranslate?(req: DmaRequest, out: DmaResult): DmaResult;
  /**
   * Device port for PRI: queues a page request for software. Returns false when the request was
   * dropped (queue overflow or PRI disabled); never throws. A backend without PRI omits it (the
   * device port then rejects with `UNSUPPORTED`). The device port may reuse `req`: do not keep it.
   */
  pageRequest?(req: DevicePageRequest): boolean;
}

export type { HardwareContext };
