/**
 * The table-building library: builds and edits the mock's two-level IO page table in PhysMem, as
 * the driver (and tests) do. Same format the hardware walks (walk.ts):
 * L1 = 2048 x 8 B (16 KiB, 16 KiB aligned, index iova[30:20]) of table pointers or 1 MiB leaves;
 * L2 = 512 x 8 B (one frame, index iova[19:11]) of 2 KiB leaves.
 *
 * Every call validates first and changes nothing when it throws an {@link IommuError}.
 * L2 tables are kept until {@link MockPageTable.free} (the hardware may be walking them; freeing
 * them safely would need an invalidation first, as the kernel's freelist does).
 */
import { IommuError } from '@iommulab/driver-api';
import type { PhysMem } from '@iommulab/runtime';
import {
  L1_BYTES,
  PTE_A,
  PTE_D,
  PTE_LEAF,
  PTE_PA_MASK_HUGE,
  PTE_PA_MASK_PAGE,
  PTE_PA_MASK_TABLE,
  PTE_R,
  PTE_V,
  PTE_W,
  hi32,
  join52,
  lo32,
} from './codec.js';
import { MOCK_APERTURE_LAST, MOCK_APERTURE_START, MOCK_HUGE_PAGE_SIZE, MOCK_PAGE_SIZE } from './constants.js';

/** Protection bit: read (same value as `Prot.READ` and `ACCESS_READ`). */
export const PT_READ = 1;
/** Protection bit: write (same value as `Prot.WRITE` and `ACCESS_WRITE`). */
export const PT_WRITE = 2;

/** One leaf found by {@link MockPageTable.walk}. */
export interface PtLeaf {
  /** First IOVA the leaf maps. */
  readonly iova: number;
  /** PA the leaf maps `iova` to. */
  readonly pa: number;
  /** Leaf size (2048 or 1 MiB). */
  readonly size: number;
  /** PT_READ | PT_WRITE bits. */
  readonly prot: number;
  /** D bit. */
  readonly dirty: boolean;
  /** A bit. */
  readonly accessed: boolean;
}

const TWO_52 = 2 ** 52;

function isAligned(v: number, a: number): boolean {
  return Number.isSafeInteger(v) && v >= 0 && v % a === 0;
}

/** A mock IO page table in PhysMem. */
export class MockPageTable {
  /** PA of the L1 table. */
  readonly root: number;
  /** 1 MiB leaves may be used by {@link MockPageTable.map}. */
  readonly huge: boolean;
  private readonly l2Tables = new Set<number>();
  private freed = false;

  /**
   * Allocates an empty table (L1: 4 zeroed frames, 16 KiB aligned).
   * @throws IommuError ENOMEM when PhysMem is exhausted
   */
  static create(mem: PhysMem, opts: { huge?: boolean } = {}): MockPageTable {
    let root: number;
    try {
      root = mem.allocFrames(L1_BYTES / 4096, L1_BYTES / 4096);
    } catch (e) {
      throw new IommuError('ENOMEM', 'no memory for a 16 KiB L1 page table', { cause: e });
    }
    return new MockPageTable(mem, root, opts.huge ?? true);
  }

  /** Wraps an existing table at `root` (e.g. to inspect one written elsewhere). */
  constructor(private readonly mem: PhysMem, root: number, huge = true) {
    this.root = root;
    this.huge = huge;
  }

  /** Number of L2 tables allocated by this object. */
  get tableCount(): number {
    return this.l2Tables.size;
  }

  private l1Index(iova: number): number {
    return this.root + Math.floor(iova / MOCK_HUGE_PAGE_SIZE) % 2048 * 8;
  }

  private checkRange(op: string, iova: number, size: number): void {
    if (this.freed) throw new IommuError('ENODEV', `${op}: page table at 0x${this.root.toString(16)} was freed`);
    if (!isAligned(iova, MOCK_PAGE_SIZE) || !isAligned(size, MOCK_PAGE_SIZE) || size === 0) {
      throw new IommuError('EINVAL', `${op}: iova 0x${iova.toString(16)} / size 0x${size.toString(16)} not ${MOCK_PAGE_SIZE}-byte aligned or empty`);
    }
    if (iova < MOCK_APERTURE_START || iova + size - 1 > MOCK_APERTURE_LAST) {
      throw new IommuError('EINVAL', `${op}: [0x${iova.toString(16)}, +0x${size.toString(16)}) is outside the aperture [0x${MOCK_APERTURE_START.toString(16)}, 0x${MOCK_APERTURE_LAST.toString(16)}]`);
    }
  }

