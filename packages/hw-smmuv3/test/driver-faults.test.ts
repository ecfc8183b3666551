/**
 * Fault paths of the driver: EVTQ draining into driver-api FaultEvents (smmuv3.md §5.4) on the
 * interrupt and in drainFaults, overflow detection and acknowledgement (§1.5, §12 #4), the PRI
 * round trip (§6: hw.pageRequest → PageRequest → pageResponse → CMD_PRI_RESP → the device's
 * response), automatic DENY without a handler, and the stall round trip (Stall = 1 record →
 * stall PageRequest → CMD_RESUME).
 */
import { FaultReason, PageResponseCode, PgFaultPerm, Prot, type IommuFault } from '@iommulab/driver-api';
import { ACCESS_READ, ACCESS_WRITE } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { CmdOp, EvtId, Q_OVF, SMMU_EVTQ_CONS, SMMU_EVTQ_PROD } from '../src/codec/index.js';
import { DriverRig } from './driver-rig.js';

const RW = Prot.READ | Prot.WRITE;
const tick = () => new Promise((r) => setImmediate(r));

describe('event queue (smmuv3.md §5.4)', () => {
  it('a translation fault is drained on the interrupt into a FaultEvent', async () => {
    const r = await DriverRig.create();
    const dev = await r.drv.probeDevice({ rid: 3, pasidBits: 4 });
    const dom = await r.drv.domainAllocPaging(dev, { pasid: true });
    await r.drv.attachDevice(dev, dom);
    const seen: IommuFault[] = [];
    r.drv.onFault((f) => seen.push(f));
    expect(r.dma(3, 0x1234_5000, ACCESS_WRITE)).toMatchObject({ ok: false, fault: FaultReason.TRANSLATION });
    await tick();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ kind: 'event', rid: 3, pasid: -1, addr: 0x1234_5000, reason: FaultReason.TRANSLATION, detail: EvtId.F_TRANSLATION, access: ACCESS_WRITE });
    // a bad SSID: C_BAD_SUBSTREAMID with the SSID reported
    r.dma(3, 0x1000, ACCESS_READ, 17); // SSID ≥ 2^S1CDMax
    expect(await r.drv.drainFaults()).toBe(1);
    expect(seen[1]).toMatchObject({ kind: 'event', rid: 3, reason: FaultReason.BAD_PASID, detail: EvtId.C_BAD_SUBSTREAMID });
    expect(r.regs.read32(SMMU_EVTQ_CONS)).toBe(r.regs.read32(SMMU_EVTQ_PROD));
  });

  it('overflow: OVFLG detected, records before it delivered, then an overflow report; OVACKFLG := OVFLG', async () => {
    const r = await DriverRig.create({ drv: { driverEvtqLog2: 2 } });
    const dev = await r.drv.probeDevice({ rid: 3 });
    await r.drv.attachDevice(dev, await r.drv.domainAllocPaging(dev));
    const seen: IommuFault[] = [];
    r.drv.onFault((f) => seen.push(f));
    for (let i = 0; i < 10; i++) r.dma(3, 0x10_0000 + i * 4096); // synchronous: no drain in between
    expect((r.regs.read32(SMMU_EVTQ_PROD) & Q_OVF) >>> 0).toBe(Q_OVF);
    expect(await r.drv.drainFaults()).toBe(4);
    expect(seen.slice(0, 4).map((f) => f.kind === 'event' && f.addr)).toEqual([0x10_0000, 0x10_1000, 0x10_2000, 0x10_3000]);
    // The drain that saw OVFLG reports it after the records (driver-api FaultQueueOverflow).
    expect(seen[4]).toEqual({ kind: 'overflow', queue: 'event' });
    expect(r.drv.stats().evtqOverflows).toBe(1);
    expect((r.regs.read32(SMMU_EVTQ_CONS) & Q_OVF) >>> 0).toBe(Q_OVF);
    // The queue records again after the acknowledgement.
    r.dma(3, 0x20_0000);
    await tick();
    expect(seen).toHaveLength(6);
    expect(seen[5]!.kind).toBe('event');
    expect(r.drv.stats().evtqOverflows).toBe(1);
  });
});

