/**
 * Exact descriptor words IoPgtableArm writes (smmuv3.md §7.3 formats, §7.5 the PTE bits Linux
 * io-pgtable-arm writes for each prot), table descriptors `table_PA | 0b11`, and the 64 KiB
 * 52-bit output-address packing (PA[51:48] in bits [15:12], §7.3).
 */
import { Prot } from '@iommulab/driver-api';
import { PhysMem } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { PTE_DBM_HI, PTE_XN_HI } from '../src/codec/index.js';
import { IoPgtableArm, protToPte, type IoPgtableCfg } from '../src/pgtable/index.js';
import { GiB, MiB, TiB, pte, tableAt } from './pgtable-helpers.js';

const { READ: R, WRITE: W, CACHE, NOEXEC, MMIO, PRIV } = Prot;

function make(cfg: IoPgtableCfg) {
  const mem = PhysMem.create(16 * MiB);
  return { mem, pt: new IoPgtableArm(mem, cfg) };
}

/** Maps one leaf and returns its descriptor words. */
function leafWords(cfg: IoPgtableCfg, iova: number, pa: number, size: number, prot: number): [number, number] {
  const { mem, pt } = make(cfg);
  expect(pt.map(iova, pa, size, 1, prot)).toBe(size);
  const l = pt.lookup(iova)!;
  expect(l.size).toBe(size);
  expect(l.pa).toBe(pa);
  expect(pt.iovaToPhys(iova + 42)).toBe(pa + 42);
  const words = pte(mem, l.ptePa);
  expect(words).toEqual([l.lo, l.hi]);
  pt.free();
  return words;
}

const S1: IoPgtableCfg = { fmt: 's1', granule: 4096, ias: 48, oas: 48 };
const S2: IoPgtableCfg = { fmt: 's2', granule: 4096, ias: 48, oas: 48 };
const PA = 0x8_1234_5000; // above 4 GiB: exercises the high word (PA[47:32] = 0x8)

describe('§7.5 stage-1 leaf descriptors', () => {
  it('page R|W|CACHE → PA | 0xF47', () => {
    expect(leafWords(S1, 0x40_0000, PA, 4096, R | W | CACHE)).toEqual([0x1234_5f47, 0x8]);
  });
  it('page READ|CACHE (read-only) → PA | 0xFC7', () => {
    expect(leafWords(S1, 0x40_0000, PA, 4096, R | CACHE)).toEqual([0x1234_5fc7, 0x8]);
  });
  it('2 MiB block R|W|CACHE → PA | 0xF45', () => {
    expect(leafWords(S1, 2 * MiB, 0x8_1240_0000, 2 * MiB, R | W | CACHE)).toEqual([0x1240_0f45, 0x8]);
  });
  it('1 GiB block R|W|CACHE → PA | 0xF45 at level 1', () => {
    const { pt } = make(S1);
    pt.map(GiB, 5 * GiB, GiB, 1, R | W | CACHE);
    const l = pt.lookup(GiB + 123)!;
    expect([l.level, l.lo, l.hi]).toEqual([1, 0x4000_0f45, 1]);
  });
  it('page R|W (no CACHE) → PA | 0xE43 (AttrIndx 0, OSH)', () => {
    expect(leafWords(S1, 0x1000, PA, 4096, R | W)).toEqual([0x1234_5e43, 0x8]);
  });
  it('R|W|PRIV drops AP[1] → PA | 0xF07', () => {
    expect(leafWords(S1, 0x1000, PA, 4096, R | W | CACHE | PRIV)).toEqual([0x1234_5f07, 0x8]);
  });
  it('R|W|MMIO → AttrIndx 2, OSH → PA | 0xE4B', () => {
    expect(leafWords(S1, 0x1000, PA, 4096, R | W | MMIO)).toEqual([0x1234_5e4b, 0x8]);
  });
  it('WRITE only is writable: no AP[2] → PA | 0xE43', () => {
    expect(leafWords(S1, 0x1000, PA, 4096, W)).toEqual([0x1234_5e43, 0x8]);
  });
  it('NOEXEC sets bits 53 and 54', () => {
    expect(leafWords(S1, 0x1000, PA, 4096, R | W | CACHE | NOEXEC)).toEqual([0x1234_5f47, 0x8 | PTE_XN_HI]);
    expect(PTE_XN_HI).toBe(0x0060_0000);
  });
  it('DBM (bit 51) on writable leaves only, with the HD quirk', () => {
    const cfg = { ...S1, dbm: true };
    expect(leafWords(cfg, 0x1000, PA, 4096, R | W | CACHE)).toEqual([0x1234_5f47, 0x8 | PTE_DBM_HI]);
    expect(leafWords(cfg, 0x1000, PA, 4096, R | CACHE)).toEqual([0x1234_5fc7, 0x8]);
    expect(PTE_DBM_HI).toBe(0x0008_0000);
  });
});

