/**
 * Geometry of the LPAE tables (smmuv3.md §7.1 start levels, §7.2 stage-2 concatenation, §7.5
 * TCR/VTCR encodings, §3.3 / §2.3 worked CD and STE values).
 */
import { PhysMem } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { Cd, Ste, dword, packFields } from '../src/codec/index.js';
import { IoPgtableArm, lpaeGeometry, packVtcr, type IoPgtableCfg, type IoPgtableGranule } from '../src/pgtable/index.js';
import { GiB, MiB, TiB, errno } from './pgtable-helpers.js';

const K4 = 4096;
const K16 = 16384;
const K64 = 65536;

describe('§7.1 stage-1 start level and start-table entries (Linux io-pgtable sizing)', () => {
  const rows: [IoPgtableGranule, number, number, number][] = [
    [K4, 48, 0, 512],
    [K4, 44, 0, 32],
    [K4, 40, 0, 2],
    [K4, 39, 1, 512],
    [K4, 32, 1, 4],
    [K16, 48, 0, 2],
    [K16, 47, 1, 2048],
    [K16, 36, 2, 2048],
    [K64, 48, 1, 64],
    [K64, 42, 2, 8192],
  ];
  for (const [granule, ias, start, entries] of rows) {
    it(`${granule / 1024}K IA ${ias}: start level ${start}, ${entries} entries`, () => {
      const g = lpaeGeometry({ fmt: 's1', granule, ias, oas: 48 });
      expect([g.startLevel, g.pgdEntries, g.pgdBytes, g.concatenated, g.levels]).toEqual([start, entries, entries * 8, 1, 4 - start]);
    });
  }

  it('matches the architecture formula start = 4 − ceil((IA − G) / S) for every IA 25..48', () => {
    for (const [granule, G] of [[K4, 12], [K16, 14], [K64, 16]] as const) {
      for (let ias = 25; ias <= 48; ias++) {
        const g = lpaeGeometry({ fmt: 's1', granule, ias, oas: 48 });
        const S = G - 3;
        expect(g.startLevel).toBe(4 - Math.ceil((ias - G) / S));
        // entries = 2^(IA − shift(start)), shift(l) = G + (3 − l)·S
        expect(g.pgdEntries).toBe(2 ** (ias - (G + (3 - g.startLevel) * S)));
      }
    }
  });
});

describe('§7.2 stage-2 start level and concatenated tables', () => {
  const rows: [IoPgtableGranule, number, number, number, number, number][] = [
    // granule, ias, start, concatenated, PGD entries, SL0
    [K4, 32, 1, 1, 4, 1],
    [K4, 36, 1, 1, 64, 1],
    [K4, 39, 1, 1, 512, 1],
    [K4, 40, 1, 2, 1024, 1], // 2 concatenated L1 tables (8 KiB), SL0 = 1
    [K4, 42, 1, 8, 4096, 1], // 8 tables
    [K4, 43, 1, 16, 8192, 1], // 16 tables: the maximum
    [K4, 44, 0, 1, 32, 2], // 32 > 16: stays at level 0
    [K4, 48, 0, 1, 512, 2],
    [K16, 36, 2, 1, 2048, 1],
    [K16, 37, 1, 1, 2, 2], // natural start 1: Linux only concatenates from level 0
    [K16, 47, 1, 1, 2048, 2],
    [K16, 48, 1, 2, 4096, 2], // 2 tables at level 1
    [K64, 32, 2, 1, 8, 1],
    [K64, 42, 2, 1, 8192, 1],
    [K64, 48, 1, 1, 64, 2], // 64K never concatenates
    [K64, 52, 1, 1, 1024, 2],
  ];
  for (const [granule, ias, start, concat, entries, sl0] of rows) {
    it(`${granule / 1024}K IAS ${ias}: level ${start}, ${concat} table(s), SL0 ${sl0}`, () => {
      const oas = ias > 48 ? 52 : 48;
      const g = lpaeGeometry({ fmt: 's2', granule, ias, oas });
      expect([g.startLevel, g.concatenated, g.pgdEntries, g.vtcr.sl0]).toEqual([start, concat, entries, sl0]);
      // SL0 decodes back to the start level: 4K level = 2 − SL0, 16K/64K level = 3 − SL0.
      expect(granule === K4 ? 2 - sl0 : 3 - sl0).toBe(start);
    });
  }

  it('the concatenated PGD is allocated contiguous and aligned to its total size', () => {
    const mem = PhysMem.create(16 * MiB);
    for (const [granule, ias, bytes] of [[K4, 40, 8192], [K4, 42, 32768], [K4, 43, 65536], [K16, 48, 32768]] as const) {
      const pt = new IoPgtableArm(mem, { fmt: 's2', granule, ias, oas: 48 });
      expect(pt.pgdBytes).toBe(bytes);
      expect(pt.pgdPa % bytes).toBe(0);
      expect(pt.frameCount).toBe(bytes / 4096);
      pt.free();
    }
  });

  it('a stage-1 table with the same IA does not concatenate', () => {
    const g = lpaeGeometry({ fmt: 's1', granule: K4, ias: 40, oas: 48 });
    expect([g.startLevel, g.concatenated, g.pgdEntries]).toEqual([0, 1, 2]);
  });
});

