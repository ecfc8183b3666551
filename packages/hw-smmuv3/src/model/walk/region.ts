/**
 * Stage-1 region selection (smmuv3.md §7.4): a VA belongs to the TTB0 region when all its bits
 * above the region size are 0, to the TTB1 region when they are all 1, and to neither otherwise
 * (translation fault). With top-byte-ignore (TBI1 when VA bit 55 is 1, else TBI0) bits [63:56]
 * are replaced by copies of bit 55 first.
 */

/** Region number returned by {@link selectRegion} when the VA is in neither region. */
export const REGION_NONE = -1;

/** Whether bits [63:ia] of the VA (int32 or uint32 halves lo/hi) are all 0. */
export function upperBitsZero(lo: number, hi: number, ia: number): boolean {
  if (ia >= 64) return true;
  if (ia >= 32) return hi >>> (ia - 32) === 0;
  return (hi | 0) === 0 && (ia <= 0 ? (lo | 0) === 0 : lo >>> ia === 0);
}

/** Whether bits [63:ia] of the VA (int32 or uint32 halves lo/hi) are all 1. */
export function upperBitsOnes(lo: number, hi: number, ia: number): boolean {
  if (ia >= 64) return true;
  if (ia >= 32) return hi >>> (ia - 32) === 0xffffffff >>> (ia - 32);
  return (hi | 0) === -1 && (ia <= 0 ? (lo | 0) === -1 : lo >>> ia === 0xffffffff >>> ia);
}

/**
 * The high word used for region checks: with TBI, bits [63:56] become copies of bit 55.
 * @param hi - VA bits [63:32] (int32)
 * @returns the adjusted high half (int32)
 */
export function tbiAdjustHi(hi: number, tbi0: boolean, tbi1: boolean): number {
  const b55 = (hi >>> 23) & 1;
  if (b55 === 0) return tbi0 ? hi & 0x00ffffff : hi | 0;
  return tbi1 ? hi | 0xff000000 : hi | 0;
}

/**
 * Selects the region of a VA: 0 (TTB0), 1 (TTB1) or {@link REGION_NONE}. Does not look at EPDx.
 */
export function selectRegion(lo: number, hi: number, t0sz: number, t1sz: number, tbi0: boolean, tbi1: boolean): number {
  const h = tbiAdjustHi(hi, tbi0, tbi1);
  if (upperBitsZero(lo, h, 64 - t0sz)) return 0;
  if (upperBitsOnes(lo, h, 64 - t1sz)) return 1;
  return REGION_NONE;
}
