// The example of packages/driver-api/README.md. Run: node --import tsx apps/examples/src/driver-api-quick-start.ts
import { ACCESS_READ, IotlbGather, Prot, dmaRequest, openBackend } from '@iommulab/driver-api';

export async function main(log: (...a: unknown[]) => void = console.log): Promise<void> {
  const stack = await openBackend('@iommulab/hw-mock', { mode: 'worker', resolveFrom: import.meta.url });
  const { driver, port, mem } = stack;

  const dev = await driver.probeDevice({ rid: 0x10 });
  const dom = await driver.domainAllocPaging(dev);
  await driver.attachDevice(dev, dom);

  const pa = mem.allocFrame();
  dom.mapPages(0x0100_0000, pa, 2048, 1, Prot.READ | Prot.WRITE);

  const r = await port.translate(dmaRequest({ rid: 0x10, iova: 0x0100_0010, access: ACCESS_READ }));
  log(r.ok, r.pa === pa + 0x10); // true true

  const gather = new IotlbGather();
  dom.unmapPages(0x0100_0000, 2048, 1, gather);
  await dom.iotlbSync(gather);
  log((await port.translate({ rid: 0x10, iova: 0x0100_0010, access: 'read' })).ok); // false

  await stack.close();
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
