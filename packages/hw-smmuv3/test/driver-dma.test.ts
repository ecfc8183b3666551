/**
 * DMA through the model after driver map / unmap: translations after map, the stale IOTLB entry
 * the model keeps until the driver's invalidation completes (smmuv3.md §12 #17), the exact TLBI
 * sequences of §4.3 (RIL and per-page, ASID / VMID flushes), ATC_INV for ATS masters (§4.4),
 * dirty tracking through HTTU (§3.3 HA/HD, §7.3 DBM), and a fast-check property: after every
 * iotlbSync the driver's iovaToPhys and the hardware agree.
 */
import { FaultReason, IotlbGather, Prot } from '@iommulab/driver-api';
import { ACCESS_READ, ACCESS_WRITE } from '@iommulab/runtime';
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CmdOp, EvtId } from '../src/codec/index.js';
import type { SmmuS1Domain } from '../src/driver/domain-s1.js';
import type { SmmuS2Domain } from '../src/driver/domain-s2.js';
import { DriverRig, type RecordedCmd } from './driver-rig.js';

const RW = Prot.READ | Prot.WRITE;
const MiB = 1024 * 1024;

/** NUM, SCALE, TG, TTL, Leaf, address of a recorded VA/IPA TLBI. */
function tlbi(c: RecordedCmd) {
  return {
    op: c[0] & 0xff,
    num: (c[0] >>> 12) & 0x1f,
    scale: (c[0] >>> 20) & 0x1f,
    leaf: c[2] & 1,
    ttl: (c[2] >>> 8) & 3,
    tg: (c[2] >>> 10) & 3,
    addr: (c[2] & 0xfffff000) + c[3] * 2 ** 32,
    asid: c[1] >>> 16,
    vmid: c[1] & 0xffff,
  };
}

async function s1Stack(hw: Record<string, unknown> = {}, spec: { rid?: number; ats?: boolean } = {}) {
  const r = await DriverRig.create({ hw });
  const dev = await r.drv.probeDevice({ rid: spec.rid ?? 3, ats: spec.ats });
  const dom = (await r.drv.domainAllocPaging(dev)) as SmmuS1Domain;
  await r.drv.attachDevice(dev, dom);
  r.rec.take();
  return { r, dev, dom };
}