  /**
   * Maps `[iova, iova + size)` to `[pa, pa + size)` with `prot` (PT_READ | PT_WRITE). Uses 1 MiB
   * leaves where iova, pa and the remaining size are 1 MiB aligned and the L1 slot is empty
   * (when the table allows huge pages and `allowHuge`), 2 KiB leaves elsewhere.
   * @throws IommuError EINVAL (misaligned, outside the aperture, pa too large), EEXIST (any page
   *   already mapped), ENOMEM (no frame for an L2 table). Nothing changes on error.
   */
  map(iova: number, pa: number, size: number, prot: number, allowHuge = true): void {
    this.checkRange('map', iova, size);
    const huge = this.huge && allowHuge;
    if (!isAligned(pa, MOCK_PAGE_SIZE) || pa + size > TWO_52) {
      throw new IommuError('EINVAL', `map: pa 0x${pa.toString(16)} is not ${MOCK_PAGE_SIZE}-byte aligned or beyond 52 bits`);
    }
    const u32 = this.mem.u32;
    const end = iova + size;
    // Pass 1: check that nothing is mapped and count missing L2 tables.
    let needTables = 0;
    for (let p = iova; p < end; ) {
      const chunkEnd = Math.min(end, (Math.floor(p / MOCK_HUGE_PAGE_SIZE) + 1) * MOCK_HUGE_PAGE_SIZE);
      const l1 = this.l1Index(p) >>> 2;
      const w0 = u32[l1]!;
      if ((w0 & PTE_V) === 0) {
        if (!this.useHuge(huge, p, pa + (p - iova), chunkEnd)) needTables++;
      } else if ((w0 & PTE_LEAF) !== 0) {
        throw new IommuError('EEXIST', `map: iova 0x${p.toString(16)} is already mapped (1 MiB leaf)`);
      } else {
        const l2 = join52(w0 & PTE_PA_MASK_TABLE, u32[l1 + 1]!);
        for (let q = p; q < chunkEnd; q += MOCK_PAGE_SIZE) {
          if ((u32[(l2 + (Math.floor(q / MOCK_PAGE_SIZE) % 512) * 8) >>> 2]! & PTE_V) !== 0) {
            throw new IommuError('EEXIST', `map: iova 0x${q.toString(16)} is already mapped`);
          }
        }
      }
      p = chunkEnd;
    }
    // Pass 2: allocate every table needed (all or nothing).
    const fresh: number[] = [];
    try {
      for (let k = 0; k < needTables; k++) fresh.push(this.mem.allocFrame());
    } catch (e) {
      for (const f of fresh) this.mem.freeFrames(f, 1);
      throw new IommuError('ENOMEM', `map: no memory for ${needTables} L2 table(s)`, { cause: e });
    }
    // Pass 3: write.
    const bits = PTE_V | PTE_LEAF | (prot & PT_READ ? PTE_R : 0) | (prot & PT_WRITE ? PTE_W : 0);
    for (let p = iova; p < end; ) {
      const chunkEnd = Math.min(end, (Math.floor(p / MOCK_HUGE_PAGE_SIZE) + 1) * MOCK_HUGE_PAGE_SIZE);
      const l1 = this.l1Index(p) >>> 2;
      const out = pa + (p - iova);
      if ((u32[l1]! & PTE_V) === 0 && this.useHuge(huge, p, out, chunkEnd)) {
        this.writeEntry(l1, (lo32(out) & PTE_PA_MASK_HUGE) | bits, hi32(out));
        p = chunkEnd;
        continue;
      }
      let l2: number;
      const installNew = (u32[l1]! & PTE_V) === 0;
      if (installNew) {
        l2 = fresh.pop()!;
        this.l2Tables.add(l2);
      } else {
        l2 = join52(u32[l1]! & PTE_PA_MASK_TABLE, u32[l1 + 1]!);
      }
      for (let q = p; q < chunkEnd; q += MOCK_PAGE_SIZE) {
        const o = out + (q - p);
        this.writeEntry((l2 + (Math.floor(q / MOCK_PAGE_SIZE) % 512) * 8) >>> 2, (lo32(o) & PTE_PA_MASK_PAGE) | bits, hi32(o));
      }
      if (installNew) this.writeEntry(l1, (lo32(l2) & PTE_PA_MASK_TABLE) | PTE_V, hi32(l2));
      p = chunkEnd;
    }
  }

