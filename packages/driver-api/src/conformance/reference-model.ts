import * as fc from 'fast-check';
import { ACCESS_READ, ACCESS_WRITE } from '@iommulab/runtime';
import { IotlbGather, Prot } from '../domain.js';
import { FaultReason } from '../fault.js';
import { checkEqual } from './check.js';
import type { ConformanceCase } from './cases.js';

/**
 * Pages of the window the property test works in: small, so that random sequences often revisit
 * a page (map, DMA, unmap, DMA again is the sequence that exposes a missing invalidation).
 */
const WINDOW_PAGES = 8;
/** Distinct physical pages the test maps from. */
const PA_SLOTS = 16;

type Cmd =
  | { op: 'map'; page: number; count: number; slot: number; writable: boolean }
  | { op: 'unmap'; page: number; count: number }
  | { op: 'dma'; page: number; offset: number; write: boolean };

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({
    op: fc.constant('map' as const),
    page: fc.nat(WINDOW_PAGES - 1),
    count: fc.integer({ min: 1, max: 4 }),
    slot: fc.nat(PA_SLOTS - 4),
    writable: fc.boolean(),
  }),
  fc.record({ op: fc.constant('unmap' as const), page: fc.nat(WINDOW_PAGES - 1), count: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ op: fc.constant('dma' as const), page: fc.nat(WINDOW_PAGES - 1), offset: fc.nat(1023), write: fc.boolean() }),
  fc.record({ op: fc.constant('dma' as const), page: fc.nat(WINDOW_PAGES - 1), offset: fc.nat(1023), write: fc.boolean() }),
);

/**
 * Random map / unmap / DMA sequences against a plain reference model of which IO page maps to
 * which physical page with which permission. Unmap follows the contract: it stops at the first
 * hole, and `iotlbSync` runs after every unmap, so no stale translation may be observed.
 */
export const referenceModelCase: ConformanceCase = {
  name: 'random map/unmap/translate sequences agree with a reference model (fast-check)',
  async run(ctx) {
    const ps = ctx.pageSize;
    const drv = ctx.stack.driver;
    const dev = await ctx.probe();
    const paBase = ctx.allocPa(PA_SLOTS * ps, ps);
    const offsetMask = ps - 1;
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { minLength: 8, maxLength: 48, size: 'max' }), async (cmds) => {
        const dom = await drv.domainAllocPaging(dev, {});
        await drv.attachDevice(dev, dom);
        // model: page index -> { pa, writable }
        const model = new Map<number, { pa: number; writable: boolean }>();
        try {
          for (const c of cmds) {
            const iova = ctx.iovaBase + c.page * ps;
            if (c.op === 'map') {
              const count = Math.min(c.count, WINDOW_PAGES - c.page);
              let clash = false;
              for (let i = 0; i < count; i++) if (model.has(c.page + i)) clash = true;
              const pa = paBase + c.slot * ps;
              const prot = Prot.READ | (c.writable ? Prot.WRITE : 0);
              if (clash) {
                let errno: unknown;
                try {
                  dom.mapPages(iova, pa, ps, count, prot);
                } catch (e) {
                  errno = (e as { errno?: unknown }).errno;
                }
                checkEqual(errno, 'EEXIST', `map over a mapping at page ${c.page}`);
              } else {
                checkEqual(dom.mapPages(iova, pa, ps, count, prot), count * ps, `map bytes at page ${c.page}`);
                for (let i = 0; i < count; i++) model.set(c.page + i, { pa: pa + i * ps, writable: c.writable });
                await dom.iotlbSyncMap(iova, count * ps);
              }
            } else if (c.op === 'unmap') {
              const count = Math.min(c.count, WINDOW_PAGES - c.page);
              let expected = 0;
              while (expected < count && model.has(c.page + expected)) expected++;
              const gather = new IotlbGather();
              checkEqual(dom.unmapPages(iova, ps, count, gather), expected * ps, `unmap bytes at page ${c.page}`);
              for (let i = 0; i < expected; i++) model.delete(c.page + i);
              await dom.iotlbSync(gather);
            } else {
              const off = (c.offset * 4) & offsetMask;
              const r = await ctx.dma(dev.rid, iova + off, c.write ? ACCESS_WRITE : ACCESS_READ);
              const m = model.get(c.page);
              if (m === undefined) {
                checkEqual(r.fault, FaultReason.TRANSLATION, `fault of unmapped page ${c.page}`);
              } else if (c.write && !m.writable) {
                checkEqual(r.fault, FaultReason.PERMISSION, `fault of write to read-only page ${c.page}`);
              } else {
                checkEqual(r.ok, true, `DMA to mapped page ${c.page} succeeds`);
                checkEqual(r.pa, m.pa + off, `pa of page ${c.page} + ${off}`);
              }
            }
          }
        } finally {
          await drv.attachDevice(dev, 'blocked');
          const gather = new IotlbGather();
          dom.unmapPages(ctx.iovaBase, ps, WINDOW_PAGES, gather); // stops at a hole: clear page by page
          for (let p = 0; p < WINDOW_PAGES; p++) dom.unmapPages(ctx.iovaBase + p * ps, ps, 1, gather);
          await dom.iotlbSync(gather);
          await dom.free();
        }
      }),
      { numRuns: ctx.numRuns },
    );
  },
};
