/**
 * A backend without PRI for the tests: the mock with its `pri` option forced off (no CAP.PRI, so
 * the driver reports `capabilities.pri = false` and the model drops every page request).
 */
import { defineBackend, type DriverContext, type HardwareContext } from '@iommulab/driver-api';
import mock from '@iommulab/hw-mock';

const noPri = (options: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> => ({ ...options, pri: false });

export default defineBackend({
  ...mock,
  id: 'mock-no-pri',
  capabilities: { ...mock.capabilities, pri: false },
  createHardware: (ctx: HardwareContext) => mock.createHardware({ ...ctx, options: noPri(ctx.options) }),
  createDriver: (ctx: DriverContext) => mock.createDriver({ ...ctx, options: noPri(ctx.options) }),
});
