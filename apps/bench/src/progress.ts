/**
 * Progress while the bench runs: a live redraw (log-update + picocolors) on an interactive
 * terminal, else one plain line per finished phase. Runners feed it snapshots; rendering is pure.
 */
import { createLogUpdate } from 'log-update';
import pc from 'picocolors';
import type { InstancePhase } from './run-instance.js';
import { hitRate } from './counters.js';
import { formatBytes, formatCount, formatMs, formatPercent, formatSi, formatUs } from './format.js';
import type { InvalidationRecord, MapRecord, PageFaultRecord, PatternRecord, PortRecord } from './records.js';
import { pageFaultDrops } from './report-json.js';

/** Interval at which runners poll `host.stats()` for progress, ms. */
export const PROGRESS_INTERVAL_MS = 250;

/** One instance (or pool job) as progress shows it. */
export interface InstanceProgress {
  readonly id: string;
  readonly phase: InstancePhase;
  /** Translations done in the current phase. */
  readonly done: number;
  /** Translations the current phase will do (0 when not a DMA phase). */
  readonly total: number;
  /** Recent translations per second (0 when unknown). */
  readonly rate: number;
}

/** What a live frame shows. */
export interface ProgressView {
  readonly title: string;
  readonly elapsedMs: number;
  readonly instances: readonly InstanceProgress[];
}

/** Receives progress from a runner. */
export interface ProgressReporter {
  /** A new snapshot (live mode redraws; plain mode ignores it). */
  update(view: ProgressView): void;
  /** A phase finished: `line` describes it (plain mode prints it; live mode keeps it above the frame). */
  phaseDone(line: string): void;
  /** Clears the live frame. Call before printing the final tables. */
  stop(): void;
}

/**
 * True when progress should redraw live: the stream is a TTY with a usable height (log-update
 * prints nothing on a 0-row terminal) and `CI` is not set.
 *
 * @param stream - where progress goes (stdout)
 * @param env - the environment (for `CI`)
 */
export function isLiveTerminal(
  stream: { readonly isTTY?: boolean; readonly rows?: number },
  env: Readonly<Record<string, string | undefined>> = process.env,
): boolean {
  const ci = env.CI !== undefined && env.CI !== '' && env.CI !== '0' && env.CI !== 'false';
  return stream.isTTY === true && stream.rows !== 0 && !ci;
}

const BAR_WIDTH = 24;

/** A text progress bar of {@link BAR_WIDTH} cells. */
export function progressBar(done: number, total: number): string {
  const frac = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const full = Math.round(frac * BAR_WIDTH);
  return `[${'#'.repeat(full)}${'.'.repeat(BAR_WIDTH - full)}]`;
}

/** Renders one live frame (plain text unless `color`). */
export function renderProgress(view: ProgressView, color = false): string {
  const c = pc.createColors(color);
  const idWidth = Math.max(8, ...view.instances.map((i) => i.id.length));
  const phaseWidth = Math.max(...view.instances.map((i) => i.phase.length), 5);
  const lines = [`${c.bold(view.title)}  ${c.dim(`${(view.elapsedMs / 1000).toFixed(1)} s`)}`];
  for (const i of view.instances) {
    const phase = i.phase === 'done' ? c.green(i.phase.padEnd(phaseWidth)) : c.cyan(i.phase.padEnd(phaseWidth));
    let detail = '';
    if (i.total > 0) {
      const pct = ((100 * Math.min(i.done, i.total)) / i.total).toFixed(0).padStart(3);
      detail = `${progressBar(i.done, i.total)} ${pct} %  ${formatCount(i.done)}/${formatCount(i.total)}`;
      if (i.rate > 0) detail += `  ${formatSi(i.rate)}/s`;
    }
    lines.push(`  ${i.id.padEnd(idWidth)}  ${phase}  ${detail}`.trimEnd());
  }
  return lines.join('\n');
}

/** Prints finished phases as plain lines; ignores snapshots. */
export function plainProgress(write: (line: string) => void): ProgressReporter {
  return {
    update(): void {},
    phaseDone(line: string): void {
      write(line);
    },
    stop(): void {},
  };
}

