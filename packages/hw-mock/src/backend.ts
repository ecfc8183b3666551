/**
 * The mock backend descriptor (`BackendPlugin`): what hosts load by module specifier. The
 * package's main module (index.ts) default-exports it.
 */
import { API_VERSION, defineBackend, type HardwareContext } from '@iommulab/driver-api';
import { MOCK_CAPABILITIES, createMockDriver } from './driver.js';
import { MockHardware } from './hardware.js';
import { MOCK_REG_BYTES } from './regs.js';

/** The mock IOMMU backend plugin. */
export const mockBackend = defineBackend({
  apiVersion: API_VERSION,
  id: 'mock',
  displayName: 'Mock IOMMU (iommufd selftest)',
  version: '0.1.0',
  capabilities: MOCK_CAPABILITIES,
  registerFileBytes: MOCK_REG_BYTES,
  createHardware: (ctx: HardwareContext) => new MockHardware(ctx),
  createDriver: createMockDriver,
});
