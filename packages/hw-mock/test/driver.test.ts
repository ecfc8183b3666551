import {
  FaultReason,
  IotlbGather,
  Prot,
  isIommuError,
  openBackend,
  type BackendStack,
  type IommuFault,
  type NestedDomain,
  type PagingDomain,
} from '@iommulab/driver-api';
import { ACCESS_READ, ACCESS_WRITE, NO_PASID, dmaRequest, type InstanceMode } from '@iommulab/runtime';
import { afterEach, describe, expect, it } from 'vitest';
import {
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_TEST_IOTLB_DEFAULT,
  MOCK_APERTURE_START,
  MOCK_HUGE_PAGE_SIZE,
  MOCK_PAGE_SIZE,
} from '../src/constants.js';
import { MockHardware } from '../src/hardware.js';
import type { MockDriver } from '../src/driver.js';
import type { MockNestedDomain } from '../src/nested-domain.js';
import type { MockPagingDomain } from '../src/paging-domain.js';
import { mockBackend } from '../src/index.js';
import defaultExport from '../src/index.js';

const BACKEND = new URL('../src/index.ts', import.meta.url).href;
const A = MOCK_APERTURE_START;
const PS = MOCK_PAGE_SIZE;
const RW = Prot.READ | Prot.WRITE;

let stacks: BackendStack[] = [];
afterEach(async () => {
  for (const s of stacks) await s.close();
  stacks = [];
});

async function open(mode: InstanceMode, options: Record<string, unknown> = {}): Promise<BackendStack> {
  const s = await openBackend(BACKEND, { mode, memBytes: 32 * 1024 * 1024, options, timeoutMs: 5000 });
  stacks.push(s);
  return s;
}

async function dma(s: BackendStack, rid: number, iova: number, access = ACCESS_READ, pasid = NO_PASID) {
  return { ...(await s.port.translate(dmaRequest({ rid, iova, access, pasid }))) };
}

async function errno(p: () => unknown): Promise<string> {
  try {
    await p();
  } catch (e) {
    if (isIommuError(e)) return e.errno;
    throw e;
  }
  return 'OK';
}

it('default export is the plugin', () => {
  expect(defaultExport).toBe(mockBackend);
  expect(mockBackend.id).toBe('mock');
  expect(mockBackend.capabilities.pageSizes).toEqual([PS, MOCK_HUGE_PAGE_SIZE]);
});

