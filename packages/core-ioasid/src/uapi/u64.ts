import { fail } from '../errors.js';

/** 2^64 - 1: U64_MAX, and ULONG_MAX / SIZE_MAX of the 64-bit kernel the model stands for. */
export const U64_MAX = (1n << 64n) - 1n;
/** ULONG_MAX of a 64-bit kernel. */
export const ULONG_MAX = U64_MAX;
/** The CPU page size of the modelled machine. */
export const PAGE_SIZE = 4096;
/** {@link PAGE_SIZE} as a bigint. */
export const PAGE_SIZE_N = 4096n;

/**
 * Converts a u64 uAPI input (`bigint` or `number`) to a bigint. A number must be a non-negative
 * safe integer, a bigint must fit 64 bits; anything else is `EINVAL` naming `what`.
 */
export function u64(value: bigint | number | undefined, what: string): bigint {
  if (value === undefined) return 0n;
  if (typeof value === 'bigint') {
    if (value < 0n || value > U64_MAX) fail('EINVAL', `${what} ${value} is not a u64`);
    return value;
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail('EINVAL', `${what} ${String(value)} is not a u64 (use a bigint above 2^53)`);
  }
  return BigInt(value);
}

/** Converts a u32 input; `EINVAL` naming `what` if it is not an integer in [0, 2^32). */
export function u32(value: number | undefined, what: string): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    fail('EINVAL', `${what} ${String(value)} is not a u32`);
  }
  return value;
}

/** `0x…` rendering of a bigint or number, for messages. */
export function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}
