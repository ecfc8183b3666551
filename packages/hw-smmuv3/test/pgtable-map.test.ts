/**
 * map / unmap semantics of IoPgtableArm (Linux io-pgtable-arm `map_pages` / `unmap_pages` as the
 * iommu core uses them; descriptors per smmuv3.md §7.3, §7.5): validation (EINVAL), overlap
 * (EEXIST, nothing changed), ENOMEM (nothing changed), block use, block split on partial unmap
 * (older Linux `arm_lpae_split_blk_unmap`), stop at a hole, gather / flush reporting, table
 * frames freed when empty and by free().
 */
import { IotlbGather, Prot } from '@iommulab/driver-api';
import { PhysMem } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { IoPgtableArm, type IoPgtableCfg } from '../src/pgtable/index.js';
import { GiB, MiB, errno, snapshot } from './pgtable-helpers.js';

const RW = Prot.READ | Prot.WRITE | Prot.CACHE;
const S1: IoPgtableCfg = { fmt: 's1', granule: 4096, ias: 48, oas: 48 };

function make(cfg: IoPgtableCfg = S1, bytes = 32 * MiB) {
  const mem = PhysMem.create(bytes);
  const base = mem.allocatedFrameCount;
  const pt = new IoPgtableArm(mem, cfg);
  const flushes: [number, number, number, boolean][] = [];
  pt.onTlbFlush = (iova, size, granule, leaf) => flushes.push([iova, size, granule, leaf]);
  return { mem, pt, base, flushes };
}

describe('map validation (EINVAL, nothing changed)', () => {
  it('rejects bad page sizes, misalignment, ranges beyond ias/oas and bad counts', () => {
    const { mem, pt } = make({ fmt: 's1', granule: 4096, ias: 39, oas: 40 });
    const before = snapshot(mem);
    expect(errno(() => pt.map(0, 0, 8192, 1, RW))).toBe('EINVAL'); // not a page size
    expect(errno(() => pt.map(0, 0, 512 * GiB, 1, RW))).toBe('EINVAL');
    expect(errno(() => pt.map(0x800, 0, 4096, 1, RW))).toBe('EINVAL'); // iova misaligned
    expect(errno(() => pt.map(0, 0x800, 4096, 1, RW))).toBe('EINVAL'); // pa misaligned
    expect(errno(() => pt.map(MiB, 0, 2 * MiB, 1, RW))).toBe('EINVAL'); // iova not block aligned
    expect(errno(() => pt.map(2 ** 39 - 4096, 0, 4096, 2, RW))).toBe('EINVAL'); // beyond ias
    expect(errno(() => pt.map(0, 2 ** 40, 4096, 1, RW))).toBe('EINVAL'); // beyond oas
    expect(errno(() => pt.map(-4096, 0, 4096, 1, RW))).toBe('EINVAL');
    expect(errno(() => pt.map(0, 0, 4096, -1, RW))).toBe('EINVAL');
    expect(errno(() => pt.map(0, 0, 4096, 1.5, RW))).toBe('EINVAL');
    expect(errno(() => pt.unmap(0x800, 4096, 1))).toBe('EINVAL');
    expect(errno(() => pt.unmap(0, 12288, 1))).toBe('EINVAL');
    expect(errno(() => pt.unmap(2 ** 39, 4096, 1))).toBe('EINVAL');
    expect(snapshot(mem)).toEqual(before);
  });

  it('prot without READ or WRITE maps nothing and returns 0 (Linux); count 0 returns 0', () => {
    const { pt } = make();
    expect(pt.map(0x1000, 0x1000, 4096, 4, Prot.CACHE | Prot.NOEXEC)).toBe(0);
    expect(pt.map(0x1000, 0x1000, 4096, 0, RW)).toBe(0);
    expect(pt.iovaToPhys(0x1000)).toBe(-1);
    expect(pt.tableCount).toBe(0);
    expect(pt.unmap(0x1000, 4096, 0)).toBe(0);
  });
});

