/**
 * Bench: the SMMUv3 model in its own worker thread (runtime InstanceHost, model-only backend
 * test/helpers/model-backend.ts), brought up through the shared register file (smmuv3.md §1.6);
 * the runtime's workload generator drives the device port next to the model, in the worker, and
 * reports the worker's heap-used delta over the timed loop.
 *
 *   cd /work/main/packages/hw-smmuv3 && node --conditions=@iommulab/source --import tsx bench/translate-worker.ts
 *
 * Patterns: TLB hits (2048 × 4 KiB pages: sequential 64-byte steps, 4104-byte strides, random
 * pages) and stage-1 walks (65536 pages, every translation misses the 4096-entry TLB).
 * When src/backend.ts and the driver exist, the same can be run through
 * `openBackend(..., { mode: 'worker' })` + `stack.host.runWorkload` like hw-mock's bench.
 */
import { HandTables, S1_AP_EL0, S1_NG, S1_PAGE, linuxCd, linuxS1Ste } from '../test/helpers/spec-rig.js';
import { HostRig } from '../test/helpers/host-rig.js';
import { CmdOp } from '../src/codec/index.js';

const RUNS = 5;
const HIT_PAGES = 2048;
const WALK_PAGES = 65536;
const WALK_BASE = 0x1000_0000;

const rig = await HostRig.open('worker', 256 * 1024 * 1024);
try {
  const mem = rig.mem;
  const data = mem.allocFrames(16);
  const pt = new HandTables(mem, 0);
  for (let i = 0; i < HIT_PAGES; i++) pt.map(i * 4096, data + (i & 15) * 4096, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
  for (let i = 0; i < WALK_PAGES; i++) pt.map(WALK_BASE + i * 4096, data + (i & 15) * 4096, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
  const cd = mem.allocFrame();
  rig.writeCd(cd, linuxCd(pt.root, 1));
  rig.writeSte(3, linuxS1Ste(cd));
  rig.put({ OPCODE: CmdOp.CFGI_STE, SID: 3, LEAF: 1 });
  await rig.sync();

  const patterns = [
    { name: 'hit seq', pattern: 'sequential' as const, iovaBase: 0, length: HIT_PAGES * 4096, step: 64, count: 20_000_000 },
    { name: 'hit strided', pattern: 'strided' as const, iovaBase: 0, length: HIT_PAGES * 4096, step: 4104, count: 20_000_000 },
    { name: 'hit random', pattern: 'random' as const, iovaBase: 0, length: HIT_PAGES * 4096, step: 4096, count: 20_000_000 },
    { name: 's1 walks', pattern: 'sequential' as const, iovaBase: WALK_BASE, length: WALK_PAGES * 4096, step: 4096, count: 2_000_000 },
  ];
  console.log('# cd /work/main/packages/hw-smmuv3 && node --conditions=@iommulab/source --import tsx bench/translate-worker.ts');
  console.log(`# SmmuV3Hardware in its own worker, runtime workload generator, ${RUNS} runs per pattern, median`);
  console.log('pattern        median M/s   runs (M/s)                          heap delta (worker, bytes)          faults');
  for (const p of patterns) {
    const spec = { pattern: p.pattern, rid: 3, iovaBase: p.iovaBase, length: p.length, step: p.step, count: p.count };
    await rig.host.runWorkload({ ...spec, count: Math.min(p.count, 2_000_000) }); // warm-up
    const rates: number[] = [];
    const heaps: number[] = [];
    let faults = 0;
    for (let r = 0; r < RUNS; r++) {
      const res = await rig.host.runWorkload(spec);
      rates.push(res.translationsPerSec / 1e6);
      heaps.push(res.heapUsedDelta);
      faults += res.faults;
    }
    const median = [...rates].sort((a, b) => a - b)[Math.floor(RUNS / 2)];
    console.log(
      `${p.name.padEnd(12)} ${median.toFixed(2).padStart(10)}   ${rates.map((x) => x.toFixed(2)).join(' / ').padEnd(34)}  ${heaps.join(' / ').padEnd(34)}  ${faults}`,
    );
  }
  const st = await rig.host.stats();
  console.log(`# worker stats: ${JSON.stringify({ translations: st.translations, tlbHits: st.tlbHits, tlbMisses: st.tlbMisses, walks: st.walks, walkSteps: st.walkSteps })}`);
} finally {
  await rig.host.shutdown();
}
