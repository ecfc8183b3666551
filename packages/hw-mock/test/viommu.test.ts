/**
 * The selftest vIOMMU of the mock driver (src/viommu.ts) through the driver contract:
 * `IommuDriver.viommuAlloc`, the loopback data and mmap region, vIOMMU invalidation of the device
 * caches, virtual devices (attach to a vIOMMU nested domain needs one), HW queue index rules,
 * vendor events.
 */
import { isIommuError, openBackend, type BackendStack, type IommuViommu, type PagingDomain, type ViommuEvent } from '@iommulab/driver-api';
import { afterEach, describe, expect, it } from 'vitest';
import {
  IOMMU_HW_QUEUE_TYPE_SELFTEST,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_TEST_DEV_CACHE_DEFAULT,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  MOCK_APERTURE_START,
} from '../src/constants.js';
import type { MockDriver } from '../src/driver.js';
import { MockViommu, nestedDomainViommu } from '../src/viommu.js';

const BACKEND = new URL('../src/index.ts', import.meta.url).href;

let stacks: BackendStack[] = [];
afterEach(async () => {
  for (const s of stacks) await s.close();
  stacks = [];
});

async function errno(p: () => unknown): Promise<string> {
  try {
    await p();
  } catch (e) {
    if (isIommuError(e)) return e.errno;
    throw e;
  }
  return 'OK';
}

function entries(list: [number, number, number][]): Uint8Array {
  const b = new Uint8Array(12 * list.length);
  const dv = new DataView(b.buffer);
  list.forEach(([flags, vdev, cache], i) => {
    dv.setUint32(i * 12, flags >>> 0, true);
    dv.setUint32(i * 12 + 4, vdev, true);
    dv.setUint32(i * 12 + 8, cache, true);
  });
  return b;
}

async function setup() {
  const s = await openBackend(BACKEND, { mode: 'in-thread', memBytes: 32 * 1024 * 1024, timeoutMs: 5000 });
  stacks.push(s);
  const drv = s.driver as MockDriver;
  const dev = await drv.probeDevice({ rid: 5 });
  const parent = await drv.domainAllocPaging(dev, { nestParent: true });
  return { s, drv, dev, parent };
}

