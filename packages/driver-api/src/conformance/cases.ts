import { ACCESS_READ, ACCESS_WRITE } from '@iommulab/runtime';
import type { BackendCapabilities } from '../capabilities.js';
import { IotlbGather, Prot } from '../domain.js';
import { FaultReason } from '../fault.js';
import { check, checkEqual, checkErrno } from './check.js';
import type { CaseContext } from './context.js';
import { faultCases } from './fault-cases.js';
import { referenceModelCase } from './reference-model.js';

/**
 * One conformance scenario. `run` throws on failure (so it works with any runner); `needs` says
 * which backends the scenario applies to.
 */
export interface ConformanceCase {
  readonly name: string;
  readonly needs?: (caps: BackendCapabilities) => boolean;
  run(ctx: CaseContext): Promise<void>;
}

const RW = Prot.READ | Prot.WRITE;

/** Page sizes small enough to test against a PhysMem of `memBytes`. */
function testablePageSizes(ctx: CaseContext): number[] {
  return ctx.caps.pageSizes.filter((s) => s <= ctx.stack.mem.size / 8 && s <= 2 * 1024 * 1024);
}

async function attachedDomain(ctx: CaseContext) {
  const dev = await ctx.probe();
  const dom = await ctx.stack.driver.domainAllocPaging(dev, {});
  await ctx.stack.driver.attachDevice(dev, dom);
  return { dev, dom };
}

