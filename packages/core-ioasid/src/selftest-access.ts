/**
 * The ACCESS test ops of the iommufd selftest (drivers/iommu/iommufd/selftest.c: struct
 * selftest_access, iommufd_test_create_access / _access_pages / _access_item_destroy /
 * _access_rw / _access_replace_ioas; iommufd_test.h), as methods of {@link AccessTestOps} bound to
 * one IommuFd. The ops act for the IommuFd's current process (`uptr` is one of its addresses).
 *
 * Contracts (op numbers of iommufd_test.h):
 * - CREATE_ACCESS (5) `createAccess(ioasId, flags)`: an ACCESS attached to the IOAS, owned by a new
 *   "access file" installed in the IommuFd's descriptor table; returns its descriptor as
 *   `accessId` (the kernel's `out_access_fd`; the other ops take it as their `id`). Flags other than
 *   `MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES` → EOPNOTSUPP; ENOENT unless an IOAS; EADDRINUSE when a
 *   pinning access cannot raise the IOAS alignment to PAGE_SIZE. `destroyAccess(accessId)` is
 *   close(2) of the descriptor (EBADF if not open): its pins are dropped and the ACCESS destroyed.
 * - ACCESS_PAGES (7) `accessPages(accessId, flags, iova, length, uptr)`: pins through the access
 *   (needs an access created with NEEDS_PIN_PAGES, else EOPNOTSUPP) and checks that the pinned
 *   pages are the pages the process sees at `uptr` (EBADE otherwise; `uptr` 0 skips the check).
 *   Returns `accessPagesId` (0, 1, 2, ... per access). length > 16 MiB → ENOMEM; flags other than
 *   MOCK_FLAGS_ACCESS_WRITE / MOCK_FLAGS_ACCESS_SYZ → EOPNOTSUPP; not an access descriptor → EBADFD.
 * - DESTROY_ACCESS_PAGES (6) `destroyAccessPages(accessId, accessPagesId)`: unpins; ENOENT for an
 *   unknown id, e.g. one an unmap of its IOVA range already unpinned (the access's unmap callback
 *   drops every pin intersecting the unmapped range).
 * - ACCESS_RW (8) `accessRw(accessId, iova, length, uptr, flags)`: copies `length` bytes between the
 *   process at `uptr` and the IOAS at `iova` with the CPU; MOCK_ACCESS_RW_WRITE writes to the IOAS,
 *   MOCK_ACCESS_RW_SLOW_PATH forces the slow path. length > 16 MiB → ENOMEM; other flags →
 *   EOPNOTSUPP; EFAULT for a bad `uptr`; the errors of iommufd_access_rw.
 * - ACCESS_REPLACE_IOAS (11) `accessReplaceIoas(accessId, ioasId)`: moves the access to another IOAS
 *   (its pins are dropped first through its unmap callback).
 * - MOCK_FLAGS_ACCESS_SYZ: `iova` is a syzkaller layout (u32 nth_area | u32 offset << 32) converted
 *   to the IOVA of the access's nth area + offset (0 if there is none).
 */
import {
  accessAttach,
  accessCreateObject,
  accessDestroyObject,
  accessPinPages,
  accessReplaceIoas,
  accessRwData,
  IOMMUFD_ACCESS_RW_SLOW_PATH,
  IOMMUFD_ACCESS_RW_WRITE,
  setAccessCloseCallback,
  unpinPages,
  type IommufdAccess,
} from './access.js';
import { fail, IommufdError } from './errors.js';
import { failpoint } from './fail-nth.js';
import type { IommuFd } from './iommufd.js';
import { hex, PAGE_SIZE, PAGE_SIZE_N, u32, u64, ULONG_MAX } from './uapi/u64.js';

/** IOMMU_TEST_OP_* numbers of the access ops. */
export const IOMMU_TEST_OP_CREATE_ACCESS = 5;
export const IOMMU_TEST_OP_DESTROY_ACCESS_PAGES = 6;
export const IOMMU_TEST_OP_ACCESS_PAGES = 7;
export const IOMMU_TEST_OP_ACCESS_RW = 8;
export const IOMMU_TEST_OP_ACCESS_REPLACE_IOAS = 11;

