/**
 * The SMMUv3 stall model end to end (vmm-and-faults.md §3.1, §3.2 step 14, §4.6): a DMA of a
 * stall-capable device (driver option `stallRids`, firmware's dma-can-stall; the model stalls
 * with its default IDR0.STALL_MODEL 0) faults and stays parked in the SMMU; the Stall = 1 event
 * record becomes a single-request group (LAST_PAGE, grpid = STAG) in the IopfQueue, read from the
 * FaultQueue; SUCCESS is CMD_RESUME RETRY (the transaction then completes), INVALID is
 * CMD_RESUME ABORT.
 */
import { ACCESS_READ, ACCESS_WRITE, FaultReason, NO_PASID, PgFaultPerm, Prot } from '@iommulab/driver-api';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FaultQueue,
  IOMMU_HWPT_PGFAULT_BYTES as REC,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE as LAST,
  IOMMU_PGFAULT_FLAGS_PASID_VALID as PV,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
} from '../src/index.js';
import { PAGE, attachment, openSmmuFaultRig, pattern, pgfaultBytes, responses, resumeCmd, settle, type SmmuFaultRig } from './smmuv3-fixture.js';

const SID = 0x30;
const IOVA = 0x4000_0000;
const F_TRANSLATION = 0x10;

describe('SMMUv3 stall model through IopfQueue and FaultQueue (in-thread model)', () => {
  const rigs: SmmuFaultRig[] = [];
  afterEach(async () => {
    for (const r of rigs.splice(0)) await r.close();
  });
  async function open(): Promise<SmmuFaultRig> {
    const r = await openSmmuFaultRig({ options: { stallRids: [SID] } });
    rigs.push(r);
    return r;
  }

  it('§3.1 a stalled write is one single-request group (flags LAST, grpid = STAG, perm WRITE, the input address as received); SUCCESS → CMD_RESUME RETRY (no CMD_SYNC) → the stalled transaction completes and writes the page the handler mapped', async () => {
    const rig = await open();
    const { stack, driver, hw, iopf } = rig;
    const dev = await driver.probeDevice({ rid: SID });
    const dom = await driver.domainAllocPaging(dev);
    await driver.attachDevice(dev, dom);
    const fq = new FaultQueue();
    iopf.addDevice(dev, (p) => (p === NO_PASID ? attachment('hwpt', fq) : null), 11);

    const stalled = await stack.port.translate({ rid: SID, iova: IOVA + 0x48, access: ACCESS_WRITE });
    expect([stalled.ok, stalled.fault, stalled.faultDetail]).toEqual([false, FaultReason.PAGE_REQUEST, F_TRANSLATION]);
    const parked = hw.pendingStalls();
    expect(parked).toEqual([{ sid: SID, stag: parked[0].stag, ssid: -1, iova: IOVA + 0x48 }]);
    const stag = parked[0].stag;
    await settle();
    await driver.drainFaults();
    expect(iopf.stats).toMatchObject({ requests: 1, groups: 1 });
    expect(fq.read(4 * REC)).toEqual(pgfaultBytes({ flags: LAST, devId: 11, pasid: 0, grpid: stag, perm: PgFaultPerm.WRITE, addr: IOVA + 0x48, cookie: 1 }));
    expect(driver.stats().pendingStalls).toBe(1);

    const pa = rig.frameWith(pattern(PAGE, 0x10));
    dom.mapPages(IOVA, pa, PAGE, 1, Prot.READ | Prot.WRITE);
    await dom.iotlbSyncMap(IOVA, PAGE);
    rig.cmds.take();
    fq.write(responses([1, IOMMUFD_PAGE_RESP_SUCCESS]));
    await iopf.flush();
    expect(rig.cmds.take()).toEqual([resumeCmd(SID, stag, 1)]); // and nothing else: no CMD_SYNC
    expect(hw.takeStallResolutions()).toEqual([{ sid: SID, ssid: -1, stag, iova: IOVA + 0x48, access: ACCESS_WRITE, evt: F_TRANSLATION, action: 'retry' }]);
    expect(hw.pendingStalls()).toEqual([]);
    expect(hw.takePageResponses()).toEqual([]); // a stall is not a PRG
    expect(driver.stats().pendingStalls).toBe(0);
    expect(hw.stats()).toMatchObject({ stalls: 1, stallsPending: 0, stallsRetried: 1, stallsTerminated: 0 });

    // The retried transaction: translated now, the device's data lands in the mapped page.
    const done = await stack.port.translate({ rid: SID, iova: IOVA + 0x48, access: ACCESS_WRITE });
    expect([done.ok, done.pa]).toEqual([true, pa + 0x48]);
    stack.mem.writeBytes(done.pa, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
    expect(stack.mem.readBytes(pa + 0x46, 8)).toEqual(new Uint8Array([0x10 + 0x46 * 7, 0x10 + 0x47 * 7, 0xde, 0xad, 0xbe, 0xef, 0x10 + 0x4c * 7, 0x10 + 0x4d * 7].map((x) => x & 0xff)));
    expect(iopf.stats).toMatchObject({ success: 1, invalid: 0 });
  });

  it('§3.2 step 14 INVALID on a stall → CMD_RESUME ABORT: the stalled read is terminated with an abort and the page stays unmapped', async () => {
    const rig = await open();
    const { stack, driver, hw, iopf } = rig;
    const dev = await driver.probeDevice({ rid: SID });
    await driver.attachDevice(dev, await driver.domainAllocPaging(dev));
    const fq = new FaultQueue();
    iopf.addDevice(dev, () => attachment('hwpt', fq), 11);
    await stack.port.translate({ rid: SID, iova: IOVA, access: ACCESS_READ });
    const stag = hw.pendingStalls()[0].stag;
    await settle();
    await driver.drainFaults();
    expect(fq.read(REC)).toEqual(pgfaultBytes({ flags: LAST, devId: 11, pasid: 0, grpid: stag, perm: PgFaultPerm.READ, addr: IOVA, cookie: 1 }));
    fq.write(responses([1, IOMMUFD_PAGE_RESP_INVALID]));
    await iopf.flush();
    expect(rig.cmds.faultCmds()).toEqual([resumeCmd(SID, stag, 2)]);
    expect(hw.takeStallResolutions()).toEqual([{ sid: SID, ssid: -1, stag, iova: IOVA, access: ACCESS_READ, evt: F_TRANSLATION, action: 'abort' }]);
    expect(hw.stats()).toMatchObject({ stallsPending: 0, stallsRetried: 0, stallsTerminated: 1 });
    expect(iopf.stats).toMatchObject({ success: 0, invalid: 1 });
  });

  it('§3.1 stall with a SubstreamID: PASID from the SSID (flags PASID_VALID | LAST, pasid 2), routed to the PASID attachment; CMD_RESUME carries no SSID', async () => {
    const rig = await open();
    const { stack, driver, hw, iopf } = rig;
    const dev = await driver.probeDevice({ rid: SID, pasidBits: 4 });
    await driver.attachDevice(dev, await driver.domainAllocPaging(dev));
    const pdom = await driver.domainAllocPaging(dev, { pasid: true });
    await driver.attachPasid(dev, 2, pdom);
    const fqRid = new FaultQueue();
    const fqPasid = new FaultQueue();
    iopf.addDevice(dev, (p) => (p === NO_PASID ? attachment('rid', fqRid) : p === 2 ? attachment('pasid-2', fqPasid) : null), 12);
    const r = await stack.port.translate({ rid: SID, iova: IOVA + PAGE, access: ACCESS_READ, pasid: 2 });
    expect(r.fault).toBe(FaultReason.PAGE_REQUEST);
    const stag = hw.pendingStalls()[0].stag;
    await settle();
    await driver.drainFaults();
    expect(fqRid.pendingRead).toBe(0);
    expect(fqPasid.read(REC)).toEqual(pgfaultBytes({ flags: PV | LAST, devId: 12, pasid: 2, grpid: stag, perm: PgFaultPerm.READ, addr: IOVA + PAGE, cookie: 1 }));
    const pa = rig.frameWith(pattern(32, 0x77));
    pdom.mapPages(IOVA + PAGE, pa, PAGE, 1, Prot.READ);
    fqPasid.write(responses([1, IOMMUFD_PAGE_RESP_SUCCESS]));
    await iopf.flush();
    expect(rig.cmds.faultCmds()).toEqual([resumeCmd(SID, stag, 1)]);
    expect(hw.takeStallResolutions()).toEqual([{ sid: SID, ssid: 2, stag, iova: IOVA + PAGE, access: ACCESS_READ, evt: F_TRANSLATION, action: 'retry' }]);
    const done = await stack.port.translate({ rid: SID, iova: IOVA + PAGE, access: ACCESS_READ, pasid: 2 });
    expect([done.ok, done.pa]).toEqual([true, pa]);
    expect(stack.mem.readBytes(done.pa, 32)).toEqual(pattern(32, 0x77));
  });

  it('§3.2 step 4 / §3.4 on stalls: no handler for the stalling PASID → ABORT at once; iopf_queue_remove_device → the pending stall is aborted and a late answer sends nothing', async () => {
    const rig = await open();
    const { stack, driver, hw, iopf } = rig;
    const dev = await driver.probeDevice({ rid: SID, pasidBits: 4 });
    await driver.attachDevice(dev, await driver.domainAllocPaging(dev));
    await driver.attachPasid(dev, 3, await driver.domainAllocPaging(dev, { pasid: true }));
    const fq = new FaultQueue();
    const fdev = iopf.addDevice(dev, (p) => (p === NO_PASID ? attachment('rid', fq) : null), 13);

    // The interrupt drains the record before the device's await returns: the fault layer has
    // already answered it, so the stall is resolved by the time the test looks.
    const r = await stack.port.translate({ rid: SID, iova: IOVA, access: ACCESS_WRITE, pasid: 3 });
    expect(r.fault).toBe(FaultReason.PAGE_REQUEST);
    await settle();
    await driver.drainFaults();
    await iopf.flush();
    const [aborted] = hw.takeStallResolutions();
    expect(aborted).toEqual({ sid: SID, ssid: 3, stag: aborted.stag, iova: IOVA, access: ACCESS_WRITE, evt: F_TRANSLATION, action: 'abort' });
    expect(rig.cmds.faultCmds()).toEqual([resumeCmd(SID, aborted.stag, 2)]);
    expect(hw.pendingStalls()).toEqual([]);
    expect(iopf.stats).toMatchObject({ noHandler: 1, groups: 0 });

    await stack.port.translate({ rid: SID, iova: IOVA + PAGE, access: ACCESS_READ });
    const stag = hw.pendingStalls()[0].stag;
    await settle();
    await driver.drainFaults();
    expect(fq.read(REC)).toEqual(pgfaultBytes({ flags: LAST, devId: 13, pasid: 0, grpid: stag, perm: PgFaultPerm.READ, addr: IOVA + PAGE, cookie: 1 }));
    iopf.removeDevice(fdev);
    await iopf.flush();
    expect(rig.cmds.faultCmds()).toEqual([resumeCmd(SID, stag, 2)]);
    expect(hw.takeStallResolutions()).toEqual([expect.objectContaining({ sid: SID, ssid: -1, stag, action: 'abort' })]);
    expect(() => fq.write(responses([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toThrow(/cookie 1 is not awaiting/);
    await iopf.flush();
    expect(rig.cmds.faultCmds()).toEqual([]);
    expect(hw.pendingStalls()).toEqual([]);
    expect(driver.stats().pendingStalls).toBe(0);
  });
});
