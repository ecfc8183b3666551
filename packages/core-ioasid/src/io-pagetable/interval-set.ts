/**
 * Ordered sets of inclusive 64-bit intervals, the model's stand-in for the kernel's interval trees
 * (lib/interval_tree.c, interval_tree_span_iter).
 *
 * - {@link DisjointIntervals}: non-overlapping items (IOAS areas), kept in sorted blocks (a
 *   one-level B-tree) so insert / delete / "first intersecting" stay O(log n + block) even with
 *   hundreds of thousands of single-page areas.
 * - {@link spanHoles}: the holes of a union of interval sets clipped to a window, ascending,
 *   merging overlapping and adjacent items (interval_tree_for_each_span / _double_span).
 */

/** An inclusive interval `[start, last]` of u64 values. */
export interface Interval {
  start: bigint;
  last: bigint;
}

const BLOCK_MAX = 512;

/** Non-overlapping intervals ordered by start. */
export class DisjointIntervals<T extends Interval> {
  private blocks: T[][] = [];
  private count = 0;

  /** Number of items. */
  get size(): number {
    return this.count;
  }

  /** Index of the block whose first item has the largest start <= x (-1 if none). */
  private blockFor(x: bigint): number {
    const b = this.blocks;
    let lo = 0;
    let hi = b.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (b[mid][0].start <= x) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  /** Index in `blk` of the last item with start <= x (-1 if none). */
  private static idxIn<T extends Interval>(blk: T[], x: bigint): number {
    let lo = 0;
    let hi = blk.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (blk[mid].start <= x) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  /** Inserts `item` (the caller guarantees it overlaps nothing). */
  insert(item: T): void {
    this.count++;
    const blocks = this.blocks;
    if (blocks.length === 0) {
      blocks.push([item]);
      return;
    }
    let b = this.blockFor(item.start);
    if (b < 0) b = 0;
    const blk = blocks[b];
    const i = DisjointIntervals.idxIn(blk, item.start) + 1;
    if (i === blk.length) blk.push(item);
    else blk.splice(i, 0, item);
    if (blk.length > BLOCK_MAX) {
      const half = blk.length >> 1;
      blocks.splice(b + 1, 0, blk.splice(half));
    }
  }

  /** Removes `item` (by identity); false if it is not in the set. */
  delete(item: T): boolean {
    const b = this.blockFor(item.start);
    if (b < 0) return false;
    const blk = this.blocks[b];
    const i = DisjointIntervals.idxIn(blk, item.start);
    if (i < 0 || blk[i] !== item) return false;
    if (i === blk.length - 1) blk.pop();
    else if (i === 0) blk.shift();
    else blk.splice(i, 1);
    if (blk.length === 0) this.blocks.splice(b, 1);
    this.count--;
    return true;
  }

  /** The lowest item intersecting `[start, last]`, if any (`interval_tree_iter_first`). */
  firstIntersecting(start: bigint, last: bigint): T | undefined {
    const blocks = this.blocks;
    if (blocks.length === 0) return undefined;
    const b = this.blockFor(start);
    if (b < 0) {
      const first = blocks[0][0];
      return first.start <= last ? first : undefined;
    }
    const blk = blocks[b];
    const i = DisjointIntervals.idxIn(blk, start);
    const p = blk[i];
    if (p.last >= start) return p;
    const n = i + 1 < blk.length ? blk[i + 1] : b + 1 < blocks.length ? blocks[b + 1][0] : undefined;
    return n !== undefined && n.start <= last ? n : undefined;
  }

  /** The item containing `x`, if any. */
  containing(x: bigint): T | undefined {
    const b = this.blockFor(x);
    if (b < 0) return undefined;
    const blk = this.blocks[b];
    const p = blk[DisjointIntervals.idxIn(blk, x)];
    return p.last >= x ? p : undefined;
  }

  /** The lowest item with start > x, if any. */
  firstAfter(x: bigint): T | undefined {
    const blocks = this.blocks;
    if (blocks.length === 0) return undefined;
    const b = this.blockFor(x);
    if (b < 0) return blocks[0][0];
    const blk = blocks[b];
    const i = DisjointIntervals.idxIn(blk, x);
    return i + 1 < blk.length ? blk[i + 1] : b + 1 < blocks.length ? blocks[b + 1][0] : undefined;
  }

  /** The item following `item` in order (`interval_tree_iter_next` without a bound). */
  next(item: T): T | undefined {
    return this.firstAfter(item.start);
  }

  /** Every item in ascending order (a snapshot: safe against changes during the walk). */
  toArray(): T[] {
    const out: T[] = [];
    for (const blk of this.blocks) for (const it of blk) out.push(it);
    return out;
  }

  /** Ascending iteration (do not modify the set while iterating; use {@link toArray}). */
  *[Symbol.iterator](): IterableIterator<T> {
    for (const blk of this.blocks) yield* blk;
  }
}

/** Sorted (by start) copy of `items` merged into maximal spans, overlapping or adjacent ones joined. */
export function mergeSpans(items: readonly Interval[]): Interval[] {
  const sorted = [...items].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Interval[] = [];
  for (const it of sorted) {
    const top = out[out.length - 1];
    if (top !== undefined && it.start <= top.last + 1n) {
      if (it.last > top.last) top.last = it.last;
    } else out.push({ start: it.start, last: it.last });
  }
  return out;
}

/** Source of "used" intervals for {@link spanHoles}. */
export interface UsedSet {
  /** The used interval containing x, if any. */
  containing(x: bigint): Interval | undefined;
  /** The lowest used interval starting after x, if any. */
  firstAfter(x: bigint): Interval | undefined;
}

/** A {@link UsedSet} over a sorted, merged array of spans (see {@link mergeSpans}). */
export class SpanArray implements UsedSet {
  constructor(readonly spans: readonly Interval[]) {}

  private idx(x: bigint): number {
    const s = this.spans;
    let lo = 0;
    let hi = s.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid].start <= x) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  containing(x: bigint): Interval | undefined {
    const i = this.idx(x);
    return i >= 0 && this.spans[i].last >= x ? this.spans[i] : undefined;
  }

  firstAfter(x: bigint): Interval | undefined {
    return this.spans[this.idx(x) + 1];
  }
}

/**
 * Calls `visit(holeStart, holeLast)` for every hole of the union of `sets` inside `[first, last]`,
 * ascending, until `visit` returns true. Returns whether a visit returned true.
 */
export function spanHoles(
  sets: readonly UsedSet[],
  first: bigint,
  last: bigint,
  visit: (start: bigint, last: bigint) => boolean,
): boolean {
  let pos = first;
  for (;;) {
    if (pos > last) return false;
    // Skip used intervals covering pos (they may chain across sets).
    let covered = true;
    while (covered) {
      covered = false;
      for (const s of sets) {
        const c = s.containing(pos);
        if (c !== undefined) {
          if (c.last >= last) return false;
          pos = c.last + 1n;
          covered = true;
        }
      }
    }
    let holeLast = last;
    for (const s of sets) {
      const n = s.firstAfter(pos);
      if (n !== undefined && n.start - 1n < holeLast) holeLast = n.start - 1n;
    }
    if (visit(pos, holeLast)) return true;
    if (holeLast >= last) return false;
    pos = holeLast + 1n;
  }
}
