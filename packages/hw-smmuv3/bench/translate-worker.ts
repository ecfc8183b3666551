/**
 * Bench: SMMUv3 translations measured IN THE INSTANCE WORKER. The real backend is opened through
 * driver-api's `openBackend(..., { mode: 'worker' })` (the SmmuV3Hardware in its own worker, the
 * host driver on this thread programming it through the register file, stream table, CDs and
 * CMDQ); the runtime's workload generator (`host.runWorkload`) then drives the device port next
 * to the model, in the worker, with one reused request (no postMessage per translation).
 *
 *   cd /work/main/packages/hw-smmuv3 && node --conditions=@iommulab/source --import tsx bench/translate-worker.ts
 *
 * Bars (issue): TLB-hit translations ≥ 25 M/s; stage-1 4-level walks ≥ 2 M/s; nested walks
 * ≥ 300 K/s. Every scenario: a warm-up run, then RUNS (default 7, at least 5) timed runs; the
 * median is reported with every run's rate, the hit / walk split from the model's stats and
 * the worker's heap-used delta.
 *
 * - tlb-hit: a stage-1 domain (driver `domainAllocPaging`), 2048 × 4 KiB pages mapped: they fit
 *   the 4096-entry main TLB and the 4096-entry micro-TLB. Strided 4104 B (every translation a
 *   different page) is the bar; sequential 64 B and random pages are shown too.
 * - main-tlb-hit (info): 65536-entry main TLB, 16384 pages, random: most translations miss the
 *   micro-TLB and hit the main TLB.
 * - s1-walk: `{ tlbEntries: 4 }` and random pages over 65536 mapped 4 KiB pages (256 MiB of
 *   IOVA): every translation misses the 4-entry main TLB (nearly) and walks 4 levels. The micro-TLB is
 *   filled only from main-TLB hits (micro-tlb.ts), so it stays (nearly) empty: the stats show the
 *   share of walks.
 * - nested-walk: a nest-parent stage-2 domain, a vIOMMU, a vDEVICE and a nested domain from a
 *   guest STE (driver `viommuAlloc` / `vdeviceInit` / `domainAllocNested`, as iommufd does), with
 *   a guest stage-1 table of 65536 4 KiB pages; `{ tlbEntries: 4 }` and random pages: every
 *   translation is a full nested walk. Two stage-2 shapes: 2 MiB blocks (the bar) and 4 KiB pages
 *   (info: 24 descriptor fetches per walk).
 */
import { Prot, type BackendStack, type IommuDevice, type IommuViommu, type PagingDomain } from '@iommulab/driver-api';
import type { WorkloadSpec } from '@iommulab/runtime';
import { fromDwords } from '../src/codec/index.js';
import { makeS1Cd } from '../src/driver/cd-build.js';
import { IoPgtableArm } from '../src/pgtable/index.js';
import { MODE, RUNS, median, openSmmu, report, summary, walkNote, workloadRuns, type Measurement } from './harness.js';

const CMD = 'cd /work/main/packages/hw-smmuv3 && node --conditions=@iommulab/source --import tsx bench/translate-worker.ts';
const RW = Prot.READ | Prot.WRITE;
const PAGE = 4096;
const MiB = 1024 * 1024;
/**
 * IOVA base: 1 GiB (aligned, clear of the reserved MSI window at 128 MiB). Every mapping here ends
 * below 2^31, so IOVAs are small integers in V8; the s1-walk high-IOVA row repeats the walks at
 * 2^38, where they are heap numbers (the worker heap delta there shows whether a walk boxes them).
 */
const BASE = 0x4000_0000;
/** TLB entries of the walk scenarios: tiny, so every translation walks. (1 would do too, but a 1-entry TLB rebuilds its size list twice per insert.) */
const TINY_TLB = 4;