/** Redraws the latest snapshot in place; finished phases persist above it. */
export function liveProgress(stream: NodeJS.WriteStream = process.stdout): ProgressReporter {
  const log = createLogUpdate(stream);
  let last: ProgressView | null = null;
  return {
    update(view: ProgressView): void {
      last = view;
      log(renderProgress(view, true));
    },
    phaseDone(line: string): void {
      log.clear();
      stream.write(`${pc.dim(line)}\n`);
      if (last !== null) log(renderProgress(last, true));
    },
    stop(): void {
      log.clear();
      log.done();
    },
  };
}

/** Chooses live or plain progress for `stream` (see {@link isLiveTerminal}). */
export function createProgress(stream: NodeJS.WriteStream = process.stdout): ProgressReporter {
  return isLiveTerminal(stream)
    ? liveProgress(stream)
    : plainProgress((line) => {
        stream.write(`${line}\n`);
      });
}

/** The plain line for a finished map phase. */
export function mapLine(id: string, m: MapRecord): string {
  return (
    `[${id}] map: ${formatBytes(m.bytes)} as ${formatCount(m.pages)} x ${formatBytes(m.pageSize)} pages in ` +
    `${formatMs(m.mapMs)} (${formatSi(m.pagesPerSec)} pages/s)`
  );
}

/** The plain line for a finished pattern. */
export function patternLine(id: string, p: PatternRecord): string {
  return (
    `[${id}] ${p.pattern}: ${formatCount(p.translations)} translations, ${formatSi(p.translationsPerSec)}/s, ` +
    `IOTLB hit ${formatPercent(hitRate(p.counters))}, ${formatCount(p.counters.walks)} walks, ` +
    `${formatCount(p.faults)} faults`
  );
}

/** The plain line for a finished invalidation phase. */
export function invalidationLine(id: string, r: InvalidationRecord): string {
  return (
    `[${id}] invalidate: unmap ${formatBytes(r.bytes)} + sync in ${formatMs(r.unmapMs)}, ` +
    `${formatCount(r.unmapped.faults)}/${formatCount(r.unmapped.translations)} faulted, ` +
    `remap in ${formatMs(r.remapMs)}, ${formatCount(r.remapped.faults)} faults after remap`
  );
}

/** The plain line for a finished device-port phase. */
export function portLine(id: string, r: PortRecord): string {
  return (
    `[${id}] port: ${formatCount(r.translations)} translations in batches of ${r.batch}, ` +
    `${formatSi(r.translationsPerSec)}/s${r.crossThread ? ' cross-thread' : ' in-thread'}`
  );
}

/** The plain line for a finished page-fault phase. */
export function faultLine(id: string, r: PageFaultRecord): string {
  if (r.status === 'unsupported') return `[${id}] faults: n/a (${r.reason ?? 'no PRI'})`;
  const parts: string[] = [];
  const limit = (stopped: boolean): string => (stopped ? ' (time limit)' : '');
  if (r.latency !== null) {
    parts.push(
      `${formatCount(r.latency.roundTrips)} round trips${limit(r.latency.stoppedAtTimeLimit)} ` +
        `p50 ${formatUs(r.latency.medianUs)} p90 ${formatUs(r.latency.p90Us)}`,
    );
  }
  if (r.throughput !== null) {
    parts.push(
      `${formatCount(r.throughput.batches)} x ${r.throughput.batch} in flight${limit(r.throughput.stoppedAtTimeLimit)} ` +
        `${formatSi(r.throughput.faultsPerSec)} faults/s`,
    );
  }
  const groups = (r.latency?.counts.groups ?? 0) + (r.throughput?.counts.groups ?? 0);
  parts.push(`${formatCount(groups)} groups, ${formatCount(pageFaultDrops(r))} dropped`);
  const line = `[${id}] faults: ${parts.join(', ')}${r.crossThread ? ' cross-thread' : ' in-thread'}`;
  return r.status === 'error' ? `${line}; failed: ${r.reason ?? 'unknown error'}` : line;
}
