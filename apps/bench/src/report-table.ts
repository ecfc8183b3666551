/**
 * Text tables of a {@link BenchReport}: translation counters per instance and in total, per
 * pattern, and the map / invalidation timings. Pure functions of the report (exact strings).
 */
import pc from 'picocolors';
import type { BenchReport } from './report-json.js';
import { formatBytes, formatCount, formatMs, formatPercent, formatSi } from './format.js';

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

/** The full text report: summary line, translation table, pattern table, map/invalidation table. */
export function formatReport(report: BenchReport, opts: TableOptions = {}): string {
  const title = (s: string): string => (opts.color === true ? pc.cyan(s) : s);
  return [
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
  ].join('\n');
}
