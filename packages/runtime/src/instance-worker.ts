/**
 * Entry of an instance worker (a plain `node:worker_threads` Worker started by
 * {@link InstanceHost}). It loads the backend by module specifier, builds the hardware model,
 * exposes the control API with comlink on its dedicated MessagePort, and runs the service loop:
 * register doorbell → `hw.service()`, device-port request ring → `hw.translate` (or `atsTranslate`,
 * `pageRequest`) → completion ring, never parking more than {@link PARK_MS} ms without returning to
 * the event loop.
 *
 * Importing this module outside an instance worker does nothing.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { createControlApi, toWireError } from './control-api.js';
import type { WireError, WorkerControlApi } from './control-api.js';
import { DevicePortServer } from './device-port.js';
import { RuntimeError } from './errors.js';
import type { DevicePortHandles, InstanceCounters } from './device-port.js';
import { DEFAULT_REGISTER_FILE_BYTES, checkHostedHardware, loadHostedBackend } from './hosted.js';
import type { HostedHardware } from './hosted.js';
import { PhysMem } from './phys-mem.js';
import type { PhysMemHandle } from './phys-mem.js';
import { RegisterFile } from './register-file.js';
import type { RegisterFileHandle } from './register-file.js';

/** Marker in {@link InstanceWorkerData.kind}. */
export const INSTANCE_WORKER_KIND = 'iommulab-instance';

/** Longest single `Atomics.wait` of the service loop, in ms (then it yields to the event loop). */
export const PARK_MS = 5;
/** Idle checks of the doorbell / rings before the service loop parks. */
export const SPIN_ITERATIONS = 2000;
/** While busy, the service loop still yields to the event loop at least this often (ms). */
const BUSY_YIELD_MS = 5;

/** What the host passes to an instance worker in `workerData` (plain data + one transferred port). */
export interface InstanceWorkerData {
  /** Always {@link INSTANCE_WORKER_KIND}. */
  readonly kind: typeof INSTANCE_WORKER_KIND;
  /** Bootstrap: file URL of `tsx/esm/api`, registered before importing `entry` (source runs only). */
  readonly tsx?: string;
  /** Bootstrap: file URL of this module. */
  readonly entry: string;
  /** Instance id. */
  readonly instanceId: string;
  /** Backend module specifier. */
  readonly backend: string;
  /** Accepted backend API versions (unchecked when absent). */
  readonly acceptApiVersions?: readonly number[];
  /** Shared host memory. */
  readonly mem: PhysMemHandle;
  /** Register file made by the host; when absent the worker makes one of `registerFileBytes` or the backend's size. */
  readonly regs?: RegisterFileHandle;
  /** Register file size when the worker makes it. */
  readonly registerFileBytes?: number;
  /** Device-port rings. */
  readonly port: DevicePortHandles;
  /** The control-plane port (transferred). */
  readonly control: MessagePort;
  /** Backend options. */
  readonly options: Readonly<Record<string, unknown>>;
}

/** First message the worker posts on `parentPort`. */
export type InstanceWorkerHello =
  | { readonly type: 'ready'; readonly backendId: string; readonly apiVersion: number; readonly regs: RegisterFileHandle }
  | { readonly type: 'failed'; readonly error: WireError };

/** Whether `wd` is an {@link InstanceWorkerData}. */
export function isInstanceWorkerData(wd: unknown): wd is InstanceWorkerData {
  return typeof wd === 'object' && wd !== null && (wd as { kind?: unknown }).kind === INSTANCE_WORKER_KIND;
}

function yieldToEventLoop(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

/** Wrap every method so anything thrown crosses comlink as a {@link WireError} (keeps the code). */
function guard(api: WorkerControlApi): WorkerControlApi {
  const wrap =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      try {
        return await fn(...a);
      } catch (err) {
        throw toWireError(err);
      }
    };
  return {
    reset: wrap(api.reset),
    stats: wrap(api.stats),
    runWorkload: wrap(api.runWorkload),
    ping: wrap(api.ping),
    shutdown: wrap(api.shutdown),
  };
}

/**
 * Run an instance in this worker thread (called automatically when this module is the entry of
 * an instance worker). Resolves when the instance is shut down; a model that throws inside
 * `service()` or `translate()` rejects it (and kills the worker, which the host reports).
 *
 * @param wd - the worker data the host passed
 */
