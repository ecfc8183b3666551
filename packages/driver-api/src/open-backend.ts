import {
  InstanceHost,
  PhysMem,
  resolveBackendSpecifier,
  type DevicePort,
  type InstanceMode,
} from '@iommulab/runtime';
import { loadBackend, type BackendPlugin } from './backend.js';
import type { IommuDriver } from './driver.js';

/** Options of {@link openBackend}. */
export interface OpenBackendOptions {
  /** Instance name (default: `<backend id>-<n>`). */
  readonly id?: string;
  /** `worker` (default): the hardware runs in its own worker thread; `in-thread`: here. */
  readonly mode?: InstanceMode;
  /** Host RAM to use; by default a new PhysMem of `memBytes`. */
  readonly mem?: PhysMem;
  /** Size of the PhysMem created when `mem` is not given (default 64 MiB). */
  readonly memBytes?: number;
  /** Backend options, passed to both the hardware and the driver. */
  readonly options?: Record<string, unknown>;
  /** Bound for every wait on the hardware and every control call, in ms (default 10000). */
  readonly timeoutMs?: number;
  /**
   * Where a bare package specifier is resolved from: pass your module's `import.meta.url` (or a
   * directory). Default: the working directory, then the runtime's own location.
   */
  readonly resolveFrom?: string | URL;
}

/** A running backend: hardware instance, its probed driver, and the device port. */
export interface BackendStack {
  readonly id: string;
  readonly plugin: BackendPlugin;
  readonly mem: PhysMem;
  readonly host: InstanceHost;
  readonly driver: IommuDriver;
  /** Where devices send DMA: translations run on the hardware instance (in its worker). */
  readonly port: DevicePort;
  /** Shuts the driver down, then the instance. Idempotent. */
  close(): Promise<void>;
}

let stackCounter = 0;

/**
 * Loads a backend by module specifier, starts its hardware (in a worker by default), and creates
 * and probes its driver on this thread: the whole bring-up a host does for one IOMMU.
 */
export async function openBackend(specifier: string, opts: OpenBackendOptions = {}): Promise<BackendStack> {
  specifier = resolveBackendSpecifier(specifier, opts.resolveFrom);
  const plugin = await loadBackend(specifier);
  const id = opts.id ?? `${plugin.id}-${++stackCounter}`;
  const mem = opts.mem ?? PhysMem.create(opts.memBytes ?? 64 * 1024 * 1024);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const options = opts.options ?? {};
  const host = await InstanceHost.start({
    id,
    backend: specifier,
    mode: opts.mode ?? 'worker',
    mem,
    registerFileBytes: plugin.registerFileBytes,
    options,
    acceptApiVersions: [plugin.apiVersion],
    callTimeoutMs: timeoutMs,
  });
  let driver: IommuDriver;
  try {
    driver = await plugin.createDriver({ instanceId: id, mem, regs: host.regs, options, timeoutMs });
  } catch (e) {
    await host.shutdown();
    throw e;
  }
  let closed = false;
  return {
    id,
    plugin,
    mem,
    host,
    driver,
    port: host.port,
    async close() {
      if (closed) return;
      closed = true;
      try {
        await driver.shutdown();
      } finally {
        await host.shutdown();
      }
    },
  };
}
