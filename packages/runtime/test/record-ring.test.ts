import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { RecordRing } from '../src/record-ring.js';
import { RuntimeError, type RuntimeErrorCode } from '../src/errors.js';
import { qIdx, qWrap } from '../src/queue-index.js';

function expectCode(fn: () => unknown, code: RuntimeErrorCode, msg?: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(RuntimeError);
  expect((err as RuntimeError).code).toBe(code);
  if (msg) expect((err as RuntimeError).message).toMatch(msg);
}

/** Record i of `rw` words: [i, i + 1000, ...]. */
function rec(i: number, rw: number): number[] {
  return Array.from({ length: rw }, (_, w) => i + 1000 * w);
}

describe('RecordRing geometry', () => {
  it('byteLength = 256-byte control block + records', () => {
    expect(RecordRing.byteLength(4, 16)).toBe(256 + 64);
    expect(RecordRing.byteLength(1024, 32)).toBe(256 + 32768);
  });

  it('create exposes its geometry', () => {
    const r = RecordRing.create({ entries: 8, recordBytes: 32 });
    expect(r.entries).toBe(8);
    expect(r.recordBytes).toBe(32);
    expect(r.recordWords).toBe(8);
    expect(r.log2).toBe(3);
    expect(r.handle.byteOffset).toBe(0);
    expect(r.handle.sab.byteLength).toBe(256 + 256);
    expect(r.prod).toBe(0);
    expect(r.cons).toBe(0);
    expect(r.isEmpty()).toBe(true);
    expect(r.space()).toBe(8);
  });

  it('rejects bad sizes with BAD_ARGUMENT naming the value', () => {
    expectCode(() => RecordRing.create({ entries: 3, recordBytes: 16 }), 'BAD_ARGUMENT', /entries 3/);
    expectCode(() => RecordRing.create({ entries: 1, recordBytes: 16 }), 'BAD_ARGUMENT', /entries 1/);
    expectCode(() => RecordRing.create({ entries: 0, recordBytes: 16 }), 'BAD_ARGUMENT');
    expectCode(() => RecordRing.create({ entries: 2 ** 21, recordBytes: 16 }), 'BAD_ARGUMENT', /2097152/);
    expectCode(() => RecordRing.create({ entries: 4, recordBytes: 6 }), 'BAD_ARGUMENT', /recordBytes 6/);
    expectCode(() => RecordRing.create({ entries: 4, recordBytes: 0 }), 'BAD_ARGUMENT', /recordBytes 0/);
    expectCode(() => RecordRing.byteLength(4, 2), 'BAD_ARGUMENT');
    expect(RecordRing.create({ entries: 2, recordBytes: 4 }).entries).toBe(2);
    expect(RecordRing.create({ entries: 2 ** 20, recordBytes: 4 }).log2).toBe(20);
  });

  it('places a ring inside a caller SAB at a 16-aligned offset', () => {
    const sab = new SharedArrayBuffer(4096);
    const a = new RecordRing({ sab, byteOffset: 16, entries: 4, recordBytes: 16 });
    const b = new RecordRing({ sab, byteOffset: 1024, entries: 4, recordBytes: 16 });
    a.pushOrThrow([1, 2, 3, 4]);
    expect(b.isEmpty()).toBe(true);
    expect(a.count()).toBe(1);
    expectCode(() => new RecordRing({ sab, byteOffset: 8, entries: 4, recordBytes: 16 }), 'MISALIGNED', /0x8/);
    expectCode(() => new RecordRing({ sab, byteOffset: 4096 - 256, entries: 4, recordBytes: 16 }), 'OUT_OF_RANGE');
    expectCode(
      () => new RecordRing({ sab: new ArrayBuffer(4096) as unknown as SharedArrayBuffer, byteOffset: 0, entries: 4, recordBytes: 16 }),
      'BAD_ARGUMENT',
    );
  });
});

