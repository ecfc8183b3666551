/**
 * A master's context-descriptor table (smmuv3.md §3.2), as Linux's `arm_smmu_alloc_cd_tables`:
 * linear (S1Fmt 0) when the SMMU lacks CD2L or the master needs at most 1024 contexts, else
 * two-level with 1024-CD (64 KiB) leaves allocated on first use (S1Fmt 2). S1CDMax = the master's
 * SSID bits. A newly written L1CD must be followed by CFGI_CD(Leaf = 0) + CMD_SYNC, because an
 * invalid L1CD may have been cached; {@link CdTable.ensureCd} reports when that is needed.
 */
import { IommuError } from '@iommulab/driver-api';
import type { PhysMem } from '@iommulab/runtime';
import { CD_BYTES, CD_L2_ENTRIES_64K, L1CD_BYTES, S1Fmt } from '../codec/index.js';

function frames(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / 4096));
}

/** Linux `CTXDESC_L2_ENTRIES`: CDs per level-2 leaf. */
export const CTXDESC_L2_ENTRIES = CD_L2_ENTRIES_64K;

/** A linear or two-level CD table in PhysMem. */
export class CdTable {
  /** STE.S1ContextPtr: the CD table (or L1CD table) PA. */
  readonly basePa: number;
  /** STE.S1Fmt: 0 linear, 2 two-level with 64 KiB leaves. */
  readonly s1fmt: number;
  /** STE.S1CDMax: log2 of the number of CDs. */
  readonly s1cdmax: number;
  private readonly baseFrames: number;
  private readonly leaves = new Map<number, number>();

  private constructor(private readonly mem: PhysMem, basePa: number, baseFrames: number, s1fmt: number, s1cdmax: number) {
    this.basePa = basePa;
    this.baseFrames = baseFrames;
    this.s1fmt = s1fmt;
    this.s1cdmax = s1cdmax;
  }

  /**
   * Allocates a table of 2^`s1cdmax` CDs (all invalid), two-level when `cd2l` and more than 1024.
   * @throws IommuError ENOMEM
   */
  static create(mem: PhysMem, s1cdmax: number, cd2l: boolean): CdTable {
    const contexts = 2 ** s1cdmax;
    const twoLevel = cd2l && contexts > CTXDESC_L2_ENTRIES;
    const bytes = twoLevel ? Math.ceil(contexts / CTXDESC_L2_ENTRIES) * L1CD_BYTES : contexts * CD_BYTES;
    const n = frames(bytes);
    let pa: number;
    try {
      pa = mem.allocFrames(n, 1);
    } catch (e) {
      throw new IommuError('ENOMEM', `no memory for a CD table of 2^${s1cdmax} contexts`, { cause: e });
    }
    return new CdTable(mem, pa, n, twoLevel ? S1Fmt.L2_64K : S1Fmt.LINEAR, s1cdmax);
  }

  /** Whether the table is two-level. */
  get twoLevel(): boolean {
    return this.s1fmt !== S1Fmt.LINEAR;
  }

  /** Word index of the CD of `ssid`, or -1 when its leaf is not allocated. */
  cdWord(ssid: number): number {
    if (!this.twoLevel) return (this.basePa + ssid * CD_BYTES) >>> 2;
    const leaf = this.leaves.get(Math.floor(ssid / CTXDESC_L2_ENTRIES));
    if (leaf === undefined) return -1;
    return (leaf + (ssid % CTXDESC_L2_ENTRIES) * CD_BYTES) >>> 2;
  }

  /**
   * `arm_smmu_alloc_cd_ptr`: the word index of the CD of `ssid`, allocating its leaf (zeroed,
   * installed in the L1CD with V = 1) when needed; `newL1` is true when an L1CD was written.
   * @throws IommuError ENOMEM
   */
  ensureCd(ssid: number): { w: number; newL1: boolean } {
    const w = this.cdWord(ssid);
    if (w >= 0) return { w, newL1: false };
    const idx = Math.floor(ssid / CTXDESC_L2_ENTRIES);
    const n = frames(CTXDESC_L2_ENTRIES * CD_BYTES);
    let pa: number;
    try {
      pa = this.mem.allocFrames(n, 1);
    } catch (e) {
      throw new IommuError('ENOMEM', `no memory for the CD leaf of SSIDs ${idx * CTXDESC_L2_ENTRIES}..`, { cause: e });
    }
    this.leaves.set(idx, pa);
    const d = (this.basePa + idx * L1CD_BYTES) >>> 2;
    Atomics.store(this.mem.u32, d + 1, 0);
    Atomics.store(this.mem.u32, d, (pa | 1) >>> 0); // L2Ptr [51:12] | V
    return { w: this.cdWord(ssid), newL1: true };
  }

  /** Frees every frame of the table. */
  free(): void {
    const n = frames(CTXDESC_L2_ENTRIES * CD_BYTES);
    for (const pa of this.leaves.values()) this.mem.freeFrames(pa, n);
    this.leaves.clear();
    this.mem.freeFrames(this.basePa, this.baseFrames);
  }
}
