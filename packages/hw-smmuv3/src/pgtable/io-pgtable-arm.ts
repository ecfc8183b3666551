/**
 * The driver's VMSAv8-64 LPAE IO page table (Linux `io-pgtable-arm` equivalent) in PhysMem:
 * stage-1 and stage-2 formats, 4/16/64 KiB granules, Linux start level and PGD sizing with
 * stage-2 concatenation (smmuv3.md §7.1, §7.2), the exact descriptors Linux writes (§7.5).
 *
 * Behaviour (the io-pgtable contract as the iommu core uses it):
 * - `map` writes `count` leaves of `pgsize` (a block descriptor when `pgsize` is a block size).
 *   The whole range is checked first: any existing mapping → EEXIST and nothing changes; every
 *   table frame needed is allocated before the first write (ENOMEM changes nothing either).
 * - `unmap` clears leaves from `iova`, stopping at the first hole; a block only partly covered is
 *   split into a next-level table holding the rest (older Linux `arm_lpae_split_blk_unmap`).
 *   A table left empty by an unmap is freed after an `onTlbFlush(..., leaf = false)` walk flush.
 * - `free` releases every table frame (they are all tracked).
 *
 * Descriptor writes: a new leaf or table pointer writes the high word first, then the low word
 * (with the valid bit) atomically; clearing writes the low word first; replacing a live block by
 * a table (split) is one 64-bit atomic store. Dirty clearing is an atomic RMW of the low word,
 * compatible with hardware HTTU updates (smmuv3.md §12 #16).
 */
import { IommuError, Prot, type IotlbGather } from '@iommulab/driver-api';
import type { PhysMem } from '@iommulab/runtime';
import { PTE_AP_RDONLY, PTE_CONT_HI, PTE_DBM_HI, PTE_S2AP_WRITE } from '../codec/index.js';
import { LPAE_MAIR, lpaeGeometry, packVtcr, type IoPgtableCfg, type IoPgtableFmt, type LpaeTcr, type LpaeVtcr } from './geometry.js';
import { protToPteHi, protToPteLo } from './prot.js';

const TWO32 = 4294967296;
const TWO48 = 2 ** 48;
const FRAME = 4096;
/** Leaf attribute bits kept by a split: low word [11:2]. */
const ATTR_LO_MASK = 0xffc;
/** Upper attributes [63:48] minus the contiguous hint. */
const ATTR_HI_MASK = (0xffff0000 & ~PTE_CONT_HI) >>> 0;

/**
 * Walk-cache / TLB flush hook, as the io_pgtable `tlb_flush_walk` / `tlb_add_page` ops:
 * `leaf = false` — the table covering `[iova, iova + size)` is about to be freed (flush walks,
 * synchronously, before the frame is reused); `leaf = true` — leaves of `granule` bytes were
 * removed and no {@link IotlbGather} was passed to collect them.
 */
export type IoPgtableFlushFn = (iova: number, size: number, granule: number, leaf: boolean) => void;

/** One leaf found by {@link IoPgtableArm.lookup}. */
export interface IoPgtableLeaf {
  /** Level of the leaf (3 = page, lower = block). */
  readonly level: number;
  /** First IOVA it maps. */
  readonly iova: number;
  /** Its size in bytes. */
  readonly size: number;
  /** Output address of its first byte. */
  readonly pa: number;
  /** Physical address of the descriptor. */
  readonly ptePa: number;
  /** Descriptor bits [31:0]. */
  readonly lo: number;
  /** Descriptor bits [63:32]. */
  readonly hi: number;
}

/**
 * A VMSAv8-64 LPAE IO page table in PhysMem (Linux `io-pgtable-arm`, ARM_64_LPAE_S1 / _S2).
 * Not thread-safe: one driver thread edits it while the SMMU model may walk it concurrently.
 */
