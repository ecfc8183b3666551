// The example of packages/fault-queues/README.md. Run: node --conditions=@iommulab/source --import tsx apps/examples/src/fault-queues-quick-start.ts
import { PageResponseCode, PgFaultPerm, Prot, openBackend } from '@iommulab/driver-api';
import {
  FaultQueue,
  IOMMUFD_PAGE_RESP_SUCCESS,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IopfQueue,
  PriFunction,
  decodePgfaults,
  encodePageResponses,
} from '@iommulab/fault-queues';
import type { SmmuV3Hardware } from '@iommulab/hw-smmuv3';

export async function main(log: (...a: unknown[]) => void = console.log): Promise<void> {
  const stack = await openBackend('@iommulab/hw-smmuv3', { mode: 'in-thread', memBytes: 64 << 20, resolveFrom: import.meta.url });
  const { driver, port, mem } = stack;
  const dev = await driver.probeDevice({ rid: 0x10, ats: true, pri: true }); // StreamID 0x10, ATS + PRI
  const dom = await driver.domainAllocPaging(dev);
  await driver.attachDevice(dev, dom); // nothing mapped yet

  // The SMMU's fault layer, and one fault queue (what an iommufd FAULT object holds) for the device.
  const iopf = IopfQueue.of(driver);
  const fq = new FaultQueue();
  iopf.addDevice(dev, () => ({ handle: dom, sink: fq }), /* dev_id */ 1);

  // The fault handler: read 40-byte records, map each page, answer each group once by its cookie.
  fq.onReadable(() =>
    queueMicrotask(() => {
      const records = decodePgfaults(fq.read(40 * 64));
      for (const r of records) log(r.devId, r.grpid, r.cookie, r.flags, r.addr.toString(16)); // dev_id, PRG index, cookie, LAST_PAGE
      for (const r of records) dom.mapPages(r.addr, mem.allocFrame(), 4096, 1, Prot.READ | Prot.WRITE);
      const last = records.filter((r) => (r.flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE) !== 0);
      fq.write(encodePageResponses(last.map((r) => ({ cookie: r.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS }))));
    }),
  );

  // The device: PCIe PRI with credits; the SMMU hands PRG responses back to it.
  const pri = new PriFunction({ rid: 0x10, capacity: 32, send: (req) => port.pageRequest(req) });
  (stack.host.hardware as SmmuV3Hardware).onPageResponse((r) => pri.receive(r));
  const miss = await port.atsTranslate({ rid: 0x10, iova: 0x4000_1000, access: 'write' });
  const code = await pri.request([
    { addr: 0x4000_0000, perm: PgFaultPerm.READ },
    { addr: 0x4000_1000, perm: PgFaultPerm.READ | PgFaultPerm.WRITE },
  ]);
  log(miss.ok, code === PageResponseCode.SUCCESS, pri.outstanding); // false true 0

  // Success: the device retries its ATS translation, which now hits.
  const retry = await port.atsTranslate({ rid: 0x10, iova: 0x4000_1000, access: 'write' });
  log(retry.ok, JSON.stringify(iopf.stats, ['requests', 'groups', 'success'])); // true {"requests":2,"groups":1,"success":1}
  iopf.close();
  await stack.close();
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
