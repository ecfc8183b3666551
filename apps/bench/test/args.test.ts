import { describe, expect, it } from 'vitest';
import {
  ArgsError,
  DEFAULT_BACKENDS,
  DEFAULT_FAULT_BATCH,
  DEFAULT_FAULTS,
  DEFAULT_PORT_BATCH,
  DEFAULT_PORT_TRANSLATIONS,
  DEFAULT_TRANSLATIONS,
  parseArgs,
  parseBackends,
  parseBytes,
  parseCount,
  parsePageSize,
  parsePatterns,
  resolvePageSize,
  SHORT_PRESET,
  USAGE,
  faultBatchesFor,
  type BenchConfig,
} from '../src/args.js';

function config(argv: string[], instances = 2): BenchConfig {
  const r = parseArgs(argv, { instances });
  if (r.kind !== 'run') throw new Error('expected a run config');
  return r.config;
}

function error(argv: string[]): ArgsError {
  try {
    parseArgs(argv, { instances: 2 });
  } catch (e) {
    if (e instanceof ArgsError) return e;
    throw e;
  }
  throw new Error(`no error for ${argv.join(' ')}`);
}

describe('parseArgs', () => {
  it('gives the defaults with no arguments', () => {
    expect(config([], 6)).toEqual({
      backend: 'mock',
      backends: ['mock', 'smmuv3'],
      instances: 6,
      patterns: ['sequential', 'random', 'strided'],
      translations: DEFAULT_TRANSLATIONS,
      mapBytes: 32 * 1024 * 1024,
      pageSize: 'smallest',
      iotlbEntries: null,
      seqStep: 256,
      mode: 'worker',
      runner: 'host',
      short: false,
      portTranslations: DEFAULT_PORT_TRANSLATIONS,
      portBatch: DEFAULT_PORT_BATCH,
      faults: 2000,
      faultBatch: 256,
      faultBatches: 64,
      faultTimeLimited: true,
      jsonFile: null,
    });
  });

  it('parses every option, in both --opt value and --opt=value forms', () => {
    expect(
      config([
        '--backend',
        'smmuv3',
        '--instances=3',
        '--patterns',
        'strided,seq',
        '--translations',
        '2_500_000',
        '--map-mb=64',
        '--page-size',
        '1m',
        '--iotlb-entries=65536',
        '--seq-step',
        '512',
        '--mode',
        'in-thread',
        '--faults=5k',
        '--json',
        'out.json',
      ]),
    ).toEqual({
      backend: 'smmuv3',
      backends: ['smmuv3'],
      instances: 3,
      patterns: ['strided', 'sequential'],
      translations: 2_500_000,
      mapBytes: 64 * 1024 * 1024,
      pageSize: 1024 * 1024,
      iotlbEntries: 65_536,
      seqStep: 512,
      mode: 'in-thread',
      runner: 'host',
      short: false,
      portTranslations: DEFAULT_PORT_TRANSLATIONS,
      portBatch: DEFAULT_PORT_BATCH,
      faults: 5000,
      faultBatch: 256,
      faultBatches: 64,
      faultTimeLimited: false,
      jsonFile: 'out.json',
    });
  });

  it('parses --page-size, --iotlb-entries and --seq-step values exactly', () => {
    const ps = (v: string) => config(['--page-size', v]).pageSize;
    expect([ps('smallest'), ps('largest'), ps('LARGEST'), ps('2048'), ps('2k'), ps('2KiB'), ps('1m'), ps('1MB')]).toEqual([
      'smallest',
      'largest',
      'largest',
      2048,
      2048,
      2048,
      1024 * 1024,
      1024 * 1024,
    ]);
    const ie = (v: string) => config(['--iotlb-entries', v]).iotlbEntries;
    expect([ie('1'), ie('4096'), ie('65536'), ie('64k'), ie('1m'), ie('1_048_576')]).toEqual([
      1,
      4096,
      65_536,
      65_536,
      1_048_576,
      1_048_576,
    ]);
    const st = (...v: string[]) => config(['--seq-step', ...v]).seqStep;
    expect([st('1'), st('256'), st('2k'), st('32m')]).toEqual([1, 256, 2048, 32 * 1024 * 1024]);
    expect(config(['--map-mb', '1', '--seq-step', '1m']).seqStep).toBe(1024 * 1024);
    // --short keeps these defaults
    const s = config(['--short']);
    expect([s.pageSize, s.iotlbEntries, s.seqStep]).toEqual(['smallest', null, 256]);
  });

  it('runs the mock and the SMMUv3 by default, and any comma list of backends in order', () => {
    expect(DEFAULT_BACKENDS).toEqual(['mock', 'smmuv3']);
    expect(config(['--short']).backends).toEqual(['mock', 'smmuv3']);
    const c = config(['--backend', 'smmuv3, mock']);
    expect([c.backend, c.backends]).toEqual(['smmuv3', ['smmuv3', 'mock']]);
    expect(config(['--backend=./my-backend.js']).backends).toEqual(['./my-backend.js']);
    expect(parseBackends('a,b,c')).toEqual(['a', 'b', 'c']);
  });

  it('uses the default JSON file for a bare --json, also before another option', () => {
    expect(config(['--json']).jsonFile).toBe('bench-result.json');
    expect(config(['--json', '--short']).jsonFile).toBe('bench-result.json');
    expect(config(['--json=r.json']).jsonFile).toBe('r.json');
  });

  it('applies the --short preset and lets explicit options override it in any order', () => {
    const s = config(['--short'], 8);
    expect(s.short).toBe(true);
    expect(s.instances).toBe(SHORT_PRESET.instances);
    expect(s.translations).toBe(SHORT_PRESET.translations);
    expect(s.mapBytes).toBe(SHORT_PRESET.mapMb * 1024 * 1024);
    expect(s.portTranslations).toBe(SHORT_PRESET.portTranslations);
    const o = config(['--instances', '1', '--short', '--translations', '1k']);
    expect([o.instances, o.translations, o.mapBytes]).toEqual([1, 1000, SHORT_PRESET.mapMb * 1024 * 1024]);
  });

  it('parses --faults: round trips one at a time, about as many again in batches of 256 (at least 64: one pause must not decide the figure), 0 disables', () => {
    expect([DEFAULT_FAULTS, DEFAULT_FAULT_BATCH, SHORT_PRESET.faults]).toEqual([2000, 256, 200]);
    const f = (...argv: string[]) => {
      const c = config(argv);
      return [c.faults, c.faultBatch, c.faultBatches];
    };
    expect(f()).toEqual([2000, 256, 64]);
    expect(f('--short')).toEqual([200, 256, 64]);
    expect(f('--faults', '0')).toEqual([0, 256, 0]);
    expect(f('--short', '--faults', '0')).toEqual([0, 256, 0]);
    expect(f('--faults', '1')).toEqual([1, 256, 64]);
    expect(f('--faults', '10k', '--short')).toEqual([10_000, 256, 64]);
    expect(f('--faults', '20k')).toEqual([20_000, 256, 79]);
    expect(f('--faults=1_000_000')).toEqual([1_000_000, 256, 3907]);
    expect([faultBatchesFor(0), faultBatchesFor(1280), faultBatchesFor(25_600), faultBatchesFor(25_601), faultBatchesFor(12_800, 128)]).toEqual([0, 64, 100, 101, 100]);
    // Only the default counts may stop at the time limits; an explicit --faults runs in full.
    expect([config([]).faultTimeLimited, config(['--short']).faultTimeLimited]).toEqual([true, true]);
    expect([config(['--faults', '2000']).faultTimeLimited, config(['--short', '--faults=0']).faultTimeLimited]).toEqual([false, false]);
    expect(USAGE).toContain('--faults <N>');
    expect(USAGE).toContain('0 disables the page-fault phase');
  });

  it('ignores a literal -- (as pnpm passes it through)', () => {
    expect(config(['--', '--short']).short).toBe(true);
  });

  it('makes --runner pool in-thread', () => {
    const c = config(['--runner', 'pool']);
    expect([c.runner, c.mode]).toEqual(['pool', 'in-thread']);
  });

  it('returns help for -h and --help', () => {
    expect(parseArgs(['--help'])).toEqual({ kind: 'help' });
    expect(parseArgs(['--instances', '2', '-h'])).toEqual({ kind: 'help' });
  });

  it('rejects bad values with exit code 2 and a message naming the option and value', () => {
    const cases: [string[], string][] = [
      [['--instances', '0'], '--instances must be between 1 and 256, got 0'],
      [['--instances', 'two'], "--instances must be a whole number, got 'two'"],
      [['--instances', '1.5'], "--instances must be a whole number, got '1.5'"],
      [['--instances'], '--instances needs a value'],
      [['--translations', '-5'], "--translations must be a whole number, got '-5'"],
      [['--map-mb', '0'], '--map-mb must be between 1 and 2048, got 0'],
      [['--map-mb', '4096'], '--map-mb must be between 1 and 2048, got 4096'],
      [['--mode', 'thread'], "--mode must be worker or in-thread, got 'thread'"],
      [['--runner', 'cluster'], "--runner must be host or pool, got 'cluster'"],
      [['--patterns', 'seq,zigzag'], "--patterns: unknown pattern 'zigzag' (expected seq, random or strided)"],
      [['--patterns', 'seq,sequential'], "--patterns: 'sequential' is listed twice"],
      [['--patterns', 'seq,'], "--patterns must be a comma list of seq, random, strided, got 'seq,'"],
      [['--frobnicate'], "unknown option '--frobnicate' (see --help)"],
      [['extra'], "unexpected argument 'extra' (see --help)"],
      [['--short=yes'], '--short takes no value'],
      [['--instances', '2', '--instances', '3'], '--instances was given more than once'],
      [['--runner', 'pool', '--mode', 'worker'], '--runner pool builds each instance in-thread inside its pool thread; drop --mode worker'],
      [['--instances', '200', '--map-mb', '1024'], '--instances 200 x --map-mb 1024 = 204800 MiB of shared PhysMem; the limit is 3072 MiB'],
      [['--page-size', 'huge'], "--page-size must be a byte size (e.g. 2048, 2k, 1m), smallest or largest, got 'huge'"],
      [['--page-size', '0'], "--page-size must be a byte size (e.g. 2048, 2k, 1m), smallest or largest, got '0'"],
      [['--page-size', '1.5k'], "--page-size must be a byte size (e.g. 2048, 2k, 1m), smallest or largest, got '1.5k'"],
      [['--page-size'], '--page-size needs a value'],
      [['--iotlb-entries', '1000'], "--iotlb-entries must be a power of two between 1 and 1,048,576, got '1000'"],
      [['--iotlb-entries', '0'], "--iotlb-entries must be a power of two between 1 and 1,048,576, got '0'"],
      [['--iotlb-entries', '2m'], "--iotlb-entries must be a power of two between 1 and 1,048,576, got '2m'"],
      [['--iotlb-entries', 'lots'], "--iotlb-entries must be a power of two between 1 and 1,048,576, got 'lots'"],
      [['--seq-step', '0'], '--seq-step must be between 1 and the mapped 33,554,432 bytes, got 0'],
      [['--seq-step', '-256'], "--seq-step must be a byte size (e.g. 256, 2k), got '-256'"],
      [['--seq-step', 'x'], "--seq-step must be a byte size (e.g. 256, 2k), got 'x'"],
      [['--map-mb', '1', '--seq-step', '2m'], '--seq-step must be between 1 and the mapped 1,048,576 bytes, got 2097152'],
      [['--seq-step', '256', '--seq-step', '512'], '--seq-step was given more than once'],
      [['--backend', 'mock,,smmuv3'], "--backend must be a backend or a comma list of backends, got 'mock,,smmuv3'"],
      [['--backend', 'mock,'], "--backend must be a backend or a comma list of backends, got 'mock,'"],
      [['--backend', 'mock,smmuv3,mock'], "--backend: 'mock' is listed twice"],
      [['--faults', '-1'], "--faults must be a whole number, got '-1'"],
      [['--faults', 'many'], "--faults must be a whole number, got 'many'"],
      [['--faults', '20m'], '--faults must be between 0 and 10000000, got 20000000'],
      [['--faults'], '--faults needs a value'],
      [['--faults', '1', '--faults', '2'], '--faults was given more than once'],
    ];
    for (const [argv, message] of cases) {
      const e = error(argv);
      expect(e.message, argv.join(' ')).toBe(message);
      expect(e.exitCode).toBe(2);
    }
  });
});

