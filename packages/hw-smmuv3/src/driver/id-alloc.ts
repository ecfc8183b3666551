/**
 * ASID / VMID allocators (Linux `arm_smmu_asid_xa` with XA_LIMIT(1, 2^asid_bits − 1) and the
 * `vmid_map` IDA over [1, 2^vmid_bits − 1]): the lowest free id, 0 reserved (ASID 0 is never
 * handed out; VMID 0 tags S1-only / bypass STEs).
 */
import { IommuError } from '@iommulab/driver-api';

/** A lowest-free-first id allocator over [1, 2^bits − 1]. */
export class IdAllocator {
  private readonly used = new Set<number>();
  private readonly max: number;

  /** @param bits - id width (8 or 16); @param what - 'ASID' / 'VMID', for messages */
  constructor(bits: number, private readonly what: string) {
    this.max = 2 ** bits - 1;
  }

  /**
   * The lowest free id.
   * @throws IommuError ENOSPC when all are in use
   */
  alloc(): number {
    for (let id = 1; id <= this.max; id++) {
      if (!this.used.has(id)) {
        this.used.add(id);
        return id;
      }
    }
    throw new IommuError('ENOSPC', `all ${this.max} ${this.what}s are in use`);
  }

  /** Releases `id`. */
  free(id: number): void {
    this.used.delete(id);
  }

  /** Ids in use. */
  get inUse(): number {
    return this.used.size;
  }
}
