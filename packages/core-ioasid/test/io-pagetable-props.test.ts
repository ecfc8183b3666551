/**
 * Property test: random sequences of MAP (fixed and automatic), UNMAP and COPY against a reference
 * model of which IOVA page maps to which user page (and which area it belongs to). Checked after
 * every step through `ioas.iopt.lookup(iova)` (the user VA), and, when a SoftDomain is attached,
 * through the domain (the PA of that user page). Ends with close: nothing stays pinned.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { getIoas } from '../src/ioas.js';
import { IommufdError } from '../src/errors.js';
import { FIXED, openSelf, PAGE_SIZE, RW, teardown } from './fixture.js';
import { SoftDomain } from './soft-domain.js';

const P = PAGE_SIZE;
const BUF_PAGES = 32;

type Op =
  | { kind: 'mapFixed'; page: number; npages: number; iovaPage: number }
  | { kind: 'mapAuto'; page: number; npages: number }
  | { kind: 'unmap'; iovaPage: number; npages: number }
  | { kind: 'copy'; srcPage: number; npages: number; dstIovaPage: number | null };

/** A model area in IOVA pages with the user page of its first IOVA page. */
interface MArea {
  start: number;
  last: number;
  va: number;
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('mapFixed' as const), page: fc.nat(BUF_PAGES - 1), npages: fc.integer({ min: 1, max: 6 }), iovaPage: fc.nat(48) }),
  fc.record({ kind: fc.constant('mapAuto' as const), page: fc.nat(BUF_PAGES - 1), npages: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ kind: fc.constant('unmap' as const), iovaPage: fc.nat(60), npages: fc.integer({ min: 1, max: 12 }) }),
  fc.record({
    kind: fc.constant('copy' as const),
    srcPage: fc.nat(60),
    npages: fc.integer({ min: 1, max: 4 }),
    dstIovaPage: fc.option(fc.nat(48), { nil: null }),
  }),
);

async function errnoOf(p: Promise<unknown>): Promise<string | null> {
  try {
    await p;
    return null;
  } catch (e) {
    if (e instanceof IommufdError) return e.errno;
    throw e;
  }
}

