import { describe, expect, it } from 'vitest';
import { countersFromStats, diffCounters, sumCounters } from '../src/counters.js';
import { SCHEMA_VERSION, buildComparison, environmentInfo, gitCommit, medianOf, pageFaultTotals } from '../src/report-json.js';
import { fixedDetailReport, fixedReport } from './fixture.js';

describe('JSON report (schemaVersion 1)', () => {
  const report = fixedReport();
  const json = JSON.parse(JSON.stringify(report)) as Record<string, unknown>;

  it('has the top-level fields', () => {
    expect(SCHEMA_VERSION).toBe(1);
    expect(Object.keys(json).sort()).toEqual(
      ['config', 'durationMs', 'environment', 'instances', 'pageFaults', 'patterns', 'rateBasis', 'schemaVersion', 'tool', 'totals'].sort(),
    );
    expect(json.schemaVersion).toBe(1);
    expect(json.tool).toEqual({ name: '@iommulab/bench', version: '0.1.0' });
    expect(json.rateBasis).toBe('wall');
  });

  it('records the environment and the config', () => {
    expect(Object.keys(json.environment as object).sort()).toEqual(
      ['arch', 'availableParallelism', 'commit', 'cpuCount', 'cpuModel', 'date', 'node', 'platform'].sort(),
    );
    expect(json.config).toEqual({
      backend: { name: 'mock', url: 'file:///x/hw-mock/dist/index.js', id: 'mock', displayName: null, version: '0.1.0' },
      instances: 2,
      patterns: ['sequential', 'random'],
      translationsPerPattern: 1_000_000,
      mapBytes: 32 * 1024 * 1024,
      pageSize: 'smallest',
      ioPageSize: 2048,
      iotlbEntries: null,
      steps: { sequential: 256, random: 2048, randomOffset: 1024, strided: 17 * 2048 },
      mode: 'worker',
      runner: 'host',
      short: false,
      port: { translations: 65_536, batch: 256 },
      pageFaults: { roundTrips: 2000, batch: 256, batches: 8, timeLimited: true },
      physMemBytes: 80 * 1024 * 1024,
      poolThreads: null,
    });
  });

  it('records --page-size, --iotlb-entries and the steps as run', () => {
    const r = fixedReport({ pageSize: 'largest', iotlbEntries: 65_536, seqStep: 4096 }, 1024 * 1024);
    expect(r.config).toMatchObject({
      pageSize: 'largest',
      ioPageSize: 1024 * 1024,
      iotlbEntries: 65_536,
      steps: { sequential: 4096, random: 1024 * 1024, randomOffset: 512 * 1024, strided: 17 * 2048 },
    });
    expect(fixedReport({ pageSize: 1024 * 1024 }, 1024 * 1024).config.pageSize).toBe(1024 * 1024);
  });

  it('has per-instance, per-pattern results and totals', () => {
    expect(report.instances.map((i) => i.id)).toEqual(['mock-0', 'mock-1']);
    const i0 = report.instances[0];
    expect(Object.keys(i0).sort()).toEqual(
      ['backendId', 'id', 'index', 'invalidation', 'map', 'mode', 'pageFaults', 'pageSizes', 'patterns', 'port', 'totals'].sort(),
    );
    expect(i0.patterns.map((p) => p.pattern)).toEqual(['sequential', 'random']);
    expect(i0.totals.translations).toBe(2_000_000 + 3 * 2048);
    expect(i0.totals.patternTranslations).toBe(2_000_000);
    expect(report.patterns.map((p) => [p.pattern, p.translations, p.wallMs])).toEqual([
      ['sequential', 2_000_000, 50],
      ['random', 2_000_000, 125],
    ]);
    expect(report.patterns[0].translationsPerSec).toBe(40_000_000);
    expect(report.totals.translations).toBe(2 * (2_000_000 + 3 * 2048));
    expect(report.totals.translationsPerSec).toBe((4_000_000 * 1000) / 175);
    expect(report.totals.portTranslationsPerSec).toBeCloseTo((131_072 * 1000) / 196.608, 6);
    expect(report.totals.counters).toEqual({
      translations: 2 * (2_000_000 + 6144),
      iotlbHits: 2 * (1_000_000 + 2048),
      iotlbMisses: 2 * (1_000_000 + 4096),
      walks: 2 * (1_000_000 + 4096),
      faults: 4096,
      invalidations: 6,
    });
  });

  it('records the page-fault phase per instance and over the instances', () => {
    const i0 = (json.instances as Record<string, Record<string, unknown>>[])[0];
    expect(Object.keys(i0.pageFaults).sort()).toEqual(
      ['crossThread', 'elapsedMs', 'latency', 'noticed', 'reason', 'rid', 'status', 'throughput', 'warmup'].sort(),
    );
    expect(i0.pageFaults).toMatchObject({
      status: 'ok',
      reason: null,
      rid: 0x11,
      latency: {
        roundTrips: 2000,
        medianUs: 21.5,
        p90Us: 30.25,
        p99Us: 80.5,
        counts: { sent: 2000, queued: 2000, dropped: 0, responses: 2000, groups: 2000, success: 2000, iopfDrops: 0 },
      },
      throughput: { batch: 256, batches: 8, faults: 2048, faultsPerSec: 200_000 },
    });
    // Instances are measured one at a time: medians over the instances, sums of the counts.
    expect(json.pageFaults).toEqual({
      ok: 2,
      unsupported: 0,
      errors: 0,
      roundTrips: 4000,
      medianUs: 22.5,
      p90Us: 32.5,
      p99Us: 90,
      batch: 256,
      faultsPerSec: 190_000,
      sent: 2 * (2000 + 2048),
      groups: 2 * (2000 + 2048),
      success: 2 * (2000 + 2048),
      dropped: 0,
    });
  });

  it('records a backend without PRI as unsupported, and a disabled phase as null', () => {
    const na = fixedReport({}, 2048, 'n/a');
    expect(na.instances.map((i) => i.pageFaults?.status)).toEqual(['unsupported', 'unsupported']);
    expect(na.pageFaults).toEqual({
      ok: 0,
      unsupported: 2,
      errors: 0,
      roundTrips: 0,
      medianUs: null,
      p90Us: null,
      p99Us: null,
      batch: 256,
      faultsPerSec: null,
      sent: 0,
      groups: 0,
      success: 0,
      dropped: 0,
    });
    const off = JSON.parse(JSON.stringify(fixedReport({}, 2048, 'off'))) as typeof report;
    expect(off.pageFaults).toBeNull();
    expect(off.config.pageFaults).toEqual({ roundTrips: 0, batch: 256, batches: 0, timeLimited: false });
    expect(off.instances.map((i) => i.pageFaults)).toEqual([null, null]);
  });

  it('sums drops and medians over the measured instances only', () => {
    const r = fixedReport();
    const [a, b] = r.instances;
    const bad = { ...b, pageFaults: { ...b.pageFaults!, latency: { ...b.pageFaults!.latency!, counts: { ...b.pageFaults!.latency!.counts, dropped: 3, iopfDrops: 2 } } } };
    expect(pageFaultTotals([a, bad], 256)).toMatchObject({ ok: 2, dropped: 5, medianUs: 22.5 });
    const na = fixedReport({}, 2048, 'n/a').instances[0];
    expect(pageFaultTotals([a, na], 256)).toMatchObject({ ok: 1, unsupported: 1, roundTrips: 2000, medianUs: 21.5, p90Us: 30.25, faultsPerSec: 200_000 });
    expect([medianOf([]), medianOf([3, 1, 2]), medianOf([4, 1, 3, 2])]).toEqual([null, 2, 2.5]);
  });

  it('collects the environment', () => {
    const env = environmentInfo(new Date(0));
    expect(env.node).toBe(process.version);
    expect(env.date).toBe('1970-01-01T00:00:00.000Z');
    expect(env.availableParallelism).toBeGreaterThanOrEqual(1);
    expect(env.commit === null || /^[0-9a-f]{40}$/.test(env.commit)).toBe(true);
    expect(gitCommit('/')).toBeNull();
  });
});

