/**
 * How much PhysMem the bench needs: the mapped memory of every instance plus room for alignment
 * and for the backend's own structures (page tables, device tables, queues).
 */
import { mappingAlignment } from './map-plan.js';

const MIB = 1024 * 1024;
/** PhysMem can be at most 2^32 bytes. */
export const MAX_PHYS_MEM_BYTES = 2 ** 32;
/** Per-instance allowance for device tables, queues and top-level tables. */
export const PER_INSTANCE_OVERHEAD = 2 * MIB;
/** Allowance shared by all instances. */
export const SHARED_OVERHEAD = 4 * MIB;

/**
 * PhysMem bytes for `instances` instances that each map `mapBytes`: per instance the mapping,
 * its alignment slack, leaf tables as if every smallest page had an 8-byte PTE, and
 * {@link PER_INSTANCE_OVERHEAD}; plus {@link SHARED_OVERHEAD}; rounded up to a MiB.
 *
 * @param instances - number of instances sharing the memory
 * @param mapBytes - bytes mapped per instance
 * @param pageSizes - the backend's page sizes
 * @throws RangeError when the total exceeds {@link MAX_PHYS_MEM_BYTES}
 */
export function physMemBytes(instances: number, mapBytes: number, pageSizes: readonly number[]): number {
  const minPage = Math.min(...pageSizes);
  const align = mappingAlignment(mapBytes, pageSizes);
  const tables = Math.ceil(mapBytes / minPage) * 8;
  const perInstance = mapBytes + align + tables + PER_INSTANCE_OVERHEAD;
  const total = Math.ceil((instances * perInstance + SHARED_OVERHEAD) / MIB) * MIB;
  if (total > MAX_PHYS_MEM_BYTES) {
    throw new RangeError(
      `${instances} instances x ${mapBytes / MIB} MiB need ${total / MIB} MiB of PhysMem; the maximum is ${MAX_PHYS_MEM_BYTES / MIB} MiB`,
    );
  }
  return total;
}
