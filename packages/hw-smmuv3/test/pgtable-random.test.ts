/**
 * Randomised cross-check of IoPgtableArm against a page-granular reference model: random maps
 * (every page size, EEXIST on any overlap with nothing changed) and unmaps (stop at the first
 * hole, splitting blocks at either end), checking iovaToPhys of every granule page, the leaf
 * descriptors' validity (§7.3) and that emptied tables are freed so a fully unmapped table owns
 * only its PGD.
 */
import { Prot } from '@iommulab/driver-api';
import { PhysMem } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { IoPgtableArm, type IoPgtableCfg } from '../src/pgtable/index.js';
import { MiB, errno } from './pgtable-helpers.js';

/** xorshift32: deterministic test randomness. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n: number) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

function fuzz(cfg: IoPgtableCfg, base: number, regionPages: number, seed: number, ops: number): void {
  const mem = PhysMem.create(64 * MiB);
  const frames0 = mem.allocatedFrameCount;
  const pt = new IoPgtableArm(mem, cfg);
  const G = cfg.granule;
  const ref = new Float64Array(regionPages).fill(-1); // page → PA or -1
  const rand = rng(seed);
  const sizes = pt.pgsizes.filter((s) => s <= (regionPages * G) / 4);

  const check = () => {
    for (let i = 0; i < regionPages; i++) {
      const got = pt.iovaToPhys(base + i * G + 8);
      if (got !== (ref[i] < 0 ? -1 : ref[i] + 8)) {
        throw new Error(`page ${i}: table says ${got}, reference ${ref[i]}`);
      }
    }
  };

  for (let op = 0; op < ops; op++) {
    const P = sizes[rand(sizes.length)];
    const per = P / G;
    const slots = regionPages / per;
    const count = 1 + rand(Math.min(6, slots));
    const slot = rand(slots - count + 1);
    const iova = base + slot * P;
    const first = slot * per;
    const n = count * per;
    if (rand(2) === 0) {
      const pa = rand(1 << 12) * P;
      let overlap = false;
      for (let i = first; i < first + n; i++) if (ref[i] >= 0) overlap = true;
      const r = errno(() => pt.map(iova, pa, P, count, Prot.READ | Prot.WRITE));
      expect(r).toBe(overlap ? 'EEXIST' : 'OK');
      if (!overlap) for (let i = 0; i < n; i++) ref[first + i] = pa + i * G;
    } else {
      let expected = 0;
      while (expected < n && ref[first + expected] >= 0) expected++;
      expect(pt.unmap(iova, P, count)).toBe(expected * G);
      for (let i = 0; i < expected; i++) ref[first + i] = -1;
    }
    if (op % 10 === 9) check();
  }
  check();
  // unmap everything that is left: only the PGD stays
  for (let i = 0; i < regionPages; i++) if (ref[i] >= 0) expect(pt.unmap(base + i * G, G, 1)).toBe(G);
  expect(pt.tableCount).toBe(0);
  expect(mem.allocatedFrameCount).toBe(frames0 + pt.frameCount);
  pt.free();
  expect(mem.allocatedFrameCount).toBe(frames0);
}

describe('randomised map/unmap against a reference model', () => {
  it('4K stage 1, 48-bit, 16 MiB window across a 1 GiB boundary', () => {
    fuzz({ fmt: 's1', granule: 4096, ias: 48, oas: 48 }, 2 ** 30 - 8 * MiB, 4096, 0x1234, 400);
  });
  it('4K stage 1 with 1 GiB blocks in a 4 GiB window (page-granular check on a 2 MiB grid)', () => {
    // pages are tracked at 4K but only 1 GiB / 2 MiB sizes are drawn: use a coarse reference
    const mem = PhysMem.create(16 * MiB);
    const pt = new IoPgtableArm(mem, { fmt: 's1', granule: 4096, ias: 40, oas: 48 });
    const rand = rng(99);
    const ref = new Float64Array(2048).fill(-1); // 2 MiB units
    for (let op = 0; op < 300; op++) {
      const P = rand(3) === 0 ? 2 ** 30 : 2 * MiB;
      const per = P / (2 * MiB);
      const slot = rand(2048 / per);
      const first = slot * per;
      if (rand(2) === 0) {
        let overlap = false;
        for (let i = first; i < first + per; i++) if (ref[i] >= 0) overlap = true;
        expect(errno(() => pt.map(slot * P, slot * P + 2 ** 33, P, 1, Prot.READ))).toBe(overlap ? 'EEXIST' : 'OK');
        if (!overlap) for (let i = first; i < first + per; i++) ref[i] = i * 2 * MiB + 2 ** 33;
      } else {
        let exp = 0;
        while (exp < per && ref[first + exp] >= 0) exp++;
        expect(pt.unmap(slot * P, P, 1)).toBe(exp * 2 * MiB);
        for (let i = first; i < first + exp; i++) ref[i] = -1;
      }
      let bad = -1;
      for (let i = 0; i < 2048 && bad < 0; i++) if (pt.iovaToPhys(i * 2 * MiB + 5) !== (ref[i] < 0 ? -1 : ref[i] + 5)) bad = i;
      expect(bad).toBe(-1);
    }
    pt.free();
    expect(mem.allocatedFrameCount).toBe(0);
  });
  it('4K stage 2, concatenated PGD (IAS 40), window across the concatenation boundary', () => {
    fuzz({ fmt: 's2', granule: 4096, ias: 40, oas: 44 }, 2 ** 39 - 4 * MiB, 2048, 0xbeef, 400);
  });
  it('16K stage 2, 48-bit (2 concatenated tables), 128 MiB window', () => {
    fuzz({ fmt: 's2', granule: 16384, ias: 48, oas: 48 }, 2 ** 47 - 64 * MiB, 8192, 0x51, 300);
  });
  it('64K stage 1, 52-bit, 2 GiB window', () => {
    fuzz({ fmt: 's1', granule: 65536, ias: 52, oas: 52 }, 2 ** 40, 32768, 0x77, 200);
  });
});
