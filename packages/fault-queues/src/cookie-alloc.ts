/**
 * Fault-object cookies (vmm-and-faults.md §3.2 step 7): `xa_alloc` with XA_FLAGS_ALLOC1 and
 * `xa_limit_32b`, i.e. the lowest free u32 from 1. O(log n) per allocation with a min-heap of
 * freed cookies below the high-water mark.
 */
export class CookieAllocator {
  /** Next never-used cookie. */
  #next = 1;
  /** Freed cookies below #next (a binary min-heap). */
  readonly #free: number[] = [];
  /** Cookies in use. */
  #used = 0;

  /** Cookies currently allocated. */
  get size(): number {
    return this.#used;
  }

  /** The lowest free cookie (≥ 1); `undefined` when all 2^32 − 1 are in use. */
  alloc(): number | undefined {
    const heap = this.#free;
    let c: number;
    if (heap.length > 0) c = this.#pop();
    else {
      if (this.#next > 0xffff_ffff) return undefined;
      c = this.#next++;
    }
    this.#used++;
    return c;
  }

  /** Returns `cookie` to the pool. The caller frees only cookies it allocated. */
  free(cookie: number): void {
    this.#used--;
    if (this.#used === 0) {
      // Everything is free again: restart from 1 with an empty heap.
      this.#next = 1;
      this.#free.length = 0;
      return;
    }
    this.#push(cookie);
  }

  #push(v: number): void {
    const h = this.#free;
    let i = h.length;
    h.push(v);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]! <= v) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = v;
  }

  #pop(): number {
    const h = this.#free;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      const n = h.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && h[r]! < h[l]! ? r : l;
        if (h[c]! >= last) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
