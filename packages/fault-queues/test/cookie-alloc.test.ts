// Fault-object cookies (vmm-and-faults.md §3.2 step 7, §6.4 "cookies start at 1"; the kernel's
// xa_alloc with XA_FLAGS_ALLOC1 and xa_limit_32b): always the lowest free u32 from 1, never one
// still in use.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CookieAllocator } from '../src/index.js';

describe('CookieAllocator', () => {
  it('hands out 1, 2, 3... and counts what is in use', () => {
    const a = new CookieAllocator();
    expect(a.size).toBe(0);
    expect([a.alloc(), a.alloc(), a.alloc()]).toEqual([1, 2, 3]);
    expect(a.size).toBe(3);
  });

  it('reuses freed cookies lowest first, before new ones', () => {
    const a = new CookieAllocator();
    for (let i = 0; i < 6; i++) a.alloc();
    a.free(5);
    a.free(2);
    a.free(4);
    expect(a.size).toBe(3);
    expect([a.alloc(), a.alloc(), a.alloc(), a.alloc()]).toEqual([2, 4, 5, 7]);
  });

  it('starts again from 1 once everything is free', () => {
    const a = new CookieAllocator();
    a.alloc();
    a.alloc();
    a.free(1);
    a.free(2);
    expect(a.size).toBe(0);
    expect(a.alloc()).toBe(1);
    expect(a.alloc()).toBe(2);
  });

  it('property: every allocation is the lowest cookie not in use (random alloc / free sequences)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant(-1), fc.nat(40)), { maxLength: 300 }), (ops) => {
        const a = new CookieAllocator();
        const used = new Set<number>();
        for (const op of ops) {
          if (op === -1 || used.size === 0) {
            let want = 1;
            while (used.has(want)) want++;
            const got = a.alloc();
            if (got !== want) return false;
            used.add(got);
          } else {
            const victim = [...used][op % used.size]!;
            used.delete(victim);
            a.free(victim);
          }
          if (a.size !== used.size) return false;
        }
        return true;
      }),
      { numRuns: 200, seed: 0x5eed },
    );
  });
});
