/**
 * The stage-1 walk (smmuv3.md §7): VA → IPA/PA through the CD's TTB0/TTB1 tables, with region
 * selection and TBI, hierarchical table attributes (unless HADx), leaf checks in architectural
 * priority order (translation, address size, access flag, permission) and HTTU AF / dirty updates.
 *
 * Nested (§8, nested.ts): when a stage-2 context is given, every descriptor address (TTB plus
 * index, and each next-level table plus index) is an IPA translated by stage 2 before the fetch,
 * and the stage-1 output is translated by stage 2; the result combines both stages.
 * Addresses are int32 halves (geometry.ts).
 */
import { EvtId, PTE_AF, PTE_AP_RDONLY, PTE_DBM_HI, PTE_NG } from '../../codec/index.js';
import { descAddrHi, descAddrLo, tableAttrs } from './descriptor.js';
import { faultS1 } from './faults.js';
import { atOrAbove, blockAllowed, hiOf, join, levelIndex, levelShift, s1StartLevel } from './geometry.js';
import { casDescriptorLow, HTTU_MAX_RETRIES } from './httu.js';
import { nestedDescriptorRead, nestedDescriptorWrite, nestedFinish } from './nested.js';
import { s1LeafPerms } from './permissions.js';
import { REGION_NONE, selectRegion } from './region.js';
import { PERM_UNPRIV_SHIFT, PERM_W, type S1Ctx, type S2Ctx, type WalkResult } from './walk-context.js';
import type { WalkState } from './walk-state.js';

/**
 * Walks stage 1 (and, when `s2` is given, stage 2 for every descriptor and for the output).
 * `out` must have been cleared by the caller ({@link clearWalkResult}).
 * @param vaLo - VA bits [31:0] (int32)
 * @param vaHi - VA bits [63:32] (int32)
 * @param access - ACCESS_* bits
 * @param priv - privileged (PnU = 1) transaction
 * @returns true when translated; `out` holds the result or the fault
 */
