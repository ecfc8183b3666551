/**
 * A minimal backend module around the hardware model alone (no driver), so the model can be run
 * by the runtime's InstanceHost — in-thread or in its own worker — before / independently of the
 * package's backend descriptor (src/backend.ts).
 */
import { API_VERSION } from '@iommulab/driver-api';
import type { HardwareContext, HostedBackend } from '@iommulab/runtime';
import { SMMU_REG_BYTES } from '../../src/codec/index.js';
import { SmmuV3Hardware } from '../../src/model/smmu.js';

const backend: HostedBackend = {
  apiVersion: API_VERSION,
  id: 'arm-smmuv3-model',
  registerFileBytes: SMMU_REG_BYTES,
  createHardware: (ctx: HardwareContext) => new SmmuV3Hardware(ctx),
};
/** The model-only backend (default export, as InstanceHost loads it). */
export default backend;