describe('§7.5 stage-2 leaf descriptors', () => {
  it('page R|W|CACHE → PA | 0x7FF', () => {
    expect(leafWords(S2, 0x40_0000, PA, 4096, R | W | CACHE)).toEqual([0x1234_57ff, 0x8]);
  });
  it('page R|W → PA | 0x6D7 (MemAttr NC 0x5, OSH)', () => {
    expect(leafWords(S2, 0x40_0000, PA, 4096, R | W)).toEqual([0x1234_56d7, 0x8]);
  });
  it('READ only → S2AP 01 → PA | 0x77F with CACHE', () => {
    expect(leafWords(S2, 0x1000, PA, 4096, R | CACHE)).toEqual([0x1234_577f, 0x8]);
  });
  it('WRITE only → S2AP 10 → PA | 0x7BF with CACHE', () => {
    expect(leafWords(S2, 0x1000, PA, 4096, W | CACHE)).toEqual([0x1234_57bf, 0x8]);
  });
  it('MMIO → MemAttr Device-nGnRE 0x1, OSH → PA | 0x6C7', () => {
    expect(leafWords(S2, 0x1000, PA, 4096, R | W | MMIO)).toEqual([0x1234_56c7, 0x8]);
  });
  it('2 MiB block R|W|CACHE|NOEXEC → PA | 0x7FD, XN', () => {
    expect(leafWords(S2, 4 * MiB, 0x8_1240_0000, 2 * MiB, R | W | CACHE | NOEXEC)).toEqual([0x1240_07fd, 0x8 | PTE_XN_HI]);
  });
  it('DBM on writable stage-2 leaves with dbm', () => {
    expect(leafWords({ ...S2, dbm: true }, 0x1000, PA, 4096, R | W | CACHE)).toEqual([0x1234_57ff, 0x8 | PTE_DBM_HI]);
    expect(leafWords({ ...S2, dbm: true }, 0x1000, PA, 4096, R | CACHE)).toEqual([0x1234_577f, 0x8]);
  });
  it('protToPte gives the attribute halves without type or address', () => {
    expect(protToPte('s1', R | W | CACHE)).toEqual({ lo: 0xf44, hi: 0 });
    expect(protToPte('s2', R | W)).toEqual({ lo: 0x6d4, hi: 0 });
    expect(protToPte('s1', R | W | NOEXEC, true)).toEqual({ lo: 0xe40, hi: PTE_XN_HI | PTE_DBM_HI });
  });
});

