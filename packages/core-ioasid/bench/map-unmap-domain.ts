/**
 * IOMMU_IOAS_MAP / UNMAP throughput with one hw-mock device attached (auto HWPT), the hardware
 * in-thread and in a worker; every map really writes the mock's IO page table in PhysMem and every
 * unmap really invalidates its IOTLB through the command queue (CMD_INV_RANGE + CMD_SYNC).
 * Run from packages/core-ioasid:
 *   node --conditions=@iommulab/source --expose-gc --import tsx bench/map-unmap-domain.ts
 *
 * 1. 4 KiB pages (IOAS HUGE_PAGES = 0: each CPU page is two 2 KiB IOPTEs):
 *    a. one 64 MiB map + unmap, repeated, user memory pre-touched;
 *    b. the same with cold memory (fresh mmap each round: first-touch zero-fill inside the pin);
 *    c. 16384 single-page fixed maps, then 16384 single-page unmaps (one IOTLB sync each: the
 *       wait for CMD_SYNC completion dominates, and more so with the hardware in a worker).
 * 2. 2 MiB-aligned maps with HUGE_PAGES = 1: the region's frames are one aligned run, so the domain
 *    gets 1 MiB leaves; leaf counts reported from a walk of the mock table.
 * 3. Model metadata for 1 GiB mapped through the device's domain (heapUsed + arrayBuffers delta
 *    after GC; PhysMem is allocated before the baseline), and the IO page-table frames in PhysMem.
 *    Bar: <= 2 % (20 MiB). Throughput bar: >= 1 M pages/s each way.
 */
import { openBackend, type BackendStack, type InstanceMode } from '@iommulab/driver-api';
import { PhysMem } from '@iommulab/runtime';
import type { HwptPaging } from '../src/hw-pagetable.js';
import { IommuFd } from '../src/iommufd.js';
import { IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET } from '../src/uapi/constants.js';
import { UserProcess } from '../src/user-memory/process.js';

const HW_MOCK = new URL('../../hw-mock/src/index.ts', import.meta.url).href;
const PAGE = 4096;
const MiB = 1024 * 1024;
const APERTURE = 0x0100_0000;
const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
const FIXED = IOMMU_IOAS_MAP_FIXED_IOVA;

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const now = (): number => Number(process.hrtime.bigint()) / 1e9;
const fmt = (pages: number, s: number): string => `${(pages / s / 1e6).toFixed(2)} M pages/s (${(s * 1e3).toFixed(1)} ms)`;
const mib = (b: number): string => `${(b / MiB).toFixed(2)} MiB`;

interface Rig {
  mem: PhysMem;
  proc: UserProcess;
  fd: IommuFd;
  stack: BackendStack;
  ioasId: number;
  hwpt: HwptPaging;
  close(): Promise<void>;
}

async function rig(mode: InstanceMode, memBytes: number, hugePages: boolean): Promise<Rig> {
  const mem = PhysMem.create(memBytes);
  const proc = UserProcess.create({ mem });
  const fd = IommuFd.open({ process: proc });
  const stack = await openBackend(HW_MOCK, { mode, mem, timeoutMs: 60_000 });
  const ioasId = (await fd.ioasAlloc()).outIoasId;
  if (!hugePages) await fd.option({ optionId: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_SET, objectId: ioasId, val64: 0 });
  const { outDevId } = await fd.deviceBind({ stack, spec: { rid: 1 } });
  const { ptId } = await fd.deviceAttach({ devId: outDevId, ptId: ioasId });
  const hwpt = fd.ctx.objects.get<HwptPaging>(ptId, 'hwpt_paging');
  return {
    mem,
    proc,
    fd,
    stack,
    ioasId,
    hwpt,
    async close() {
      await fd.close();
      await stack.close();
      proc.exit();
    },
  };
}

