/**
 * The SMMUv3 backend descriptor (`BackendPlugin`): what hosts load by module specifier. The
 * package's main module default-exports it. The hardware half runs in the instance worker (or
 * in-thread); the driver half runs with the host.
 */
import { API_VERSION, defineBackend, type DriverContext, type HardwareContext } from '@iommulab/driver-api';
import { SMMU_REG_BYTES } from './codec/regs.js';
import { SMMUV3_CAPABILITIES, createSmmuV3Driver } from './driver/driver.js';
import { SmmuV3Hardware } from './model/smmu.js';

/**
 * The hardware's view of the options a host gives both halves (the model accepts and ignores the
 * driver's keys itself): the generic bench option `iotlbEntries` becomes the model's `tlbEntries`.
 */
function hardwareOptions(o: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o ?? {})) {
    if (k === 'iotlbEntries') {
      if (o.tlbEntries === undefined) out.tlbEntries = v;
      continue;
    }
    out[k] = v;
  }
  return out;
}

/** The Arm SMMUv3 backend plugin. */
export const smmuv3Backend = defineBackend({
  apiVersion: API_VERSION,
  id: 'arm-smmuv3',
  displayName: 'Arm SMMUv3',
  version: '0.1.0',
  capabilities: SMMUV3_CAPABILITIES,
  registerFileBytes: SMMU_REG_BYTES,
  createHardware: (ctx: HardwareContext) => new SmmuV3Hardware({ ...ctx, options: hardwareOptions(ctx.options) }),
  createDriver: (ctx: DriverContext) => createSmmuV3Driver(ctx),
});