describe('RecordRing push/pop', () => {
  it('a 4-entry ring accepts exactly 4 records; full = same idx, different wrap', () => {
    const r = RecordRing.create({ entries: 4, recordBytes: 16 });
    for (let i = 0; i < 4; i++) expect(r.tryPush(rec(i, 4))).toBe(true);
    expect(r.tryPush(rec(4, 4))).toBe(false);
    expect(r.isFull()).toBe(true);
    expect(r.count()).toBe(4);
    expect(r.space()).toBe(0);
    expect(qIdx(r.prod, 2)).toBe(qIdx(r.cons, 2));
    expect(qWrap(r.prod, 2)).not.toBe(qWrap(r.cons, 2));
    expect(r.prod).toBe(4);
    expect(r.cons).toBe(0);
    const out = new Uint32Array(4);
    for (let i = 0; i < 4; i++) {
      expect(r.tryPop(out)).toBe(true);
      expect([...out]).toEqual(rec(i, 4));
    }
    expect(r.tryPop(out)).toBe(false);
    expect(r.isEmpty()).toBe(true);
    expect(r.prod).toBe(4);
    expect(r.cons).toBe(4); // idx 0 wrap 1
  });

  it('pushOrThrow on a full ring throws RING_OVERRUN naming the size and leaves the ring unchanged', () => {
    const r = RecordRing.create({ entries: 4, recordBytes: 16 });
    for (let i = 0; i < 4; i++) r.pushOrThrow(rec(i, 4));
    const before = new Uint8Array(r.handle.sab).slice();
    expectCode(() => r.pushOrThrow(rec(99, 4)), 'RING_OVERRUN', /all 4 entries of 16 bytes/);
    expect(new Uint8Array(r.handle.sab)).toEqual(before);
    expect(r.count()).toBe(4);
    const out = new Uint32Array(16);
    expect(r.popBatch(out, 4)).toBe(4);
    expect([...out]).toEqual([...rec(0, 4), ...rec(1, 4), ...rec(2, 4), ...rec(3, 4)]);
  });

  it('tryPush takes an offset; values are stored modulo 2^32', () => {
    const r = RecordRing.create({ entries: 2, recordBytes: 8 });
    expect(r.tryPush([9, 9, 0xffffffff, -1], 2)).toBe(true);
    const out = new Uint32Array(4);
    expect(r.tryPop(out, 2)).toBe(true);
    expect([...out]).toEqual([0, 0, 0xffffffff, 0xffffffff]);
  });

  it('bad arguments throw BAD_ARGUMENT and leave the ring unchanged', () => {
    const r = RecordRing.create({ entries: 4, recordBytes: 16 });
    expectCode(() => r.tryPush([1, 2, 3]), 'BAD_ARGUMENT', /need 4 words/);
    expectCode(() => r.tryPush([1, 2, 3, 4], 1), 'BAD_ARGUMENT');
    expectCode(() => r.pushBatch(new Uint32Array(8), 3), 'BAD_ARGUMENT', /3 records/);
    expectCode(() => r.pushBatch(new Uint32Array(8), 2, 1), 'BAD_ARGUMENT');
    expectCode(() => r.pushBatch(new Uint32Array(8), -1), 'BAD_ARGUMENT');
    expectCode(() => r.pushBatch(new Uint32Array(8), 1.5), 'BAD_ARGUMENT');
    expect(r.isEmpty()).toBe(true);
    r.pushOrThrow([1, 2, 3, 4]);
    expectCode(() => r.tryPop(new Uint32Array(3)), 'BAD_ARGUMENT', /destination has 3/);
    expectCode(() => r.popBatch(new Uint32Array(4), 2), 'BAD_ARGUMENT');
    expect(r.count()).toBe(1);
  });

  it('pushBatch stops when full and returns the count pushed', () => {
    const r = RecordRing.create({ entries: 4, recordBytes: 16 });
    const src = new Uint32Array(6 * 4).map((_, i) => i);
    expect(r.pushBatch(src, 6)).toBe(4);
    expect(r.pushBatch(src, 1)).toBe(0);
    expect(r.pushBatch(src, 0)).toBe(0);
    const out = new Uint32Array(6 * 4);
    expect(r.popBatch(out, 6)).toBe(4);
    expect([...out.subarray(0, 16)]).toEqual([...src.subarray(0, 16)]);
    expect(r.popBatch(out, 6)).toBe(0);
  });

  it('batches split at the wrap come out in order', () => {
    const r = RecordRing.create({ entries: 8, recordBytes: 16 });
    const src = new Uint32Array(64 * 4).map((_, i) => i * 7 + 1);
    expect(r.pushBatch(src, 5)).toBe(5);
    const out = new Uint32Array(64 * 4);
    expect(r.popBatch(out, 5)).toBe(5);
    // prod = cons = 5: the next batch of 6 splits 3 + 3 at the wrap
    expect(r.pushBatch(src, 6, 5)).toBe(6);
    expect(r.prod).toBe(8 + 3); // idx 3, wrap 1
    expect(r.peek(0, 0)).toBe(src[5 * 4]);
    expect(r.peek(5, 3)).toBe(src[10 * 4 + 3]);
    expect(r.popBatch(out, 64)).toBe(6);
    expect([...out.subarray(0, 24)]).toEqual([...src.subarray(20, 44)]);
    expect(r.cons).toBe(11);
    expectCode(() => r.peek(0, 0), 'OUT_OF_RANGE');
  });

  it('32-byte records, many laps', () => {
    const r = RecordRing.create({ entries: 16, recordBytes: 32 });
    const rw = 8;
    const src = new Uint32Array(10 * rw);
    const out = new Uint32Array(10 * rw);
    let next = 0;
    let expectNext = 0;
    for (let lap = 0; lap < 100; lap++) {
      const k = (lap % 10) + 1;
      for (let i = 0; i < k * rw; i++) src[i] = next * rw + i;
      expect(r.pushBatch(src, k)).toBe(k);
      next += k;
      const n = r.popBatch(out, 10);
      expect(n).toBe(k);
      for (let i = 0; i < n * rw; i++) expect(out[i]).toBe(expectNext * rw + i);
      expectNext += n;
    }
  });

  it('two objects on one SAB (producer, consumer) see each other', () => {
    const p = RecordRing.create({ entries: 4, recordBytes: 16 });
    const c = RecordRing.attach(p.handle);
    const out = new Uint32Array(4);
    for (let i = 0; i < 10; i++) {
      p.pushOrThrow(rec(i, 4));
      expect(c.tryPop(out)).toBe(true);
      expect([...out]).toEqual(rec(i, 4));
    }
    for (let i = 0; i < 4; i++) p.pushOrThrow(rec(i, 4));
    expect(p.tryPush(rec(5, 4))).toBe(false);
    expect(c.popBatch(new Uint32Array(16), 2)).toBe(2);
    expect(p.tryPush(rec(5, 4))).toBe(true); // producer refreshes its cached CONS
  });

  it('property: random push/pop batch sizes agree with an array model', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.constantFrom(4, 16, 32),
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 40 })), { maxLength: 60 }),
        (log2, recordBytes, ops) => {
          const entries = 1 << log2;
          const p = RecordRing.create({ entries, recordBytes });
          const c = RecordRing.attach(p.handle);
          const rw = recordBytes / 4;
          const model: number[] = [];
          let seq = 0;
          const buf = new Uint32Array(40 * rw);
          for (const [push, k] of ops) {
            if (push) {
              for (let i = 0; i < k; i++) for (let w = 0; w < rw; w++) buf[i * rw + w] = (seq + i) * 31 + w;
              const n = p.pushBatch(buf, k);
              expect(n).toBe(Math.min(k, entries - model.length));
              for (let i = 0; i < n; i++) model.push(seq + i);
              seq += n;
            } else {
              const n = c.popBatch(buf, k);
              expect(n).toBe(Math.min(k, model.length));
              for (let i = 0; i < n; i++) {
                const want = model.shift()!;
                for (let w = 0; w < rw; w++) expect(buf[i * rw + w]).toBe(want * 31 + w);
              }
            }
            expect(p.count()).toBe(model.length);
            expect(c.isEmpty()).toBe(model.length === 0);
            expect(p.isFull()).toBe(model.length === entries);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('RecordRing waits (same thread)', () => {
  it('waitForData times out on an empty ring and returns ok when data waits', async () => {
    const r = RecordRing.create({ entries: 4, recordBytes: 16 });
    expect(r.waitForData(5)).toBe('timed-out');
    expect(await r.waitForDataAsync(5)).toBe('timed-out');
    r.pushOrThrow(rec(1, 4));
    expect(r.waitForData(5)).toBe('ok');
    expect(await r.waitForDataAsync(5)).toBe('ok');
  });

  it('waitForSpace times out on a full ring; waitForSpaceAsync resolves after a pop', async () => {
    const r = RecordRing.create({ entries: 2, recordBytes: 16 });
    expect(r.waitForSpace(1)).toBe('ok');
    r.pushOrThrow(rec(1, 4));
    r.pushOrThrow(rec(2, 4));
    expect(r.waitForSpace(5)).toBe('timed-out');
    const p = r.waitForSpaceAsync(2000);
    setTimeout(() => r.tryPop(new Uint32Array(4)), 10);
    expect(await p).toBe('ok');
  });

  it('waitForDataAsync resolves when a push lands later', async () => {
    const r = RecordRing.create({ entries: 4, recordBytes: 16 });
    const t0 = performance.now();
    const p = r.waitForDataAsync(5000);
    setTimeout(() => r.pushOrThrow(rec(7, 4)), 20);
    expect(await p).toBe('ok');
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('rejects bad timeouts', () => {
    const r = RecordRing.create({ entries: 4, recordBytes: 16 });
    expectCode(() => r.waitForData(-1), 'BAD_ARGUMENT', /-1/);
    expectCode(() => r.waitForSpace(Number.NaN), 'BAD_ARGUMENT');
  });
});