describe('map / translate / unmap through the model', () => {
  it('every page size translates; unmapped faults F_TRANSLATION', async () => {
    const { r, dom } = await s1Stack();
    let iova = 0;
    for (const ps of [4096, 2 * MiB]) {
      iova = Math.ceil(iova / ps) * ps;
      const pa = r.mem.allocFrames(ps / 4096, ps / 4096);
      expect(dom.mapPages(iova, pa, ps, 1, RW)).toBe(ps);
      for (const off of [0, 8, ps / 2, ps - 4]) expect(r.dma(3, iova + off, ACCESS_WRITE)).toMatchObject({ ok: true, pa: pa + off });
      iova += ps;
    }
    // 1 GiB block: PA need not be backed by PhysMem for a translation.
    expect(dom.mapPages(1 << 30, 1 << 30, 1 << 30, 1, Prot.READ)).toBe(1 << 30);
    expect(r.dma(3, (1 << 30) + 0x1234_5678).pa).toBe((1 << 30) + 0x1234_5678);
    expect(r.dma(3, (1 << 30) + 8, ACCESS_WRITE)).toMatchObject({ ok: false, fault: FaultReason.PERMISSION, faultDetail: EvtId.F_PERMISSION });
    expect(r.dma(3, 0x4000_0000_0000)).toMatchObject({ ok: false, fault: FaultReason.TRANSLATION, faultDetail: EvtId.F_TRANSLATION });
  });

  it('a stale translation survives unmap until iotlbSync (the model caches), then faults', async () => {
    const { r, dom } = await s1Stack();
    const pa = r.mem.allocFrames(4);
    dom.mapPages(0x10000, pa, 4096, 4, RW);
    expect(r.dma(3, 0x11000).pa).toBe(pa + 0x1000); // cached now
    const g = new IotlbGather();
    expect(dom.unmapPages(0x11000, 4096, 2, g)).toBe(8192);
    expect(dom.iovaToPhys(0x11000)).toBe(-1);
    expect(r.dma(3, 0x11000)).toMatchObject({ ok: true, pa: pa + 0x1000 }); // stale
    await dom.iotlbSync(g);
    expect(g.empty).toBe(true);
    expect(r.dma(3, 0x11000)).toMatchObject({ ok: false, fault: FaultReason.TRANSLATION });
    expect(r.dma(3, 0x13000).pa).toBe(pa + 0x3000);
    // §4.3 with RIL: 2 pages → SCALE = ctz(2) = 1, NUM = 1 − 1 = 0, TG 4K, TTL 3, Leaf, ASID 1; then CMD_SYNC.
    const cmds = r.rec.take();
    expect(cmds.map((c) => c[0] & 0xff)).toEqual([CmdOp.TLBI_NH_VA, CmdOp.SYNC]);
    expect(tlbi(cmds[0])).toEqual({ op: CmdOp.TLBI_NH_VA, num: 0, scale: 1, leaf: 1, ttl: 3, tg: 1, addr: 0x11000, asid: 1, vmid: 0 });
  });

  it('RIL: 64 MiB of 4 KiB pages is one TLBI_NH_VA (SCALE 14); flushIotlbAll is TLBI_NH_ASID', async () => {
    const { r, dom } = await s1Stack();
    dom.mapPages(0x4000_0000, 0x8000_0000, 4096, 16384, RW); // PAs need not be backed by PhysMem
    const g = new IotlbGather();
    dom.unmapPages(0x4000_0000, 4096, 16384, g);
    await dom.iotlbSync(g);
    const cmds = r.rec.take().filter((c) => (c[0] & 0xff) === CmdOp.TLBI_NH_VA);
    // Freed L3 tables are walk-flushed (Leaf = 0) as they go; the gather ends with one range.
    const leaf = cmds.filter((c) => (c[2] & 1) === 1).map(tlbi);
    expect(leaf).toEqual([{ op: CmdOp.TLBI_NH_VA, num: 0, scale: 14, leaf: 1, ttl: 3, tg: 1, addr: 0x4000_0000, asid: 1, vmid: 0 }]);
    await dom.flushIotlbAll();
    expect(r.rec.take()).toEqual([[0x11, 0x0001_0000, 0, 0], expect.anything()]);
  });

  it('without RIL: one TG = 0 TLBI per page; 512 pages or more → TLBI_NH_ASID', async () => {
    const { r, dom } = await s1Stack({ ril: false });
    const pa = r.mem.allocFrames(600);
    dom.mapPages(0x20_0000, pa, 4096, 600, RW);
    let g = new IotlbGather();
    dom.unmapPages(0x20_0000, 4096, 3, g);
    await dom.iotlbSync(g);
    const cmds = r.rec.take();
    expect(cmds.map((c) => c[0] & 0xff)).toEqual([CmdOp.TLBI_NH_VA, CmdOp.TLBI_NH_VA, CmdOp.TLBI_NH_VA, CmdOp.SYNC]);
    expect(cmds.slice(0, 3).map((c) => [c[2], c[3]])).toEqual([[0x20_0001, 0], [0x20_1001, 0], [0x20_2001, 0]]);
    g = new IotlbGather();
    dom.unmapPages(0x20_3000, 4096, 597, g);
    await dom.iotlbSync(g);
    const ops = r.rec.ops();
    expect(ops.slice(-2)).toEqual([CmdOp.TLBI_NH_ASID, CmdOp.SYNC]);
    expect(r.dma(3, 0x25_0000).ok).toBe(false);
  });

  it('stage-2 domain: TLBI_S2_IPA with the VMID, then TLBI_NH_ALL of the VMID for a nest parent', async () => {
    const r = await DriverRig.create();
    const dev = await r.drv.probeDevice({ rid: 4 });
    const dom = (await r.drv.domainAllocPaging(dev, { nestParent: true })) as SmmuS2Domain;
    await r.drv.attachDevice(dev, dom);
    const pa = r.mem.allocFrames(8);
    dom.mapPages(0x8000, pa, 4096, 8, RW);
    expect(r.dma(4, 0x9004).pa).toBe(pa + 0x1004);
    r.rec.take();
    const g = new IotlbGather();
    dom.unmapPages(0x9000, 4096, 1, g);
    await dom.iotlbSync(g);
    const cmds = r.rec.take();
    expect(cmds.map((c) => c[0] & 0xff)).toEqual([CmdOp.TLBI_S2_IPA, CmdOp.SYNC, CmdOp.TLBI_NH_ALL, CmdOp.SYNC]);
    expect(tlbi(cmds[0])).toMatchObject({ num: 0, scale: 0, leaf: 1, ttl: 3, tg: 1, addr: 0x9000, vmid: 1 });
    expect(cmds[2]).toEqual([0x10, 1, 0, 0]);
    expect(r.dma(4, 0x9004).ok).toBe(false);
    await dom.flushIotlbAll();
    expect(r.rec.ops()).toEqual([CmdOp.TLBI_S12_VMALL, CmdOp.SYNC, CmdOp.TLBI_NH_ALL, CmdOp.SYNC]);
  });

  it('ATS master: TLBIs, then ATC_INV of the §4.4 span, then CMD_SYNC', async () => {
    const { r, dom } = await s1Stack({}, { rid: 6, ats: true });
    const pa = r.mem.allocFrames(16);
    dom.mapPages(0x7000, pa, 4096, 5, RW); // page 11 keeps the L3 table alive (no walk flush)
    const g = new IotlbGather();
    dom.unmapPages(0x7000, 4096, 4, g); // pages [7, 10] → span [0, 15], Size 4
    await dom.iotlbSync(g);
    const cmds = r.rec.take();
    expect(cmds.map((c) => c[0] & 0xff)).toEqual([CmdOp.TLBI_NH_VA, CmdOp.SYNC, CmdOp.ATC_INV, CmdOp.SYNC]);
    expect(cmds[2]).toEqual([0x40, 6, 0x4, 0]);
  });

  it('mixed leaf sizes in one gather: TTL = 0 (any level) so no entry escapes the range TLBI', async () => {
    const { r, dom } = await s1Stack();
    const pa = r.mem.allocFrames(1024, 512);
    dom.mapPages(0x20_0000, pa, 2 * MiB, 1, RW);
    dom.mapPages(0x40_0000, pa, 4096, 1, RW);
    expect(r.dma(3, 0x30_0000).ok).toBe(true);
    const g = new IotlbGather();
    dom.unmapPages(0x20_0000, 2 * MiB, 1, g);
    dom.unmapPages(0x40_0000, 4096, 1, g);
    await dom.iotlbSync(g);
    const t = r.rec.take().filter((c) => (c[0] & 0xff) === CmdOp.TLBI_NH_VA).map(tlbi);
    expect(t.every((c) => c.ttl === 0 && c.tg === 1)).toBe(true);
    expect(r.dma(3, 0x30_0000).ok).toBe(false);
  });

  it('bad maps are EINVAL / EEXIST and change nothing', async () => {
    const { r, dom } = await s1Stack();
    const pa = r.mem.allocFrames(2);
    dom.mapPages(0x2000, pa, 4096, 1, RW);
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as { errno: string }).errno;
      }
      return 'OK';
    };
    expect(code(() => dom.mapPages(0x1000, pa, 4096, 2, RW))).toBe('EEXIST');
    expect(dom.iovaToPhys(0x1000)).toBe(-1);
    expect(code(() => dom.mapPages(0x1004, pa, 4096, 1, RW))).toBe('EINVAL');
    expect(code(() => dom.mapPages(0x1000, pa, 8192, 1, RW))).toBe('EINVAL');
    expect(code(() => dom.mapPages(2 ** 48, pa, 4096, 1, RW))).toBe('EINVAL');
    expect(code(() => dom.mapPages(2 ** 48 - 4096, pa, 4096, 2, RW))).toBe('EINVAL');
  });
});

