/**
 * The benchmark job pool: piscina running stateless jobs, each a pure function from a config to a
 * result record (plain JSON in and out), so many run at once and any runner could shard them.
 * Uses piscina's default `atomics: 'sync'` (fastest for pure CPU tasks): job workers never host a
 * long-lived control plane, so the idle park is harmless here.
 */
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { workerData } from 'node:worker_threads';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { RuntimeError } from './errors.js';
import { resolveTsxEsmApi } from './hosted.js';

/** Options of {@link createJobPool}. */
export interface JobPoolOptions {
  /**
   * Job module (path or file URL). Its default export is `(config) => result | Promise<result>`.
   * A `.ts`/`.mts` module is run through tsx (its loader is added to the workers' execArgv with
   * the `@iommulab/source` condition); tsx must then be resolvable from this package.
   */
  filename: string | URL;
  /** Worker threads; default `max(1, availableParallelism() - 1)` (a core stays with the main thread). */
  maxThreads?: number;
}

/** A pool of job worker threads. */
export interface JobPool<C, R> {
  /** Number of worker threads. */
  readonly threads: number;
  /** Run one job; rejects with the job's error if it throws. */
  run(config: C): Promise<R>;
  /** Run jobs concurrently; results are in `configs` order. Rejects with the first job error. */
  runAll(configs: readonly C[]): Promise<R[]>;
  /** Stop every worker (pending jobs reject). */
  destroy(): Promise<void>;
}

function toPath(filename: string | URL): string {
  if (filename instanceof URL) return fileURLToPath(filename);
  return filename.startsWith('file:') ? fileURLToPath(filename) : filename;
}

/** Marker key in the piscina workers' `workerData` for {@link runTypeScriptJob}. */
const TS_JOB_KEY = 'iommulabTypeScriptJob';

interface TsJobData {
  readonly job: string;
  readonly tsx: string;
}

/**
 * Where piscina loads the job from. A JavaScript job module is loaded directly. A TypeScript job
 * module needs tsx in the pool's workers, and on Node 20 tsx's ESM hooks only take effect in a
 * worker when `register()` is called at run time (`--import tsx` in a worker's execArgv installs
 * only the CommonJS hook, so a job that `import()`s a `.ts` backend would fail). So:
 * - from source (this module is `.ts`): piscina loads this module (through the CommonJS hook of
 *   `--import tsx`) and calls {@link runTypeScriptJob}, which registers tsx's ESM hooks and then
 *   imports the job module;
 * - from dist: `--import tsx` only (CommonJS hook; enough for jobs that import no `.ts` at run time).
 */
function piscinaTarget(filename: string): {
  filename: string;
  name?: string;
  execArgv?: string[];
  workerData?: Record<string, TsJobData>;
} {
  if (!/\.m?ts$/.test(filename)) return { filename };
  const here = import.meta.url;
  const require = createRequire(here);
  let tsxLoader: string;
  try {
    tsxLoader = pathToFileURL(require.resolve('tsx')).href;
  } catch (err) {
    throw new RuntimeError('BAD_ARGUMENT', `job module ${filename} is TypeScript but tsx cannot be resolved`, {
      cause: err,
    });
  }
  const execArgv = ['--import', tsxLoader, '--conditions=@iommulab/source'];
  const self = here.split(/[?#]/, 1)[0];
  if (!self.endsWith('.ts')) return { filename, execArgv };
  const tsxApi = resolveTsxEsmApi(here);
  return {
    filename: fileURLToPath(self),
    name: 'runTypeScriptJob',
    execArgv,
    workerData: { [TS_JOB_KEY]: { job: pathToFileURL(filename).href, tsx: tsxApi } },
  };
}

let tsJob: Promise<(config: unknown) => unknown> | undefined;

/**
 * Piscina handler used when job modules are TypeScript and the runtime runs from source: registers
 * tsx's ESM hooks in this worker (once), imports the job module named in `workerData`, and runs its
 * default export. @internal
 */
export async function runTypeScriptJob(config: unknown): Promise<unknown> {
  tsJob ??= (async () => {
    const wd = (workerData as Record<string, TsJobData | undefined> | null)?.[TS_JOB_KEY];
    if (wd === undefined) throw new RuntimeError('BAD_ARGUMENT', 'runTypeScriptJob: not in a TypeScript job worker');
    ((await import(wd.tsx)) as { register(): unknown }).register();
    const mod = (await import(wd.job)) as { default?: unknown };
    const fn = typeof mod.default === 'function' ? mod.default : undefined;
    if (fn === undefined) throw new RuntimeError('BAD_ARGUMENT', `job module ${wd.job} has no default export function`);
    return fn as (config: unknown) => unknown;
  })();
  return (await tsJob)(config);
}

/**
 * Create a job pool.
 *
 * @param o - job module and thread count
 * @throws RuntimeError `BAD_ARGUMENT` for a bad thread count or filename
 */
export function createJobPool<C, R>(o: JobPoolOptions): JobPool<C, R> {
  const threads = o.maxThreads ?? Math.max(1, availableParallelism() - 1);
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RuntimeError('BAD_ARGUMENT', `job pool maxThreads must be an integer >= 1, got ${String(threads)}`);
  }
  if (!(o.filename instanceof URL) && (typeof o.filename !== 'string' || o.filename.length === 0)) {
    throw new RuntimeError('BAD_ARGUMENT', `job pool filename must be a path or file URL, got ${String(o.filename)}`);
  }
  const filename = toPath(o.filename);
  const pool = new Piscina<C, R>({
    ...piscinaTarget(filename),
    minThreads: threads,
    maxThreads: threads,
  });
  return {
    threads,
    run: (config: C): Promise<R> => pool.run(config),
    runAll: (configs: readonly C[]): Promise<R[]> => Promise.all(configs.map((c) => pool.run(c))),
    destroy: (): Promise<void> => pool.destroy(),
  };
}
