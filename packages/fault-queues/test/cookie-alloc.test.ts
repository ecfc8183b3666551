// Fault-object cookies (vmm-and-faults.md §3.2 step 7, §6.4 "cookies start at 1", §6.6 "cookies
// never reused while outstanding"): cyclic allocation over [1, 2^32 − 1] like xa_alloc_cyclic (on
// purpose not the kernel's lowest-free xa_alloc, so a late response can never match a newer
// group): each allocation is the first cookie not in use at or after (last allocated + 1), wrapping
// from 0xffffffff to 1; never one still in use; freeing never makes the next allocation go back.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CookieAllocator } from '../src/index.js';

const MAX = 0xffff_ffff;

describe('CookieAllocator', () => {
  it('hands out 1, 2, 3... and counts what is in use', () => {
    const a = new CookieAllocator();
    expect(a.size).toBe(0);
    expect([a.alloc(), a.alloc(), a.alloc()]).toEqual([1, 2, 3]);
    expect(a.size).toBe(3);
  });

  it('does not hand out freed cookies again before the cursor wraps', () => {
    const a = new CookieAllocator();
    for (let i = 0; i < 6; i++) a.alloc();
    a.free(5);
    a.free(2);
    a.free(4);
    expect(a.size).toBe(3);
    expect([a.alloc(), a.alloc(), a.alloc(), a.alloc()]).toEqual([7, 8, 9, 10]);
    expect(a.size).toBe(7);
  });

  it('does not start again from 1 once everything is free', () => {
    const a = new CookieAllocator();
    a.alloc();
    a.alloc();
    a.free(1);
    a.free(2);
    expect(a.size).toBe(0);
    expect(a.alloc()).toBe(3);
    expect(a.alloc()).toBe(4);
  });

  it('starts from the test-only start cookie and wraps from 0xffffffff to 1', () => {
    const a = new CookieAllocator(MAX - 2);
    expect([a.alloc(), a.alloc(), a.alloc(), a.alloc(), a.alloc()]).toEqual([MAX - 2, MAX - 1, MAX, 1, 2]);
    expect(a.size).toBe(5);
    // freed cookies from before the wrap are behind the cursor now
    a.free(MAX - 1);
    a.free(1);
    expect([a.alloc(), a.alloc()]).toEqual([3, 4]);
    expect(a.size).toBe(5);
  });

  it('after the wrap skips the cookies still in use from the previous lap (test-only inUse)', () => {
    // the state of a later lap: 1, 2, 4 and 0xfffffffe still outstanding, the cursor at 0xfffffffd
    const a = new CookieAllocator(MAX - 2, [1, 2, 4, MAX - 1]);
    expect(a.size).toBe(4);
    expect([a.alloc(), a.alloc(), a.alloc(), a.alloc(), a.alloc()]).toEqual([MAX - 2, MAX, 3, 5, 6]);
    expect(a.size).toBe(9);
    // an outstanding cookie freed behind the cursor is not handed out again in this lap
    a.free(2);
    expect(a.alloc()).toBe(7);
  });

  it('the cursor skips cookies in use ahead of it without moving back', () => {
    const a = new CookieAllocator(5, [5, 6, 8]);
    expect([a.alloc(), a.alloc(), a.alloc()]).toEqual([7, 9, 10]);
    a.free(6);
    a.free(8);
    expect(a.alloc()).toBe(11);
  });

  it('rejects a start or an in-use cookie outside [1, 0xffffffff]', () => {
    for (const bad of [0, -1, MAX + 1, 1.5, Number.NaN]) {
      expect(() => new CookieAllocator(bad)).toThrow(RangeError);
      expect(() => new CookieAllocator(1, [3, bad])).toThrow(RangeError);
    }
    expect(new CookieAllocator(MAX).alloc()).toBe(MAX);
  });

  it('property: every allocation is the first cookie not in use after the last one, wrapping at 0xffffffff (random starts, in-use sets, alloc / free sequences)', () => {
    // Cookies near both ends of the range, so the cursor wraps and meets cookies still in use.
    const cookie = fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: MAX - 40, max: MAX }));
    fc.assert(
      fc.property(
        fc.oneof(fc.constant(1), cookie),
        fc.uniqueArray(cookie, { maxLength: 30 }),
        fc.array(fc.oneof(fc.constant(-1), fc.constant(-1), fc.nat(40)), { maxLength: 300 }),
        (start, inUse, ops) => {
          const a = new CookieAllocator(start, inUse);
          // reference model: the cookies in use and the last cookie handed out (start − 1 at first)
          const used = new Set<number>(inUse);
          let last = start - 1;
          const firstFree = (from: number): number | undefined => {
            for (let c = from; c <= MAX; c++) if (!used.has(c)) return c;
            return undefined;
          };
          for (const op of ops) {
            if (op === -1 || used.size === 0) {
              // the first free cookie above the last one; else, wrapping, the first free from 1
              const want = firstFree(last + 1) ?? firstFree(1);
              const got = a.alloc();
              if (got !== want || want === undefined) return false;
              used.add(want);
              last = want;
            } else {
              const victim = [...used][op % used.size]!;
              used.delete(victim);
              a.free(victim);
            }
            if (a.size !== used.size) return false;
          }
          return true;
        },
      ),
      { numRuns: 300, seed: 0x5eed },
    );
  });
});