  private useHuge(huge: boolean, p: number, out: number, chunkEnd: number): boolean {
    return huge && p % MOCK_HUGE_PAGE_SIZE === 0 && out % MOCK_HUGE_PAGE_SIZE === 0 && chunkEnd - p === MOCK_HUGE_PAGE_SIZE;
  }

  /** Writes a PTE so the hardware never sees a half-written valid entry: hi first, then word0. */
  private writeEntry(w: number, lo: number, hi: number): void {
    const i32 = this.mem.i32;
    if ((lo & PTE_V) !== 0) {
      Atomics.store(i32, w + 1, hi | 0);
      Atomics.store(i32, w, lo | 0);
    } else {
      Atomics.store(i32, w, lo | 0);
      Atomics.store(i32, w + 1, hi | 0);
    }
  }

  /**
   * Finds the leaf mapping `iova`, or undefined. Reads memory only (not the IOTLB).
   */
  walk(iova: number): PtLeaf | undefined {
    if (!(iova >= MOCK_APERTURE_START && iova <= MOCK_APERTURE_LAST) || this.freed) return undefined;
    const u32 = this.mem.u32;
    const l1 = this.l1Index(iova) >>> 2;
    const w0 = u32[l1]!;
    if ((w0 & PTE_V) === 0) return undefined;
    if ((w0 & PTE_LEAF) !== 0) {
      const start = Math.floor(iova / MOCK_HUGE_PAGE_SIZE) * MOCK_HUGE_PAGE_SIZE;
      return this.leaf(start, join52(w0 & PTE_PA_MASK_HUGE, u32[l1 + 1]!), MOCK_HUGE_PAGE_SIZE, w0);
    }
    const l2 = join52(w0 & PTE_PA_MASK_TABLE, u32[l1 + 1]!);
    const w = (l2 + (Math.floor(iova / MOCK_PAGE_SIZE) % 512) * 8) >>> 2;
    const e0 = u32[w]!;
    if ((e0 & PTE_V) === 0) return undefined;
    const start = Math.floor(iova / MOCK_PAGE_SIZE) * MOCK_PAGE_SIZE;
    return this.leaf(start, join52(e0 & PTE_PA_MASK_PAGE, u32[w + 1]!), MOCK_PAGE_SIZE, e0);
  }

  private leaf(iova: number, pa: number, size: number, w0: number): PtLeaf {
    return {
      iova, pa, size,
      prot: (w0 & PTE_R ? PT_READ : 0) | (w0 & PTE_W ? PT_WRITE : 0),
      dirty: (w0 & PTE_D) !== 0,
      accessed: (w0 & PTE_A) !== 0,
    };
  }

  /** The PA `iova` maps to, or -1 when unmapped. */
  iovaToPhys(iova: number): number {
    const l = this.walk(iova);
    return l === undefined ? -1 : l.pa + (iova - l.iova);
  }

  /** Word index of the PTE of the leaf `l` (found by walk). */
  private pteWord(l: PtLeaf): number {
    const u32 = this.mem.u32;
    const l1 = this.l1Index(l.iova) >>> 2;
    if (l.size === MOCK_HUGE_PAGE_SIZE) return l1;
    const l2 = join52(u32[l1]! & PTE_PA_MASK_TABLE, u32[l1 + 1]!);
    return (l2 + (Math.floor(l.iova / MOCK_PAGE_SIZE) % 512) * 8) >>> 2;
  }

