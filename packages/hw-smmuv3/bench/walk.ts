/**
 * Bench: the walker and the TLB in-thread (smmuv3.md §7, §8, §4.7), medians of 7 timed runs after
 * warm-up, with heap-used delta and GC events during the timed runs (no allocation per walk or
 * lookup). Targets: TLB hit lookup ≥ 25 M/s, stage-1 4-level 4 KiB walks over random addresses
 * ≥ 2 M/s, nested S1 + S2 4-level walks ≥ 300 K/s.
 *
 * Walk workloads: "random" = 4096 pages at random VAs over the whole 48-bit space (every level's
 * table is a different, cache-cold frame: bound by memory latency); "64MiB" = random pages of a
 * dense 64 MiB region (leaf tables cache-resident: the walker's own cost). Every walk is a full
 * 4-level walk (nested: 4 stage-1 fetches, each after a 4-level stage-2 walk, plus the final
 * 4-level stage-2 walk = 24 fetches).
 *
 *   cd /work/main/packages/hw-smmuv3 && node --conditions=@iommulab/source --expose-gc --import tsx bench/walk.ts
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { ACCESS_READ, PhysMem } from '@iommulab/runtime';
import { newTlbHit, Tlb } from '../src/model/tlb.js';
import { newS1Ctx, newS2Ctx, newWalkResult, Walker } from '../src/model/walk/index.js';
import { S1_NORMAL, S2_NORMAL, S2_RW, Tables } from '../test/helpers/tables.js';

const CMD = 'cd /work/main/packages/hw-smmuv3 && node --conditions=@iommulab/source --expose-gc --import tsx bench/walk.ts';
const RUNS = 7;
const MiB = 1 << 20;
const OFF = 0x40_0000_0000; // nested: IPA = PA + OFF

const mem = PhysMem.create(256 * MiB);
const walker = new Walker(mem, { httu: 2 });
const res = newWalkResult();

let seed = 0x9e3779b9;
function rnd(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}

// ---- stage 2: IPA [OFF, OFF + 128 MiB) → PA [0, 128 MiB), 4 KiB pages, 4 levels (S2T0SZ 16, SL0 2)
const S2_BYTES = 128 * MiB;
const s2t = new Tables(mem, { ia: 48, startLevel: 0 });
for (let pa = 0; pa < S2_BYTES; pa += 4096) s2t.map(OFF + pa, pa, 3, S2_NORMAL | S2_RW);
const s2 = newS2Ctx({ ttb: s2t.root, t0sz: 16, sl0: 2, g: 12, oaBits: 48 });

// ---- stage 1: N random 4 KiB pages over the whole 48-bit VA space, two table trees with the
// same shape: one with PA pointers (stage-1 only), one with IPA pointers (nested).
const N = 4096;
const vas = new Float64Array(N);
const s1t = new Tables(mem, { ia: 48 });
const s1n = new Tables(mem, { ia: 48, ipaOffset: OFF });
for (let i = 0; i < N; i++) {
  const va = (rnd() % 0x10000) * 2 ** 32 + (rnd() & 0xfffff000);
  vas[i] = va;
  const page = (rnd() % (S2_BYTES / 4096)) * 4096;
  s1t.map(va, page, 3, S1_NORMAL | 0x800 | 0x40);
  s1n.map(va, OFF + page, 3, S1_NORMAL | 0x800 | 0x40);
}
for (const f of [...s1t.frames, ...s1n.frames]) if (f + 16384 > S2_BYTES) throw new Error('stage-1 tables beyond the stage-2 window');
const s1 = newS1Ctx({ ttb0: s1t.root, t0sz: 16, g0: 12, epd0: false, oaBits: 48, asid: 1 });
const s1nested = newS1Ctx({ ttb0: s1n.root, t0sz: 16, g0: 12, epd0: false, oaBits: 48, asid: 1 });

// ---- dense: random 4 KiB pages inside one 64 MiB region (16384 pages; 32 leaf tables stay cached)
const DENSE_PAGES = 16384;
const DENSE_BASE = 0x5a_4000_0000;
const s1d = new Tables(mem, { ia: 48 });
for (let i = 0; i < DENSE_PAGES; i++) s1d.map(DENSE_BASE + i * 4096, (i % (S2_BYTES / 4096)) * 4096, 3, S1_NORMAL | 0x800 | 0x40);
const s1dense = newS1Ctx({ ttb0: s1d.root, t0sz: 16, g0: 12, epd0: false, oaBits: 48, asid: 1 });
const s1nd = new Tables(mem, { ia: 48, ipaOffset: OFF });
for (let i = 0; i < DENSE_PAGES; i++) s1nd.map(DENSE_BASE + i * 4096, OFF + (i % (S2_BYTES / 4096)) * 4096, 3, S1_NORMAL | 0x800 | 0x40);
for (const f of s1nd.frames) if (f + 16384 > S2_BYTES) throw new Error('stage-1 tables beyond the stage-2 window');
const s1ndense = newS1Ctx({ ttb0: s1nd.root, t0sz: 16, g0: 12, epd0: false, oaBits: 48, asid: 1 });

// ---- TLB: 4096 entries, 2048 pages cached (all hit)
const tlb = new Tlb(4096, 'lru');
const HIT_PAGES = 2048;
for (let i = 0; i < HIT_PAGES; i++) {
  walker.s1(vas[i], 0, ACCESS_READ, false, s1, null, res);
  tlb.insertWalk(1, 1, res);
}
const tlbHit = newTlbHit();
// Keep only the pages still cached (a few conflict in their set): the loop measures pure hits.
const hitVas = new Float64Array(HIT_PAGES);
let nHit = 0;
for (let i = 0; i < HIT_PAGES; i++) if (tlb.lookup(1, 1, vas[i], tlbHit)) hitVas[nHit++] = vas[i];
const HIT_MASK = (1 << Math.floor(Math.log2(nHit))) - 1;

function benchTlb(n: number): number {
  let sum = 0;
  let j = 0;
  for (let i = 0; i < n; i++) {
    if (tlb.lookup(1, 1, hitVas[j] + (i & 0xff8), tlbHit)) sum = (sum + tlbHit.pa) | 0;
    j = (j + 1) & HIT_MASK;
  }
  return sum;
}

function benchS1(n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    walker.s1(vas[rnd() & (N - 1)], 0, ACCESS_READ, false, s1, null, res);
    sum = (sum + res.pa) | 0;
  }
  return sum;
}

function benchS1Dense(n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    walker.s1(DENSE_BASE + (rnd() & (DENSE_PAGES - 1)) * 4096 + 8, 0, ACCESS_READ, false, s1dense, null, res);
    sum = (sum + res.pa) | 0;
  }
  return sum;
}

function benchNestedDense(n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    walker.s1(DENSE_BASE + (rnd() & (DENSE_PAGES - 1)) * 4096 + 8, 0, ACCESS_READ, false, s1ndense, s2, res);
    sum = (sum + res.pa) | 0;
  }
  return sum;
}

function benchNested(n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    walker.s1(vas[rnd() & (N - 1)], 0, ACCESS_READ, false, s1nested, s2, res);
    sum = (sum + res.pa) | 0;
  }
  return sum;
}

function benchS2(n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    walker.s2(OFF + (rnd() % (S2_BYTES / 4096)) * 4096, ACCESS_READ, false, s2, res);
    sum = (sum + res.pa) | 0;
  }
  return sum;
}

// Correctness spot checks before timing.
walker.s1(vas[5] + 0x123, 0, ACCESS_READ, false, s1nested, s2, res);
const nestedOk = res.ok && res.walkSteps === 24;
walker.s1(vas[5] + 0x123, 0, ACCESS_READ, false, s1, null, res);
if (!nestedOk || !res.ok || res.walkSteps !== 4) throw new Error('bench tables do not translate as expected');

let gcs = 0;
const obs = new PerformanceObserver((list) => {
  gcs += list.getEntries().length;
});
obs.observe({ entryTypes: ['gc'] });
const gc = (globalThis as { gc?: () => void }).gc;

interface Result {
  name: string;
  opsPerRun: number;
  medianMops: number;
  minMops: number;
  maxMops: number;
  heapUsedDeltaBytes: number;
  gcEvents: number;
  target: string;
}

async function measure(name: string, fn: (n: number) => number, n: number, target: string): Promise<Result> {
  for (let w = 0; w < 3; w++) fn(n >>> 2); // warm up / optimise
  gc?.();
  await new Promise((r) => setTimeout(r, 50));
  const gc0 = gcs;
  const heap0 = process.memoryUsage().heapUsed;
  const rates: number[] = [];
  let sink = 0;
  for (let k = 0; k < RUNS; k++) {
    const t0 = process.hrtime.bigint();
    sink ^= fn(n);
    const t1 = process.hrtime.bigint();
    rates.push(n / (Number(t1 - t0) / 1e9) / 1e6);
  }
  const heap1 = process.memoryUsage().heapUsed;
  await new Promise((r) => setTimeout(r, 50));
  rates.sort((a, b) => a - b);
  if (sink === 0x7fffffff) console.log('');
  return {
    name,
    opsPerRun: n,
    medianMops: Number(rates[RUNS >> 1].toFixed(3)),
    minMops: Number(rates[0].toFixed(3)),
    maxMops: Number(rates[RUNS - 1].toFixed(3)),
    heapUsedDeltaBytes: heap1 - heap0,
    gcEvents: gcs - gc0,
    target,
  };
}

console.log(`# hw-smmuv3 walker + TLB bench (in-thread, median of ${RUNS} runs)`);
console.log(`# ${CMD}`);
console.log(`# TLB: 4096 entries, 4-way LRU, hits over ${HIT_MASK + 1} cached pages`);
console.log(`# node ${process.version}; random: ${N} 4 KiB pages at random 48-bit VAs; 64MiB: ${DENSE_PAGES} pages of one region; stage 2 = 4 KiB pages over 128 MiB`);
const results = [
  await measure('tlb-hit-lookup', benchTlb, 20_000_000, '>= 25 M/s'),
  await measure('s1-4level-4k-walk', benchS1, 4_000_000, '>= 2 M/s'),
  await measure('s1-4level-4k-walk-64MiB', benchS1Dense, 4_000_000, '>= 2 M/s'),
  await measure('nested-s1-s2-4level-walk', benchNested, 1_000_000, '>= 0.3 M/s'),
  await measure('nested-4level-64MiB', benchNestedDense, 1_000_000, '>= 0.3 M/s'),
  await measure('s2-only-4level-walk', benchS2, 4_000_000, '(info)'),
];
obs.disconnect();
for (const r of results) {
  console.log(
    `${r.name.padEnd(26)} ${r.medianMops.toFixed(2).padStart(8)} M/s  (min ${r.minMops.toFixed(2)}, max ${r.maxMops.toFixed(2)}; target ${r.target}; heap Δ ${r.heapUsedDeltaBytes} B, GC events ${r.gcEvents})`,
  );
}
console.log(JSON.stringify({ walkerStats: walker.stats, tlbStats: tlb.stats }));
