import { describe, expect, it } from 'vitest';
import { formatBytes, formatCount, formatMs, formatPercent, formatSi, formatUs } from '../src/format.js';
import { buildComparison } from '../src/report-json.js';
import {
  comparisonTable,
  detailTable,
  formatComparison,
  formatReport,
  mapTable,
  pageFaultCells,
  pageFaultTable,
  patternTable,
  renderTable,
  summaryLine,
  translationTable,
} from '../src/report-table.js';
import { fixedDetailReport, fixedReport } from './fixture.js';

describe('number formatting', () => {
  it('formats counts with thousands separators', () => {
    expect([0, 999, 1000, 12_345_678, -4096].map(formatCount)).toEqual(['0', '999', '1,000', '12,345,678', '-4,096']);
  });
  it('formats rates with SI suffixes and three significant digits', () => {
    expect([0, 7.5, 999, 1234, 99_949, 999_600, 25_123_456, 1.5e9].map(formatSi)).toEqual([
      '0',
      '7.50',
      '999',
      '1.23 k',
      '99.9 k',
      '1.00 M',
      '25.1 M',
      '1.50 G',
    ]);
  });
  it('formats percentages, times and sizes', () => {
    expect([formatPercent(null), formatPercent(0), formatPercent(0.99995), formatPercent(1)]).toEqual([
      '-',
      '0.00 %',
      '100.00 %',
      '100.00 %',
    ]);
    expect([0.4123, 41.23, 412.3, 1234.5].map(formatMs)).toEqual(['0.41 ms', '41.2 ms', '412 ms', '1.23 s']);
    expect([512, 2048, 1048576, 33554432, 1536].map(formatBytes)).toEqual(['512 B', '2 KiB', '1 MiB', '32 MiB', '1.5 KiB']);
    expect([formatUs(null), formatUs(23.41), formatUs(1234.56)]).toEqual(['-', '23.4 µs', '1234.6 µs']);
  });
});

describe('renderTable', () => {
  it('left-aligns the first column, right-aligns the rest, and rules header and footer', () => {
    expect(renderTable(['name', 'n'], [['a', '1'], ['bbbbb', '22']], ['total', '23'])).toBe(
      ['name    n', '-----  --', 'a       1', 'bbbbb  22', '-----  --', 'total  23'].join('\n'),
    );
  });
});

describe('report tables (fixed numbers)', () => {
  const report = fixedReport();

  it('prints the summary line', () => {
    expect(summaryLine(report)).toBe(
      'iommulab-bench: mock 0.1.0, 2 instances (worker, host runner), 32 MiB mapped each in 2 KiB pages, default IOTLB, 1,000,000 translations per pattern, 1.23 s',
    );
    const big = { ...report, config: { ...report.config, ioPageSize: 1024 * 1024, iotlbEntries: 65_536 } };
    expect(summaryLine(big)).toBe(
      'iommulab-bench: mock 0.1.0, 2 instances (worker, host runner), 32 MiB mapped each in 1 MiB pages, 65,536 IOTLB entries, 1,000,000 translations per pattern, 1.23 s',
    );
  });

  it('prints translations per instance and in total', () => {
    expect(translationTable(report)).toBe(
      [
        'instance  translations  IOTLB hit  IOTLB misses      walks  faults  invals  trans/s  port trans/s',
        '--------  ------------  ---------  ------------  ---------  ------  ------  -------  ------------',
        'mock-0       2,006,144    49.95 %     1,004,096  1,004,096   2,048       3   13.3 M        1.00 M',
        'mock-1       2,006,144    49.95 %     1,004,096  1,004,096   2,048       3   12.1 M         500 k',
        '--------  ------------  ---------  ------------  ---------  ------  ------  -------  ------------',
        'total        4,012,288    49.95 %     2,008,192  2,008,192   4,096       6   22.9 M         667 k',
      ].join('\n'),
    );
  });

  it('prints one row per pattern', () => {
    expect(patternTable(report)).toBe(
      [
        'pattern      step  translations  IOTLB hit  IOTLB misses      walks  faults  trans/s',
        '----------  -----  ------------  ---------  ------------  ---------  ------  -------',
        'sequential  256 B     2,000,000    75.00 %       500,000    500,000       0   40.0 M',
        'random      2 KiB     2,000,000    25.00 %     1,500,000  1,500,000       0   16.0 M',
      ].join('\n'),
    );
  });

  it('prints map and invalidation timings', () => {
    expect(mapTable(report)).toBe(
      [
        'instance  mapped           pages  map time  pages/s  unmap+sync  DMA faulted    remap',
        '--------  ------  --------------  --------  -------  ----------  -----------  -------',
        'mock-0    32 MiB  16,384 x 2 KiB   0.40 ms   41.0 M     0.50 ms  2,048/2,048  0.25 ms',
        'mock-1    32 MiB  16,384 x 2 KiB   0.40 ms   41.0 M     0.50 ms  2,048/2,048  0.25 ms',
        '--------  ------  --------------  --------  -------  ----------  -----------  -------',
        'total     64 MiB          32,768   0.80 ms   41.0 M     1.00 ms  4,096/4,096  0.50 ms',
      ].join('\n'),
    );
  });

  it('adds colour only when asked', () => {
    expect(translationTable(report, { color: false })).not.toContain('\u001b[');
  });
});

