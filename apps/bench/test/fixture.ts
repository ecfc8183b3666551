import type { BenchConfig } from '../src/args.js';
import type { Counters } from '../src/counters.js';
import type { InstanceRecord, PageFaultCounts, PageFaultRecord, PatternRecord } from '../src/records.js';
import { buildReport, type BenchReport, type EnvironmentInfo } from '../src/report-json.js';
import { instanceTotals } from '../src/run-instance.js';

/** A fixed configuration: 2 instances, 2 patterns, 1,000,000 translations each, 32 MiB in 2 KiB pages. */
export const FIXED_CONFIG: BenchConfig = {
  backend: 'mock',
  backends: ['mock'],
  instances: 2,
  patterns: ['sequential', 'random'],
  translations: 1_000_000,
  mapBytes: 32 * 1024 * 1024,
  pageSize: 'smallest',
  iotlbEntries: null,
  seqStep: 256,
  mode: 'worker',
  runner: 'host',
  short: false,
  portTranslations: 65_536,
  portBatch: 256,
  faults: 2000,
  faultBatch: 256,
  faultBatches: 8,
  faultTimeLimited: true,
  jsonFile: null,
};

export const FIXED_ENV: EnvironmentInfo = {
  node: 'v20.20.2',
  platform: 'linux',
  arch: 'x64',
  cpuModel: 'Test CPU',
  cpuCount: 2,
  availableParallelism: 2,
  commit: null,
  date: '2025-01-01T00:00:00.000Z',
};

function counters(t: number, hits: number, faults = 0, invalidations = 0): Counters {
  return { translations: t, iotlbHits: hits, iotlbMisses: t - hits, walks: t - hits, faults, invalidations };
}

function pattern(p: 'sequential' | 'random', step: number, t: number, hits: number, ms: number): PatternRecord {
  return {
    pattern: p,
    step,
    translations: t,
    faults: 0,
    elapsedMs: ms,
    translationsPerSec: (t * 1000) / ms,
    checksum: 0,
    counters: counters(t, hits),
  };
}

function cleanCounts(n: number): PageFaultCounts {
  return { sent: n, queued: n, dropped: 0, responses: n, groups: n, success: n, iopfDrops: 0 };
}

/** How the fixture's page-fault phase went: measured, no PRI (n/a), or disabled (`--faults 0`). */
export type FixtureFaults = 'ok' | 'n/a' | 'off';

/** A measured page-fault phase: 2000 round trips, 8 batches of 256, every count clean. */
export function pageFaultRecord(index: number): PageFaultRecord {
  return {
    status: 'ok',
    reason: null,
    rid: 0x11,
    warmup: 100,
    latency: {
      roundTrips: 2000,
      stoppedAtTimeLimit: false,
      medianUs: index === 0 ? 21.5 : 23.5,
      p90Us: index === 0 ? 30.25 : 34.75,
      p99Us: index === 0 ? 80.5 : 99.5,
      minUs: 9.1,
      maxUs: 400.2,
      counts: cleanCounts(2000),
    },
    throughput: {
      batch: 256,
      batches: 8,
      stoppedAtTimeLimit: false,
      faults: 2048,
      faultsPerSec: index === 0 ? 200_000 : 180_000,
      minFaultsPerSec: 150_000,
      maxFaultsPerSec: 250_000,
      counts: cleanCounts(2048),
    },
    noticed: { poll: 2110, irq: 0, fallback: 0 },
    crossThread: true,
    elapsedMs: 120,
  };
}

/** The record of a backend without PRI. */
export function noPriRecord(): PageFaultRecord {
  return {
    status: 'unsupported',
    reason: 'the mock IOMMU has no PRI (capabilities.pri is false)',
    rid: 0x11,
    warmup: 0,
    latency: null,
    throughput: null,
    noticed: { poll: 0, irq: 0, fallback: 0 },
    crossThread: true,
    elapsedMs: 0.1,
  };
}