export class IoPgtableArm {
  /** Format. */
  readonly fmt: IoPgtableFmt;
  /** Granule in bytes. */
  readonly granule: number;
  /** Input address size in bits. */
  readonly ias: number;
  /** Output address size in bits. */
  readonly oas: number;
  /** Walks are coherent (drives the TCR/VTCR cacheability fields). */
  readonly coherent: boolean;
  /** Writable leaves get DBM (HTTU dirty tracking). */
  readonly dbm: boolean;
  /** Page sizes `map`/`unmap` accept, ascending (e.g. [4 KiB, 2 MiB, 1 GiB]). */
  readonly pgsizes: readonly number[];
  /** Physical address of the PGD (TTB0 / S2TTB); aligned to its size and to the granule. */
  readonly pgdPa: number;
  /** PGD size in bytes (8 · entries; concatenated tables included). */
  readonly pgdBytes: number;
  /** Start level of the walk (0..3). */
  readonly startLevel: number;
  /** Number of levels walked (4 − startLevel). */
  readonly levels: number;
  /** Stage-2 concatenated start-level tables (1 = none). */
  readonly concatenated: number;
  /** Stage-1 TCR fields for the CD (meaningful for fmt 's1'). */
  readonly tcr: LpaeTcr;
  /** Stage-2 VTCR fields for the STE (meaningful for fmt 's2'). */
  readonly vtcr: LpaeVtcr;
  /** MAIR for the CD (stage 1): `0xF404FF44` (smmuv3.md §3.3). */
  readonly mair: number = LPAE_MAIR;
  /** Optional flush hook (io_pgtable tlb ops). */
  onTlbFlush?: IoPgtableFlushFn;

  private readonly mem: PhysMem;
  private readonly u32: Uint32Array;
  private readonly i32: Int32Array;
  private b64: BigInt64Array | null = null;
  /** Granule shift. */
  private readonly g: number;
  /** Leaf / entry size per level 0..3: 2^shift(l). */
  private readonly bs: Float64Array;
  /** Index mask per level (the start level's covers the whole PGD). */
  private readonly mask: Int32Array;
  /** Frames (4 KiB) per table / for the PGD. */
  private readonly tableFrames: number;
  private readonly pgdFrames: number;
  /** Descriptor low-word output-address mask [31:G]. */
  private readonly addrLo: number;
  /** 64 KiB granule with 52-bit OA: PA[51:48] lives in descriptor bits [15:12]. */
  private readonly lpa52: boolean;
  private readonly vaLimit: number;
  private readonly paLimit: number;
  /** Valid entries of every non-PGD table, by table PA. */
  private readonly tables = new Map<number, number>();
  private pgdCount = 0;
  private freed = false;
  /** Preallocated frames for the current operation. */
  private readonly pool: number[] = [];
  /** Descent path: word index of the entry used at each level, and the table holding it. */
  private readonly pathW = new Float64Array(4);
  private readonly pathT = new Float64Array(4);
  // findLeaf results
  private fLevel = 0;
  private fW = 0;
  private fLo = 0;
  private fHi = 0;