export function walkStage1(
  st: WalkState,
  vaLo: number,
  vaHi: number,
  access: number,
  priv: boolean,
  c: S1Ctx,
  s2: S2Ctx | null,
  out: WalkResult,
): boolean {
  st.stats.s1Walks++;
  // Region selection (§7.4).
  const region = selectRegion(vaLo, vaHi, c.t0sz, c.t1sz, c.tbi0, c.tbi1);
  if (region === REGION_NONE) return faultS1(st, out, EvtId.F_TRANSLATION, 0, 0);
  let ttb: number;
  let tsz: number;
  let g: number;
  let had: boolean;
  if (region === 0) {
    if (c.epd0) return faultS1(st, out, EvtId.F_TRANSLATION, 0, 0);
    ttb = c.ttb0;
    tsz = c.t0sz;
    g = c.g0;
    had = c.had0;
  } else {
    if (c.epd1) return faultS1(st, out, EvtId.F_TRANSLATION, 0, 0);
    ttb = c.ttb1;
    tsz = c.t1sz;
    g = c.g1;
    had = c.had1;
  }
  const ia = 64 - tsz;
  const start = s1StartLevel(ia, g);
  // A granule or size the CD check (checkS1Config) rejects: never walked.
  if ((g !== 12 && g !== 14 && g !== 16) || !(start >= 0 && start <= 3)) {
    return faultS1(st, out, EvtId.F_TRANSLATION, 0, 0);
  }
  const S = g - 3;
  let shift = levelShift(g, start);
  const bits = ia - shift; // 1..S
  // The start table is aligned to its size (≤ one granule).
  let baseLo = (ttb | 0) & ~((1 << (bits + 3)) - 1);
  let baseHi = hiOf(ttb);
  let mask = (1 << bits) - 1;
  const oa52 = g === 16 && c.oaBits > 48;
  const oaBits = c.oaBits;
  const ha = c.ha && st.hwAf;
  const hd = c.hd && st.hwDirty;
  const u32 = st.u32;
  const memSize = st.memSize;
  const nested = s2 !== null;
  const need = access & 7;
  let tbl = 0;
  let level = start;
  let retries = 0;
  // Bounded: every pass either goes down a level (≤ 4) or counts a retry (≤ HTTU_MAX_RETRIES).
  while (level <= 3) {
    // Descriptor address (an IPA when nested); table bases are size-aligned: no carry.
    const dLo = baseLo | (levelIndex(vaLo, vaHi, shift, mask) << 3);
    let paLo = dLo;
    let paHi = baseHi;
    if (nested) {
      // §8 step 4: the descriptor's IPA goes through stage 2 (read, CLASS = TT).
      if (!nestedDescriptorRead(st, dLo, baseHi, s2, out)) return false;
      paLo = st.s2PaLo;
      paHi = st.s2PaHi;
    }
    out.walkSteps++;
    if (paHi !== 0 || (paLo >>> 0) + 8 > memSize) return faultS1(st, out, EvtId.F_WALK_EABT, paLo, paHi);
    const w = paLo >>> 2;
    const lo = u32[w] | 0;
    const hi = u32[w + 1] | 0;
    if ((lo & 1) === 0) return faultS1(st, out, EvtId.F_TRANSLATION, 0, 0);
    if (level < 3 && (lo & 2) !== 0) {
      const nLo = descAddrLo(lo, g);
      const nHi = descAddrHi(lo, hi, g, oa52);
      if (atOrAbove(nLo, nHi, oaBits)) return faultS1(st, out, EvtId.F_ADDR_SIZE, 0, 0);
      if (!had) tbl |= tableAttrs(hi);
      baseLo = nLo;
      baseHi = nHi;
      shift -= S;
      mask = (1 << S) - 1;
      level++;
      continue;
    }
    if (level === 3 ? (lo & 2) === 0 : !blockAllowed(g, level, oa52)) {
      return faultS1(st, out, EvtId.F_TRANSLATION, 0, 0);
    }
    // Leaf (§7.4): address size, access flag (priority over permission), permission.
    const oaLo = descAddrLo(lo, shift);
    const oaHi = descAddrHi(lo, hi, shift, oa52);
    if (atOrAbove(oaLo, oaHi, oaBits)) return faultS1(st, out, EvtId.F_ADDR_SIZE, 0, 0);
    let newLo = lo;
    if ((lo & PTE_AF) === 0) {
      if (ha) newLo |= PTE_AF;
      else if (!c.affd) return faultS1(st, out, EvtId.F_ACCESS, 0, 0);
    }
    let perm = s1LeafPerms(lo, hi, tbl, c.wxn, c.pan);
    const have = priv ? perm & 7 : (perm >>> PERM_UNPRIV_SHIFT) & 7;
    if ((have & need) !== need) {
      // A write to a clean DBM page (AP[2] = 1, DBM = 1) succeeds with HD when AP[2] of the leaf
      // is the only obstacle: hardware clears AP[2].
      let dirtied = false;
      if (hd && (need & PERM_W) !== 0 && (hi & PTE_DBM_HI) !== 0 && (lo & PTE_AP_RDONLY) !== 0) {
        const pd = s1LeafPerms(lo & ~PTE_AP_RDONLY, hi, tbl, c.wxn, c.pan);
        const haveD = priv ? pd & 7 : (pd >>> PERM_UNPRIV_SHIFT) & 7;
        if ((haveD & need) === need) {
          newLo &= ~PTE_AP_RDONLY;
          perm = pd;
          dirtied = true;
        }
      }
      if (!dirtied) return faultS1(st, out, EvtId.F_PERMISSION, 0, 0);
    }
    if (newLo !== lo) {
      let wLo = paLo;
      let wHi = paHi;
      if (nested) {
        // The update is a write to the descriptor's IPA: stage 2 must allow it (CLASS = TT, TTRnW = 0).
        if (!nestedDescriptorWrite(st, dLo, baseHi, s2, out)) return false;
        wLo = st.s2PaLo;
        wHi = st.s2PaHi;
      }
      if (wHi !== 0 || (wLo >>> 0) + 8 > memSize || !casDescriptorLow(st.i32, wLo >>> 2, lo, newLo)) {
        // Lost a race with software (or stage 2 moved under us): read the descriptor again.
        st.stats.casRetries++;
        if (++retries > HTTU_MAX_RETRIES) {
          return faultS1(st, out, (lo & PTE_AF) === 0 ? EvtId.F_ACCESS : EvtId.F_PERMISSION, 0, 0);
        }
        continue;
      }
      out.httuWrites++;
      if ((lo & PTE_AF) === 0) st.stats.afUpdates++;
      if ((newLo & PTE_AP_RDONLY) !== (lo & PTE_AP_RDONLY)) st.stats.dirtyUpdates++;
    }
    // Stage-1 output = leaf address | VA offset inside the leaf.
    let o1Lo: number;
    let o1Hi: number;
    if (shift < 32) {
      o1Lo = oaLo | (vaLo & ((1 << shift) - 1));
      o1Hi = oaHi;
    } else {
      o1Lo = vaLo;
      o1Hi = oaHi | (vaHi & ((1 << (shift - 32)) - 1));
    }
    out.global = (lo & PTE_NG) === 0;
    out.level = level;
    out.ipaOut = join(o1Lo, o1Hi);
    if (!nested) {
      out.ok = true;
      out.pa = out.ipaOut;
      out.sizeLog2 = shift;
      out.permAll = perm;
      out.perm = priv ? perm & 7 : (perm >>> PERM_UNPRIV_SHIFT) & 7;
      return true;
    }
    // §8 step 6: final stage-2 translation of the output IPA (CLASS = IN).
    return nestedFinish(st, o1Lo, o1Hi, shift, perm, access, priv, s2, out);
  }
  return faultS1(st, out, EvtId.F_TRANSLATION, 0, 0);
}
