/**
 * The driver's command-queue producer (smmuv3.md §1.5, §4.5): batches larger than the ring, ring
 * wrap-around, concurrent submitters, CERROR_ILL recovery as Linux (the bad entry becomes a
 * CMD_SYNC, GERRORN := GERROR), and bounded waits (ETIMEDOUT) when nothing consumes; plus the
 * driver with its model in a worker thread (completion and fault delivery through `regs.irq`).
 */
import { FaultReason, IotlbGather, Prot, openBackend, type IommuFault } from '@iommulab/driver-api';
import { PhysMem, RegisterFile, dmaRequest } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { CmdOp, GERROR_CMDQ_ERR, SMMU_CMDQ_CONS, SMMU_GERROR, SMMU_GERRORN, SMMU_REG_BYTES } from '../src/codec/index.js';
import { cmdOpOnly, cmdTlbiNhAsid } from '../src/driver/cmd-build.js';
import { SmmuCmdq } from '../src/driver/cmdq.js';
import { DriverRig } from './driver-rig.js';

describe('command queue producer', () => {
  it('more commands than the ring holds go in several batches, each ending with a CMD_SYNC', async () => {
    const r = await DriverRig.create({ drv: { driverCmdqLog2: 7 } });
    const q = r.drv.cmdq;
    const before = q.stats.batches;
    await q.submit(300, (u32, w, k) => cmdTlbiNhAsid(u32, w, k + 1, 0));
    const cmds = r.rec.take();
    expect(cmds.filter((c) => (c[0] & 0xff) === CmdOp.TLBI_NH_ASID).map((c) => c[1] >>> 16)).toEqual(Array.from({ length: 300 }, (_, k) => k + 1));
    expect(q.stats.batches - before).toBe(3); // 127 + 127 + 46, each with its sync
    expect(cmds.filter((c) => (c[0] & 0xff) === CmdOp.SYNC)).toHaveLength(3);
    // Wrap many times, with concurrent submitters.
    await Promise.all(Array.from({ length: 50 }, (_, i) => q.submit(5, (u32, w) => cmdTlbiNhAsid(u32, w, i, 0))));
    expect(r.regs.read32(SMMU_CMDQ_CONS) & 0xff).toBe(q.shadowProd);
  });

  it('CERROR_ILL: the bad command is replaced by a CMD_SYNC, the error acknowledged, the batch completes', async () => {
    const r = await DriverRig.create();
    const q = r.drv.cmdq;
    await q.submit(3, (u32, w, k) => (k === 1 ? cmdOpOnly(u32, w, 0x07) : cmdTlbiNhAsid(u32, w, 9, 0)));
    expect(q.stats.illegal).toBe(1);
    expect(Array.from(q.lastIllegal!)).toEqual([0x07, 0, 0, 0]);
    expect(r.regs.read32(SMMU_GERRORN)).toBe(r.regs.read32(SMMU_GERROR));
    expect(r.regs.read32(SMMU_GERROR) & GERROR_CMDQ_ERR).toBe(GERROR_CMDQ_ERR);
    // The queue works on.
    await r.drv.domainAllocPaging(await r.drv.probeDevice({ rid: 1 }));
    await q.submit(1, (u32, w) => cmdTlbiNhAsid(u32, w, 1, 0));
  });

  it('nothing consumes: submit rejects with ETIMEDOUT after timeoutMs, issue too', async () => {
    const mem = PhysMem.create(1024 * 1024);
    const regs = RegisterFile.create(SMMU_REG_BYTES);
    const base = mem.allocFrames(4, 4);
    for (const msiPoll of [false, true]) {
      const q = new SmmuCmdq({ instanceId: 'dead', mem, regs, base, log2: 8, timeoutMs: 20, msiPoll });
      await expect(q.submit(1, (u32, w) => cmdOpOnly(u32, w, CmdOp.TLBI_NSNH_ALL))).rejects.toMatchObject({ errno: 'ETIMEDOUT' });
      await expect(q.issue(1, (u32, w) => cmdOpOnly(u32, w, CmdOp.TLBI_NSNH_ALL))).rejects.toMatchObject({ errno: 'ETIMEDOUT' });
    }
  });
});

describe('driver with the model in its worker', () => {
  it('map, translate, unmap + sync, and events delivered through the irq doorbell', async () => {
    const stack = await openBackend(new URL('../src/index.ts', import.meta.url).href, { mode: 'worker', memBytes: 16 * 1024 * 1024, timeoutMs: 5000 });
    try {
      const drv = stack.driver;
      const dev = await drv.probeDevice({ rid: 2 });
      const dom = await drv.domainAllocPaging(dev);
      await drv.attachDevice(dev, dom);
      const pa = stack.mem.allocFrames(2);
      dom.mapPages(0x3000, pa, 4096, 2, Prot.READ | Prot.WRITE);
      expect((await stack.port.translate(dmaRequest({ rid: 2, iova: 0x3010 }))).pa).toBe(pa + 0x10);
      const g = new IotlbGather();
      dom.unmapPages(0x3000, 4096, 2, g);
      await dom.iotlbSync(g);
      const seen: IommuFault[] = [];
      const got = new Promise<void>((resolve) =>
        drv.onFault((f) => {
          seen.push(f);
          resolve();
        }),
      );
      const res = await stack.port.translate(dmaRequest({ rid: 2, iova: 0x3010 }));
      expect(res.fault).toBe(FaultReason.TRANSLATION);
      await got;
      expect(seen[0]).toMatchObject({ kind: 'event', rid: 2, addr: 0x3010, reason: FaultReason.TRANSLATION });
    } finally {
      await stack.close();
    }
  });
});
