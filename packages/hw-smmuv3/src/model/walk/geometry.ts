/**
 * Translation-table geometry (smmuv3.md §7.1, §7.2): start levels, level shifts, index
 * extraction and which levels may hold blocks.
 *
 * Hot-path convention: addresses travel as two int32 halves, `lo` = bits [31:0] and `hi` =
 * bits [63:32] (both `| 0`, read with `>>> 0` when an unsigned value is needed), so walks do no
 * division and never box a double across a call.
 */
import { levelShift } from '../../codec/index.js';

/** 2^32. */
export const TWO32 = 4294967296;

/** Powers of two 2^0 .. 2^64 as numbers (exact). */
export const POW2: Float64Array = (() => {
  const p = new Float64Array(65);
  for (let i = 0; i <= 64; i++) p[i] = 2 ** i;
  return p;
})();

export { levelShift };

/**
 * Stage-1 start level for an input size of `ia` bits and granule shift `g` (§7.1):
 * `4 − ceil((ia − g) / (g − 3))`. Out of 0..3 for a nonsensical `ia`.
 */
export function s1StartLevel(ia: number, g: number): number {
  return 4 - Math.ceil((ia - g) / (g - 3));
}

/** Stage-2 start level from S2SL0 (§7.2): `2 − SL0` for 4 KiB, `3 − SL0` for 16/64 KiB. */
export function s2StartLevel(g: number, sl0: number): number {
  return g === 12 ? 2 - sl0 : 3 - sl0;
}

/**
 * Index bits resolved by the start-level table: `ia − shift(start)`. For stage 1 this is 1..g−3;
 * for stage 2 up to g−3+4 (16 concatenated tables).
 */
export function startIndexBits(ia: number, g: number, start: number): number {
  return ia - levelShift(g, start);
}

/**
 * Index of the descriptor at a level: bits `[shift + width − 1 : shift]` of the address
 * (`mask` = 2^width − 1, width ≤ 17, shift ≥ 12).
 */
export function levelIndex(lo: number, hi: number, shift: number, mask: number): number {
  return shift >= 32 ? (hi >>> (shift - 32)) & mask : ((lo >>> shift) | (hi << (32 - shift))) & mask;
}

/** Whether the address (halves) is at or above 2^bits (bits ≥ 64: never). */
export function atOrAbove(lo: number, hi: number, bits: number): boolean {
  if (bits >= 64) return false;
  if (bits >= 32) return hi >>> (bits - 32) !== 0;
  return hi !== 0 || (bits <= 0 ? true : lo >>> bits !== 0);
}

/** High int32 half of a non-negative integer below 2^53 (the low half is `v | 0`). */
export function hiOf(v: number): number {
  return ((v - (v >>> 0)) / TWO32) | 0;
}

/** Joins int32 halves into a number (exact below 2^53). */
export function join(lo: number, hi: number): number {
  return (lo >>> 0) + (hi >>> 0) * TWO32;
}

/**
 * Whether a block descriptor is allowed at `level` for granule `g` (§7.1, §7.3): 4 KiB at levels
 * 1 and 2, 16 KiB at level 2, 64 KiB at level 2 and (52-bit output only) level 1. Blocks at 4 KiB
 * level 0 and 16 KiB level 1 need LPA2 (not modelled): those encodings are reserved → translation fault.
 */
export function blockAllowed(g: number, level: number, oa52: boolean): boolean {
  if (g === 12) return level === 1 || level === 2;
  if (g === 14) return level === 2;
  return level === 2 || (level === 1 && oa52);
}
