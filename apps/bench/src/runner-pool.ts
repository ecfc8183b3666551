/**
 * The pool runner: every instance is one piscina job (runtime's `createJobPool`) that builds its
 * instance in-thread inside the pool thread and returns a plain record. Jobs share nothing, so the
 * aggregate rate is the sum of per-instance rates (`rateBasis: 'sum'`).
 */
import { availableParallelism } from 'node:os';
import { loadBackend } from '@iommulab/driver-api';
import { createJobPool } from '@iommulab/runtime';
import type { BenchConfig } from './args.js';
import type { JobConfig } from './job.js';
import { physMemBytes } from './mem-size.js';
import {
  PROGRESS_INTERVAL_MS,
  invalidationLine,
  faultLine,
  mapLine,
  patternLine,
  portLine,
  type InstanceProgress,
  type ProgressReporter,
} from './progress.js';
import type { InstanceRecord } from './records.js';
import { backendInfo, buildReport, environmentInfo, type BenchReport } from './report-json.js';
import type { ResolvedBackend } from './resolve-backend.js';
import { backendOptions, instancePlans } from './runner-host.js';

/**
 * The job module next to this one: `job.js` when running built, `job.ts` from source (the pool
 * then runs it through tsx).
 */
export function jobModuleUrl(here: string = import.meta.url): URL {
  return new URL(here.endsWith('.ts') ? './job.ts' : './job.js', here);
}

/** Pool threads for `instances` jobs: one per job, at most one per core (the main thread only waits). */
export function poolThreads(instances: number, cores: number = availableParallelism()): number {
  return Math.max(1, Math.min(instances, cores));
}

/**
 * Runs the benchmark with the pool runner.
 *
 * @param config - the parsed command line (`mode` is always `in-thread` here)
 * @param backend - the resolved backend
 * @param reporter - progress output (one line per finished job phase)
 */
export async function runPool(
  config: BenchConfig,
  backend: ResolvedBackend,
  reporter: ProgressReporter,
): Promise<BenchReport> {
  const t0 = performance.now();
  const environment = environmentInfo();
  const plugin = await loadBackend(backend.url);
  const memBytes = physMemBytes(1, config.mapBytes, plugin.capabilities.pageSizes);
  const plans = instancePlans(config, plugin.id);
  const threads = poolThreads(plans.length);
  const pool = createJobPool<JobConfig, InstanceRecord>({ filename: jobModuleUrl(), maxThreads: threads });
  const title = `iommulab-bench: ${plugin.id}, ${plans.length} pool job${plans.length === 1 ? '' : 's'} on ${threads} thread${threads === 1 ? '' : 's'}`;
  const state: InstanceProgress[] = plans.map((p) => ({ id: p.id, phase: 'start', done: 0, total: 0, rate: 0 }));
  const draw = (): void => reporter.update({ title, elapsedMs: performance.now() - t0, instances: state });
  draw();
  const timer = setInterval(draw, PROGRESS_INTERVAL_MS);
  try {
    const instances = await Promise.all(
      plans.map(async (plan, i) => {
        const r = await pool.run({ backendUrl: backend.url, memBytes, options: backendOptions(config), plan });
        state[i] = { ...state[i], phase: 'done' };
        reporter.phaseDone(mapLine(r.id, r.map));
        for (const p of r.patterns) reporter.phaseDone(patternLine(r.id, p));
        reporter.phaseDone(invalidationLine(r.id, r.invalidation));
        reporter.phaseDone(portLine(r.id, r.port));
        if (r.pageFaults !== null) reporter.phaseDone(faultLine(r.id, r.pageFaults));
        return r;
      }),
    );
    return buildReport({
      config,
      backend: backendInfo(backend, plugin),
      environment,
      instances,
      physMemBytes: memBytes,
      poolThreads: threads,
      walls: null,
      durationMs: performance.now() - t0,
    });
  } finally {
    clearInterval(timer);
    await pool.destroy();
  }
}
