import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { PhysMem } from '@iommulab/runtime';
import { FrameTable, Memfd, UserProcess } from '../src/user-memory/index.js';
import { IommufdError } from '../src/errors.js';

const P = 4096;

type Op =
  | { k: 'mmap'; proc: number; pages: number; shared: boolean; file: boolean }
  | { k: 'munmap'; proc: number; map: number; off: number; pages: number }
  | { k: 'write'; proc: number; map: number; off: number; v: number }
  | { k: 'pin'; proc: number; map: number; off: number; pages: number; write: boolean }
  | { k: 'unpin'; which: number }
  | { k: 'fork'; proc: number }
  | { k: 'exit'; proc: number }
  | { k: 'truncate'; pages: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('mmap' as const), proc: fc.nat(3), pages: fc.integer({ min: 2, max: 8 }), shared: fc.boolean(), file: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('munmap' as const), proc: fc.nat(3), map: fc.nat(7), off: fc.nat(4), pages: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('write' as const), proc: fc.nat(3), map: fc.nat(7), off: fc.nat(3), v: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('pin' as const), proc: fc.nat(3), map: fc.nat(7), off: fc.nat(2), pages: fc.integer({ min: 1, max: 4 }), write: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('unpin' as const), which: fc.nat(20) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('fork' as const), proc: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('exit' as const), proc: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('truncate' as const), pages: fc.nat(8) }) },
);

describe('user-memory invariants (random operation sequences)', () => {
  it('pin counts match the outstanding pins, pinned frames stay allocated, nothing leaks', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 10, maxLength: 80 }), (ops) => {
        const mem = PhysMem.create(2 * 1024 * 1024);
        const ft = FrameTable.of(mem);
        const free0 = mem.freeFrameCount;
        const memfd = Memfd.create(mem, 8 * P);
        const procs: UserProcess[] = [UserProcess.create({ mem })];
        const maps = new Map<UserProcess, number[]>([[procs[0], []]]);
        const pins: Float64Array[] = [];
        const outstanding = new Map<number, number>();
        const pick = <T>(a: T[], i: number): T | undefined => (a.length ? a[i % a.length] : undefined);
        const expectErrno = (fn: () => unknown): void => {
          try {
            fn();
          } catch (e) {
            if (!(e instanceof IommufdError)) throw e;
          }
        };
        for (const op of ops) {
          const p = pick(procs, 'proc' in op ? op.proc : 0);
          switch (op.k) {
            case 'mmap':
              if (p?.alive) {
                const a = p.mmap({ length: op.pages * P, shared: op.shared, file: op.file ? memfd : undefined });
                maps.get(p)!.push(a);
              }
              break;
            case 'munmap': {
              const a = p && pick(maps.get(p)!, op.map);
              if (p?.alive && a !== undefined) p.munmap(a + op.off * P, op.pages * P);
              break;
            }
            case 'write': {
              const a = p && pick(maps.get(p)!, op.map);
              if (p && a !== undefined) expectErrno(() => p.write(a + op.off * P, Uint8Array.of(op.v)));
              break;
            }
            case 'pin': {
              const a = p && pick(maps.get(p)!, op.map);
              if (p && a !== undefined) {
                expectErrno(() => {
                  const pas = p.pin(a + op.off * P, op.pages, op.write);
                  pins.push(pas);
                  for (const pa of pas) outstanding.set(pa, (outstanding.get(pa) ?? 0) + 1);
                });
              }
              break;
            }
            case 'unpin': {
              if (pins.length) {
                const i = op.which % pins.length;
                const [pas] = pins.splice(i, 1);
                procs[0].unpin(pas);
                for (const pa of pas) outstanding.set(pa, outstanding.get(pa)! - 1);
              }
              break;
            }
            case 'fork':
              if (p?.alive && procs.length < 4) {
                const c = p.fork();
                procs.push(c);
                maps.set(c, [...maps.get(p)!]);
              }
              break;
            case 'exit':
              p?.exit();
              break;
            case 'truncate':
              memfd.truncate(op.pages * P);
              break;
          }
          for (const [pa, n] of outstanding) {
            expect(ft.pins[pa / P]).toBe(n);
            if (n > 0) expect(mem.isAllocated(pa)).toBe(true);
          }
        }
        for (const pas of pins) procs[0].unpin(pas);
        for (const p of procs) p.exit();
        memfd.close();
        expect(mem.freeFrameCount).toBe(free0);
      }),
      { numRuns: 500 },
    );
  });
});