/** The scenarios every backend must pass. */
export const conformanceCases: readonly ConformanceCase[] = [
  {
    name: 'hw info reports the declared type, and no PASID for a device without one',
    async run(ctx) {
      const dev = await ctx.probe({ pasidBits: 0 });
      const info = ctx.stack.driver.hwInfo(dev);
      checkEqual(info.type, ctx.caps.hwInfoType, 'hwInfo.type');
      checkEqual(info.maxPasidLog2, 0, 'hwInfo.maxPasidLog2 of a device without PASID');
      check(info.data instanceof Uint8Array, 'hwInfo.data is a Uint8Array');
    },
  },
  {
    name: 'probing the same requester id twice is EBUSY',
    async run(ctx) {
      const dev = await ctx.probe();
      await checkErrno(() => ctx.stack.driver.probeDevice({ rid: dev.rid }), 'EBUSY', 'second probe');
    },
  },
  {
    name: 'map then translate gives the mapped address, for every page size',
    async run(ctx) {
      const { dev, dom } = await attachedDomain(ctx);
      let iova = ctx.iovaBase;
      for (const ps of testablePageSizes(ctx)) {
        iova = Math.ceil(iova / ps) * ps;
        const pa = ctx.allocPa(ps, ps);
        checkEqual(dom.mapPages(iova, pa, ps, 1, RW), ps, `mapPages(${ps}) bytes`);
        await dom.iotlbSyncMap(iova, ps);
        for (const off of [0, 8, ps / 2, ps - 4]) {
          for (const access of [ACCESS_READ, ACCESS_WRITE]) {
            const r = await ctx.dma(dev.rid, iova + off, access);
            check(r.ok, `translate iova 0x${(iova + off).toString(16)} (page ${ps}) faulted: ${r.fault}`);
            checkEqual(r.pa, pa + off, `pa of iova 0x${(iova + off).toString(16)}`);
          }
        }
        checkEqual(dom.iovaToPhys(iova + 12), pa + 12, 'iovaToPhys');
        iova += ps;
      }
    },
  },
  {
    name: 'unmap + iotlbSync then translate faults with TRANSLATION',
    async run(ctx) {
      const { dev, dom } = await attachedDomain(ctx);
      const ps = ctx.pageSize;
      const pa = ctx.allocPa(4 * ps, ps);
      checkEqual(dom.mapPages(ctx.iovaBase, pa, ps, 4, RW), 4 * ps, 'map 4 pages');
      await dom.iotlbSyncMap(ctx.iovaBase, 4 * ps);
      checkEqual((await ctx.dma(dev.rid, ctx.iovaBase + ps)).pa, pa + ps, 'translate before unmap');
      const gather = new IotlbGather();
      checkEqual(dom.unmapPages(ctx.iovaBase + ps, ps, 2, gather), 2 * ps, 'unmap 2 pages');
      await dom.iotlbSync(gather);
      for (const i of [1, 2]) {
        const r = await ctx.dma(dev.rid, ctx.iovaBase + i * ps);
        check(!r.ok, `page ${i} still translates after unmap + sync`);
        checkEqual(r.fault, FaultReason.TRANSLATION, `fault of unmapped page ${i}`);
      }
      for (const i of [0, 3]) {
        checkEqual((await ctx.dma(dev.rid, ctx.iovaBase + i * ps)).pa, pa + i * ps, `page ${i} kept`);
      }
      checkEqual(dom.iovaToPhys(ctx.iovaBase + ps), -1, 'iovaToPhys of unmapped page');
      checkEqual(dom.unmapPages(ctx.iovaBase + ps, ps, 1, new IotlbGather()), 0, 'unmap of a hole');
    },
  },
  {
    name: 'permissions are enforced: a read-only page faults on write',
    async run(ctx) {
      const { dev, dom } = await attachedDomain(ctx);
      const ps = ctx.pageSize;
      const pa = ctx.allocPa(ps, ps);
      dom.mapPages(ctx.iovaBase, pa, ps, 1, Prot.READ);
      await dom.iotlbSyncMap(ctx.iovaBase, ps);
      const rd = await ctx.dma(dev.rid, ctx.iovaBase + 16, ACCESS_READ);
      check(rd.ok, 'read of a read-only page faulted');
      checkEqual(rd.pa, pa + 16, 'read pa');
      const wr = await ctx.dma(dev.rid, ctx.iovaBase + 16, ACCESS_WRITE);
      check(!wr.ok, 'write of a read-only page translated');
      checkEqual(wr.fault, FaultReason.PERMISSION, 'fault of a write to a read-only page');
    },
  },
  {
    name: 'two domains are isolated',
    async run(ctx) {
      const a = await attachedDomain(ctx);
      const b = await attachedDomain(ctx);
      const ps = ctx.pageSize;
      const paA = ctx.allocPa(ps, ps);
      const paB = ctx.allocPa(ps, ps);
      a.dom.mapPages(ctx.iovaBase, paA, ps, 1, RW);
      b.dom.mapPages(ctx.iovaBase, paB, ps, 1, RW);
      a.dom.mapPages(ctx.iovaBase + ps, paA, ps, 1, RW);
      await a.dom.iotlbSyncMap(ctx.iovaBase, 2 * ps);
      await b.dom.iotlbSyncMap(ctx.iovaBase, ps);
      checkEqual((await ctx.dma(a.dev.rid, ctx.iovaBase)).pa, paA, 'device A pa');
      checkEqual((await ctx.dma(b.dev.rid, ctx.iovaBase)).pa, paB, 'device B pa');
      const leak = await ctx.dma(b.dev.rid, ctx.iovaBase + ps);
      check(!leak.ok, "device B reached a page mapped only in A's domain");
      checkEqual(leak.fault, FaultReason.TRANSLATION, "fault of B on A's page");
    },
  },
  {
    name: 'detaching (attach to blocked) stops DMA, re-attaching restores it',
    async run(ctx) {
      const { dev, dom } = await attachedDomain(ctx);
      const ps = ctx.pageSize;
      const pa = ctx.allocPa(ps, ps);
      dom.mapPages(ctx.iovaBase, pa, ps, 1, RW);
      await dom.iotlbSyncMap(ctx.iovaBase, ps);
      checkEqual((await ctx.dma(dev.rid, ctx.iovaBase)).pa, pa, 'pa while attached');
      await ctx.stack.driver.attachDevice(dev, 'blocked');
      const r = await ctx.dma(dev.rid, ctx.iovaBase);
      check(!r.ok, 'DMA translated while the device was blocked');
      checkEqual(r.fault, FaultReason.BLOCKED, 'fault while blocked');
      await ctx.stack.driver.attachDevice(dev, dom);
      checkEqual((await ctx.dma(dev.rid, ctx.iovaBase)).pa, pa, 'pa after re-attach');
    },
  },
  {
    name: 'a domain in use cannot be freed (EBUSY); after detach it can',
    async run(ctx) {
      const { dev, dom } = await attachedDomain(ctx);
      await checkErrno(() => dom.free(), 'EBUSY', 'free of an attached domain');
      await ctx.stack.driver.attachDevice(dev, 'blocked');
      await dom.free();
    },
  },
  {
    name: 'mapping over a mapping is EEXIST and changes nothing',
    async run(ctx) {
      const { dev, dom } = await attachedDomain(ctx);
      const ps = ctx.pageSize;
      const pa = ctx.allocPa(3 * ps, ps);
      dom.mapPages(ctx.iovaBase + ps, pa, ps, 1, RW);
      await checkErrno(() => dom.mapPages(ctx.iovaBase, pa + ps, ps, 3, RW), 'EEXIST', 'overlapping map');
      checkEqual(dom.iovaToPhys(ctx.iovaBase), -1, 'page before the overlap stays unmapped');
      checkEqual(dom.iovaToPhys(ctx.iovaBase + 2 * ps), -1, 'page after the overlap stays unmapped');
      checkEqual(dom.iovaToPhys(ctx.iovaBase + ps), pa, 'existing mapping kept');
      await dom.iotlbSyncMap(ctx.iovaBase, 3 * ps);
      checkEqual((await ctx.dma(dev.rid, ctx.iovaBase + ps)).pa, pa, 'existing mapping translates');
    },
  },
  {
    name: 'misaligned maps, unsupported page sizes and IOVAs outside the aperture are EINVAL',
    async run(ctx) {
      const { dom } = await attachedDomain(ctx);
      const ps = ctx.pageSize;
      const pa = ctx.allocPa(2 * ps, ps);
      await checkErrno(() => dom.mapPages(ctx.iovaBase + 4, pa, ps, 1, RW), 'EINVAL', 'misaligned iova');
      await checkErrno(() => dom.mapPages(ctx.iovaBase, pa + 4, ps, 1, RW), 'EINVAL', 'misaligned pa');
      await checkErrno(() => dom.mapPages(ctx.iovaBase, pa, ps * 3, 1, RW), 'EINVAL', 'unsupported page size');
      const last = ctx.caps.aperture.last;
      const beyond = Math.floor((last + 1) / ps) * ps;
      await checkErrno(() => dom.mapPages(beyond, pa, ps, 1, RW), 'EINVAL', 'iova past the aperture');
      if (ctx.caps.aperture.start >= ps) {
        const below = ctx.caps.aperture.start - ps;
        await checkErrno(() => dom.mapPages(below, pa, ps, 1, RW), 'EINVAL', 'iova below the aperture');
      }
      checkEqual(dom.iovaToPhys(ctx.iovaBase), -1, 'nothing mapped by failed calls');
    },
  },
  {
    name: 'a requester id that was never probed faults, without throwing',
    async run(ctx) {
      const r = await ctx.dma(0xfff0, ctx.iovaBase);
      check(!r.ok, 'DMA from an unknown requester id translated');
      check(r.fault !== FaultReason.NONE, 'fault reason is set');
    },
  },
  {
    name: 'a PASID attached to its own domain translates through it; detach blocks it',
    needs: (caps) => caps.pasidBits > 0,
    async run(ctx) {
      const drv = ctx.stack.driver;
      const dev = await ctx.probe({ pasidBits: Math.min(ctx.caps.pasidBits, 20) });
      const ridDom = await drv.domainAllocPaging(dev, { pasid: true });
      const pasidDom = await drv.domainAllocPaging(dev, { pasid: true });
      await drv.attachDevice(dev, ridDom);
      const ps = ctx.pageSize;
      const paRid = ctx.allocPa(ps, ps);
      const paPasid = ctx.allocPa(ps, ps);
      ridDom.mapPages(ctx.iovaBase, paRid, ps, 1, RW);
      pasidDom.mapPages(ctx.iovaBase, paPasid, ps, 1, RW);
      await drv.attachPasid(dev, 5, pasidDom);
      checkEqual((await ctx.dma(dev.rid, ctx.iovaBase, ACCESS_READ, 5)).pa, paPasid, 'pa through PASID 5');
      checkEqual((await ctx.dma(dev.rid, ctx.iovaBase, ACCESS_READ)).pa, paRid, 'pa without PASID');
      const other = await ctx.dma(dev.rid, ctx.iovaBase, ACCESS_READ, 6);
      check(!other.ok, 'an unattached PASID translated');
      await drv.detachPasid(dev, 5);
      const gone = await ctx.dma(dev.rid, ctx.iovaBase, ACCESS_READ, 5);
      check(!gone.ok, 'a detached PASID still translates');
      await drv.detachPasid(dev, 5); // detaching again succeeds
    },
  },
  referenceModelCase,
  ...faultCases,
];