  /**
   * Creates an empty table: allocates the PGD (concatenated for stage 2 as Linux), zeroed,
   * aligned to its size (at least one granule).
   * @throws IommuError EINVAL for a bad configuration, ENOMEM when PhysMem is full.
   */
  constructor(mem: PhysMem, cfg: IoPgtableCfg) {
    const geo = lpaeGeometry(cfg);
    this.mem = mem;
    this.u32 = mem.u32;
    this.i32 = mem.i32;
    this.fmt = cfg.fmt;
    this.granule = cfg.granule;
    this.ias = cfg.ias;
    this.oas = cfg.oas;
    this.coherent = cfg.coherent ?? true;
    this.dbm = cfg.dbm ?? false;
    this.pgsizes = Object.freeze(geo.pgsizes.slice());
    this.startLevel = geo.startLevel;
    this.levels = geo.levels;
    this.concatenated = geo.concatenated;
    this.tcr = Object.freeze(geo.tcr);
    this.vtcr = Object.freeze(geo.vtcr);
    this.pgdBytes = geo.pgdBytes;
    this.g = geo.granuleShift;
    this.bs = new Float64Array(4);
    this.mask = new Int32Array(4);
    for (let l = 0; l < 4; l++) {
      this.bs[l] = 2 ** (geo.granuleShift + (3 - l) * geo.bitsPerLevel);
      this.mask[l] = l === geo.startLevel ? geo.pgdEntries - 1 : geo.entriesPerTable - 1;
    }
    this.tableFrames = cfg.granule / FRAME;
    this.pgdFrames = Math.max(geo.pgdBytes, cfg.granule) / FRAME;
    this.addrLo = ~(cfg.granule - 1) >>> 0;
    this.lpa52 = cfg.granule === 65536 && cfg.oas > 48;
    this.vaLimit = 2 ** cfg.ias;
    this.paLimit = 2 ** cfg.oas;
    this.pgdPa = this.allocTable(this.pgdFrames, 'PGD');
  }

  /** Number of table frames (4 KiB) this table owns, PGD included. */
  get frameCount(): number {
    return this.freed ? 0 : this.pgdFrames + this.tables.size * this.tableFrames;
  }

  /** Number of next-level tables allocated (PGD not counted). */
  get tableCount(): number {
    return this.tables.size;
  }

  /** The packed VTCR (Linux layout, smmuv3.md §2.1) for STE dword 2 bits [50:32]. */
  vtcrValue(): number {
    return packVtcr(this.vtcr);
  }

  // ------------------------------------------------------------------ helpers

  private allocTable(frames: number, what: string): number {
    try {
      return this.mem.allocFrames(frames, frames);
    } catch (e) {
      throw new IommuError('ENOMEM', `io-pgtable: no memory for a ${what} (${frames} frame(s))`, { cause: e });
    }
  }

  private checkLive(op: string): void {
    if (this.freed) throw new IommuError('ENODEV', `io-pgtable ${op}: the table at 0x${this.pgdPa.toString(16)} was freed`);
  }

  /** Leaf level for a page size, or -1. */
  private levelOf(pgsize: number): number {
    for (let l = this.startLevel; l < 4; l++) if (this.bs[l] === pgsize) return this.pgsizes.includes(pgsize) ? l : -1;
    return -1;
  }

  /** Table address held by a table descriptor (checked to lie in PhysMem). */
  private tableAddr(lo: number, hi: number): number {
    const t = ((lo & this.addrLo) >>> 0) + (hi & 0xffff) * TWO32;
    if (t + this.granule > this.mem.size) {
      throw new Error(`io-pgtable: corrupt table descriptor 0x${hi.toString(16)}_${(lo >>> 0).toString(16)} (outside PhysMem)`);
    }
    return t;
  }

  /** Output address of a leaf descriptor. */
  private leafAddr(lo: number, hi: number): number {
    let pa = ((lo & this.addrLo) >>> 0) + (hi & 0xffff) * TWO32;
    if (this.lpa52) pa += ((lo >>> 12) & 0xf) * TWO48;
    return pa;
  }

  private isLeaf(lo: number, l: number): boolean {
    return l === 3 ? (lo & 3) === 3 : (lo & 3) === 1;
  }

  private addCount(t: number, n: number): number {
    if (t === this.pgdPa) return (this.pgdCount += n);
    const c = (this.tables.get(t) ?? 0) + n;
    this.tables.set(t, c);
    return c;
  }

  /** Writes a table pointer to `nt` into the invalid entry at word `w`. */
  private installTable(w: number, nt: number): void {
    this.u32[w + 1] = 0; // tables live below 2^32
    Atomics.store(this.i32, w, (nt | 3) | 0);
  }

  private takeFrame(): number {
    const f = this.pool.pop();
    return f === undefined ? this.allocTable(this.tableFrames, 'table') : f;
  }

