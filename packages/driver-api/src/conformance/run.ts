import type { InstanceMode } from '@iommulab/runtime';
import type { BackendCapabilities } from '../capabilities.js';
import { openBackend } from '../open-backend.js';
import { conformanceCases, type ConformanceCase } from './cases.js';
import { caseContext } from './context.js';

/** The test functions of the author's runner (vitest, jest, mocha, node:test...). */
export interface ConformanceRunner {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: () => Promise<void>, timeoutMs?: number): void;
}

/** What to prove and how. */
export interface ConformanceOptions {
  /** The backend's module specifier (package name or file URL): loaded in every thread by it. */
  readonly backend: string;
  /**
   * The backend's capabilities, to register only the cases that apply (pass
   * `plugin.capabilities`). Without it every case is registered and inapplicable ones pass as
   * no-ops after checking the probed capabilities.
   */
  readonly capabilities?: BackendCapabilities;
  /** Modes to run in (default both: `in-thread` and `worker`). */
  readonly modes?: readonly InstanceMode[];
  /** Backend options passed to the hardware and driver. */
  readonly options?: Record<string, unknown>;
  /** PhysMem size per case (default 32 MiB). */
  readonly memBytes?: number;
  /** fast-check runs of the property case (default 20). */
  readonly numRuns?: number;
  /** Per-case timeout in ms (default 60000). */
  readonly timeoutMs?: number;
}

/**
 * Runs one conformance case against a freshly opened backend, then closes it. Throws on failure.
 * For runners that do not fit {@link runConformance}.
 */
export async function runConformanceCase(
  c: ConformanceCase,
  options: ConformanceOptions,
  mode: InstanceMode,
): Promise<'passed' | 'not-applicable'> {
  const stack = await openBackend(options.backend, {
    mode,
    memBytes: options.memBytes ?? 32 * 1024 * 1024,
    options: options.options,
    id: `conformance-${mode}`,
  });
  try {
    const ctx = caseContext(stack, mode, options.numRuns ?? 20);
    if (c.needs !== undefined && !c.needs(ctx.caps)) return 'not-applicable';
    await c.run(ctx);
    return 'passed';
  } finally {
    await stack.close();
  }
}

/**
 * Registers the conformance suite with the author's runner:
 *
 * ```ts
 * import { describe, it } from 'vitest';
 * import { runConformance } from '@iommulab/driver-api/conformance';
 * import backend from '../src/index.js';
 * runConformance({ describe, it }, {
 *   backend: new URL('../src/index.ts', import.meta.url).href,
 *   capabilities: backend.capabilities,
 * });
 * ```
 */
export function runConformance(runner: ConformanceRunner, options: ConformanceOptions): void {
  const modes = options.modes ?? (['in-thread', 'worker'] as const);
  const caps = options.capabilities;
  const cases = conformanceCases.filter((c) => caps === undefined || c.needs === undefined || c.needs(caps));
  runner.describe(`iommulab backend conformance (${options.backend})`, () => {
    for (const mode of modes) {
      runner.describe(mode, () => {
        for (const c of cases) {
          runner.it(
            c.name,
            async () => {
              await runConformanceCase(c, options, mode);
            },
            options.timeoutMs ?? 60_000,
          );
        }
      });
    }
  });
}
