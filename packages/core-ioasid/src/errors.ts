import { IommuError, type ErrnoName } from '@iommulab/driver-api';

/**
 * The error every iommufd call throws: the errno the kernel's ioctl returns, a message naming the
 * call and the offending value, and, for the ioctls that write outputs even when they fail
 * (IOMMU_IOAS_IOVA_RANGES with EMSGSIZE, IOMMU_HWPT_INVALIDATE's entry_num), those outputs.
 */
export class IommufdError extends IommuError {
  /** Outputs the kernel writes back although the call failed. */
  readonly out?: Readonly<Record<string, unknown>>;

  constructor(errno: ErrnoName, message: string, out?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(errno, message, options);
    this.name = 'IommufdError';
    if (out !== undefined) this.out = out;
  }
}

/** Throws an {@link IommufdError}; for `return fail(...)` / `?? fail(...)` in checks. */
export function fail(errno: ErrnoName, message: string, out?: Record<string, unknown>): never {
  throw new IommufdError(errno, message, out);
}