  private releasePool(): void {
    while (this.pool.length > 0) this.mem.freeFrames(this.pool.pop()!, this.tableFrames);
  }

  private fillPool(n: number): void {
    try {
      for (let k = 0; k < n; k++) this.pool.push(this.allocTable(this.tableFrames, 'table'));
    } catch (e) {
      this.releasePool();
      throw e;
    }
  }

  /** Finds the descriptor mapping `iova` (< vaLimit): sets fLevel/fW/fLo/fHi; false at a hole. */
  private findLeaf(iova: number): boolean {
    const u32 = this.u32;
    let t = this.pgdPa;
    for (let l = this.startLevel; l < 4; l++) {
      const w = (t >>> 2) + ((iova / this.bs[l]) & this.mask[l]) * 2;
      const lo = u32[w];
      if ((lo & 1) === 0) return false;
      if (l < 3 && (lo & 3) === 3) {
        t = this.tableAddr(lo, u32[w + 1]);
        continue;
      }
      if (l === 3 && (lo & 3) !== 3) return false; // reserved at level 3
      this.fLevel = l;
      this.fW = w;
      this.fLo = lo;
      this.fHi = u32[w + 1];
      return true;
    }
    return false;
  }

  private validRange(op: string, iova: number, pgsize: number, count: number): number {
    const L = this.levelOf(pgsize);
    if (L < 0) throw new IommuError('EINVAL', `io-pgtable ${op}: page size ${pgsize} is not one of [${this.pgsizes.join(', ')}]`);
    if (!Number.isSafeInteger(count) || count < 0) throw new IommuError('EINVAL', `io-pgtable ${op}: bad page count ${String(count)}`);
    if (!Number.isSafeInteger(iova) || iova < 0 || iova % pgsize !== 0) {
      throw new IommuError('EINVAL', `io-pgtable ${op}: iova 0x${iova.toString(16)} is not ${pgsize}-byte aligned`);
    }
    if (iova + pgsize * count > this.vaLimit) {
      throw new IommuError('EINVAL', `io-pgtable ${op}: [0x${iova.toString(16)}, +${pgsize}×${count}) is beyond the ${this.ias}-bit input range`);
    }
    return L;
  }

  // ------------------------------------------------------------------ map

  /**
   * Maps `count` pages of `pgsize` at `iova` to `pa` with driver-api {@link Prot} bits
   * (`map_pages`). A block size writes block descriptors. Returns the bytes mapped (0 when
   * `prot` has neither READ nor WRITE, as Linux).
   * @throws IommuError EINVAL (page size not in {@link pgsizes}, misaligned, iova beyond ias, pa
   *   beyond oas), EEXIST (anything in the range is already mapped), ENOMEM, ENODEV (freed).
   *   Nothing changes when it throws.
   */
  map(iova: number, pa: number, pgsize: number, count: number, prot: number): number {
    this.checkLive('map');
    const L = this.validRange('map', iova, pgsize, count);
    if (!Number.isSafeInteger(pa) || pa < 0 || pa % pgsize !== 0 || pa + pgsize * count > this.paLimit) {
      throw new IommuError('EINVAL', `io-pgtable map: pa 0x${pa.toString(16)} is not ${pgsize}-byte aligned or beyond the ${this.oas}-bit output range`);
    }
    if (count === 0 || (prot & (Prot.READ | Prot.WRITE)) === 0) return 0;
    const end = iova + pgsize * count;
    // Pass 1: conflicts (EEXIST) and the number of tables to allocate.
    const need = this.checkMap(this.pgdPa, this.startLevel, iova, end, L);
    this.fillPool(need);
    // Pass 2: write (cannot fail).
    const lo = protToPteLo(this.fmt, prot) | (L === 3 ? 3 : 1);
    const hi = protToPteHi(this.fmt, prot, this.dbm);
    this.writeLeaves(iova, pa, L, count, lo, hi);
    this.releasePool();
    return pgsize * count;
  }