describe('backend detail and comparison tables', () => {
  it('prints no detail table when the backend reports no detail counters', () => {
    expect(detailTable(fixedReport())).toBeNull();
    expect(formatReport(fixedReport())).not.toContain('Caches, walks');
  });

  it('prints the hit split, steps per walk, commands, syncs and events per phase', () => {
    const r = fixedDetailReport();
    expect(detailTable(r)).toBe(
      [
        'phase          translations  uTLB hits  main TLB hits  TLB misses      walks  steps/walk  invals  commands  syncs  events',
        '-------------  ------------  ---------  -------------  ----------  ---------  ----------  ------  --------  -----  ------',
        'sequential        2,000,000  1,125,000        375,000     500,000    500,000        4.00       0         0      0       0',
        'random            2,000,000    375,000        125,000   1,500,000  1,500,000        4.00       0         0      0       0',
        'invalidate x2        12,288      3,072          1,024       8,192      8,192        4.00       6        12      4   4,096',
        '-------------  ------------  ---------  -------------  ----------  ---------  ----------  ------  --------  -----  ------',
        'total             4,012,288  1,503,072        501,024   2,008,192  2,008,192        4.00       6        12      4   4,096',
      ].join('\n'),
    );
    expect(formatReport(r)).toContain('Caches, walks, commands and events (arm-smmuv3, all instances)\nphase ');
  });

  it('shows - for a detail counter the backend does not report', () => {
    const r = fixedDetailReport();
    const strip = (c: (typeof r.totals)['counters']) => ({ ...c, detail: { walkSteps: c.detail?.walkSteps } });
    const partial = {
      ...r,
      patterns: r.patterns.map((p) => ({ ...p, counters: strip(p.counters) })),
      totals: { ...r.totals, counters: strip(r.totals.counters) },
      instances: r.instances.map((i) => ({ ...i, invalidation: { ...i.invalidation, counters: strip(i.invalidation.counters) } })),
    };
    expect(detailTable(partial)?.split('\n')[2]).toBe(
      'sequential        2,000,000          -              -     500,000    500,000        4.00       0         -      -       -',
    );
  });

  it('compares backends side by side', () => {
    const smmu = fixedDetailReport();
    const cmp = buildComparison({
      backends: ['mock', 'smmuv3'],
      environment: smmu.environment,
      runs: [fixedReport({ backends: ['mock', 'smmuv3'] }), smmu],
      durationMs: 3580.1,
    });
    expect(comparisonTable(cmp)).toBe(
      [
        'backend     IO page  IOTLB hit      walks  steps/walk  sequential/s  random/s  trans/s  vs first  map pages/s  unmap+sync  cmds/inval  port trans/s  fault p50/p90 µs  faults/s',
        '----------  -------  ---------  ---------  ----------  ------------  --------  -------  --------  -----------  ----------  ----------  ------------  ----------------  --------',
        'mock          2 KiB    49.95 %  2,008,192           -        40.0 M    16.0 M   22.9 M     1.00x       41.0 M     0.50 ms           -         667 k         22.5/32.5     190 k',
        'arm-smmuv3    4 KiB    49.95 %  2,008,192        4.00        20.0 M    8.00 M   11.4 M     0.50x       20.5 M     0.50 ms         6.0         667 k         22.5/32.5     190 k',
      ].join('\n'),
    );
    expect(formatComparison(cmp).split('\n').slice(0, 3)).toEqual([
      'iommulab-bench: 2 backends (mock, arm-smmuv3), 2 instances each (worker, host runner), 32 MiB mapped each, 1,000,000 translations per pattern, 3.58 s',
      '',
      'Backends side by side (totals over all instances)',
    ]);
  });
});