/** Probes a device, allocates a stage-1 paging domain and attaches it. */
async function s1Device(stack: BackendStack, rid: number): Promise<{ dev: IommuDevice; dom: PagingDomain }> {
  const dev = await stack.driver.probeDevice({ rid, name: `bench-${rid}` });
  const dom = await stack.driver.domainAllocPaging(dev);
  await stack.driver.attachDevice(dev, dom);
  return { dev, dom };
}

/** Maps `pages` 4 KiB pages from `iova`, each onto one of 16 data frames (PhysMem stays small). */
async function mapSparse(stack: BackendStack, dom: PagingDomain, iova: number, pages: number): Promise<void> {
  const data = stack.mem.allocFrames(16);
  for (let i = 0; i < pages; i++) dom.mapPages(iova + i * PAGE, data + (i & 15) * PAGE, PAGE, 1, RW);
  await dom.iotlbSyncMap(iova, pages * PAGE);
}

async function measure(
  stack: BackendStack,
  name: string,
  target: number | null,
  spec: WorkloadSpec,
  warm?: number,
): Promise<Measurement> {
  const r = await workloadRuns(stack, spec, warm);
  const heap = median(r.heap);
  return report({
    name,
    runs: r.rates,
    cpuRuns: r.cpuRates,
    target,
    unit: 'translations',
    note: `${walkNote(r.delta)}; worker heap delta median ${heap} B${r.faults ? `; ${r.faults} faulted` : ''}`,
  });
}

/**
 * A nested device: nest-parent S2 (IPA = PA over all of PhysMem, `s2Page` pages), a guest S1
 * table of `pages` 4 KiB pages from BASE, a guest CD, a vIOMMU + vDEVICE, a nested domain from the
 * guest STE, attached.
 */
async function nestedDevice(stack: BackendStack, rid: number, s2Page: number, pages: number): Promise<void> {
  const drv = stack.driver;
  const mem = stack.mem;
  const dev = await drv.probeDevice({ rid, name: `bench-nested-${rid}` });
  const s2 = await drv.domainAllocPaging(dev, { nestParent: true });
  s2.mapPages(0, 0, s2Page, mem.size / s2Page, RW);
  await s2.iotlbSyncMap(0, mem.size);
  const data = mem.allocFrames(16);
  const guest = new IoPgtableArm(mem, { fmt: 's1', granule: PAGE, ias: 48, oas: 48 });
  for (let i = 0; i < pages; i++) guest.map(BASE + i * PAGE, data + (i & 15) * PAGE, PAGE, 1, RW);
  const cdPa = mem.allocFrame();
  mem.u32.set(makeS1Cd(new Uint32Array(16), { tcr: guest.tcr, ttb0: guest.pgdPa, asid: 5, stall: false, dirty: false }), cdPa >>> 2);
  if (drv.viommuAlloc === undefined) throw new Error('the SMMUv3 driver has no viommuAlloc');
  const viommu = (await drv.viommuAlloc(dev, s2, 1, new Uint8Array(0))) as IommuViommu;
  await viommu.vdeviceInit!(dev, BigInt(0x90 + rid));
  // vSTE: V | Config = S1 | S1ContextPtr (dword 0), S1CIR / S1COR / S1CSH (dword 1).
  const vste = fromDwords([BigInt(cdPa) | 0xbn, 0xd4n]);
  const nested = await viommu.domainAllocNested!(dev, 2, new Uint8Array(vste.buffer.slice(0)));
  await drv.attachDevice(dev, nested);
}

console.log(`# ${CMD}`);
const where = MODE === 'worker' ? 'in its own worker' : 'IN-THREAD (MODE=in-thread)';
console.log(
  `# hw-smmuv3 backend through openBackend (hardware ${where}), node ${process.version}; ` +
    `runtime workload generator next to the model; ${RUNS} timed runs per row after a warm-up, median`,
);
const rows: Measurement[] = [];

