/**
 * StreamID lookup: from STRTAB_BASE / STRTAB_BASE_CFG to the address of a StreamID's STE, linear
 * or 2-level (smmuv3.md §1.4, §2.4, decisions §12 #2 and #3).
 *
 * Every PhysMem access is bounds-checked: an L1STD or STE outside PhysMem (including any address
 * with bits above PhysMem's size, up to 52 bits) is F_STE_FETCH with FetchAddr = that address.
 *
 * Model choices:
 * - The base (bits [51:6]) is aligned down to the table size as IHI 0070 §6.3.24 requires
 *   (linear 2^(LOG2SIZE+6) bytes; 2-level max(64 B, L1 table size), from the literal LOG2SIZE).
 * - Effective StreamID range = 2^min(LOG2SIZE, IDR1.SIDSIZE).
 * - STRTAB_BASE_CFG.FMT = 2-level without IDR0.ST_LEVEL, or a reserved FMT (2, 3): no StreamID is
 *   valid (C_BAD_STREAMID for all).
 * - SPLIT is used as written (any value 0..31; SPLIT ≥ LOG2SIZE means a single L1 descriptor).
 * - L1STD.Span = 0, reserved (12–31) or > SPLIT + 1 → C_BAD_STREAMID; the L2 table holds
 *   2^(Span − 1) STEs, an index at or beyond that is C_BAD_STREAMID (§12 #3, IHI 0070 §5.1, §7.3.3);
 *   L2Ptr is aligned down to the array's size (§5.1).
 */
import type { PhysMem } from '@iommulab/runtime';
import { STE_BYTES, STRTAB_FMT_2LVL, STRTAB_FMT_LINEAR } from '../codec/index.js';
import { St } from './status.js';

const TWO_32 = 4294967296;

/** The stream table as configured by STRTAB_BASE / STRTAB_BASE_CFG, and the SID → STE lookup. */
export class StreamTable {
  /** Table base (L1 table for 2-level). */
  base = 0;
  /** STRTAB_BASE_CFG.LOG2SIZE as written. */
  log2size = 0;
  /** STRTAB_BASE_CFG.SPLIT as written. */
  split = 0;
  /** STRTAB_BASE_CFG.FMT as written. */
  fmt = 0;
  /** Number of valid StreamIDs (0 when the format is unusable). */
  sidLimit = 0;
  /** 2-level table in use. */
  twoLevel = false;
  /** Output of {@link StreamTable.lookup}: PA of the STE. */
  steAddr = 0;
  /** Output of {@link StreamTable.lookup} on F_STE_FETCH: the address whose read aborted. */
  fetchAddr = 0;
  /** L1STD / STE fetches (stats). */
  fetches = 0;

  /**
   * @param mem - PhysMem
   * @param sidBits - IDR1.SIDSIZE
   * @param st2lvl - IDR0.ST_LEVEL = 1
   */
  constructor(
    private readonly mem: PhysMem,
    private readonly sidBits: number,
    private readonly st2lvl: boolean,
  ) {}

  /**
   * Takes the latched STRTAB_BASE / STRTAB_BASE_CFG fields (§1.4).
   * @param base - STRTAB_BASE.ADDR [51:6] as an address
   */
  configure(base: number, log2size: number, split: number, fmt: number): void {
    this.log2size = log2size;
    this.split = split;
    this.fmt = fmt;
    const bits = Math.min(this.log2size, this.sidBits);
    this.twoLevel = this.fmt === STRTAB_FMT_2LVL;
    // IHI 0070 §6.3.24 STRTAB_BASE.ADDR: the effective base is aligned to the table size, from the
    // literal LOG2SIZE (not limited by SIDSIZE): linear ADDR[LOG2SIZE + 5:0] = 0; 2-level
    // ADDR[MAX(5, LOG2SIZE − SPLIT − 1 + 3):0] = 0.
    const alignLog2 = this.twoLevel ? Math.max(5, log2size - split + 2) + 1 : log2size + 6;
    const align = 2 ** alignLog2;
    this.base = base - (base % align);
    const usable = this.fmt === STRTAB_FMT_LINEAR || (this.twoLevel && this.st2lvl);
    this.sidLimit = usable ? 2 ** bits : 0;
  }

  /**
   * Finds the STE of `sid` (an integer 0..2^32−1): on success {@link StreamTable.steAddr} is its PA.
   * @returns St.OK, St.BAD_STREAMID or St.STE_FETCH (then {@link StreamTable.fetchAddr} is set)
   */
  lookup(sid: number): number {
    if (!(sid < this.sidLimit)) return St.BAD_STREAMID;
    const mem = this.mem;
    if (!this.twoLevel) {
      const a = this.base + sid * STE_BYTES;
      if (a + STE_BYTES > mem.size) {
        this.fetchAddr = a;
        return St.STE_FETCH;
      }
      this.steAddr = a;
      return St.OK;
    }
    const split = this.split;
    const l1 = Math.floor(sid / 2 ** split);
    const l2 = sid % 2 ** split;
    const l1a = this.base + l1 * 8;
    this.fetches++;
    if (l1a + 8 > mem.size) {
      this.fetchAddr = l1a;
      return St.STE_FETCH;
    }
    const u32 = mem.u32;
    const lo = u32[l1a >>> 2];
    const hi = u32[(l1a >>> 2) + 1];
    const span = lo & 0x1f;
    // IHI 0070 §5.1 / §7.3.3: Span 0, a reserved Span (12–31, behaves as 0), Span > SPLIT + 1, or an
    // index beyond the 2^(Span−1) STEs of the level-2 array → C_BAD_STREAMID.
    if (span === 0 || span > 11 || span > split + 1 || l2 >= 2 ** (span - 1)) return St.BAD_STREAMID;
    let l2ptr = ((lo & 0xffffffc0) >>> 0) + (hi & 0xfffff) * TWO_32;
    l2ptr -= l2ptr % (2 ** (span - 1) * STE_BYTES); // §5.1 L2Ptr[5 + (Span − 1):0] treated as 0
    const a = l2ptr + l2 * STE_BYTES;
    if (a + STE_BYTES > mem.size) {
      this.fetchAddr = a;
      return St.STE_FETCH;
    }
    this.steAddr = a;
    return St.OK;
  }
}
