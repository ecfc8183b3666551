/**
 * The SMMU's translation-table walker (smmuv3.md §7, §8): stage 1, stage 2 and nested walks
 * over the tables in PhysMem, writing into a reused {@link WalkResult}. Never throws on hostile
 * tables (every fetch is bounds-checked and aborts architecturally), never loops (walks are
 * bounded by the level count and a fixed number of HTTU retries), never allocates.
 */
import type { PhysMem } from '@iommulab/runtime';
import { EvtClass } from '../../codec/index.js';
import { hiOf, join } from './geometry.js';
import { walkStage1 } from './stage1.js';
import { walkStage2 } from './stage2.js';
import { clearWalkResult, PERM_UNPRIV_SHIFT, type S1Ctx, type S2Ctx, type WalkResult } from './walk-context.js';
import { WalkState, type WalkerOptions } from './walk-state.js';

/**
 * Translation-table walker of one SMMU instance.
 *
 * @example
 * const w = new Walker(mem, { httu: 2 });
 * const r = newWalkResult();
 * if (w.s1(iova, 0, ACCESS_READ, false, s1ctx, null, r)) use(r.pa);
 * else report(r.fault, r.s2, r.cls, r.ipa, r.fetchAddr);
 */
export class Walker extends WalkState {
  constructor(mem: PhysMem, opts: WalkerOptions) {
    super(mem, opts);
  }

  /**
   * Stage-1 translation of a VA, nested through stage 2 when `s2` is given (STE Config S1 or
   * nested, §7 / §8).
   * @param iova - the VA as a non-negative integer below 2^53 (bits [52:0])
   * @param iovaHi - VA bits [63:32] when the VA does not fit a number (TTB1 region, tagged
   *   pointers); 0 to take them from `iova`. When non-zero it replaces `floor(iova / 2^32)` and
   *   `iova` supplies only bits [31:0].
   * @param access - ACCESS_* bits (an instruction fetch is ACCESS_EXEC, reported as a read with InD, §12 #13)
   * @param priv - privileged transaction (PnU = 1)
   * @param s1 - the CD's walk context
   * @param s2 - the STE's stage-2 context for nested translation, or null
   * @param out - result (cleared first)
   * @returns `out.ok`
   */
  s1(iova: number, iovaHi: number, access: number, priv: boolean, s1: S1Ctx, s2: S2Ctx | null, out: WalkResult): boolean {
    clearWalkResult(out);
    out.inAddr = iovaHi !== 0 ? join(iova | 0, iovaHi | 0) : iova;
    const hi = iovaHi !== 0 ? iovaHi | 0 : hiOf(iova);
    const ok = walkStage1(this, iova | 0, hi, access, priv, s1, s2, out);
    this.stats.steps += out.walkSteps;
    return ok;
  }

  /**
   * Stage-2-only translation of an IPA: a transaction with STE Config S2 or stage 1 bypassed by
   * S1DSS (faults S2 = 1, CLASS = IN), or — with `cls` = EvtClass.CD and ACCESS_READ — the fetch
   * of a CD / L1CD through stage 2 in a nested configuration (§3.2 step 6, §8 step 3). The caller
   * checks a transaction's input against IAS first (an input at or above 2^IAS is a stage-1
   * address-size fault, §8).
   * @param ipa - non-negative integer below 2^53
   * @param cls - EvtClass reported on a fault (default IN)
   * @returns `out.ok`
   */
  s2(ipa: number, access: number, priv: boolean, s2: S2Ctx, out: WalkResult, cls: number = EvtClass.IN): boolean {
    clearWalkResult(out);
    out.inAddr = ipa;
    const ok = walkStage2(this, ipa | 0, hiOf(ipa), access, priv, s2, cls, cls === EvtClass.TT, out);
    this.stats.steps += out.walkSteps;
    if (!ok) return false;
    const p = this.s2PermAll;
    out.ok = true;
    out.pa = join(this.s2PaLo, this.s2PaHi);
    out.sizeLog2 = this.s2SizeLog2;
    out.permAll = p;
    out.perm = priv ? p & 7 : (p >>> PERM_UNPRIV_SHIFT) & 7;
    out.level = this.s2Level;
    out.ipaOut = ipa;
    out.s2Base = join(this.s2BaseLo, this.s2BaseHi);
    out.s2SizeLog2 = this.s2SizeLog2;
    return true;
  }
}