describe('EEXIST: any existing mapping in the range, nothing changed', () => {
  it('pages overlapping pages at the end of the range', () => {
    const { mem, pt } = make();
    expect(pt.map(0x10_0000, 0x50_0000, 4096, 10, RW)).toBe(40960);
    const before = snapshot(mem);
    const frames = mem.allocatedFrameCount;
    // [0x10_5000, 0x11_4000) overlaps pages 5..9 of the first mapping only at its start
    expect(errno(() => pt.map(0x10_5000, 0x90_0000, 4096, 16, RW))).toBe('EEXIST');
    // a range whose only conflict is its last page, in another level-3 table
    pt.map(0x40_0000, 0x1000, 4096, 1, RW);
    const before2 = snapshot(mem);
    const frames2 = mem.allocatedFrameCount;
    expect(errno(() => pt.map(0x20_0000 - 0x3000, 0x90_0000, 4096, 0x204, RW))).toBe('EEXIST');
    expect(snapshot(mem)).toEqual(before2);
    expect(mem.allocatedFrameCount).toBe(frames2);
    expect(pt.iovaToPhys(0x10_a000)).toBe(-1);
    expect(pt.iovaToPhys(0x20_0000)).toBe(-1);
    expect(before.size).toBe(frames);
  });

  it('a block over a table with pages, and pages inside a block', () => {
    const { mem, pt } = make();
    pt.map(0x20_1000, 0x1000, 4096, 1, RW);
    pt.map(0x40_0000, 0x40_0000, 2 * MiB, 1, RW);
    const before = snapshot(mem);
    expect(errno(() => pt.map(0x20_0000, 0x20_0000, 2 * MiB, 1, RW))).toBe('EEXIST');
    expect(errno(() => pt.map(0x40_0000 + 0x5000, 0x1000, 4096, 1, RW))).toBe('EEXIST');
    expect(errno(() => pt.map(0, 0, 2 * MiB, 4, RW))).toBe('EEXIST');
    expect(errno(() => pt.map(0, 0, GiB, 1, RW))).toBe('EEXIST');
    expect(snapshot(mem)).toEqual(before);
    expect(pt.iovaToPhys(0)).toBe(-1);
  });
});

describe('ENOMEM: nothing changed', () => {
  it('a map needing more table frames than are free', () => {
    const { mem, pt } = make(S1, 64 * 1024); // 15 usable frames
    pt.map(0, 0, 4096, 1, RW); // L1, L2, L3 tables: 4 frames with the PGD
    const hog: number[] = [];
    while (mem.freeFrameCount > 2) hog.push(mem.allocFrame());
    const before = snapshot(mem);
    const frames = mem.allocatedFrameCount;
    // needs a new L1 table (other 512 GiB), L2 and L3: 3 frames, only 2 free
    expect(errno(() => pt.map(512 * GiB, 0, 4096, 1, RW))).toBe('ENOMEM');
    expect(mem.allocatedFrameCount).toBe(frames);
    expect(snapshot(mem)).toEqual(before);
    // a block needs only L1 + L2: fits
    expect(pt.map(512 * GiB, 0, 2 * MiB, 1, RW)).toBe(2 * MiB);
    expect(mem.freeFrameCount).toBe(0);
    // a split needs a frame: ENOMEM, nothing changed
    const before2 = snapshot(mem);
    expect(errno(() => pt.unmap(512 * GiB + 4096, 4096, 1))).toBe('ENOMEM');
    expect(snapshot(mem)).toEqual(before2);
    expect(pt.iovaToPhys(512 * GiB + 4096)).toBe(4096);
    for (const f of hog) mem.freeFrames(f);
  });
});

describe('blocks and table runs', () => {
  it('pgsize = block size writes block descriptors (no level-3 table)', () => {
    const { pt } = make();
    expect(pt.map(GiB, 4 * GiB, 2 * MiB, 3, RW)).toBe(6 * MiB);
    expect(pt.tableCount).toBe(2); // L1 + L2
    for (let k = 0; k < 3; k++) expect(pt.lookup(GiB + k * 2 * MiB + 5)).toMatchObject({ level: 2, size: 2 * MiB, pa: 4 * GiB + k * 2 * MiB });
    expect(pt.map(2 * GiB, 2 * GiB, GiB, 2, RW)).toBe(2 * GiB);
    expect(pt.lookup(3 * GiB)).toMatchObject({ level: 1, size: GiB, pa: 3 * GiB });
    expect(pt.tableCount).toBe(2);
  });

  it('pages crossing table boundaries at every level', () => {
    const { pt } = make();
    const iova = 512 * GiB - 8 * 4096; // last 8 pages of L0 entry 0, then L0 entry 1
    expect(pt.map(iova, 0x100_0000, 4096, 16, RW)).toBe(65536);
    expect(pt.tableCount).toBe(6); // 2 × (L1, L2, L3)
    for (let k = 0; k < 16; k++) expect(pt.iovaToPhys(iova + k * 4096 + 1)).toBe(0x100_0000 + k * 4096 + 1);
    expect(pt.iovaToPhys(iova - 4096)).toBe(-1);
    expect(pt.iovaToPhys(iova + 16 * 4096)).toBe(-1);
  });
});