/** CREATE_ACCESS flag: the access pins pages (`selftest_access_ops_pin`). */
export const MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES = 1 << 0;
/** ACCESS_PAGES flag: pin for writing. */
export const MOCK_FLAGS_ACCESS_WRITE = 1 << 0;
/** ACCESS_PAGES / ACCESS_RW flag: `iova` is a syzkaller layout. */
export const MOCK_FLAGS_ACCESS_SYZ = 1 << 16;
/** ACCESS_RW flag: write to the IOAS (= IOMMUFD_ACCESS_RW_WRITE). */
export const MOCK_ACCESS_RW_WRITE = 1 << 0;
/** ACCESS_RW flag: force the slow path (= __IOMMUFD_ACCESS_RW_SLOW_PATH). */
export const MOCK_ACCESS_RW_SLOW_PATH = 1 << 2;

/** Largest ACCESS_PAGES / ACCESS_RW length (the kernel refuses bigger temporary buffers). */
const MAX_LENGTH = 16n * 1024n * 1024n;

/** One pinned range (`struct selftest_access_item`). */
interface AccessItem {
  readonly iova: bigint;
  readonly length: bigint;
  readonly id: number;
}

/** The access file (`struct selftest_access`): owns one ACCESS and its pinned ranges. */
export class SelftestAccess {
  /** The ACCESS (null once released). */
  access: IommufdAccess | null = null;
  /** Pinned ranges in pin order. */
  readonly items: AccessItem[] = [];
  private nextId = 0;
  private released: Promise<void> | null = null;

  /** Whether the ACCESS pins pages. */
  constructor(readonly needsPinPages: boolean) {}

  /** @internal next `access_pages_id` (u32, wraps). */
  takeId(): number {
    const id = this.nextId;
    this.nextId = (this.nextId + 1) >>> 0;
    return id;
  }

  /** `iommufd_test_access_unmap`: unpins every item intersecting `[iova, iova + length - 1]`. */
  unmap(iova: bigint, length: bigint): void {
    const last = iova + length - 1n;
    for (let i = 0; i < this.items.length; ) {
      const item = this.items[i];
      if (iova > item.iova + item.length - 1n || last < item.iova) {
        i++;
        continue;
      }
      this.items.splice(i, 1);
      unpinPages(this.access!, item.iova, item.length);
    }
  }

  /** close(2) of the last descriptor (`iommufd_test_staccess_release`); see {@link releasing}. */
  close(): Promise<void> {
    if (this.released === null) {
      this.released = (async () => {
        const access = this.access;
        if (access === null) return;
        this.unmap(0n, ULONG_MAX);
        await accessDestroyObject(access);
        this.access = null;
      })();
    }
    return this.released;
  }

  /** The release started by {@link close} (resolved when the ACCESS is gone). */
  get releasing(): Promise<void> {
    return this.released ?? Promise.resolve();
  }
}

/** The ACCESS test ops bound to one IommuFd. */
export class AccessTestOps {
  readonly fd: IommuFd;

  constructor(fd: IommuFd) {
    this.fd = fd;
  }

  /** `iommufd_access_get`: EBADFD unless `accessId` is an open access descriptor. */
  private staccess(accessId: number): SelftestAccess {
    const files = this.fd.files;
    const f = Number.isInteger(accessId) && files.has(accessId) ? files.get(accessId) : null;
    if (!(f instanceof SelftestAccess) || f.access === null) fail('EBADFD', `fd ${String(accessId)} is not a selftest access file`);
    return f;
  }

  private checkOpen(): void {
    if (this.fd.closed) fail('EBADF', 'IOMMU_TEST_CMD: the iommufd is closed');
  }