  /** Pass 1 of map over `[s, e)` inside the table `t` at level `l`; returns tables needed. */
  private checkMap(t: number, l: number, s: number, e: number, L: number): number {
    const u32 = this.u32;
    const bs = this.bs[l];
    let w = (t >>> 2) + ((s / bs) & this.mask[l]) * 2;
    if (l === L) {
      const n = (e - s) / bs;
      for (let k = 0; k < n; k++, w += 2) {
        const lo = u32[w];
        if ((lo & 1) === 0) continue;
        // An empty table may be replaced by a block; anything else is a mapping.
        if (!(l < 3 && (lo & 3) === 3 && this.tables.get(this.tableAddr(lo, u32[w + 1])) === 0)) {
          throw new IommuError('EEXIST', `io-pgtable map: iova 0x${(s + k * bs).toString(16)} is already mapped`);
        }
      }
      return 0;
    }
    let need = 0;
    for (let p = s; p < e; w += 2) {
      const next = Math.min(e, (Math.floor(p / bs) + 1) * bs);
      const lo = u32[w];
      if ((lo & 1) === 0) need += this.tablesFor(l, p, next, L);
      else if ((lo & 3) === 3) need += this.checkMap(this.tableAddr(lo, u32[w + 1]), l + 1, p, next, L);
      else throw new IommuError('EEXIST', `io-pgtable map: iova 0x${p.toString(16)} is inside an existing block`);
      p = next;
    }
    return need;
  }

  /** Tables at levels l+1..L needed to map `[s, e)` below an empty level-l entry. */
  private tablesFor(l: number, s: number, e: number, L: number): number {
    let n = 0;
    for (let k = l + 1; k <= L; k++) {
      const span = this.bs[k - 1];
      n += Math.floor((e - 1) / span) - Math.floor(s / span) + 1;
    }
    return n;
  }

  /**
   * Pass 2 of map: the hot loop. One descent per table run; the per-leaf loop uses int32
   * arithmetic only (the output address as two 32-bit halves), so it allocates nothing.
   */
  private writeLeaves(iova: number, pa: number, L: number, count: number, attrLo: number, attrHi: number): void {
    const u32 = this.u32;
    const i32 = this.i32;
    const P = this.bs[L];
    // Output-address step as 32-bit halves: P < 2^32 wraps the low half to 0 exactly (P | lo).
    const stepLo = P < TWO32 ? P | 0 : 0;
    const stepHi = P < TWO32 ? 0 : (P / TWO32) | 0;
    const addrLo = this.addrLo | 0;
    let aLo = pa % TWO32 | 0;
    let aHi = Math.floor(pa / TWO32) | 0;
    let p = iova;
    let remaining = count;
    while (remaining > 0) {
      let t = this.pgdPa;
      for (let l = this.startLevel; l < L; l++) {
        const w = (t >>> 2) + ((p / this.bs[l]) & this.mask[l]) * 2;
        const lo = u32[w];
        if ((lo & 1) === 0) {
          const nt = this.takeFrame();
          this.tables.set(nt, 0);
          this.installTable(w, nt);
          this.addCount(t, 1);
          t = nt;
        } else {
          t = this.tableAddr(lo, u32[w + 1]);
        }
      }
      const idx = (p / P) & this.mask[L];
      let n = this.mask[L] + 1 - idx;
      if (n > remaining) n = remaining;
      let w = (t >>> 2) + idx * 2;
      let replaced = 0;
      for (let k = 0; k < n; k++, w += 2) {
        if ((u32[w] & 1) !== 0) {
          // only an empty table can be here (checked in pass 1)
          this.dropEmptyTable(w, L, p + k * P);
          replaced++;
        }
        // PA[47:32] in bits [47:32]; with 52-bit OA (64 KiB) PA[51:48] in bits [15:12] (§7.3).
        u32[w + 1] = (aHi & 0xffff) | attrHi;
        Atomics.store(i32, w, (aLo & addrLo) | attrLo | (((aHi >>> 16) & 0xf) << 12));
        aLo = (aLo + stepLo) | 0;
        aHi = (aHi + stepHi + (stepLo !== 0 && aLo === 0 ? 1 : 0)) | 0;
      }
      this.addCount(t, n - replaced);
      p += n * P;
      remaining -= n;
    }
  }