describe('unmap', () => {
  it('returns the bytes unmapped and stops at the first hole; a hole at iova gives 0', () => {
    const { pt } = make();
    pt.map(0x10_0000, 0x10_0000, 4096, 8, RW);
    pt.map(0x10_9000, 0x10_9000, 4096, 4, RW); // hole at 0x10_8000
    const g = new IotlbGather();
    expect(pt.unmap(0x10_0000, 4096, 16, g)).toBe(8 * 4096);
    expect([g.start, g.end, g.pageSize]).toEqual([0x10_0000, 0x10_7fff, 4096]);
    expect(pt.unmap(0x10_8000, 4096, 5, g)).toBe(0);
    expect(pt.iovaToPhys(0x10_9000)).toBe(0x10_9000);
    expect(pt.unmap(0x10_9000, 4096, 4)).toBe(4 * 4096);
  });

  it('leaves smaller than pgsize are removed one by one; the emptied table is freed', () => {
    const { mem, pt, base, flushes } = make();
    pt.map(2 * MiB, 0x40_0000, 4096, 512, RW);
    expect(pt.tableCount).toBe(3);
    const g = new IotlbGather();
    expect(pt.unmap(2 * MiB, 2 * MiB, 1, g)).toBe(2 * MiB);
    expect([g.start, g.end, g.pageSize]).toEqual([2 * MiB, 4 * MiB - 1, 4096]);
    // L3, L2 and L1 tables all emptied: freed after a walk flush of the range they covered
    expect(flushes).toEqual([
      [2 * MiB, 2 * MiB, 4096, false],
      [0, GiB, 4096, false],
      [0, 512 * GiB, 4096, false],
    ]);
    expect(pt.tableCount).toBe(0);
    expect(mem.allocatedFrameCount).toBe(base + 1);
  });

  it('a 2 MiB-pgsize unmap over pages with a hole stops at the hole', () => {
    const { pt } = make();
    pt.map(2 * MiB, 0x40_0000, 4096, 100, RW);
    pt.map(2 * MiB + 101 * 4096, 0x80_0000, 4096, 10, RW);
    expect(pt.unmap(2 * MiB, 2 * MiB, 1)).toBe(100 * 4096);
    expect(pt.iovaToPhys(2 * MiB + 101 * 4096)).toBe(0x80_0000);
  });

  it('without a gather, removed leaves go to onTlbFlush(leaf = true)', () => {
    const { pt, flushes } = make();
    pt.map(0x1000, 0x1000, 4096, 2, RW);
    pt.map(0x3000, 0x3000, 4096, 1, RW);
    expect(pt.unmap(0x2000, 4096, 1)).toBe(4096);
    expect(flushes).toEqual([[0x2000, 4096, 4096, true]]);
  });
});