/** Leaves of the mock table over [iova, iova + len): count by size (walks the table, not the IOTLB). */
function leafCounts(r: Rig, iova: number, len: number): Record<string, number> {
  const table = (r.hwpt.domain as unknown as { table: { walk(i: number): { iova: number; size: number } | undefined } }).table;
  const out: Record<string, number> = {};
  for (let p = iova; p < iova + len; ) {
    const l = table.walk(p);
    if (l === undefined) {
      out.none = (out.none ?? 0) + 1;
      p += 2048;
      continue;
    }
    const k = l.size >= MiB ? `${l.size / MiB} MiB` : `${l.size / 1024} KiB`;
    out[k] = (out[k] ?? 0) + 1;
    p = l.iova + l.size;
  }
  return out;
}

async function dmaCheck(r: Rig, iova: number, ok: boolean): Promise<void> {
  const t = await r.stack.port.translate({ rid: 1, iova, access: 'read' });
  if (t.ok !== ok) throw new Error(`DMA at 0x${iova.toString(16)}: ok ${t.ok}, expected ${ok}`);
}

async function fourK(mode: InstanceMode): Promise<void> {
  const BIG = 64 * MiB;
  const pages = BIG / PAGE;
  const r = await rig(mode, BIG * 2 + 64 * MiB, false);
  const { fd, proc, ioasId } = r;
  // a. pre-touched
  const buf = proc.mmap({ length: BIG, hugeAlign: 2 * MiB });
  proc.unpin(proc.pin(buf, pages, true)); // populate (first touch) outside the measurement
  const reps = 5;
  let tMap = 0;
  let tUnmap = 0;
  // warm-up round (JIT), not measured
  await fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: buf, length: BIG, iova: APERTURE });
  await fd.ioasUnmap({ ioasId, iova: APERTURE, length: BIG });
  for (let i = 0; i < reps; i++) {
    let t = now();
    await fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: buf, length: BIG, iova: APERTURE });
    tMap += now() - t;
    if (i === 0) {
      console.log(`  leaves after a 64 MiB map (HUGE_PAGES=0): ${JSON.stringify(leafCounts(r, APERTURE, BIG))}`);
      await dmaCheck(r, APERTURE + BIG - 2048, true);
    }
    t = now();
    await fd.ioasUnmap({ ioasId, iova: APERTURE, length: BIG });
    tUnmap += now() - t;
  }
  await dmaCheck(r, APERTURE + BIG - 2048, false);
  console.log(`  a. 64 MiB map, pre-touched:   map ${fmt(pages * reps, tMap)}   unmap ${fmt(pages * reps, tUnmap)}`);
  // b. cold: a fresh mapping each round, first touch (zero-fill) inside the pin of IOAS_MAP
  tMap = tUnmap = 0;
  for (let i = 0; i < reps; i++) {
    const cold = proc.mmap({ length: BIG, hugeAlign: 2 * MiB });
    let t = now();
    await fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: cold, length: BIG, iova: APERTURE });
    tMap += now() - t;
    t = now();
    await fd.ioasUnmap({ ioasId, iova: APERTURE, length: BIG });
    tUnmap += now() - t;
    proc.munmap(cold, BIG);
  }
  console.log(`  b. 64 MiB map, cold memory:   map ${fmt(pages * reps, tMap)}   unmap ${fmt(pages * reps, tUnmap)}`);
  // c. single-page maps and unmaps
  const N = 16384;
  // warm-up round (JIT), not measured
  for (let i = 0; i < N; i++) await fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: buf + i * PAGE, length: PAGE, iova: APERTURE + i * PAGE });
  for (let i = 0; i < N; i++) await fd.ioasUnmap({ ioasId, iova: APERTURE + i * PAGE, length: PAGE });
  let t = now();
  for (let i = 0; i < N; i++) await fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: buf + i * PAGE, length: PAGE, iova: APERTURE + i * PAGE });
  const sMap = now() - t;
  await dmaCheck(r, APERTURE + (N - 1) * PAGE, true);
  t = now();
  for (let i = 0; i < N; i++) await fd.ioasUnmap({ ioasId, iova: APERTURE + i * PAGE, length: PAGE });
  const sUnmap = now() - t;
  await dmaCheck(r, APERTURE + (N - 1) * PAGE, false);
  console.log(`  c. ${N} single-page calls:   map ${fmt(N, sMap)}   unmap ${fmt(N, sUnmap)}`);
  await r.close();
}