for (const mode of ['in-thread', 'worker'] as const) {
  describe(`MockDriver (${mode})`, () => {
    it('probes, maps, translates, unmaps with invalidation', async () => {
      const s = await open(mode);
      const drv = s.driver;
      expect(drv.capabilities).toMatchObject({ ridBits: 8, pasidBits: 20, dirtyTracking: true, pri: true });
      const dev = await drv.probeDevice({ rid: 3 });
      expect(await errno(() => drv.probeDevice({ rid: 3 }))).toBe('EBUSY');
      expect(await errno(() => drv.probeDevice({ rid: 256 }))).toBe('ENODEV');
      const info = drv.hwInfo(dev);
      expect(info.type).toBe(IOMMU_HW_INFO_TYPE_SELFTEST);
      expect(Array.from(info.data)).toEqual([0, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde]);
      const dom = await drv.domainAllocPaging(dev);
      expect((await dma(s, 3, A)).fault).toBe(FaultReason.BLOCKED);
      await drv.attachDevice(dev, dom);
      const pa = s.mem.allocFrames(4);
      expect(dom.mapPages(A, pa, PS, 8, RW)).toBe(8 * PS);
      expect((await dma(s, 3, A + 0x1234, ACCESS_WRITE)).pa).toBe(pa + 0x1234);
      const g = new IotlbGather();
      expect(dom.unmapPages(A + PS, PS, 2, g)).toBe(2 * PS);
      // Not yet invalidated: the cached translation of page 2 is still there.
      expect((await dma(s, 3, A + 2 * PS + 4)).pa).toBe(pa + 2 * PS + 4);
      await dom.iotlbSync(g);
      expect(g.empty).toBe(true);
      expect((await dma(s, 3, A + 2 * PS + 4)).fault).toBe(FaultReason.TRANSLATION);
      expect((await dma(s, 3, A + 3 * PS)).pa).toBe(pa + 3 * PS);
      expect(await errno(() => dom.free())).toBe('EBUSY');
      await drv.attachDevice(dev, 'blocked');
      expect((await dma(s, 3, A + 3 * PS)).fault).toBe(FaultReason.BLOCKED);
      await dom.free();
      await drv.releaseDevice(dev);
      expect(await errno(() => drv.attachDevice(dev, 'blocked'))).toBe('ENODEV');
    });

    it('maps 1 MiB pages as huge leaves', async () => {
      const s = await open(mode);
      const dev = await s.driver.probeDevice({ rid: 1 });
      const dom = await s.driver.domainAllocPaging(dev);
      await s.driver.attachDevice(dev, dom);
      const pa = s.mem.allocFrames(256, 256);
      expect(dom.mapPages(A + MOCK_HUGE_PAGE_SIZE, pa, MOCK_HUGE_PAGE_SIZE, 1, RW)).toBe(MOCK_HUGE_PAGE_SIZE);
      expect((await dma(s, 1, A + MOCK_HUGE_PAGE_SIZE + 0xabcd0)).pa).toBe(pa + 0xabcd0);
      expect((dom as MockPagingDomain).table.tableCount).toBe(0);
      expect(await errno(() => dom.mapPages(A + 0x800, pa, MOCK_HUGE_PAGE_SIZE, 1, RW))).toBe('EINVAL');
      expect(await errno(() => dom.mapPages(A, pa, 4096, 1, RW))).toBe('EINVAL');
      const g = new IotlbGather();
      expect(dom.unmapPages(A + MOCK_HUGE_PAGE_SIZE + PS, PS, 1, g)).toBe(PS); // split
      await dom.iotlbSync(g);
      expect((await dma(s, 1, A + MOCK_HUGE_PAGE_SIZE + PS)).fault).toBe(FaultReason.TRANSLATION);
      expect((await dma(s, 1, A + MOCK_HUGE_PAGE_SIZE + 2 * PS)).pa).toBe(pa + 2 * PS);
    });

    it('PASIDs translate through their own domain; PASID 1024 replacement is rigged', async () => {
      const s = await open(mode);
      const drv = s.driver;
      const dev = await drv.probeDevice({ rid: 2, pasidBits: 20 });
      const plain = await drv.probeDevice({ rid: 4 });
      expect(drv.hwInfo(dev).maxPasidLog2).toBe(20);
      const noPasid = await drv.domainAllocPaging(dev);
      const d1 = await drv.domainAllocPaging(dev, { pasid: true });
      const d2 = await drv.domainAllocPaging(dev, { pasid: true });
      expect(await errno(() => drv.attachPasid(dev, 7, noPasid))).toBe('EINVAL');
      expect(await errno(() => drv.attachPasid(plain, 7, d1))).toBe('EINVAL');
      const pa1 = s.mem.allocFrame();
      const pa2 = s.mem.allocFrame();
      d1.mapPages(A, pa1, PS, 1, RW);
      d2.mapPages(A, pa2, PS, 1, RW);
      // RID blocked, PASID 7 attached.
      await drv.attachPasid(dev, 7, d1);
      expect((await dma(s, 2, A + 8, ACCESS_READ, 7)).pa).toBe(pa1 + 8);
      expect((await dma(s, 2, A + 8)).ok).toBe(false);
      expect((await dma(s, 2, A, ACCESS_READ, 8)).fault).toBe(FaultReason.BLOCKED);
      // Replace.
      await drv.attachPasid(dev, 7, d2);
      expect((await dma(s, 2, A + 8, ACCESS_READ, 7)).pa).toBe(pa2 + 8);
      expect(await errno(() => d1.free())).toBe('OK');
      // Rigged PASID 1024: attach ok, replace fails ENOMEM and keeps the old attachment, next succeeds.
      const d3 = await drv.domainAllocPaging(dev, { pasid: true });
      await drv.attachPasid(dev, 1024, d2);
      expect(await errno(() => drv.attachPasid(dev, 1024, d3))).toBe('ENOMEM');
      expect((await dma(s, 2, A, ACCESS_READ, 1024)).pa).toBe(pa2);
      await drv.attachPasid(dev, 1024, d3);
      await drv.detachPasid(dev, 7);
      await drv.detachPasid(dev, 7);
      expect((await dma(s, 2, A, ACCESS_READ, 7)).ok).toBe(false);
      expect(await errno(() => d2.free())).toBe('OK');
    });

    it('dirty tracking: hardware sets D, readAndClearDirty reports and clears', async () => {
      const s = await open(mode);
      const drv = s.driver;
      const dev = await drv.probeDevice({ rid: 5 });
      const nodirty = await drv.probeDevice({ rid: 6, noDirty: true });
      expect(await errno(() => drv.domainAllocPaging(nodirty, { dirtyTracking: true }))).toBe('EOPNOTSUPP');
      const plain = await drv.domainAllocPaging(dev);
      expect(await errno(() => plain.setDirtyTracking(true))).toBe('EOPNOTSUPP');
      const dom = await drv.domainAllocPaging(dev, { dirtyTracking: true });
      expect(await errno(() => drv.attachDevice(nodirty, dom))).toBe('EINVAL');
      await drv.attachDevice(dev, dom);
      const pa = s.mem.allocFrames(2);
      dom.mapPages(A, pa, PS, 4, RW);
      expect((await dma(s, 5, A, ACCESS_WRITE)).ok).toBe(true); // before tracking: cached writable
      await dom.setDirtyTracking(true);
      await dma(s, 5, A + 2 * PS + 8, ACCESS_WRITE);
      await dma(s, 5, A + PS, ACCESS_READ);
      await dma(s, 5, A, ACCESS_WRITE);
      const seen: number[] = [];
      await dom.readAndClearDirty(A, 4 * PS, { noClear: true }, (i) => seen.push((i - A) / PS));
      expect(seen).toEqual([0, 2]);
      seen.length = 0;
      await dom.readAndClearDirty(A, 4 * PS, {}, (i) => seen.push((i - A) / PS));
      expect(seen).toEqual([0, 2]);
      seen.length = 0;
      await dom.readAndClearDirty(A, 4 * PS, {}, (i) => seen.push((i - A) / PS));
      expect(seen).toEqual([]);
      await dma(s, 5, A + 2 * PS, ACCESS_WRITE); // the cached clean entry was invalidated
      await dom.readAndClearDirty(A, 4 * PS, {}, (i) => seen.push((i - A) / PS));
      expect(seen).toEqual([2]);
      await dom.setDirtyTracking(false);
      expect(await errno(() => dom.readAndClearDirty(A, PS, {}, () => {}))).toBe('EINVAL');
    });

    it('nested domains: selftest data, IOTLB slots, user invalidation', async () => {
      const s = await open(mode);
      const drv = s.driver;
      const dev = await drv.probeDevice({ rid: 7 });
      const parent = await drv.domainAllocPaging(dev, { nestParent: true });
      const notParent = await drv.domainAllocPaging(dev);
      const data = new Uint8Array(8);
      new DataView(data.buffer).setUint32(0, IOMMU_TEST_IOTLB_DEFAULT, true);
      expect(await errno(() => drv.domainAllocNested(dev, notParent, IOMMU_HWPT_DATA_SELFTEST, data))).toBe('EINVAL');
      expect(await errno(() => drv.domainAllocNested(dev, parent, IOMMU_HWPT_DATA_SELFTEST + 1, data))).toBe('EOPNOTSUPP');
      expect(await errno(() => drv.domainAllocNested(dev, parent, IOMMU_HWPT_DATA_SELFTEST, data.subarray(0, 3)))).toBe('EINVAL');
      expect(await errno(() => drv.domainAllocNested(dev, parent, IOMMU_HWPT_DATA_SELFTEST, data, { nestParent: true }))).toBe('EOPNOTSUPP');
      const nested = (await drv.domainAllocNested(dev, parent, IOMMU_HWPT_DATA_SELFTEST, data)) as MockNestedDomain;
      expect(Array.from(nested.iotlb)).toEqual([IOMMU_TEST_IOTLB_DEFAULT, IOMMU_TEST_IOTLB_DEFAULT, IOMMU_TEST_IOTLB_DEFAULT, IOMMU_TEST_IOTLB_DEFAULT]);
      expect(await errno(() => parent.free())).toBe('EBUSY');
      const entries = new Uint8Array(16);
      const dv = new DataView(entries.buffer);
      dv.setUint32(0, 0, true);
      dv.setUint32(4, 1, true);
      dv.setUint32(8, 0, true);
      dv.setUint32(12, 4, true); // bad id
      const r = await nested.cacheInvalidateUser(IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, 8, entries, 2);
      expect(r.handled).toBe(1);
      expect(r.error?.errno).toBe('EINVAL');
      expect(Array.from(nested.iotlb)).toEqual([IOMMU_TEST_IOTLB_DEFAULT, 0, IOMMU_TEST_IOTLB_DEFAULT, IOMMU_TEST_IOTLB_DEFAULT]);
      dv.setUint32(8, 0xffff_ffff, true);
      expect((await nested.cacheInvalidateUser(IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, 8, entries, 2)).error?.errno).toBe('EOPNOTSUPP');
      dv.setUint32(0, 1, true); // FLAG_ALL
      expect(await nested.cacheInvalidateUser(IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, 8, entries, 1)).toEqual({ handled: 1 });
      expect(Array.from(nested.iotlb)).toEqual([0, 0, 0, 0]);
      expect((await nested.cacheInvalidateUser(0x1234, 8, entries, 1)).error?.errno).toBe('EINVAL');
      // A device on the nested domain translates through the parent.
      const pa = s.mem.allocFrame();
      parent.mapPages(A, pa, PS, 1, RW);
      await drv.attachDevice(dev, nested as NestedDomain);
      expect((await dma(s, 7, A + 4)).pa).toBe(pa + 4);
      expect(await errno(() => nested.free())).toBe('EBUSY');
      await drv.attachDevice(dev, parent as PagingDomain);
      await nested.free();
      await drv.attachDevice(dev, 'blocked');
      await parent.free();
    });

    it('faults and page requests reach onFault; page responses reach the device', async () => {
      const s = await open(mode);
      const drv = s.driver;
      const dev = await drv.probeDevice({ rid: 9, pri: true, pasidBits: 20 });
      const dom = await drv.domainAllocPaging(dev, { pasid: true });
      await drv.attachDevice(dev, dom);
      const got: IommuFault[] = [];
      const off = drv.onFault((f) => got.push(f));
      const r = await dma(s, 9, A + 0x4000, ACCESS_WRITE);
      expect(r.fault).toBe(FaultReason.PAGE_REQUEST);
      await dma(s, 200, A); // BLOCKED event from an unprobed RID
      const deadline = Date.now() + 3000;
      while (got.length < 2 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5));
      expect(got[0]).toMatchObject({ kind: 'page-request', rid: 9, pasid: -1, grpid: r.faultDetail, perm: 2, addr: A + 0x4000, last: true });
      expect(got[1]).toMatchObject({ kind: 'event', rid: 200, reason: FaultReason.BLOCKED, addr: A });
      await drv.pageResponse(dev, { rid: 9, pasid: -1, grpid: r.faultDetail, code: 0 });
      expect(await errno(() => drv.pageResponse(dev, { rid: 9, pasid: -1, grpid: 600, code: 0 }))).toBe('EINVAL');
      if (mode === 'in-thread') {
        const hw = s.host.hardware as MockHardware;
        expect(hw.takePageResponses()).toEqual([{ rid: 9, pasid: -1, grpid: r.faultDetail, code: 0 }]);
        expect(hw.pageRequest({ rid: 9, pasid: 1, addr: 0xdeadbeaf, perm: 3, grpid: 2, last: true })).toBe(true);
        expect(await drv.drainFaults()).toBe(1);
        expect(got[2]).toMatchObject({ kind: 'page-request', pasid: 1, grpid: 2, addr: 0xdeadbeaf });
      }
      // The selftest's TRIGGER_IOPF, through the injector registers (works in both modes).
      const before = got.length;
      expect(await (drv as MockDriver).triggerPageRequest(dev, { pasid: 1, grpid: 2, perm: 3, addr: 0xdeadbeaf })).toBe(true);
      await drv.drainFaults();
      expect(got[before]).toEqual({ kind: 'page-request', rid: 9, pasid: 1, grpid: 2, perm: 3, addr: 0xdeadbeaf, last: true });
      await drv.pageResponse(dev, { rid: 9, pasid: 1, grpid: 2, code: 0 });
      const st = await s.host.stats();
      expect(st.pageResponses).toBe(2);
      off();
    });

    it('a page request no handler takes (none listening, or each returns false) is answered INVALID by the driver once its Last arrives; stop markers are not answered', async () => {
      const s = await open(mode);
      const drv = s.driver as MockDriver;
      const dev = await drv.probeDevice({ rid: 9, pri: true, pasidBits: 20 });
      await drv.attachDevice(dev, await drv.domainAllocPaging(dev, { pasid: true }));
      const declined: IommuFault[] = [];
      const off = drv.onFault((f) => {
        declined.push(f);
        return false;
      });
      expect(await drv.triggerPageRequest(dev, { pasid: -1, grpid: 3, perm: 1, addr: A, last: false })).toBe(true);
      expect(await drv.triggerPageRequest(dev, { pasid: -1, grpid: 3, perm: 1, addr: A + 0x800, last: true })).toBe(true);
      expect(await drv.triggerPageRequest(dev, { pasid: 5, grpid: 4, perm: 0, addr: 0, last: true })).toBe(true); // stop marker
      await drv.drainFaults();
      expect(declined.map((f) => f.kind === 'page-request' && [f.grpid, f.last])).toEqual([
        [3, false],
        [3, true],
        [4, true],
      ]);
      off();
      // Nobody listening at all: the same.
      expect(await drv.triggerPageRequest(dev, { pasid: 7, grpid: 6, perm: 2, addr: A, last: true })).toBe(true);
      await drv.drainFaults();
      const deadline = Date.now() + 3000;
      while ((await s.host.stats()).pageResponses < 2 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5));
      const st = await s.host.stats();
      expect(st.pageResponses).toBe(2);
      if (mode === 'in-thread') {
        const hw = s.host.hardware as MockHardware;
        expect(hw.takePageResponses()).toEqual([
          { rid: 9, pasid: -1, grpid: 3, code: 1 },
          { rid: 9, pasid: 7, grpid: 6, code: 1 },
        ]);
      }
    });

    it('a fault queue overflow is reported after the drained records as a page-request overflow (one queue carries both)', async () => {
      const s = await open(mode, { faultqLog2: 1 });
      const drv = s.driver as MockDriver;
      const dev = await drv.probeDevice({ rid: 9, pri: true });
      await drv.attachDevice(dev, await drv.domainAllocPaging(dev));
      const queued: boolean[] = [];
      // Nobody listens yet (no irq-driven drain): the 2-entry queue fills, then overflows.
      for (let g = 0; g < 4; g++) queued.push(await drv.triggerPageRequest(dev, { pasid: -1, grpid: g, perm: 1, addr: A, last: false }));
      expect(queued).toEqual([true, true, false, false]);
      const got: IommuFault[] = [];
      drv.onFault((f) => got.push(f));
      await drv.drainFaults();
      expect(got.map((f) => f.kind)).toEqual(['page-request', 'page-request', 'overflow']);
      expect(got[2]).toEqual({ kind: 'overflow', queue: 'page-request' });
      expect(drv.faultOverflows).toBe(1);
    });

    it('runs a DMA workload on the instance (runWorkload) with IOTLB hits', async () => {
      const s = await open(mode);
      const dev = await s.driver.probeDevice({ rid: 1 });
      const dom = await s.driver.domainAllocPaging(dev);
      await s.driver.attachDevice(dev, dom);
      const pa = s.mem.allocFrames(256);
      dom.mapPages(A, pa, PS, 512, RW);
      const r = await s.host.runWorkload({ pattern: 'random', rid: 1, iovaBase: A, length: 512 * PS, step: PS, count: 200_000, seed: 7 });
      expect(r.translations).toBe(200_000);
      expect(r.faults).toBe(0);
      const st = await s.host.stats();
      expect(st.walks).toBeLessThanOrEqual(512 + 8);
      expect(st.hits).toBeGreaterThan(190_000);
    });

    it('concurrent operations share a tiny command queue (waits for space, ring wraps)', async () => {
      const s = await open(mode, { cmdqLog2: 2 });
      const drv = s.driver;
      const devs = await Promise.all([1, 2, 3, 4, 5, 6].map((rid) => drv.probeDevice({ rid })));
      const doms = await Promise.all(devs.map((d) => drv.domainAllocPaging(d)));
      await Promise.all(devs.map((d, i) => drv.attachDevice(d, doms[i]!)));
      const pa = s.mem.allocFrames(64);
      doms.forEach((d, i) => d.mapPages(A, pa + i * 0x8000, PS, 16, RW));
      for (let i = 0; i < devs.length; i++) expect((await dma(s, i + 1, A + 0x10)).pa).toBe(pa + i * 0x8000 + 0x10);
      const gathers = doms.map((d) => {
        const g = new IotlbGather();
        d.unmapPages(A, PS, 16, g);
        return g;
      });
      await Promise.all([...doms.map((d, i) => d.iotlbSync(gathers[i]!)), ...doms.map((d) => d.flushIotlbAll())]);
      for (let i = 0; i < devs.length; i++) expect((await dma(s, i + 1, A + 0x10)).fault).toBe(FaultReason.TRANSLATION);
      expect((drv as MockDriver).stats().cmdqErrorsRecovered).toBe(0);
    });

    it('shutdown disables the hardware and later calls are ENODEV', async () => {
      const s = await open(mode);
      const free0 = s.mem.freeFrameCount;
      const dev = await s.driver.probeDevice({ rid: 1 });
      const dom = await s.driver.domainAllocPaging(dev);
      await s.driver.attachDevice(dev, dom);
      dom.mapPages(A, 0x10_0000, PS, 64, RW);
      await s.driver.shutdown();
      expect(s.mem.freeFrameCount).toBeGreaterThan(free0);
      expect(await errno(() => s.driver.probeDevice({ rid: 2 }))).toBe('ENODEV');
      expect((await dma(s, 1, A)).fault).toBe(FaultReason.BLOCKED);
    });
  });
}

describe('MockDriver timeouts', () => {
  it('names the instance when the hardware never answers', async () => {
    const s = await open('in-thread');
    const drv = s.driver as MockDriver;
    const hw = s.host.hardware as MockHardware;
    const dev = await drv.probeDevice({ rid: 1 });
    // Halt the command queue behind the driver's back: disable it in hardware state only.
    hw.cmdq.enabled = false;
    const t0 = Date.now();
    const e = await (async () => {
      try {
        await drv.attachDevice(dev, 'blocked');
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(isIommuError(e, 'ETIMEDOUT')).toBe(true);
    expect(String((e as Error).message)).toContain(s.id);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(4000);
    hw.cmdq.enabled = true;
  }, 15000);
});