  /** Removes the empty table pointed to by the level-l entry at word `w` (about to become a block). */
  private dropEmptyTable(w: number, l: number, iova: number): void {
    const old = this.tableAddr(this.u32[w], this.u32[w + 1]);
    Atomics.store(this.i32, w, 0);
    this.u32[w + 1] = 0;
    this.onTlbFlush?.(iova, this.bs[l], this.granule, false);
    this.tables.delete(old);
    this.mem.freeFrames(old, this.tableFrames);
    // the entry is rewritten by the caller: the parent's count is unchanged
  }

  // ------------------------------------------------------------------ unmap

  /**
   * Unmaps `count` pages of `pgsize` at `iova` (`unmap_pages`), stopping at the first hole.
   * Leaves smaller than `pgsize` inside the range are removed one by one; a block only partly
   * covered is split first (the rest stays mapped through a new next-level table). Removed
   * leaves go to `gather` (`add(iova, size, leafSize)`; a split block adds its whole range with
   * its block size) or, without a gather, to {@link onTlbFlush} (`leaf = true`).
   * @returns the bytes unmapped (0 when `iova` is unmapped)
   * @throws IommuError EINVAL (bad page size, misaligned, beyond ias), ENOMEM (no frame to split
   *   a block; nothing changed), ENODEV (freed).
   */
  unmap(iova: number, pgsize: number, count: number, gather?: IotlbGather): number {
    this.checkLive('unmap');
    const L = this.validRange('unmap', iova, pgsize, count);
    if (count === 0) return 0;
    const end = iova + pgsize * count;
    // Pre-pass: frames for splitting the blocks straddling either end of the range.
    if (!this.findLeaf(iova)) return 0;
    let need = 0;
    let firstW = -1;
    if (this.fLevel < L) {
      const B = this.bs[this.fLevel];
      const s = iova - (iova % B);
      if (s < iova || s + B > end) {
        need += L - this.fLevel;
        firstW = this.fW;
      }
    }
    if (count > 1 && this.findLeaf(end - pgsize) && this.fLevel < L) {
      const B = this.bs[this.fLevel];
      const s = (end - pgsize) - ((end - pgsize) % B);
      // the same block as the first: its split chain is shared down to the level below
      if (s < iova || s + B > end) need += L - this.fLevel - (this.fW === firstW ? 1 : 0);
    }
    this.fillPool(need);

    const u32 = this.u32;
    const i32 = this.i32;
    let p = iova;
    outer: while (p < end) {
      let t = this.pgdPa;
      let l = this.startLevel;
      let w = 0;
      let lo = 0;
      for (;;) {
        w = (t >>> 2) + ((p / this.bs[l]) & this.mask[l]) * 2;
        this.pathW[l] = w;
        this.pathT[l] = t;
        lo = u32[w];
        if ((lo & 1) === 0) break outer; // hole
        if (l < 3 && (lo & 3) === 3) {
          t = this.tableAddr(lo, u32[w + 1]);
          l++;
          continue;
        }
        if (l === 3 && (lo & 3) !== 3) break outer; // reserved: treated as a hole
        break;
      }
      const B = this.bs[l];
      const leafStart = p - (p % B);
      if (leafStart !== p || p + B > end) {
        this.split(w, l, lo, u32[w + 1], this.takeFrame());
        this.flushLeaf(gather, leafStart, B, B);
        continue;
      }
      // A run of whole leaves in this table (int32-only loop).
      const runStart = p;
      let max = this.mask[l] + 1 - ((p / B) & this.mask[l]);
      const fit = Math.floor((end - p) / B);
      if (fit < max) max = fit;
      const type = l === 3 ? 3 : 1;
      let n = 0;
      for (; n < max; n++, w += 2) {
        if ((u32[w] & 3) !== type) break; // hole or table: the next descent decides
        Atomics.store(i32, w, 0);
        u32[w + 1] = 0;
      }
      p = runStart + n * B;
      this.flushLeaf(gather, runStart, n * B, B);
      if (this.addCount(t, -n) === 0 && t !== this.pgdPa) this.freeEmpty(l, runStart);
    }
    this.releasePool();
    return p - iova;
  }

