/**
 * PCIe PRI end to end on the Arm SMMUv3 backend (in-thread, so the device side of the model is
 * reachable): a device's ATS translation misses, it sends a PRG (PriFunction → device port →
 * SMMU PRI queue), the driver drains the PRIQ into the IopfQueue, which routes each group to the
 * FaultQueue of the attachment; the test reads the 40-byte records, maps the pages, writes the
 * 8-byte responses; the driver issues CMD_PRI_RESP, the SMMU delivers the PRG Response to the
 * device, which retries its ATS translation (vmm-and-faults.md §3.2–§3.4, §4.2, §4.5, §4.6).
 */
import { ACCESS_READ, ACCESS_WRITE, FaultReason, IommuError, NO_PASID, PageResponseCode, PgFaultPerm, Prot } from '@iommulab/driver-api';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FaultQueue,
  IOMMU_HWPT_PGFAULT_BYTES,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE as LAST,
  IOMMU_PGFAULT_FLAGS_PASID_VALID as PV,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  PriStatus,
  decodePgfaults,
} from '../src/index.js';
import {
  PAGE,
  PriDevice,
  attachment,
  concat,
  openSmmuFaultRig,
  pattern,
  pgfaultBytes,
  priRespCmd,
  responses,
  settle,
  type SmmuFaultRig,
} from './smmuv3-fixture.js';

const IOVA = 0x4000_0000;
const A = 0x10;
const B = 0x11;
const C = 0x12;
const R = PgFaultPerm.READ;
const W = PgFaultPerm.WRITE;
const RW = R | W;
const PROT = Prot.READ | Prot.WRITE;
const REC = IOMMU_HWPT_PGFAULT_BYTES;

