/**
 * The host runner: one {@link BackendStack} per instance, opened from this thread over one shared
 * PhysMem (each instance's hardware in its own worker by default). Phases run with a barrier
 * between them: map (this thread, one instance after another), each pattern on every instance at
 * once (inside the instance threads), invalidation, then the device port and the page-fault phase
 * one instance at a time (so no sibling disturbs the latencies).
 */
import { loadBackend, openBackend, type BackendStack } from '@iommulab/driver-api';
import { PhysMem } from '@iommulab/runtime';
import type { BenchConfig, Pattern } from './args.js';
import { countersFromStats } from './counters.js';
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
import type { InvalidationRecord, PageFaultRecord, PatternRecord, PortRecord } from './records.js';
import { backendInfo, buildReport, environmentInfo, type BenchReport } from './report-json.js';
import type { ResolvedBackend } from './resolve-backend.js';
import {
  BENCH_RID,
  instanceRecord,
  mapInstance,
  measureFaults,
  measurePort,
  runInvalidation,
  runPattern,
  type InstancePhase,
  type InstancePlan,
  type MappedInstance,
} from './run-instance.js';

/** Plans for `config.instances` instances named `<backendId>-<i>`. */
export function instancePlans(config: BenchConfig, backendId: string): InstancePlan[] {
  return Array.from({ length: config.instances }, (_, index) => ({
    index,
    id: `${backendId}-${index}`,
    rid: BENCH_RID,
    mapBytes: config.mapBytes,
    pageSize: config.pageSize,
    seqStep: config.seqStep,
    patterns: [...config.patterns],
    translations: config.translations,
    portTranslations: config.portTranslations,
    portBatch: config.portBatch,
    faults: config.faults,
    faultBatch: config.faultBatch,
    faultBatches: config.faultBatches,
    faultTimeLimited: config.faultTimeLimited,
    seed: (0x2545f491 + index * 0x9e3779b1) >>> 0 || 1,
  }));
}

/** Mutable progress of one instance, shared by the phases and the poller. */
interface Live {
  id: string;
  phase: InstancePhase;
  done: number;
  total: number;
  rate: number;
  /** Hardware translation counter at the start of the current DMA phase. */
  base: number;
  lastDone: number;
  lastAt: number;
}

/** Polls `host.stats()` every {@link PROGRESS_INTERVAL_MS} and feeds the reporter. */
function startPoller(
  title: string,
  stacks: readonly BackendStack[],
  live: readonly Live[],
  reporter: ProgressReporter,
  t0: number,
): () => void {
  let busy = false;
  const view = (): InstanceProgress[] =>
    live.map((l) => ({ id: l.id, phase: l.phase, done: l.done, total: l.total, rate: l.rate }));
  const tick = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      await Promise.all(
        live.map(async (l, i) => {
          if (l.total === 0) return;
          const stats = await stacks[i].host.stats();
          const now = performance.now();
          const done = Math.max(0, Math.min(l.total, countersFromStats(stats).translations - l.base));
          if (now > l.lastAt && done >= l.lastDone) l.rate = ((done - l.lastDone) * 1000) / (now - l.lastAt);
          l.done = done;
          l.lastDone = done;
          l.lastAt = now;
        }),
      );
    } catch {
      // An instance that is shutting down or busy: skip this frame.
    } finally {
      busy = false;
    }
    reporter.update({ title, elapsedMs: performance.now() - t0, instances: view() });
  };
  reporter.update({ title, elapsedMs: 0, instances: view() });
  const timer = setInterval(() => void tick(), PROGRESS_INTERVAL_MS);
  return () => clearInterval(timer);
}

/**
 * The backend options of a run: `iotlbEntries` when `--iotlb-entries` was given, else none (the
 * backend's defaults).
 */
export function backendOptions(config: Pick<BenchConfig, 'iotlbEntries'>): Record<string, unknown> {
  return config.iotlbEntries !== null ? { iotlbEntries: config.iotlbEntries } : {};
}

