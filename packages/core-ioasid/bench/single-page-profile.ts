/**
 * Profiling helper: only the single-page map / unmap loop of map-unmap-domain.ts (hw-mock, one
 * device, HUGE_PAGES = 0). Run from packages/core-ioasid:
 *   node --cpu-prof --conditions=@iommulab/source --import tsx bench/single-page-profile.ts [in-thread|worker|null] [rounds]
 */
import { openBackend, type InstanceMode, type IotlbGather } from '@iommulab/driver-api';
import { getIoas } from '../src/ioas.js';
import { PhysMem } from '@iommulab/runtime';
import { IommuFd } from '../src/iommufd.js';
import { IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET } from '../src/uapi/constants.js';
import { UserProcess } from '../src/user-memory/process.js';

const HW_MOCK = new URL('../../hw-mock/src/index.ts', import.meta.url).href;
const PAGE = 4096;
const MiB = 1024 * 1024;
const APERTURE = 0x0100_0000;
const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
const FIXED = IOMMU_IOAS_MAP_FIXED_IOVA;
const mode = (process.argv[2] ?? 'in-thread') as InstanceMode | 'null';
const rounds = Number(process.argv[3] ?? 10);

const mem = PhysMem.create(256 * MiB);
const proc = UserProcess.create({ mem });
const fd = IommuFd.open({ process: proc });
const ioasId = (await fd.ioasAlloc()).outIoasId;
await fd.option({ optionId: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_SET, objectId: ioasId, val64: 0 });
const stack = mode === 'null' ? null : await openBackend(HW_MOCK, { mode, mem, timeoutMs: 60_000 });
if (stack === null) {
  // 'null': a paging domain that accepts everything and keeps nothing (the core's own cost)
  await getIoas(fd.ctx, ioasId).iopt.addDomain({
    pageSizes: [4096],
    aperture: { start: 0, last: 2 ** 48 - 1 },
    mapPages: (_iova: number, _pa: number, pageSize: number, count: number) => pageSize * count,
    unmapPages(iova: number, pageSize: number, count: number, gather: IotlbGather) {
      gather.add(iova, pageSize * count, pageSize);
      return pageSize * count;
    },
    async iotlbSync(g: IotlbGather) {
      g.reset();
    },
  });
} else {
  const { outDevId } = await fd.deviceBind({ stack, spec: { rid: 1 } });
  await fd.deviceAttach({ devId: outDevId, ptId: ioasId });
}
const N = 16384;
const buf = proc.mmap({ length: N * PAGE, hugeAlign: 2 * MiB });
proc.unpin(proc.pin(buf, N, true));
let tm = 0;
let tu = 0;
for (let r = 0; r < rounds; r++) {
  let t = performance.now();
  for (let i = 0; i < N; i++) await fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: buf + i * PAGE, length: PAGE, iova: APERTURE + i * PAGE });
  tm += performance.now() - t;
  t = performance.now();
  for (let i = 0; i < N; i++) await fd.ioasUnmap({ ioasId, iova: APERTURE + i * PAGE, length: PAGE });
  tu += performance.now() - t;
}
console.log(`${mode}: ${rounds} x ${N} single-page calls: map ${((N * rounds) / tm / 1e3).toFixed(3)} M pages/s, unmap ${((N * rounds) / tu / 1e3).toFixed(3)} M pages/s`);
await fd.close();
await stack?.close();
proc.exit();
