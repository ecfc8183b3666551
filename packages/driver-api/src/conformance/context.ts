import { ACCESS_READ, NO_PASID, dmaRequest, type DmaResult, type InstanceMode } from '@iommulab/runtime';
import type { BackendCapabilities } from '../capabilities.js';
import type { DeviceSpec, IommuDevice } from '../device.js';
import type { BackendStack } from '../open-backend.js';

/** What a conformance case gets: a freshly opened backend and small helpers over it. */
export interface CaseContext {
  readonly stack: BackendStack;
  readonly mode: InstanceMode;
  /** Capabilities the probed driver reports. */
  readonly caps: BackendCapabilities;
  /** Runs of each property test (fast-check `numRuns`). */
  readonly numRuns: number;
  /** Smallest page size of the backend. */
  readonly pageSize: number;
  /** First IOVA a case may use: the aperture start, aligned to the largest tested page size. */
  readonly iovaBase: number;
  /** Probes a device with a fresh requester id (1, 2, 3... unless `spec.rid` is given). */
  probe(spec?: Partial<DeviceSpec>): Promise<IommuDevice>;
  /** Allocates `bytes` of host RAM aligned to `align` and returns its physical address. */
  allocPa(bytes: number, align?: number): number;
  /** Sends one DMA through the device port. `pasid` -1 (default) for none. */
  dma(rid: number, iova: number, access?: number, pasid?: number): Promise<DmaResult>;
}

/** Builds a {@link CaseContext} over an open stack. */
export function caseContext(stack: BackendStack, mode: InstanceMode, numRuns = 20): CaseContext {
  const caps = stack.driver.capabilities;
  const pageSize = caps.pageSizes[0];
  const bigPage = caps.pageSizes.filter((s) => s <= 2 * 1024 * 1024).at(-1) ?? pageSize;
  const iovaBase = Math.ceil(caps.aperture.start / bigPage) * bigPage;
  let nextRid = 1;
  const req = dmaRequest();
  return {
    stack,
    mode,
    numRuns,
    caps,
    pageSize,
    iovaBase,
    probe(spec = {}) {
      const rid = spec.rid ?? nextRid++;
      return stack.driver.probeDevice({ ...spec, rid });
    },
    allocPa(bytes, align = 4096) {
      const frames = Math.ceil(bytes / 4096);
      return stack.mem.allocFrames(frames, Math.max(1, Math.ceil(align / 4096)));
    },
    async dma(rid, iova, access = ACCESS_READ, pasid = NO_PASID) {
      req.rid = rid;
      req.iova = iova;
      req.access = access;
      req.pasid = pasid;
      req.privileged = false;
      const r = await stack.port.translate(req);
      return { ...r };
    },
  };
}
