/**
 * A file-descriptor table for the binary ABI: the integers carried by uAPI fd fields
 * (`iommu_ioas_map_file.fd`, `iommu_fault_alloc.out_fault_fd`, `iommu_veventq_alloc.out_veventq_fd`)
 * name objects through it. Numbering follows Linux `get_unused_fd_flags()`: the lowest free number,
 * starting at 3 (0-2 are the process's stdio).
 */
import { fail } from '../errors.js';

/** First descriptor handed out (0, 1, 2 are stdin/stdout/stderr). */
export const FIRST_FD = 3;

/** An object that can sit in the table; `close()` (if any) is called when its descriptor is closed. */
export type FdObject = object & { close?: () => unknown };

/** Descriptor number → file object. */
export class FdTable {
  readonly #files = new Map<number, FdObject>();

  /** Installs `obj` at the lowest free descriptor and returns that number (`fd_install`). */
  install(obj: FdObject): number {
    let fd = FIRST_FD;
    while (this.#files.has(fd)) fd++;
    this.#files.set(fd, obj);
    return fd;
  }

  /** The object at `fd` (`fget`); `EBADF` for a negative, non-integer or unused number. */
  get(fd: number): FdObject {
    const obj = Number.isInteger(fd) ? this.#files.get(fd) : undefined;
    if (obj === undefined) fail('EBADF', `fd ${String(fd)} is not open`);
    return obj;
  }

  /** True when `fd` is open. */
  has(fd: number): boolean {
    return this.#files.has(fd);
  }

  /** The descriptor numbers `obj` is installed at (an object may be installed more than once, like dup()). */
  fdsOf(obj: FdObject): number[] {
    return [...this.#files].filter(([, o]) => o === obj).map(([fd]) => fd);
  }

  /**
   * Closes `fd` (`close(2)`): `EBADF` if unused. The object's `close()` runs when its last descriptor
   * in this table goes away.
   */
  close(fd: number): void {
    const obj = this.get(fd);
    this.#files.delete(fd);
    if (this.fdsOf(obj).length === 0) obj.close?.();
  }

  /** Number of open descriptors. */
  get size(): number {
    return this.#files.size;
  }
}
