/**
 * The pool job: one benchmark instance as a pure function from a config to a result record. It
 * runs inside a piscina thread, builds its instance in-thread over its own PhysMem, runs every
 * phase (map, patterns, invalidation, port, page faults) and returns a plain JSON {@link InstanceRecord}.
 */
import { openBackend } from '@iommulab/driver-api';
import { PhysMem } from '@iommulab/runtime';
import type { InstanceRecord } from './records.js';
import { runInstance, type InstancePlan } from './run-instance.js';

/** What a job gets (plain JSON). */
export interface JobConfig {
  /** File URL of the backend module (resolved on the main thread). */
  readonly backendUrl: string;
  /** Bytes of the job's own PhysMem. */
  readonly memBytes: number;
  /** Backend options (`openBackend`'s `options`), e.g. `{ iotlbEntries }`. */
  readonly options: Record<string, unknown>;
  readonly plan: InstancePlan;
}

/**
 * Runs one instance in this thread and returns its record; the instance is closed afterwards.
 *
 * @param config - backend URL, memory size and the instance plan
 */
export async function runJob(config: JobConfig): Promise<InstanceRecord> {
  const mem = PhysMem.create(config.memBytes);
  const stack = await openBackend(config.backendUrl, {
    mode: 'in-thread',
    mem,
    id: config.plan.id,
    options: config.options,
  });
  try {
    return await runInstance(stack, config.plan);
  } finally {
    await stack.close();
  }
}

/** piscina calls a job module's default export. */
export default runJob;
