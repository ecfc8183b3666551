/**
 * @packageDocumentation
 * `@iommulab/hw-mock`: the smallest honest iommulab backend, modelled on the Linux iommufd
 * selftest mock. The default export is the backend plugin ({@link mockBackend}); named exports
 * give the hardware model, the driver, the table-building library and the codec.
 */
import { mockBackend } from './backend.js';

export { mockBackend } from './backend.js';
export { MockHardware, type MockHardwareOptions } from './hardware.js';
export { MockDriver, createMockDriver, MOCK_CAPABILITIES, type MockDriverOptions } from './driver.js';
export { MockPagingDomain } from './paging-domain.js';
export { MockNestedDomain, SELFTEST_INVALIDATE_ENTRY_BYTES } from './nested-domain.js';
export { MockPageTable, PT_READ, PT_WRITE, type PtLeaf } from './page-table.js';
export { PasidTable, writeDte } from './device-table.js';
export { Iotlb } from './iotlb.js';
export {
  MockViommu,
  mockDeviceCache,
  nestedDomainViommu,
  VIOMMU_SELFTEST_DATA_BYTES,
  VIOMMU_INVALIDATE_SELFTEST_ENTRY_BYTES,
} from './viommu.js';
export * from './constants.js';
// Register and descriptor layouts: `@iommulab/hw-mock/codec`.

export default mockBackend;
