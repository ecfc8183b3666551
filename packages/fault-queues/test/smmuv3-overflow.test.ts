/**
 * PRI queue overflow end to end (vmm-and-faults.md §3.5, §3.3 last rule): a 4-entry SMMUv3 PRI
 * queue (driver option `driverPriqLog2: 2`) is filled beyond capacity before the driver drains.
 * The SMMU drops the excess, answers a dropped Last request itself (`priAutoResponse`, default
 * Success, IHI 0070 §8.1), the driver reports `{kind: 'overflow', queue: 'page-request'}` after the
 * drained records and acknowledges it, and the IopfQueue discards the partial requests whose Last
 * was lost (`iopf_queue_discard_partial`). The requests are sent raw through the device port in
 * one synchronous burst, so no drain runs in between.
 */
import { NO_PASID, PageResponseCode, PgFaultPerm, type IommuFault } from '@iommulab/driver-api';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FaultQueue,
  IOMMU_HWPT_PGFAULT_BYTES as REC,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE as LAST,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
} from '../src/index.js';
import { PAGE, attachment, concat, openSmmuFaultRig, pgfaultBytes, priRespCmd, responses, settle, type SmmuFaultRig } from './smmuv3-fixture.js';

const A = 0x10;
const B = 0x11;
const IOVA = 0x4000_0000;
const R = PgFaultPerm.READ;

