/**
 * Hardware translation-table updates (HTTU, smmuv3.md §7.4 and §12 #16): the access flag and the
 * dirty state are written with an atomic compare-and-swap of the descriptor's low word, so a
 * concurrent software update (another thread owns the same SharedArrayBuffer) is never lost —
 * when the descriptor changed since it was read the swap fails and the walker re-reads it.
 */

/** Most times the walker re-reads a descriptor whose update lost a race before giving up (then it reports the fault it would have taken without HTTU). */
export const HTTU_MAX_RETRIES = 8;

/**
 * Atomically replaces the 32-bit word `wordIndex` of `i32` with `newLo` if it still holds
 * `expectLo` (both taken modulo 2^32).
 * @returns true when the swap happened
 */
export function casDescriptorLow(i32: Int32Array, wordIndex: number, expectLo: number, newLo: number): boolean {
  return Atomics.compareExchange(i32, wordIndex, expectLo | 0, newLo | 0) === (expectLo | 0);
}
