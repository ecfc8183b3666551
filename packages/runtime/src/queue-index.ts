/**
 * PROD/CONS index arithmetic for a queue of 2^log2 entries, in the SMMUv3 register format
 * (SMMUv3 §3.5.1 and Linux arm-smmu-v3 Q_IDX / Q_WRP): the entry index is in bits [log2-1:0]
 * and the wrap bit is bit `log2`. The wrap bit toggles each time the index wraps, so
 * - empty: same index, same wrap bit;
 * - full: same index, different wrap bit.
 * Flags above the wrap bit (e.g. bit 31, OVFLG / OVACKFLG) are ignored by every function here.
 *
 * Pure functions of numbers, no allocation. `log2` must be an integer in 0..30; values are
 * not validated (hot path).
 */

/** Index part of `p`: bits [log2-1:0]. */
export function qIdx(p: number, log2: number): number {
  return p & ((1 << log2) - 1);
}

/** Wrap bit of `p` (bit `log2`): 0 or 1. */
export function qWrap(p: number, log2: number): number {
  return (p >>> log2) & 1;
}

/** True when the queue is empty: same index and same wrap bit. */
export function qEmpty(prod: number, cons: number, log2: number): boolean {
  return ((prod ^ cons) & ((2 << log2) - 1)) === 0;
}

/** True when the queue is full: same index, different wrap bit. */
export function qFull(prod: number, cons: number, log2: number): boolean {
  return ((prod ^ cons) & ((2 << log2) - 1)) === 1 << log2;
}

/** Number of entries in use, 0..2^log2. */
export function qCount(prod: number, cons: number, log2: number): number {
  // idx+wrap is a (log2+1)-bit free-running counter; the difference modulo 2^(log2+1) is the count.
  return (prod - cons) & ((2 << log2) - 1);
}

/** Number of free entries, 0..2^log2. */
export function qSpace(prod: number, cons: number, log2: number): number {
  return (1 << log2) - ((prod - cons) & ((2 << log2) - 1));
}

/**
 * Advances `p` by `n` entries (default 1), toggling the wrap bit each time the index wraps.
 * The result has only the index and wrap bits (flags are dropped).
 */
export function qInc(p: number, log2: number, n = 1): number {
  return (p + n) & ((2 << log2) - 1);
}

/** True when `p` has no bits set above the wrap bit, ignoring bit 31 (the overflow flag). */
export function qValid(p: number, log2: number): boolean {
  return (p & 0x7fffffff & ~((2 << log2) - 1)) === 0;
}