describe('SMMUv3 PRI through IopfQueue and FaultQueue (in-thread model)', () => {
  const rigs: SmmuFaultRig[] = [];
  afterEach(async () => {
    for (const r of rigs.splice(0)) await r.close();
  });
  async function open(options: Record<string, unknown> = {}): Promise<SmmuFaultRig> {
    const r = await openSmmuFaultRig({ options });
    rigs.push(r);
    return r;
  }

  it('§3.2 steps 1–15 without PASID: ATS miss → PRG → PRIQ → IopfQueue → one 40-byte record (flags LAST, dev_id, grpid, perm, addr, cookie 1) → map → {1, SUCCESS} → CMD_PRI_RESP Resp 2 → PRG Response Success → ATS retry gives the PA and a DMA read sees the bytes', async () => {
    const rig = await open();
    const { stack, driver, hw, iopf } = rig;
    const dev = await driver.probeDevice({ rid: A, ats: true, pri: true });
    const dom = await driver.domainAllocPaging(dev);
    await driver.attachDevice(dev, dom);
    const fq = new FaultQueue();
    const hwpt = attachment('hwpt-a', fq);
    const fdev = iopf.addDevice(dev, (pasid) => (pasid === NO_PASID ? hwpt : null), 7);
    const pri = rig.priFunction(A);
    let readable = 0;
    fq.onReadable(() => readable++);

    const access = new PriDevice(stack, dev, pri).access(IOVA + 0x10, ACCESS_READ, NO_PASID, R);
    await settle();
    await driver.drainFaults();
    expect(readable).toBe(1);
    expect(pri.outstanding).toBe(1);
    expect(fdev.outstanding).toBe(1);
    const before = hw.stats();
    expect([before.priRequests, before.priQueued, before.pageResponses, before.atsRequests]).toEqual([1, 1, 0, 1]);

    // The VMM reads the fault fd: exactly one record.
    const rec = fq.read(4 * REC);
    expect(rec).toEqual(pgfaultBytes({ flags: LAST, devId: 7, pasid: 0, grpid: 0, perm: R, addr: IOVA, cookie: 1 }));
    expect(fq.awaitingResponse).toBe(1);
    expect(rig.delivered).toEqual([]);

    // Resolve the fault: map a page with known contents, then answer.
    const data = pattern(64, 0x5a);
    const pa = rig.frameWith(data);
    dom.mapPages(IOVA, pa, PAGE, 1, PROT);
    await dom.iotlbSyncMap(IOVA, PAGE);
    expect(fq.write(responses([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
    await iopf.flush();

    expect(rig.cmds.faultCmds()).toEqual([priRespCmd(A, -1, 0, 2)]);
    expect(hw.takePageResponses()).toEqual([{ rid: A, pasid: -1, grpid: 0, code: PageResponseCode.SUCCESS }]);
    const after = hw.stats();
    expect([after.pageResponses, after.pageResponsesAutomatic]).toEqual([1, 0]);

    const out = await access;
    expect(out).toEqual({
      first: { ok: false, pa: 0, fault: FaultReason.TRANSLATION, faultDetail: 0x10 },
      code: PageResponseCode.SUCCESS,
      retry: { ok: true, pa: pa + 0x10, fault: 0, faultDetail: 0 },
      atsRequests: 2,
    });
    expect(hw.stats().atsRequests).toBe(2);
    const dma = await stack.port.translate({ rid: A, iova: IOVA + 0x10, access: ACCESS_READ });
    expect(dma.ok).toBe(true);
    expect(dma.pa).toBe(pa + 0x10);
    expect(stack.mem.readBytes(dma.pa, 16)).toEqual(data.subarray(0x10, 0x20));

    expect(pri.stats).toMatchObject({ requests: 1, groups: 1, success: 1, invalid: 0, failure: 0, unexpected: 0 });
    expect(pri.outstanding).toBe(0);
    expect(iopf.stats).toMatchObject({ requests: 1, groups: 1, success: 1, invalid: 0, failure: 0, noHandler: 0, lateResponses: 0, responseErrors: 0 });
    expect(fq.stats).toMatchObject({ delivered: 1, read: 1, responses: 1, rejected: 0 });
    expect(fdev.outstanding).toBe(0);
  });

  it('§3.2 step 4 with PASID: the request of PASID 5 goes to the PASID attachment only (record flags PASID_VALID | LAST, pasid 5, perm R | EXEC | PRIV), CMD_PRI_RESP carries SSV + SSID 5, the PRG Response carries PASID 5 (PRG Response PASID Required) and the retried ATS translation uses the PASID table', async () => {
    const rig = await open();
    const { stack, driver, hw, iopf } = rig;
    const dev = await driver.probeDevice({ rid: A, ats: true, pri: true, pasidBits: 8 });
    const ridDom = await driver.domainAllocPaging(dev);
    await driver.attachDevice(dev, ridDom);
    const pasidDom = await driver.domainAllocPaging(dev, { pasid: true });
    await driver.attachPasid(dev, 5, pasidDom);
    const fqRid = new FaultQueue();
    const fqPasid = new FaultQueue();
    const hRid = attachment('rid', fqRid);
    const hPasid = attachment('pasid-5', fqPasid);
    iopf.addDevice(dev, (pasid) => (pasid === NO_PASID ? hRid : pasid === 5 ? hPasid : null), 3);
    const pri = rig.priFunction(A, { responsePasidRequired: true });
    expect(pri.status & PriStatus.PRG_RESPONSE_PASID_REQUIRED).toBe(PriStatus.PRG_RESPONSE_PASID_REQUIRED);

    const perm = R | PgFaultPerm.EXEC | PgFaultPerm.PRIV;
    const access = new PriDevice(stack, dev, pri).access(IOVA + 0x200, ACCESS_READ, 5, perm);
    await settle();
    await driver.drainFaults();
    expect(fqRid.pendingRead).toBe(0);
    const rec = fqPasid.read(REC);
    expect(rec).toEqual(pgfaultBytes({ flags: PV | LAST, devId: 3, pasid: 5, grpid: 0, perm, addr: IOVA, cookie: 1 }));

    const data = pattern(PAGE, 0x33);
    const pa = rig.frameWith(data);
    pasidDom.mapPages(IOVA, pa, PAGE, 1, PROT);
    await pasidDom.iotlbSyncMap(IOVA, PAGE);
    fqPasid.write(responses([1, IOMMUFD_PAGE_RESP_SUCCESS]));
    await iopf.flush();
    expect(rig.cmds.faultCmds()).toEqual([priRespCmd(A, 5, 0, 2)]);
    expect(rig.delivered).toEqual([{ rid: A, pasid: 5, grpid: 0, code: PageResponseCode.SUCCESS }]);

    const out = await access;
    expect(out.code).toBe(PageResponseCode.SUCCESS);
    expect(out.retry).toEqual({ ok: true, pa: pa + 0x200, fault: 0, faultDetail: 0 });
    expect(pri.stats.unexpected).toBe(0);
    // The RID (no PASID) still has nothing at that IOVA.
    expect((await stack.port.atsTranslate({ rid: A, iova: IOVA, access: ACCESS_READ })).ok).toBe(false);
    // A DMA write with PASID 5 lands in the page the fault handler mapped.
    const w = await stack.port.translate({ rid: A, iova: IOVA + 0x300, access: ACCESS_WRITE, pasid: 5 });
    expect([w.ok, w.pa]).toEqual([true, pa + 0x300]);
    stack.mem.writeBytes(w.pa, new Uint8Array([1, 2, 3, 4]));
    expect(stack.mem.readBytes(pa + 0x2fe, 8)).toEqual(new Uint8Array([data[0x2fe], data[0x2ff], 1, 2, 3, 4, data[0x304], data[0x305]]));
    expect(hw.stats().pageResponses).toBe(1);
  });

  it('§3.3 one response per PRG: a group of three requests gives three records (LAST only on the third, one cookie), one {cookie, SUCCESS} gives one CMD_PRI_RESP, and all three pages are then translated; a second answer to the cookie is EINVAL and sends nothing', async () => {
    const rig = await open();
    const { stack, driver, hw, iopf } = rig;
    const dev = await driver.probeDevice({ rid: A, ats: true, pri: true });
    const dom = await driver.domainAllocPaging(dev);
    await driver.attachDevice(dev, dom);
    const fq = new FaultQueue();
    const fdev = iopf.addDevice(dev, () => attachment('hwpt', fq), 9);
    const pri = rig.priFunction(A);

    const pages = [
      { addr: IOVA, perm: R },
      { addr: IOVA + PAGE, perm: W },
      { addr: IOVA + 5 * PAGE, perm: RW },
    ];
    const answer = pri.request(pages);
    expect(pri.outstanding).toBe(3);
    await settle();
    await driver.drainFaults();
    expect(fdev.partialCount).toBe(0);
    expect(fq.pendingRead).toBe(1);
    // A buffer for two records only: the group does not fit, nothing is read.
    expect(fq.read(2 * REC).length).toBe(0);
    const recs = fq.read(8 * REC);
    expect(recs).toEqual(
      concat(
        pgfaultBytes({ flags: 0, devId: 9, pasid: 0, grpid: 0, perm: R, addr: IOVA, cookie: 1 }),
        pgfaultBytes({ flags: 0, devId: 9, pasid: 0, grpid: 0, perm: W, addr: IOVA + PAGE, cookie: 1 }),
        pgfaultBytes({ flags: LAST, devId: 9, pasid: 0, grpid: 0, perm: RW, addr: IOVA + 5 * PAGE, cookie: 1 }),
      ),
    );

    const frames = [rig.frameWith(pattern(8, 1)), rig.frameWith(pattern(8, 2)), rig.frameWith(pattern(8, 3))];
    for (const [i, p] of pages.entries()) dom.mapPages(p.addr, frames[i], PAGE, 1, PROT);
    fq.write(responses([1, IOMMUFD_PAGE_RESP_SUCCESS]));
    await iopf.flush();
    expect(rig.cmds.faultCmds()).toEqual([priRespCmd(A, -1, 0, 2)]);
    expect(await answer).toBe(PageResponseCode.SUCCESS);
    expect(pri.outstanding).toBe(0);

    expect(() => fq.write(responses([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toThrow(IommuError);
    await iopf.flush();
    expect(rig.cmds.faultCmds()).toEqual([]);
    expect(hw.stats().pageResponses).toBe(1);
    expect(rig.delivered).toEqual([{ rid: A, pasid: -1, grpid: 0, code: PageResponseCode.SUCCESS }]);

    for (const [i, p] of pages.entries()) {
      const r = await stack.port.atsTranslate({ rid: A, iova: p.addr, access: ACCESS_READ });
      expect(r).toEqual({ ok: true, pa: frames[i], fault: 0, faultDetail: 0 });
      expect(stack.mem.readBytes(r.pa, 8)).toEqual(pattern(8, i + 1));
    }
    expect(fdev.stats).toMatchObject({ requests: 3, groups: 1, answered: 1, partialDropped: 0 });
    expect(fq.stats.rejected).toBe(1);
  });

  it('§3.8 routing: three devices, two PASIDs and a fault object shared by three HWPTs at once; PRG index 0 is in use by all three functions, and every PRG Response reaches only its own requester (RID, PASID, index)', async () => {
    const rig = await open();
    const { stack, driver, hw, iopf } = rig;
    const devA = await driver.probeDevice({ rid: A, ats: true, pri: true, pasidBits: 8 });
    const devB = await driver.probeDevice({ rid: B, ats: true, pri: true });
    const devC = await driver.probeDevice({ rid: C, ats: true, pri: true });
    const domA = await driver.domainAllocPaging(devA);
    await driver.attachDevice(devA, domA);
    const domA1 = await driver.domainAllocPaging(devA, { pasid: true });
    await driver.attachPasid(devA, 1, domA1);
    const domA2 = await driver.domainAllocPaging(devA, { pasid: true });
    await driver.attachPasid(devA, 2, domA2);
    const domB = await driver.domainAllocPaging(devB);
    await driver.attachDevice(devB, domB);
    const domC = await driver.domainAllocPaging(devC);
    await driver.attachDevice(devC, domC);

    const fqA = new FaultQueue();
    const fqA1 = new FaultQueue();
    const fqShared = new FaultQueue();
    const hA = attachment('a', fqA);
    const hA1 = attachment('a-pasid1', fqA1);
    const hA2 = attachment('a-pasid2', fqShared);
    const hB = attachment('b', fqShared);
    const hC = attachment('c', fqShared);
    iopf.addDevice(devA, (p) => (p === NO_PASID ? hA : p === 1 ? hA1 : p === 2 ? hA2 : null), 1);
    iopf.addDevice(devB, (p) => (p === NO_PASID ? hB : null), 2);
    iopf.addDevice(devC, (p) => (p === NO_PASID ? hC : null), 3);
    const priA = rig.priFunction(A, { responsePasidRequired: true });
    const priB = rig.priFunction(B);
    const priC = rig.priFunction(C);

    const rA0 = priA.request([{ addr: IOVA, perm: R }]); // index 0, no PASID
    const rA1 = priA.request([{ addr: IOVA, perm: RW }], 1); // index 1, PASID 1
    const rA2 = priA.request([{ addr: IOVA, perm: R }, { addr: IOVA + PAGE, perm: R }], 2); // index 2, PASID 2
    const rB = priB.request([{ addr: IOVA, perm: W }]); // index 0
    const rC = priC.request([{ addr: IOVA + 2 * PAGE, perm: R }]); // index 0
    await settle();
    await driver.drainFaults();
    expect(iopf.stats).toMatchObject({ requests: 6, groups: 5 });

    expect(fqA.read(8 * REC)).toEqual(pgfaultBytes({ flags: LAST, devId: 1, pasid: 0, grpid: 0, perm: R, addr: IOVA, cookie: 1 }));
    expect(fqA1.read(8 * REC)).toEqual(pgfaultBytes({ flags: PV | LAST, devId: 1, pasid: 1, grpid: 1, perm: RW, addr: IOVA, cookie: 1 }));
    // The shared fault object: B and C arrived before A's PASID-2 group was complete.
    expect(fqShared.read(8 * REC)).toEqual(
      concat(
        pgfaultBytes({ flags: LAST, devId: 2, pasid: 0, grpid: 0, perm: W, addr: IOVA, cookie: 1 }),
        pgfaultBytes({ flags: LAST, devId: 3, pasid: 0, grpid: 0, perm: R, addr: IOVA + 2 * PAGE, cookie: 2 }),
        pgfaultBytes({ flags: PV, devId: 1, pasid: 2, grpid: 2, perm: R, addr: IOVA, cookie: 3 }),
        pgfaultBytes({ flags: PV | LAST, devId: 1, pasid: 2, grpid: 2, perm: R, addr: IOVA + PAGE, cookie: 3 }),
      ),
    );

    const paA = rig.frameWith(pattern(16, 0xa0));
    const paA2 = rig.frameWith(pattern(16, 0xa2));
    const paA2b = rig.frameWith(pattern(16, 0xa3));
    const paC = rig.frameWith(pattern(16, 0xc0));
    domA.mapPages(IOVA, paA, PAGE, 1, PROT);
    domA2.mapPages(IOVA, paA2, PAGE, 1, PROT);
    domA2.mapPages(IOVA + PAGE, paA2b, PAGE, 1, PROT);
    domC.mapPages(IOVA + 2 * PAGE, paC, PAGE, 1, PROT);

    // Answers in an order unrelated to the requests, batched per fault object.
    expect(fqShared.write(responses([3, IOMMUFD_PAGE_RESP_SUCCESS], [1, IOMMUFD_PAGE_RESP_INVALID]))).toBe(16);
    expect(fqA1.write(responses([1, IOMMUFD_PAGE_RESP_INVALID]))).toBe(8);
    expect(fqA.write(responses([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
    expect(fqShared.write(responses([2, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
    await iopf.flush();

    expect(rig.cmds.faultCmds()).toEqual([
      priRespCmd(A, 2, 2, 2),
      priRespCmd(B, -1, 0, 1),
      priRespCmd(A, 1, 1, 1),
      priRespCmd(A, -1, 0, 2),
      priRespCmd(C, -1, 0, 2),
    ]);
    const S = PageResponseCode.SUCCESS;
    const I = PageResponseCode.INVALID;
    const byRid = (rid: number) => rig.delivered.filter((r) => r.rid === rid);
    expect(byRid(A)).toEqual([
      { rid: A, pasid: 2, grpid: 2, code: S },
      { rid: A, pasid: 1, grpid: 1, code: I },
      { rid: A, pasid: -1, grpid: 0, code: S },
    ]);
    expect(byRid(B)).toEqual([{ rid: B, pasid: -1, grpid: 0, code: I }]);
    expect(byRid(C)).toEqual([{ rid: C, pasid: -1, grpid: 0, code: S }]);
    expect(rig.delivered).toHaveLength(5);
    expect(await Promise.all([rA0, rA1, rA2, rB, rC])).toEqual([S, I, S, I, S]);
    expect(priA.stats).toMatchObject({ success: 2, invalid: 1, unexpected: 0 });
    expect(priB.stats).toMatchObject({ success: 0, invalid: 1, unexpected: 0 });
    expect(priC.stats).toMatchObject({ success: 1, invalid: 0, unexpected: 0 });
    for (const p of [priA, priB, priC]) {
      expect(p.outstanding).toBe(0);
      expect(p.status & PriStatus.UPRGI).toBe(0);
    }
    expect(hw.stats().pageResponses).toBe(5);

    // The Success groups retry and hit; the Invalid ones have nothing.
    const ats = async (rid: number, iova: number, pasid = NO_PASID) => ({ ...(await stack.port.atsTranslate({ rid, iova, access: ACCESS_READ, pasid })) });
    expect(await ats(A, IOVA)).toMatchObject({ ok: true, pa: paA });
    expect(await ats(A, IOVA, 2)).toMatchObject({ ok: true, pa: paA2 });
    expect(await ats(A, IOVA + PAGE, 2)).toMatchObject({ ok: true, pa: paA2b });
    expect(await ats(C, IOVA + 2 * PAGE)).toMatchObject({ ok: true, pa: paC });
    expect(await ats(A, IOVA, 1)).toMatchObject({ ok: false, fault: FaultReason.TRANSLATION });
    expect(await ats(B, IOVA)).toMatchObject({ ok: false, fault: FaultReason.TRANSLATION });
    expect(decodePgfaults(fqShared.read(REC))).toEqual([]);
  });

  it('§4.5 Invalid Request: {cookie, INVALID} → CMD_PRI_RESP Resp 1 → the device sees Invalid Request and does not retry its ATS translation (credits refunded, no RF)', async () => {
    const rig = await open();
    const { stack, driver, hw, iopf } = rig;
    const dev = await driver.probeDevice({ rid: A, ats: true, pri: true });
    await driver.attachDevice(dev, await driver.domainAllocPaging(dev));
    const fq = new FaultQueue();
    iopf.addDevice(dev, () => attachment('hwpt', fq), 4);
    const pri = rig.priFunction(A);
    const access = new PriDevice(stack, dev, pri).access(IOVA, ACCESS_WRITE, NO_PASID, W);
    await settle();
    await driver.drainFaults();
    expect(fq.read(REC)).toEqual(pgfaultBytes({ flags: LAST, devId: 4, pasid: 0, grpid: 0, perm: W, addr: IOVA, cookie: 1 }));
    fq.write(responses([1, IOMMUFD_PAGE_RESP_INVALID]));
    await iopf.flush();
    expect(rig.cmds.faultCmds()).toEqual([priRespCmd(A, -1, 0, 1)]);
    expect(await access).toEqual({
      first: { ok: false, pa: 0, fault: FaultReason.TRANSLATION, faultDetail: 0x10 },
      code: PageResponseCode.INVALID,
      atsRequests: 1,
    });
    expect(hw.stats().atsRequests).toBe(1);
    expect(hw.takePageResponses()).toEqual([{ rid: A, pasid: -1, grpid: 0, code: PageResponseCode.INVALID }]);
    expect(pri.stats).toMatchObject({ invalid: 1, success: 0, failure: 0 });
    expect(pri.outstanding).toBe(0);
    expect(pri.status & PriStatus.RF).toBe(0);
    expect(iopf.stats).toMatchObject({ success: 0, invalid: 1, failure: 0 });
  });

  it('§3.2 step 5 / §4.5 Response Failure: a group the fault object refuses (capacity reached) is answered FAILURE → CMD_PRI_RESP Resp 0 → the function sets RF and stops issuing requests; the held group is still answered', async () => {
    const rig = await open();
    const { driver, iopf } = rig;
    const dev = await driver.probeDevice({ rid: A, ats: true, pri: true });
    await driver.attachDevice(dev, await driver.domainAllocPaging(dev));
    const fq = new FaultQueue({ capacity: 1 });
    iopf.addDevice(dev, () => attachment('hwpt', fq), 4);
    const pri = rig.priFunction(A);
    const first = pri.request([{ addr: IOVA, perm: R }]);
    const second = pri.request([{ addr: IOVA + PAGE, perm: R }]);
    await settle();
    await driver.drainFaults();
    await iopf.flush();
    expect(rig.cmds.faultCmds()).toEqual([priRespCmd(A, -1, 1, 0)]);
    expect(await second).toBe(PageResponseCode.FAILURE);
    expect(pri.status & PriStatus.RF).toBe(PriStatus.RF);
    await expect(pri.request([{ addr: IOVA + 2 * PAGE, perm: R }])).rejects.toThrow(/Response Failure/);
    expect(iopf.stats).toMatchObject({ groups: 2, refused: 1, failure: 1 });
    expect(fq.stats).toMatchObject({ delivered: 1, refused: 1 });

    expect(fq.read(REC)).toEqual(pgfaultBytes({ flags: LAST, devId: 4, pasid: 0, grpid: 0, perm: R, addr: IOVA, cookie: 1 }));
    fq.write(responses([1, IOMMUFD_PAGE_RESP_SUCCESS]));
    await iopf.flush();
    expect(rig.cmds.faultCmds()).toEqual([priRespCmd(A, -1, 0, 2)]);
    expect(await first).toBe(PageResponseCode.SUCCESS);
    pri.reset();
    expect(pri.status).toBe(0);
  });

  it('§3.4 detach: after the hardware detach, FaultQueue.autoRespond answers INVALID the unread group and then the read one (deliver list, then response table) → two CMD_PRI_RESP Resp 1; the old cookie is EINVAL; another attachment sharing nothing is untouched', async () => {
    const rig = await open();
    const { driver, iopf } = rig;
    const devA = await driver.probeDevice({ rid: A, ats: true, pri: true });
    const devB = await driver.probeDevice({ rid: B, ats: true, pri: true });
    await driver.attachDevice(devA, await driver.domainAllocPaging(devA));
    await driver.attachDevice(devB, await driver.domainAllocPaging(devB));
    const fqA = new FaultQueue();
    const fqB = new FaultQueue();
    const hA = attachment('a', fqA);
    const hB = attachment('b', fqB);
    iopf.addDevice(devA, () => hA, 1);
    iopf.addDevice(devB, () => hB, 2);
    const priA = rig.priFunction(A);
    const priB = rig.priFunction(B);
    const g0 = priA.request([{ addr: IOVA, perm: R }]);
    const gB = priB.request([{ addr: IOVA, perm: R }]);
    await settle();
    await driver.drainFaults();
    expect(fqA.read(REC)).toEqual(pgfaultBytes({ flags: LAST, devId: 1, pasid: 0, grpid: 0, perm: R, addr: IOVA, cookie: 1 }));
    const g1 = priA.request([{ addr: IOVA + PAGE, perm: W }]);
    await settle();
    await driver.drainFaults();
    expect([fqA.pendingRead, fqA.awaitingResponse]).toEqual([1, 1]);

    await driver.attachDevice(devA, 'blocked');
    expect(fqA.autoRespond((g) => g.handle === hA.handle)).toBe(2);
    await iopf.flush();
    expect(rig.cmds.faultCmds()).toEqual([priRespCmd(A, -1, 1, 1), priRespCmd(A, -1, 0, 1)]);
    expect(await Promise.all([g0, g1])).toEqual([PageResponseCode.INVALID, PageResponseCode.INVALID]);
    expect(() => fqA.write(responses([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toThrow(/cookie 1 is not awaiting/);
    expect(fqA.stats).toMatchObject({ autoResponses: 2, responses: 0, rejected: 1 });
    expect(priA.outstanding).toBe(0);

    // B's group is still pending and answered normally.
    expect([fqB.pendingRead, priB.outstanding]).toEqual([1, 1]);
    expect(fqB.read(REC)).toEqual(pgfaultBytes({ flags: LAST, devId: 2, pasid: 0, grpid: 0, perm: R, addr: IOVA, cookie: 1 }));
    fqB.write(responses([1, IOMMUFD_PAGE_RESP_SUCCESS]));
    await iopf.flush();
    expect(rig.cmds.faultCmds()).toEqual([priRespCmd(B, -1, 0, 2)]);
    expect(await gB).toBe(PageResponseCode.SUCCESS);
    expect(rig.delivered.map((r) => [r.rid, r.grpid, r.code])).toEqual([
      [A, 1, 1],
      [A, 0, 1],
      [B, 0, 0],
    ]);
  });

  it('§3.4 iopf_queue_remove_device: the partial request is freed without a response, every pending group (read or not) is answered INVALID and withdrawn from the fault object; a later Last request of the removed device is answered INVALID by the driver', async () => {
    const rig = await open();
    const { stack, driver, iopf } = rig;
    const devA = await driver.probeDevice({ rid: A, ats: true, pri: true });
    const devB = await driver.probeDevice({ rid: B, ats: true, pri: true });
    await driver.attachDevice(devA, await driver.domainAllocPaging(devA));
    await driver.attachDevice(devB, await driver.domainAllocPaging(devB));
    const fq = new FaultQueue();
    const fdevA = iopf.addDevice(devA, () => attachment('a', fq), 1);
    iopf.addDevice(devB, () => attachment('b', fq), 2);
    const priA = rig.priFunction(A);
    // A non-Last request of PRG 300 whose Last never comes (sent raw, outside the function's credits).
    expect(await stack.port.pageRequest({ rid: A, pasid: NO_PASID, addr: IOVA + 9 * PAGE, perm: R, grpid: 300, last: false })).toBe(true);
    const g0 = priA.request([{ addr: IOVA, perm: R }]);
    await settle();
    await driver.drainFaults();
    expect(fq.read(REC).length).toBe(REC); // g0 read, cookie 1
    const g1 = priA.request([{ addr: IOVA + PAGE, perm: R }]);
    await settle();
    await driver.drainFaults();
    expect(fdevA.partialCount).toBe(1);
    expect([fq.pendingRead, fq.awaitingResponse]).toEqual([1, 1]);

    iopf.removeDevice(devA);
    await iopf.flush();
    expect(rig.cmds.faultCmds()).toEqual([priRespCmd(A, -1, 0, 1), priRespCmd(A, -1, 1, 1)]);
    expect(await Promise.all([g0, g1])).toEqual([PageResponseCode.INVALID, PageResponseCode.INVALID]);
    expect(iopf.stats).toMatchObject({ partialDiscarded: 1, invalid: 2 });
    expect(fq.stats.withdrawn).toBe(2);
    expect([fq.pendingRead, fq.awaitingResponse]).toEqual([0, 0]);
    expect(() => fq.write(responses([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toThrow(/cookie 1 is not awaiting/);
    expect(rig.delivered.some((r) => r.grpid === 300)).toBe(false);

    // IOPF is off for A now: the fault layer does not take its request, the driver denies it.
    const g2 = priA.request([{ addr: IOVA + 2 * PAGE, perm: R }]);
    await settle();
    await driver.drainFaults();
    await settle();
    expect(iopf.stats.unknownDevice).toBe(1);
    expect(rig.cmds.faultCmds()).toEqual([priRespCmd(A, -1, 2, 1)]);
    expect(await g2).toBe(PageResponseCode.INVALID);
    expect(fq.pendingRead).toBe(0);
  });

  it('§3.2 step 4 no handler: a Last request of an unattached PASID or of a HWPT without fault object is answered INVALID at once (iopf_error_response), its non-Last request is dropped unanswered; a device without IOPF and a StreamID nobody probed are denied by the driver', async () => {
    const rig = await open();
    const { stack, driver, hw, iopf } = rig;
    const dev = await driver.probeDevice({ rid: A, ats: true, pri: true, pasidBits: 8 });
    await driver.attachDevice(dev, await driver.domainAllocPaging(dev));
    const noFaultDom = await driver.domainAllocPaging(dev, { pasid: true });
    await driver.attachPasid(dev, 3, noFaultDom);
    const fq = new FaultQueue();
    const hRid = attachment('rid', fq);
    const hNoFault = attachment('pasid-3, no fault object', null);
    const fdev = iopf.addDevice(dev, (p) => (p === NO_PASID ? hRid : p === 3 ? hNoFault : null), 1);
    const other = await driver.probeDevice({ rid: C, ats: true, pri: true });
    await driver.attachDevice(other, await driver.domainAllocPaging(other));
    const priA = rig.priFunction(A, { responsePasidRequired: true });
    const priC = rig.priFunction(C); // IOPF never enabled: not added to the IopfQueue
    const priX = rig.priFunction(0x13); // a StreamID the driver never probed

    expect(await stack.port.pageRequest({ rid: A, pasid: 4, addr: IOVA, perm: R, grpid: 200, last: false })).toBe(true);
    const unattached = priA.request([{ addr: IOVA, perm: R }], 4); // index 0
    const noFault = priA.request([{ addr: IOVA, perm: R }], 3); // index 1
    const notEnabled = priC.request([{ addr: IOVA, perm: R }]);
    const notProbed = priX.request([{ addr: IOVA, perm: R }]);
    await settle();
    await driver.drainFaults();
    await iopf.flush();
    await settle();
    expect(rig.cmds.faultCmds()).toEqual([priRespCmd(A, 4, 0, 1), priRespCmd(A, 3, 1, 1), priRespCmd(C, -1, 0, 1), priRespCmd(0x13, -1, 0, 1)]);
    expect(await Promise.all([unattached, noFault, notEnabled, notProbed])).toEqual([1, 1, 1, 1]);
    // The unprobed StreamID never reaches the fault layer (§3.2 step 3: unknown RID → the driver's
    // own Invalid Request); the probed device without IOPF reaches it and is left to the driver.
    expect(iopf.stats).toMatchObject({ requests: 4, groups: 0, noHandler: 2, partialDropped: 1, unknownDevice: 1, invalid: 2 });
    expect(fdev.stats).toMatchObject({ noHandler: 2, partialDropped: 1 });
    expect(fq.pendingRead).toBe(0);
    expect(hw.stats()).toMatchObject({ priRequests: 5, priQueued: 5, pageResponses: 4, pageResponsesAutomatic: 0 });
    expect(rig.delivered.some((r) => r.grpid === 200)).toBe(false);
    for (const p of [priA, priC, priX]) expect(p.stats.unexpected).toBe(0);
  });

  it('§3.2 step 3 stop marker (L = 1, R = W = 0, with a PASID): recorded by the SMMU, filtered by the fault layer, never answered and never delivered', async () => {
    const rig = await open();
    const { driver, hw, iopf } = rig;
    const dev = await driver.probeDevice({ rid: A, ats: true, pri: true, pasidBits: 8 });
    await driver.attachDevice(dev, await driver.domainAllocPaging(dev));
    const fq = new FaultQueue();
    const fdev = iopf.addDevice(dev, () => attachment('any', fq), 1);
    const pri = rig.priFunction(A);
    expect(await pri.stopMarker(6)).toBe(true);
    await settle();
    await driver.drainFaults();
    await iopf.flush();
    await settle();
    expect(iopf.stats).toMatchObject({ requests: 1, stopMarkers: 1, groups: 0, noHandler: 0, invalid: 0 });
    expect(fdev.stats.stopMarkers).toBe(1);
    expect(fq.pendingRead).toBe(0);
    expect(rig.cmds.faultCmds()).toEqual([]);
    expect(hw.stats()).toMatchObject({ priQueued: 1, pageResponses: 0 });
  });
});
