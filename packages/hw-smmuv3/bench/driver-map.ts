/**
 * Bench: the host driver's map and unmap of 4 KiB pages on a stage-1 domain attached to a device
 * of an in-thread SmmuV3Hardware — 64 MiB (16384 pages) per run in bulk calls (mapPages with
 * `count`, unmapPages + one iotlbSync: RIL range TLBIs + CMD_SYNC through the command queue);
 * medians of the timed runs. Target: ≥ 1 M pages/s for map and for unmap each.
 * Run: `cd /work/main/packages/hw-smmuv3 && node --conditions=@iommulab/source --expose-gc --import tsx bench/driver-map.ts`
 */
import { IotlbGather, Prot } from '@iommulab/driver-api';
import { PhysMem, RegisterFile } from '@iommulab/runtime';
import { SMMU_REG_BYTES } from '../src/codec/index.js';
import { createSmmuV3Driver } from '../src/driver/driver.js';
import { SmmuV3Hardware } from '../src/model/smmu.js';

const PAGE = 4096;
const BYTES = 64 * 1024 * 1024;
const PAGES = BYTES / PAGE;
/** Pages per mapPages / unmapPages call (bulk calls, as iommufd's iopt fill does). */
const CHUNK = Number(process.env.CHUNK ?? 512);
const RUNS = Number(process.env.RUNS ?? 9);

const mem = PhysMem.create(256 * 1024 * 1024);
const regs = RegisterFile.create(SMMU_REG_BYTES);
const hw = new SmmuV3Hardware({ instanceId: 'bench', mem, regs, options: {} });
regs.onWrite(() => hw.service());
const drv = await createSmmuV3Driver({ instanceId: 'bench', mem, regs, options: {}, timeoutMs: 5000 });
const dev = await drv.probeDevice({ rid: 1 });
const dom = await drv.domainAllocPaging(dev);
await drv.attachDevice(dev, dom);
const pa = mem.allocFrames(PAGES, 512);
const base = 0x10_0000_0000;
const gather = new IotlbGather();

async function once(): Promise<{ map: number; unmap: number }> {
  const t0 = performance.now();
  for (let i = 0; i < PAGES; i += CHUNK) dom.mapPages(base + i * PAGE, pa + i * PAGE, PAGE, CHUNK, Prot.READ | Prot.WRITE);
  await dom.iotlbSyncMap(base, BYTES);
  const t1 = performance.now();
  for (let i = 0; i < PAGES; i += CHUNK) dom.unmapPages(base + i * PAGE, PAGE, CHUNK, gather);
  await dom.iotlbSync(gather);
  const t2 = performance.now();
  return { map: PAGES / ((t1 - t0) / 1000), unmap: PAGES / ((t2 - t1) / 1000) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log('# cd /work/main/packages/hw-smmuv3 && node --conditions=@iommulab/source --expose-gc --import tsx bench/driver-map.ts');
console.log(`# SmmuV3Hardware in-thread (regs.onWrite -> service), node ${process.version}; ${RUNS} timed rounds after 3 warm-up rounds, median`);
for (let i = 0; i < 3; i++) await once(); // warm-up (JIT, table frames)
(globalThis as { gc?: () => void }).gc?.();
const maps: number[] = [];
const unmaps: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const r = await once();
  maps.push(r.map);
  unmaps.push(r.unmap);
}
const fmt = (x: number) => `${(x / 1e6).toFixed(2)} M pages/s`;
console.log(`driver map   ${BYTES >> 20} MiB of 4 KiB pages (chunks of ${CHUNK}): median ${fmt(median(maps))} over ${RUNS} runs (min ${fmt(Math.min(...maps))}, max ${fmt(Math.max(...maps))})`);
console.log(`driver unmap ${BYTES >> 20} MiB of 4 KiB pages + iotlbSync: median ${fmt(median(unmaps))} over ${RUNS} runs (min ${fmt(Math.min(...unmaps))}, max ${fmt(Math.max(...unmaps))})`);
console.log(`commands: ${JSON.stringify({ batches: drv.cmdq.stats.batches, commands: drv.cmdq.stats.commands, syncs: drv.cmdq.stats.syncs })}`);
await drv.shutdown();