async function runScenario(ops: Op[], withDomain: boolean): Promise<void> {
  const self = openSelf(16 * 1024 * 1024);
  const buf = self.proc.mmap({ length: BUF_PAGES * P });
  self.proc.write(buf, new Uint8Array(BUF_PAGES * P).fill(1));
  const ioasId = (await self.fd.ioasAlloc()).outIoasId;
  const iopt = getIoas(self.fd.ctx, ioasId).iopt;
  const dom = new SoftDomain();
  if (withDomain) await iopt.addDomain(dom);
  let model: MArea[] = [];
  const fits = (uPage: number, n: number) => uPage + n <= BUF_PAGES;

  for (const op of ops) {
    if (op.kind === 'mapFixed' || op.kind === 'mapAuto') {
      if (!fits(op.page, op.npages)) continue;
      const userVa = buf + op.page * P;
      if (op.kind === 'mapFixed') {
        const s = op.iovaPage;
        const l = s + op.npages - 1;
        const clash = model.some((a) => a.start <= l && a.last >= s);
        const err = await errnoOf(self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa, length: op.npages * P, iova: s * P }));
        expect(err).toBe(clash ? 'EEXIST' : null);
        if (!clash) model.push({ start: s, last: l, va: userVa });
      } else {
        const { iova } = await self.fd.ioasMap({ flags: RW, ioasId, userVa, length: op.npages * P });
        expect(iova % BigInt(P)).toBe(0n);
        expect(iova >= BigInt(P)).toBe(true);
        const s = Number(iova) / P;
        const l = s + op.npages - 1;
        expect(model.some((a) => a.start <= l && a.last >= s)).toBe(false);
        model.push({ start: s, last: l, va: userVa });
      }
    } else if (op.kind === 'unmap') {
      const s = op.iovaPage;
      const l = s + op.npages - 1;
      // Kernel order: ascending areas; the first one sticking out stops the unmap (earlier ones stay removed).
      const hit = model.filter((a) => a.start <= l && a.last >= s).sort((a, b) => a.start - b.start);
      let removed = 0;
      let expected: string | null = null;
      for (const a of hit) {
        if (a.start < s || a.last > l) {
          expected = 'ENOENT';
          break;
        }
        model = model.filter((x) => x !== a);
        removed++;
      }
      if (expected === null && removed === 0) expected = 'ENOENT';
      const err = await errnoOf(self.fd.ioasUnmap({ ioasId, iova: s * P, length: op.npages * P }));
      expect(err).toBe(expected);
    } else {
      // COPY within the IOAS: the source must be covered by contiguous areas.
      const s = op.srcPage;
      const l = s + op.npages - 1;
      const pieces: { s: number; l: number; va: number }[] = [];
      let cur = s;
      while (cur <= l) {
        const a = model.find((x) => x.start <= cur && x.last >= cur);
        if (a === undefined) break;
        const e = Math.min(l, a.last);
        pieces.push({ s: cur, l: e, va: a.va + (cur - a.start) * P });
        cur = e + 1;
      }
      const covered = cur > l;
      const dst = op.dstIovaPage;
      let expected: string | null = covered ? null : 'ENOENT';
      if (covered && dst !== null && model.some((a) => a.start <= dst + op.npages - 1 && a.last >= dst)) expected = 'EEXIST';
      let got: bigint | null = null;
      const err = await errnoOf(
        self.fd
          .ioasCopy({ flags: RW | (dst !== null ? FIXED : 0), dstIoasId: ioasId, srcIoasId: ioasId, length: op.npages * P, srcIova: s * P, dstIova: (dst ?? 0) * P })
          .then((r) => {
            got = r.dstIova;
          }),
      );
      expect(err).toBe(expected);
      if (err === null) {
        const base = Number(got!) / P;
        if (dst !== null) expect(base).toBe(dst);
        for (const pc of pieces) model.push({ start: base + (pc.s - s), last: base + (pc.l - s), va: pc.va });
      }
    }

    // Check every modelled page and a few unmapped ones.
    const mapped = new Map<number, number>();
    for (const a of model) for (let p = a.start; p <= a.last; p++) mapped.set(p, a.va + (p - a.start) * P);
    expect(iopt.areas.size).toBe(model.length);
    for (const [page, va] of mapped) {
      const hit = iopt.lookup(BigInt(page * P + 123));
      expect(hit?.address).toBe(BigInt(va + 123));
      if (withDomain) {
        const pa = self.proc.translate(va);
        expect(hit?.pa).toBe(pa + 123);
        expect(dom.iovaToPhys(page * P + 123)).toBe(pa + 123);
      }
    }
    for (let page = 0; page < 64; page++) {
      if (!mapped.has(page)) {
        expect(iopt.lookup(BigInt(page * P))).toBeUndefined();
        if (withDomain) expect(dom.iovaToPhys(page * P)).toBe(-1);
      }
    }
  }
  if (withDomain) {
    await self.fd.ioasUnmap({ ioasId, iova: 0, length: (1n << 64n) - 1n });
    expect(dom.mappedBytes).toBe(0);
    await iopt.removeDomain(dom);
  }
  for (let i = 0; i < BUF_PAGES; i++) if (!withDomain) expect(self.proc.pinCount(buf + i * P)).toBe(0);
  await teardown(self);
}

describe('IOAS map/unmap/copy against a reference model', () => {
  it('no domain: lookups follow the model', async () => {
    await fc.assert(fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), (ops) => runScenario(ops, false)), { numRuns: 120 });
  });
  it('with a domain: lookups and the domain follow the model; pins drop to zero', async () => {
    await fc.assert(fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), (ops) => runScenario(ops, true)), { numRuns: 80 });
  });
});