describe('partial unmap of a block splits it (older Linux arm_lpae_split_blk_unmap)', () => {
  it('2 MiB block, unmap one 4 KiB page: a level-3 table holds the other 511 with the block attributes', () => {
    const { mem, pt } = make();
    pt.map(GiB, 0x8_0000_0000 + 2 * MiB, 2 * MiB, 1, RW | Prot.NOEXEC);
    const frames = mem.allocatedFrameCount;
    const g = new IotlbGather();
    expect(pt.unmap(GiB + 0x2000, 4096, 1, g)).toBe(4096);
    expect(mem.allocatedFrameCount).toBe(frames + 1);
    // the stale TLB entry is the whole block: the gather covers it with the block size
    expect([g.start, g.end, g.pageSize]).toEqual([GiB, GiB + 2 * MiB - 1, 2 * MiB]);
    expect(pt.iovaToPhys(GiB + 0x2000)).toBe(-1);
    for (const off of [0, 0x1000, 0x3000, 2 * MiB - 4096]) {
      expect(pt.lookup(GiB + off)).toMatchObject({ level: 3, size: 4096, lo: (2 * MiB + off) | 0xf47, hi: 0x8 | 0x0060_0000 });
    }
    // the page can be mapped again (selftest scenario 3)
    expect(pt.map(GiB + 0x2000, 0x2000, 4096, 1, Prot.READ)).toBe(4096);
    expect(pt.iovaToPhys(GiB + 0x2000 + 42)).toBe(0x2000 + 42);
  });

  it('1 GiB block, unmap a page in the middle: split chain L1 → L2 blocks → L3 pages', () => {
    const { mem, pt } = make();
    pt.map(GiB, GiB, GiB, 1, RW);
    const frames = mem.allocatedFrameCount;
    const off = 300 * MiB + 0x5000;
    expect(pt.unmap(GiB + off, 4096, 1)).toBe(4096);
    expect(mem.allocatedFrameCount).toBe(frames + 2);
    expect(pt.lookup(GiB)).toMatchObject({ level: 2, size: 2 * MiB, lo: GiB | 0xf45 });
    expect(pt.lookup(GiB + off + 4096)).toMatchObject({ level: 3, lo: (GiB + off + 4096) | 0xf47 });
    expect(pt.iovaToPhys(GiB + off)).toBe(-1);
    expect(pt.iovaToPhys(GiB + GiB - 1)).toBe(2 * GiB - 1);
  });

  it('an unmap straddling two blocks splits both ends', () => {
    const { mem, pt } = make();
    pt.map(0, 0, 2 * MiB, 2, RW);
    const frames = mem.allocatedFrameCount;
    expect(pt.unmap(2 * MiB - 0x2000, 4096, 4)).toBe(0x4000);
    expect(mem.allocatedFrameCount).toBe(frames + 2);
    for (const a of [2 * MiB - 0x2000, 2 * MiB - 0x1000, 2 * MiB, 2 * MiB + 0x1000]) expect(pt.iovaToPhys(a)).toBe(-1);
    expect(pt.iovaToPhys(2 * MiB - 0x2001)).toBe(2 * MiB - 0x2001);
    expect(pt.iovaToPhys(2 * MiB + 0x2000)).toBe(2 * MiB + 0x2000);
  });

  it('an unmap covering a whole block removes it without a split', () => {
    const { mem, pt } = make();
    pt.map(2 * MiB, 2 * MiB, 2 * MiB, 1, RW);
    pt.map(4 * MiB, 4 * MiB, 4096, 1, RW); // keeps the L2 table alive
    const frames = mem.allocatedFrameCount;
    expect(pt.unmap(2 * MiB, 4096, 512)).toBe(2 * MiB);
    expect(mem.allocatedFrameCount).toBe(frames);
    expect(pt.iovaToPhys(2 * MiB)).toBe(-1);
  });

  it('splitting everything away then unmapping the rest frees all tables', () => {
    const { mem, pt, base } = make();
    pt.map(2 * MiB, 2 * MiB, 2 * MiB, 1, RW);
    expect(pt.unmap(2 * MiB + 4096, 4096, 1)).toBe(4096);
    expect(pt.unmap(2 * MiB, 4096, 1)).toBe(4096);
    expect(pt.unmap(2 * MiB + 0x2000, 4096, 510)).toBe(510 * 4096);
    expect(pt.tableCount).toBe(0);
    expect(mem.allocatedFrameCount).toBe(base + 1);
  });
});

describe('free()', () => {
  it('releases every frame (PGD, concatenated PGD and all tables) and disables the table', () => {
    for (const cfg of [S1, { fmt: 's2', granule: 4096, ias: 42, oas: 48 }, { fmt: 's2', granule: 16384, ias: 48, oas: 48 }, { fmt: 's1', granule: 65536, ias: 48, oas: 48 }] as IoPgtableCfg[]) {
      const { mem, pt, base } = make(cfg, 64 * MiB);
      for (let k = 0; k < 20; k++) pt.map(k * 3 * GiB + k * 0x10_0000 * cfg.granule / 4096, 0, cfg.granule, 3, RW);
      pt.map(40 * GiB, 0, pt.pgsizes[1], 2, RW);
      pt.unmap(40 * GiB + cfg.granule, cfg.granule, 1); // a split
      expect(pt.frameCount).toBe(mem.allocatedFrameCount - base);
      pt.free();
      expect(mem.allocatedFrameCount).toBe(base);
      expect(pt.frameCount).toBe(0);
      expect(errno(() => pt.map(0, 0, cfg.granule, 1, RW))).toBe('ENODEV');
      expect(errno(() => pt.unmap(0, cfg.granule, 1))).toBe('ENODEV');
      expect(pt.iovaToPhys(0)).toBe(-1);
      pt.free(); // idempotent
    }
  });
});
