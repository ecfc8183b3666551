import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { qIdx, qWrap, qEmpty, qFull, qCount, qSpace, qInc, qValid } from '../src/queue-index.js';

describe('queue-index (SMMUv3 PROD/CONS with wrap bit at log2)', () => {
  it('splits index and wrap', () => {
    expect(qIdx(0b1_011, 3)).toBe(3);
    expect(qWrap(0b1_011, 3)).toBe(1);
    expect(qIdx(0b0_111, 3)).toBe(7);
    expect(qWrap(0b0_111, 3)).toBe(0);
    // OVFLG at bit 31 is ignored
    expect(qIdx(0x8000_0005 | 0, 3)).toBe(5);
    expect(qWrap(0x8000_0005 | 0, 3)).toBe(0);
    expect(qWrap(0x8000_000d, 3)).toBe(1);
  });

  it('qInc over the wrap toggles bit log2', () => {
    expect(qInc(7, 3)).toBe(8); // idx 7 wrap 0 -> idx 0 wrap 1
    expect(qIdx(qInc(7, 3), 3)).toBe(0);
    expect(qWrap(qInc(7, 3), 3)).toBe(1);
    expect(qInc(15, 3)).toBe(0); // idx 7 wrap 1 -> idx 0 wrap 0
    expect(qInc(6, 3, 3)).toBe(9); // idx 6 + 3 -> idx 1, wrap 1
    expect(qInc(0, 3, 8)).toBe(8); // a full lap flips only the wrap
    expect(qInc(0, 3, 16)).toBe(0);
    // flags are dropped
    expect(qInc(0x8000_0003 | 0, 3)).toBe(4);
    expect(qInc(0x8000_0003, 3)).toBe(4);
  });

  it('empty = same idx same wrap; full = same idx different wrap', () => {
    expect(qEmpty(5, 5, 3)).toBe(true);
    expect(qFull(5, 5, 3)).toBe(false);
    expect(qEmpty(13, 5, 3)).toBe(false);
    expect(qFull(13, 5, 3)).toBe(true);
    expect(qFull(5, 13, 3)).toBe(true);
    expect(qEmpty(6, 5, 3)).toBe(false);
    expect(qFull(6, 5, 3)).toBe(false);
    expect(qEmpty(0x8000_0005 | 0, 5, 3)).toBe(true); // OVFLG ignored
    expect(qFull(0x8000_000d | 0, 5, 3)).toBe(true);
  });

  it('count and space', () => {
    expect(qCount(0, 0, 2)).toBe(0);
    expect(qSpace(0, 0, 2)).toBe(4);
    expect(qCount(4, 0, 2)).toBe(4); // idx 0 wrap 1 vs idx 0 wrap 0: full
    expect(qSpace(4, 0, 2)).toBe(0);
    expect(qCount(1, 6, 2)).toBe(3); // prod idx1 wrap0, cons idx2 wrap1
    expect(qSpace(1, 6, 2)).toBe(1);
    expect(qCount(0x8000_0001 | 0, 6, 2)).toBe(3);
  });

  it('qValid rejects bits above the wrap bit except bit 31', () => {
    expect(qValid(15, 3)).toBe(true);
    expect(qValid(16, 3)).toBe(false);
    expect(qValid(0x8000_000f | 0, 3)).toBe(true);
    expect(qValid(0x8000_000f, 3)).toBe(true);
    expect(qValid(0x4000_0000, 3)).toBe(false);
    expect(qValid(0x7fff_ffff, 30)).toBe(true);
  });

  it('large queues (log2 = 19 and 30)', () => {
    const n = 1 << 19;
    expect(qInc(n - 1, 19)).toBe(n);
    expect(qFull(n, 0, 19)).toBe(true);
    expect(qCount(n, 0, 19)).toBe(n);
    expect(qInc((1 << 30) - 1, 30)).toBe(1 << 30);
    expect(qInc(0x7fff_ffff, 30)).toBe(0);
    expect(qCount(1 << 30, 0, 30)).toBe(1 << 30);
  });

  it('property: matches a free-running counter model', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(fc.nat(), { maxLength: 50 }), (log2, steps) => {
        const n = 1 << log2;
        let prod = 0;
        let cons = 0;
        let fp = 0; // free-running models
        let fcn = 0;
        for (const s of steps) {
          if (s % 2 === 0) {
            const k = s % (n - (fp - fcn) + 1);
            prod = qInc(prod, log2, k);
            fp += k;
          } else {
            const k = s % (fp - fcn + 1);
            cons = qInc(cons, log2, k);
            fcn += k;
          }
          expect(qCount(prod, cons, log2)).toBe(fp - fcn);
          expect(qSpace(prod, cons, log2)).toBe(n - (fp - fcn));
          expect(qEmpty(prod, cons, log2)).toBe(fp === fcn);
          expect(qFull(prod, cons, log2)).toBe(fp - fcn === n);
          expect(qIdx(prod, log2)).toBe(fp % n);
          expect(qWrap(prod, log2)).toBe(Math.floor(fp / n) % 2);
          expect(qValid(prod, log2)).toBe(true);
        }
      }),
    );
  });
});