describe('page-fault tables', () => {
  it('prints the round trips, batches in flight and counts per instance, medians in the total row', () => {
    const r = fixedReport();
    expect(pageFaultTable(r)).toBe(
      [
        'instance  round trips      p50      p90      p99  in flight  faults/s  groups  SUCCESS  dropped',
        '--------  -----------  -------  -------  -------  ---------  --------  ------  -------  -------',
        'mock-0          2,000  21.5 µs  30.3 µs  80.5 µs    8 x 256     200 k   4,048    4,048        0',
        'mock-1          2,000  23.5 µs  34.8 µs  99.5 µs    8 x 256     180 k   4,048    4,048        0',
        '--------  -----------  -------  -------  -------  ---------  --------  ------  -------  -------',
        'total           4,000  22.5 µs  32.5 µs  90.0 µs        256     190 k   8,096    8,096        0',
      ].join('\n'),
    );
    expect(formatReport(r)).toContain(
      '\nPage faults (PRI round trips through IopfQueue + FaultQueue, one instance at a time)\ninstance  round trips  ',
    );
  });

  it('shows n/a for a backend without PRI, and nothing when the phase is disabled', () => {
    const na = fixedReport({}, 2048, 'n/a');
    expect(pageFaultTable(na)).toBe(
      [
        'instance  round trips  p50  p90  p99  in flight  faults/s  groups  SUCCESS  dropped',
        '--------  -----------  ---  ---  ---  ---------  --------  ------  -------  -------',
        'mock-0            n/a  n/a  n/a  n/a        n/a       n/a     n/a      n/a      n/a',
        'mock-1            n/a  n/a  n/a  n/a        n/a       n/a     n/a      n/a      n/a',
        '--------  -----------  ---  ---  ---  ---------  --------  ------  -------  -------',
        'total             n/a  n/a  n/a  n/a        n/a       n/a     n/a      n/a      n/a',
      ].join('\n'),
    );
    const off = fixedReport({}, 2048, 'off');
    expect(pageFaultTable(off)).toBeNull();
    expect(formatReport(off)).not.toContain('Page faults');
    expect(pageFaultCells(na.pageFaults)).toEqual(['n/a', 'n/a']);
    expect(pageFaultCells(null)).toEqual(['-', '-']);
  });

  it('marks a failed phase, keeping what was measured', () => {
    const r = fixedReport();
    const [a, b] = r.instances;
    const failed = { ...b, pageFaults: { ...b.pageFaults!, status: 'error' as const, reason: 'timeout', throughput: null } };
    const report = { ...r, instances: [a, failed] };
    expect(pageFaultTable(report)?.split('\n')[3]).toBe(
      'mock-1          2,000  23.5 µs  34.8 µs  99.5 µs      error     error   2,000    2,000  0 (error)',
    );
  });

  it('adds n/a fault columns to the comparison for a backend without PRI, and none when the phase is off', () => {
    const smmu = fixedDetailReport();
    const na = fixedReport({ backends: ['mock', 'smmuv3'] }, 2048, 'n/a');
    const rows = comparisonTable(buildComparison({ backends: ['mock', 'smmuv3'], environment: smmu.environment, runs: [na, smmu], durationMs: 1 })).split('\n');
    expect(rows[0]).toMatch(/  port trans\/s  fault p50\/p90 µs  faults\/s$/);
    expect(rows[2]).toMatch(/         667 k               n\/a       n\/a$/);
    expect(rows[3]).toMatch(/         667 k         22\.5\/32\.5     190 k$/);
    const off = fixedReport({ backends: ['mock', 'smmuv3'] }, 2048, 'off');
    const plain = comparisonTable(buildComparison({ backends: ['mock', 'smmuv3'], environment: off.environment, runs: [off, off], durationMs: 1 }));
    expect(plain.split('\n')[0]).toMatch(/  port trans\/s$/);
  });
});
