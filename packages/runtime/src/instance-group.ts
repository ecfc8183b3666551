/**
 * InstanceGroup: a named set of running instances (e.g. every IOMMU of a benchmark), looked up by
 * id and shut down together.
 */
import { InstanceError, RuntimeError } from './errors.js';
import type { InstanceHost } from './instance-host.js';

/** A set of {@link InstanceHost}s keyed by id. */
export class InstanceGroup {
  readonly #hosts = new Map<string, InstanceHost>();

  /**
   * Add a running instance.
   * @param host - the instance
   * @returns `host`
   * @throws RuntimeError `BAD_ARGUMENT` if an instance with the same id is already in the group
   */
  add(host: InstanceHost): InstanceHost {
    if (this.#hosts.has(host.id)) {
      throw new InstanceError('BAD_ARGUMENT', host.id, `instance "${host.id}" is already in this group`);
    }
    this.#hosts.set(host.id, host);
    return host;
  }

  /**
   * The instance with this id.
   * @throws RuntimeError `UNKNOWN_INSTANCE` naming the id (and the known ids)
   */
  get(id: string): InstanceHost {
    const h = this.#hosts.get(id);
    if (h === undefined) {
      const known = [...this.#hosts.keys()].map((k) => `"${k}"`).join(', ');
      throw new InstanceError('UNKNOWN_INSTANCE', String(id), `unknown instance "${String(id)}" (known: ${known || 'none'})`);
    }
    return h;
  }

  /** Whether an instance with this id is in the group. */
  has(id: string): boolean {
    return this.#hosts.has(id);
  }

  /** Ids of the instances, in insertion order. */
  ids(): string[] {
    return [...this.#hosts.keys()];
  }

  /** Number of instances. */
  get size(): number {
    return this.#hosts.size;
  }

  /**
   * Shut every instance down (in parallel) and empty the group. Waits for all of them; if some
   * failed to shut down cleanly, rejects afterwards with the first error.
   */
  async shutdownAll(): Promise<void> {
    const hosts = [...this.#hosts.values()];
    this.#hosts.clear();
    const results = await Promise.allSettled(hosts.map((h) => h.shutdown()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      throw failed.reason instanceof Error
        ? failed.reason
        : new RuntimeError('WORKER_ERROR', `shutdownAll: ${String(failed.reason)}`);
    }
  }
}