  /** IOMMU_TEST_OP_CREATE_ACCESS (`iommufd_test_create_access`): returns the access descriptor. */
  async createAccess(ioasId: number, flags: number): Promise<{ accessId: number }> {
    this.checkOpen();
    const f = u32(flags, 'flags');
    if (f & ~MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) fail('EOPNOTSUPP', `CREATE_ACCESS: unknown flags ${hex(f & ~MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES)}`);
    const id = u32(ioasId, 'id');
    const needsPin = (f & MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) !== 0;
    const st = new SelftestAccess(needsPin);
    const access = accessCreateObject(this.fd.ctx, { needsPinPages: needsPin, unmap: (iova, length) => st.unmap(iova, length) });
    try {
      await accessAttach(access, id);
    } catch (e) {
      await accessDestroyObject(access);
      throw e;
    }
    st.access = access;
    const fdno = this.fd.files.install(st);
    // The context closing releases the file like the process exiting would.
    setAccessCloseCallback(access, async () => {
      for (const n of this.fd.files.fdsOf(st)) this.fd.files.close(n);
      await st.releasing;
    });
    return { accessId: fdno };
  }

  /** close(2) of an access descriptor (`test_cmd_destroy_access`): EBADF if it is not open. */
  async destroyAccess(accessId: number): Promise<void> {
    const f = this.fd.files.get(accessId);
    this.fd.files.close(accessId);
    if (f instanceof SelftestAccess) await f.releasing;
  }

  /** IOMMU_TEST_OP_DESTROY_ACCESS_PAGES (`iommufd_test_access_item_destroy`). */
  async destroyAccessPages(accessId: number, accessPagesId: number): Promise<void> {
    const st = this.staccess(accessId);
    const k = st.items.findIndex((it) => it.id === accessPagesId);
    if (k < 0) fail('ENOENT', `DESTROY_ACCESS_PAGES: access ${accessId} has no pages id ${accessPagesId}`);
    const item = st.items[k];
    st.items.splice(k, 1);
    unpinPages(st.access!, item.iova, item.length);
  }

  /** `iommufd_test_syz_conv_iova`: IOVA of the nth area of the access's IOAS + offset (0 if none). */
  private syzConvIova(access: IommufdAccess, iova: bigint): bigint {
    const ioas = access.ioas;
    if (ioas === null) return 0n;
    let nth = Number(iova & 0xffff_ffffn);
    const offset = iova >> 32n;
    for (const area of ioas.iopt.areas) {
      if (nth === 0) return (area.start + offset) & ULONG_MAX;
      nth--;
    }
    return 0n;
  }

  /** IOMMU_TEST_OP_ACCESS_PAGES (`iommufd_test_access_pages`): returns `accessPagesId`. */
  async accessPages(
    accessId: number,
    flags: number,
    iova: bigint | number,
    length: bigint | number,
    uptr: bigint | number,
  ): Promise<{ accessPagesId: number }> {
    const what = 'ACCESS_PAGES';
    let io = u64(iova, 'iova');
    const len = u64(length, 'length');
    const up = u64(uptr, 'uptr');
    const f = u32(flags, 'flags');
    if (len > MAX_LENGTH) fail('ENOMEM', `${what}: length ${hex(len)} is above 16 MiB`);
    if (f & ~(MOCK_FLAGS_ACCESS_WRITE | MOCK_FLAGS_ACCESS_SYZ)) fail('EOPNOTSUPP', `${what}: unknown flags ${hex(f)}`);
    const st = this.staccess(accessId);
    if (!st.needsPinPages) fail('EOPNOTSUPP', `${what}: access ${accessId} was not created with NEEDS_PIN_PAGES`);
    const access = st.access!;
    if (f & MOCK_FLAGS_ACCESS_SYZ) io = this.syzConvIova(access, io);
    const npages = Number((((io + len + PAGE_SIZE_N - 1n) & ~(PAGE_SIZE_N - 1n)) - (io & ~(PAGE_SIZE_N - 1n))) / PAGE_SIZE_N);
    failpoint(this.fd.ctx, 'selftest.access_pages'); // kvcalloc of the pages array
    const pages = accessPinPages(access, io, len, f & MOCK_FLAGS_ACCESS_WRITE ? IOMMUFD_ACCESS_RW_WRITE : 0);
    if (up !== 0n) {
      try {
        this.checkPages(up - (io % PAGE_SIZE_N), pages, npages);
      } catch (e) {
        unpinPages(access, io, len);
        throw e;
      }
    }
    try {
      failpoint(this.fd.ctx, 'selftest.access_item'); // kzalloc of the item
    } catch (e) {
      unpinPages(access, io, len);
      throw e;
    }
    const item: AccessItem = { iova: io, length: len, id: st.takeId() };
    st.items.push(item);
    return { accessPagesId: item.id };
  }

