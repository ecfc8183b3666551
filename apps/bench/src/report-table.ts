/**
 * Text tables of a {@link BenchReport}: translation counters per instance and in total, per
 * pattern, the map / invalidation timings, and the page-fault round trips. Pure functions of the report (exact strings).
 */
import pc from 'picocolors';
import type { Counters } from './counters.js';
import { stepsPerWalk, sumCounters } from './counters.js';
import type { BenchReport, ComparisonReport, PageFaultTotals } from './report-json.js';
import { pageFaultCounts } from './report-json.js';
import { formatBytes, formatCount, formatMs, formatPercent, formatSi, formatUs } from './format.js';

/** Rendering options. */
export interface TableOptions {
  /** Use ANSI colours (bold header and total row). Default false. */
  readonly color?: boolean;
}

/**
 * Renders rows as an aligned text table: the first column left-aligned, the others right-aligned,
 * two spaces between columns, a dashed rule under the header and above a footer row.
 *
 * @param header - column titles
 * @param rows - body rows (strings, same length as `header`)
 * @param footer - an optional total row
 */
export function renderTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  footer: readonly string[] | null = null,
  opts: TableOptions = {},
): string {
  const all = [header, ...rows, ...(footer ? [footer] : [])];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const line = (r: readonly string[]): string =>
    r
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const bold = opts.color === true ? pc.bold : (s: string): string => s;
  const out = [bold(line(header)), rule, ...rows.map(line)];
  if (footer) out.push(rule, bold(line(footer)));
  return out.join('\n');
}

/** Column titles of {@link translationTable}. */
export const TRANSLATION_COLUMNS = [
  'instance',
  'translations',
  'IOTLB hit',
  'IOTLB misses',
  'walks',
  'faults',
  'invals',
  'trans/s',
  'port trans/s',
] as const;

/** Translations, IOTLB hit rate, misses, walks, faults, invalidations, rates: per instance and total. */
export function translationTable(report: BenchReport, opts: TableOptions = {}): string {
  const row = (
    name: string,
    t: BenchReport['totals'],
  ): string[] => [
    name,
    formatCount(t.translations),
    formatPercent(t.hitRate),
    formatCount(t.counters.iotlbMisses),
    formatCount(t.counters.walks),
    formatCount(t.counters.faults),
    formatCount(t.counters.invalidations),
    formatSi(t.translationsPerSec),
    formatSi(t.portTranslationsPerSec),
  ];
  return renderTable(
    TRANSLATION_COLUMNS,
    report.instances.map((i) => row(i.id, i.totals)),
    row('total', report.totals),
    opts,
  );
}

/** Column titles of {@link patternTable}. */
export const PATTERN_COLUMNS = ['pattern', 'step', 'translations', 'IOTLB hit', 'IOTLB misses', 'walks', 'faults', 'trans/s'] as const;

/** One row per pattern over all instances. */
export function patternTable(report: BenchReport, opts: TableOptions = {}): string {
  const rows = report.patterns.map((p) => {
    const step = report.instances[0]?.patterns.find((r) => r.pattern === p.pattern)?.step;
    return [
      p.pattern,
      step === undefined ? '-' : formatBytes(step),
      formatCount(p.translations),
      formatPercent(p.hitRate),
      formatCount(p.counters.iotlbMisses),
      formatCount(p.counters.walks),
      formatCount(p.counters.faults),
      formatSi(p.translationsPerSec),
    ];
  });
  return renderTable(PATTERN_COLUMNS, rows, null, opts);
}

/** Column titles of {@link mapTable}. */
export const MAP_COLUMNS = [
  'instance',
  'mapped',
  'pages',
  'map time',
  'pages/s',
  'unmap+sync',
  'DMA faulted',
  'remap',
] as const;

