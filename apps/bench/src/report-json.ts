/**
 * The bench's own versioned JSON result (schemaVersion 1): environment, config, per-instance and
 * per-pattern results, totals. Also what the table renderer reads.
 */
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, platform, arch } from 'node:os';
import type { BenchConfig, PageSizeChoice, Pattern } from './args.js';
import { hitRate, sumCounters, type Counters } from './counters.js';
import type { InstanceRecord, PageFaultRecord, TotalsRecord } from './records.js';
import { patternSteps, type PatternSteps } from './pattern-steps.js';

/** The JSON schema version this module writes. */
export const SCHEMA_VERSION = 1;

/** Where the run happened. */
export interface EnvironmentInfo {
  readonly node: string;
  readonly platform: string;
  readonly arch: string;
  readonly cpuModel: string;
  readonly cpuCount: number;
  readonly availableParallelism: number;
  /** `git rev-parse HEAD` of the working directory, or null outside a repository. */
  readonly commit: string | null;
  /** ISO 8601 start time. */
  readonly date: string;
}

/** The backend as loaded. */
export interface BackendInfo {
  /** `--backend` as given. */
  readonly name: string;
  /** The URL the instances imported. */
  readonly url: string;
  readonly id: string;
  readonly displayName: string | null;
  readonly version: string | null;
}

/** The report's backend record: what `--backend` named, the URL imported, the plugin's identity. */
export function backendInfo(
  backend: { readonly name: string; readonly url: string },
  plugin: { readonly id: string; readonly displayName?: string; readonly version?: string },
): BackendInfo {
  return {
    name: backend.name,
    url: backend.url,
    id: plugin.id,
    displayName: plugin.displayName ?? null,
    version: plugin.version ?? null,
  };
}

/** The configuration as run. */
export interface ReportConfig {
  readonly backend: BackendInfo;
  readonly instances: number;
  readonly patterns: readonly Pattern[];
  readonly translationsPerPattern: number;
  readonly mapBytes: number;
  /** `--page-size` as given: bytes, `smallest` or `largest`. */
  readonly pageSize: PageSizeChoice;
  /** The IO page size it resolved to, bytes (null when no instance ran). */
  readonly ioPageSize: number | null;
  /** `--iotlb-entries` (passed as `options.iotlbEntries`), or null for the backend's default. */
  readonly iotlbEntries: number | null;
  /** Address steps of the patterns, bytes (null when no instance ran). */
  readonly steps: PatternSteps | null;
  readonly mode: 'worker' | 'in-thread';
  readonly runner: 'host' | 'pool';
  readonly short: boolean;
  readonly port: { readonly translations: number; readonly batch: number };
  /**
   * The page-fault phase as configured (`--faults`): timed round trips with one fault
   * outstanding, faults in flight per batch and timed batches (at most: `timeLimited`, the
   * default counts, may stop early). Counts 0 when disabled.
   */
  readonly pageFaults: {
    readonly roundTrips: number;
    readonly batch: number;
    readonly batches: number;
    readonly timeLimited: boolean;
  };
  /** Shared PhysMem size (host runner) or per-job PhysMem size (pool runner). */
  readonly physMemBytes: number;
  /** Pool threads (pool runner), else null. */
  readonly poolThreads: number | null;
}

/** One pattern over all instances. */
export interface PatternTotals {
  readonly pattern: Pattern;
  readonly translations: number;
  readonly faults: number;
  readonly counters: Counters;
  readonly hitRate: number | null;
  /** Aggregate rate: see {@link BenchReport.rateBasis}. */
  readonly translationsPerSec: number;
  /** Wall time of the pattern over all instances (host runner), else null. */
  readonly wallMs: number | null;
}

/**
 * The page-fault phase over all instances of a run. Instances are measured one at a time, so the
 * figures are medians over the instances that ran (`ok`) of each instance's own figure (for an
 * even count, the mean of the middle two), and the counts are sums.
 */
export interface PageFaultTotals {
  /** Instances measured, without PRI (n/a), failed. */
  readonly ok: number;
  readonly unsupported: number;
  readonly errors: number;
  /** Timed round trips with one fault outstanding, summed. */
  readonly roundTrips: number;
  /** Median over instances of their round-trip median / p90 / p99, µs; null when none ran. */
  readonly medianUs: number | null;
  readonly p90Us: number | null;
  readonly p99Us: number | null;
  /** Faults in flight per batch of the throughput part. */
  readonly batch: number;
  /** Median over instances of their faults/s (median over batches); null when none ran. */
  readonly faultsPerSec: number | null;
  /** Page requests sent, groups, SUCCESS responses (both parts, warm-ups excluded), summed. */
  readonly sent: number;
  readonly groups: number;
  readonly success: number;
  /** Requests dropped by the models plus the IopfQueues' drop counters, summed. */
  readonly dropped: number;
}

