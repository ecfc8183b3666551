import { describe, expect, it } from 'vitest';
import { mappingAlignment, planMapping } from '../src/map-plan.js';
import { chooseIovaBase } from '../src/run-instance.js';
import { physMemBytes } from '../src/mem-size.js';

const KiB = 1024;
const MiB = 1024 * 1024;
const MOCK = [2048, MiB];

describe('planMapping', () => {
  it('uses only the largest page size when everything is aligned', () => {
    expect(planMapping(16 * MiB, 4 * MiB, 32 * MiB, MOCK)).toEqual([
      { iova: 16 * MiB, pa: 4 * MiB, pageSize: MiB, count: 32 },
    ]);
  });
  it('uses small pages for an unaligned head and tail', () => {
    expect(planMapping(MiB - 4 * KiB, MiB - 4 * KiB, MiB + 8 * KiB, MOCK)).toEqual([
      { iova: MiB - 4 * KiB, pa: MiB - 4 * KiB, pageSize: 2048, count: 2 },
      { iova: MiB, pa: MiB, pageSize: MiB, count: 1 },
      { iova: 2 * MiB, pa: 2 * MiB, pageSize: 2048, count: 2 },
    ]);
  });
  it('falls back to small pages when IOVA and PA are differently aligned', () => {
    expect(planMapping(MiB, MiB + 4 * KiB, 2 * MiB, MOCK)).toEqual([
      { iova: MiB, pa: MiB + 4 * KiB, pageSize: 2048, count: 1024 },
    ]);
  });
  it('handles three sizes', () => {
    expect(planMapping(0, 0, 2 * MiB + 8 * KiB, [4 * KiB, 2 * MiB, 1024 * MiB])).toEqual([
      { iova: 0, pa: 0, pageSize: 2 * MiB, count: 1 },
      { iova: 2 * MiB, pa: 2 * MiB, pageSize: 4 * KiB, count: 2 },
    ]);
  });
  it('rejects sizes that are not a multiple of the smallest page', () => {
    expect(() => planMapping(0, 0, 1000, MOCK)).toThrow(RangeError);
  });
});

describe('mappingAlignment and chooseIovaBase', () => {
  it('aligns to the largest page size not bigger than the mapping', () => {
    expect(mappingAlignment(32 * MiB, MOCK)).toBe(MiB);
    expect(mappingAlignment(512 * KiB, MOCK)).toBe(2048);
    expect(mappingAlignment(4 * MiB, [4 * KiB, 2 * MiB, 1024 * MiB])).toBe(2 * MiB);
  });
  it('starts at the aligned aperture start and skips reserved regions', () => {
    const ap = { start: 0x0100_0000, last: 0x7fff_ffff };
    expect(chooseIovaBase(ap, [], 32 * MiB, MiB)).toBe(0x0100_0000);
    expect(chooseIovaBase({ start: 0x0100_0800, last: 0x7fff_ffff }, [], 32 * MiB, MiB)).toBe(0x0110_0000);
    expect(chooseIovaBase(ap, [{ start: 0x0800_0000, last: 0x080f_ffff }], 128 * MiB, MiB)).toBe(0x0810_0000);
    expect(() => chooseIovaBase(ap, [], 2048 * MiB, MiB)).toThrow(/cannot place/);
  });
});

describe('physMemBytes', () => {
  it('sizes shared memory for every instance plus tables and slack', () => {
    // per instance: 32 MiB + 1 MiB align + 16384 pages x 8 B (128 KiB) + 2 MiB; plus 4 MiB shared
    expect(physMemBytes(2, 32 * MiB, MOCK)).toBe(75 * MiB);
    expect(() => physMemBytes(256, 2048 * MiB, MOCK)).toThrow(/maximum is 4096 MiB/);
  });
});