describe('page sizes (Linux pgsize bitmaps, §7.1)', () => {
  it('4K {4K, 2M, 1G}, 16K {16K, 32M}, 64K {64K, 512M} (+4T with 52-bit OA)', () => {
    expect(lpaeGeometry({ fmt: 's1', granule: K4, ias: 48, oas: 48 }).pgsizes).toEqual([K4, 2 * MiB, GiB]);
    expect(lpaeGeometry({ fmt: 's1', granule: K16, ias: 48, oas: 48 }).pgsizes).toEqual([K16, 32 * MiB]);
    expect(lpaeGeometry({ fmt: 's1', granule: K64, ias: 48, oas: 48 }).pgsizes).toEqual([K64, 512 * MiB]);
    expect(lpaeGeometry({ fmt: 's1', granule: K64, ias: 48, oas: 52 }).pgsizes).toEqual([K64, 512 * MiB, 4 * TiB]);
    expect(lpaeGeometry({ fmt: 's2', granule: K64, ias: 52, oas: 52 }).pgsizes).toEqual([K64, 512 * MiB, 4 * TiB]);
  });

  it('drops block sizes above the start level', () => {
    // 4K IA 30 starts at level 2: no 1G blocks; 64K IA 42 starts at level 2: no 4T blocks.
    expect(lpaeGeometry({ fmt: 's1', granule: K4, ias: 30, oas: 48 }).pgsizes).toEqual([K4, 2 * MiB]);
    expect(lpaeGeometry({ fmt: 's1', granule: K64, ias: 42, oas: 52 }).pgsizes).toEqual([K64, 512 * MiB]);
  });
});

