/**
 * Small end-to-end runs against the real mock backend. Counts are tiny and every assertion follows
 * from the pattern and the mock's documented IOTLB: no timing.
 *
 * The mock IOTLB caches 2 KiB IO pages in a direct-mapped array of iotlbEntries (default 4096),
 * indexed by (page ^ hash(domain)) & (entries - 1), and 1 MiB leaves whole in a second array of
 * entries / 16. A mapping of at most `entries` consecutive IO pages therefore never evicts
 * itself: on a fresh IOTLB that is large enough, a pattern misses (and walks) exactly once per
 * distinct IO page (or 1 MiB leaf) it is first to touch, and hits on every other access.
 */
import { describe, expect, it } from 'vitest';
import { runWorkloadSync } from '@iommulab/runtime';
import { DEFAULT_SEQ_STEP, type BenchConfig, type Pattern } from '../src/args.js';
import { plainProgress } from '../src/progress.js';
import type { InstanceRecord } from '../src/records.js';
import type { BenchReport } from '../src/report-json.js';
import { resolveBackend } from '../src/resolve-backend.js';
import { instancePlans, runHost } from '../src/runner-host.js';
import { runPool } from '../src/runner-pool.js';
import { patternSpec, type MappedInstance } from '../src/run-instance.js';

const MiB = 1024 * 1024;
const IO_PAGE = 2048;
const MAP = 2 * MiB;
const N = 4096;
const STRIDE = 17 * IO_PAGE;

function cfg(over: Partial<BenchConfig> = {}): BenchConfig {
  return {
    backend: 'mock',
    backends: ['mock'],
    instances: 2,
    patterns: ['sequential', 'random', 'strided'],
    translations: N,
    mapBytes: MAP,
    pageSize: 'smallest',
    iotlbEntries: null,
    seqStep: DEFAULT_SEQ_STEP,
    mode: 'in-thread',
    runner: 'host',
    short: true,
    portTranslations: 1000,
    portBatch: 256,
    // The page-fault phase has its own tests (fault-phase.test.ts); off here.
    faults: 0,
    faultBatch: 256,
    faultBatches: 0,
    faultTimeLimited: false,
    jsonFile: null,
    ...over,
  };
}

/**
 * Byte offsets (from the mapping's start) of every access a pattern makes in an instance: the
 * bench's own workload spec replayed through the runtime's generator against a recording device.
 */
function offsetsOf(config: BenchConfig, inst: InstanceRecord, pattern: Pattern): number[] {
  const plan = instancePlans(config, inst.backendId)[inst.index];
  const m = { plan, map: inst.map, ioPageSize: inst.map.ioPageSize, minPage: inst.pageSizes[0] } as unknown as MappedInstance;
  const out: number[] = [];
  const recorder = {
    translate(req: { iova: number }, res: { ok: boolean; pa: number }) {
      out.push(req.iova - inst.map.iova);
      res.ok = true;
      res.pa = 0;
      return res;
    },
  };
  runWorkloadSync(recorder as unknown as Parameters<typeof runWorkloadSync>[0], patternSpec(m, pattern));
  expect(out).toHaveLength(config.translations);
  expect(Math.min(...out)).toBeGreaterThanOrEqual(0);
  expect(Math.max(...out)).toBeLessThan(inst.map.bytes);
  return out;
}

/**
 * Misses of each pattern in turn on a fresh IOTLB that never evicts: the distinct cache units
 * (IO pages or 1 MiB leaves, `unit` bytes) a pattern touches that no earlier pattern touched.
 */
function expectedMisses(patterns: readonly number[][], unit: number): number[] {
  const cached = new Set<number>();
  return patterns.map((offsets) => {
    let misses = 0;
    for (const o of offsets) {
      const u = Math.floor(o / unit);
      if (!cached.has(u)) {
        cached.add(u);
        misses++;
      }
    }
    return misses;
  });
}