describe('PRI (smmuv3.md §6)', () => {
  it('round trip: page request → PageRequest → pageResponse SUCCESS → CMD_PRI_RESP Resp 2 → device', async () => {
    const r = await DriverRig.create();
    const dev = await r.drv.probeDevice({ rid: 5, ats: true, pri: true, pasidBits: 8 });
    const dom = await r.drv.domainAllocPaging(dev, { pasid: true });
    await r.drv.attachDevice(dev, dom);
    await r.drv.attachPasid(dev, 3, dom);
    const seen: IommuFault[] = [];
    r.drv.onFault((f) => seen.push(f));
    expect(r.hw.pageRequest({ rid: 5, pasid: 3, addr: 0x7000, perm: PgFaultPerm.READ | PgFaultPerm.WRITE, grpid: 7, last: false })).toBe(true);
    expect(r.hw.pageRequest({ rid: 5, pasid: 3, addr: 0x8000, perm: PgFaultPerm.READ, grpid: 7, last: true })).toBe(true);
    await tick();
    expect(seen).toEqual([
      { kind: 'page-request', rid: 5, pasid: 3, grpid: 7, perm: 3, addr: 0x7000, last: false },
      { kind: 'page-request', rid: 5, pasid: 3, grpid: 7, perm: 1, addr: 0x8000, last: true },
    ]);
    r.rec.take();
    dom.mapPages(0x7000, r.mem.allocFrames(2), 4096, 2, RW);
    await r.drv.pageResponse(dev, { rid: 5, pasid: 3, grpid: 7, code: PageResponseCode.SUCCESS });
    expect(r.rec.take()).toEqual([[(CmdOp.PRI_RESP | (1 << 11) | (3 << 12)) >>> 0, 5, (2 << 12) | 7, 0]]); // no CMD_SYNC
    expect(r.hw.takePageResponses()).toEqual([{ rid: 5, pasid: 3, grpid: 7, code: PageResponseCode.SUCCESS }]);
    await r.drv.pageResponse(dev, { rid: 5, pasid: -1, grpid: 8, code: PageResponseCode.INVALID });
    expect(r.rec.take()[0][2]).toBe((1 << 12) | 8); // Resp 0b01 InvalidRequest (IHI 0070 §4.5.2)
    expect(r.hw.takePageResponses()).toEqual([{ rid: 5, pasid: -1, grpid: 8, code: PageResponseCode.INVALID }]);
  });

  it('nobody listening: the group is denied once its last request arrives (as Linux); stop markers are not answered', async () => {
    const r = await DriverRig.create();
    const dev = await r.drv.probeDevice({ rid: 5, pri: true, pasidBits: 4 });
    await r.drv.attachDevice(dev, await r.drv.domainAllocPaging(dev));
    r.hw.pageRequest({ rid: 5, pasid: -1, addr: 0x7000, perm: PgFaultPerm.READ, grpid: 1, last: false });
    r.hw.pageRequest({ rid: 5, pasid: -1, addr: 0x8000, perm: PgFaultPerm.READ, grpid: 1, last: true });
    r.hw.pageRequest({ rid: 5, pasid: 2, addr: 0, perm: 0, grpid: 2, last: true }); // stop marker
    await r.drv.drainFaults();
    await tick();
    expect(r.hw.takePageResponses()).toEqual([{ rid: 5, pasid: -1, grpid: 1, code: PageResponseCode.INVALID }]);
  });

  it('a handler that declines a page request (returns false) leaves it to the driver: the Last is answered InvalidRequest once (iommu_report_device_fault failed)', async () => {
    const r = await DriverRig.create();
    const dev = await r.drv.probeDevice({ rid: 5, pri: true, pasidBits: 4 });
    await r.drv.attachDevice(dev, await r.drv.domainAllocPaging(dev));
    const seen: IommuFault[] = [];
    r.drv.onFault((f) => {
      seen.push(f);
      return false;
    });
    r.hw.pageRequest({ rid: 5, pasid: -1, addr: 0x7000, perm: PgFaultPerm.READ, grpid: 4, last: false });
    r.hw.pageRequest({ rid: 5, pasid: -1, addr: 0x8000, perm: PgFaultPerm.WRITE, grpid: 4, last: true });
    await r.drv.drainFaults();
    await tick();
    expect(seen.map((f) => f.kind === 'page-request' && f.last)).toEqual([false, true]);
    expect(r.hw.takePageResponses()).toEqual([{ rid: 5, pasid: -1, grpid: 4, code: PageResponseCode.INVALID }]);
    // A second handler that takes it: the driver no longer answers.
    r.drv.onFault(() => undefined);
    r.hw.pageRequest({ rid: 5, pasid: -1, addr: 0x9000, perm: PgFaultPerm.READ, grpid: 5, last: true });
    await r.drv.drainFaults();
    await tick();
    expect(r.hw.takePageResponses()).toEqual([]);
  });

  it('PRIQ overflow (PROD.OVFLG, smmuv3.md §6): the drain that sees it ends with a page-request overflow report', async () => {
    const r = await DriverRig.create({ drv: { driverPriqLog2: 1 } });
    const dev = await r.drv.probeDevice({ rid: 5, pri: true });
    await r.drv.attachDevice(dev, await r.drv.domainAllocPaging(dev));
    const seen: IommuFault[] = [];
    r.drv.onFault((f) => seen.push(f));
    for (let i = 0; i < 4; i++) r.hw.pageRequest({ rid: 5, pasid: -1, addr: 0x1000 * i, perm: PgFaultPerm.READ, grpid: i, last: false });
    await r.drv.drainFaults();
    expect(seen.map((f) => f.kind)).toEqual(['page-request', 'page-request', 'overflow']);
    expect(seen[2]).toEqual({ kind: 'overflow', queue: 'page-request' });
    expect(r.drv.stats().priqOverflows).toBe(1);
  });

  it('iopfCapable (IOMMU_DEV_FEAT_IOPF): a PRI function on an SMMU with IDR0.PRI, or a stall-capable master; not a plain master; ENODEV for an unprobed device', async () => {
    const r = await DriverRig.create({ drv: { stallRids: [7] } });
    const pri = await r.drv.probeDevice({ rid: 5, ats: true, pri: true });
    const plain = await r.drv.probeDevice({ rid: 6 });
    const stall = await r.drv.probeDevice({ rid: 7 });
    expect([r.drv.iopfCapable(pri), r.drv.iopfCapable(plain), r.drv.iopfCapable(stall)]).toEqual([true, false, true]);
    await r.drv.releaseDevice(plain);
    expect(() => r.drv.iopfCapable(plain)).toThrow(expect.objectContaining({ errno: 'ENODEV' }));
  });

  it('pageResponse refuses a device with neither PRI nor stall, and bad codes', async () => {
    const r = await DriverRig.create();
    const dev = await r.drv.probeDevice({ rid: 5 });
    await expect(r.drv.pageResponse(dev, { rid: 5, pasid: -1, grpid: 1, code: 0 })).rejects.toMatchObject({ errno: 'EINVAL' });
    const pri = await r.drv.probeDevice({ rid: 6, pri: true });
    await expect(r.drv.pageResponse(pri, { rid: 6, pasid: -1, grpid: 1, code: 7 as 0 })).rejects.toMatchObject({ errno: 'EINVAL' });
    await expect(r.drv.pageResponse(pri, { rid: 6, pasid: -1, grpid: 512, code: 0 })).rejects.toMatchObject({ errno: 'EINVAL' });
  });
});

