/**
 * The page-table walk (the mock's only translation stage): two levels over 2048-byte IO pages.
 * L1 (16 KiB, 2048 entries, index iova[30:20]) holds table pointers or 1 MiB leaves; L2 (4 KiB,
 * 512 entries, index iova[19:11]) holds 2 KiB leaves. The walker sets A on first use and, with
 * DIRTY_EN, D on a write, with atomic read-modify-writes of word0 (software may be clearing D
 * concurrently from another thread). Results go to fields of the walker: no allocation.
 */
import type { PhysMem } from '@iommulab/runtime';
import { ACCESS_EXEC, ACCESS_READ, ACCESS_WRITE } from '@iommulab/runtime';
import {
  PTE_A,
  PTE_D,
  PTE_HI_PA_MASK,
  PTE_LEAF,
  PTE_PA_MASK_HUGE,
  PTE_PA_MASK_PAGE,
  PTE_PA_MASK_TABLE,
  PTE_R,
  PTE_V,
  PTE_W,
  PTE_W0_RES,
  join52,
} from './codec.js';
import { S } from './status.js';

/** Reserved bits of an L1 table pointer's word0: [11:1]. */
const TABLE_RES = 0x0000_0ffe;
/** Reserved bits of a 1 MiB leaf's word0: [19:11] and [10:6]. */
const HUGE_RES = 0x000f_f800 | PTE_W0_RES;

/** Walks the mock page table. */
export class Walker {
  /** Result: PA of the 2 KiB IO page containing the iova. */
  pagePa = 0;
  /** Result: ACCESS_* bits the leaf allows (WRITE left out when DIRTY_EN and D is still clear). */
  perm = 0;
  /** Result: 1 for a 1 MiB leaf, 2 for a 2 KiB leaf. */
  level = 0;
  /** Walks started. */
  walks = 0;
  /** PTE fetches. */
  walkReads = 0;
  /** A / D bits set in memory. */
  adUpdates = 0;

  /**
   * @param mem - PhysMem holding the tables
   * @param huge - CAP.HUGE: 1 MiB leaves are legal
   */
  constructor(private readonly mem: PhysMem, private readonly huge: boolean) {}

  /**
   * Translates `iova` (already checked against the aperture) through the table at `root`.
   * @returns a packed status (0 = ok, results in {@link Walker.pagePa} / {@link Walker.perm})
   */
  walk(root: number, iova: number, access: number, dirtyEn: boolean): number {
    const mem = this.mem;
    const size = mem.size;
    const u32 = mem.u32;
    this.walks++;
    let pa = root + ((iova >>> 20) & 0x7ff) * 8;
    if (pa + 8 > size) return S.PTE_FETCH;
    this.walkReads++;
    let i = pa >>> 2;
    let w0 = u32[i]!;
    let w1 = u32[i + 1]!;
    if ((w0 & PTE_V) === 0) return S.L1_INVALID;
    if ((w1 & ~PTE_HI_PA_MASK) !== 0) return S.PTE_RESERVED;
    let base: number;
    if ((w0 & PTE_LEAF) !== 0) {
      if (!this.huge || (w0 & HUGE_RES) !== 0) return S.PTE_RESERVED;
      base = join52(w0 & PTE_PA_MASK_HUGE, w1) + (iova & 0x000f_f800);
      this.level = 1;
    } else {
      if ((w0 & TABLE_RES) !== 0) return S.PTE_RESERVED;
      pa = join52(w0 & PTE_PA_MASK_TABLE, w1) + ((iova >>> 11) & 0x1ff) * 8;
      if (pa + 8 > size) return S.PTE_FETCH;
      this.walkReads++;
      i = pa >>> 2;
      w0 = u32[i]!;
      w1 = u32[i + 1]!;
      if ((w0 & PTE_V) === 0) return S.L2_INVALID;
      if ((w0 & PTE_LEAF) === 0 || (w0 & PTE_W0_RES) !== 0 || (w1 & ~PTE_HI_PA_MASK) !== 0) return S.PTE_RESERVED;
      base = join52(w0 & PTE_PA_MASK_PAGE, w1);
      this.level = 2;
    }
    if ((access & (ACCESS_READ | ACCESS_EXEC)) !== 0 && (w0 & PTE_R) === 0) return S.NO_READ;
    if ((access & ACCESS_WRITE) !== 0 && (w0 & PTE_W) === 0) return S.NO_WRITE;
    // Hardware A/D update.
    let set = (w0 & PTE_A) === 0 ? PTE_A : 0;
    if (dirtyEn && (access & ACCESS_WRITE) !== 0 && (w0 & PTE_D) === 0) set |= PTE_D;
    if (set !== 0) {
      w0 = Atomics.or(mem.i32, i, set) | set;
      this.adUpdates++;
    }
    let perm = (w0 & PTE_R) !== 0 ? ACCESS_READ | ACCESS_EXEC : 0;
    if ((w0 & PTE_W) !== 0 && (!dirtyEn || (w0 & PTE_D) !== 0)) perm |= ACCESS_WRITE;
    this.perm = perm;
    this.pagePa = base;
    return S.OK;
  }
}
