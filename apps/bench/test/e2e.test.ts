/**
 * Small end-to-end runs against the real mock backend. Counts are tiny and every assertion follows
 * from the pattern and the mock's documented IOTLB (4096 entries by default, 1 MiB leaves cached
 * as the 2 KiB IO pages used, no eviction between consecutive pages of one domain): no timing.
 */
import { describe, expect, it } from 'vitest';
import type { BenchConfig } from '../src/args.js';
import { plainProgress } from '../src/progress.js';
import type { BenchReport } from '../src/report-json.js';
import { resolveBackend } from '../src/resolve-backend.js';
import { runHost } from '../src/runner-host.js';
import { runPool } from '../src/runner-pool.js';

const MiB = 1024 * 1024;
const IO_PAGE = 2048;
const MAP = 2 * MiB;
const HUGE_PAGES = MAP / MiB; // 2 distinct 1 MiB leaves, each cached whole by the mock IOTLB
const N = 4096;

function cfg(over: Partial<BenchConfig> = {}): BenchConfig {
  return {
    backend: 'mock',
    instances: 2,
    patterns: ['sequential', 'random', 'strided'],
    translations: N,
    mapBytes: MAP,
    mode: 'in-thread',
    runner: 'host',
    short: true,
    portTranslations: 1000,
    portBatch: 256,
    jsonFile: null,
    ...over,
  };
}

function checkReport(report: BenchReport, config: BenchConfig, crossThread: boolean): void {
  expect(report.instances).toHaveLength(config.instances);
  for (const inst of report.instances) {
    // Mapping: 2 MiB as two 1 MiB pages.
    expect(inst.pageSizes).toEqual([IO_PAGE, MiB]);
    expect(inst.map).toMatchObject({ bytes: MAP, pages: 2, pageSize: MiB, pagesBySize: { [MiB]: 2 } });
    expect(inst.map.iova % MiB).toBe(0);
    expect(inst.map.pa % MiB).toBe(0);

    const [seq, rnd, str] = inst.patterns;
    expect(inst.patterns.map((p) => p.pattern)).toEqual(['sequential', 'random', 'strided']);
    for (const p of inst.patterns) {
      expect(p.translations).toBe(N);
      expect(p.faults).toBe(0);
      expect(p.counters.translations).toBe(N);
      expect(p.counters.faults).toBe(0);
      expect(p.counters.iotlbHits + p.counters.iotlbMisses).toBe(N);
    }
    // Sequential over a fresh IOTLB: one miss (and walk) per distinct 1 MiB leaf, then hits.
    expect(seq.step).toBe(IO_PAGE);
    expect(seq.counters.iotlbMisses).toBe(HUGE_PAGES);
    expect(seq.counters.walks).toBe(HUGE_PAGES);
    // Every page is now cached: random and strided over the same range never miss.
    expect(rnd.counters.iotlbMisses).toBe(0);
    expect(str.step).toBe(17 * IO_PAGE);
    expect(str.counters.iotlbMisses).toBe(0);

    // Invalidation: the second 1 MiB page is unmapped + synced; every access to it faults.
    const inv = inst.invalidation;
    const slicePages = MiB / IO_PAGE;
    expect(inv).toMatchObject({ bytes: MiB, pageSize: MiB, iova: inst.map.iova + MiB });
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
  expect(report.totals.translations).toBe(config.instances * (3 * N + 3 * (MiB / IO_PAGE)));
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
    expect(lines[0]).toMatch(/^\[mock-0\] map: 2 MiB as 2 x 1 MiB pages in /);
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
});