describe('parseCount', () => {
  it('accepts separators and k/m/g suffixes', () => {
    expect(parseCount('5000000')).toBe(5_000_000);
    expect(parseCount('5_000_000')).toBe(5_000_000);
    expect(parseCount('200k')).toBe(200_000);
    expect(parseCount('2M')).toBe(2_000_000);
    expect(parseCount('1.5m')).toBe(1_500_000);
    expect(parseCount('1g')).toBe(1_000_000_000);
  });
  it('returns NaN for anything else', () => {
    for (const s of ['', 'x', '1.5', '-1', '1e6', '1__0', '0x10']) expect(parseCount(s), s).toBeNaN();
  });
});

describe('parseBytes', () => {
  it('accepts binary k/m/g suffixes with an optional iB or B', () => {
    expect(['256', '2_048', '2k', '2K', '2KiB', '2kb', '1m', '1MiB', '1g', '512B'].map(parseBytes)).toEqual([
      256,
      2048,
      2048,
      2048,
      2048,
      2048,
      1024 * 1024,
      1024 * 1024,
      1024 ** 3,
      512,
    ]);
  });
  it('returns NaN for anything else', () => {
    for (const s of ['', 'k', '1.5k', '-1', '1e6', '2kk', '0x10', '2 k']) expect(parseBytes(s), s).toBeNaN();
  });
});

