/**
 * Recording a walk fault into a {@link WalkResult} (IHI 0070 §7.3.12–§7.3.16): stage-1 faults have
 * S2 = 0 and CLASS = IN (F_TRANSLATION / F_ADDR_SIZE / F_ACCESS / F_PERMISSION) or CLASS = TT
 * (F_WALK_EABT on a stage-1 descriptor fetch), IPA 0 (UNKNOWN); stage-2 faults carry S2 = 1, CLASS,
 * the IPA being translated and, for CLASS = TT, TTRnW. Addresses arrive as int32 halves.
 */
import { EvtClass, EvtId } from '../../codec/index.js';
import { join } from './geometry.js';
import type { WalkResult } from './walk-context.js';
import type { WalkState } from './walk-state.js';

/** Records a stage-1 fault (`fetchLo/Hi` only for F_WALK_EABT, else 0). Returns false. */
export function faultS1(st: WalkState, out: WalkResult, id: number, fetchLo: number, fetchHi: number): false {
  out.ok = false;
  out.fault = id;
  out.s2 = false;
  // §7.3.12: a stage-1 descriptor fetch abort is S2 = 0, CLASS = TT; §7.3.13: other stage-1 faults CLASS = IN.
  out.cls = id === EvtId.F_WALK_EABT ? EvtClass.TT : EvtClass.IN;
  out.ipa = 0;
  out.ttrnw = false;
  out.fetchAddr = join(fetchLo, fetchHi);
  st.stats.faults++;
  return false;
}

/**
 * Records a stage-2 fault: `cls` is the EvtClass of the access being translated, `ipaLo/Hi` its
 * IPA, `ttrnw` whether a CLASS=TT access was a descriptor read (false: a hardware-update write),
 * `fetchLo/Hi` the aborted descriptor PA for F_WALK_EABT (else 0). Returns false.
 */
export function faultS2(
  st: WalkState,
  out: WalkResult,
  id: number,
  cls: number,
  ipaLo: number,
  ipaHi: number,
  ttrnw: boolean,
  fetchLo: number,
  fetchHi: number,
): false {
  out.ok = false;
  out.fault = id;
  out.s2 = true;
  out.cls = cls;
  out.ipa = join(ipaLo, ipaHi);
  out.ttrnw = ttrnw;
  out.fetchAddr = join(fetchLo, fetchHi);
  st.stats.faults++;
  return false;
}