describe('stall model (smmuv3.md §5.2, §5.4)', () => {
  it('round trip: Stall = 1 record → stall PageRequest (grpid = STAG) → CMD_RESUME RETRY → the transaction completes', async () => {
    const r = await DriverRig.create({ drv: { stallRids: [6] } });
    const dev = await r.drv.probeDevice({ rid: 6 });
    const dom = await r.drv.domainAllocPaging(dev);
    await r.drv.attachDevice(dev, dom);
    const m = r.drv.masterOf(dev);
    expect(r.mem.u32[m.cdTable!.cdWord(0) + 1] & (1 << 12)).toBe(1 << 12); // CD.S (bit 44)
    expect(r.ste(6)[2] & (1 << 27)).toBe(0); // no S1STALLD
    const seen: IommuFault[] = [];
    r.drv.onFault((f) => seen.push(f));
    const res = r.dma(6, 0x5_0000, ACCESS_WRITE);
    expect(res).toMatchObject({ ok: false, fault: FaultReason.PAGE_REQUEST });
    await tick();
    expect(seen).toHaveLength(1);
    const f = seen[0];
    expect(f).toMatchObject({ kind: 'page-request', rid: 6, pasid: -1, perm: PgFaultPerm.WRITE, addr: 0x5_0000, last: true, stall: true });
    const stag = (f as { grpid: number }).grpid;
    expect(r.hw.pendingStalls()).toEqual([expect.objectContaining({ sid: 6, stag })]);
    const pa = r.mem.allocFrame();
    dom.mapPages(0x5_0000, pa, 4096, 1, RW);
    r.rec.take();
    await r.drv.pageResponse(dev, { rid: 6, pasid: -1, grpid: stag, code: PageResponseCode.SUCCESS });
    expect(r.rec.take()).toEqual([[(CmdOp.RESUME | (1 << 12)) >>> 0, 6, stag, 0]]); // RETRY, no CMD_SYNC
    expect(r.hw.takeStallResolutions()).toEqual([expect.objectContaining({ sid: 6, stag, action: 'retry' })]);
    expect(r.dma(6, 0x5_0010, ACCESS_WRITE)).toMatchObject({ ok: true, pa: pa + 0x10 });
  });

  it('INVALID → CMD_RESUME ABORT; nobody listening → ABORT automatically', async () => {
    const r = await DriverRig.create({ drv: { stallRids: [6] } });
    const dev = await r.drv.probeDevice({ rid: 6 });
    await r.drv.attachDevice(dev, await r.drv.domainAllocPaging(dev));
    r.dma(6, 0x5_0000);
    await r.drv.drainFaults();
    await tick();
    expect(r.hw.takeStallResolutions()).toEqual([expect.objectContaining({ sid: 6, action: 'abort' })]);
    const seen: IommuFault[] = [];
    r.drv.onFault((f) => seen.push(f));
    r.dma(6, 0x6_0000);
    await tick();
    const stag = (seen[0] as { grpid: number }).grpid;
    await r.drv.pageResponse(dev, { rid: 6, pasid: -1, grpid: stag, code: PageResponseCode.INVALID });
    expect(r.hw.takeStallResolutions()).toEqual([expect.objectContaining({ sid: 6, stag, action: 'abort' })]);
  });
});