describe('page sizes', () => {
  const MOCK = [1024 * 1024, 2048];
  it('parses a choice', () => {
    expect(parsePageSize('Smallest')).toBe('smallest');
    expect(parsePageSize('4k')).toBe(4096);
  });
  it('resolves a choice against the backend page sizes', () => {
    expect(resolvePageSize('smallest', MOCK)).toBe(2048);
    expect(resolvePageSize('largest', MOCK)).toBe(1024 * 1024);
    expect(resolvePageSize(2048, MOCK)).toBe(2048);
    expect(resolvePageSize(1024 * 1024, MOCK)).toBe(1024 * 1024);
  });
  it('resolves largest to the largest page size that fits in the mapping', () => {
    const SMMU = [4096, 2 * 1024 * 1024, 1024 * 1024 * 1024];
    expect(resolvePageSize('largest', SMMU)).toBe(1024 * 1024 * 1024);
    expect(resolvePageSize('largest', SMMU, 'x', 32 * 1024 * 1024)).toBe(2 * 1024 * 1024);
    expect(resolvePageSize('largest', SMMU, 'x', 1024 * 1024 * 1024)).toBe(1024 * 1024 * 1024);
    expect(resolvePageSize('largest', SMMU, 'x', 1024 * 1024)).toBe(4096);
    expect(resolvePageSize('largest', MOCK, 'x', 32 * 1024 * 1024)).toBe(1024 * 1024);
    expect(resolvePageSize('smallest', SMMU, 'x', 1024 * 1024)).toBe(4096);
    expect(resolvePageSize(2 * 1024 * 1024, SMMU, 'x', 2 * 1024 * 1024)).toBe(2 * 1024 * 1024);
  });
  it('refuses a page size larger than the mapping (exit code 2)', () => {
    let err: unknown;
    try {
      resolvePageSize(1024 ** 3, [4096, 2 * 1024 * 1024, 1024 ** 3], 'backend arm-smmuv3', 32 * 1024 * 1024);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ArgsError);
    expect((err as ArgsError).message).toBe(
      '--page-size 1073741824 (1 GiB) is larger than the 32 MiB mapped per instance (--map-mb)',
    );
  });
  it('names the allowed sizes for a size the backend lacks (exit code 2)', () => {
    let err: unknown;
    try {
      resolvePageSize(4096, MOCK, 'backend mock');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ArgsError);
    expect((err as ArgsError).exitCode).toBe(2);
    expect((err as ArgsError).message).toBe(
      '--page-size 4096 (4 KiB) is not a page size of backend mock; allowed: 2048 (2 KiB), 1048576 (1 MiB), smallest, largest',
    );
  });
});

describe('parsePatterns', () => {
  it('maps aliases to WorkloadSpec pattern names, keeping order', () => {
    expect(parsePatterns('random,seq')).toEqual(['random', 'sequential']);
    expect(parsePatterns('sequential,rand,stride')).toEqual(['sequential', 'random', 'strided']);
  });
});