/** Mapping and invalidation timings per instance and in total. */
export function mapTable(report: BenchReport, opts: TableOptions = {}): string {
  const rows = report.instances.map((i) => [
    i.id,
    formatBytes(i.map.bytes),
    `${formatCount(i.map.pages)} x ${formatBytes(i.map.pageSize)}`,
    formatMs(i.map.mapMs),
    formatSi(i.map.pagesPerSec),
    formatMs(i.invalidation.unmapMs),
    `${formatCount(i.invalidation.unmapped.faults)}/${formatCount(i.invalidation.unmapped.translations)}`,
    formatMs(i.invalidation.remapMs),
  ]);
  const sum = (f: (i: BenchReport['instances'][number]) => number): number =>
    report.instances.reduce((s, i) => s + f(i), 0);
  const pages = sum((i) => i.map.pages);
  const mapMs = sum((i) => i.map.mapMs);
  const footer = [
    'total',
    formatBytes(sum((i) => i.map.bytes)),
    formatCount(pages),
    formatMs(mapMs),
    formatSi(mapMs > 0 ? (pages * 1000) / mapMs : 0),
    formatMs(sum((i) => i.invalidation.unmapMs)),
    `${formatCount(sum((i) => i.invalidation.unmapped.faults))}/${formatCount(sum((i) => i.invalidation.unmapped.translations))}`,
    formatMs(sum((i) => i.invalidation.remapMs)),
  ];
  return renderTable(MAP_COLUMNS, rows, footer, opts);
}

/** Column titles of {@link detailTable}. */
export const DETAIL_COLUMNS = [
  'phase',
  'translations',
  'uTLB hits',
  'main TLB hits',
  'TLB misses',
  'walks',
  'steps/walk',
  'invals',
  'commands',
  'syncs',
  'events',
] as const;

/** Whether any counter of the report carries backend detail (see `DetailCounters`). */
export function hasDetail(report: BenchReport): boolean {
  return report.totals.counters.detail !== undefined;
}

const optCount = (v: number | undefined): string => (v === undefined ? '-' : formatCount(v));

/**
 * The backend's own costs per phase over all instances: where IOTLB hits came from (micro-TLB or
 * main TLB), walks and descriptor fetches per walk, invalidation commands and syncs consumed,
 * event records written. A cell the backend does not report is `-`. Returns null when the
 * backend reports none of them.
 */
export function detailTable(report: BenchReport, opts: TableOptions = {}): string | null {
  if (!hasDetail(report)) return null;
  const row = (name: string, c: Counters): string[] => {
    const spw = stepsPerWalk(c);
    return [
      name,
      formatCount(c.translations),
      optCount(c.detail?.utlbHits),
      optCount(c.detail?.mainTlbHits),
      formatCount(c.iotlbMisses),
      formatCount(c.walks),
      spw === null ? '-' : spw.toFixed(2),
      formatCount(c.invalidations),
      optCount(c.detail?.commands),
      optCount(c.detail?.syncs),
      optCount(c.detail?.events),
    ];
  };
  const rows = report.patterns.map((p) => row(p.pattern, p.counters));
  const n = report.instances.length;
  const inv = report.instances.map((i) => i.invalidation.counters);
  const invRow = row(`invalidate x${n}`, sumCounters(inv));
  return renderTable(DETAIL_COLUMNS, [...rows, invRow], row('total', report.totals.counters), opts);
}

/** Column titles of {@link pageFaultTable}. */
export const PAGE_FAULT_COLUMNS = [
  'instance',
  'round trips',
  'p50',
  'p90',
  'p99',
  'in flight',
  'faults/s',
  'groups',
  'SUCCESS',
  'dropped',
] as const;

/**
 * The page-fault phase per instance and in total: round trips with one fault outstanding (p50,
 * p90, p99), batches in flight and their faults/s (median over batches), then the groups the
 * IopfQueue formed, the SUCCESS responses it sent and the requests dropped on the way (model +
 * IopfQueue). An instance without PRI shows n/a. The total row gives the median over the
 * instances of each figure and the sums of the counts. Null when the phase was disabled.
 */
