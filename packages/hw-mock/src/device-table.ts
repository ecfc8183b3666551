/**
 * Table-building helpers for the device table and PASID tables (used by the driver and tests).
 * Entries are written with word0 (which holds V) last, so the hardware never fetches a valid
 * entry whose pointers are half written.
 */
import { IommuError } from '@iommulab/driver-api';
import type { PhysMem } from '@iommulab/runtime';
import {
  DTE_BYTES,
  DTE_WORDS,
  PASID_DIR_BYTES,
  PASID_DIR_V,
  PASID_ENTRY_BYTES,
  encodeDte,
  encodePasidDirEntry,
  encodePasidEntry,
  type Dte,
  type PasidEntry,
} from './codec.js';

const scratch = new Uint32Array(DTE_WORDS);

/** Writes the DTE of `rid` in the table at `dtBase`. */
export function writeDte(mem: PhysMem, dtBase: number, rid: number, dte: Dte): void {
  encodeDte(dte, scratch, 0);
  const w = (dtBase + rid * DTE_BYTES) >>> 2;
  const i32 = mem.i32;
  for (let k = DTE_WORDS - 1; k >= 0; k--) Atomics.store(i32, w + k, scratch[k]! | 0);
}

/** A two-level PASID table (directory of 4096 entries, 256-entry leaves allocated on demand). */
export class PasidTable {
  /** PA of the directory (8 frames). */
  readonly dir: number;
  private readonly leaves = new Map<number, number>();

  /** @throws IommuError ENOMEM */
  static create(mem: PhysMem): PasidTable {
    let dir: number;
    try {
      dir = mem.allocFrames(PASID_DIR_BYTES / 4096);
    } catch (e) {
      throw new IommuError('ENOMEM', 'no memory for a PASID directory', { cause: e });
    }
    return new PasidTable(mem, dir);
  }

  private constructor(private readonly mem: PhysMem, dir: number) {
    this.dir = dir;
  }

  /** Makes sure the leaf for `pasid` exists (the only step that can fail). @throws IommuError ENOMEM */
  ensureLeaf(pasid: number): void {
    const di = pasid >>> 8;
    if (this.leaves.has(di)) return;
    let leaf: number;
    try {
      leaf = this.mem.allocFrame();
    } catch (e) {
      throw new IommuError('ENOMEM', `no memory for the PASID leaf table of PASID ${pasid}`, { cause: e });
    }
    this.leaves.set(di, leaf);
    const w = encodePasidDirEntry({ valid: true, leaf });
    const at = (this.dir + di * 8) >>> 2;
    Atomics.store(this.mem.i32, at + 1, w[1]! | 0);
    Atomics.store(this.mem.i32, at, w[0]! | 0);
  }

  /** Writes the entry of `pasid` (its leaf must exist: {@link PasidTable.ensureLeaf}). */
  setEntry(pasid: number, e: PasidEntry): void {
    this.ensureLeaf(pasid);
    const leaf = this.leaves.get(pasid >>> 8)!;
    const w = encodePasidEntry(e);
    const at = (leaf + (pasid & 0xff) * PASID_ENTRY_BYTES) >>> 2;
    const i32 = this.mem.i32;
    for (let k = 3; k >= 0; k--) Atomics.store(i32, at + k, w[k]! | 0);
  }

  /** Marks the entry of `pasid` invalid (no-op without a leaf). */
  clearEntry(pasid: number): void {
    const leaf = this.leaves.get(pasid >>> 8);
    if (leaf === undefined) return;
    Atomics.store(this.mem.i32, (leaf + (pasid & 0xff) * PASID_ENTRY_BYTES) >>> 2, 0);
  }

  /** Frees the directory and every leaf. */
  free(): void {
    for (const leaf of this.leaves.values()) this.mem.freeFrames(leaf, 1);
    this.leaves.clear();
    this.mem.freeFrames(this.dir, PASID_DIR_BYTES / 4096);
  }
}

/** True when directory entry `di` of the table at `dir` is valid (for tests). */
export function pasidDirEntryValid(mem: PhysMem, dir: number, di: number): boolean {
  return (mem.read32(dir + di * 8) & PASID_DIR_V) !== 0;
}