describe('§7.3 table descriptors and walk structure', () => {
  it('4K 48-bit: L0 → L1 → L2 → L3 tables, each table_PA | 0b11, granule aligned', () => {
    const { mem, pt } = make(S1);
    const iova = 0x0000_7f12_3456_7000;
    pt.map(iova, 0x1000, 4096, 1, R | W | CACHE);
    let t = pt.pgdPa;
    const idx = [Math.floor(iova / 2 ** 39) % 512, Math.floor(iova / 2 ** 30) % 512, Math.floor(iova / 2 ** 21) % 512];
    for (const i of idx) {
      const [lo, hi] = pte(mem, t + i * 8);
      const next = tableAt(mem, t + i * 8, 4096);
      expect(lo).toBe(next | 3);
      expect(hi).toBe(0);
      expect(next % 4096).toBe(0);
      t = next;
    }
    expect(pte(mem, t + (Math.floor(iova / 4096) % 512) * 8)).toEqual([0x1f47, 0]);
    expect(pt.tableCount).toBe(3);
  });

  it('stage-2 concatenated PGD (4K IAS 40): the IPA bit 39 selects the second table', () => {
    const { mem, pt } = make({ fmt: 's2', granule: 4096, ias: 40, oas: 44 });
    expect([pt.startLevel, pt.concatenated]).toEqual([1, 2]);
    pt.map(2 ** 39 + GiB, 0x4000_0000, GiB, 1, R | W | CACHE); // L1 index 1 of table 1 = entry 513
    expect(pte(mem, pt.pgdPa + 513 * 8)).toEqual([0x4000_07fd, 0]);
    pt.map(0x1000, 0x2000, 4096, 1, R | W);
    expect((mem.read32(pt.pgdPa) & 3)).toBe(3);
    expect(pt.iovaToPhys(2 ** 39 + GiB + 5)).toBe(0x4000_0005);
  });

  it('16K granule: 32 MiB block at level 2 and 16K page at level 3', () => {
    const { mem, pt } = make({ fmt: 's1', granule: 16384, ias: 48, oas: 48 });
    pt.map(32 * MiB, 64 * MiB, 32 * MiB, 1, R | W | CACHE);
    pt.map(0x4000, 0x8000, 16384, 1, R | CACHE);
    expect(pt.lookup(32 * MiB)).toMatchObject({ level: 2, lo: 64 * MiB + 0xf45, hi: 0 });
    expect(pt.lookup(0x4000)).toMatchObject({ level: 3, lo: 0x8fc7, hi: 0 });
    const l3 = pt.lookup(0x4000)!;
    expect(l3.ptePa % 16384).toBe(8); // index 1 of a 16 KiB table
    expect(pte(mem, l3.ptePa)).toEqual([0x8fc7, 0]);
  });

  it('64K granule with 52-bit OA: PA[51:48] in descriptor bits [15:12]', () => {
    const { pt } = make({ fmt: 's1', granule: 65536, ias: 52, oas: 52 });
    const pa = 0x000f_0000_0001_0000; // PA bits [51:48] = 0xF
    pt.map(0x10000, pa, 65536, 1, R | W | CACHE);
    expect(pt.lookup(0x10000)).toMatchObject({ level: 3, lo: 0x1_0000 | 0xf000 | 0xf47, hi: 0, pa });
    expect(pt.iovaToPhys(0x10000 + 0x1234)).toBe(pa + 0x1234);
    // a 4 TiB level-1 block at IOVA 2^51 to PA 2^51 (bit 51 → descriptor bit 15)
    expect(pt.pgsizes).toContain(4 * TiB);
    expect(pt.map(2 ** 51, 2 ** 51, 4 * TiB, 1, R | W | CACHE)).toBe(4 * TiB);
    expect(pt.lookup(2 ** 51 + 7)).toMatchObject({ level: 1, lo: 0x8000 | 0xf45, hi: 0, pa: 2 ** 51, size: 4 * TiB });
    expect(pt.iovaToPhys(2 ** 51 + 4 * TiB - 1)).toBe(2 ** 51 + 4 * TiB - 1);
    // split the 4 TiB block: 512 MiB blocks keep the packed high address bits
    expect(pt.unmap(2 ** 51 + 512 * MiB, 512 * MiB, 1)).toBe(512 * MiB);
    expect(pt.lookup(2 ** 51 + GiB)).toMatchObject({ level: 2, lo: 0x4000_0000 | 0x8000 | 0xf45, hi: 0, pa: 2 ** 51 + GiB });
  });

  it('64K granule, 48-bit OA: PA[47:32] in the high word', () => {
    const { pt } = make({ fmt: 's2', granule: 65536, ias: 48, oas: 48 });
    pt.map(512 * MiB, 0xabcd_2000_0000, 512 * MiB, 1, R | W | CACHE);
    expect(pt.lookup(512 * MiB)).toMatchObject({ level: 2, lo: 0x2000_07fd, hi: 0xabcd });
  });
});