  private flushLeaf(gather: IotlbGather | undefined, iova: number, size: number, leafSize: number): void {
    if (gather !== undefined) gather.add(iova, size, leafSize);
    else this.onTlbFlush?.(iova, size, leafSize, true);
  }

  /** Frees the empty table holding level-`l` entries (reached through pathW/pathT), and its empty ancestors. */
  private freeEmpty(l: number, iova: number): void {
    for (;;) {
      const t = this.pathT[l];
      const pw = this.pathW[l - 1];
      const span = this.bs[l - 1];
      Atomics.store(this.i32, pw, 0);
      this.u32[pw + 1] = 0;
      this.onTlbFlush?.(iova - (iova % span), span, this.granule, false);
      this.tables.delete(t);
      this.mem.freeFrames(t, this.tableFrames);
      const parent = this.pathT[l - 1];
      l--;
      if (this.addCount(parent, -1) !== 0 || parent === this.pgdPa) return;
    }
  }

  /** Replaces the level-`l` block at word `w` by a table (frame `nt`) of equivalent level-(l+1) leaves. */
  private split(w: number, l: number, lo: number, hi: number, nt: number): void {
    const u32 = this.u32;
    const c = l + 1;
    const childSize = this.bs[c];
    const attrLo = (lo & ATTR_LO_MASK) | (c === 3 ? 3 : 1);
    const attrHi = hi & ATTR_HI_MASK;
    const entries = this.mask[c] + 1;
    // Same output-address stepping as writeLeaves.
    const a = this.leafAddr(lo, hi);
    const stepLo = childSize < TWO32 ? childSize | 0 : 0;
    const stepHi = childSize < TWO32 ? 0 : (childSize / TWO32) | 0;
    const addrLo = this.addrLo | 0;
    let aLo = a % TWO32 | 0;
    let aHi = Math.floor(a / TWO32) | 0;
    let cw = nt >>> 2;
    for (let k = 0; k < entries; k++, cw += 2) {
      u32[cw] = (aLo & addrLo) | attrLo | (((aHi >>> 16) & 0xf) << 12);
      u32[cw + 1] = (aHi & 0xffff) | attrHi;
      aLo = (aLo + stepLo) | 0;
      aHi = (aHi + stepHi + (stepLo !== 0 && aLo === 0 ? 1 : 0)) | 0;
    }
    this.tables.set(nt, entries);
    // Block → table in one 64-bit atomic store (the walker never sees a torn descriptor).
    this.b64 ??= new BigInt64Array(u32.buffer, u32.byteOffset, u32.length >>> 1);
    Atomics.store(this.b64, w >>> 1, BigInt((nt | 3) >>> 0));
  }

  // ------------------------------------------------------------------ queries

  /** The output address `iova` translates to, or -1 when unmapped (`iova_to_phys`). */
  iovaToPhys(iova: number): number {
    if (this.freed || !Number.isSafeInteger(iova) || iova < 0 || iova >= this.vaLimit) return -1;
    if (!this.findLeaf(iova)) return -1;
    return this.leafAddr(this.fLo, this.fHi) + (iova % this.bs[this.fLevel]);
  }

