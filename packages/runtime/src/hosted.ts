/**
 * What {@link InstanceHost} needs from a hardware model, and how a backend module is loaded by
 * module specifier (in the instance worker, or in-thread).
 *
 * driver-api's `IommuHardware` extends {@link HostedHardware}; a backend package's default export
 * (`defineBackend(...)`) satisfies {@link HostedBackend}.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DmaRequest, DmaResult, PageRequestInit } from './dma.js';
import { RuntimeError } from './errors.js';
import type { PhysMem } from './phys-mem.js';
import type { RegisterFile } from './register-file.js';

/**
 * The hardware model as the runtime sees it: a device port, a doorbell handler, reset and stats.
 * The device port may reuse `req` objects across calls: a model must not keep a reference to one.
 */
export interface HostedHardware {
  /** Device port. Writes into `out` and returns it. Must not allocate. */
  translate(req: DmaRequest, out: DmaResult): DmaResult;
  /**
   * Device port, PCIe ATS Translation Request: translate for the device's ATC; a backend without
   * ATS omits it (the device port then rejects with `UNSUPPORTED`). Writes into `out` and returns it.
   */
  atsTranslate?(req: DmaRequest, out: DmaResult): DmaResult;
  /**
   * Device port, PCIe PRI Page Request Message: queue a page request for software. Returns false
   * when the request was dropped. A backend without PRI omits it (the device port then rejects
   * with `UNSUPPORTED`).
   */
  pageRequest?(req: PageRequestInit): boolean;
  /**
   * Process whatever software asked for through registers / queues since the last call
   * (called when the register-file doorbell moved). Returns units of work done.
   */
  service(): number;
  /** Return the model to its power-on state (registers, caches, queues). */
  reset(): void;
  /** Model counters (translations, faults, cache hits, ...). Plain numbers only. */
  stats(): Record<string, number>;
  /** Release resources on shutdown. Optional. */
  dispose?(): void;
}

/** What a backend gets to build its hardware model: the instance id, memory, registers and options. */
export interface HardwareContext {
  /** The id of the instance the model belongs to (for messages and stats). */
  readonly instanceId: string;
  /** Host physical memory, shared by every thread. */
  readonly mem: PhysMem;
  /** The instance's MMIO register file. */
  readonly regs: RegisterFile;
  /** Backend-specific options from {@link InstanceOptions.options} (plain, structured-cloneable data). */
  readonly options: Readonly<Record<string, unknown>>;
}

/** The default export of a backend module, as far as the runtime needs it. */
export interface HostedBackend {
  /** Version of the driver-api contract the backend implements. */
  readonly apiVersion: number;
  /** Short backend id, e.g. `'smmuv3'`. */
  readonly id: string;
  /** Size in bytes of the register file the model wants (multiple of 8); a default is used otherwise. */
  readonly registerFileBytes?: number;
  /** Build one hardware model instance. Called in the thread that runs the instance. */
  createHardware(ctx: HardwareContext): HostedHardware | Promise<HostedHardware>;
}

/**
 * Import a backend module by specifier (package name, path or file URL, resolved by this thread's
 * `import()`), take its default export (or the module namespace itself when that has
 * `createHardware`), and check its shape and API version.
 *
 * @param specifier - module specifier of the backend
 * @param acceptApiVersions - when given, the backend's `apiVersion` must be one of these
 * @returns the backend descriptor
 * @throws RuntimeError `BAD_BACKEND` (naming the specifier and what is missing or why the import
 *   failed) or `API_VERSION` (naming the backend's version and the accepted ones)
 */