export async function runInstanceWorker(wd: InstanceWorkerData): Promise<void> {
  const post = (m: InstanceWorkerHello): void => parentPort?.postMessage(m);
  let hw: HostedHardware;
  let regs: RegisterFile;
  let backendId: string;
  let apiVersion: number;
  try {
    const backend = await loadHostedBackend(wd.backend, wd.acceptApiVersions);
    backendId = backend.id;
    apiVersion = backend.apiVersion;
    const mem = PhysMem.attach(wd.mem);
    regs =
      wd.regs !== undefined
        ? RegisterFile.attach(wd.regs)
        : RegisterFile.create(wd.registerFileBytes ?? backend.registerFileBytes ?? DEFAULT_REGISTER_FILE_BYTES);
    let made: HostedHardware;
    try {
      made = await backend.createHardware({ instanceId: wd.instanceId, mem, regs, options: wd.options });
    } catch (err) {
      if (err instanceof RuntimeError) throw err;
      throw new RuntimeError('BAD_BACKEND', `backend "${wd.backend}" createHardware failed: ${errText(err)}`, {
        cause: err,
      });
    }
    checkHostedHardware(made, wd.backend);
    hw = made;
  } catch (err) {
    post({ type: 'failed', error: toWireError(err) });
    wd.control.close();
    return;
  }

  const counters: InstanceCounters = { serviceCalls: 0, devicePortRequests: 0 };
  const server = new DevicePortServer(hw, wd.port, counters);
  const state = { running: true, workloads: 0 };
  const api = createControlApi(hw, counters, {
    onWorkload: (active) => {
      state.workloads += active ? 1 : -1;
    },
    onShutdown: () => {
      state.running = false;
    },
  });
  Comlink.expose(guard(api), wd.control as unknown as Comlink.Endpoint);
  post({ type: 'ready', backendId, apiVersion, regs: regs.handle });

  try {
    await serviceLoop(hw, regs, server, counters, state);
  } finally {
    // On a model crash too: stop answering control calls before the worker dies.
    wd.control.close();
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The service loop (ARCHITECTURE "Threads and memory", ecosystem.md §2.3): when the register
 * doorbell moved, `hw.service()`; drain the device-port requests; when idle, spin, then park in
 * `Atomics.wait` for at most {@link PARK_MS} ms and yield to the event loop; yield at once when the
 * control counter moved (a control call was posted) and on every turn while a workload runs.
 */
async function serviceLoop(
  hw: HostedHardware,
  regs: RegisterFile,
  server: DevicePortServer,
  counters: InstanceCounters,
  state: { running: boolean; workloads: number },
): Promise<void> {
  // 0, not the current value: writes made before the worker started are serviced once.
  let seenDoorbell = 0;
  let seenControl = regs.control.value;
  let spins = 0;
  let turns = 0;
  let lastYield = performance.now();
  while (state.running) {
    let worked = false;
    const db = regs.doorbell.value;
    if (db !== seenDoorbell) {
      seenDoorbell = db;
      counters.serviceCalls++;
      hw.service();
      worked = true;
    }
    if (server.hasWork() && server.drain() > 0) worked = true;
    const ctl = regs.control.value;
    if (ctl !== seenControl || state.workloads > 0) {
      seenControl = ctl;
      spins = 0;
      await yieldToEventLoop();
      lastYield = performance.now();
      continue;
    }
    if (worked) {
      spins = 0;
      if ((++turns & 255) === 0 && performance.now() - lastYield >= BUSY_YIELD_MS) {
        await yieldToEventLoop();
        lastYield = performance.now();
      }
      continue;
    }
    if (++spins < SPIN_ITERATIONS) continue;
    spins = 0;
    // Woken by a register write (doorbell ring), a device-port request or a control call (the
    // host notifies this word), or after PARK_MS at most.
    regs.doorbell.wait(seenDoorbell, PARK_MS);
    await yieldToEventLoop();
    lastYield = performance.now();
  }
}

const STARTED = Symbol.for('@iommulab/runtime instance-worker started');
const g = globalThis as { [STARTED]?: boolean };
// Guard: a second copy of this module (e.g. the CJS and the ESM build both loaded) must not
// start a second instance in the same worker.
if (!isMainThread && isInstanceWorkerData(workerData) && g[STARTED] !== true) {
  g[STARTED] = true;
  runInstanceWorker(workerData).catch((err: unknown) => {
    // Surface as an uncaught exception before any further event-loop work (no control message
    // is answered after a crash): the worker dies and the host reports WORKER_DIED.
    process.nextTick(() => {
      throw err;
    });
  });
}
