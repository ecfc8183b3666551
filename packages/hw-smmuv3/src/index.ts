/**
 * @packageDocumentation
 * `@iommulab/hw-smmuv3`: an Arm SMMUv3 for iommulab. The default export is the backend plugin
 * ({@link smmuv3Backend}); named exports give the two halves — the hardware model
 * ({@link SmmuV3Hardware}, run in its own worker by hosts) and the host driver
 * ({@link SmmuV3Driver}) — the feature set the model advertises, and the LPAE page-table library.
 *
 * Sub-paths: `@iommulab/hw-smmuv3/codec` (bit-exact layouts), `@iommulab/hw-smmuv3/pgtable`
 * (io-pgtable-arm tables), `@iommulab/hw-smmuv3/driver` (the driver's building blocks: probe,
 * command encoders, STE / CD builders, stream and CD tables — the table-building library).
 */
import { smmuv3Backend } from './backend.js';

export { smmuv3Backend } from './backend.js';
export { SmmuV3Hardware } from './model/smmu.js';
export {
  resolveFeatures,
  DEFAULT_FEATURES,
  FEATURE_OPTION_NAMES,
  type SmmuFeatures,
  type SmmuGranules,
  type StallModelName,
  type TlbPolicy,
  type HttuLevel,
  type PriAutoResponse,
} from './model/features.js';
export { idrRegisters, type IdrValues } from './model/idr.js';
export { SmmuV3Driver, createSmmuV3Driver, SMMUV3_CAPABILITIES, type SmmuV3DriverOptions } from './driver/driver.js';
export { DRIVER_OPTION_NAMES, MODEL_OPTION_NAMES } from './option-names.js';
export { IoPgtableArm, type IoPgtableCfg } from './pgtable/index.js';

export default smmuv3Backend;