  /** `iommufd_test_check_pages`: page i of `pages` is the page the process has at `uptr + i * PAGE_SIZE`. */
  private checkPages(uptr: bigint, pages: readonly number[], npages: number): void {
    const proc = this.fd.process;
    for (let i = 0; i < npages; i++) {
      const addr = uptr + BigInt(i) * PAGE_SIZE_N;
      let pa: number;
      try {
        if (addr > BigInt(Number.MAX_SAFE_INTEGER)) fail('EFAULT', `${hex(addr)} is not mapped`);
        pa = proc.translate(Number(addr));
      } catch (e) {
        if (e instanceof IommufdError) throw new IommufdError('EFAULT', `ACCESS_PAGES: uptr ${hex(addr)}: ${e.message}`);
        throw e;
      }
      const page = pa - (pa % PAGE_SIZE);
      if (pages[i] !== page) {
        fail('EBADE', `ACCESS_PAGES: page ${i} pinned at ${pages[i] === undefined ? 'nothing' : hex(pages[i])}, the process has ${hex(page)} at ${hex(addr)}`);
      }
    }
  }

  /** IOMMU_TEST_OP_ACCESS_RW (`iommufd_test_access_rw`). */
  async accessRw(accessId: number, iova: bigint | number, length: bigint | number, uptr: bigint | number, flags: number): Promise<void> {
    const what = 'ACCESS_RW';
    let io = u64(iova, 'iova');
    const len = u64(length, 'length');
    const up = u64(uptr, 'uptr');
    const f = u32(flags, 'flags');
    if (len > MAX_LENGTH) fail('ENOMEM', `${what}: length ${hex(len)} is above 16 MiB`);
    if (f & ~(MOCK_ACCESS_RW_WRITE | MOCK_ACCESS_RW_SLOW_PATH | MOCK_FLAGS_ACCESS_SYZ)) fail('EOPNOTSUPP', `${what}: unknown flags ${hex(f)}`);
    const st = this.staccess(accessId);
    const access = st.access!;
    const proc = this.fd.process;
    const n = Number(len);
    let tmp: Uint8Array = new Uint8Array(n);
    const userAddr = (): number => {
      if (up + len > BigInt(Number.MAX_SAFE_INTEGER)) fail('EFAULT', `${what}: uptr ${hex(up)} is not mapped`);
      return Number(up);
    };
    const userCopy = (op: () => void): void => {
      try {
        op();
      } catch (e) {
        if (e instanceof IommufdError) throw new IommufdError('EFAULT', `${what}: uptr ${hex(up)}: ${e.message}`);
        throw e;
      }
    };
    if (f & MOCK_ACCESS_RW_WRITE && n > 0) userCopy(() => (tmp = proc.read(userAddr(), n)));
    if (f & MOCK_FLAGS_ACCESS_SYZ) io = this.syzConvIova(access, io);
    accessRwData(access, io, tmp, f & (IOMMUFD_ACCESS_RW_WRITE | IOMMUFD_ACCESS_RW_SLOW_PATH), proc);
    if (!(f & MOCK_ACCESS_RW_WRITE)) userCopy(() => proc.write(userAddr(), tmp));
  }

  /** IOMMU_TEST_OP_ACCESS_REPLACE_IOAS (`iommufd_test_access_replace_ioas`). */
  async accessReplaceIoas(accessId: number, ioasId: number): Promise<void> {
    const st = this.staccess(accessId);
    await accessReplaceIoas(st.access!, u32(ioasId, 'ioas_id'));
  }
}
