/**
 * Nested translation glue (smmuv3.md §8): the stage-2 translations a stage-1 walk makes when
 * stage 2 is enabled, and the combination of both stages' results.
 *
 * - Each stage-1 descriptor address is an IPA: translated by stage 2 as a read (CLASS = TT,
 *   TTRnW = 1) before the fetch; a hardware AF / dirty update of a stage-1 descriptor is a write
 *   to that IPA (CLASS = TT, TTRnW = 0) and needs stage-2 write permission.
 * - The stage-1 output IPA is translated by stage 2 with the transaction's access (CLASS = IN).
 * - Combined result: permissions ANDed per privilege, size = the smaller of the two leaves
 *   (QEMU `combine_tlb`), tagged with the stage-2 leaf for TLBI_S2_IPA.
 */
import { ACCESS_READ, ACCESS_WRITE } from '@iommulab/runtime';
import { EvtClass } from '../../codec/index.js';
import { join } from './geometry.js';
import { walkStage2 } from './stage2.js';
import { PERM_UNPRIV_SHIFT, type S2Ctx, type WalkResult } from './walk-context.js';
import type { WalkState } from './walk-state.js';

/**
 * Translates the IPA of a stage-1 descriptor for a read (result in st.s2PaLo/Hi), or records the
 * stage-2 fault (S2 = 1, CLASS = TT, TTRnW = 1) in `out` and returns false.
 */
export function nestedDescriptorRead(st: WalkState, ipaLo: number, ipaHi: number, s2: S2Ctx, out: WalkResult): boolean {
  return walkStage2(st, ipaLo, ipaHi, ACCESS_READ, true, s2, EvtClass.TT, true, out);
}

/**
 * Translates the IPA of a stage-1 descriptor for a hardware-update write (result in
 * st.s2PaLo/Hi), or records the stage-2 fault (S2 = 1, CLASS = TT, TTRnW = 0) and returns false.
 */
export function nestedDescriptorWrite(st: WalkState, ipaLo: number, ipaHi: number, s2: S2Ctx, out: WalkResult): boolean {
  return walkStage2(st, ipaLo, ipaHi, ACCESS_WRITE, true, s2, EvtClass.TT, false, out);
}

/**
 * Final stage of a nested walk: translates the stage-1 output IPA (leaf size 2^s1Size, packed
 * stage-1 permissions `s1Perm`) through stage 2 with the transaction's access (CLASS = IN) and
 * writes the combined result into `out`.
 * @returns false after recording the stage-2 fault in `out`
 */
export function nestedFinish(
  st: WalkState,
  ipaLo: number,
  ipaHi: number,
  s1Size: number,
  s1Perm: number,
  access: number,
  priv: boolean,
  s2: S2Ctx,
  out: WalkResult,
): boolean {
  if (!walkStage2(st, ipaLo, ipaHi, access, priv, s2, EvtClass.IN, false, out)) return false;
  const p = s1Perm & st.s2PermAll;
  const s2Size = st.s2SizeLog2;
  out.ok = true;
  out.pa = join(st.s2PaLo, st.s2PaHi);
  out.sizeLog2 = s1Size < s2Size ? s1Size : s2Size;
  out.permAll = p;
  out.perm = priv ? p & 7 : (p >>> PERM_UNPRIV_SHIFT) & 7;
  out.s2Base = join(st.s2BaseLo, st.s2BaseHi);
  out.s2SizeLog2 = s2Size;
  return true;
}
