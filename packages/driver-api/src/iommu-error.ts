import { ERRNO, type ErrnoName } from './errno.js';

/**
 * The error every driver call throws for a request it refuses. It carries the errno the Linux
 * iommu core or iommufd would return, so callers (and core-ioasid) can pass it on unchanged.
 *
 * A call that throws an `IommuError` has changed nothing.
 */
export class IommuError extends Error {
  /** The errno name, e.g. `'EINVAL'`. */
  readonly errno: ErrnoName;

  constructor(errno: ErrnoName, message: string, options?: { cause?: unknown }) {
    super(`${errno}: ${message}`, options);
    this.name = 'IommuError';
    this.errno = errno;
  }

  /** The numeric errno (positive), e.g. 22 for `EINVAL`. */
  get errnoValue(): number {
    return ERRNO[this.errno];
  }
}

/** True when `e` is an {@link IommuError}, optionally with the given errno. */
export function isIommuError(e: unknown, errno?: ErrnoName): e is IommuError {
  return e instanceof IommuError && (errno === undefined || e.errno === errno);
}