function checkReport(report: BenchReport, config: BenchConfig, crossThread: boolean): void {
  expect(report.instances).toHaveLength(config.instances);
  expect(report.config).toMatchObject({
    pageSize: 'smallest',
    ioPageSize: IO_PAGE,
    iotlbEntries: null,
    steps: { sequential: 256, random: IO_PAGE, randomOffset: IO_PAGE / 2, strided: STRIDE },
  });
  for (const inst of report.instances) {
    // Mapping: 2 MiB as 1024 pages of 2 KiB, still placed and backed 1 MiB-aligned.
    expect(inst.pageSizes).toEqual([IO_PAGE, MiB]);
    expect(inst.map).toMatchObject({
      bytes: MAP,
      ioPageSize: IO_PAGE,
      pages: MAP / IO_PAGE,
      pageSize: IO_PAGE,
      pagesBySize: { [IO_PAGE]: MAP / IO_PAGE },
    });
    expect(inst.map.iova % MiB).toBe(0);
    expect(inst.map.pa % MiB).toBe(0);

    const [seq, rnd, str] = inst.patterns;
    expect(inst.patterns.map((p) => p.pattern)).toEqual(['sequential', 'random', 'strided']);
    expect([seq.step, rnd.step, str.step]).toEqual([256, IO_PAGE, STRIDE]);
    for (const p of inst.patterns) {
      expect(p.translations).toBe(N);
      expect(p.faults).toBe(0);
      expect(p.counters.translations).toBe(N);
      expect(p.counters.faults).toBe(0);
    }
    // Sequential, 256 B steps: N * 256 = 1 MiB = the first 512 IO pages, 8 accesses each: the
    // first access of each page misses (and walks), the other 7 hit.
    const offsets = (['sequential', 'random', 'strided'] as const).map((p) => offsetsOf(config, inst, p));
    // Random accesses land mid-page.
    expect(offsets[1].every((o) => o % IO_PAGE === IO_PAGE / 2)).toBe(true);
    const misses = expectedMisses(offsets, IO_PAGE);
    expect(misses[0]).toBe(512);
    // Random and strided miss exactly on the IO pages nothing touched before them; the stride
    // (17 pages, coprime with 1024) covers every page, so after it all 1024 pages are cached.
    expect(misses[0] + misses[1] + misses[2]).toBe(MAP / IO_PAGE);
    expect(misses[1]).toBeGreaterThan(0);
    expect(misses[2]).toBeGreaterThan(0);
    for (const [i, p] of [seq, rnd, str].entries()) {
      expect(p.counters.iotlbMisses, p.pattern).toBe(misses[i]);
      expect(p.counters.walks, p.pattern).toBe(misses[i]);
      expect(p.counters.iotlbHits, p.pattern).toBe(N - misses[i]);
    }

    // Invalidation: 1/8 of the 1024 pages (128 x 2 KiB from the middle) is unmapped + synced;
    // every access to it faults.
    const inv = inst.invalidation;
    const slicePages = 128;
    expect(inv).toMatchObject({ bytes: slicePages * IO_PAGE, pageSize: IO_PAGE, iova: inst.map.iova + MiB });
    expect(inv.warm).toEqual({ translations: slicePages, faults: 0 });
    expect(inv.unmapped).toEqual({ translations: slicePages, faults: slicePages });
    expect(inv.remapped).toEqual({ translations: slicePages, faults: 0 });
    expect(inv.counters.faults).toBe(slicePages);
    expect(inv.counters.invalidations).toBeGreaterThanOrEqual(1);

    expect(inst.port).toMatchObject({ translations: 1000, batch: 256, faults: 0, crossThread });

    expect(inst.totals.patternTranslations).toBe(3 * N);
    expect(inst.totals.translations).toBe(3 * N + 3 * slicePages);
    expect(inst.totals.counters.faults).toBe(slicePages);
  }
  expect(report.totals.translations).toBe(config.instances * (3 * N + 3 * 128));
  expect(report.totals.hitRate).not.toBeNull();
  const hr = report.totals.hitRate ?? -1;
  expect(hr).toBeGreaterThan(0);
  expect(hr).toBeLessThan(1);
}

