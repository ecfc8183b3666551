// The example of packages/hw-mock/README.md. Run: node --import tsx apps/examples/src/hw-mock-quick-start.ts
import { FaultReason, IotlbGather, Prot, openBackend } from '@iommulab/driver-api';
import { MOCK_APERTURE_START, MOCK_PAGE_SIZE } from '@iommulab/hw-mock';

export async function main(log: (...a: unknown[]) => void = console.log): Promise<void> {
  const stack = await openBackend('@iommulab/hw-mock', { mode: 'worker', resolveFrom: import.meta.url });
  const { driver, port, mem } = stack;
  const dev = await driver.probeDevice({ rid: 1 });
  const dom = await driver.domainAllocPaging(dev);
  await driver.attachDevice(dev, dom);

  // One 2 KiB IO page, read-only.
  const pa = mem.allocFrame();
  dom.mapPages(MOCK_APERTURE_START, pa, MOCK_PAGE_SIZE, 1, Prot.READ);
  const rd = await port.translate({ rid: 1, iova: MOCK_APERTURE_START + 8, access: 'read' });
  const wr = await port.translate({ rid: 1, iova: MOCK_APERTURE_START + 8, access: 'write' });
  log(rd.pa - pa, wr.fault === FaultReason.PERMISSION); // 8 true

  // Like hardware, the IOTLB keeps the translation until the driver invalidates it.
  const gather = new IotlbGather();
  dom.unmapPages(MOCK_APERTURE_START, MOCK_PAGE_SIZE, 1, gather);
  log((await port.translate({ rid: 1, iova: MOCK_APERTURE_START })).ok); // true: stale IOTLB entry
  await dom.iotlbSync(gather); // CMD_INV_RANGE + CMD_SYNC
  log((await port.translate({ rid: 1, iova: MOCK_APERTURE_START })).fault === FaultReason.TRANSLATION); // true

  log(JSON.stringify(await stack.host.stats(), ['translations', 'hits', 'misses', 'walks', 'faults']));
  await stack.close();
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
