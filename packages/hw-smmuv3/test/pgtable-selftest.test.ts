/**
 * Port of Linux io-pgtable-arm's self-test (smmuv3.md §7.6) for every granule × format ×
 * (IAS, OAS ≥ IAS) in {32, 36, 40, 42, 44, 48} (plus 52 with the 64 KiB granule), coherent walks:
 * empty table, one mapping per page size (+ overlap refused), partial unmap of a block and remap
 * (older kernels), full unmap and remap, the last largest page of the IAS (concatenated-PGD corner
 * case), free. The flush callbacks must only see leaf sizes from the page-size set.
 */
import { Prot } from '@iommulab/driver-api';
import { PhysMem } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { IoPgtableArm, type IoPgtableCfg, type IoPgtableFmt, type IoPgtableGranule } from '../src/pgtable/index.js';
import { GiB, MiB, errno } from './pgtable-helpers.js';

const { READ, WRITE, NOEXEC, CACHE } = Prot;
const SIZES = [32, 36, 40, 42, 44, 48];
/** The selftest page-size sets (pgsize_bitmap) per granule. */
const SETS: Record<IoPgtableGranule, number[]> = {
  4096: [4096, 2 * MiB, GiB],
  16384: [16384, 32 * MiB],
  65536: [65536, 512 * MiB],
};

const mem = PhysMem.create(64 * MiB);

function runSelftest(cfg: IoPgtableCfg): void {
  const base = mem.allocatedFrameCount;
  const pt = new IoPgtableArm(mem, cfg);
  const leafSizes = new Set<number>();
  const walkGranules = new Set<number>();
  pt.onTlbFlush = (_iova, size, granule, leaf) => {
    if (leaf) {
      leafSizes.add(granule);
      expect(size % granule).toBe(0);
    } else {
      walkGranules.add(granule);
    }
  };
  const sizes = SETS[cfg.granule];
  for (const s of sizes) expect(pt.pgsizes).toContain(s);

  // 1. Empty page table
  expect(pt.iovaToPhys(42)).toBe(-1);
  expect(pt.iovaToPhys(GiB + 42)).toBe(-1);
  expect(pt.iovaToPhys(2 * GiB + 42)).toBe(-1);

  // 2. One mapping per page size, ascending, 1 GiB apart; an overlapping map fails
  let iova = 0;
  for (const size of sizes) {
    expect(pt.map(iova, iova, size, 1, READ | WRITE | NOEXEC | CACHE)).toBe(size);
    expect(errno(() => pt.map(iova, iova + size, size, 1, READ | NOEXEC))).toBe('EEXIST');
    expect(pt.iovaToPhys(iova + 42)).toBe(iova + 42);
    iova += GiB;
  }

  // 3. Partial unmap of the block at 1 GiB (split), then remap of the hole
  const small = sizes[0];
  expect(pt.unmap(GiB + small, small, 1)).toBe(small);
  expect(pt.iovaToPhys(GiB + small + 42)).toBe(-1);
  expect(pt.iovaToPhys(GiB + 42)).toBe(GiB + 42);
  expect(pt.map(GiB + small, small, small, 1, READ)).toBe(small);
  expect(pt.iovaToPhys(GiB + small + 42)).toBe(small + 42);

  // 4. Full unmap and remap, per page size
  iova = 0;
  for (const size of sizes) {
    expect(pt.unmap(iova, size, 1)).toBe(size);
    expect(pt.iovaToPhys(iova + 42)).toBe(-1);
    expect(pt.map(iova, iova, size, 1, WRITE)).toBe(size);
    expect(pt.iovaToPhys(iova + 42)).toBe(iova + 42);
    iova += GiB;
  }

  // 5. The last largest page of the IAS
  const big = sizes[sizes.length - 1];
  const last = 2 ** cfg.ias - big;
  expect(pt.map(last, last, big, 1, READ | WRITE | NOEXEC | CACHE)).toBe(big);
  expect(pt.iovaToPhys(last + 42)).toBe(last + 42);
  expect(pt.iovaToPhys(2 ** cfg.ias - 1)).toBe(2 ** cfg.ias - 1);
  expect(pt.unmap(last, big, 1)).toBe(big);
  expect(pt.iovaToPhys(last + 42)).toBe(-1);

  // The flush callbacks only saw page sizes of the set (leaves) and the granule (walks).
  for (const s of leafSizes) expect(sizes).toContain(s);
  for (const g of walkGranules) expect(g).toBe(cfg.granule);

  // 6. Free: every frame back
  pt.free();
  expect(mem.allocatedFrameCount).toBe(base);
}

for (const granule of [4096, 16384, 65536] as IoPgtableGranule[]) {
  const addr = granule === 65536 ? [...SIZES, 52] : SIZES;
  for (const fmt of ['s1', 's2'] as IoPgtableFmt[]) {
    describe(`§7.6 io-pgtable selftest, ${granule / 1024}K ${fmt}`, () => {
      for (const ias of addr) {
        for (const oas of addr) {
          if (oas < ias) continue;
          it(`IAS ${ias} OAS ${oas}`, () => runSelftest({ fmt, granule, ias, oas, coherent: true }));
        }
      }
    });
  }
}

describe('§7.6 older selftest variant: OAS 48 with each IAS', () => {
  for (const granule of [4096, 16384, 65536] as IoPgtableGranule[]) {
    for (const fmt of ['s1', 's2'] as IoPgtableFmt[]) {
      it(`${granule / 1024}K ${fmt}`, () => {
        for (const ias of SIZES) runSelftest({ fmt, granule, ias, oas: 48 });
      });
    }
  }
});
