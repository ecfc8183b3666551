/**
 * The SMMUv3 model's VMSAv8-64 translation-table walker (smmuv3.md §7, §8): contexts, results,
 * permission bits, configuration checks and the {@link Walker}.
 */
export {
  PERM_R,
  PERM_W,
  PERM_X,
  PERM_UNPRIV_SHIFT,
  PERM_ALL,
  permFor,
  permAllows,
  newS1Ctx,
  newS2Ctx,
  newWalkResult,
  clearWalkResult,
  type GranuleShift,
  type S1Ctx,
  type S2Ctx,
  type WalkResult,
} from './walk-context.js';
export {
  checkS1Config,
  checkS2Config,
  s1ConfigProblem,
  s2ConfigProblem,
  alignTtb,
  s1StartTableBytes,
  s2StartTableBytes,
  type WalkCaps,
} from './config-check.js';
export { s1StartLevel, s2StartLevel, startIndexBits, blockAllowed } from './geometry.js';
export { descAddr, TBL_PXN, TBL_UXN, TBL_NO_UNPRIV, TBL_RDONLY } from './descriptor.js';
export { s1LeafPerms, s2LeafPerms } from './permissions.js';
export { selectRegion, REGION_NONE } from './region.js';
export { HTTU_MAX_RETRIES } from './httu.js';
export { WalkState, type WalkerOptions, type WalkerHttu, type WalkStats } from './walk-state.js';
export { Walker } from './walker.js';
