/**
 * The stream table the driver owns (smmuv3.md §1.4, §2.4), sized as Linux's
 * `arm_smmu_init_strtab`: two-level when the SMMU has ST_LEVEL = 1 and SIDSIZE > 8 (SPLIT 8, L1
 * entries = min(2^17, 2^(SIDSIZE − 8)), 256-STE level-2 tables allocated on first use of a SID
 * in their range and installed with Span = 9), linear otherwise (2^SIDSIZE STEs). Every STE
 * starts as Linux's abort STE (V = 1, Config = abort).
 */
import { IommuError } from '@iommulab/driver-api';
import type { PhysMem } from '@iommulab/runtime';
import {
  L1STD_BYTES,
  STE_BYTES,
  STRTAB_BASE_CFG_FMT_SHIFT,
  STRTAB_BASE_CFG_LOG2SIZE_SHIFT,
  STRTAB_BASE_CFG_SPLIT_SHIFT,
  STRTAB_FMT_2LVL,
  STRTAB_FMT_LINEAR,
  STRTAB_SPLIT_LINUX,
} from '../codec/index.js';
import { STRTAB_MAX_L1_ENTRIES } from './probe.js';

/** STEs per level-2 table (2^SPLIT). */
export const STRTAB_L2_STES = 1 << STRTAB_SPLIT_LINUX;
/** The L1STD Span Linux writes: SPLIT + 1 (2^(Span−1) = 256 STEs). */
export const STRTAB_L1_SPAN = STRTAB_SPLIT_LINUX + 1;

function frames(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / 4096));
}

/** Writes Linux's abort STE (dword0 = V, everything else 0) at word `w`. */
function writeAbortStes(u32: Uint32Array, w: number, count: number): void {
  u32.fill(0, w, w + count * (STE_BYTES / 4));
  for (let i = 0; i < count; i++) u32[w + i * (STE_BYTES / 4)] = 1;
}

/** A linear or two-level stream table in PhysMem. */
export class StreamTable {
  /** Stream table base PA (STRTAB_BASE.ADDR). */
  readonly basePa: number;
  /** The STRTAB_BASE_CFG value (FMT, LOG2SIZE, SPLIT). */
  readonly baseCfg: number;
  readonly twoLevel: boolean;
  /** log2 of the SIDs the table covers (STRTAB_BASE_CFG.LOG2SIZE). */
  readonly log2Size: number;
  /** L1 descriptors (two-level) or 0. */
  readonly l1Entries: number;
  private readonly l1Frames: number;
  /** PA of each allocated L2 table by L1 index. */
  private readonly l2 = new Map<number, number>();

  private constructor(
    private readonly mem: PhysMem,
    basePa: number,
    l1Frames: number,
    twoLevel: boolean,
    log2Size: number,
    l1Entries: number,
  ) {
    this.basePa = basePa;
    this.l1Frames = l1Frames;
    this.twoLevel = twoLevel;
    this.log2Size = log2Size;
    this.l1Entries = l1Entries;
    this.baseCfg = twoLevel
      ? ((STRTAB_FMT_2LVL << STRTAB_BASE_CFG_FMT_SHIFT) |
          (log2Size << STRTAB_BASE_CFG_LOG2SIZE_SHIFT) |
          (STRTAB_SPLIT_LINUX << STRTAB_BASE_CFG_SPLIT_SHIFT)) >>>
        0
      : ((STRTAB_FMT_LINEAR << STRTAB_BASE_CFG_FMT_SHIFT) | (log2Size << STRTAB_BASE_CFG_LOG2SIZE_SHIFT)) >>> 0;
  }

  /**
   * Allocates the table for `sidBits` StreamID bits.
   * @throws IommuError ENOMEM when PhysMem has no room for it
   */
  static create(mem: PhysMem, sidBits: number, twoLevel: boolean, instanceId = ''): StreamTable {
    try {
      if (twoLevel) {
        const lastL1 = Math.floor((2 ** sidBits - 1) / STRTAB_L2_STES);
        const l1Entries = Math.min(lastL1 + 1, STRTAB_MAX_L1_ENTRIES);
        const bytes = l1Entries * L1STD_BYTES;
        const n = frames(bytes);
        // Aligned to its size (at least 64 bytes): a power-of-two frame count aligned to itself.
        const pa = mem.allocFrames(n, n);
        return new StreamTable(mem, pa, n, true, Math.log2(l1Entries) + STRTAB_SPLIT_LINUX, l1Entries);
      }
      const count = 2 ** sidBits;
      const n = frames(count * STE_BYTES);
      const pa = mem.allocFrames(n, n);
      writeAbortStes(mem.u32, pa >>> 2, count);
      return new StreamTable(mem, pa, n, false, sidBits, 0);
    } catch (e) {
      if (e instanceof IommuError) throw e;
      throw new IommuError('ENOMEM', `instance ${instanceId}: no memory for a ${twoLevel ? '2-level' : 'linear'} stream table of ${sidBits} SID bits`, { cause: e });
    }
  }

  /** Whether `sid` is inside what the table describes. */
  covers(sid: number): boolean {
    return Number.isInteger(sid) && sid >= 0 && sid < 2 ** this.log2Size;
  }

  /** Word index in PhysMem of the STE of `sid`, or -1 when its L2 table is not allocated. */
  steWord(sid: number): number {
    if (!this.twoLevel) return (this.basePa + sid * STE_BYTES) >>> 2;
    const l2 = this.l2.get(Math.floor(sid / STRTAB_L2_STES));
    if (l2 === undefined) return -1;
    return (l2 + (sid % STRTAB_L2_STES) * STE_BYTES) >>> 2;
  }

  /**
   * `arm_smmu_init_sid_strtab`: makes sure the STE of `sid` exists (allocating its L2 table of
   * abort STEs and installing the L1STD with Span = 9 when needed) and returns its word index.
   * @throws IommuError ENOMEM
   */
  ensureSte(sid: number): number {
    if (!this.twoLevel) return this.steWord(sid);
    const idx = Math.floor(sid / STRTAB_L2_STES);
    if (!this.l2.has(idx)) {
      const bytes = STRTAB_L2_STES * STE_BYTES; // 16 KiB, aligned to its size
      let pa: number;
      try {
        pa = this.mem.allocFrames(frames(bytes), frames(bytes));
      } catch (e) {
        throw new IommuError('ENOMEM', `no memory for the level-2 stream table of SIDs ${idx * STRTAB_L2_STES}..`, { cause: e });
      }
      writeAbortStes(this.mem.u32, pa >>> 2, STRTAB_L2_STES);
      this.l2.set(idx, pa);
      // L1STD: L2Ptr [51:6] | Span [4:0]; one store of the low word after the high word.
      const d = (this.basePa + idx * L1STD_BYTES) >>> 2;
      Atomics.store(this.mem.u32, d + 1, 0);
      Atomics.store(this.mem.u32, d, (pa | STRTAB_L1_SPAN) >>> 0);
    }
    return this.steWord(sid);
  }

  /** PA of the L2 table of L1 index `idx` (tests), or -1. */
  l2TablePa(idx: number): number {
    return this.l2.get(idx) ?? -1;
  }

  /** Frees every table frame. */
  free(): void {
    const l2Frames = frames(STRTAB_L2_STES * STE_BYTES);
    for (const pa of this.l2.values()) this.mem.freeFrames(pa, l2Frames);
    this.l2.clear();
    this.mem.freeFrames(this.basePa, this.l1Frames);
  }
}
