import { isIommuError } from '@iommulab/driver-api';
import { PhysMem } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { decodePte, PTE_D } from '../src/codec.js';
import { MOCK_APERTURE_LAST, MOCK_APERTURE_START } from '../src/constants.js';
import { MockPageTable } from '../src/page-table.js';

const A = MOCK_APERTURE_START;
const MiB = 1 << 20;

function setup(bytes = 16 * MiB) {
  const mem = PhysMem.create(bytes);
  return { mem, pt: MockPageTable.create(mem) };
}

function errno(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isIommuError(e)) return e.errno;
    throw e;
  }
  return 'OK';
}

describe('MockPageTable', () => {
  it('writes the exact PTE words the hardware walks', () => {
    const { mem, pt } = setup();
    expect(pt.root % 16384).toBe(0);
    pt.map(A + 0x1800, 0x12_3800, 0x800, 3);
    const l1 = pt.root + 16 * 8; // A >> 20 = 16
    const l1w0 = mem.read32(l1);
    expect(l1w0 & 0xfff).toBe(1); // table pointer: V only
    const l2 = l1w0 & 0xffff_f000;
    expect([mem.read32(l2 + 3 * 8), mem.read32(l2 + 3 * 8 + 4)]).toEqual([0x0012_380f, 0]);
    expect(decodePte([mem.read32(l2 + 3 * 8), 0])).toMatchObject({ valid: true, read: true, write: true, leaf: true, pa: 0x12_3800 });
  });

  it('uses 1 MiB leaves only when iova, pa and size allow it', () => {
    const { mem, pt } = setup();
    pt.map(A + MiB, 2 * MiB, 3 * MiB, 1);
    expect(mem.read32(pt.root + 17 * 8)).toBe((2 * MiB) | 0xb); // V R LEAF
    expect(pt.tableCount).toBe(0);
    pt.map(A + 8 * MiB, 2 * MiB + 0x800, MiB, 1); // pa not 1 MiB aligned → 2 KiB pages
    expect(pt.tableCount).toBe(1);
    expect(pt.walk(A + 8 * MiB + 0x900)).toMatchObject({ iova: A + 8 * MiB + 0x800, pa: 2 * MiB + 0x1000, size: 0x800 });
    const nohuge = MockPageTable.create(mem, { huge: false });
    nohuge.map(A, 2 * MiB, MiB, 1);
    expect(nohuge.tableCount).toBe(1);
    expect(nohuge.iovaToPhys(A + MiB - 1)).toBe(3 * MiB - 1);
  });

  it('validates before changing anything', () => {
    const { mem, pt } = setup();
    pt.map(A + 0x800, 0x10_0000, 0x800, 3);
    const snapshot = mem.readBytes(pt.root, 16384);
    const frames = mem.allocatedFrameCount;
    expect(errno(() => pt.map(A + 1, 0, 0x800, 3))).toBe('EINVAL');
    expect(errno(() => pt.map(A, 0x400, 0x800, 3))).toBe('EINVAL');
    expect(errno(() => pt.map(A, 0, 0, 3))).toBe('EINVAL');
    expect(errno(() => pt.map(A - 0x800, 0, 0x800, 3))).toBe('EINVAL');
    expect(errno(() => pt.map(MOCK_APERTURE_LAST + 1 - 0x800, 0, 0x1000, 3))).toBe('EINVAL');
    expect(errno(() => pt.map(A, 0, 0x1000, 3))).toBe('EEXIST'); // overlaps A + 0x800
    expect(errno(() => pt.map(A + 5 * MiB, 0, 2 * MiB + 0x800, 3))).toBe('OK');
    expect(errno(() => pt.map(A + 4 * MiB, 0, 2 * MiB, 3))).toBe('EEXIST'); // hits the 1 MiB leaf at +5 MiB
    expect(mem.readBytes(pt.root, 16384).slice(0, 16 * 8 + 8)).toEqual(snapshot.slice(0, 16 * 8 + 8));
    expect(mem.allocatedFrameCount).toBe(frames + 1); // only the +7 MiB L2 table of the OK map
  });

  it('ENOMEM leaves nothing allocated', () => {
    const mem = PhysMem.create(64 * 4096);
    const pt = MockPageTable.create(mem, { huge: false });
    const before = mem.allocatedFrameCount;
    // 100 MiB of 2 KiB pages needs 100 L2 tables: far more than the 59 free frames.
    expect(errno(() => pt.map(A, 0, 100 * MiB, 3))).toBe('ENOMEM');
    expect(mem.allocatedFrameCount).toBe(before);
    expect(pt.iovaToPhys(A)).toBe(-1);
  });

  it('unmap stops at the first hole and reports removed runs', () => {
    const { pt } = setup();
    pt.map(A, 0x10_0000, 0x2000, 3);
    pt.map(A + 0x3000, 0x20_0000, 0x800, 3);
    const runs: number[][] = [];
    expect(pt.unmap(A + 0x800, 0x4000, (i, s) => runs.push([i - A, s]))).toBe(0x1800);
    expect(runs).toEqual([[0x800, 0x800], [0x1000, 0x800], [0x1800, 0x800]]);
    expect(pt.iovaToPhys(A)).toBe(0x10_0000);
    expect(pt.iovaToPhys(A + 0x3000)).toBe(0x20_0000);
    expect(pt.unmap(A + 0x2000, 0x800)).toBe(0);
  });

  it('unmapping part of a 1 MiB leaf splits it', () => {
    const { pt } = setup();
    pt.map(A, 4 * MiB, MiB, 3);
    pt.setDirty(A, MiB);
    expect(pt.unmap(A + 0x1000, 0x800)).toBe(0x800);
    expect(pt.walk(A)).toMatchObject({ size: 0x800, pa: 4 * MiB, dirty: true, prot: 3 });
    expect(pt.iovaToPhys(A + 0x1000)).toBe(-1);
    expect(pt.iovaToPhys(A + MiB - 1)).toBe(5 * MiB - 1);
    // Whole leaf → one run of 1 MiB.
    pt.map(A + 2 * MiB, 6 * MiB, MiB, 3);
    const runs: number[] = [];
    expect(pt.unmap(A + 2 * MiB, MiB, (_i, s) => runs.push(s))).toBe(MiB);
    expect(runs).toEqual([MiB]);
  });

  it('reads and clears dirty bits (whole leaves), NO_CLEAR keeps them', () => {
    const { mem, pt } = setup();
    pt.map(A, 0x10_0000, 0x4000, 3);
    pt.map(A + MiB, 4 * MiB, MiB, 3);
    // Mark every other IOPTE dirty, as the selftest does.
    for (let k = 0; k < 8; k += 2) pt.setDirty(A + k * 0x800, 0x800);
    pt.setDirty(A + MiB + 0x800, 0x800); // inside the huge leaf
    const seen: number[][] = [];
    pt.readAndClearDirty(A, 2 * MiB, true, (i, l) => seen.push([i - A, l]));
    expect(seen).toEqual([[0, 0x800], [0x1000, 0x800], [0x2000, 0x800], [0x3000, 0x800], [MiB, MiB]]);
    expect(pt.readAndClearDirty(A, 2 * MiB, false, () => {})).toBe(5);
    expect(pt.readAndClearDirty(A, 2 * MiB, false, () => { throw new Error('still dirty'); })).toBe(0);
    expect(mem.read32(pt.root + 17 * 8) & PTE_D).toBe(0);
  });

  it('free returns every frame', () => {
    const mem = PhysMem.create(16 * MiB);
    const before = mem.allocatedFrameCount;
    const pt = MockPageTable.create(mem, { huge: false });
    pt.map(A, 0, 3 * MiB, 3);
    pt.free();
    expect(mem.allocatedFrameCount).toBe(before);
    expect(errno(() => pt.map(A, 0, 0x800, 3))).toBe('ENODEV');
  });
});
