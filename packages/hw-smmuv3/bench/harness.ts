/**
 * Shared pieces of the worker benches (`bench/*-worker.ts`): open the real SMMUv3 backend through
 * driver-api's `openBackend` (hardware in its own worker, driver on this thread), run a workload
 * next to the model several times, take medians, and print one result row per measured bar.
 *
 * Not a bench itself.
 */
import { openBackend, type BackendStack } from '@iommulab/driver-api';
import type { WorkloadSpec } from '@iommulab/runtime';

/** The backend module, from source (the benches run with `--conditions=@iommulab/source` + tsx). */
export const SMMUV3_URL = new URL('../src/index.ts', import.meta.url).href;

/** Timed runs per measurement (the medians are over these). */
export const RUNS = Number(process.env.RUNS ?? 7);
if (!Number.isInteger(RUNS) || RUNS < 5) throw new Error(`RUNS must be an integer >= 5, got ${process.env.RUNS}`);

/**
 * Where the hardware runs: `worker` (the benches' point), or `in-thread` with `MODE=in-thread` in
 * the environment, to compare the same scenario without a worker.
 */
export const MODE: 'worker' | 'in-thread' = process.env.MODE === 'in-thread' ? 'in-thread' : 'worker';

/** Opens the SMMUv3 backend (in {@link MODE} by default) with `options`. */
export function openSmmu(
  id: string,
  options: Record<string, unknown> = {},
  memBytes = 256 * 1024 * 1024,
  mode: 'worker' | 'in-thread' = MODE,
): Promise<BackendStack> {
  return openBackend(SMMUV3_URL, { mode, memBytes, id, options, timeoutMs: 30_000 });
}

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** `12.3 M/s`, `456 K/s`. */
export function fmtRate(x: number, unit = '/s'): string {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M${unit}`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(0)} K${unit}`;
  return `${x.toFixed(0)}${unit}`;
}

/** One measured quantity: its runs (rates) and what it is compared against. */
export interface Measurement {
  readonly name: string;
  /** Rate per run, in units per second of wall-clock time. */
  readonly runs: readonly number[];
  /**
   * Rate per run in units per second of this process's CPU time (every thread), when measured: on
   * a shared machine it shows what the code does when it gets a core. Informational.
   */
  readonly cpuRuns?: readonly number[];
  /** The bar (units per second), or null for an informational row. */
  readonly target: number | null;
  /** Unit of the rate (`translations`, `commands`, `pages`). */
  readonly unit: string;
  /** Free text: counters that show what was measured (hit split, steps per walk...). */
  readonly note?: string;
}

/** Prints a measurement row and returns it (for the summary). */
export function report(m: Measurement): Measurement {
  const med = median(m.runs);
  const status = m.target === null ? 'info' : med >= m.target ? 'MET' : 'NOT MET';
  const target = m.target === null ? '-' : `>= ${fmtRate(m.target)}`;
  const cpu = m.cpuRuns !== undefined ? `; per CPU-second ${fmtRate(median(m.cpuRuns))}` : '';
  console.log(
    `${m.name.padEnd(38)} median ${fmtRate(med).padStart(11)}  target ${target.padStart(13)}  ${status.padEnd(7)}  ` +
      `${m.unit}; runs [${m.runs.map((r) => fmtRate(r, '')).join(', ')}]${cpu}${m.note ? `; ${m.note}` : ''}`,
  );
  return m;
}

/** Prints the machine-readable summary line of a bench (medians, runs, command). */
export function summary(bench: string, command: string, rows: readonly Measurement[]): void {
  console.log(
    `# result ${JSON.stringify({
      bench,
      command,
      node: process.version,
      rows: rows.map((r) => ({
        name: r.name,
        unit: r.unit,
        target: r.target,
        median: Math.round(median(r.runs)),
        runs: r.runs.map((x) => Math.round(x)),
        medianPerCpuSecond: r.cpuRuns !== undefined ? Math.round(median(r.cpuRuns)) : null,
        met: r.target === null ? null : median(r.runs) >= r.target,
      })),
    })}`,
  );
}

/** Counter deltas of a stats record (only the keys present in both). */
export function statsDelta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(after)) if (typeof before[k] === 'number') out[k] = after[k] - before[k];
  return out;
}

/** Hit split, walks and steps per walk of a stats delta, for a measurement's note. */
export function walkNote(d: Record<string, number>): string {
  const t = Math.max(1, d.translations);
  const walks = d.walks ?? 0;
  return (
    `uTLB hits ${((100 * (d.utlbHits ?? 0)) / t).toFixed(1)} %, main TLB hits ${((100 * (d.mainTlbHits ?? 0)) / t).toFixed(1)} %, ` +
    `walks ${((100 * walks) / t).toFixed(1)} % of translations, ${walks > 0 ? ((d.walkSteps ?? 0) / walks).toFixed(2) : '-'} descriptor fetches per walk` +
    `${d.faults ? `, ${d.faults} FAULTS` : ''}`
  );
}

/**
 * Runs `spec` in the instance's thread (`host.runWorkload`: the runtime's generator drives the
 * device port next to the model) once to warm up (`warm` translations), then {@link RUNS} times.
 *
 * @returns translations/s per run (wall clock, and per second of process CPU time: the worker's,
 *   as this thread only waits), the heap-used deltas the worker saw, and the stats delta over the
 *   timed runs
 */
export async function workloadRuns(
  stack: BackendStack,
  spec: WorkloadSpec,
  warm = Math.min(spec.count, 2_000_000),
): Promise<{ rates: number[]; cpuRates: number[]; heap: number[]; faults: number; delta: Record<string, number> }> {
  await stack.host.runWorkload({ ...spec, count: warm });
  const before = await stack.host.stats();
  const rates: number[] = [];
  const cpuRates: number[] = [];
  const heap: number[] = [];
  let faults = 0;
  for (let r = 0; r < RUNS; r++) {
    const c0 = process.cpuUsage();
    const res = await stack.host.runWorkload(spec);
    const c = process.cpuUsage(c0);
    rates.push(res.translationsPerSec);
    cpuRates.push(res.translations / ((c.user + c.system) / 1e6));
    heap.push(res.heapUsedDelta);
    faults += res.faults;
  }
  const after = await stack.host.stats();
  return { rates, cpuRates, heap, faults, delta: statsDelta(after, before) };
}
