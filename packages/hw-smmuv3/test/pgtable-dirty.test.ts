/**
 * readAndClearDirty (Linux `arm_lpae_read_and_clear_dirty` with the HTTU HD quirk, smmuv3.md §7.3
 * DBM bit 51, §7.4 hardware dirty update): stage 1 dirty = DBM && !AP[2], cleaned by setting AP[2];
 * stage 2 dirty = DBM && S2AP.W, cleaned by clearing S2AP.W. Whole leaves are reported.
 */
import { Prot } from '@iommulab/driver-api';
import { PhysMem } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { PTE_AP_RDONLY, PTE_DBM_HI, PTE_S2AP_WRITE } from '../src/codec/index.js';
import { IoPgtableArm, type IoPgtableCfg } from '../src/pgtable/index.js';
import { GiB, MiB, errno, pte } from './pgtable-helpers.js';

const RW = Prot.READ | Prot.WRITE | Prot.CACHE;

function make(cfg: IoPgtableCfg) {
  const mem = PhysMem.create(16 * MiB);
  return { mem, pt: new IoPgtableArm(mem, cfg) };
}

function read(pt: IoPgtableArm, iova: number, size: number, noClear: boolean): { runs: [number, number][]; cleared: number } {
  const runs: [number, number][] = [];
  const cleared = pt.readAndClearDirty(iova, size, noClear, (a, l) => runs.push([a, l]));
  return { runs, cleared };
}

/** What the SMMU does on a write to a writable-clean DBM leaf (HTTU, §7.4). */
function hwWrite(mem: PhysMem, pt: IoPgtableArm, iova: number): void {
  const l = pt.lookup(iova)!;
  if (pt.fmt === 's1') Atomics.and(mem.i32, l.ptePa >>> 2, ~PTE_AP_RDONLY);
  else Atomics.or(mem.i32, l.ptePa >>> 2, PTE_S2AP_WRITE);
}

describe('stage-1 dirty tracking (DBM && !AP[2])', () => {
  it('writable leaves start dirty; clearing sets AP[2] and keeps DBM; a hardware write makes them dirty again', () => {
    const { mem, pt } = make({ fmt: 's1', granule: 4096, ias: 48, oas: 48, dbm: true });
    pt.map(0x10_0000, 0x10_0000, 4096, 4, RW);
    pt.map(0x10_4000, 0x20_0000, 4096, 1, Prot.READ | Prot.CACHE); // read-only: no DBM, never dirty
    pt.map(2 * MiB, 4 * MiB, 2 * MiB, 1, RW); // a block
    expect(pte(mem, pt.lookup(0x10_0000)!.ptePa)).toEqual([0x10_0f47, PTE_DBM_HI]);

    // noClear reports and leaves the descriptors alone
    expect(read(pt, 0, 8 * MiB, true)).toEqual({
      runs: [[0x10_0000, 4096], [0x10_1000, 4096], [0x10_2000, 4096], [0x10_3000, 4096], [2 * MiB, 2 * MiB]],
      cleared: 0,
    });
    expect(pte(mem, pt.lookup(0x10_0000)!.ptePa)).toEqual([0x10_0f47, PTE_DBM_HI]);

    // clear: AP[2] set (writable-clean), DBM kept
    expect(read(pt, 0, 8 * MiB, false).cleared).toBe(5);
    expect(pte(mem, pt.lookup(0x10_0000)!.ptePa)).toEqual([0x10_0fc7, PTE_DBM_HI]);
    expect(pte(mem, pt.lookup(2 * MiB)!.ptePa)).toEqual([4 * MiB + 0xfc5, PTE_DBM_HI]);
    expect(pte(mem, pt.lookup(0x10_4000)!.ptePa)).toEqual([0x20_0fc7, 0]);
    expect(read(pt, 0, 8 * MiB, false)).toEqual({ runs: [], cleared: 0 });

    hwWrite(mem, pt, 0x10_2000);
    hwWrite(mem, pt, 2 * MiB + 0x5000);
    expect(read(pt, 0, 8 * MiB, false).runs).toEqual([[0x10_2000, 4096], [2 * MiB, 2 * MiB]]);
  });

  it('a range covering part of a block reports the whole block; holes and ranges beyond the mappings are skipped', () => {
    const { pt } = make({ fmt: 's1', granule: 4096, ias: 39, oas: 48, dbm: true });
    pt.map(GiB, GiB, 2 * MiB, 1, RW);
    pt.map(100 * GiB, 0, 4096, 1, RW);
    expect(read(pt, GiB + 0x3000, 4096, true).runs).toEqual([[GiB, 2 * MiB]]);
    expect(read(pt, 0, 2 ** 39, true).runs).toEqual([[GiB, 2 * MiB], [100 * GiB, 4096]]);
  });

  it('without the HD quirk nothing is dirty', () => {
    const { pt } = make({ fmt: 's1', granule: 16384, ias: 48, oas: 48 });
    pt.map(0, 0, 16384, 8, RW);
    expect(read(pt, 0, 2 * MiB, false)).toEqual({ runs: [], cleared: 0 });
  });

  it('after a split the pages inherit the dirty state of the block', () => {
    const { mem, pt } = make({ fmt: 's1', granule: 4096, ias: 48, oas: 48, dbm: true });
    pt.map(2 * MiB, 2 * MiB, 2 * MiB, 1, RW);
    read(pt, 2 * MiB, 2 * MiB, false); // clean
    expect(pt.unmap(2 * MiB, 4096, 1)).toBe(4096);
    expect(pte(mem, pt.lookup(2 * MiB + 4096)!.ptePa)).toEqual([(2 * MiB + 4096) | 0xfc7, PTE_DBM_HI]);
    hwWrite(mem, pt, 2 * MiB + 0x3000);
    expect(read(pt, 2 * MiB, 2 * MiB, true).runs).toEqual([[2 * MiB + 0x3000, 4096]]);
  });
});