export function pageFaultTable(report: BenchReport, opts: TableOptions = {}): string | null {
  const t = report.pageFaults;
  if (t === null) return null;
  const na = (id: string, what: string): string[] => [id, ...PAGE_FAULT_COLUMNS.slice(1).map(() => what)];
  const rows = report.instances.map((i) => {
    const r = i.pageFaults;
    if (r === null) return na(i.id, '-');
    if (r.status === 'unsupported') return na(i.id, 'n/a');
    const l = r.latency;
    const th = r.throughput;
    const bad = r.status === 'error' ? 'error' : '-';
    const c = pageFaultCounts(r);
    return [
      i.id,
      l === null ? bad : formatCount(l.roundTrips),
      l === null ? bad : formatUs(l.medianUs),
      l === null ? bad : formatUs(l.p90Us),
      l === null ? bad : formatUs(l.p99Us),
      th === null ? bad : `${formatCount(th.batches)} x ${th.batch}`,
      th === null ? bad : formatSi(th.faultsPerSec),
      formatCount(c.groups),
      formatCount(c.success),
      r.status === 'error' ? `${formatCount(c.dropped)} (error)` : formatCount(c.dropped),
    ];
  });
  const none = t.ok === 0 ? (t.unsupported > 0 ? 'n/a' : 'error') : '-';
  if (t.ok === 0 && t.errors === 0) return renderTable(PAGE_FAULT_COLUMNS, rows, na('total', none), opts);
  const footer = [
    'total',
    t.ok === 0 ? none : formatCount(t.roundTrips),
    t.medianUs === null ? none : formatUs(t.medianUs),
    t.p90Us === null ? none : formatUs(t.p90Us),
    t.p99Us === null ? none : formatUs(t.p99Us),
    t.ok === 0 ? none : String(t.batch),
    t.faultsPerSec === null ? none : formatSi(t.faultsPerSec),
    formatCount(t.groups),
    formatCount(t.success),
    formatCount(t.dropped),
  ];
  return renderTable(PAGE_FAULT_COLUMNS, rows, footer, opts);
}

/** Column titles of {@link comparisonTable} around the per-pattern rate columns. */
export const COMPARISON_COLUMNS = {
  head: ['backend', 'IO page', 'IOTLB hit', 'walks', 'steps/walk'],
  tail: ['trans/s', 'vs first', 'map pages/s', 'unmap+sync', 'cmds/inval', 'port trans/s'],
  /** Added when the page-fault phase ran. */
  faults: ['fault p50/p90 µs', 'faults/s'],
} as const;

/** The comparison cells of a run's page-fault totals: `p50/p90` µs and faults/s, n/a without PRI. */
export function pageFaultCells(t: PageFaultTotals | null): [string, string] {
  if (t === null) return ['-', '-'];
  if (t.ok === 0) return t.unsupported > 0 ? ['n/a', 'n/a'] : ['error', 'error'];
  const lat = t.medianUs === null || t.p90Us === null ? '-' : `${t.medianUs.toFixed(1)}/${t.p90Us.toFixed(1)}`;
  return [lat, t.faultsPerSec === null ? '-' : formatSi(t.faultsPerSec)];
}

/**
 * One row per backend of a comparison run: IO page size, hit rate, walks and their length,
 * translations/s per pattern and in total (and relative to the first backend), map rate, mean
 * unmap + sync time and commands per invalidation, device-port rate, and (when the page-fault
 * phase ran) the fault round trip p50/p90 in µs and faults/s with many in flight.
 */
