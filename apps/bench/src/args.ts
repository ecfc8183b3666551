/**
 * Command-line parsing and validation for `iommulab-bench`. Pure: takes argv (without `node` and the
 * script) and returns a validated {@link BenchConfig}, a help request, or throws {@link ArgsError}.
 */
import { availableParallelism } from 'node:os';
import { formatBytes, formatCount } from './format.js';

/** A DMA address pattern, as `WorkloadSpec.pattern` names it. */
export type Pattern = 'sequential' | 'random' | 'strided';

/** Every pattern, in the order they run by default. */
export const ALL_PATTERNS: readonly Pattern[] = ['sequential', 'random', 'strided'];

/** Where instances run: in their own worker (default) or on the calling thread. */
export type BenchMode = 'worker' | 'in-thread';

/** How instances are driven: InstanceHost per instance from the main thread, or one piscina job each. */
export type BenchRunner = 'host' | 'pool';

/**
 * The IO page size the map phase uses: a size in bytes (must be one of the backend's page sizes),
 * or the backend's smallest or largest page size.
 */
export type PageSizeChoice = number | 'smallest' | 'largest';

/** A fully resolved run configuration (plain data: it is recorded in the JSON result). */
export interface BenchConfig {
  /**
   * The backend of this run, as given on the command line (shorthand name or module specifier):
   * the first of {@link BenchConfig.backends} after parsing; the CLI runs each in turn.
   */
  readonly backend: string;
  /** Every backend to run, in order, without duplicates (`--backend a,b`). */
  readonly backends: readonly string[];
  /** Number of IOMMU instances. */
  readonly instances: number;
  /** Patterns to run, in order, without duplicates. */
  readonly patterns: readonly Pattern[];
  /** Translations per pattern per instance. */
  readonly translations: number;
  /** Bytes of IOVA mapped per instance. */
  readonly mapBytes: number;
  /** IO page size of the map phase (resolved against the backend's page sizes at run time). */
  readonly pageSize: PageSizeChoice;
  /** IOTLB entries passed to the backend as `options.iotlbEntries`, or null for the backend's default. */
  readonly iotlbEntries: number | null;
  /** Bytes between accesses of the sequential pattern. */
  readonly seqStep: number;
  readonly mode: BenchMode;
  readonly runner: BenchRunner;
  /** The CI smoke preset was asked for (`--short`). */
  readonly short: boolean;
  /** Translations per instance in the cross-thread device-port phase. */
  readonly portTranslations: number;
  /** Requests per `translateMany` call in the device-port phase. */
  readonly portBatch: number;
  /**
   * Page-fault round trips per instance with one fault outstanding (`--faults`); 0 disables the
   * page-fault phase.
   */
  readonly faults: number;
  /** Page faults in flight at once in the throughput part of the page-fault phase. */
  readonly faultBatch: number;
  /** Timed batches of {@link BenchConfig.faultBatch} faults (0 when the phase is disabled). */
  readonly faultBatches: number;
  /**
   * The page-fault counts are the defaults (`--faults` not given): each timed part may stop at
   * its time limit (see `fault-phase.ts`), so a loaded machine does not stretch the default run.
   * An explicit `--faults` always runs every round trip and batch.
   */
  readonly faultTimeLimited: boolean;
  /** Where to write the JSON result, or null for none. */
  readonly jsonFile: string | null;
}

/** Result of {@link parseArgs}: a run configuration, or a request for the usage text. */
export type ParsedArgs = { readonly kind: 'run'; readonly config: BenchConfig } | { readonly kind: 'help' };

/** A bad command line. The CLI prints `message` and exits with {@link ArgsError.exitCode}. */
export class ArgsError extends Error {
  /** Process exit code for a usage error. */
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'ArgsError';
  }
}

/**
 * Default translations per pattern per instance: sized so that the default run (both default
 * backends, one after the other) takes about 25 s on 2 cores.
 */
