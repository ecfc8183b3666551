/**
 * InstanceHost: runs one IOMMU hardware instance, either in this thread (deterministic, same code)
 * or in its own `node:worker_threads` Worker. The control plane is a typed comlink API over a
 * dedicated MessageChannel; the data plane is only shared memory (register file + doorbells,
 * device-port rings). Worker death or a hang surfaces as an {@link InstanceError} on every pending
 * call, and nothing waits forever.
 */
import { MessageChannel, Worker } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { createControlApi, isWireError } from './control-api.js';
import type { ControlApi, WorkerControlApi } from './control-api.js';
import { DirectDevicePort, RingDevicePort, createDevicePortRings } from './device-port.js';
import type { DevicePort, InstanceCounters } from './device-port.js';
import { InstanceError, RuntimeError } from './errors.js';
import type { RuntimeErrorCode } from './errors.js';
import { DEFAULT_REGISTER_FILE_BYTES, checkHostedHardware, loadHostedBackend, resolveTsxEsmApi } from './hosted.js';
import type { HostedBackend, HostedHardware } from './hosted.js';
import type { InstanceWorkerData, InstanceWorkerHello } from './instance-worker.js';
import { PhysMem } from './phys-mem.js';
import { RegisterFile } from './register-file.js';
import { resolveBackendSpecifier } from './resolve-specifier.js';
import type { WorkloadResult, WorkloadSpec } from './workload.js';

/** Where an instance runs. */
export type InstanceMode = 'in-thread' | 'worker';

/** Options of {@link InstanceHost.start}. */
export interface InstanceOptions {
  /** Instance id (named in every error about the instance). */
  id: string;
  /**
   * Backend module specifier: a file URL, an absolute path, or a package name. A package name is
   * resolved on this thread from `resolveFrom` (see {@link resolveBackendSpecifier}) so the worker
   * can import it even where it cannot see the user's dependencies.
   */
  backend: string;
  /** Where bare backend specifiers are resolved from: the caller's `import.meta.url` or a directory (default: the working directory). */
  resolveFrom?: string | URL;
  /** Default `'worker'`. */
  mode?: InstanceMode;
  /** Host physical memory (shared with the worker). */
  mem: PhysMem;
  /** Register file size in bytes; default: the backend's `registerFileBytes`, else 64 KiB. */
  registerFileBytes?: number;
  /** Backend options, passed to `createHardware` (structured-cloneable). */
  options?: Record<string, unknown>;
  /** When given, the backend's `apiVersion` must be one of these (`API_VERSION` error otherwise). */
  acceptApiVersions?: readonly number[];
  /** Timeout of every control call and device-port request, ms. Default 10000. */
  callTimeoutMs?: number;
  /** Timeout for the worker to load the backend and report ready, ms. Default 30000. */
  startTimeoutMs?: number;
}

const DEFAULT_CALL_TIMEOUT_MS = 10_000;
const DEFAULT_START_TIMEOUT_MS = 30_000;
const SHUTDOWN_CALL_TIMEOUT_MS = 1_000;

/**
 * Bootstrap of an instance worker (eval'd, CommonJS): register tsx when running from TypeScript
 * source, then import the worker entry. An import failure becomes an uncaught exception (worker
 * `'error'` event).
 */
const BOOTSTRAP = `(async () => {
  const wd = require('node:worker_threads').workerData;
  if (wd.tsx) (await import(wd.tsx)).register();
  await import(wd.entry);
})().catch((e) => { setImmediate(() => { throw e; }); });`;

interface WorkerEntry {
  entry: string;
  tsx: string | undefined;
  execArgv: string[] | undefined;
}

/**
 * Find the worker entry next to this module: `instance-worker.ts` from source (then tsx is
 * registered first and the `@iommulab/source` condition is on), `.js` from dist ESM, `.cjs` from
 * dist CJS.
 */
