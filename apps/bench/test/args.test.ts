import { describe, expect, it } from 'vitest';
import {
  ArgsError,
  DEFAULT_PORT_BATCH,
  DEFAULT_PORT_TRANSLATIONS,
  DEFAULT_TRANSLATIONS,
  parseArgs,
  parseCount,
  parsePatterns,
  SHORT_PRESET,
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
      instances: 6,
      patterns: ['sequential', 'random', 'strided'],
      translations: DEFAULT_TRANSLATIONS,
      mapBytes: 32 * 1024 * 1024,
      mode: 'worker',
      runner: 'host',
      short: false,
      portTranslations: DEFAULT_PORT_TRANSLATIONS,
      portBatch: DEFAULT_PORT_BATCH,
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
        '--mode',
        'in-thread',
        '--json',
        'out.json',
      ]),
    ).toEqual({
      backend: 'smmuv3',
      instances: 3,
      patterns: ['strided', 'sequential'],
      translations: 2_500_000,
      mapBytes: 64 * 1024 * 1024,
      mode: 'in-thread',
      runner: 'host',
      short: false,
      portTranslations: DEFAULT_PORT_TRANSLATIONS,
      portBatch: DEFAULT_PORT_BATCH,
      jsonFile: 'out.json',
    });
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

describe('parsePatterns', () => {
  it('maps aliases to WorkloadSpec pattern names, keeping order', () => {
    expect(parsePatterns('random,seq')).toEqual(['random', 'sequential']);
    expect(parsePatterns('sequential,rand,stride')).toEqual(['sequential', 'random', 'strided']);
  });
});