describe('end to end (mock backend, tiny counts)', () => {
  const backend = resolveBackend('mock');

  it('host runner, in-thread instances', async () => {
    const config = cfg();
    const lines: string[] = [];
    const report = await runHost(config, backend, plainProgress((l) => lines.push(l)));
    checkReport(report, config, false);
    expect(report.rateBasis).toBe('wall');
    expect(report.config.mode).toBe('in-thread');
    // one line per finished phase: map + 3 patterns + invalidation + port, per instance
    expect(lines).toHaveLength(2 * 6);
    expect(lines[0]).toMatch(/^\[mock-0\] map: 2 MiB as 1,024 x 2 KiB pages in /);
  });

  it('host runner, worker instances (cross-thread device port)', async () => {
    const config = cfg({ mode: 'worker', instances: 2 });
    const report = await runHost(config, backend, plainProgress(() => {}));
    checkReport(report, config, true);
    expect(report.instances.every((i) => i.mode === 'worker')).toBe(true);
  });

  it('pool runner: one piscina job per instance', async () => {
    const config = cfg({ runner: 'pool', instances: 2 });
    const report = await runPool(config, backend, plainProgress(() => {}));
    checkReport(report, config, false);
    expect(report.rateBasis).toBe('sum');
    expect(report.config.poolThreads).toBeGreaterThanOrEqual(1);
  });

  it('--page-size largest: 1 MiB leaves, one miss per distinct leaf touched', async () => {
    const config = cfg({ pageSize: 'largest', instances: 1 });
    const report = await runHost(config, backend, plainProgress(() => {}));
    expect(report.config).toMatchObject({
      pageSize: 'largest',
      ioPageSize: MiB,
      steps: { sequential: 256, random: MiB, randomOffset: MiB / 2, strided: STRIDE },
    });
    const inst = report.instances[0];
    expect(inst.map).toMatchObject({ bytes: MAP, ioPageSize: MiB, pages: 2, pageSize: MiB, pagesBySize: { [MiB]: 2 } });
    const [seq, rnd, str] = inst.patterns;
    expect([seq.step, rnd.step, str.step]).toEqual([256, MiB, STRIDE]);
    const misses = expectedMisses(
      (['sequential', 'random', 'strided'] as const).map((p) => offsetsOf(config, inst, p)),
      MiB,
    );
    // Sequential covers only the first leaf (N * 256 B = 1 MiB); random finds the second.
    expect(misses).toEqual([1, 1, 0]);
    for (const [i, p] of [seq, rnd, str].entries()) {
      expect(p.faults).toBe(0);
      expect(p.counters.iotlbMisses, p.pattern).toBe(misses[i]);
      expect(p.counters.walks, p.pattern).toBe(misses[i]);
      expect(p.counters.iotlbHits, p.pattern).toBe(N - misses[i]);
    }
    // The invalidation slice is then the second 1 MiB leaf.
    expect(inst.invalidation).toMatchObject({ bytes: MiB, pageSize: MiB, iova: inst.map.iova + MiB });
    expect(inst.invalidation.unmapped).toEqual({ translations: MiB / IO_PAGE, faults: MiB / IO_PAGE });
    expect(inst.invalidation.remapped).toEqual({ translations: MiB / IO_PAGE, faults: 0 });
  });

  it('--seq-step sets the sequential step; with whole-page steps every access is a new page', async () => {
    const config = cfg({ seqStep: IO_PAGE, instances: 1, patterns: ['sequential'] });
    const report = await runHost(config, backend, plainProgress(() => {}));
    expect(report.config.steps?.sequential).toBe(IO_PAGE);
    const [seq] = report.instances[0].patterns;
    // 4096 accesses = 4 passes over 1024 pages: the first pass misses, the next three hit.
    expect(seq.step).toBe(IO_PAGE);
    expect(seq.counters).toMatchObject({ iotlbMisses: 1024, walks: 1024, iotlbHits: N - 1024 });
  });

  for (const runner of ['host', 'pool'] as const) {
    it(`passes --iotlb-entries to the backend (${runner} runner): 256 entries thrash over 1024 pages`, async () => {
      const config = cfg({
        iotlbEntries: 256,
        seqStep: IO_PAGE,
        instances: 1,
        patterns: ['sequential'],
        runner,
        mode: runner === 'host' ? 'worker' : 'in-thread',
      });
      const report = await (runner === 'host' ? runHost : runPool)(config, backend, plainProgress(() => {}));
      expect(report.config.iotlbEntries).toBe(256);
      const [seq] = report.instances[0].patterns;
      // Each pass over 1024 pages evicts every page (4 pages per slot) before it comes back.
      expect(seq.counters).toMatchObject({ iotlbMisses: N, walks: N, iotlbHits: 0 });
    });
  }
});

/**
 * The SMMUv3 caches 4 KiB pages in a direct-mapped 4096-entry micro-TLB (filled only from
 * main-TLB hits, flushed by every TLBI / CFGI) in front of a 4096-entry 4-way main TLB (filled by
 * walks). A 2 MiB mapping (512 pages) fits both without evictions, so each page misses and walks
 * on its first access ever, hits the main TLB on its second (filling the micro-TLB), and hits the
 * micro-TLB from then on; every walk of a stage-1 domain reads 4 descriptors (48-bit VA, 4 levels).
 */
function expectedSmmu(patterns: readonly number[][]): { misses: number; main: number; utlb: number }[] {
  const seen = new Map<number, number>();
  return patterns.map((offsets) => {
    const r = { misses: 0, main: 0, utlb: 0 };
    for (const o of offsets) {
      const page = Math.floor(o / 4096);
      const n = (seen.get(page) ?? 0) + 1;
      seen.set(page, n);
      if (n === 1) r.misses++;
      else if (n === 2) r.main++;
      else r.utlb++;
    }
    return r;
  });
}