function workerEntry(): WorkerEntry {
  const here = import.meta.url;
  const path = here.split(/[?#]/, 1)[0];
  if (path.endsWith('.ts') || path.endsWith('.mts')) {
    return {
      entry: new URL('./instance-worker.ts', here).href,
      tsx: resolveTsxEsmApi(here),
      execArgv: ['--conditions=@iommulab/source'],
    };
  }
  const ext = path.endsWith('.cjs') ? '.cjs' : '.js';
  return { entry: new URL(`./instance-worker${ext}`, here).href, tsx: undefined, execArgv: undefined };
}

/** Pending control call, rejectable from outside (death, shutdown). */
interface PendingCall {
  reject(err: Error): void;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * One IOMMU hardware instance, in-thread or in its own worker. Start with {@link InstanceHost.start};
 * always {@link InstanceHost.shutdown} (a worker instance keeps the process alive until then).
 */
export class InstanceHost {
  /** Instance id. */
  readonly id: string;
  /** Where the model runs. */
  readonly mode: InstanceMode;
  /** Host physical memory. */
  readonly mem: PhysMem;
  /** The instance's MMIO register file (the driver writes it from this thread). */
  readonly regs: RegisterFile;
  /** The backend's id. */
  readonly backendId: string;
  /** The backend's API version. */
  readonly apiVersion: number;
  /** Device port: DMA requests from devices. */
  readonly port: DevicePort;
  /** In-thread mode only: the model object itself (for tests); undefined in worker mode. */
  readonly hardware?: HostedHardware;

  readonly #api: ControlApi | Comlink.Remote<WorkerControlApi>;
  readonly #callTimeoutMs: number;
  readonly #pending = new Set<PendingCall>();
  readonly #worker: Worker | undefined;
  readonly #controlPort: MessagePort | undefined;
  readonly #ringPort: RingDevicePort | undefined;
  readonly #wakeWord: Int32Array;
  readonly #inThreadShutdown: (() => void) | undefined;
  #failure: InstanceError | undefined;
  #closing = false;
  /** A control call timed out: skip the orderly shutdown call and terminate at once. */
  #hung = false;
  #shutdownPromise: Promise<void> | undefined;

  private constructor(init: {
    id: string;
    mode: InstanceMode;
    mem: PhysMem;
    regs: RegisterFile;
    backendId: string;
    apiVersion: number;
    callTimeoutMs: number;
    api: ControlApi | Comlink.Remote<WorkerControlApi>;
    port?: DevicePort;
    ringPort?: RingDevicePort;
    hardware?: HostedHardware;
    worker?: Worker;
    controlPort?: MessagePort;
    inThreadShutdown?: () => void;
  }) {
    this.id = init.id;
    this.mode = init.mode;
    this.mem = init.mem;
    this.regs = init.regs;
    this.backendId = init.backendId;
    this.apiVersion = init.apiVersion;
    this.hardware = init.hardware;
    this.#api = init.api;
    this.#callTimeoutMs = init.callTimeoutMs;
    this.#worker = init.worker;
    this.#controlPort = init.controlPort;
    this.#ringPort = init.ringPort;
    this.#inThreadShutdown = init.inThreadShutdown;
    this.#wakeWord = new Int32Array(init.regs.handle.sab, 0, 1); // register-file header word 0: sw→hw doorbell
    this.port = init.ringPort ?? (init.port as DevicePort);
    if (init.worker !== undefined) {
      init.worker.on('error', (err) => this.#die(`uncaught ${errText(err)}`, err));
      init.worker.on('exit', (code) => this.#die(`exited with code ${code}`));
    }
  }

  /**
   * Start an instance: load the backend (in the worker, or here for `'in-thread'`), create the
   * model and, in worker mode, wait for the worker to report ready.
   *
   * @param o - instance options
   * @returns the running instance
   * @throws InstanceError naming the instance: `BAD_BACKEND` (import failed, bad shape,
   *   createHardware threw), `API_VERSION`, `WORKER_ERROR` (worker failed to start),
   *   `WORKER_DIED`, `TIMEOUT` (no ready within startTimeoutMs), `BAD_ARGUMENT`
   */
  static async start(o: InstanceOptions): Promise<InstanceHost> {
    const id = typeof o?.id === 'string' ? o.id : '';
    if (id.length === 0) throw new RuntimeError('BAD_ARGUMENT', `instance id must be a non-empty string, got ${String(o?.id)}`);
    const bad = (what: string): never => {
      throw new InstanceError('BAD_ARGUMENT', id, `instance "${id}": ${what}`);
    };
    if (!(o.mem instanceof PhysMem)) bad('mem must be a PhysMem');
    const mode = o.mode ?? 'worker';
    if (mode !== 'worker' && mode !== 'in-thread') bad(`unknown mode ${String(mode)}`);
    const callTimeoutMs = o.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    if (!(callTimeoutMs > 0)) bad(`callTimeoutMs must be > 0, got ${String(callTimeoutMs)}`);
    const startTimeoutMs = o.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    if (!(startTimeoutMs > 0)) bad(`startTimeoutMs must be > 0, got ${String(startTimeoutMs)}`);
    o = { ...o, backend: resolveBackendSpecifier(o.backend, o.resolveFrom) };
    return mode === 'in-thread' ? InstanceHost.#startInThread(o, id, callTimeoutMs) : InstanceHost.#startWorker(o, id, callTimeoutMs, startTimeoutMs);
  }

  static async #startInThread(o: InstanceOptions, id: string, callTimeoutMs: number): Promise<InstanceHost> {
    const wrap = (err: unknown): InstanceError => {
      if (err instanceof InstanceError) return err;
      const code: RuntimeErrorCode = err instanceof RuntimeError ? err.code : 'BAD_BACKEND';
      return new InstanceError(code, id, `instance "${id}": ${errText(err)}`, { cause: err });
    };
    let backend: HostedBackend;
    try {
      backend = await loadHostedBackend(o.backend, o.acceptApiVersions);
    } catch (err) {
      throw wrap(err);
    }
    const regs = RegisterFile.create(o.registerFileBytes ?? backend.registerFileBytes ?? DEFAULT_REGISTER_FILE_BYTES);
    let hw: HostedHardware;
    try {
      const made: unknown = await backend.createHardware({ instanceId: id, mem: o.mem, regs, options: o.options ?? {} });
      checkHostedHardware(made, o.backend);
      hw = made;
    } catch (err) {
      if (err instanceof RuntimeError) throw wrap(err);
      throw new InstanceError(
        'BAD_BACKEND',
        id,
        `instance "${id}": backend "${o.backend}" createHardware failed: ${errText(err)}`,
        { cause: err },
      );
    }
    const counters: InstanceCounters = { serviceCalls: 0, devicePortRequests: 0 };
    const unsubscribe = regs.onWrite(() => {
      counters.serviceCalls++;
      hw.service();
    });
    const api = createControlApi(hw, counters);
    let host: InstanceHost | undefined;
    const port = new DirectDevicePort(hw, counters, () => {
      if (host !== undefined) host.#throwIfClosed();
    });
    host = new InstanceHost({
      id,
      mode: 'in-thread',
      mem: o.mem,
      regs,
      backendId: backend.id,
      apiVersion: backend.apiVersion,
      callTimeoutMs,
      api,
      port,
      hardware: hw,
      inThreadShutdown: () => {
        unsubscribe();
        void api.shutdown();
      },
    });
    return host;
  }

  static async #startWorker(
    o: InstanceOptions,
    id: string,
    callTimeoutMs: number,
    startTimeoutMs: number,
  ): Promise<InstanceHost> {
    const where = workerEntry();
    const rings = createDevicePortRings();
    const channel = new MessageChannel();
    const hostRegs = o.registerFileBytes !== undefined ? RegisterFile.create(o.registerFileBytes) : undefined;
    const wd: InstanceWorkerData = {
      kind: 'iommulab-instance', // INSTANCE_WORKER_KIND (not imported: the worker entry has side effects)
      tsx: where.tsx,
      entry: where.entry,
      instanceId: id,
      backend: o.backend,
      acceptApiVersions: o.acceptApiVersions,
      mem: o.mem.handle,
      regs: hostRegs?.handle,
      port: { requests: rings.requests.handle, completions: rings.completions.handle },
      control: channel.port2,
      options: o.options ?? {},
    };
    let worker: Worker;
    try {
      worker = new Worker(BOOTSTRAP, {
        eval: true,
        workerData: wd,
        transferList: [channel.port2],
        execArgv: where.execArgv,
        name: `iommulab instance ${id}`,
      });
    } catch (err) {
      channel.port1.close();
      throw new InstanceError('WORKER_ERROR', id, `instance "${id}": cannot start its worker: ${errText(err)}`, {
        cause: err,
      });
    }

    let hello: Extract<InstanceWorkerHello, { type: 'ready' }>;
    try {
      hello = await new Promise((resolve, reject) => {
        const cleanup = (): void => {
          clearTimeout(timer);
          worker.off('message', onMessage);
          worker.off('error', onError);
          worker.off('exit', onExit);
        };
        const onMessage = (m: InstanceWorkerHello): void => {
          cleanup();
          if (m?.type === 'ready') resolve(m);
          else if (m?.type === 'failed' && isWireError(m.error)) {
            reject(new InstanceError(m.error.code, id, `instance "${id}": ${m.error.message}`));
          } else reject(new InstanceError('WORKER_ERROR', id, `instance "${id}": unexpected first message from its worker`));
        };
        const onError = (err: Error): void => {
          cleanup();
          reject(
            new InstanceError('WORKER_ERROR', id, `instance "${id}": worker failed while starting: ${errText(err)}`, {
              cause: err,
            }),
          );
        };
        const onExit = (code: number): void => {
          cleanup();
          reject(new InstanceError('WORKER_DIED', id, `instance "${id}": worker exited with code ${code} while starting`));
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new InstanceError('TIMEOUT', id, `instance "${id}": worker did not report ready within ${startTimeoutMs} ms`));
        }, startTimeoutMs);
        worker.on('message', onMessage);
        worker.on('error', onError);
        worker.on('exit', onExit);
      });
    } catch (err) {
      channel.port1.close();
      await worker.terminate().catch(() => undefined);
      throw err;
    }

    const regs = hostRegs ?? RegisterFile.attach(hello.regs);
    const wakeWord = new Int32Array(regs.handle.sab, 0, 1);
    const ringPort = new RingDevicePort({
      instanceId: id,
      requests: rings.requests,
      completions: rings.completions,
      timeoutMs: callTimeoutMs,
      wake: () => {
        Atomics.notify(wakeWord, 0);
      },
    });
    // Keep the proxy referenced for the instance's whole life (comlink #692).
    const api = Comlink.wrap<WorkerControlApi>(channel.port1 as unknown as Comlink.Endpoint);
    return new InstanceHost({
      id,
      mode: 'worker',
      mem: o.mem,
      regs,
      backendId: hello.backendId,
      apiVersion: hello.apiVersion,
      callTimeoutMs,
      api,
      ringPort,
      worker,
      controlPort: channel.port1,
    });
  }

  /** False once the worker died or the instance was shut down. */
  get alive(): boolean {
    return this.#failure === undefined && !this.#closing;
  }

  /** Reset the model and the instance counters. */
  reset(): Promise<void> {
    return this.#call('reset', (api) => api.reset());
  }

  /** The model's stats plus `serviceCalls` and `devicePortRequests`. */
  stats(): Promise<Record<string, number>> {
    return this.#call('stats', (api) => api.stats());
  }

  /**
   * Run a DMA workload next to the model (in the worker, or in this thread, yielding between
   * chunks). A workload may legitimately run longer than callTimeoutMs, so in worker mode it is
   * not bounded by it; instead the worker's liveness is checked with a ping every callTimeoutMs
   * while it runs, and the call rejects with `TIMEOUT` as soon as a ping goes unanswered.
   */
  runWorkload(spec: WorkloadSpec): Promise<WorkloadResult> {
    return this.#call('runWorkload', (api) => api.runWorkload(spec), Infinity);
  }

  /** Control-plane round trip; resolves with the `threadId` of the thread running the model. */
  ping(): Promise<number> {
    return this.#call('ping', (api) => api.ping());
  }

  /**
   * Stop the instance: ask the worker to stop its loop and dispose the model (bounded wait), then
   * release the comlink proxy, close the control port and terminate the worker. Pending and later
   * calls reject with `SHUT_DOWN` (or the death error if the worker had died). Idempotent.
   */
  shutdown(): Promise<void> {
    this.#shutdownPromise ??= this.#shutdown();
    return this.#shutdownPromise;
  }

  async #shutdown(): Promise<void> {
    if (this.mode === 'in-thread') {
      this.#closing = true;
      this.#failAll(this.#shutDownError());
      this.#inThreadShutdown?.();
      return;
    }
    if (this.#failure === undefined && !this.#hung) {
      try {
        await this.#call('shutdown', (api) => (api as Comlink.Remote<WorkerControlApi>).shutdown(), SHUTDOWN_CALL_TIMEOUT_MS);
      } catch {
        // hung or dead: terminate below
      }
    }
    this.#closing = true;
    this.#failAll(this.#failure ?? this.#shutDownError());
    this.#releaseControl();
    await this.#worker?.terminate().catch(() => undefined);
  }

  #shutDownError(): InstanceError {
    return new InstanceError('SHUT_DOWN', this.id, `instance "${this.id}" is shut down`);
  }

  #throwIfClosed(): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#closing) throw this.#shutDownError();
  }

  #releaseControl(): void {
    const api = this.#api as Comlink.Remote<WorkerControlApi>;
    if (this.mode === 'worker') {
      try {
        api[Comlink.releaseProxy]();
      } catch {
        // already released
      }
      this.#controlPort?.close();
    }
  }

  /** Reject every pending control call and device-port request with `err`; later calls reject at once. */
  #failAll(err: InstanceError): void {
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const p of pending) p.reject(err);
    this.#ringPort?.fail(err);
  }

  #die(cause: string, err?: unknown): void {
    if (this.#closing || this.#failure !== undefined) return;
    this.#failure = new InstanceError('WORKER_DIED', this.id, `instance "${this.id}": worker died (${cause})`, {
      cause: err,
    });
    this.#failAll(this.#failure);
    this.#releaseControl();
  }

  /** Wake a parked worker so it returns to its event loop and runs the control message. */
  #kick(): void {
    this.regs.control.ring();
    Atomics.notify(this.#wakeWord, 0);
  }

  #mapError(what: string, err: unknown): Error {
    if (err instanceof InstanceError) return err;
    if (isWireError(err)) return new InstanceError(err.code, this.id, `instance "${this.id}": ${what}() failed: ${err.message}`);
    if (err instanceof RuntimeError) {
      return new InstanceError(err.code, this.id, `instance "${this.id}": ${what}() failed: ${err.message}`, { cause: err });
    }
    return new InstanceError('WORKER_ERROR', this.id, `instance "${this.id}": ${what}() failed: ${errText(err)}`, {
      cause: err,
    });
  }

  /**
   * Liveness check for an unbounded call: every callTimeoutMs, ping (one at a time); a failed ping
   * fails the call. Returns the interval (cleared with clearInterval).
   */
  #watchdog(what: string, fail: (err: InstanceError) => void): NodeJS.Timeout {
    let probing = false;
    return setInterval(() => {
      if (probing) return;
      probing = true;
      this.#call('ping', (api) => api.ping()).then(
        () => {
          probing = false;
        },
        (err: unknown) => {
          probing = false;
          const code = err instanceof RuntimeError ? err.code : 'WORKER_ERROR';
          fail(
            new InstanceError(code, this.id, `instance "${this.id}": ${what}() abandoned, the worker stopped answering: ${errText(err)}`, {
              cause: err,
            }),
          );
        },
      );
    }, this.#callTimeoutMs);
  }

  #call<T>(what: string, fn: (api: WorkerControlApi) => Promise<T>, timeoutMs = this.#callTimeoutMs): Promise<T> {
    try {
      this.#throwIfClosed();
    } catch (err) {
      return Promise.reject(err);
    }
    const api = this.#api as WorkerControlApi;
    if (this.mode === 'in-thread') {
      let p: Promise<T>;
      try {
        p = fn(api);
      } catch (err) {
        return Promise.reject(this.#mapError(what, err));
      }
      return p.catch((err: unknown) => {
        throw this.#mapError(what, err);
      });
    }
    return new Promise<T>((resolve, reject) => {
      const entry: PendingCall = {
        reject: (err) => {
          clearInterval(timer);
          this.#pending.delete(entry);
          reject(err);
        },
      };
      const timer =
        timeoutMs === Infinity
          ? this.#watchdog(what, (err) => entry.reject(err))
          : setTimeout(() => {
              this.#hung = true;
              entry.reject(
                new InstanceError('TIMEOUT', this.id, `instance "${this.id}": ${what}() got no answer within ${timeoutMs} ms`),
              );
            }, timeoutMs);
      this.#pending.add(entry);
      let p: Promise<T>;
      try {
        p = fn(api);
      } catch (err) {
        entry.reject(this.#mapError(what, err));
        return;
      }
      this.#kick();
      p.then(
        (v) => {
          clearInterval(timer);
          this.#pending.delete(entry);
          resolve(v);
        },
        (err: unknown) => entry.reject(this.#mapError(what, err)),
      );
    });
  }
}
