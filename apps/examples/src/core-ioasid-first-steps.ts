// The example of packages/core-ioasid/README.md. Run: node --import tsx apps/examples/src/core-ioasid-first-steps.ts
import { openBackend } from '@iommulab/driver-api';
import { IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE, IommuFd } from '@iommulab/core-ioasid';
import { PhysMem } from '@iommulab/runtime';

export async function main(log: (...a: unknown[]) => void = console.log): Promise<void> {
  const mem = PhysMem.create(256 * 1024 * 1024);
  const iommu = await openBackend('@iommulab/hw-mock', { mem, resolveFrom: import.meta.url }); // one IOMMU, own worker
  const fd = IommuFd.open({ mem }); // open("/dev/iommu")

  const { outIoasId: ioas } = await fd.ioasAlloc(); // the container handle
  const { outDevId: dev } = await fd.deviceBind({ stack: iommu, spec: { rid: 0x10 } }); // bind the VF
  const { ptId: hwpt } = await fd.deviceAttach({ devId: dev, ptId: ioas }); // an auto HWPT is created
  log(ioas, dev, hwpt); // 1 2 3

  // Guest RAM: 16 MiB of the VMM's memory at guest physical 0x0100_0000.
  const ram = fd.process.mmap({ length: 16 << 20, shared: true });
  fd.process.write(ram + 0x2000, new TextEncoder().encode('hello'));
  await fd.ioasMap({
    flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
    ioasId: ioas,
    userVa: ram,
    length: 16 << 20,
    iova: 0x0100_0000,
  });

  // The device's DMA to 0x0100_2000 now reaches the page behind `ram + 0x2000`.
  const r = await iommu.port.translate({ rid: 0x10, iova: 0x0100_2000, access: 'read' });
  log(r.ok, new TextDecoder().decode(mem.readBytes(r.pa, 5))); // true hello

  await fd.ioasUnmap({ ioasId: ioas, iova: 0x0100_0000, length: 16 << 20 });
  log((await iommu.port.translate({ rid: 0x10, iova: 0x0100_2000 })).ok); // false

  await fd.close();
  await iommu.close();
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