describe('end to end (SMMUv3 backend, tiny counts)', () => {
  const backend = resolveBackend('smmuv3');
  for (const mode of ['in-thread', 'worker'] as const) {
    it(`host runner, ${mode}: exact micro-TLB / main-TLB / walk counts and the invalidation's commands`, async () => {
      const config = cfg({ backend: 'smmuv3', backends: ['smmuv3'], mode });
      const report = await runHost(config, backend, plainProgress(() => {}));
      expect(report.config.backend).toMatchObject({ name: 'smmuv3', id: 'arm-smmuv3' });
      expect(report.config).toMatchObject({
        pageSize: 'smallest',
        ioPageSize: 4096,
        steps: { sequential: 256, random: 4096, randomOffset: 2048, strided: 17 * 4096 },
      });
      for (const inst of report.instances) {
        expect(inst.id).toBe(`arm-smmuv3-${inst.index}`);
        expect(inst.pageSizes).toEqual([4096, 2 * MiB, 1024 * MiB]);
        expect(inst.map).toMatchObject({ bytes: MAP, ioPageSize: 4096, pages: 512, pageSize: 4096, pagesBySize: { 4096: 512 } });
        expect(inst.map.iova % (2 * MiB)).toBe(0);
        const expected = expectedSmmu((['sequential', 'random', 'strided'] as const).map((p) => offsetsOf(config, inst, p)));
        // Sequential 256 B steps over the first 1 MiB: 256 pages, 16 accesses each.
        expect(expected[0]).toEqual({ misses: 256, main: 256, utlb: N - 512 });
        for (const [i, p] of inst.patterns.entries()) {
          const e = expected[i];
          expect(p.faults, p.pattern).toBe(0);
          expect(p.counters, p.pattern).toMatchObject({ translations: N, iotlbHits: N - e.misses, iotlbMisses: e.misses, walks: e.misses, faults: 0 });
          expect(p.counters.detail, p.pattern).toEqual({
            utlbHits: e.utlb,
            mainTlbHits: e.main,
            walkSteps: 4 * e.misses,
            commands: 0,
            syncs: 0,
            events: 0,
          });
        }
        // Invalidation: 64 pages (1/8) unmapped + iotlbSync: TLBIs and a CMD_SYNC; the micro-TLB
        // is flushed, so the 64 faulting accesses and the 64 after the remap all walk.
        const inv = inst.invalidation;
        expect(inv).toMatchObject({ bytes: 64 * 4096, pageSize: 4096, iova: inst.map.iova + MiB });
        expect(inv.warm).toEqual({ translations: 64, faults: 0 });
        expect(inv.unmapped).toEqual({ translations: 64, faults: 64 });
        expect(inv.remapped).toEqual({ translations: 64, faults: 0 });
        expect(inv.counters).toMatchObject({ translations: 192, faults: 64, walks: 128, iotlbMisses: 128 });
        expect(inv.counters.detail).toMatchObject({ utlbHits: 64, mainTlbHits: 0, events: 64 });
        expect(inv.counters.detail?.syncs).toBeGreaterThanOrEqual(1);
        expect(inv.counters.detail?.commands).toBeGreaterThan(inv.counters.detail?.syncs ?? 0);
        expect(inv.counters.invalidations).toBeGreaterThanOrEqual(1);
        expect(inst.port).toMatchObject({ translations: 1000, faults: 0, crossThread: mode === 'worker' });
      }
    });
  }

  it('--page-size largest maps 2 MiB blocks when 1 GiB does not fit', async () => {
    const config = cfg({ backend: 'smmuv3', backends: ['smmuv3'], pageSize: 'largest', instances: 1, patterns: ['random'] });
    const report = await runHost(config, backend, plainProgress(() => {}));
    expect(report.config.ioPageSize).toBe(2 * MiB);
    const inst = report.instances[0];
    expect(inst.map).toMatchObject({ bytes: MAP, ioPageSize: 2 * MiB, pages: 1, pageSize: 2 * MiB, pagesBySize: { [2 * MiB]: 1 } });
    const [rnd] = inst.patterns;
    // One 2 MiB block: one walk of 3 descriptors (level 0, 1, then the level-2 block).
    expect(rnd.counters).toMatchObject({ translations: N, iotlbMisses: 1, walks: 1, faults: 0 });
    expect(rnd.counters.detail?.walkSteps).toBe(3);
  });
});
