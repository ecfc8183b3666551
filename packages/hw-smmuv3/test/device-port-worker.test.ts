/**
 * ATS-capable devices reach the SMMUv3 in its worker through the device port: PCIe ATS
 * Translation Requests (`port.atsTranslate`, smmuv3.md §3.9 / STE.EATS) and PRI Page Requests
 * (`port.pageRequest`, §6 PRI queue), with the driver on this thread draining the PRIQ and
 * answering with CMD_PRI_RESP (§6.2). Everything crosses only shared memory.
 */
import { FaultReason, PageResponseCode, PgFaultPerm, Prot, openBackend, type IommuFault } from '@iommulab/driver-api';
import { ACCESS_READ, ACCESS_WRITE, NO_PASID } from '@iommulab/runtime';
import { afterEach, describe, expect, it } from 'vitest';

const BACKEND = new URL('../src/index.ts', import.meta.url).href;
const SID = 0x20;
const IOVA = 0x4000_0000;

describe('SMMUv3 in a worker: ATS translation requests and PRI page requests through the device port', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  async function stackWithDevice() {
    const stack = await openBackend(BACKEND, { mode: 'worker', memBytes: 32 * 1024 * 1024, timeoutMs: 10_000 });
    closers.push(() => stack.close());
    const dev = await stack.driver.probeDevice({ rid: SID, ats: true, pri: true });
    const dom = await stack.driver.domainAllocPaging(dev);
    await stack.driver.attachDevice(dev, dom);
    return { stack, dev, dom };
  }

  it('an ATS translation request for an unmapped IOVA fails; after map it returns the PA (STE.EATS = 1)', async () => {
    const { stack, dom } = await stackWithDevice();
    const miss = await stack.port.atsTranslate({ rid: SID, iova: IOVA, access: ACCESS_READ });
    expect(miss.ok).toBe(false);
    expect(miss.fault).toBe(FaultReason.TRANSLATION);
    expect(miss.faultDetail).toBe(0x10); // F_TRANSLATION
    const pa = stack.mem.allocFrame();
    dom.mapPages(IOVA, pa, 4096, 1, Prot.READ | Prot.WRITE);
    const hit = await stack.port.atsTranslate({ rid: SID, iova: IOVA + 0x123, access: ACCESS_READ | ACCESS_WRITE });
    expect(hit).toEqual({ ok: true, pa: pa + 0x123, fault: 0, faultDetail: 0 });
  });

  it('a page request reaches the driver as a PageRequest; its response is a CMD_PRI_RESP the SMMU delivers to the device', async () => {
    const { stack, dev, dom } = await stackWithDevice();
    const faults: IommuFault[] = [];
    stack.driver.onFault((f) => faults.push(f));
    const queued = await stack.port.pageRequest({ rid: SID, pasid: NO_PASID, addr: IOVA, perm: PgFaultPerm.READ | PgFaultPerm.WRITE, grpid: 5, last: true });
    expect(queued).toBe(true);
    await stack.driver.drainFaults();
    expect(faults).toEqual([{ kind: 'page-request', rid: SID, pasid: -1, grpid: 5, perm: PgFaultPerm.READ | PgFaultPerm.WRITE, addr: IOVA, last: true }]);
    const pa = stack.mem.allocFrame();
    dom.mapPages(IOVA, pa, 4096, 1, Prot.READ | Prot.WRITE);
    await stack.driver.pageResponse(dev, { rid: SID, pasid: NO_PASID, grpid: 5, code: PageResponseCode.SUCCESS });
    const stats = await stack.host.stats();
    expect(stats.priRequests).toBe(1);
    expect(stats.priQueued).toBe(1);
    expect(stats.pageResponses).toBe(1);
    // The device retries: its ATS request now succeeds.
    const retry = await stack.port.atsTranslate({ rid: SID, iova: IOVA, access: ACCESS_WRITE });
    expect(retry).toEqual({ ok: true, pa, fault: 0, faultDetail: 0 });
  });

  it('a page request from a StreamID the SMMU cannot translate for is still queued (IHI 0070 §8.2: PRI is not affected by STE.EATS; overrides smmuv3.md §12 #6)', async () => {
    const { stack } = await stackWithDevice();
    expect(await stack.port.pageRequest({ rid: SID + 1, pasid: NO_PASID, addr: IOVA, perm: PgFaultPerm.READ, grpid: 1, last: true })).toBe(true);
    const stats = await stack.host.stats();
    expect(stats.priQueued).toBe(1);
  });
});