describe('backend detail counters', () => {
  it('reads the SMMUv3 and mock spellings, and only what the backend reports', () => {
    const smmu = countersFromStats({
      translations: 10,
      tlbHits: 7,
      tlbMisses: 3,
      utlbHits: 5,
      mainTlbHits: 2,
      walks: 3,
      walkSteps: 12,
      faults: 1,
      tlbInvalidations: 2,
      commands: 4,
      syncs: 2,
      events: 1,
    });
    expect(smmu).toEqual({
      translations: 10,
      iotlbHits: 7,
      iotlbMisses: 3,
      walks: 3,
      faults: 1,
      invalidations: 2,
      detail: { utlbHits: 5, mainTlbHits: 2, walkSteps: 12, commands: 4, syncs: 2, events: 1 },
    });
    const mock = countersFromStats({ translations: 4, hits: 3, misses: 1, walks: 1, walkReads: 2, faultRecords: 0 });
    expect(mock.detail).toEqual({ walkSteps: 2, events: 0 });
    expect(countersFromStats({ translations: 1 }).detail).toBeUndefined();
  });

  it('diffs and sums detail field by field', () => {
    const a = countersFromStats({ translations: 10, walks: 4, walkSteps: 16, commands: 9 });
    const b = countersFromStats({ translations: 4, walks: 1, walkSteps: 4, commands: 2 });
    const d = diffCounters(a, b);
    expect(d.detail).toEqual({ walkSteps: 12, commands: 7 });
    expect(sumCounters([d, d]).detail).toEqual({ walkSteps: 24, commands: 14 });
    expect(sumCounters([d, countersFromStats({ translations: 1 })]).detail).toEqual({ walkSteps: 12, commands: 7 });
    expect(sumCounters([countersFromStats({ translations: 1 })]).detail).toBeUndefined();
  });

  it('keeps a report without detail free of detail fields (the mock fixture)', () => {
    expect(JSON.stringify(fixedReport())).not.toContain('detail');
    expect(fixedDetailReport().totals.counters.detail).toEqual({
      utlbHits: 1_503_072,
      mainTlbHits: 501_024,
      walkSteps: 8_032_768,
      commands: 12,
      syncs: 4,
      events: 4096,
    });
  });
});

describe('comparison document', () => {
  it('wraps one report per backend', () => {
    const runs = [fixedReport(), fixedDetailReport()];
    const doc = JSON.parse(
      JSON.stringify(buildComparison({ backends: ['mock', 'smmuv3'], environment: runs[0].environment, runs, durationMs: 12 })),
    ) as Record<string, unknown>;
    expect(Object.keys(doc).sort()).toEqual(['backends', 'durationMs', 'environment', 'kind', 'runs', 'schemaVersion', 'tool'].sort());
    expect(doc).toMatchObject({ schemaVersion: 1, kind: 'comparison', backends: ['mock', 'smmuv3'], durationMs: 12 });
    expect((doc.runs as { config: { backend: { id: string } } }[]).map((r) => r.config.backend.id)).toEqual(['mock', 'arm-smmuv3']);
  });
});
