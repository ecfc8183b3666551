/** The largest cookie (`xa_limit_32b`). */
const MAX_COOKIE = 0xffff_ffff;

function isCookie(c: number): boolean {
  return Number.isInteger(c) && c >= 1 && c <= MAX_COOKIE;
}

/**
 * Fault-object cookies (vmm-and-faults.md §3.2 step 7, "cookies start at 1"): cyclic allocation
 * over [1, 2^32 − 1], like `xa_alloc_cyclic` with XA_FLAGS_ALLOC1 and `xa_limit_32b`.
 * - Each allocation returns the first cookie not in use at or after (last allocated + 1), wrapping
 *   from 0xffffffff back to 1; never a cookie still in use (vmm-and-faults.md §6.6 "cookies never
 *   reused while outstanding"); `undefined` only when all 2^32 − 1 are in use.
 * - Freeing never makes the next allocation go backwards: a freed cookie is handed out again only
 *   once the cursor has come round to it again, after a whole lap of [1, 2^32 − 1].
 *
 * This departs on purpose from the kernel, whose fault object uses `xa_alloc` (the lowest free
 * cookie, so a freed cookie is reused at once). The rule is that "a late response to a
 * group that was answered automatically (detach/replace/destroy) is rejected and can never match
 * a newer group that reused the PRG index": with lowest-free reuse, a stale `{cookie, code}`
 * written after a newer group was read could carry that newer group's cookie and answer it; with
 * cyclic cookies it gets EINVAL until the cursor has gone once round all 2^32 − 1 cookies (about
 * 2^32 − 1 further groups read). Kernel selftests never depend on cookie values (they echo the
 * cookie they read).
 *
 * Amortised O(1): a Set of the cookies in use and a cursor; an allocation skips only cookies
 * still in use, each at most once per lap of the cursor.
 */
export class CookieAllocator {
  /** The next cookie to try (1..0xffffffff). */
  #next: number;
  /** Cookies in use. */
  readonly #used = new Set<number>();

  /**
   * A fault object uses `new CookieAllocator()`: the first allocation is 1. Both parameters are
   * for tests only, to reach states of a later lap of the cursor without 2^32 allocations.
   * @param start the first cookie to try (an integer in [1, 0xffffffff], default 1), e.g. just
   *   below the wrap at 0xffffffff.
   * @param inUse cookies already in use (default none), e.g. ones still outstanding from the
   *   previous lap that the cursor must skip after it wraps.
   */
  constructor(start = 1, inUse: Iterable<number> = []) {
    if (!isCookie(start)) throw new RangeError(`CookieAllocator start ${start} is not in [1, 0xffffffff]`);
    for (const c of inUse) {
      if (!isCookie(c)) throw new RangeError(`CookieAllocator cookie ${c} is not in [1, 0xffffffff]`);
      this.#used.add(c);
    }
    this.#next = start;
  }

  /** Cookies currently allocated. */
  get size(): number {
    return this.#used.size;
  }

  /**
   * The first cookie not in use at or after (last allocated + 1), wrapping from 0xffffffff to 1
   * (the first from `start` for the first allocation); `undefined` when all 2^32 − 1 are in use.
   */
  alloc(): number | undefined {
    const used = this.#used;
    if (used.size >= MAX_COOKIE) return undefined;
    let c = this.#next;
    while (used.has(c)) c = c === MAX_COOKIE ? 1 : c + 1;
    used.add(c);
    this.#next = c === MAX_COOKIE ? 1 : c + 1;
    return c;
  }

  /**
   * Returns `cookie` to the pool. The caller frees only cookies it allocated. The cursor does not
   * move: the cookie comes back only once the cursor wraps around to it.
   */
  free(cookie: number): void {
    this.#used.delete(cookie);
  }
}