describe('MockDriver.viommuAlloc (selftest vIOMMU)', () => {
  it('type, parent and data checks; loopback data and the mmap region; pages freed on destroy', async () => {
    const { s, drv, dev, parent } = await setup();
    const plain = await drv.domainAllocPaging(dev, {});
    expect(await errno(() => drv.viommuAlloc(dev, parent, 0xdead, new Uint8Array(0)))).toBe('EOPNOTSUPP');
    expect(await errno(() => drv.viommuAlloc(dev, plain, IOMMU_VIOMMU_TYPE_SELFTEST, new Uint8Array(0)))).toBe('EINVAL');
    expect(await errno(() => drv.viommuAlloc(dev, parent as PagingDomain, IOMMU_VIOMMU_TYPE_SELFTEST, new Uint8Array(4)))).toBe('EINVAL');
    const big = new Uint8Array(32);
    big[30] = 1;
    expect(await errno(() => drv.viommuAlloc(dev, parent, IOMMU_VIOMMU_TYPE_SELFTEST, big))).toBe('E2BIG');
    const frames = s.mem.allocatedFrameCount;
    const data = new Uint8Array(24);
    new DataView(data.buffer).setUint32(0, 0xbeef, true);
    const offsets: [number, number][] = [];
    const v = await drv.viommuAlloc(dev, parent, IOMMU_VIOMMU_TYPE_SELFTEST, data, {
      allocMmap: (pa, length) => {
        offsets.push([pa, length]);
        return 0x3000;
      },
    });
    expect(v).toBeInstanceOf(MockViommu);
    const out = new DataView(v.outData!.buffer);
    expect(out.getUint32(4, true)).toBe(0xbeef);
    expect(out.getBigUint64(8, true)).toBe(0x3000n);
    expect(out.getBigUint64(16, true)).toBe(8192n);
    expect(v.mmapRegion).toEqual({ offset: 0x3000, length: 8192 });
    expect(s.mem.read32(offsets[0]![0])).toBe(0xbeef);
    expect(s.mem.allocatedFrameCount).toBe(frames + 2);
    await v.destroy();
    expect(s.mem.allocatedFrameCount).toBe(frames);
    // Without data: no pages, no out data.
    const v2 = await drv.viommuAlloc(dev, parent, IOMMU_VIOMMU_TYPE_SELFTEST, new Uint8Array(0));
    expect(v2.outData).toBeUndefined();
    await v2.destroy();
  });

  it('nested domains, virtual devices, attach (ENOENT without one), events and device caches', async () => {
    const { drv, dev, parent } = await setup();
    const v: IommuViommu = await drv.viommuAlloc(dev, parent, IOMMU_VIOMMU_TYPE_SELFTEST, new Uint8Array(0));
    const sel = new Uint8Array(8);
    new DataView(sel.buffer).setUint32(0, IOMMU_TEST_IOTLB_DEFAULT, true);
    expect(await errno(() => v.domainAllocNested!(dev, IOMMU_HWPT_DATA_SELFTEST + 1, sel))).toBe('EOPNOTSUPP');
    expect(await errno(() => v.domainAllocNested!(dev, IOMMU_HWPT_DATA_SELFTEST, sel.subarray(0, 3)))).toBe('EINVAL');
    const nested = await v.domainAllocNested!(dev, IOMMU_HWPT_DATA_SELFTEST, sel, { pasid: true });
    expect(nestedDomainViommu(nested)).toBe(v);
    expect(await errno(() => drv.attachDevice(dev, nested))).toBe('ENOENT');
    expect(drv.attachedDomain(dev)).toBe('blocked');
    // No attach through the vIOMMU yet: no event.
    expect(await errno(() => drv.triggerViommuEvent(dev))).toBe('ENOENT');
    await v.vdeviceInit!(dev, 0x99n);
    expect(await errno(() => v.vdeviceInit!(dev, 0x99n))).toBe('EEXIST');
    await drv.attachDevice(dev, nested);
    // Nobody listens: EOPNOTSUPP.
    expect(await errno(() => drv.triggerViommuEvent(dev))).toBe('EOPNOTSUPP');
    const got: ViommuEvent[] = [];
    const off = v.onViommuEvent!((e) => got.push(e));
    drv.triggerViommuEvent(dev);
    expect(got).toHaveLength(1);
    expect(got[0]!.type).toBe(IOMMU_VEVENTQ_TYPE_SELFTEST);
    expect(got[0]!.dev).toBe(dev);
    expect(Array.from(got[0]!.data)).toEqual([0x99, 0, 0, 0]);
    off();

    // Device caches: DEFAULT, then cleared by entries naming the virtual id.
    for (let i = 0; i < 4; i++) expect(drv.deviceCacheValue(dev, i)).toBe(IOMMU_TEST_DEV_CACHE_DEFAULT);
    expect(await errno(() => drv.deviceCacheValue(dev, 4))).toBe('EINVAL');
    const T = IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST;
    expect(await v.cacheInvalidate(T, 12, new Uint8Array(0), 0)).toEqual({ handled: 0 });
    expect((await v.cacheInvalidate(T + 1, 12, new Uint8Array(0), 0)).error?.errno).toBe('EINVAL');
    let r = await v.cacheInvalidate(T, 12, entries([[0, 0x99, 0], [0xffff_ffff, 0x99, 1]]), 2);
    expect([r.handled, r.error?.errno]).toEqual([1, 'EOPNOTSUPP']);
    r = await v.cacheInvalidate(T, 12, entries([[0, 0x99, 1], [0, 0x99, 4]]), 2);
    expect([r.handled, r.error?.errno]).toEqual([1, 'EINVAL']);
    r = await v.cacheInvalidate(T, 12, entries([[0, 0x9, 2]]), 1);
    expect([r.handled, r.error?.errno]).toEqual([0, 'EINVAL']);
    // A longer entry needs a zero tail (E2BIG), a shorter one is zero-filled (vdev_id 0: unknown).
    const long = new Uint8Array(13 * 1);
    long.set(entries([[0, 0x99, 2]]));
    long[12] = 1;
    expect((await v.cacheInvalidate(T, 13, long, 1)).error?.errno).toBe('E2BIG');
    expect((await v.cacheInvalidate(T, 1, new Uint8Array(1), 1)).error?.errno).toBe('EINVAL');
    expect([0, 1, 2, 3].map((i) => drv.deviceCacheValue(dev, i))).toEqual([0, 0, IOMMU_TEST_DEV_CACHE_DEFAULT, IOMMU_TEST_DEV_CACHE_DEFAULT]);
    r = await v.cacheInvalidate(T, 12, entries([[IOMMU_TEST_INVALIDATE_FLAG_ALL, 0x99, 0]]), 1);
    expect(r).toEqual({ handled: 1 });
    expect([0, 1, 2, 3].map((i) => drv.deviceCacheValue(dev, i))).toEqual([0, 0, 0, 0]);

    await drv.attachDevice(dev, 'blocked');
    expect(await errno(() => drv.triggerViommuEvent(dev))).toBe('ENOENT');
    v.vdeviceDestroy!(dev);
    expect(await errno(() => drv.attachDevice(dev, nested))).toBe('ENOENT');
    await nested.free();
    await v.destroy();
  });

  it('HW queues: type, index rules, dependency, base PA check', async () => {
    const { s, drv, dev, parent } = await setup();
    const v = await drv.viommuAlloc(dev, parent, IOMMU_VIOMMU_TYPE_SELFTEST, new Uint8Array(0));
    expect(v.hwQueueTypes).toEqual([IOMMU_HW_QUEUE_TYPE_SELFTEST]);
    const pa = s.mem.allocFrames(1);
    parent.mapPages(MOCK_APERTURE_START, pa, 2048, 2, 3);
    const iova = BigInt(MOCK_APERTURE_START);
    const Q = IOMMU_HW_QUEUE_TYPE_SELFTEST;
    expect(await errno(() => v.hwQueueAlloc!(Q + 1, 0, pa, 4096, iova))).toBe('EOPNOTSUPP');
    expect(await errno(() => v.hwQueueAlloc!(Q, 1, pa, 4096, iova))).toBe('EIO');
    expect(await errno(() => v.hwQueueAlloc!(Q, 2, pa, 4096, iova))).toBe('EINVAL');
    expect(await errno(() => v.hwQueueAlloc!(Q, 0, pa + 4096, 4096, iova))).toBe('EFAULT');
    const q0 = await v.hwQueueAlloc!(Q, 0, pa, 4096, iova);
    expect(q0.dependsOn).toBeUndefined();
    expect(await errno(() => v.hwQueueAlloc!(Q, 0, pa, 4096, iova))).toBe('EEXIST');
    const q1 = await v.hwQueueAlloc!(Q, 1, pa + 2048, 2048, iova + 2048n);
    expect(q1.dependsOn).toBe(0);
    await q1.destroy();
    await q0.destroy();
    expect(await errno(() => v.hwQueueAlloc!(Q, 1, pa, 4096, iova))).toBe('EIO');
    await v.destroy();
    s.mem.freeFrames(pa, 1);
  });
});
