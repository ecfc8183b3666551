/**
 * The control plane of an IOMMU instance: reset, stats, workloads, ping (and, internally,
 * shutdown). In worker mode it is exposed with comlink on a dedicated MessageChannel; in-thread
 * the same implementation is called directly.
 */
import { threadId } from 'node:worker_threads';
import type { InstanceCounters } from './device-port.js';
import type { RuntimeErrorCode } from './errors.js';
import { RuntimeError } from './errors.js';
import type { HostedHardware } from './hosted.js';
import { runWorkload } from './workload.js';
import type { WorkloadResult, WorkloadSpec } from './workload.js';

/** Typed control-plane API of one instance. */
export interface ControlApi {
  /** Reset the model (`hw.reset()`) and the instance counters. */
  reset(): Promise<void>;
  /** The model's stats plus `serviceCalls` and `devicePortRequests`. */
  stats(): Promise<Record<string, number>>;
  /** Run a DMA workload next to the model (yields between chunks, so the control plane stays live). */
  runWorkload(spec: WorkloadSpec): Promise<WorkloadResult>;
  /** Round trip; resolves with the `threadId` of the thread that runs the model. */
  ping(): Promise<number>;
}

/** What the instance worker exposes: {@link ControlApi} plus an orderly shutdown. @internal */
export interface WorkerControlApi extends ControlApi {
  /** Stop the service loop and dispose the model; the host terminates the worker afterwards. */
  shutdown(): Promise<void>;
}

/**
 * A thrown value that crosses comlink with its code intact (comlink keeps only name/message/stack
 * of real Errors, so the worker throws this plain object instead). @internal
 */
export interface WireError {
  readonly __iommulabError: true;
  readonly code: RuntimeErrorCode;
  readonly name: string;
  readonly message: string;
}

/** Turn anything thrown into a {@link WireError}. @internal */
export function toWireError(err: unknown): WireError {
  if (err instanceof RuntimeError) {
    return { __iommulabError: true, code: err.code, name: err.name, message: err.message };
  }
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return { __iommulabError: true, code: 'WORKER_ERROR', name: 'Error', message };
}

/** Whether a value is a {@link WireError}. @internal */
export function isWireError(v: unknown): v is WireError {
  return typeof v === 'object' && v !== null && (v as { __iommulabError?: unknown }).__iommulabError === true;
}

/** Hooks of {@link createControlApi}. @internal */
export interface ControlApiHooks {
  /** Called when a workload starts (true) and ends (false), so the service loop does not park meanwhile. */
  onWorkload?(active: boolean): void;
  /** Called by `shutdown()`. */
  onShutdown?(): void;
}

/**
 * Build the control API around a model (used by the worker and by in-thread instances).
 *
 * @param hw - the model
 * @param counters - instance counters reported by `stats()` and cleared by `reset()`
 * @param hooks - workload/shutdown notifications
 */
export function createControlApi(
  hw: HostedHardware,
  counters: InstanceCounters,
  hooks: ControlApiHooks = {},
): WorkerControlApi {
  let disposed = false;
  return {
    async reset(): Promise<void> {
      hw.reset();
      counters.serviceCalls = 0;
      counters.devicePortRequests = 0;
    },
    async stats(): Promise<Record<string, number>> {
      return { ...hw.stats(), serviceCalls: counters.serviceCalls, devicePortRequests: counters.devicePortRequests };
    },
    async runWorkload(spec: WorkloadSpec): Promise<WorkloadResult> {
      hooks.onWorkload?.(true);
      try {
        return await runWorkload(hw, spec);
      } finally {
        hooks.onWorkload?.(false);
      }
    },
    async ping(): Promise<number> {
      return threadId;
    },
    async shutdown(): Promise<void> {
      if (disposed) return;
      disposed = true;
      hooks.onShutdown?.();
      hw.dispose?.();
    },
  };
}
