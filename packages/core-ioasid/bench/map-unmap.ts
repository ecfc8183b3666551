/**
 * IOMMU_IOAS_MAP / UNMAP throughput of 4 KiB pages through the typed IommuFd API, and the model's
 * metadata for mapping 1 GiB. Run from packages/core-ioasid:
 *   node --conditions=@iommulab/source --expose-gc --import tsx bench/map-unmap.ts
 *
 * 1. no domain (IOAS bookkeeping only; like the kernel, nothing is pinned without a domain):
 *    a. one 64 MiB map + unmap, repeated; b. many single-page fixed maps, then single-page unmaps.
 * 2. with a null paging domain attached (pinning + accounting + iommu_pgsize loop + IOTLB gather;
 *    the domain itself does nothing): the same two shapes.
 * 3. metadata held by the model for 1 GiB mapped: one area (no domain / pinned by a domain) and
 *    262144 single-page areas; heapUsed + arrayBuffers deltas after GC. Bar: <= 2 % (20 MiB).
 * Bars: >= 1 M pages/s each way.
 */
import type { IotlbGather } from '@iommulab/driver-api';
import { PhysMem } from '@iommulab/runtime';
import { getIoas } from '../src/ioas.js';
import { IommuFd } from '../src/iommufd.js';
import type { IoptDomain } from '../src/io-pagetable/domain-map.js';
import { IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE } from '../src/uapi/constants.js';
import { UserProcess } from '../src/user-memory/process.js';

const PAGE = 4096;
const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
const FIXED = IOMMU_IOAS_MAP_FIXED_IOVA;
const U64_MAX = (1n << 64n) - 1n;

/** A paging domain that accepts everything and keeps nothing (measures the core, not a page table). */
class NullDomain implements IoptDomain {
  readonly pageSizes = [4096, 2 * 1024 * 1024, 1024 * 1024 * 1024];
  readonly aperture = { start: 0, last: 2 ** 48 - 1 };
  mapPages(_iova: number, _pa: number, pageSize: number, count: number): number {
    return pageSize * count;
  }
  unmapPages(iova: number, pageSize: number, count: number, gather: IotlbGather): number {
    gather.add(iova, pageSize * count, pageSize);
    return pageSize * count;
  }
  async iotlbSync(g: IotlbGather): Promise<void> {
    g.reset();
  }
}

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const now = (): number => Number(process.hrtime.bigint()) / 1e9;
const fmt = (pages: number, s: number): string => `${(pages / s / 1e6).toFixed(2)} M pages/s (${(s * 1e3).toFixed(1)} ms)`;
const mib = (b: number): string => `${(b / 1048576).toFixed(2)} MiB`;

async function throughput(label: string, withDomain: boolean): Promise<void> {
  const BIG = 64 * 1024 * 1024;
  const mem = PhysMem.create(BIG + 64 * 1024 * 1024);
  const proc = UserProcess.create({ mem });
  const buf = proc.mmap({ length: BIG, hugeAlign: 2 * 1024 * 1024 });
  const fd = IommuFd.open({ process: proc });
  const ioasId = (await fd.ioasAlloc()).outIoasId;
  if (withDomain) await getIoas(fd.ctx, ioasId).iopt.addDomain(new NullDomain());
  const bigPages = BIG / PAGE;

  // a. 64 MiB in one call
  const reps = withDomain ? 5 : 200;
  let tMap = 0;
  let tUnmap = 0;
  for (let r = 0; r < reps + 1; r++) {
    const t0 = now();
    const { iova } = await fd.ioasMap({ flags: RW, ioasId, userVa: buf, length: BIG });
    const t1 = now();
    await fd.ioasUnmap({ ioasId, iova, length: BIG });
    const t2 = now();
    if (r > 0) {
      tMap += t1 - t0;
      tUnmap += t2 - t1;
    }
  }
  console.log(`${label} 64 MiB map:   ${fmt(bigPages * reps, tMap)}`);
  console.log(`${label} 64 MiB unmap: ${fmt(bigPages * reps, tUnmap)}`);

  // b. single-page maps at fixed IOVAs, then single-page unmaps
  const N = withDomain ? 16384 : 100_000;
  for (let pass = 0; pass < 2; pass++) {
    const t0 = now();
    for (let i = 0; i < N; i++) await fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: buf + (i % bigPages) * PAGE, length: PAGE, iova: (i + 1) * PAGE });
    const t1 = now();
    for (let i = 0; i < N; i++) await fd.ioasUnmap({ ioasId, iova: (i + 1) * PAGE, length: PAGE });
    const t2 = now();
    if (pass === 1) {
      console.log(`${label} ${N} x 4 KiB map:   ${fmt(N, t1 - t0)}`);
      console.log(`${label} ${N} x 4 KiB unmap: ${fmt(N, t2 - t1)}`);
    }
  }
  await fd.close();
  proc.exit();
}

function mem0(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function metadata(): Promise<void> {
  const GIB = 1024 * 1024 * 1024;
  const npages = GIB / PAGE;
  const mem = PhysMem.create(GIB + 16 * 1024 * 1024);
  const proc = UserProcess.create({ mem });
  const buf = proc.mmap({ length: GIB, hugeAlign: 2 * 1024 * 1024 });
  // Populate the user pages first so the process's own page tables are not counted.
  for (let off = 0; off < GIB; off += 64 * 1024 * 1024) proc.write(buf + off, new Uint8Array(1));
  proc.pin(buf, npages, true).forEach(() => {});
  const pas = proc.pin(buf, npages, true);
  proc.unpin(pas);
  const fd = IommuFd.open({ process: proc });
  const ioasId = (await fd.ioasAlloc()).outIoasId;
  const iopt = getIoas(fd.ctx, ioasId).iopt;

  let b = mem0();
  await fd.ioasMap({ flags: RW, ioasId, userVa: buf, length: GIB });
  const oneArea = mem0() - b;
  await fd.ioasUnmap({ ioasId, iova: 0, length: U64_MAX });

  const dom = new NullDomain();
  await iopt.addDomain(dom);
  b = mem0();
  await fd.ioasMap({ flags: RW, ioasId, userVa: buf, length: GIB });
  const oneAreaPinned = mem0() - b;
  await fd.ioasUnmap({ ioasId, iova: 0, length: U64_MAX });
  await iopt.removeDomain(dom);

  b = mem0();
  for (let i = 0; i < npages; i++) await fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: buf + i * PAGE, length: PAGE, iova: (i + 1) * PAGE });
  const manyAreas = mem0() - b;
  await fd.ioasUnmap({ ioasId, iova: 0, length: U64_MAX });

  console.log(`metadata for 1 GiB, one area, no domain:          ${mib(oneArea)} (${((oneArea / GIB) * 100).toFixed(3)} %)`);
  console.log(`metadata for 1 GiB, one area, pinned for a domain: ${mib(oneAreaPinned)} (${((oneAreaPinned / GIB) * 100).toFixed(3)} %)`);
  console.log(`metadata for 1 GiB, 262144 single-page areas:     ${mib(manyAreas)} (${((manyAreas / GIB) * 100).toFixed(3)} %)`);
  await fd.close();
  proc.unpin(proc.pin(buf, 1, true));
  proc.exit();
}

await throughput('no domain:  ', false);
await throughput('null domain:', true);
await metadata();
