/**
 * Range TLB invalidation as Linux's `__arm_smmu_tlb_inv_range` (smmuv3.md §4.3) and the ATC
 * invalidation span of `arm_smmu_atc_inv_to_cmd` (§4.4).
 *
 * With IDR3.RIL: `tg = log2(smallest page)`, TG = (tg − 10) / 2, TTL = 4 − ((log2(granule) − 3)
 * / (tg − 3)) for leaf invalidations (0 otherwise, with the SVA corner-case bump of num_pages),
 * then repeatedly SCALE = ctz(num_pages), NUM = ((num_pages >> SCALE) & 31) − 1, advancing by
 * (NUM + 1) << (SCALE + tg). Without RIL: one non-range TLBI (TG = TTL = NUM = SCALE = 0) per
 * `granule` step, and a whole-context flush instead once that takes CMDQ_MAX_TLBI_OPS (512)
 * commands or more (Linux's SVA rule, applied to every domain here).
 */

/** Linux `CMDQ_MAX_TLBI_OPS` (1 << (PAGE_SHIFT − 3)): above this many per-page TLBIs, flush all. */
export const CMDQ_MAX_TLBI_OPS = 512;
/** Linux `CMDQ_TLBI_RANGE_NUM_MAX`. */
const RANGE_NUM_MAX = 31;

/** One VA/IPA TLBI of a range plan. */
export interface TlbiRangeCmd {
  /** Start address (aligned to the TG page). */
  addr: number;
  /** NUM [16:12]. */
  num: number;
  /** SCALE [24:20]. */
  scale: number;
  /** TG [11:10]: 0 non-range, 1 4K, 2 16K, 3 64K. */
  tg: number;
  /** TTL [9:8]. */
  ttl: number;
}

function ctz(n: number): number {
  let s = 0;
  while (n % 2 === 0 && s < 64) {
    n /= 2;
    s++;
  }
  return s;
}

/**
 * Plans the TLBIs invalidating `[iova, iova + size)` whose leaves are `granule`-sized, for a
 * domain whose smallest page is 2^`tgShift`. Returns `null` when the caller should flush the whole
 * context instead (no RIL and CMDQ_MAX_TLBI_OPS or more steps, or a range too large to encode).
 */
export function planTlbiRange(iova: number, size: number, granule: number, leaf: boolean, ril: boolean, tgShift: number): TlbiRangeCmd[] | null {
  const out: TlbiRangeCmd[] = [];
  if (size <= 0) return out;
  const end = iova + size;
  if (!ril) {
    if (size / granule >= CMDQ_MAX_TLBI_OPS) return null;
    for (let a = iova; a < end; a += granule) out.push({ addr: a, num: 0, scale: 0, tg: 0, ttl: 0 });
    return out;
  }
  let numPages = Math.floor(size / 2 ** tgShift);
  const tg = (tgShift - 10) / 2;
  let ttl = 0;
  if (leaf) ttl = 4 - Math.floor((Math.log2(granule) - 3) / (tgShift - 3));
  else if (numPages % 32 === 1) numPages++;
  if (numPages >= 2 ** 31) return null;
  let a = iova;
  while (a < end && numPages > 0) {
    const scale = ctz(numPages);
    const num = Math.floor(numPages / 2 ** scale) % (RANGE_NUM_MAX + 1);
    out.push({ addr: a, num: num - 1, scale, tg, ttl });
    a += num * 2 ** (scale + tgShift);
    numPages -= num * 2 ** scale;
  }
  return out;
}

/**
 * `arm_smmu_atc_inv_to_cmd`'s span (§4.4): the naturally aligned power-of-two block of 4 KiB pages
 * containing `[iova, iova + size)`; `size` 0 → everything (Size 52, address 0).
 */
export function atcInvSpan(iova: number, size: number): { addr: number; log2: number } {
  if (size === 0) return { addr: 0, log2: 52 };
  const pageStart = Math.floor(iova / 4096);
  const pageEnd = Math.floor((iova + size - 1) / 4096);
  // fls(page_start ^ page_end) on up to 40-bit page numbers.
  let x = pageStart;
  let y = pageEnd;
  let log2 = 0;
  while (x !== y) {
    x = Math.floor(x / 2);
    y = Math.floor(y / 2);
    log2++;
  }
  const start = Math.floor(pageStart / 2 ** log2) * 2 ** log2;
  return { addr: start * 4096, log2 };
}