describe('§7.5 TCR (CD) and VTCR (STE) fields', () => {
  it('stage-1 TCR reproduces the §3.3 worked CD (48-bit IAS, 4K, coherent, OAS 44, ASID 1)', () => {
    const pt = lpaeGeometry({ fmt: 's1', granule: K4, ias: 48, oas: 44, coherent: true });
    expect(pt.tcr).toEqual({ t0sz: 16, tg: 0, ir: 1, or: 1, sh: 3, ips: 4 });
    const t = pt.tcr;
    const cd = packFields(Cd, { T0SZ: t.t0sz, TG0: t.tg, IR0: t.ir, OR0: t.or, SH0: t.sh, IPS: t.ips, EPD1: 1, V: 1, AA64: 1, R: 1, A: 1, ASET: 1, ASID: 1 }, 8);
    expect(dword(cd, 0, 0)).toBe(0x0001e204c0003510n);
  });

  it('stage-2 VTCR reproduces the §2.3 worked STE (VMID 1, IAS 40, 4K, OAS 44, coherent)', () => {
    const mem = PhysMem.create(4 * MiB);
    const pt = new IoPgtableArm(mem, { fmt: 's2', granule: K4, ias: 40, oas: 44 });
    expect(pt.vtcr).toEqual({ t0sz: 24, sl0: 1, ir: 1, or: 1, sh: 3, tg: 0, ps: 4 });
    expect(pt.vtcrValue()).toBe(0x43558);
    const v = pt.vtcr;
    const ste = packFields(Ste, { S2VMID: 1, S2T0SZ: v.t0sz, S2SL0: v.sl0, S2IR0: v.ir, S2OR0: v.or, S2SH0: v.sh, S2TG: v.tg, S2PS: v.ps, S2AA64: 1, S2PTW: 1, S2R: 1 }, 8);
    expect(dword(ste, 0, 2)).toBe(0x044c355800000001n);
    pt.free();
  });

  it('TG encodings 4K 0, 64K 1, 16K 2; IPS for every OAS; non-coherent walks are NC/NC/OSH', () => {
    const ips: [number, number][] = [[32, 0], [36, 1], [40, 2], [42, 3], [44, 4], [48, 5]];
    for (const [oas, enc] of ips) expect(lpaeGeometry({ fmt: 's1', granule: K4, ias: 32, oas }).tcr.ips).toBe(enc);
    expect(lpaeGeometry({ fmt: 's2', granule: K64, ias: 48, oas: 52 }).vtcr.ps).toBe(6);
    expect(lpaeGeometry({ fmt: 's1', granule: K64, ias: 48, oas: 48 }).tcr.tg).toBe(1);
    expect(lpaeGeometry({ fmt: 's1', granule: K16, ias: 48, oas: 48 }).tcr.tg).toBe(2);
    const nc = lpaeGeometry({ fmt: 's2', granule: K16, ias: 36, oas: 40, coherent: false });
    expect(nc.vtcr).toEqual({ t0sz: 28, sl0: 1, ir: 0, or: 0, sh: 2, tg: 2, ps: 2 });
    expect(packVtcr(nc.vtcr)).toBe(28 | (1 << 6) | (2 << 12) | (2 << 14) | (2 << 16));
    expect(lpaeGeometry({ fmt: 's1', granule: K4, ias: 39, oas: 48, coherent: false }).tcr).toEqual({ t0sz: 25, tg: 0, ir: 0, or: 0, sh: 2, ips: 5 });
  });

  it('MAIR is Linux 0xF404FF44', () => {
    const mem = PhysMem.create(MiB);
    const pt = new IoPgtableArm(mem, { fmt: 's1', granule: K4, ias: 48, oas: 48 });
    expect(pt.mair).toBe(0xf404ff44);
    expect(pt.pgdPa % 4096).toBe(0);
    pt.free();
  });
});

describe('configuration errors are EINVAL', () => {
  const bad: [string, IoPgtableCfg][] = [
    ['granule 8K', { fmt: 's1', granule: 8192 as IoPgtableGranule, ias: 48, oas: 48 }],
    ['format', { fmt: 's3' as 's1', granule: K4, ias: 48, oas: 48 }],
    ['ias 24', { fmt: 's1', granule: K4, ias: 24, oas: 48 }],
    ['ias 49 with 4K', { fmt: 's1', granule: K4, ias: 49, oas: 48 }],
    ['ias 52 with 16K', { fmt: 's2', granule: K16, ias: 52, oas: 48 }],
    ['oas 50', { fmt: 's1', granule: K4, ias: 48, oas: 50 }],
    ['oas 52 with 4K (needs LPA2)', { fmt: 's1', granule: K4, ias: 48, oas: 52 }],
    ['ias 40.5', { fmt: 's1', granule: K4, ias: 40.5, oas: 48 }],
  ];
  for (const [what, cfg] of bad) {
    it(what, () => {
      const mem = PhysMem.create(MiB);
      expect(errno(() => new IoPgtableArm(mem, cfg))).toBe('EINVAL');
      expect(mem.allocatedFrameCount).toBe(0);
    });
  }

  it('ENOMEM when the PGD does not fit', () => {
    const mem = PhysMem.create(8192); // one usable frame
    expect(errno(() => new IoPgtableArm(mem, { fmt: 's2', granule: K4, ias: 40, oas: 48 }))).toBe('ENOMEM');
    expect(mem.allocatedFrameCount).toBe(0);
  });
});