describe('stage-2 dirty tracking (DBM && S2AP.W)', () => {
  it('clearing clears S2AP.W; a hardware write sets it again', () => {
    const { mem, pt } = make({ fmt: 's2', granule: 4096, ias: 40, oas: 44, dbm: true });
    pt.map(0x1000, 0x1000, 4096, 2, RW);
    pt.map(0x3000, 0x3000, 4096, 1, Prot.READ | Prot.CACHE);
    expect(pte(mem, pt.lookup(0x1000)!.ptePa)).toEqual([0x17ff, PTE_DBM_HI]);
    expect(read(pt, 0, 2 * MiB, false)).toEqual({ runs: [[0x1000, 4096], [0x2000, 4096]], cleared: 2 });
    expect(pte(mem, pt.lookup(0x1000)!.ptePa)).toEqual([0x177f, PTE_DBM_HI]);
    expect(pte(mem, pt.lookup(0x3000)!.ptePa)).toEqual([0x377f, 0]);
    expect(read(pt, 0, 2 * MiB, false).runs).toEqual([]);
    hwWrite(mem, pt, 0x2000);
    expect(read(pt, 0, 2 * MiB, true).runs).toEqual([[0x2000, 4096]]);
  });

  it('64K granule blocks', () => {
    const { pt } = make({ fmt: 's2', granule: 65536, ias: 42, oas: 48, dbm: true });
    pt.map(512 * MiB, 0, 512 * MiB, 2, RW);
    expect(read(pt, 0, 4 * GiB, false).runs).toEqual([[512 * MiB, 512 * MiB], [GiB, 512 * MiB]]);
  });
});

describe('readAndClearDirty validation', () => {
  it('EINVAL for an empty range or one beyond the IAS; ENODEV after free', () => {
    const { pt } = make({ fmt: 's1', granule: 4096, ias: 32, oas: 48, dbm: true });
    const rec = () => undefined;
    expect(errno(() => pt.readAndClearDirty(0, 0, false, rec))).toBe('EINVAL');
    expect(errno(() => pt.readAndClearDirty(2 ** 32 - 4096, 8192, false, rec))).toBe('EINVAL');
    pt.free();
    expect(errno(() => pt.readAndClearDirty(0, 4096, false, rec))).toBe('ENODEV');
  });
});