export function comparisonTable(comparison: ComparisonReport, opts: TableOptions = {}): string {
  const runs = comparison.runs;
  const patterns = runs[0]?.config.patterns ?? [];
  const faults = runs.some((r) => r.pageFaults !== null);
  const header = [
    ...COMPARISON_COLUMNS.head,
    ...patterns.map((p) => `${p}/s`),
    ...COMPARISON_COLUMNS.tail,
    ...(faults ? COMPARISON_COLUMNS.faults : []),
  ];
  const first = runs[0]?.totals.translationsPerSec ?? 0;
  const rows = runs.map((r) => {
    const t = r.totals;
    const spw = stepsPerWalk(t.counters);
    const n = Math.max(1, r.instances.length);
    const pages = r.instances.reduce((s, i) => s + i.map.pages, 0);
    const mapMs = r.instances.reduce((s, i) => s + i.map.mapMs, 0);
    const unmapMs = r.instances.reduce((s, i) => s + i.invalidation.unmapMs, 0) / n;
    const cmds = r.instances.reduce<number | null>((s, i) => {
      const c = i.invalidation.counters.detail?.commands;
      return s === null || c === undefined ? null : s + c;
    }, 0);
    return [
      r.config.backend.id,
      r.config.ioPageSize === null ? '-' : formatBytes(r.config.ioPageSize),
      formatPercent(t.hitRate),
      formatCount(t.counters.walks),
      spw === null ? '-' : spw.toFixed(2),
      ...patterns.map((p) => {
        const pt = r.patterns.find((x) => x.pattern === p);
        return pt === undefined ? '-' : formatSi(pt.translationsPerSec);
      }),
      formatSi(t.translationsPerSec),
      first > 0 ? `${(t.translationsPerSec / first).toFixed(2)}x` : '-',
      formatSi(mapMs > 0 ? (pages * 1000) / mapMs : 0),
      formatMs(unmapMs),
      cmds === null || r.instances.length === 0 ? '-' : (cmds / r.instances.length).toFixed(1),
      formatSi(t.portTranslationsPerSec),
      ...(faults ? pageFaultCells(r.pageFaults) : []),
    ];
  });
  return renderTable(header, rows, null, opts);
}

/** The one-line description of a comparison run. */
export function comparisonSummaryLine(comparison: ComparisonReport): string {
  const names = comparison.runs.map((r) => r.config.backend.id).join(', ');
  const c = comparison.runs[0]?.config;
  const shape =
    c === undefined
      ? ''
      : ` ${c.instances} instance${c.instances === 1 ? '' : 's'} each (${c.mode}, ${c.runner} runner), ` +
        `${formatBytes(c.mapBytes)} mapped each, ${formatCount(c.translationsPerPattern)} translations per pattern,`;
  return `iommulab-bench: ${comparison.runs.length} backends (${names}),${shape} ${formatMs(comparison.durationMs)}`;
}

/** The comparison block printed after the per-backend reports. */
export function formatComparison(comparison: ComparisonReport, opts: TableOptions = {}): string {
  const title = (s: string): string => (opts.color === true ? pc.cyan(s) : s);
  return [
    comparisonSummaryLine(comparison),
    '',
    title('Backends side by side (totals over all instances)'),
    comparisonTable(comparison, opts),
    '',
  ].join('\n');
}

/** The one-line description of the run above the tables. */
export function summaryLine(report: BenchReport): string {
  const c = report.config;
  const b = c.backend;
  const name = b.version !== null ? `${b.id} ${b.version}` : b.id;
  const pages = c.ioPageSize !== null ? ` in ${formatBytes(c.ioPageSize)} pages` : '';
  const iotlb = c.iotlbEntries !== null ? `${formatCount(c.iotlbEntries)} IOTLB entries` : 'default IOTLB';
  return (
    `iommulab-bench: ${name}, ${c.instances} instance${c.instances === 1 ? '' : 's'} (${c.mode}, ${c.runner} runner), ` +
    `${formatBytes(c.mapBytes)} mapped each${pages}, ${iotlb}, ` +
    `${formatCount(c.translationsPerPattern)} translations per pattern, ${formatMs(report.durationMs)}`
  );
}

/**
 * The full text report: summary line, translation table, pattern table, map/invalidation table,
 * the backend-detail table (when reported) and the page-fault table (when the phase ran).
 */
export function formatReport(report: BenchReport, opts: TableOptions = {}): string {
  const title = (s: string): string => (opts.color === true ? pc.cyan(s) : s);
  const lines = [
    summaryLine(report),
    '',
    title('Translations per instance'),
    translationTable(report, opts),
    '',
    title('Per pattern (all instances)'),
    patternTable(report, opts),
    '',
    title('Map and invalidation'),
    mapTable(report, opts),
    '',
  ];
  const detail = detailTable(report, opts);
  if (detail !== null) lines.push(title(`Caches, walks, commands and events (${report.config.backend.id}, all instances)`), detail, '');
  const faults = pageFaultTable(report, opts);
  if (faults !== null) {
    lines.push(title('Page faults (PRI round trips through IopfQueue + FaultQueue, one instance at a time)'), faults, '');
  }
  return lines.join('\n');
}