describe('dirty tracking (HTTU, smmuv3.md §3.3, §7.3)', () => {
  it('a DMA write marks the page dirty; read-and-clear reports it once and re-arms it', async () => {
    const r = await DriverRig.create();
    const dev = await r.drv.probeDevice({ rid: 3 });
    const dom = (await r.drv.domainAllocPaging(dev, { dirtyTracking: true })) as SmmuS1Domain;
    await r.drv.attachDevice(dev, dom);
    const m = r.drv.masterOf(dev);
    const w = m.cdTable!.cdWord(0);
    expect((r.mem.u32[w + 1] >>> 10) & 3).toBe(3); // CD.HD (42) | HA (43)
    const pa = r.mem.allocFrames(4);
    dom.mapPages(0x10000, pa, 4096, 4, RW);
    await dom.setDirtyTracking(true);
    const dirty = async (noClear = false) => {
      const out: Array<[number, number]> = [];
      await dom.readAndClearDirty(0x10000, 0x4000, { noClear }, (i, l) => out.push([i, l]));
      return out;
    };
    // Writable leaves start dirty (DBM && !AP[2]): the first read clears the slate, as iommufd does.
    expect(await dirty()).toHaveLength(4);
    expect(await dirty()).toEqual([]);
    expect(r.dma(3, 0x11008, ACCESS_WRITE).ok).toBe(true);
    expect(r.dma(3, 0x12008, ACCESS_READ).ok).toBe(true);
    expect(await dirty(true)).toEqual([[0x11000, 4096]]);
    expect(await dirty()).toEqual([[0x11000, 4096]]);
    expect(await dirty()).toEqual([]);
    // Cleared entries were invalidated: the next write walks and sets dirty again.
    expect(r.dma(3, 0x11010, ACCESS_WRITE).ok).toBe(true);
    expect(await dirty()).toEqual([[0x11000, 4096]]);
  });
});

