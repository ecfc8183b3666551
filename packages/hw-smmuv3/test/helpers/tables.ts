/**
 * Hand-built VMSAv8-64 translation tables for the walker tests and bench (smmuv3.md §7): every
 * descriptor is written with `mem.write64Parts` into frames from `mem.allocFrames`, with exactly
 * the bits the test asks for. Stage-1 tables of a nested configuration live at IPAs: give
 * `ipaOffset` (IPA = PA + ipaOffset) and table pointers / `root` are written as IPAs.
 */
import type { PhysMem } from '@iommulab/runtime';

const TWO32 = 4294967296;

/** Table geometry and placement. */
export interface TablesOptions {
  /** Granule shift (default 12). */
  g?: 12 | 14 | 16;
  /** Input address size in bits (64 − TxSZ). */
  ia: number;
  /** Start level (default: the stage-1 start level for `ia`). */
  startLevel?: number;
  /** Address written into table descriptors = PA + ipaOffset (nested stage-1 tables). Default 0. */
  ipaOffset?: number;
  /** Extra low-word bits of every table descriptor written (besides 0b11). Default 0. */
  tableLo?: number;
}

/** Splits a 64-bit value (number < 2^53) into [lo, hi]. */
export function split64(v: number): [number, number] {
  const lo = v % TWO32;
  return [lo >>> 0, (v - lo) / TWO32];
}

/** Reads the descriptor at `pa` as [lo, hi]. */
export function readDesc(mem: PhysMem, pa: number): [number, number] {
  return [mem.read32(pa), mem.read32(pa + 4)];
}

/** A translation-table tree built descriptor by descriptor. */
export class Tables {
  /** PA of the start-level table. */
  readonly rootPa: number;
  /** Address to put in TTB (PA + ipaOffset). */
  readonly root: number;
  readonly g: number;
  readonly ia: number;
  readonly startLevel: number;
  /** Index bits of the start-level table (may exceed g − 3: concatenation). */
  readonly startBits: number;
  readonly ipaOffset: number;
  private readonly tableLo: number;
  /** Frames allocated (PA, frames) — for tests that want to know. */
  readonly frames: number[] = [];

  constructor(
    readonly mem: PhysMem,
    opts: TablesOptions,
  ) {
    const g = opts.g ?? 12;
    const S = g - 3;
    this.g = g;
    this.ia = opts.ia;
    this.startLevel = opts.startLevel ?? 4 - Math.ceil((opts.ia - g) / S);
    this.startBits = opts.ia - this.shift(this.startLevel);
    this.ipaOffset = opts.ipaOffset ?? 0;
    this.tableLo = opts.tableLo ?? 0;
    const bytes = 8 * 2 ** this.startBits;
    const frames = Math.max(1, Math.ceil(bytes / 4096));
    this.rootPa = mem.allocFrames(frames, frames);
    this.frames.push(this.rootPa);
    this.root = this.rootPa + this.ipaOffset;
  }

  /** Input shift of a level. */
  shift(level: number): number {
    return this.g + (3 - level) * (this.g - 3);
  }

  private index(va: number, level: number): number {
    const bits = level === this.startLevel ? this.startBits : this.g - 3;
    return Math.floor(va / 2 ** this.shift(level)) % 2 ** bits;
  }

  private newTable(): number {
    const n = 2 ** this.g / 4096;
    const pa = this.mem.allocFrames(n, n);
    this.frames.push(pa);
    return pa;
  }

  /** PA of the table at `level` covering `va`, creating table descriptors on the way. */
  tablePa(va: number, level: number): number {
    let t = this.rootPa;
    for (let l = this.startLevel; l < level; l++) {
      const d = t + this.index(va, l) * 8;
      const lo = this.mem.read32(d);
      const hi = this.mem.read32(d + 4);
      if ((lo & 3) === 3) {
        t = ((lo - (lo % 2 ** this.g)) >>> 0) + (hi & 0xffff) * TWO32 - this.ipaOffset;
      } else {
        const next = this.newTable();
        const [nlo, nhi] = split64(next + this.ipaOffset);
        this.mem.write64Parts(d, (nlo | 3 | this.tableLo) >>> 0, nhi);
        t = next;
      }
    }
    return t;
  }

  /** PA of the descriptor at `level` for `va` (tables above it are created). */
  descPa(va: number, level: number): number {
    return this.tablePa(va, level) + this.index(va, level) * 8;
  }

  /**
   * Writes a leaf for `va` at `level`: output `oa` (aligned to the leaf), type 0b11 at level 3 else
   * 0b01, plus `attrLo` / `attrHi` attribute bits. Returns the descriptor PA.
   */
  map(va: number, oa: number, level: number, attrLo: number, attrHi = 0): number {
    const d = this.descPa(va, level);
    const [lo, hi] = split64(oa);
    this.mem.write64Parts(d, (lo | attrLo | (level === 3 ? 3 : 1)) >>> 0, (hi | attrHi) >>> 0);
    return d;
  }

  /** Writes raw words at the descriptor for `va` at `level`. Returns its PA. */
  setRaw(va: number, level: number, lo: number, hi: number): number {
    const d = this.descPa(va, level);
    this.mem.write64Parts(d, lo >>> 0, hi >>> 0);
    return d;
  }

  /** ORs `hiBits` into the high word of the table descriptor at `level` for `va` (hierarchical attributes). */
  orTableHi(va: number, level: number, hiBits: number): void {
    this.tablePa(va, level + 1);
    const d = this.tablePa(va, level) + this.index(va, level) * 8;
    this.mem.write32(d + 4, (this.mem.read32(d + 4) | hiBits) >>> 0);
  }
}

/** Stage-1 leaf low bits: AF | SH=ISH | AttrIndx 1 (Linux cached, §7.5), without AP/nG/type. */
export const S1_NORMAL = 0x400 | 0x300 | 0x4;
/** Stage-2 leaf low bits: AF | SH=ISH | MemAttr 0xF (normal WB), without S2AP/type. */
export const S2_NORMAL = 0x400 | 0x300 | 0x3c;
/** Stage-2 S2AP read | write. */
export const S2_RW = 0xc0;
