/**
 * VMSAv8-64 descriptor decoding (smmuv3.md §7.3): output / next-table address extraction from a
 * descriptor held as its low and high 32-bit words, as int32 halves (no doubles in the hot path).
 * Bit constants come from the codec (pte.ts).
 */
import { TWO32 } from './geometry.js';

/**
 * Low half of the address held by a descriptor: bits [31:n] of the low word (n = the level
 * shift for a block, the granule shift for a page or a next-level table; 12 ≤ n ≤ 47).
 */
export function descAddrLo(lo: number, n: number): number {
  return n >= 32 ? 0 : lo & ~((1 << n) - 1);
}

/**
 * High half of the address held by a descriptor: bits [47:max(n,32)], plus bits [51:48] from
 * descriptor bits [15:12] when `oa52` (64 KiB granule with a 52-bit output size).
 */
export function descAddrHi(lo: number, hi: number, n: number, oa52: boolean): number {
  let a = n > 32 ? hi & 0xffff & ~((1 << (n - 32)) - 1) : hi & 0xffff;
  if (oa52) a |= ((lo >>> 12) & 0xf) << 16;
  return a;
}

/** The descriptor's address as a number (see {@link descAddrLo}, {@link descAddrHi}); for tools and tests. */
export function descAddr(lo: number, hi: number, n: number, oa52: boolean): number {
  return (descAddrLo(lo, n) >>> 0) + descAddrHi(lo, hi, n, oa52) * TWO32;
}

/**
 * Hierarchical attribute bits of a stage-1 table descriptor (bits [62:59]) as a 4-bit mask:
 * `(hi >>> 27) & 0xf` — see the TBL_* constants.
 */
export function tableAttrs(hi: number): number {
  return (hi >>> 27) & 0xf;
}

/** Accumulated table restriction: PXNTable (bit 59) — no privileged execution below. */
export const TBL_PXN = 1;
/** Accumulated table restriction: XNTable / UXNTable (bit 60) — no unprivileged execution below. */
export const TBL_UXN = 2;
/** Accumulated table restriction: APTable[0] (bit 61) — no unprivileged access below. */
export const TBL_NO_UNPRIV = 4;
/** Accumulated table restriction: APTable[1] (bit 62) — no writes below. */
export const TBL_RDONLY = 8;