describe('SMMUv3 PRI queue overflow through the IopfQueue (in-thread model)', () => {
  let rig: SmmuFaultRig | undefined;
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it('§3.5 PRIQ overflow: 6 requests into 4 entries → 2 dropped, the dropped Last answered Success by the SMMU, {overflow, page-request} reported after the 4 records, IopfQueue.stats.pageRequestOverflows 1 and both partials of the lost group discarded; the retried group is complete', async () => {
    rig = await openSmmuFaultRig({ options: { driverPriqLog2: 2 } });
    const { stack, driver, hw, iopf } = rig;
    expect(driver.layout.priqLog2).toBe(2);
    const devA = await driver.probeDevice({ rid: A, ats: true, pri: true });
    const devB = await driver.probeDevice({ rid: B, ats: true, pri: true });
    await driver.attachDevice(devA, await driver.domainAllocPaging(devA));
    await driver.attachDevice(devB, await driver.domainAllocPaging(devB));
    const fqA = new FaultQueue();
    const fqB = new FaultQueue();
    const fdevA = iopf.addDevice(devA, (p) => (p === NO_PASID ? attachment('a', fqA) : null), 1);
    iopf.addDevice(devB, (p) => (p === NO_PASID ? attachment('b', fqB) : null), 2);
    const seen: IommuFault['kind'][] = [];
    const off = driver.onFault((f) => {
      seen.push(f.kind);
      return false; // an observer: takes nothing
    });

    const req = (rid: number, addr: number, grpid: number, last: boolean) => stack.port.pageRequest({ rid, pasid: NO_PASID, addr, perm: R, grpid, last });
    const sent = [
      req(A, IOVA, 7, false),
      req(A, IOVA + PAGE, 7, false),
      req(B, IOVA, 2, true),
      req(A, IOVA + 8 * PAGE, 8, true),
      req(A, IOVA + 2 * PAGE, 7, true), // the queue is full: dropped, answered by the SMMU
      req(B, IOVA + PAGE, 3, false), // dropped (overflow still active), no answer
    ];
    expect(await Promise.all(sent)).toEqual([true, true, true, true, false, false]);
    await settle();
    await driver.drainFaults();
    await settle();

    expect(seen).toEqual(['page-request', 'page-request', 'page-request', 'page-request', 'overflow']);
    expect(hw.stats()).toMatchObject({ priRequests: 6, priQueued: 4, priDropped: 2, pageResponses: 1, pageResponsesAutomatic: 1 });
    expect(rig.delivered).toEqual([{ rid: A, pasid: -1, grpid: 7, code: PageResponseCode.SUCCESS }]);
    expect(rig.cmds.faultCmds()).toEqual([]);
    expect(driver.stats()).toMatchObject({ priqOverflows: 1, priqRecords: 4 });
    expect(iopf.stats).toMatchObject({ requests: 4, groups: 2, pageRequestOverflows: 1, partialDiscarded: 2, eventOverflows: 0 });
    expect(fdevA.stats.partialDiscarded).toBe(2);
    expect(fdevA.partialCount).toBe(0);

    // The device retries PRG 7 after the automatic Success; the acknowledged queue takes it whole.
    expect(await Promise.all([req(A, IOVA, 7, false), req(A, IOVA + PAGE, 7, false), req(A, IOVA + 2 * PAGE, 7, true)])).toEqual([true, true, true]);
    await settle();
    await driver.drainFaults();
    expect(seen.slice(5)).toEqual(['page-request', 'page-request', 'page-request']);
    expect(iopf.stats.pageRequestOverflows).toBe(1);

    expect(fqA.read(16 * REC)).toEqual(
      concat(
        pgfaultBytes({ flags: LAST, devId: 1, pasid: 0, grpid: 8, perm: R, addr: IOVA + 8 * PAGE, cookie: 1 }),
        pgfaultBytes({ flags: 0, devId: 1, pasid: 0, grpid: 7, perm: R, addr: IOVA, cookie: 2 }),
        pgfaultBytes({ flags: 0, devId: 1, pasid: 0, grpid: 7, perm: R, addr: IOVA + PAGE, cookie: 2 }),
        pgfaultBytes({ flags: LAST, devId: 1, pasid: 0, grpid: 7, perm: R, addr: IOVA + 2 * PAGE, cookie: 2 }),
      ),
    );
    expect(fqB.read(16 * REC)).toEqual(pgfaultBytes({ flags: LAST, devId: 2, pasid: 0, grpid: 2, perm: R, addr: IOVA, cookie: 1 }));
    fqA.write(responses([2, IOMMUFD_PAGE_RESP_SUCCESS], [1, IOMMUFD_PAGE_RESP_SUCCESS]));
    fqB.write(responses([1, IOMMUFD_PAGE_RESP_INVALID]));
    await iopf.flush();
    expect(rig.cmds.faultCmds()).toEqual([priRespCmd(A, -1, 7, 2), priRespCmd(A, -1, 8, 2), priRespCmd(B, -1, 2, 1)]);
    expect(hw.stats()).toMatchObject({ pageResponses: 4, pageResponsesAutomatic: 1 });
    off();
  });

  it("§3.5 with priAutoResponse 'deny': the dropped Last request is answered ResponseFailure by the SMMU, nothing reaches the fault layer for it", async () => {
    rig = await openSmmuFaultRig({ options: { driverPriqLog2: 0, priAutoResponse: 'deny' } });
    const { stack, driver, hw, iopf } = rig;
    expect(driver.layout.priqLog2).toBe(0);
    const dev = await driver.probeDevice({ rid: A, ats: true, pri: true });
    await driver.attachDevice(dev, await driver.domainAllocPaging(dev));
    const fq = new FaultQueue();
    iopf.addDevice(dev, () => attachment('a', fq), 1);
    const pri = rig.priFunction(A);
    const first = pri.request([{ addr: IOVA, perm: R }]); // index 0: the single entry
    const second = pri.request([{ addr: IOVA + PAGE, perm: R }]); // index 1: dropped
    expect(await second).toBe(PageResponseCode.FAILURE);
    await settle();
    await driver.drainFaults();
    expect(rig.delivered).toEqual([{ rid: A, pasid: -1, grpid: 1, code: PageResponseCode.FAILURE }]);
    expect(iopf.stats).toMatchObject({ requests: 1, groups: 1, pageRequestOverflows: 1, partialDiscarded: 0 });
    expect(fq.read(4 * REC)).toEqual(pgfaultBytes({ flags: LAST, devId: 1, pasid: 0, grpid: 0, perm: R, addr: IOVA, cookie: 1 }));
    fq.write(responses([1, IOMMUFD_PAGE_RESP_SUCCESS]));
    await iopf.flush();
    expect(await first).toBe(PageResponseCode.SUCCESS);
    expect(hw.stats()).toMatchObject({ priDropped: 1, pageResponses: 2, pageResponsesAutomatic: 1 });
  });
});