function instance(index: number, seqMs: number, randMs: number, portMs: number, faults: FixtureFaults = 'ok'): InstanceRecord {
  const patterns = [pattern('sequential', 256, 1_000_000, 750_000, seqMs), pattern('random', 2048, 1_000_000, 250_000, randMs)];
  const invalidation = {
    iova: 0x0100_0000 + 16 * 1024 * 1024,
    bytes: 4 * 1024 * 1024,
    pageSize: 2048,
    unmapMs: 0.5,
    remapMs: 0.25,
    warm: { translations: 2048, faults: 0 },
    unmapped: { translations: 2048, faults: 2048 },
    remapped: { translations: 2048, faults: 0 },
    counters: counters(6144, 2048, 2048, 3),
  };
  const port = {
    translations: 65_536,
    batch: 256,
    faults: 0,
    elapsedMs: portMs,
    translationsPerSec: (65_536 * 1000) / portMs,
    crossThread: true,
  };
  return {
    index,
    id: `mock-${index}`,
    backendId: 'mock',
    mode: 'worker',
    pageSizes: [2048, 1048576],
    map: {
      iova: 0x0100_0000,
      pa: 0x0010_0000 * (index + 1),
      bytes: 32 * 1024 * 1024,
      ioPageSize: 2048,
      pages: 16_384,
      pageSize: 2048,
      pagesBySize: { '2048': 16_384 },
      mapMs: 0.4,
      pagesPerSec: 40_960_000,
      setupMs: 1,
    },
    patterns,
    invalidation,
    port,
    pageFaults: faults === 'ok' ? pageFaultRecord(index) : faults === 'n/a' ? noPriRecord() : null,
    totals: instanceTotals(patterns, invalidation, port),
  };
}

/**
 * A report with fixed numbers (host runner, wall-clock rates).
 *
 * @param over - config fields to change (recorded as given)
 * @param ioPageSize - the IO page size the instances report having mapped with
 * @param faults - the page-fault phase: measured (default), n/a (no PRI) or disabled
 */
export function fixedReport(over: Partial<BenchConfig> = {}, ioPageSize = 2048, faults: FixtureFaults = 'ok'): BenchReport {
  const off = faults === 'off' ? { faults: 0, faultBatches: 0, faultTimeLimited: false } : {};
  const instances = [instance(0, 50, 100, 65.536, faults), instance(1, 40, 125, 131.072, faults)].map((i) => ({
    ...i,
    map: { ...i.map, ioPageSize },
  }));
  return buildReport({
    config: { ...FIXED_CONFIG, ...off, ...over },
    backend: { name: 'mock', url: 'file:///x/hw-mock/dist/index.js', id: 'mock', displayName: null, version: '0.1.0' },
    environment: FIXED_ENV,
    instances,
    physMemBytes: 80 * 1024 * 1024,
    poolThreads: null,
    walls: { patterns: { sequential: 50, random: 125 } },
    durationMs: 1234.5,
  });
}

/**
 * {@link fixedReport} as an SMMUv3-like backend would report it: every counter record carries
 * detail (micro-TLB / main-TLB hit split, 4 descriptor fetches per walk, invalidation commands and
 * syncs, one event per fault), backend id `arm-smmuv3`, 4 KiB IO pages.
 */
export function fixedDetailReport(): BenchReport {
  const base = fixedReport({ backend: 'smmuv3', backends: ['smmuv3'] }, 4096);
  const withDetail = (c: Counters, cmds: number, syncs: number): Counters => ({
    ...c,
    detail: {
      utlbHits: Math.round(c.iotlbHits * 0.75),
      mainTlbHits: c.iotlbHits - Math.round(c.iotlbHits * 0.75),
      walkSteps: 4 * c.walks,
      commands: cmds,
      syncs,
      events: c.faults,
    },
  });
  const instances = base.instances.map((i) => {
    const patterns = i.patterns.map((p) => ({ ...p, counters: withDetail(p.counters, 0, 0) }));
    const invalidation = { ...i.invalidation, counters: withDetail(i.invalidation.counters, 6, 2) };
    return {
      ...i,
      id: `arm-smmuv3-${i.index}`,
      backendId: 'arm-smmuv3',
      pageSizes: [4096, 2 * 1024 * 1024, 1024 * 1024 * 1024],
      map: { ...i.map, pages: 8192, pageSize: 4096, pagesBySize: { '4096': 8192 }, pagesPerSec: 20_480_000 },
      patterns,
      invalidation,
      totals: instanceTotals(patterns, invalidation, i.port),
    };
  });
  return buildReport({
    config: { ...FIXED_CONFIG, backend: 'smmuv3', backends: ['smmuv3'] },
    backend: { name: 'smmuv3', url: 'file:///x/hw-smmuv3/dist/index.js', id: 'arm-smmuv3', displayName: 'Arm SMMUv3', version: '0.1.0' },
    environment: FIXED_ENV,
    instances,
    physMemBytes: 80 * 1024 * 1024,
    poolThreads: null,
    walls: { patterns: { sequential: 100, random: 250 } },
    durationMs: 2345.6,
  });
}
