// The example of packages/hw-smmuv3/README.md. Run: node --import tsx apps/examples/src/hw-smmuv3-quick-start.ts
import { FaultReason, IotlbGather, Prot, openBackend, type IommuFault } from '@iommulab/driver-api';
import { PhysMem } from '@iommulab/runtime';

export async function main(log: (...a: unknown[]) => void = console.log): Promise<void> {
  const mem = PhysMem.create(64 << 20); // host RAM, shared with the SMMU's worker
  const stack = await openBackend('@iommulab/hw-smmuv3', { mem, mode: 'worker', resolveFrom: import.meta.url });
  const { driver, port } = stack; // the driver has probed and reset the SMMU (stream table, queues, SMMUEN)
  const dev = await driver.probeDevice({ rid: 0x10 }); // StreamID 0x10
  const dom = await driver.domainAllocPaging(dev); // stage 1: LPAE tables, an ASID
  await driver.attachDevice(dev, dom); // CD + STE written, CFGI_CD / CFGI_STE + CMD_SYNC

  // Two 4 KiB pages at IOVA 0x4000_0000 the device may read and write.
  const buf = mem.allocFrames(2);
  mem.writeBytes(buf, new TextEncoder().encode('ping'));
  dom.mapPages(0x4000_0000, buf, 4096, 2, Prot.READ | Prot.WRITE);

  // The device's DMA: the SMMU translates (in its worker), the device accesses PhysMem at the PA.
  const rd = await port.translate({ rid: 0x10, iova: 0x4000_0000, access: 'read' });
  const wr = await port.translate({ rid: 0x10, iova: 0x4000_1000, access: 'write' });
  mem.writeBytes(wr.pa, mem.readBytes(rd.pa, 4).reverse());
  log(new TextDecoder().decode(mem.readBytes(buf + 4096, 4)), wr.pa - rd.pa); // gnip 4096

  // Unmap: the TLB keeps the translation until the driver's TLBI_NH_VA + CMD_SYNC.
  const faults: IommuFault[] = [];
  driver.onFault((f) => faults.push(f));
  const gather = new IotlbGather();
  dom.unmapPages(0x4000_1000, 4096, 1, gather);
  log((await port.translate({ rid: 0x10, iova: 0x4000_1000 })).ok); // true: stale TLB entry
  await dom.iotlbSync(gather);
  const r = await port.translate({ rid: 0x10, iova: 0x4000_1000 });
  log(r.fault === FaultReason.TRANSLATION, r.faultDetail.toString(16)); // true 10 (F_TRANSLATION)

  // The SMMU wrote an event record to the event queue; the driver drains it.
  await driver.drainFaults();
  const f = faults[0]!;
  if (f.kind !== 'event') throw new Error(`expected an event record, got ${f.kind}`);
  log(f.kind, f.rid.toString(16), f.addr.toString(16)); // event 10 40001000 (StreamID, IOVA)
  log(JSON.stringify(await stack.host.stats(), ['translations', 'tlbHits', 'walks', 'faults', 'events']));
  // {"translations":4,"tlbHits":1,"walks":3,"faults":1,"events":1}
  await stack.close();
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
