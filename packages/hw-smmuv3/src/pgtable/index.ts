/**
 * The driver's LPAE IO page-table library (Linux io-pgtable-arm equivalent, smmuv3.md §7).
 */
export {
  IoPgtableArm,
  type IoPgtableFlushFn,
  type IoPgtableLeaf,
} from './io-pgtable-arm.js';
export {
  lpaeGeometry,
  lpaeIpsEncoding,
  lpaeTgEncoding,
  packVtcr,
  LPAE_MAIR,
  LPAE_MAIR_IDX_CACHE,
  LPAE_MAIR_IDX_DEV,
  LPAE_S2_MAX_CONCAT,
  type IoPgtableCfg,
  type IoPgtableFmt,
  type IoPgtableGranule,
  type LpaeGeometry,
  type LpaeTcr,
  type LpaeVtcr,
} from './geometry.js';
export { protToPte, protToPteHi, protToPteLo } from './prot.js';
