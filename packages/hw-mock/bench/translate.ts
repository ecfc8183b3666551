/**
 * Bench: IOTLB-hit translations per second, in-thread, with the heap-used delta and the number
 * of GC events during the timed loop (PerformanceObserver 'gc' entries) to show the hit path
 * does not allocate. Run from packages/hw-mock: `pnpm bench` (= node --conditions=@iommulab/source
 * --expose-gc --import tsx bench/translate.ts).
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { ACCESS_READ, NO_PASID, PhysMem, RegisterFile, dmaRequest, dmaResult, runWorkloadSync } from '@iommulab/runtime';
import { encodeDte } from '../src/codec.js';
import { MOCK_APERTURE_START } from '../src/constants.js';
import { MockHardware } from '../src/hardware.js';
import { MockPageTable } from '../src/page-table.js';
import { CTRL_EN, REG_CTRL, REG_DT_BASE, REG_DT_LOG2 } from '../src/regs.js';

const mem = PhysMem.create(64 * 1024 * 1024);
const regs = RegisterFile.create(4096);
const hw = new MockHardware({ instanceId: 'bench', mem, regs, options: { iotlbEntries: 4096 } });
regs.onWrite(() => hw.service());
const dt = mem.allocFrame();
regs.write64(REG_DT_BASE, dt);
regs.write32(REG_DT_LOG2, 7);
const pt = MockPageTable.create(mem, { huge: false });
const PAGES = 2048; // 4 MiB of 2 KiB pages: fits the 4096-entry IOTLB
const buf = mem.allocFrames(PAGES / 2);
pt.map(MOCK_APERTURE_START, buf, PAGES * 2048, 3);
const w = encodeDte({ valid: true, pasidEnable: false, dirtyEnable: false, priEnable: false, domainId: 1, root: pt.root, pasidDir: 0 });
for (let k = 0; k < 8; k++) mem.write32(dt + 32 * 3 + 4 * k, w[k]!);
regs.write32(REG_CTRL, CTRL_EN);

const req = dmaRequest({ rid: 3, pasid: NO_PASID, access: ACCESS_READ });
const out = dmaResult();
const mask = PAGES * 2048 - 1;

function run(n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    req.iova = MOCK_APERTURE_START + ((i * 2056) & mask);
    hw.translate(req, out);
    sum = (sum + out.pa) | 0;
  }
  return sum;
}

// Warm up (fills the IOTLB, gets the JIT to optimise).
for (let r = 0; r < 5; r++) run(1_000_000);
const before = hw.stats();

let gcs = 0;
const obs = new PerformanceObserver((list) => {
  gcs += list.getEntries().length;
});
obs.observe({ entryTypes: ['gc'] });
const g = (globalThis as { gc?: () => void }).gc;

/** One timed loop of `n` translations: rate, heap-used delta, GC events. */
async function measure(n: number) {
  g?.();
  await new Promise((r) => setTimeout(r, 50)); // let the forced GC's entry be delivered first
  const gc0 = gcs;
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = process.hrtime.bigint();
  const sum = run(n);
  const t1 = process.hrtime.bigint();
  const heap1 = process.memoryUsage().heapUsed;
  await new Promise((r) => setTimeout(r, 50)); // let GC entries of the loop be delivered
  const s = Number(t1 - t0) / 1e9;
  return {
    translations: n,
    seconds: Number(s.toFixed(3)),
    mTranslationsPerSec: Number((n / s / 1e6).toFixed(1)),
    heapUsedDeltaBytes: heap1 - heap0,
    gcEvents: gcs - gc0,
    checksum: sum,
  };
}

const small = await measure(10_000_000);
const large = await measure(50_000_000);
// Same model through the runtime's workload generator (one DmaRequest/DmaResult reused).
const wl = runWorkloadSync(hw, { pattern: 'sequential', rid: 3, iovaBase: MOCK_APERTURE_START, length: PAGES * 2048, step: 2056, count: 20_000_000 });
obs.disconnect();
const after = hw.stats();
console.log(
  JSON.stringify(
    {
      iotlbEntries: 4096,
      pagesTouched: PAGES,
      loop10M: small,
      loop50M: large,
      heapDeltaPerTranslation: Number(((large.heapUsedDeltaBytes - small.heapUsedDeltaBytes) / 40_000_000).toFixed(4)),
      runWorkloadSync: { mTranslationsPerSec: Number((wl.translationsPerSec / 1e6).toFixed(1)), heapUsedDelta: wl.heapUsedDelta, faults: wl.faults },
      walksDuringTimedLoops: after.walks - before.walks,
      iotlbHitRatio: Number(((after.hits - before.hits) / (after.translations - before.translations)).toFixed(4)),
    },
    null,
    2,
  ),
);