export async function loadHostedBackend(
  specifier: string,
  acceptApiVersions?: readonly number[],
): Promise<HostedBackend> {
  if (typeof specifier !== 'string' || specifier.length === 0) {
    throw new RuntimeError('BAD_BACKEND', `backend specifier must be a non-empty string, got ${String(specifier)}`);
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(specifier)) as Record<string, unknown>;
  } catch (err) {
    throw new RuntimeError(
      'BAD_BACKEND',
      `cannot import backend "${specifier}": ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  const candidate = pickBackend(mod);
  const missing: string[] = [];
  if (candidate === undefined) {
    throw new RuntimeError(
      'BAD_BACKEND',
      `backend "${specifier}" has no default export with createHardware (and the module itself has none)`,
    );
  }
  if (typeof candidate.apiVersion !== 'number' || !Number.isInteger(candidate.apiVersion)) {
    missing.push('apiVersion (integer)');
  }
  if (typeof candidate.id !== 'string' || candidate.id.length === 0) missing.push('id (non-empty string)');
  if (typeof candidate.createHardware !== 'function') missing.push('createHardware (function)');
  if (
    candidate.registerFileBytes !== undefined &&
    (typeof candidate.registerFileBytes !== 'number' ||
      !Number.isInteger(candidate.registerFileBytes) ||
      candidate.registerFileBytes <= 0 ||
      candidate.registerFileBytes % 8 !== 0)
  ) {
    missing.push('registerFileBytes (positive multiple of 8, when present)');
  }
  if (missing.length > 0) {
    throw new RuntimeError('BAD_BACKEND', `backend "${specifier}" is missing or has a bad ${missing.join(', ')}`);
  }
  const backend = candidate as unknown as HostedBackend;
  if (acceptApiVersions !== undefined && !acceptApiVersions.includes(backend.apiVersion)) {
    throw new RuntimeError(
      'API_VERSION',
      `backend "${specifier}" (id "${backend.id}") implements apiVersion ${backend.apiVersion}; ` +
        `accepted apiVersion: ${acceptApiVersions.join(', ') || '(none)'}`,
    );
  }
  return backend;
}

function pickBackend(mod: Record<string, unknown>): Record<string, unknown> | undefined {
  const def = mod['default'];
  if (isObject(def) && 'createHardware' in def) return def;
  // A CJS backend imported from ESM: module.exports.default ends up one level deeper.
  if (isObject(def) && isObject(def['default']) && 'createHardware' in def['default']) {
    return def['default'];
  }
  if ('createHardware' in mod) return mod;
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null;
}

/** Register file size (bytes) when neither the instance options nor the backend name one. */
export const DEFAULT_REGISTER_FILE_BYTES = 0x10000;

/**
 * Check that `hw` has the {@link HostedHardware} methods. @internal
 * @throws RuntimeError `BAD_BACKEND` naming the specifier and the missing methods
 */
export function checkHostedHardware(hw: unknown, specifier: string): asserts hw is HostedHardware {
  const missing: string[] = [];
  for (const m of ['translate', 'service', 'reset', 'stats'] as const) {
    if (!isObject(hw) || typeof hw[m] !== 'function') missing.push(m);
  }
  if (missing.length > 0) {
    throw new RuntimeError(
      'BAD_BACKEND',
      `backend "${specifier}" createHardware returned a model without ${missing.join(', ')}`,
    );
  }
}

/**
 * File URL of tsx's ESM register API (`tsx/esm/api`, `import` condition), resolved from `from`. @internal
 * createRequire resolves the `require` condition, whose build registers the loader relative to the
 * wrong directory when imported, so the `import` target is read from tsx's exports map.
 */
export function resolveTsxEsmApi(from: string): string {
  const require = createRequire(from);
  const pkgPath = require.resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as {
    exports?: Record<string, { import?: { default?: string } | string } | string>;
  };
  const entry = pkg.exports?.['./esm/api'];
  const target = typeof entry === 'object' ? (typeof entry.import === 'string' ? entry.import : entry.import?.default) : entry;
  if (typeof target !== 'string') {
    throw new RuntimeError('WORKER_ERROR', `cannot find the "./esm/api" import entry in ${pkgPath}`);
  }
  return pathToFileURL(join(dirname(pkgPath), target)).href;
}