// ---- TLB hits (default TLB: 4096 entries, 4-way LRU; micro-TLB 4096 entries)
{
  const stack = await openSmmu('bench-tlb-hit');
  try {
    const { dom } = await s1Device(stack, 3);
    const HIT = 2048;
    const pa = stack.mem.allocFrames(HIT);
    dom.mapPages(BASE, pa, PAGE, HIT, RW);
    await dom.iotlbSyncMap(BASE, HIT * PAGE);
    const range = { rid: 3, iovaBase: BASE, length: HIT * PAGE, count: 20_000_000 };
    rows.push(await measure(stack, 'tlb-hit strided 4104 B', 25e6, { ...range, pattern: 'strided', step: 4104 }));
    rows.push(await measure(stack, 'tlb-hit sequential 64 B (info)', null, { ...range, pattern: 'sequential', step: 64 }));
    rows.push(await measure(stack, 'tlb-hit random pages (info)', null, { ...range, pattern: 'random', step: PAGE, seed: 7 }));
  } finally {
    await stack.close();
  }
}

// ---- main-TLB hits: 65536-entry TLB, 16384 pages, random (the micro-TLB holds a quarter)
{
  const stack = await openSmmu('bench-main-tlb', { tlbEntries: 65536 });
  try {
    const { dom } = await s1Device(stack, 3);
    const N = 16384;
    await mapSparse(stack, dom, BASE, N);
    await stack.host.runWorkload({ pattern: 'sequential', rid: 3, iovaBase: BASE, length: N * PAGE, step: PAGE, count: N });
    rows.push(
      await measure(stack, 'main-tlb-hit random (info)', null, {
        pattern: 'random',
        rid: 3,
        iovaBase: BASE + 8,
        length: N * PAGE,
        step: PAGE,
        count: 10_000_000,
        seed: 11,
      }),
    );
  } finally {
    await stack.close();
  }
}

// ---- stage-1 4-level walks: 1-entry TLB, random over 65536 pages
{
  const stack = await openSmmu('bench-s1-walk', { tlbEntries: TINY_TLB });
  try {
    const { dom } = await s1Device(stack, 3);
    const N = 65536;
    await mapSparse(stack, dom, BASE, N);
    const spec: WorkloadSpec = { pattern: 'random', rid: 3, iovaBase: BASE + 8, length: N * PAGE, step: PAGE, count: 2_000_000, seed: 3 };
    rows.push(await measure(stack, 's1-walk random, 4 levels', 2e6, spec, 500_000));
    rows.push(
      await measure(stack, 's1-walk sweep (info)', null, { ...spec, pattern: 'sequential', seed: undefined }, 500_000),
    );
    // The same walks at IOVA 2^38 (4 levels all the same; the IOVA is no longer a small integer).
    const HIGH = 0x40_0000_0000;
    await mapSparse(stack, dom, HIGH, N);
    rows.push(await measure(stack, 's1-walk random, IOVA >= 2^31 (info)', null, { ...spec, iovaBase: HIGH + 8 }, 500_000));
  } finally {
    await stack.close();
  }
}

// ---- nested walks: 1-entry TLB, guest stage 1 (4 levels) over a stage-2 parent
{
  const stack = await openSmmu('bench-nested', { tlbEntries: TINY_TLB });
  try {
    const N = 65536;
    await nestedDevice(stack, 3, 2 * MiB, N);
    await nestedDevice(stack, 4, PAGE, N);
    const spec: WorkloadSpec = { pattern: 'random', rid: 3, iovaBase: BASE + 8, length: N * PAGE, step: PAGE, count: 500_000, seed: 5 };
    rows.push(await measure(stack, 'nested-walk random, S2 2 MiB blocks', 300e3, spec, 200_000));
    rows.push(await measure(stack, 'nested-walk random, S2 4 KiB (info)', null, { ...spec, rid: 4 }, 200_000));
  } finally {
    await stack.close();
  }
}

summary('translate-worker', CMD, rows);