  /** The leaf descriptor mapping `iova` (level, size, addresses, raw words), or undefined. */
  lookup(iova: number): IoPgtableLeaf | undefined {
    if (this.freed || !Number.isSafeInteger(iova) || iova < 0 || iova >= this.vaLimit) return undefined;
    if (!this.findLeaf(iova)) return undefined;
    const size = this.bs[this.fLevel];
    return {
      level: this.fLevel,
      iova: iova - (iova % size),
      size,
      pa: this.leafAddr(this.fLo, this.fHi),
      ptePa: this.fW * 4,
      lo: this.fLo >>> 0,
      hi: this.fHi >>> 0,
    };
  }

  /**
   * Reports every dirty leaf overlapping `[iova, iova + size)` as `record(leafIova, leafSize)`
   * (whole leaves) and clears it unless `noClear` (`read_and_clear_dirty`). Stage 1: dirty =
   * DBM && !AP[2], clear = set AP[2]; stage 2: dirty = DBM && S2AP.W, clear = clear S2AP.W.
   * The caller invalidates the TLB for what was cleared.
   * @returns the number of leaves cleared
   * @throws IommuError EINVAL (empty range or beyond ias), ENODEV (freed).
   */
  readAndClearDirty(iova: number, size: number, noClear: boolean, record: (iova: number, len: number) => void): number {
    this.checkLive('readAndClearDirty');
    if (!Number.isSafeInteger(iova) || !Number.isSafeInteger(size) || iova < 0 || size <= 0 || iova + size > this.vaLimit) {
      throw new IommuError('EINVAL', `io-pgtable readAndClearDirty: bad range 0x${String(iova)} +${String(size)}`);
    }
    const u32 = this.u32;
    const i32 = this.i32;
    const s1 = this.fmt === 's1';
    const end = iova + size;
    let cleared = 0;
    let p = iova;
    while (p < end) {
      let t = this.pgdPa;
      let l = this.startLevel;
      let w = 0;
      let skip = false;
      for (;;) {
        w = (t >>> 2) + ((p / this.bs[l]) & this.mask[l]) * 2;
        const lo = u32[w];
        if ((lo & 1) === 0 || (l === 3 && (lo & 3) !== 3)) {
          skip = true;
          break;
        }
        if (l < 3 && (lo & 3) === 3) {
          t = this.tableAddr(lo, u32[w + 1]);
          l++;
          continue;
        }
        break;
      }
      const B = this.bs[l];
      if (skip) {
        p = p - (p % B) + B;
        continue;
      }
      // Scan this table from the leaf found.
      let room = this.mask[l] + 1 - ((p / B) & this.mask[l]);
      while (room > 0 && p < end) {
        const lo = u32[w];
        if ((lo & 1) !== 0) {
          if (!this.isLeaf(lo, l)) {
            if (l < 3) break; // a table: descend again
          } else {
            const hi = u32[w + 1];
            const dirty = (hi & PTE_DBM_HI) !== 0 && (s1 ? (lo & PTE_AP_RDONLY) === 0 : (lo & PTE_S2AP_WRITE) !== 0);
            if (dirty) {
              record(p - (p % B), B);
              if (!noClear) {
                if (s1) Atomics.or(i32, w, PTE_AP_RDONLY);
                else Atomics.and(i32, w, ~PTE_S2AP_WRITE);
                cleared++;
              }
            }
          }
        }
        p = p - (p % B) + B;
        w += 2;
        room--;
      }
    }
    return cleared;
  }

  /**
   * Frees every table frame (PGD included). The table must no longer be in use by the SMMU.
   * Later map/unmap/readAndClearDirty throw ENODEV; iovaToPhys returns -1. Idempotent.
   */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    for (const t of this.tables.keys()) this.mem.freeFrames(t, this.tableFrames);
    this.tables.clear();
    this.releasePool();
    this.mem.freeFrames(this.pgdPa, this.pgdFrames);
  }
}