async function huge(mode: InstanceMode): Promise<void> {
  const BIG = 64 * MiB;
  const pages = BIG / PAGE;
  const r = await rig(mode, BIG * 2 + 64 * MiB, true);
  const { fd, proc, ioasId } = r;
  const buf = proc.mmap({ length: BIG, hugeAlign: 2 * MiB });
  proc.unpin(proc.pin(buf, pages, true)); // one aligned run of frames (THP-like)
  const reps = 5;
  let tMap = 0;
  let tUnmap = 0;
  for (let i = 0; i < reps; i++) {
    let t = now();
    // 2 MiB-aligned maps: 32 maps of 2 MiB
    for (let off = 0; off < BIG; off += 2 * MiB) await fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: buf + off, length: 2 * MiB, iova: APERTURE + off });
    tMap += now() - t;
    if (i === 0) {
      console.log(`  leaves after 32 x 2 MiB maps (HUGE_PAGES=1): ${JSON.stringify(leafCounts(r, APERTURE, BIG))}`);
      await dmaCheck(r, APERTURE + BIG - 2048, true);
    }
    t = now();
    for (let off = 0; off < BIG; off += 2 * MiB) await fd.ioasUnmap({ ioasId, iova: APERTURE + off, length: 2 * MiB });
    tUnmap += now() - t;
  }
  await dmaCheck(r, APERTURE + BIG - 2048, false);
  console.log(`  2 MiB-aligned maps, 1 MiB IOPTEs: map ${fmt(pages * reps, tMap)}   unmap ${fmt(pages * reps, tUnmap)}`);
  await r.close();
}

async function metadata(): Promise<void> {
  const GiB = 1024 * MiB;
  for (const hugePages of [false, true]) {
    const r = await rig('in-thread', GiB + 128 * MiB, hugePages);
    const { fd, proc, ioasId, mem } = r;
    const buf = proc.mmap({ length: GiB, hugeAlign: 2 * MiB });
    proc.unpin(proc.pin(buf, GiB / PAGE, true));
    gc();
    gc();
    const m0 = process.memoryUsage();
    const f0 = mem.allocatedFrameCount;
    await fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: buf, length: GiB, iova: APERTURE });
    gc();
    gc();
    const m1 = process.memoryUsage();
    const heap = m1.heapUsed - m0.heapUsed;
    const ab = m1.arrayBuffers - m0.arrayBuffers;
    const tables = (mem.allocatedFrameCount - f0) * PAGE;
    const leaves = leafCounts(r, APERTURE, GiB);
    console.log(
      `  1 GiB mapped (HUGE_PAGES=${hugePages ? 1 : 0}, leaves ${JSON.stringify(leaves)}): model metadata heap ${mib(heap)} + arrayBuffers ${mib(ab)} = ${mib(heap + ab)} (${(((heap + ab) / GiB) * 100).toFixed(3)} %); IO page-table frames in PhysMem ${mib(tables)} (${((tables / GiB) * 100).toFixed(3)} %)`,
    );
    await fd.ioasUnmap({ ioasId, iova: APERTURE, length: GiB });
    await r.close();
  }
}

for (const mode of ['in-thread', 'worker'] as const) {
  console.log(`hw-mock ${mode}: 4 KiB pages`);
  await fourK(mode);
  console.log(`hw-mock ${mode}: 2 MiB-aligned maps`);
  await huge(mode);
}
console.log('metadata for 1 GiB mapped (hw-mock in-thread)');
await metadata();
