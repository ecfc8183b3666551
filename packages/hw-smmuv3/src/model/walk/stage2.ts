/**
 * The stage-2 walk (smmuv3.md §7.1–§7.4): IPA → PA through the tables at S2TTB, starting at the
 * level S2SL0 selects with up to 16 concatenated start tables, with the stage-2 leaf checks
 * (output size, AF / S2HA, S2PTW for descriptor fetches, S2AP / XN, DBM / S2HD).
 *
 * Used for stage-2-only translations (CLASS = IN), for every stage-1 descriptor access of a nested
 * walk (CLASS = TT) and for the final stage-2 translation of a nested walk's output (CLASS = IN).
 * The result of a successful walk is left in the {@link WalkState} scratch fields; a fault is
 * recorded in `out` with S2 = 1. Addresses are int32 halves (geometry.ts).
 */
import { EvtClass, EvtId, PTE_AF, PTE_DBM_HI, PTE_S2AP_WRITE } from '../../codec/index.js';
import { descAddrHi, descAddrLo } from './descriptor.js';
import { faultS2 } from './faults.js';
import { atOrAbove, blockAllowed, hiOf, levelIndex, levelShift, s2StartLevel } from './geometry.js';
import { casDescriptorLow, HTTU_MAX_RETRIES } from './httu.js';
import { s2LeafPerms } from './permissions.js';
import { PERM_UNPRIV_SHIFT, PERM_W, type S2Ctx, type WalkResult } from './walk-context.js';
import type { WalkState } from './walk-state.js';

/**
 * Walks stage 2 for the IPA `ipaLo`/`ipaHi`.
 * @param access - ACCESS_* bits checked against the leaf (READ for descriptor fetches, WRITE for
 *   hardware updates of stage-1 descriptors)
 * @param priv - privilege of the transaction (matters only for execution with XNX)
 * @param cls - EvtClass reported on a fault (TT for stage-1 descriptor accesses, IN otherwise)
 * @param ttrnw - TTRnW reported on a fault (CLASS TT: true for reads, false for update writes)
 * @returns true on success (result in st.s2PaLo/Hi, s2PermAll, s2SizeLog2, s2BaseLo/Hi, s2Level)
 */
