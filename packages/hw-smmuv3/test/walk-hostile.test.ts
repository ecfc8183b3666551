/**
 * Hostile tables and contexts (plan rules; smmuv3.md §7.4 step 1): descriptors pointing outside
 * PhysMem (or with address bits ≥ 2^32) are external aborts with the exact FetchAddr, never a
 * wrapped access; self-referencing tables terminate; random garbage never throws or hangs; HTTU
 * retries are bounded.
 */
import { ACCESS_EXEC, ACCESS_READ, ACCESS_WRITE, PhysMem } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { EvtClass, EvtId } from '../src/codec/index.js';
import { HTTU_MAX_RETRIES, newS1Ctx, newS2Ctx, newWalkResult, Walker } from '../src/model/walk/index.js';
import { S1_NORMAL, Tables } from './helpers/tables.js';

const MiB = 1 << 20;

describe('external aborts (F_WALK_EABT)', () => {
  const mem = PhysMem.create(4 * MiB);
  const w = new Walker(mem, { httu: 2 });
  const r = newWalkResult();
  const va = 0x80_4030_3000; // L0 idx 1, L1 idx 1, L2 idx 1, L3 idx 0x103

  it('TTB outside PhysMem, and TTB with bit 32 set (not wrapped to 0)', () => {
    expect(w.s1(va, 0, ACCESS_READ, true, newS1Ctx({ ttb0: 0x40_0000, epd0: false }), null, r)).toBe(false);
    expect(r).toMatchObject({ fault: EvtId.F_WALK_EABT, s2: false, cls: EvtClass.TT, fetchAddr: 0x40_0000 + 8, walkSteps: 1 });
    expect(w.s1(va, 0, ACCESS_READ, true, newS1Ctx({ ttb0: 0x1_0000_1000, epd0: false }), null, r)).toBe(false);
    expect(r).toMatchObject({ fault: EvtId.F_WALK_EABT, fetchAddr: 0x1_0000_1000 + 8 });
  });

  it('a next-level table pointer outside PhysMem aborts at that level', () => {
    const t = new Tables(mem, { ia: 48 });
    t.setRaw(va, 1, 0x0000_3003, 0x1); // level-1 entry → table at 0x1_0000_3000
    expect(w.s1(va, 0, ACCESS_READ, true, newS1Ctx({ ttb0: t.root, epd0: false }), null, r)).toBe(false);
    expect(r).toMatchObject({ fault: EvtId.F_WALK_EABT, fetchAddr: 0x1_0000_3000 + 8, walkSteps: 3 });
  });

  it('stage-2-only: S2TTB outside PhysMem → S2, CLASS IN, IPA, FetchAddr', () => {
    expect(w.s2(0x1234_5000, ACCESS_READ, false, newS2Ctx({ ttb: 0x8000_0000 }), r)).toBe(false);
    expect(r).toMatchObject({ fault: EvtId.F_WALK_EABT, s2: true, cls: EvtClass.IN, ipa: 0x1234_5000, fetchAddr: 0x8000_0000 });
  });
});

describe('termination', () => {
  it('a table whose entries all point back at itself ends at level 3 (as a page)', () => {
    const mem = PhysMem.create(1 * MiB);
    const w = new Walker(mem, { httu: 2 });
    const r = newWalkResult();
    const root = mem.allocFrame();
    for (let i = 0; i < 512; i++) mem.write64Parts(root + 8 * i, root | S1_NORMAL | 0xc0 | 3, 0); // AP RO/RO = S2AP RW
    expect(w.s1(0x1234_5678_9abc, 0, ACCESS_READ, true, newS1Ctx({ ttb0: root, epd0: false }), null, r)).toBe(true);
    expect(r).toMatchObject({ pa: root + 0xabc, walkSteps: 4, level: 3 });
    // Nested: stage 2 is the same self-referencing table (identity for its own page).
    expect(w.s1(0x1234_5678_9abc, 0, ACCESS_READ, true, newS1Ctx({ ttb0: root, epd0: false }), newS2Ctx({ ttb: root }), r)).toBe(true);
    expect(r.walkSteps).toBe(4 + 4 * 4 + 4);
  });

  it('HTTU updates that keep losing the race give up after HTTU_MAX_RETRIES (no hang)', () => {
    const mem = PhysMem.create(1 * MiB);
    // A memory whose Atomics view is a different buffer: every compare-and-swap fails.
    const fake = { u32: mem.u32, i32: new Int32Array(mem.size / 4).fill(-1), size: mem.size } as unknown as PhysMem;
    const w = new Walker(fake, { httu: 2 });
    const r = newWalkResult();
    const t = new Tables(mem, { ia: 48 });
    t.map(0x1000, 0x2000, 3, S1_NORMAL & ~0x400);
    expect(w.s1(0x1000, 0, ACCESS_READ, true, newS1Ctx({ ttb0: t.root, epd0: false, ha: true }), null, r)).toBe(false);
    expect(r.fault).toBe(EvtId.F_ACCESS);
    expect(w.stats.casRetries).toBe(HTTU_MAX_RETRIES + 1);
    expect(r.walkSteps).toBe(4 + HTTU_MAX_RETRIES);
  });

  it('nonsensical contexts (reserved granule, SL0 3, T0SZ 0 or 63) fault without fetching', () => {
    const mem = PhysMem.create(1 * MiB);
    const w = new Walker(mem, { httu: 2 });
    const r = newWalkResult();
    expect(w.s1(0x1000, 0, ACCESS_READ, true, newS1Ctx({ epd0: false, g0: 13 as 12 }), null, r)).toBe(false);
    expect([r.fault, r.walkSteps]).toEqual([EvtId.F_TRANSLATION, 0]);
    expect(w.s1(0x1000, 0, ACCESS_READ, true, newS1Ctx({ epd0: false, t0sz: 63 }), null, r)).toBe(false);
    expect([r.fault, r.walkSteps]).toEqual([EvtId.F_TRANSLATION, 0]);
    expect(w.s1(0x1000, 0, ACCESS_READ, true, newS1Ctx({ epd0: false, t0sz: 0 }), null, r)).toBe(false);
    expect([r.fault, r.walkSteps]).toEqual([EvtId.F_TRANSLATION, 0]);
    expect(w.s2(0x1000, ACCESS_READ, false, newS2Ctx({ sl0: 3 }), r)).toBe(false);
    expect([r.fault, r.s2, r.walkSteps]).toEqual([EvtId.F_TRANSLATION, true, 0]);
    expect(w.s2(0x1000, ACCESS_READ, false, newS2Ctx({ t0sz: 0, sl0: 2 }), r)).toBe(false);
    expect([r.fault, r.walkSteps]).toEqual([EvtId.F_TRANSLATION, 0]);
  });
});