/** The whole result file. */
export interface BenchReport {
  readonly schemaVersion: typeof SCHEMA_VERSION;
  readonly tool: { readonly name: string; readonly version: string };
  readonly environment: EnvironmentInfo;
  readonly config: ReportConfig;
  /**
   * How aggregate rates were computed: `wall` = translations / wall time of the phase with every
   * instance running at once (host runner); `sum` = sum of per-instance rates (pool runner).
   */
  readonly rateBasis: 'wall' | 'sum';
  readonly instances: readonly InstanceRecord[];
  readonly patterns: readonly PatternTotals[];
  readonly totals: TotalsRecord;
  /** The page-fault phase over all instances, or null when it was disabled (`--faults 0`). */
  readonly pageFaults: PageFaultTotals | null;
  /** Wall time of the whole run, ms. */
  readonly durationMs: number;
}

/** The tool's name and version, recorded in every report. */
export const TOOL = { name: '@iommulab/bench', version: '0.1.0' } as const;

/** `git rev-parse HEAD` in `cwd`, or null when git or a repository is missing. */
export function gitCommit(cwd: string = process.cwd()): string | null {
  try {
    const out = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
    const s = out.toString().trim();
    return /^[0-9a-f]{40,64}$/.test(s) ? s : null;
  } catch {
    return null;
  }
}

/** Collects the environment block (node, CPU, parallelism, commit, date). */
export function environmentInfo(date: Date = new Date()): EnvironmentInfo {
  const list = cpus();
  return {
    node: process.version,
    platform: platform(),
    arch: arch(),
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cpuCount: list.length,
    availableParallelism: availableParallelism(),
    commit: gitCommit(),
    date: date.toISOString(),
  };
}

/** Wall times of the host runner's phases, for `wall`-based aggregate rates. */
export interface PhaseWalls {
  /** Wall time per pattern, ms. */
  readonly patterns: Readonly<Partial<Record<Pattern, number>>>;
}

/**
 * Builds the report from per-instance records. With `walls`, aggregate rates are translations over
 * wall time; without, the sum of per-instance rates.
 */
export function buildReport(args: {
  readonly config: BenchConfig;
  readonly backend: BackendInfo;
  readonly environment: EnvironmentInfo;
  readonly instances: readonly InstanceRecord[];
  readonly physMemBytes: number;
  readonly poolThreads: number | null;
  readonly walls: PhaseWalls | null;
  readonly durationMs: number;
}): BenchReport {
  const { config, instances, walls } = args;
  const first = instances[0];
  const patterns: PatternTotals[] = config.patterns.map((pattern) => {
    const recs = instances.flatMap((i) => i.patterns.filter((p) => p.pattern === pattern));
    const counters = sumCounters(recs.map((r) => r.counters));
    const translations = recs.reduce((s, r) => s + r.translations, 0);
    const wallMs = walls?.patterns[pattern] ?? null;
    const rate =
      wallMs !== null
        ? wallMs > 0
          ? (translations * 1000) / wallMs
          : 0
        : recs.reduce((s, r) => s + r.translationsPerSec, 0);
    return {
      pattern,
      translations,
      faults: recs.reduce((s, r) => s + r.faults, 0),
      counters,
      hitRate: hitRate(counters),
      translationsPerSec: rate,
      wallMs,
    };
  });
  const counters = sumCounters(instances.map((i) => i.totals.counters));
  const patternTranslations = instances.reduce((s, i) => s + i.totals.patternTranslations, 0);
  let translationsPerSec: number;
  if (walls !== null) {
    const wall = config.patterns.reduce((s, p) => s + (walls.patterns[p] ?? 0), 0);
    translationsPerSec = wall > 0 ? (patternTranslations * 1000) / wall : 0;
  } else {
    translationsPerSec = instances.reduce((s, i) => s + i.totals.translationsPerSec, 0);
  }
  return {
    schemaVersion: SCHEMA_VERSION,
    tool: { ...TOOL },
    environment: args.environment,
    config: {
      backend: args.backend,
      instances: config.instances,
      patterns: [...config.patterns],
      translationsPerPattern: config.translations,
      mapBytes: config.mapBytes,
      pageSize: config.pageSize,
      ioPageSize: first?.map.ioPageSize ?? null,
      iotlbEntries: config.iotlbEntries,
      steps: first !== undefined ? patternSteps(config.seqStep, first.map.ioPageSize, first.pageSizes[0]) : null,
      mode: config.mode,
      runner: config.runner,
      short: config.short,
      port: { translations: config.portTranslations, batch: config.portBatch },
      pageFaults: {
        roundTrips: config.faults,
        batch: config.faultBatch,
        batches: config.faultBatches,
        timeLimited: config.faultTimeLimited,
      },
      physMemBytes: args.physMemBytes,
      poolThreads: args.poolThreads,
    },
    rateBasis: walls !== null ? 'wall' : 'sum',
    instances,
    patterns,
    totals: {
      translations: instances.reduce((s, i) => s + i.totals.translations, 0),
      patternTranslations,
      counters,
      hitRate: hitRate(counters),
      translationsPerSec,
      portTranslationsPerSec: portRate(instances),
    },
    pageFaults: config.faults > 0 ? pageFaultTotals(instances, config.faultBatch) : null,
    durationMs: args.durationMs,
  };
}