export const DEFAULT_TRANSLATIONS = 20_000_000;
/** Default `--backend`: the mock and the Arm SMMUv3, run one after the other and compared. */
export const DEFAULT_BACKENDS: readonly string[] = ['mock', 'smmuv3'];
/** Default `--page-size`. */
export const DEFAULT_PAGE_SIZE: PageSizeChoice = 'smallest';
/** Default `--seq-step`, bytes: a typical DMA burst (8 accesses per 2 KiB IO page). */
export const DEFAULT_SEQ_STEP = 256;
/** Upper bound of `--iotlb-entries` (the mock IOTLB accepts 1..2^20 entries). */
export const MAX_IOTLB_ENTRIES = 2 ** 20;
/** Default IOVA mapped per instance, in MiB. */
export const DEFAULT_MAP_MB = 32;
/** Default translations per instance in the device-port phase. */
export const DEFAULT_PORT_TRANSLATIONS = 131_072;
/** Requests per `translateMany` batch in the device-port phase. */
export const DEFAULT_PORT_BATCH = 256;
/** Default `--faults`: page-fault round trips per instance with one outstanding. */
export const DEFAULT_FAULTS = 2000;
/** Page faults in flight in the throughput part (distinct PRG indices). */
export const DEFAULT_FAULT_BATCH = 256;
/** Fewest timed batches of the throughput part (one 3–30 ms pause must not decide the figure). */
export const MIN_FAULT_BATCHES = 64;
/** Upper bound of `--faults`. */
export const MAX_FAULTS = 10_000_000;
/** Default JSON file for a bare `--json`. */
export const DEFAULT_JSON_FILE = 'bench-result.json';
/** Upper bound of `--instances`. */
export const MAX_INSTANCES = 256;
/** Upper bound of `--map-mb` (the mock aperture is just under 2 GiB). */
export const MAX_MAP_MB = 2048;
/** Upper bound of `--translations`. */
export const MAX_TRANSLATIONS = 1e12;

/** The `--short` preset: a CI smoke run that finishes in a few seconds. */
export const SHORT_PRESET = {
  instances: 2,
  translations: 200_000,
  mapMb: 4,
  portTranslations: 8_192,
  faults: 200,
} as const;

/**
 * Timed batches of the page-fault throughput part for `faults` round trips: about as many faults
 * again, in batches of `batch`, at least {@link MIN_FAULT_BATCHES}; 0 when the phase is disabled.
 */
export function faultBatchesFor(faults: number, batch: number = DEFAULT_FAULT_BATCH): number {
  return faults === 0 ? 0 : Math.max(MIN_FAULT_BATCHES, Math.ceil(faults / batch));
}

/** Usage text printed by `--help`. */
export const USAGE = `Usage: iommulab-bench [options]

Starts N IOMMU instances of a backend, each in its own worker, maps memory through each, drives
DMA traffic (sequential, random, strided), invalidates a slice, measures the cross-thread device
port and I/O page-fault round trips (PRI), and prints a table per instance and in total. With several backends it runs them one after
the other and ends with a table that compares them.

Options:
  --backend <list>            comma list of backends, run one after the other and compared
                              side by side; each a shorthand (smmuv3 -> @iommulab/hw-smmuv3,
                              then iommulab-backend-smmuv3) or a module specifier / file URL
                              (default: ${DEFAULT_BACKENDS.join(',')})
  --instances <N>             number of instances (default: os.availableParallelism())
  --patterns <list>           comma list of seq,random,strided (default: all three)
  --translations <N>          translations per pattern per instance (default: ${DEFAULT_TRANSLATIONS})
  --map-mb <N>                MiB of IOVA mapped per instance (default: ${DEFAULT_MAP_MB})
  --page-size <size>          IO page size of the map phase: bytes (2048, 2k, 1m) or smallest or
                              largest (the largest that fits in --map-mb); must be one of every
                              backend's page sizes; alignment may still force smaller pages at
                              the edges (default: ${DEFAULT_PAGE_SIZE})
  --iotlb-entries <N>         IOTLB entries, a power of two up to ${MAX_IOTLB_ENTRIES}, passed to the
                              backend as options.iotlbEntries (default: the backend's own)
  --seq-step <bytes>          bytes between sequential accesses (default: ${DEFAULT_SEQ_STEP}); random
                              makes one access per random IO page, strided jumps 17 smallest pages
  --mode <worker|in-thread>   where each instance's hardware runs (default: worker)
  --runner <host|pool>        host: an InstanceHost per instance driven from the main thread;
                              pool: one piscina job per instance (default: host)
  --faults <N>                page-fault round trips per instance with one fault outstanding
                              (latency p50/p90), then about N more in batches of ${DEFAULT_FAULT_BATCH} in
                              flight (faults/s); 0 disables the page-fault phase; a backend
                              without PRI shows n/a (default: ${DEFAULT_FAULTS}; --short: ${SHORT_PRESET.faults};
                              the defaults stop early on a slow machine, about 1 s per
                              instance; an explicit N always runs in full)
  --short                     CI smoke preset: 2 instances, ${SHORT_PRESET.translations} translations, ${SHORT_PRESET.mapMb} MiB,
                              ${SHORT_PRESET.faults} page faults per backend
  --json [file]               write the JSON result (default file: ${DEFAULT_JSON_FILE})
  -h, --help                  show this text

Counts accept _ separators and k/m suffixes (e.g. 2m, 500_000; k = 1000). Byte sizes accept
k/m/g suffixes with an optional iB or B (e.g. 2k = 2KiB = 2048); so does --iotlb-entries (64k = 65536).`;