describe('random garbage tables (fuzz)', () => {
  it('never throws, always bounded, only translation-fault ids', () => {
    const mem = PhysMem.create(8 * MiB);
    const w = new Walker(mem, { httu: 2 });
    const r = newWalkResult();
    let seed = 0x1234567;
    const rnd = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return seed >>> 0;
    };
    const frames: number[] = [];
    for (let i = 0; i < 64; i++) frames.push(mem.allocFrames(16, 16)); // 64 KiB each: any granule
    const pick = () => frames[rnd() % frames.length];
    for (const f of frames) {
      for (let i = 0; i < 8192; i++) {
        const k = rnd() % 8;
        // Mostly valid-looking pointers into our frames, some garbage and out-of-range addresses.
        const lo = k < 5 ? (pick() + (rnd() & 0xf000)) | (rnd() & 0xfff) : rnd();
        const hi = k === 6 ? rnd() : k === 7 ? rnd() & 0xff : rnd() & 0xfff00000;
        mem.u32[(f >>> 2) + 2 * i] = lo >>> 0;
        mem.u32[(f >>> 2) + 2 * i + 1] = hi >>> 0;
      }
    }
    const allowed = new Set([0, EvtId.F_WALK_EABT, EvtId.F_TRANSLATION, EvtId.F_ADDR_SIZE, EvtId.F_ACCESS, EvtId.F_PERMISSION]);
    const gs = [12, 14, 16] as const;
    let ok = 0;
    const hist: Record<string, number> = {};
    for (let n = 0; n < 20000; n++) {
      const g = gs[rnd() % 3];
      const s1 = newS1Ctx({
        ttb0: pick(),
        ttb1: pick(),
        t0sz: (rnd() & 3) === 0 ? rnd() % 64 : 16 + (rnd() % 24),
        t1sz: rnd() % 64,
        g0: g,
        g1: gs[rnd() % 3],
        epd0: (rnd() & 7) === 0,
        epd1: (rnd() & 1) === 0,
        tbi0: (rnd() & 1) === 0,
        oaBits: 32 + (rnd() % 21),
        ha: (rnd() & 1) === 0,
        hd: (rnd() & 1) === 0,
        affd: (rnd() & 3) === 0,
        had0: (rnd() & 3) === 0,
        wxn: (rnd() & 3) === 0,
        pan: (rnd() & 3) === 0,
      });
      const s2 = newS2Ctx({
        ttb: pick(),
        t0sz: 16 + (rnd() % 24),
        sl0: rnd() % 4,
        g: gs[rnd() % 3],
        oaBits: 32 + (rnd() % 21),
        ha: (rnd() & 1) === 0,
        hd: (rnd() & 1) === 0,
        affd: (rnd() & 3) === 0,
        ptw: (rnd() & 1) === 0,
      });
      const access = [ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC, ACCESS_READ | ACCESS_WRITE][rnd() % 4];
      const va = (rnd() % 2 ** (rnd() % 17)) * 2 ** 32 + rnd();
      const kind = rnd() % 3;
      const res =
        kind === 0
          ? w.s1(va, (rnd() & 1) === 0 ? 0 : rnd(), access, (rnd() & 1) === 0, s1, null, r)
          : kind === 1
            ? w.s1(va, 0, access, true, s1, s2, r)
            : w.s2(va, access, false, s2, r);
      const hk = `${kind}:${r.fault}:${r.walkSteps}`;
      hist[hk] = (hist[hk] ?? 0) + 1;
      expect(allowed.has(r.fault)).toBe(true);
      expect(res).toBe(r.fault === 0);
      expect(r.walkSteps).toBeLessThanOrEqual(4 * 4 + 4 + 4 + (HTTU_MAX_RETRIES + 1) * 9);
      if (res) {
        ok++;
        expect(Number.isInteger(r.pa) && r.pa >= 0).toBe(true);
        expect(r.sizeLog2).toBeGreaterThanOrEqual(12);
      } else if (r.fault === EvtId.F_WALK_EABT) {
        expect(r.fetchAddr + 8 > mem.size).toBe(true);
      }
    }
    // Deep walks happen: some succeed, some fault at level 3.
    expect(Object.keys(hist).some((k) => k.endsWith(':4'))).toBe(true);
    expect(ok).toBeGreaterThan(0);
  });
});