async function openAll(
  url: string,
  plans: readonly InstancePlan[],
  mode: BenchConfig['mode'],
  mem: PhysMem,
  options: Record<string, unknown>,
) {
  const settled = await Promise.allSettled(plans.map((p) => openBackend(url, { mode, mem, id: p.id, options })));
  const stacks = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed !== undefined) {
    await Promise.allSettled(stacks.map((s) => s.close()));
    throw failed.reason;
  }
  return stacks;
}

/**
 * Runs the benchmark with the host runner.
 *
 * @param config - the parsed command line
 * @param backend - the resolved backend (its URL is imported by every instance)
 * @param reporter - progress output
 * @returns the report (not yet printed or written)
 */
export async function runHost(
  config: BenchConfig,
  backend: ResolvedBackend,
  reporter: ProgressReporter,
): Promise<BenchReport> {
  const t0 = performance.now();
  const environment = environmentInfo();
  const plugin = await loadBackend(backend.url);
  const memBytes = physMemBytes(config.instances, config.mapBytes, plugin.capabilities.pageSizes);
  const mem = PhysMem.create(memBytes);
  const plans = instancePlans(config, plugin.id);
  const live: Live[] = plans.map((p) => ({
    id: p.id,
    phase: 'start',
    done: 0,
    total: 0,
    rate: 0,
    base: 0,
    lastDone: 0,
    lastAt: 0,
  }));
  const stacks = await openAll(backend.url, plans, config.mode, mem, backendOptions(config));
  const title = `iommulab-bench: ${plugin.id}, ${config.instances} instance${config.instances === 1 ? '' : 's'} (${config.mode})`;
  const stopPoller = startPoller(title, stacks, live, reporter, t0);
  try {
    const mapped: MappedInstance[] = [];
    for (let i = 0; i < stacks.length; i++) {
      live[i].phase = 'map';
      const m = await mapInstance(stacks[i], plans[i]);
      mapped.push(m);
      reporter.phaseDone(mapLine(m.plan.id, m.map));
    }
    const patternWalls: Partial<Record<Pattern, number>> = {};
    const patterns: PatternRecord[][] = mapped.map(() => []);
    for (const pattern of config.patterns) {
      await Promise.all(
        mapped.map(async (m, i) => {
          const base = countersFromStats(await m.stack.host.stats()).translations;
          Object.assign(live[i], { phase: pattern, done: 0, total: config.translations, rate: 0, base, lastDone: 0 });
          live[i].lastAt = performance.now();
        }),
      );
      const w0 = performance.now();
      await Promise.all(
        mapped.map(async (m, i) => {
          const r = await runPattern(m, pattern);
          patterns[i].push(r);
          Object.assign(live[i], { done: r.translations, total: 0 });
          reporter.phaseDone(patternLine(m.plan.id, r));
        }),
      );
      patternWalls[pattern] = performance.now() - w0;
    }
    for (const l of live) Object.assign(l, { phase: 'invalidate', total: 0 });
    const invalidations: InvalidationRecord[] = await Promise.all(
      mapped.map(async (m) => {
        const r = await runInvalidation(m);
        reporter.phaseDone(invalidationLine(m.plan.id, r));
        return r;
      }),
    );
    const ports: PortRecord[] = [];
    const pageFaults: (PageFaultRecord | null)[] = [];
    for (let i = 0; i < mapped.length; i++) {
      live[i].phase = 'port';
      const r = await measurePort(mapped[i]);
      ports.push(r);
      reporter.phaseDone(portLine(mapped[i].plan.id, r));
      if (config.faults > 0) live[i].phase = 'faults';
      const f = await measureFaults(mapped[i]);
      pageFaults.push(f);
      if (f !== null) reporter.phaseDone(faultLine(mapped[i].plan.id, f));
      live[i].phase = 'done';
    }
    const instances = mapped.map((m, i) => instanceRecord(m, patterns[i], invalidations[i], ports[i], pageFaults[i]));
    return buildReport({
      config,
      backend: backendInfo(backend, plugin),
      environment,
      instances,
      physMemBytes: memBytes,
      poolThreads: null,
      walls: { patterns: patternWalls },
      durationMs: performance.now() - t0,
    });
  } finally {
    stopPoller();
    await Promise.allSettled(stacks.map((s) => s.close()));
  }
}
