import { loadHostedBackend, type HardwareContext } from '@iommulab/runtime';
import { API_VERSION, SUPPORTED_API_VERSIONS } from './api-version.js';
import type { BackendCapabilities } from './capabilities.js';
import type { DriverContext, IommuDriver } from './driver.js';
import type { IommuHardware } from './hardware.js';

/**
 * A backend package's descriptor: the default export of its module. The host loads it by module
 * specifier in every thread that needs it (the instance worker builds the hardware, the host
 * thread builds the driver), so it must be a plain module-level value.
 */
export interface BackendPlugin {
  /** The contract version the backend implements (a literal, like AI SDK's specificationVersion). */
  readonly apiVersion: typeof API_VERSION;
  /** Short stable id, e.g. `'mock'`, `'arm-smmuv3'`. */
  readonly id: string;
  /** Human-readable name for reports. */
  readonly displayName?: string;
  /** The backend package's own version. */
  readonly version?: string;
  /** The most the backend's hardware can do (a driver may report less after probing). */
  readonly capabilities: BackendCapabilities;
  /** Size in bytes of the MMIO register block (`RegisterFile`) the hardware needs. */
  readonly registerFileBytes: number;
  /** Builds the hardware model; runs inside the instance worker (or in-thread). */
  createHardware(ctx: HardwareContext): IommuHardware | Promise<IommuHardware>;
  /** Builds and probes the host driver over the same PhysMem and registers. */
  createDriver(ctx: DriverContext): Promise<IommuDriver>;
}

/**
 * Typed identity helper for a backend's default export; checks the descriptor's shape at load
 * time so a broken backend fails when imported, not deep inside a worker.
 */
export function defineBackend<P extends BackendPlugin>(plugin: P): P {
  const missing = backendProblems(plugin);
  if (missing.length > 0) {
    throw new TypeError(`defineBackend(${String((plugin as { id?: unknown }).id)}): ${missing.join('; ')}`);
  }
  return plugin;
}

function backendProblems(p: unknown): string[] {
  const out: string[] = [];
  if (p === null || typeof p !== 'object') return ['descriptor is not an object'];
  const o = p as Record<string, unknown>;
  if (typeof o.id !== 'string' || o.id.length === 0) out.push('id must be a non-empty string');
  if (typeof o.apiVersion !== 'number') out.push('apiVersion must be a number');
  if (typeof o.createHardware !== 'function') out.push('createHardware must be a function');
  if (typeof o.createDriver !== 'function') out.push('createDriver must be a function');
  if (typeof o.registerFileBytes !== 'number' || o.registerFileBytes <= 0 || o.registerFileBytes % 8 !== 0) {
    out.push('registerFileBytes must be a positive multiple of 8');
  }
  const caps = o.capabilities as Record<string, unknown> | undefined;
  if (caps === undefined || typeof caps !== 'object') out.push('capabilities are missing');
  else if (!Array.isArray(caps.pageSizes) || caps.pageSizes.length === 0) out.push('capabilities.pageSizes is empty');
  return out;
}

/**
 * Imports a backend by module specifier (package name resolvable from here, or a file URL) and
 * checks it: shape, and `apiVersion` ∈ {@link SUPPORTED_API_VERSIONS} (the error names both).
 */
export async function loadBackend(specifier: string): Promise<BackendPlugin> {
  const hosted = await loadHostedBackend(specifier, SUPPORTED_API_VERSIONS);
  const problems = backendProblems(hosted);
  if (problems.length > 0) {
    throw new TypeError(`backend ${specifier} is not an iommulab backend: ${problems.join('; ')}`);
  }
  return hosted as unknown as BackendPlugin;
}