export function walkStage2(
  st: WalkState,
  ipaLo: number,
  ipaHi: number,
  access: number,
  priv: boolean,
  c: S2Ctx,
  cls: number,
  ttrnw: boolean,
  out: WalkResult,
): boolean {
  st.stats.s2Walks++;
  const g = c.g;
  const ia = 64 - c.t0sz;
  // §7.2: an IPA at or above 2^IA is a stage-2 translation fault before any fetch.
  if (atOrAbove(ipaLo, ipaHi, ia)) return faultS2(st, out, EvtId.F_TRANSLATION, cls, ipaLo, ipaHi, ttrnw, 0, 0);
  const start = s2StartLevel(g, c.sl0);
  if ((g !== 12 && g !== 14 && g !== 16) || start < 0 || start > 3) {
    // Reserved SL0 / granule: rejected by checkS2Config (C_BAD_STE); never walked.
    return faultS2(st, out, EvtId.F_TRANSLATION, cls, ipaLo, ipaHi, ttrnw, 0, 0);
  }
  const S = g - 3;
  let shift = levelShift(g, start);
  const bits = ia - shift;
  if (bits < 1 || bits > S + 4) {
    // No bits or more than 16 concatenated tables: ILLEGAL, rejected by checkS2Config.
    return faultS2(st, out, EvtId.F_TRANSLATION, cls, ipaLo, ipaHi, ttrnw, 0, 0);
  }
  const oa52 = g === 16 && c.oaBits > 48;
  const oaBits = c.oaBits;
  const ha = c.ha && st.hwAf;
  const hd = c.hd && st.hwDirty;
  const u32 = st.u32;
  const memSize = st.memSize;
  // The (concatenated) start table is aligned to its size, at most 2^20 bytes (§7.2).
  const ttb = c.ttb;
  let baseLo = (ttb | 0) & ~((1 << (bits + 3)) - 1);
  let baseHi = hiOf(ttb);
  let mask = (1 << bits) - 1;
  let level = start;
  let retries = 0;
  // Bounded: every pass either goes down a level (≤ 4) or counts a retry (≤ HTTU_MAX_RETRIES).
  while (level <= 3) {
    // Table bases are aligned to the table size: adding the index never carries into bit 32.
    const paLo = baseLo | (levelIndex(ipaLo, ipaHi, shift, mask) << 3);
    out.walkSteps++;
    if (baseHi !== 0 || (paLo >>> 0) + 8 > memSize) {
      return faultS2(st, out, EvtId.F_WALK_EABT, cls, ipaLo, ipaHi, ttrnw, paLo, baseHi);
    }
    const w = paLo >>> 2;
    const lo = u32[w] | 0;
    const hi = u32[w + 1] | 0;
    if ((lo & 1) === 0) return faultS2(st, out, EvtId.F_TRANSLATION, cls, ipaLo, ipaHi, ttrnw, 0, 0);
    if (level < 3 && (lo & 2) !== 0) {
      // Table descriptor (stage-2 tables carry no hierarchical attributes).
      baseLo = descAddrLo(lo, g);
      baseHi = descAddrHi(lo, hi, g, oa52);
      if (atOrAbove(baseLo, baseHi, oaBits)) return faultS2(st, out, EvtId.F_ADDR_SIZE, cls, ipaLo, ipaHi, ttrnw, 0, 0);
      shift -= S;
      mask = (1 << S) - 1;
      level++;
      continue;
    }
    if (level === 3 ? (lo & 2) === 0 : !blockAllowed(g, level, oa52)) {
      return faultS2(st, out, EvtId.F_TRANSLATION, cls, ipaLo, ipaHi, ttrnw, 0, 0);
    }
    // Leaf (§7.4): address size, then access flag, then permissions.
    const oaLo = descAddrLo(lo, shift);
    const oaHi = descAddrHi(lo, hi, shift, oa52);
    if (atOrAbove(oaLo, oaHi, oaBits)) return faultS2(st, out, EvtId.F_ADDR_SIZE, cls, ipaLo, ipaHi, ttrnw, 0, 0);
    let newLo = lo;
    if ((lo & PTE_AF) === 0) {
      if (ha) newLo |= PTE_AF;
      else if (!c.affd) return faultS2(st, out, EvtId.F_ACCESS, cls, ipaLo, ipaHi, ttrnw, 0, 0);
    }
    // S2PTW: a stage-1 descriptor access to stage-2 Device memory (MemAttr[3:2] = 0) faults.
    if (c.ptw && cls === EvtClass.TT && (lo & 0x30) === 0) {
      return faultS2(st, out, EvtId.F_PERMISSION, cls, ipaLo, ipaHi, ttrnw, 0, 0);
    }
    let perm = s2LeafPerms(lo, hi, st.xnx);
    const need = access & 7;
    const have = priv ? perm & 7 : (perm >>> PERM_UNPRIV_SHIFT) & 7;
    if ((have & need) !== need) {
      // A write to a clean DBM page is allowed with S2HD: hardware sets S2AP[1].
      if (hd && (need & PERM_W) !== 0 && (hi & PTE_DBM_HI) !== 0 && ((have | PERM_W) & need) === need) {
        newLo |= PTE_S2AP_WRITE;
        perm |= PERM_W | (PERM_W << PERM_UNPRIV_SHIFT);
      } else {
        return faultS2(st, out, EvtId.F_PERMISSION, cls, ipaLo, ipaHi, ttrnw, 0, 0);
      }
    }
    if (newLo !== lo) {
      if (!casDescriptorLow(st.i32, w, lo, newLo)) {
        // Software changed the descriptor since we read it: read it again (same level).
        st.stats.casRetries++;
        if (++retries > HTTU_MAX_RETRIES) {
          const id = (lo & PTE_AF) === 0 ? EvtId.F_ACCESS : EvtId.F_PERMISSION;
          return faultS2(st, out, id, cls, ipaLo, ipaHi, ttrnw, 0, 0);
        }
        continue;
      }
      out.httuWrites++;
      if ((lo & PTE_AF) === 0) st.stats.afUpdates++;
      if ((newLo & PTE_S2AP_WRITE) !== (lo & PTE_S2AP_WRITE)) st.stats.dirtyUpdates++;
    }
    // Output = leaf address | input offset inside the leaf.
    if (shift < 32) {
      const m = (1 << shift) - 1;
      st.s2PaLo = oaLo | (ipaLo & m);
      st.s2PaHi = oaHi;
      st.s2BaseLo = ipaLo & ~m;
      st.s2BaseHi = ipaHi;
    } else {
      const m = (1 << (shift - 32)) - 1;
      st.s2PaLo = ipaLo;
      st.s2PaHi = oaHi | (ipaHi & m);
      st.s2BaseLo = 0;
      st.s2BaseHi = ipaHi & ~m;
    }
    st.s2PermAll = perm;
    st.s2SizeLog2 = shift;
    st.s2Level = level;
    return true;
  }
  return faultS2(st, out, EvtId.F_TRANSLATION, cls, ipaLo, ipaHi, ttrnw, 0, 0);
}
