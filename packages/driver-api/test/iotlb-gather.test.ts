import { describe, expect, it } from 'vitest';
import { IotlbGather } from '../src/index.js';

describe('IotlbGather (struct iommu_iotlb_gather)', () => {
  it('accumulates the covering range and the largest page size', () => {
    const g = new IotlbGather();
    expect(g.empty).toBe(true);
    g.add(0x2000, 0x1000, 0x1000);
    g.add(0x200000, 0x200000, 0x200000);
    g.add(0x1000, 0x800, 0x800);
    expect(g.empty).toBe(false);
    expect(g.start).toBe(0x1000);
    expect(g.end).toBe(0x3fffff);
    expect(g.pageSize).toBe(0x200000);
    g.add(0x9000, 0, 0x1000); // nothing removed: ignored
    expect(g.end).toBe(0x3fffff);
    g.reset();
    expect(g.empty).toBe(true);
    expect(g.start).toBe(Infinity);
  });
});
