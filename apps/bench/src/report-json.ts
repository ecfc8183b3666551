/**
 * The bench's own versioned JSON result (schemaVersion 1): environment, config, per-instance and
 * per-pattern results, totals. Also what the table renderer reads.
 */
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, platform, arch } from 'node:os';
import type { BenchConfig, PageSizeChoice, Pattern } from './args.js';
import { hitRate, sumCounters, type Counters } from './counters.js';
import type { InstanceRecord, TotalsRecord } from './records.js';
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
    durationMs: args.durationMs,
  };
}

/** All device-port translations over the summed port time (instances are measured one at a time). */
export function portRate(instances: readonly InstanceRecord[]): number {
  const n = instances.reduce((s, i) => s + i.port.translations, 0);
  const ms = instances.reduce((s, i) => s + i.port.elapsedMs, 0);
  return ms > 0 ? (n * 1000) / ms : 0;
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
