/**
 * Bit fields of little-endian 64-bit dwords, read and written as pairs of 32-bit words (low word
 * first) of a `Uint32Array` over PhysMem. Every layout table in this codec is made of {@link Field}s
 * whose positions are the spec's `[hi:lo]` ranges inside dword `dw` (smmuv3.md notation).
 */

/** One field: bits `[lo + width - 1 : lo]` of dword `dw`. Width at most 53. */
export interface Field {
  /** Dword index inside the structure. */
  readonly dw: number;
  /** Lowest bit of the field inside that dword (0..63). */
  readonly lo: number;
  /** Width in bits. */
  readonly width: number;
}

/** A field at `[hi:lo]` of dword `dw`. */
export function field(dw: number, hi: number, lo: number): Field {
  return { dw, lo, width: hi - lo + 1 };
}

/** A one-bit field. */
export function bit(dw: number, n: number): Field {
  return { dw, lo: n, width: 1 };
}

const TWO_32 = 4294967296;

/** Reads field `f` of the structure whose dword 0 starts at word `w` of `u32`. */
export function getField(u32: Uint32Array, w: number, f: Field): number {
  const base = w + f.dw * 2;
  const lo = f.lo;
  const width = f.width;
  if (lo >= 32) {
    const s = lo - 32;
    return width >= 32 ? u32[base + 1] >>> s : (u32[base + 1] >>> s) & ((1 << width) - 1);
  }
  if (lo + width <= 32) {
    return width >= 32 ? u32[base] : (u32[base] >>> lo) & ((1 << width) - 1);
  }
  const loBits = 32 - lo;
  const hiBits = width - loBits;
  const hiPart = hiBits >= 32 ? u32[base + 1] : u32[base + 1] & ((2 ** hiBits) - 1);
  return (u32[base] >>> lo) + hiPart * 2 ** loBits;
}

/** Reads an address field kept "in place" (bits `[hi:lo]` of the address are bits `[hi:lo]` of the dword). */
export function getAddr(u32: Uint32Array, w: number, f: Field): number {
  return getField(u32, w, f) * 2 ** f.lo;
}

/** Writes `value` (an integer below 2^width) into field `f`; other bits are kept. */
export function setField(u32: Uint32Array, w: number, f: Field, value: number): void {
  const base = w + f.dw * 2;
  const lo = f.lo;
  const width = f.width;
  if (lo >= 32) {
    const s = lo - 32;
    const m = width >= 32 ? 0xffffffff : ((2 ** width) - 1) * 2 ** s;
    u32[base + 1] = ((u32[base + 1] & ~m) | ((value * 2 ** s) & m)) >>> 0;
    return;
  }
  if (lo + width <= 32) {
    const m = width >= 32 ? 0xffffffff : ((2 ** width) - 1) * 2 ** lo;
    u32[base] = ((u32[base] & ~m) | ((value * 2 ** lo) % TWO_32 & m)) >>> 0;
    return;
  }
  const loBits = 32 - lo;
  const loVal = value % 2 ** loBits;
  const hiVal = Math.floor(value / 2 ** loBits);
  const mLo = (0xffffffff << lo) >>> 0;
  u32[base] = ((u32[base] & ~mLo) | ((loVal << lo) >>> 0)) >>> 0;
  const hiBits = width - loBits;
  const mHi = hiBits >= 32 ? 0xffffffff : (2 ** hiBits) - 1;
  u32[base + 1] = ((u32[base + 1] & ~mHi) | (hiVal & mHi)) >>> 0;
}

/** Writes an address into an in-place address field (its low `f.lo` bits are dropped). */
export function setAddr(u32: Uint32Array, w: number, f: Field, addr: number): void {
  setField(u32, w, f, Math.floor(addr / 2 ** f.lo) % 2 ** f.width);
}

/** A named set of fields: one structure's layout. */
export type Layout = Readonly<Record<string, Field>>;

/** Field values by name (absent = 0). */
export type FieldValues<L extends Layout> = { [K in keyof L]?: number };

/** Packs field values into a fresh structure of `dwords` dwords (for tests, drivers and slow paths). */
export function packFields<L extends Layout>(layout: L, values: FieldValues<L>, dwords: number): Uint32Array {
  const out = new Uint32Array(dwords * 2);
  for (const k of Object.keys(values)) {
    const f = layout[k];
    if (f === undefined) throw new RangeError(`unknown field ${k}`);
    const v = values[k];
    if (v !== undefined && v !== 0) setField(out, 0, f, v);
  }
  return out;
}

/** Decodes every field of `layout` from the structure at word `w` of `u32`. */
export function unpackFields<L extends Layout>(layout: L, u32: Uint32Array, w = 0): { [K in keyof L]: number } {
  const out = {} as { [K in keyof L]: number };
  for (const k of Object.keys(layout) as (keyof L)[]) out[k] = getField(u32, w, layout[k]);
  return out;
}

/** Dword `i` of the structure at word `w`, as a bigint (API edges and tests). */
export function dword(u32: Uint32Array, w: number, i: number): bigint {
  return (BigInt(u32[w + 2 * i + 1]) << 32n) | BigInt(u32[w + 2 * i]);
}

/** The structure's dwords as bigints. */
export function toDwords(u32: Uint32Array, w = 0, n = u32.length >>> 1): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < n; i++) out.push(dword(u32, w, i));
  return out;
}

/** Words (low first) of the given dwords. */
export function fromDwords(dwords: readonly bigint[]): Uint32Array {
  const out = new Uint32Array(dwords.length * 2);
  dwords.forEach((d, i) => {
    out[2 * i] = Number(d & 0xffffffffn);
    out[2 * i + 1] = Number((d >> 32n) & 0xffffffffn);
  });
  return out;
}
