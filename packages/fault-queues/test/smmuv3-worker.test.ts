/**
 * The same PRI round trip with the SMMUv3 model in its own worker (openBackend mode 'worker'):
 * the device port carries the ATS translation requests, page requests and DMA through shared
 * rings, the driver on this thread drains the PRIQ (its interrupt loop or drainFaults), the
 * IopfQueue routes to the FaultQueue, and the CMD_PRI_RESP the driver publishes is consumed by the
 * worker. The device side of the model (its PRG Responses) is not reachable from this thread, so
 * the responses are checked in the commands published and the model's counters.
 */
import { ACCESS_READ, FaultReason, NO_PASID, PgFaultPerm, Prot } from '@iommulab/driver-api';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FaultQueue,
  IOMMU_HWPT_PGFAULT_BYTES as REC,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE as LAST,
  IOMMUFD_PAGE_RESP_SUCCESS,
} from '../src/index.js';
import { PAGE, attachment, concat, openSmmuFaultRig, pattern, pgfaultBytes, priRespCmd, responses, type SmmuFaultRig } from './smmuv3-fixture.js';

const A = 0x20;
const B = 0x21;
const IOVA = 0x4000_0000;
const R = PgFaultPerm.READ;
const W = PgFaultPerm.WRITE;

describe('SMMUv3 in a worker: PRI through IopfQueue and FaultQueue', () => {
  let rig: SmmuFaultRig | undefined;
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it('§3.2 steps 1–15 across threads: a two-request PRG → two records (one cookie) → map → {cookie, SUCCESS} → CMD_PRI_RESP Resp 2 consumed by the worker → ATS retry and DMA read succeed; a request with no handler is denied (Resp 1)', async () => {
    rig = await openSmmuFaultRig({ mode: 'worker' });
    const { stack, driver, iopf } = rig;
    expect(stack.host.mode).toBe('worker');
    expect(stack.host.hardware).toBeUndefined();
    const devA = await driver.probeDevice({ rid: A, ats: true, pri: true });
    const devB = await driver.probeDevice({ rid: B, ats: true, pri: true });
    const dom = await driver.domainAllocPaging(devA);
    await driver.attachDevice(devA, dom);
    await driver.attachDevice(devB, await driver.domainAllocPaging(devB));
    const fq = new FaultQueue();
    iopf.addDevice(devA, (p) => (p === NO_PASID ? attachment('a', fq) : null), 5);
    iopf.addDevice(devB, () => null, 6);
    const readable = new Promise<void>((resolve) => fq.onReadable(resolve));

    const miss = await stack.port.atsTranslate({ rid: A, iova: IOVA + 0x80, access: ACCESS_READ });
    expect({ ...miss }).toEqual({ ok: false, pa: 0, fault: FaultReason.TRANSLATION, faultDetail: 0x10 });
    const sent = await Promise.all([
      stack.port.pageRequest({ rid: A, pasid: NO_PASID, addr: IOVA, perm: R, grpid: 17, last: false }),
      stack.port.pageRequest({ rid: A, pasid: NO_PASID, addr: IOVA + PAGE, perm: R | W, grpid: 17, last: true }),
      stack.port.pageRequest({ rid: B, pasid: NO_PASID, addr: IOVA, perm: R, grpid: 4, last: true }),
    ]);
    expect(sent).toEqual([true, true, true]);
    await driver.drainFaults(); // the worker wrote the records before answering the port
    await readable;
    expect(fq.read(8 * REC)).toEqual(
      concat(
        pgfaultBytes({ flags: 0, devId: 5, pasid: 0, grpid: 17, perm: R, addr: IOVA, cookie: 1 }),
        pgfaultBytes({ flags: LAST, devId: 5, pasid: 0, grpid: 17, perm: R | W, addr: IOVA + PAGE, cookie: 1 }),
      ),
    );

    const data = pattern(PAGE, 0x42);
    const pa = rig.frameWith(data);
    const pa2 = rig.frameWith(pattern(PAGE, 0x43));
    dom.mapPages(IOVA, pa, PAGE, 1, Prot.READ);
    dom.mapPages(IOVA + PAGE, pa2, PAGE, 1, Prot.READ | Prot.WRITE);
    await dom.iotlbSyncMap(IOVA, 2 * PAGE);
    expect(fq.write(responses([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
    await iopf.flush();
    expect(rig.cmds.faultCmds()).toEqual([priRespCmd(B, -1, 4, 1), priRespCmd(A, -1, 17, 2)]);
    expect(await stack.host.stats()).toMatchObject({ priRequests: 3, priQueued: 3, pageResponses: 2, pageResponsesAutomatic: 0, atsRequests: 1 });
    expect(iopf.stats).toMatchObject({ requests: 3, groups: 1, noHandler: 1, success: 1, invalid: 1, responseErrors: 0 });

    const retry = await stack.port.atsTranslate({ rid: A, iova: IOVA + 0x80, access: ACCESS_READ });
    expect({ ...retry }).toEqual({ ok: true, pa: pa + 0x80, fault: 0, faultDetail: 0 });
    const dma = await stack.port.translate({ rid: A, iova: IOVA + PAGE + 0x10, access: ACCESS_READ });
    expect([dma.ok, dma.pa]).toEqual([true, pa2 + 0x10]);
    expect(stack.mem.readBytes(dma.pa, 8)).toEqual(pattern(PAGE, 0x43).subarray(0x10, 0x18));
  });
});
