/**
 * Errors raised by @iommulab/runtime.
 *
 * Every error carries a machine-readable {@link RuntimeErrorCode}; messages name the offending
 * value (address, size, instance id, ...). Code that throws one of these leaves the state it was
 * asked to change untouched.
 */

/** The machine-readable reason carried by every {@link RuntimeError}. */
export type RuntimeErrorCode =
  | 'OUT_OF_RANGE'
  | 'MISALIGNED'
  | 'DOUBLE_FREE'
  | 'NO_MEMORY'
  | 'BAD_ARGUMENT'
  | 'RING_OVERRUN'
  | 'TIMEOUT'
  | 'UNKNOWN_INSTANCE'
  | 'WORKER_DIED'
  | 'WORKER_ERROR'
  | 'SHUT_DOWN'
  | 'BAD_BACKEND'
  | 'API_VERSION'
  | 'UNSUPPORTED';

/** An error raised by the runtime: bad input, exhausted resources, timeouts, dead workers. */
export class RuntimeError extends Error {
  /** Why the call failed. */
  readonly code: RuntimeErrorCode;

  /**
   * @param code - machine-readable reason
   * @param message - human-readable text naming the offending value
   * @param options - standard `ErrorOptions` (e.g. `cause`)
   */
  constructor(code: RuntimeErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RuntimeError';
    this.code = code;
  }
}

/** A {@link RuntimeError} about one IOMMU instance (worker death, unknown id, shutdown, ...). */
export class InstanceError extends RuntimeError {
  /** The id of the instance the error is about. */
  readonly instanceId: string;

  /**
   * @param code - machine-readable reason
   * @param instanceId - the instance concerned
   * @param message - human-readable text (should name the instance id)
   * @param options - standard `ErrorOptions` (e.g. `cause`)
   */
  constructor(code: RuntimeErrorCode, instanceId: string, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = 'InstanceError';
    this.instanceId = instanceId;
  }
}

/** Formats a number as `0x…` hex for error messages. @internal */
export function hex(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return v < 0 ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}