describe('property: iovaToPhys and the hardware agree after every iotlbSync (fast-check)', () => {
  it('random map / unmap / sync sequences (RIL and per-page invalidation)', async () => {
    for (const ril of [true, false]) {
      const { r, dom } = await s1Stack({ ril });
      const PAGES = 64;
      const base = 0x100_0000;
      const paBase = r.mem.allocFrames(PAGES);
      type Op = { kind: 'map'; page: number; count: number; slot: number } | { kind: 'unmap'; page: number; count: number } | { kind: 'sync' } | { kind: 'dma'; page: number };
      const op: fc.Arbitrary<Op> = fc.oneof(
        fc.record({ kind: fc.constant('map' as const), page: fc.nat(PAGES - 1), count: fc.integer({ min: 1, max: 8 }), slot: fc.nat(PAGES - 8) }),
        fc.record({ kind: fc.constant('unmap' as const), page: fc.nat(PAGES - 1), count: fc.integer({ min: 1, max: 12 }) }),
        fc.constant({ kind: 'sync' as const }),
        fc.record({ kind: fc.constant('dma' as const), page: fc.nat(PAGES - 1) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 40 }), fc.array(fc.nat(PAGES - 1), { minLength: 4, maxLength: 8 }), async (ops, samples) => {
          const g = new IotlbGather();
          const agree = () => {
            for (const p of samples) {
              const iova = base + p * 4096 + 0x18;
              const want = dom.iovaToPhys(iova);
              const got = r.dma(3, iova);
              if (want < 0) expect(got).toMatchObject({ ok: false, fault: FaultReason.TRANSLATION });
              else expect(got).toMatchObject({ ok: true, pa: want });
            }
          };
          try {
            for (const o of ops) {
              if (o.kind === 'map') {
                const count = Math.min(o.count, PAGES - o.page);
                try {
                  dom.mapPages(base + o.page * 4096, paBase + o.slot * 4096, 4096, count, RW);
                } catch (e) {
                  expect((e as { errno: string }).errno).toBe('EEXIST');
                }
              } else if (o.kind === 'unmap') {
                dom.unmapPages(base + o.page * 4096, 4096, Math.min(o.count, PAGES - o.page), g);
              } else if (o.kind === 'sync') {
                await dom.iotlbSync(g);
                agree();
              } else {
                r.dma(3, base + o.page * 4096); // fills the TLB: stale entries must be invalidated
              }
            }
            await dom.iotlbSync(g);
            agree();
          } finally {
            for (let p = 0; p < PAGES; p++) dom.unmapPages(base + p * 4096, 4096, 1, g);
            await dom.iotlbSync(g);
          }
        }),
        { numRuns: 60 },
      );
    }
  });
});
