/**
 * Bench: IoPgtableArm map and unmap rates (pages per second) in single bulk calls, in-thread,
 * with the heap-used delta and GC events of the timed calls (the per-page loop allocates nothing).
 *
 * Run from packages/hw-smmuv3:
 *   node --conditions=@iommulab/source --expose-gc --import tsx bench/pgtable.ts
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { IotlbGather, Prot } from '@iommulab/driver-api';
import { PhysMem } from '@iommulab/runtime';
import { IoPgtableArm, type IoPgtableCfg } from '../src/pgtable/index.js';

const CMD = 'node --conditions=@iommulab/source --expose-gc --import tsx bench/pgtable.ts';
const RUNS = 7;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

let gcs = 0;
new PerformanceObserver((list) => {
  gcs += list.getEntries().length;
}).observe({ entryTypes: ['gc'] });
const forceGc = (globalThis as { gc?: () => void }).gc;

const mem = PhysMem.create(256 * MiB);

interface Case {
  readonly name: string;
  readonly cfg: IoPgtableCfg;
  readonly pgsize: number;
  readonly bytes: number;
  /** Pages per call (default: all in one call). */
  readonly perCall?: number;
}

const RW = Prot.READ | Prot.WRITE | Prot.CACHE;

const cases: Case[] = [
  { name: 's1 4K pages, 64 MiB', cfg: { fmt: 's1', granule: 4096, ias: 48, oas: 48 }, pgsize: 4096, bytes: 64 * MiB },
  { name: 's2 4K pages, 64 MiB', cfg: { fmt: 's2', granule: 4096, ias: 40, oas: 44 }, pgsize: 4096, bytes: 64 * MiB },
  { name: 's1 4K pages, 1 GiB', cfg: { fmt: 's1', granule: 4096, ias: 48, oas: 48 }, pgsize: 4096, bytes: GiB },
  { name: 's1 16K pages, 256 MiB', cfg: { fmt: 's1', granule: 16384, ias: 48, oas: 48 }, pgsize: 16384, bytes: 256 * MiB },
  { name: 's1 64K pages, 1 GiB', cfg: { fmt: 's1', granule: 65536, ias: 48, oas: 48 }, pgsize: 65536, bytes: GiB },
  { name: 's1 2M blocks, 64 GiB', cfg: { fmt: 's1', granule: 4096, ias: 48, oas: 48 }, pgsize: 2 * MiB, bytes: 64 * GiB },
  { name: 's1 4K pages, 64 MiB, 1 page/call', cfg: { fmt: 's1', granule: 4096, ias: 48, oas: 48 }, pgsize: 4096, bytes: 64 * MiB, perCall: 1 },
];

/** Maps (or unmaps) `count` pages in calls of `per` pages; returns the bytes done. */
function mapAll(pt: IoPgtableArm, c: Case, iova: number, pa: number, count: number): number {
  const per = c.perCall ?? count;
  let done = 0;
  for (let k = 0; k < count; k += per) done += pt.map(iova + k * c.pgsize, pa + k * c.pgsize, c.pgsize, per, RW);
  return done;
}
function unmapAll(pt: IoPgtableArm, c: Case, iova: number, count: number, gather: IotlbGather): number {
  const per = c.perCall ?? count;
  let done = 0;
  for (let k = 0; k < count; k += per) done += pt.unmap(iova + k * c.pgsize, c.pgsize, per, gather);
  return done;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[s.length >> 1];
}

const rows: Record<string, string | number>[] = [];
for (const c of cases) {
  const pt = new IoPgtableArm(mem, c.cfg);
  const count = c.bytes / c.pgsize;
  const iova = GiB; // 1 GiB aligned: whole leaf tables
  const pa = 4 * GiB;
  const gather = new IotlbGather();
  // warm up (JIT)
  for (let r = 0; r < 3; r++) {
    mapAll(pt, c, iova, pa, count);
    unmapAll(pt, c, iova, count, gather);
    gather.reset();
  }
  const mapRates: number[] = [];
  const unmapRates: number[] = [];
  let heapDelta = 0;
  forceGc?.();
  await new Promise((r) => setTimeout(r, 20));
  const gc0 = gcs;
  for (let r = 0; r < RUNS; r++) {
    const h0 = process.memoryUsage().heapUsed;
    const t0 = process.hrtime.bigint();
    const m = mapAll(pt, c, iova, pa, count);
    const t1 = process.hrtime.bigint();
    const u = unmapAll(pt, c, iova, count, gather);
    const t2 = process.hrtime.bigint();
    heapDelta = Math.max(heapDelta, process.memoryUsage().heapUsed - h0);
    if (m !== c.bytes || u !== c.bytes) throw new Error(`bench ${c.name}: mapped ${m}, unmapped ${u}`);
    gather.reset();
    mapRates.push(count / (Number(t1 - t0) / 1e9));
    unmapRates.push(count / (Number(t2 - t1) / 1e9));
  }
  await new Promise((r) => setTimeout(r, 20));
  rows.push({
    case: c.name,
    pages: count,
    'map Mpages/s (median)': Number((median(mapRates) / 1e6).toFixed(2)),
    'unmap Mpages/s (median)': Number((median(unmapRates) / 1e6).toFixed(2)),
    'max heap delta KiB': Math.round(heapDelta / 1024),
    'GC events': gcs - gc0,
    'frames after': pt.frameCount,
  });
  pt.free();
}

console.log(`# IoPgtableArm bench — ${CMD}`);
console.log(`# node ${process.version}, ${RUNS} runs per case (medians), map + unmap in single calls (unless the case says pages/call)`);
console.table(rows);