/** All device-port translations over the summed port time (instances are measured one at a time). */
export function portRate(instances: readonly InstanceRecord[]): number {
  const n = instances.reduce((s, i) => s + i.port.translations, 0);
  const ms = instances.reduce((s, i) => s + i.port.elapsedMs, 0);
  return ms > 0 ? (n * 1000) / ms : 0;
}

/** The median of `xs` (the mean of the middle two for an even count), or null when empty. */
export function medianOf(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 === 1 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** Counts of a page-fault record over both parts: sent, groups, SUCCESS responses, dropped. */
export function pageFaultCounts(r: PageFaultRecord): { sent: number; groups: number; success: number; dropped: number } {
  const out = { sent: 0, groups: 0, success: 0, dropped: 0 };
  for (const c of [r.latency?.counts, r.throughput?.counts]) {
    if (c === undefined) continue;
    out.sent += c.sent;
    out.groups += c.groups;
    out.success += c.success;
    out.dropped += (c.dropped ?? 0) + c.iopfDrops;
  }
  return out;
}

/** Requests of a page-fault record the models dropped plus the IopfQueue's drop counters, both parts. */
export function pageFaultDrops(r: PageFaultRecord): number {
  return pageFaultCounts(r).dropped;
}

/** The page-fault phase over all instances (see {@link PageFaultTotals}). */
export function pageFaultTotals(instances: readonly InstanceRecord[], batch: number): PageFaultTotals {
  const recs = instances.map((i) => i.pageFaults).filter((r): r is PageFaultRecord => r !== null);
  const ok = recs.filter((r) => r.status === 'ok');
  const lat = ok.flatMap((r) => (r.latency === null ? [] : [r.latency]));
  const thr = ok.flatMap((r) => (r.throughput === null ? [] : [r.throughput]));
  const round = (x: number | null): number | null => (x === null ? null : Math.round(x * 100) / 100);
  const sum = { sent: 0, groups: 0, success: 0, dropped: 0 };
  for (const r of recs) {
    const c = pageFaultCounts(r);
    sum.sent += c.sent;
    sum.groups += c.groups;
    sum.success += c.success;
    sum.dropped += c.dropped;
  }
  const fps = medianOf(thr.map((t) => t.faultsPerSec));
  return {
    ok: ok.length,
    unsupported: recs.filter((r) => r.status === 'unsupported').length,
    errors: recs.filter((r) => r.status === 'error').length,
    roundTrips: lat.reduce((s, l) => s + l.roundTrips, 0),
    medianUs: round(medianOf(lat.map((l) => l.medianUs))),
    p90Us: round(medianOf(lat.map((l) => l.p90Us))),
    p99Us: round(medianOf(lat.map((l) => l.p99Us))),
    batch,
    faultsPerSec: fps === null ? null : Math.round(fps),
    ...sum,
  };
}

/**
 * The JSON of a run over several backends (`--backend a,b`, and the default run): every backend's
 * own {@link BenchReport}, in the order run. A run over one backend writes that backend's
 * BenchReport alone.
 */
export interface ComparisonReport {
  readonly schemaVersion: typeof SCHEMA_VERSION;
  /** Marks the multi-backend document (a single-backend BenchReport has no `kind`). */
  readonly kind: 'comparison';
  readonly tool: { readonly name: string; readonly version: string };
  readonly environment: EnvironmentInfo;
  /** `--backend` as given, split. */
  readonly backends: readonly string[];
  /** One report per backend, in the order run (one after the other, never at once). */
  readonly runs: readonly BenchReport[];
  /** Wall time of the whole run, ms. */
  readonly durationMs: number;
}

/** Builds the multi-backend document from the per-backend reports. */
export function buildComparison(args: {
  readonly backends: readonly string[];
  readonly environment: EnvironmentInfo;
  readonly runs: readonly BenchReport[];
  readonly durationMs: number;
}): ComparisonReport {
  return {
    schemaVersion: SCHEMA_VERSION,
    kind: 'comparison',
    tool: { ...TOOL },
    environment: args.environment,
    backends: [...args.backends],
    runs: args.runs,
    durationMs: args.durationMs,
  };
}

/** Writes the report as pretty JSON (with a trailing newline). */
export async function writeReport(file: string, report: BenchReport | ComparisonReport): Promise<void> {
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
}