  /**
   * Unmaps from `iova` for up to `size` bytes, stopping at the first hole. A 1 MiB leaf only
   * partly covered is split into 2 KiB leaves first (keeping its permissions and A/D bits).
   * `onRemoved(iova, size, pageSize)` is called for each removed run (e.g. an IotlbGather).
   * @returns the bytes unmapped (0 when `iova` itself is unmapped)
   * @throws IommuError EINVAL (misaligned / outside the aperture), ENOMEM (no frame to split a
   *   leaf). Nothing changes on error.
   */
  unmap(iova: number, size: number, onRemoved?: (iova: number, size: number, pageSize: number) => void): number {
    this.checkRange('unmap', iova, size);
    const end = iova + size;
    // Pass 1: find where the unmap stops and which huge leaves need a split.
    const splits: PtLeaf[] = [];
    let stop = iova;
    while (stop < end) {
      const l = this.walk(stop);
      if (l === undefined) break;
      if (l.size === MOCK_HUGE_PAGE_SIZE && (l.iova < stop || l.iova + l.size > end)) splits.push(l);
      stop = Math.min(end, l.iova + l.size);
    }
    if (stop === iova) return 0;
    const fresh: number[] = [];
    try {
      for (let k = 0; k < splits.length; k++) fresh.push(this.mem.allocFrame());
    } catch (e) {
      for (const f of fresh) this.mem.freeFrames(f, 1);
      throw new IommuError('ENOMEM', 'unmap: no memory to split a 1 MiB leaf', { cause: e });
    }
    for (let k = 0; k < splits.length; k++) this.split(splits[k]!, fresh[k]!);
    // Pass 2: clear leaves.
    for (let p = iova; p < stop; ) {
      const l = this.walk(p)!;
      this.writeEntry(this.pteWord(l), 0, 0);
      onRemoved?.(l.iova, l.size, l.size);
      p = l.iova + l.size;
    }
    return stop - iova;
  }

  /** Replaces a 1 MiB leaf by an L2 table (at frame `l2`) of 512 equivalent 2 KiB leaves. */
  private split(l: PtLeaf, l2: number): void {
    const u32 = this.mem.u32;
    const l1 = this.l1Index(l.iova) >>> 2;
    const bits = u32[l1]! & (PTE_V | PTE_R | PTE_W | PTE_LEAF | PTE_D | PTE_A);
    for (let k = 0; k < 512; k++) {
      const o = l.pa + k * MOCK_PAGE_SIZE;
      u32[(l2 >>> 2) + k * 2] = ((lo32(o) & PTE_PA_MASK_PAGE) | bits) >>> 0;
      u32[(l2 >>> 2) + k * 2 + 1] = hi32(o);
    }
    this.l2Tables.add(l2);
    this.writeEntry(l1, (lo32(l2) & PTE_PA_MASK_TABLE) | PTE_V, hi32(l2));
  }

  /**
   * Visits each leaf overlapping `[iova, iova + size)` whose D bit is set: `record(leafIova,
   * leafSize)` (whole leaves), and clears D unless `noClear`. Returns the number of D bits
   * cleared (the caller must then invalidate the IOTLB, which may hold writable entries).
   */
  readAndClearDirty(iova: number, size: number, noClear: boolean, record: (iova: number, length: number) => void): number {
    this.checkRange('readAndClearDirty', iova, size);
    const end = iova + size;
    let cleared = 0;
    for (let p = iova; p < end; ) {
      const l = this.walk(p);
      if (l === undefined) {
        p = this.nextCandidate(p);
        continue;
      }
      if (l.dirty) {
        record(l.iova, l.size);
        if (!noClear) {
          Atomics.and(this.mem.i32, this.pteWord(l), ~PTE_D);
          cleared++;
        }
      }
      p = l.iova + l.size;
    }
    return cleared;
  }

  /** Sets D on every leaf overlapping the range (the selftest's IOMMU_TEST_OP_DIRTY). Returns the leaves marked. */
  setDirty(iova: number, size: number): number {
    this.checkRange('setDirty', iova, size);
    const end = iova + size;
    let n = 0;
    for (let p = iova; p < end; ) {
      const l = this.walk(p);
      if (l === undefined) {
        p = this.nextCandidate(p);
        continue;
      }
      Atomics.or(this.mem.i32, this.pteWord(l), PTE_D);
      n++;
      p = l.iova + l.size;
    }
    return n;
  }

  /** The next IOVA after the unmapped `p` that may be mapped: skips whole empty L1 slots. */
  private nextCandidate(p: number): number {
    if ((this.mem.u32[this.l1Index(p) >>> 2]! & PTE_V) === 0) return (Math.floor(p / MOCK_HUGE_PAGE_SIZE) + 1) * MOCK_HUGE_PAGE_SIZE;
    return p + MOCK_PAGE_SIZE;
  }

  /** Frees the L1 and every L2 table. Later calls throw ENODEV. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    for (const t of this.l2Tables) this.mem.freeFrames(t, 1);
    this.l2Tables.clear();
    this.mem.freeFrames(this.root, L1_BYTES / 4096);
  }
}