const PATTERN_ALIASES: Readonly<Record<string, Pattern>> = {
  seq: 'sequential',
  sequential: 'sequential',
  random: 'random',
  rand: 'random',
  strided: 'strided',
  stride: 'strided',
};

/**
 * Parses a count such as `5000000`, `5_000_000`, `5m` or `200k`.
 *
 * @returns the integer, or NaN when the text is not a whole number
 */
export function parseCount(text: string): number {
  const m = /^(\d+(?:_\d+)*(?:\.\d+)?)([kKmMgG]?)$/.exec(text.trim());
  if (m === null) return Number.NaN;
  const base = Number(m[1].replaceAll('_', ''));
  const mult = { '': 1, k: 1e3, m: 1e6, g: 1e9 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  const v = base * mult;
  return Number.isInteger(v) ? v : Number.NaN;
}

/**
 * Parses a byte size such as `2048`, `2_048`, `2k`, `2KiB`, `1m` or `1MB` (binary multiples:
 * k = 1024).
 *
 * @returns the integer, or NaN when the text is not a whole number of bytes
 */
export function parseBytes(text: string): number {
  const m = /^(\d+(?:_\d+)*)(?:([kKmMgG])(?:i?[bB])?|[bB])?$/.exec(text.trim());
  if (m === null) return Number.NaN;
  const base = Number(m[1].replaceAll('_', ''));
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[(m[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g'];
  const v = base * mult;
  return Number.isSafeInteger(v) ? v : Number.NaN;
}

/**
 * Parses a `--page-size` value: `smallest`, `largest` or a positive byte size.
 *
 * @throws ArgsError for anything else
 */
export function parsePageSize(text: string): PageSizeChoice {
  const t = text.trim().toLowerCase();
  if (t === 'smallest' || t === 'largest') return t;
  const v = parseBytes(t);
  if (!Number.isFinite(v) || v <= 0) {
    throw new ArgsError(`--page-size must be a byte size (e.g. 2048, 2k, 1m), smallest or largest, got '${text}'`);
  }
  return v;
}

/**
 * The page size a {@link PageSizeChoice} names among a backend's page sizes.
 *
 * @param choice - `--page-size` as parsed
 * @param pageSizes - the backend's (or domain's) page sizes, any order
 * @param backend - the backend's name, for the message
 * @param mapBytes - bytes mapped per instance, when known: `largest` is then the largest page size
 *   not bigger than the mapping (the SMMUv3's 1 GiB pages do not fit in 32 MiB), and a size bigger
 *   than the mapping is refused
 * @throws ArgsError when `choice` is a size the backend does not have (naming the allowed sizes),
 *   or is bigger than `mapBytes`
 */
export function resolvePageSize(
  choice: PageSizeChoice,
  pageSizes: readonly number[],
  backend = 'the backend',
  mapBytes?: number,
): number {
  const sizes = [...pageSizes].sort((a, b) => a - b);
  if (sizes.length === 0) throw new ArgsError(`${backend} declares no page sizes`);
  if (choice === 'smallest') return sizes[0];
  if (choice === 'largest') {
    const fitting = mapBytes === undefined ? sizes : sizes.filter((s) => s <= mapBytes);
    return fitting.length > 0 ? fitting[fitting.length - 1] : sizes[0];
  }
  if (sizes.includes(choice)) {
    if (mapBytes !== undefined && choice > mapBytes) {
      throw new ArgsError(
        `--page-size ${choice} (${formatBytes(choice)}) is larger than the ${formatBytes(mapBytes)} mapped per instance (--map-mb)`,
      );
    }
    return choice;
  }
  const allowed = sizes.map((s) => `${s} (${formatBytes(s)})`).join(', ');
  throw new ArgsError(
    `--page-size ${choice} (${formatBytes(choice)}) is not a page size of ${backend}; allowed: ${allowed}, smallest, largest`,
  );
}

/**
 * Parses a `--backend` list: comma-separated names or specifiers, in order.
 *
 * @throws ArgsError for an empty entry or a backend listed twice
 */
export function parseBackends(text: string): string[] {
  const names = text.split(',').map((s) => s.trim());
  if (names.some((n) => n.length === 0)) {
    throw new ArgsError(`--backend must be a backend or a comma list of backends, got '${text}'`);
  }
  const out: string[] = [];
  for (const n of names) {
    if (out.includes(n)) throw new ArgsError(`--backend: '${n}' is listed twice`);
    out.push(n);
  }
  return out;
}

function intOption(name: string, text: string, min: number, max: number): number {
  const v = parseCount(text);
  if (!Number.isFinite(v)) throw new ArgsError(`${name} must be a whole number, got '${text}'`);
  if (v < min || v > max) throw new ArgsError(`${name} must be between ${min} and ${max}, got ${v}`);
  return v;
}

/**
 * Parses a `--patterns` list (`seq,random,strided`; aliases `sequential`, `rand`, `stride`).
 *
 * @throws ArgsError for an empty list, an unknown name or a repeated pattern
 */
export function parsePatterns(text: string): Pattern[] {
  const names = text.split(',').map((s) => s.trim().toLowerCase());
  if (names.length === 0 || names.some((n) => n.length === 0)) {
    throw new ArgsError(`--patterns must be a comma list of seq, random, strided, got '${text}'`);
  }
  const out: Pattern[] = [];
  for (const n of names) {
    const p = PATTERN_ALIASES[n];
    if (p === undefined) throw new ArgsError(`--patterns: unknown pattern '${n}' (expected seq, random or strided)`);
    if (out.includes(p)) throw new ArgsError(`--patterns: '${n}' is listed twice`);
    out.push(p);
  }
  return out;
}

interface Raw {
  backend?: string;
  instances?: string;
  patterns?: string;
  translations?: string;
  mapMb?: string;
  pageSize?: string;
  iotlbEntries?: string;
  seqStep?: string;
  mode?: string;
  runner?: string;
  faults?: string;
  short: boolean;
  json?: string;
  help: boolean;
}

const VALUE_OPTIONS: Readonly<Record<string, keyof Raw>> = {
  '--backend': 'backend',
  '--instances': 'instances',
  '--patterns': 'patterns',
  '--translations': 'translations',
  '--map-mb': 'mapMb',
  '--page-size': 'pageSize',
  '--iotlb-entries': 'iotlbEntries',
  '--seq-step': 'seqStep',
  '--mode': 'mode',
  '--runner': 'runner',
  '--faults': 'faults',
};

function tokenize(argv: readonly string[]): Raw {
  const raw: Raw = { short: false, help: false };
  const seen = new Set<string>();
  const once = (name: string): void => {
    if (seen.has(name)) throw new ArgsError(`${name} was given more than once`);
    seen.add(name);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') continue; // `pnpm demo -- --short` passes a literal `--` through
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    if (name === '-h' || name === '--help') {
      raw.help = true;
      continue;
    }
    if (name === '--short') {
      if (inline !== undefined) throw new ArgsError('--short takes no value');
      once(name);
      raw.short = true;
      continue;
    }
    if (name === '--json') {
      once(name);
      if (inline !== undefined) {
        if (inline.length === 0) throw new ArgsError('--json= needs a file name');
        raw.json = inline;
      } else if (i + 1 < argv.length && !argv[i + 1].startsWith('-')) {
        raw.json = argv[++i];
      } else {
        raw.json = DEFAULT_JSON_FILE;
      }
      continue;
    }
    const key = VALUE_OPTIONS[name];
    if (key !== undefined) {
      once(name);
      let value = inline;
      if (value === undefined) {
        if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) throw new ArgsError(`${name} needs a value`);
        value = argv[++i];
      }
      if (value.length === 0) throw new ArgsError(`${name} needs a value`);
      (raw as unknown as Record<string, string>)[key] = value;
      continue;
    }
    if (arg.startsWith('-')) throw new ArgsError(`unknown option '${name}' (see --help)`);
    throw new ArgsError(`unexpected argument '${arg}' (see --help)`);
  }
  return raw;
}

/**
 * Parses and validates the command line. Explicit options override the `--short` preset
 * wherever they appear.
 *
 * @param argv - arguments after the script name
 * @param defaults - environment-dependent defaults (for tests)
 * @returns a validated configuration, or `{ kind: 'help' }`
 * @throws ArgsError naming the bad option and value
 */
export function parseArgs(
  argv: readonly string[],
  defaults: { readonly instances?: number } = {},
): ParsedArgs {
  const raw = tokenize(argv);
  if (raw.help) return { kind: 'help' };
  const short = raw.short;
  const instances =
    raw.instances !== undefined
      ? intOption('--instances', raw.instances, 1, MAX_INSTANCES)
      : short
        ? SHORT_PRESET.instances
        : Math.min(MAX_INSTANCES, Math.max(1, defaults.instances ?? availableParallelism()));
  const translations =
    raw.translations !== undefined
      ? intOption('--translations', raw.translations, 1, MAX_TRANSLATIONS)
      : short
        ? SHORT_PRESET.translations
        : DEFAULT_TRANSLATIONS;
  const mapMb =
    raw.mapMb !== undefined
      ? intOption('--map-mb', raw.mapMb, 1, MAX_MAP_MB)
      : short
        ? SHORT_PRESET.mapMb
        : DEFAULT_MAP_MB;
  const patterns = raw.patterns !== undefined ? parsePatterns(raw.patterns) : [...ALL_PATTERNS];
  const mapBytes = mapMb * 1024 * 1024;
  const pageSize = raw.pageSize !== undefined ? parsePageSize(raw.pageSize) : DEFAULT_PAGE_SIZE;
  let iotlbEntries: number | null = null;
  if (raw.iotlbEntries !== undefined) {
    const v = parseBytes(raw.iotlbEntries);
    if (!Number.isFinite(v) || v < 1 || v > MAX_IOTLB_ENTRIES || (v & (v - 1)) !== 0) {
      throw new ArgsError(
        `--iotlb-entries must be a power of two between 1 and ${formatCount(MAX_IOTLB_ENTRIES)}, got '${raw.iotlbEntries}'`,
      );
    }
    iotlbEntries = v;
  }
  let seqStep = DEFAULT_SEQ_STEP;
  if (raw.seqStep !== undefined) {
    seqStep = parseBytes(raw.seqStep);
    if (!Number.isFinite(seqStep)) {
      throw new ArgsError(`--seq-step must be a byte size (e.g. 256, 2k), got '${raw.seqStep}'`);
    }
    if (seqStep < 1 || seqStep > mapBytes) {
      throw new ArgsError(`--seq-step must be between 1 and the mapped ${formatCount(mapBytes)} bytes, got ${seqStep}`);
    }
  }
  const mode = raw.mode ?? 'worker';
  if (mode !== 'worker' && mode !== 'in-thread') {
    throw new ArgsError(`--mode must be worker or in-thread, got '${mode}'`);
  }
  const runner = raw.runner ?? 'host';
  if (runner !== 'host' && runner !== 'pool') throw new ArgsError(`--runner must be host or pool, got '${runner}'`);
  if (runner === 'pool' && raw.mode !== undefined && mode !== 'in-thread') {
    throw new ArgsError('--runner pool builds each instance in-thread inside its pool thread; drop --mode worker');
  }
  const faults =
    raw.faults !== undefined
      ? intOption('--faults', raw.faults, 0, MAX_FAULTS)
      : short
        ? SHORT_PRESET.faults
        : DEFAULT_FAULTS;
  const backends = raw.backend !== undefined ? parseBackends(raw.backend) : [...DEFAULT_BACKENDS];
  const totalMb = instances * mapMb;
  if (runner === 'host' && totalMb > 3072) {
    throw new ArgsError(
      `--instances ${instances} x --map-mb ${mapMb} = ${totalMb} MiB of shared PhysMem; the limit is 3072 MiB`,
    );
  }
  return {
    kind: 'run',
    config: {
      backend: backends[0],
      backends,
      instances,
      patterns,
      translations,
      mapBytes,
      pageSize,
      iotlbEntries,
      seqStep,
      mode: runner === 'pool' ? 'in-thread' : mode,
      runner,
      short,
      portTranslations: short ? SHORT_PRESET.portTranslations : DEFAULT_PORT_TRANSLATIONS,
      portBatch: DEFAULT_PORT_BATCH,
      faults,
      faultBatch: DEFAULT_FAULT_BATCH,
      faultBatches: faultBatchesFor(faults),
      faultTimeLimited: raw.faults === undefined,
      jsonFile: raw.json ?? null,
    },
  };
}
