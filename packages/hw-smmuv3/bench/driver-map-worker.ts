/**
 * Bench: the host driver's map and unmap of 4 KiB pages with the SMMUv3 hardware IN ITS OWN
 * WORKER (the real backend through driver-api's `openBackend`): a stage-1 domain attached to a
 * device, 64 MiB (16384 pages) per run in bulk calls — `mapPages` with `count` (chunks of 512, as
 * iommufd's iopt fill does) + `iotlbSyncMap`, then `unmapPages` + one `iotlbSync` (range TLBIs +
 * CMD_SYNC through the command queue, completed by the worker: the one cross-thread wait).
 *
 *   cd /work/main/packages/hw-smmuv3 && node --conditions=@iommulab/source --import tsx bench/driver-map-worker.ts
 *
 * Bars (issue): driver map and unmap of 4 KiB pages ≥ 1 M pages/s each. Warm-up (3 rounds), then
 * RUNS (default 7, at least 5) timed rounds; medians. Info rows: one page per call (the
 * worst case: every call walks the table from the top), and the same bulk calls in-thread.
 * (CHUNK=n in the environment changes the pages per call.)
 */
import { IotlbGather, Prot, type BackendStack } from '@iommulab/driver-api';
import type { SmmuV3Driver } from '../src/driver/driver.js';
import { RUNS, openSmmu, report, summary, type Measurement } from './harness.js';

const CMD = 'cd /work/main/packages/hw-smmuv3 && node --conditions=@iommulab/source --import tsx bench/driver-map-worker.ts';
const PAGE = 4096;
const BYTES = 64 * 1024 * 1024;
const PAGES = BYTES / PAGE;
const CHUNK = Number(process.env.CHUNK ?? 512);
const BASE = 0x10_0000_0000;

async function rows(mode: 'worker' | 'in-thread', chunk: number, bars: boolean): Promise<Measurement[]> {
  const stack: BackendStack = await openSmmu(`bench-map-${mode}`, {}, 256 * 1024 * 1024, mode);
  try {
    const drv = stack.driver as SmmuV3Driver;
    const dev = await drv.probeDevice({ rid: 1, name: 'bench-map' });
    const dom = await drv.domainAllocPaging(dev);
    await drv.attachDevice(dev, dom);
    const pa = stack.mem.allocFrames(PAGES, 512);
    const gather = new IotlbGather();
    const once = async (): Promise<{ map: number; unmap: number }> => {
      const t0 = performance.now();
      for (let i = 0; i < PAGES; i += chunk) dom.mapPages(BASE + i * PAGE, pa + i * PAGE, PAGE, chunk, Prot.READ | Prot.WRITE);
      await dom.iotlbSyncMap(BASE, BYTES);
      const t1 = performance.now();
      for (let i = 0; i < PAGES; i += chunk) dom.unmapPages(BASE + i * PAGE, PAGE, chunk, gather);
      await dom.iotlbSync(gather);
      const t2 = performance.now();
      return { map: PAGES / ((t1 - t0) / 1000), unmap: PAGES / ((t2 - t1) / 1000) };
    };
    for (let i = 0; i < 3; i++) await once();
    const c0 = { ...drv.cmdq.stats };
    const maps: number[] = [];
    const unmaps: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const r = await once();
      maps.push(r.map);
      unmaps.push(r.unmap);
    }
    const c = drv.cmdq.stats;
    const cmds = `per round ${(c.commands - c0.commands) / RUNS} commands + ${(c.syncs - c0.syncs) / RUNS} CMD_SYNC in ${(c.batches - c0.batches) / RUNS} batch(es)`;
    const info = bars ? '' : ' (info)';
    return [
      report({
        name: `driver map 4K, ${chunk}/call, ${mode}${info}`,
        runs: maps,
        target: bars ? 1e6 : null,
        unit: 'pages',
        note: `${PAGES} pages per round + iotlbSyncMap`,
      }),
      report({
        name: `driver unmap 4K, ${chunk}/call, ${mode}${info}`,
        runs: unmaps,
        target: bars ? 1e6 : null,
        unit: 'pages',
        note: `${PAGES} pages per round + iotlbSync; ${cmds}`,
      }),
    ];
  } finally {
    await stack.close();
  }
}

console.log(`# ${CMD}`);
console.log(`# hw-smmuv3 backend through openBackend, node ${process.version}; ${BYTES >> 20} MiB of 4 KiB pages per round; ${RUNS} timed rounds after 3 warm-up rounds, median`);
const all: Measurement[] = [];
all.push(...(await rows('worker', CHUNK, true)));
all.push(...(await rows('worker', 1, false)));
all.push(...(await rows('in-thread', CHUNK, false)));
summary('driver-map-worker', CMD, all);
