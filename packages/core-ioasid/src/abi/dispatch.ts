/**
 * The binary ioctl entry point: `iommufd_fops_ioctl()` of drivers/iommu/iommufd/main.c over the
 * typed IommuFd methods. Flow for one call:
 *
 *  1. `nr = cmd & 0xff`; outside `[0x80, IOCTL_TABLE_END)` → the VFIO compatibility handler
 *     (`target.vfioCompatIoctl` if the target has one, else `ENOTTY`; nr 0x7f → `ENOTTY`).
 *  2. `get_user(size, arg)` → `EFAULT` for a null / shorter-than-4-bytes argument.
 *  3. `cmd` must be exactly `_IO(';', nr)` → else `ENOTTY` (the kernel's ENOIOCTLCMD).
 *  4. `size < min_size` → `EINVAL`; `copy_struct_from_user()` → `E2BIG` for a non-zero tail beyond
 *     the kernel struct, zero-fill of a short struct (codec.ts).
 *  5. The op handler below: the ABI-only checks the kernel makes first (`__reserved` → `EOPNOTSUPP`
 *     where the kernel checks it), decode → typed args (camelCase; u64 as bigint, u32 as number) →
 *     `await target[method](args)` → encode outputs into the kernel struct image → write back the
 *     first `min(size, sizeof)` bytes into `arg` (`iommufd_ucmd_respond`) where the kernel does.
 *
 * A typed method the target does not have yet (HWPT, vIOMMU, fault, ... are written by later
 * helpers) answers **`EOPNOTSUPP`** — the ioctl number is known and its struct understood, so it is
 * not ENOTTY; the size checks of steps 2-4 still apply.
 *
 * Outputs are written back only on success, except IOMMU_IOAS_IOVA_RANGES (EMSGSIZE writes
 * num_iovas, out_iova_alignment and the entries that fit) and IOMMU_HWPT_INVALIDATE (entry_num is
 * always written). User pointers are virtual addresses in the calling process
 * (`target.currentProcess`, else `target.process`; user-ptr.ts).
 */
import { IommuError } from '@iommulab/driver-api';
import { IommufdError, fail } from '../errors.js';
import { IOMMUFD_CMD_BASE, IOMMU_VFIO_IOAS_GET, iommuIoctl } from '../uapi/constants.js';
import { hex } from '../uapi/u64.js';
import { copyStructFromUser, fieldIsZero, readField, readUserSize, respond, writeField } from './codec.js';
import type { FdObject, FdTable } from './fd-table.js';
import { IOCTL_TABLE_END, camelName, fieldOf, ioctlLayoutByNr, type IoctlLayout } from './layout.js';
import {
  clearUser,
  defineLazyUserBytes,
  encodeIovaRanges,
  lazyIovaRanges,
  readUser,
  writeUser,
  type IovaRangeValue,
  type UserMemory,
} from './user-ptr.js';

/**
 * What {@link iommufdIoctl} needs of an IommuFd: the opener's process (user pointers), the fd table
 * (fd fields), and the typed methods named in the layout table (looked up by name, all optional;
 * sync or async).
 */
export interface IoctlTarget {
  /** The opener's process: u64 pointer fields point into it unless {@link currentProcess} is set. */
  readonly process: UserMemory;
  /**
   * The process issuing the call (the kernel's `current`, IommufdCtx.current), if the target tracks
   * one: copy_from_user / copy_to_user act on the caller's address space.
   */
  readonly currentProcess?: UserMemory;
  /** Descriptor table for `fd` / `out_*_fd` fields; without one, fd fields fail with `EBADF`. */
  readonly files?: FdTable;
  /** Optional VFIO type1 compatibility handler for numbers outside the iommufd table. */
  vfioCompatIoctl?(cmd: number, arg: Uint8Array | null): number | Promise<number>;
}

/** Typed result record of a method (outputs by camelCase name). */
type Result = Record<string, unknown>;

/** One ioctl in flight (`struct iommufd_ucmd`). */
class Ucmd {
  constructor(
    readonly target: IoctlTarget,
    readonly layout: IoctlLayout,
    /** The caller's struct (the ioctl argument). */
    readonly arg: Uint8Array,
    /** `size` the caller passed. */
    readonly usize: number,
    /** The kernel's `sizeof`-byte image of the struct. */
    readonly kbuf: Uint8Array,
  ) {}

  get what(): string {
    return this.layout.name;
  }

  get mem(): UserMemory {
    return this.target.currentProcess ?? this.target.process;
  }

  /** A u8/u16/u32/s32 member. */
  num(name: string): number {
    return Number(readField(this.kbuf, fieldOf(this.layout, name)));
  }

  /** A u64 member. */
  big(name: string): bigint {
    return BigInt(readField(this.kbuf, fieldOf(this.layout, name)));
  }

  set(name: string, value: number | bigint): void {
    writeField(this.kbuf, fieldOf(this.layout, name), value);
  }

  /** `iommufd_ucmd_respond(ucmd, sizeof(*cmd))`. */
  respond(): void {
    respond(this.arg, this.kbuf, this.usize);
  }

  /** `if (cmd->__reserved) return -EOPNOTSUPP;` for each named member. */
  reserved(...names: string[]): void {
    for (const name of names) {
      if (!fieldIsZero(this.kbuf, fieldOf(this.layout, name))) {
        fail('EOPNOTSUPP', `${this.what}: ${name} must be 0`);
      }
    }
  }

  /** Calls the typed method of this ioctl; `EOPNOTSUPP` when the target lacks it. */
  async call(args: Record<string, unknown>): Promise<Result> {
    const fn = (this.target as unknown as Record<string, unknown>)[this.layout.method];
    if (typeof fn !== 'function') {
      fail('EOPNOTSUPP', `${this.what}: IommuFd.${this.layout.method}() is not implemented in this model`);
    }
    const r: unknown = await (fn as (a: unknown) => unknown).call(this.target, args);
    return (r ?? {}) as Result;
  }

  /** Output `key` of a typed result; a missing one is a bug of the typed side. */
  out(r: Result, key: string): number | bigint {
    const v = r[key];
    if (typeof v !== 'number' && typeof v !== 'bigint') {
      throw new TypeError(`${this.what}: IommuFd.${this.layout.method}() result has no numeric ${key}`);
    }
    return v;
  }

  /** Copies output `key` of `r` into member `name` (camelCase of `name` by default). */
  put(r: Result, name: string, key = camelName(name)): void {
    this.set(name, this.out(r, key));
  }

  /** Maps an fd number through the target's table (`fget`): `EBADF` if not open. */
  file(fd: number): FdObject {
    const files = this.target.files;
    if (!files) fail('EBADF', `${this.what}: fd ${fd} is not open (no fd table)`);
    return files.get(fd);
  }

  /** An output fd: a number already installed by the typed side, or an object to install now. */
  installFd(v: unknown, key: string): number {
    if (typeof v === 'number') return v;
    if (typeof v === 'object' && v !== null) {
      const files = this.target.files;
      if (!files) throw new TypeError(`${this.what}: no fd table to install ${key} in`);
      return files.install(v);
    }
    throw new TypeError(`${this.what}: IommuFd.${this.layout.method}() result has no ${key}`);
  }
}

/** Typed args from the listed members: camelCase names, u64 as bigint, the rest as numbers. */
function args(c: Ucmd, ...names: string[]): Record<string, unknown> {
  const a: Record<string, unknown> = {};
  for (const name of names) {
    const fl = fieldOf(c.layout, name);
    a[camelName(name)] = fl.type === 'u64' ? c.big(name) : c.num(name);
  }
  return a;
}

function isErrno(e: unknown, errno: string): e is IommuError {
  return e instanceof IommuError && e.errno === errno;
}

function rangesOf(v: unknown, what: string): readonly IovaRangeValue[] {
  if (!Array.isArray(v)) throw new TypeError(`${what}: typed result has no allowedIovas array`);
  return v as IovaRangeValue[];
}

type Handler = (c: Ucmd) => Promise<void>;

/** Per-command handlers, keyed by `nr`. Kernel references: ioas.c, main.c, hw_pagetable.c, device.c, fault.c, eventq.c, viommu.c, vfio_compat.c. */
const HANDLERS: Readonly<Record<number, Handler>> = {
  // main.c iommufd_destroy
  0x80: async (c) => {
    await c.call(args(c, 'id'));
  },
  // ioas.c iommufd_ioas_alloc_ioctl
  0x81: async (c) => {
    const r = await c.call(args(c, 'flags'));
    c.put(r, 'out_ioas_id');
    c.respond();
  },
  // ioas.c iommufd_ioas_allow_iovas: __reserved, IOAS lookup, then each range copied in turn
  0x82: async (c) => {
    c.reserved('__reserved');
    const a = args(c, 'ioas_id', 'num_iovas');
    a.allowedIovas = lazyIovaRanges(c.mem, c.big('allowed_iovas'), c.num('num_iovas'), `${c.what} allowed_iovas`);
    await c.call(a);
  },
  // ioas.c iommufd_ioas_copy
  0x83: async (c) => {
    const r = await c.call(args(c, 'flags', 'dst_ioas_id', 'src_ioas_id', 'length', 'dst_iova', 'src_iova'));
    c.put(r, 'dst_iova');
    c.respond();
  },
  // ioas.c iommufd_ioas_iova_ranges: entries that fit are written, then the struct, then EMSGSIZE
  0x84: async (c) => {
    c.reserved('__reserved');
    const capacity = c.num('num_iovas');
    const ptr = c.big('allowed_iovas');
    const a = args(c, 'ioas_id', 'num_iovas');
    let total: number | bigint;
    let alignment: number | bigint;
    let ranges: readonly IovaRangeValue[];
    let err: IommufdError | IommuError | undefined;
    try {
      const r = await c.call(a);
      total = c.out(r, 'numIovas');
      alignment = c.out(r, 'outIovaAlignment');
      ranges = rangesOf(r.allowedIovas, c.what);
    } catch (e) {
      if (!isErrno(e, 'EMSGSIZE')) throw e;
      err = e;
      const out = (e as IommufdError).out ?? {};
      total = c.out(out, 'numIovas');
      alignment = c.out(out, 'outIovaAlignment');
      // The kernel fills the first `capacity` entries before failing; take them from err.out, or
      // ask again with room for all (read-only, so no side effect).
      ranges =
        out.allowedIovas !== undefined
          ? rangesOf(out.allowedIovas, c.what)
          : rangesOf((await c.call({ ...a, numIovas: Number(total) })).allowedIovas, c.what);
    }
    writeUser(c.mem, ptr, encodeIovaRanges(ranges.slice(0, capacity)), `${c.what} allowed_iovas`);
    c.set('num_iovas', total);
    c.set('out_iova_alignment', alignment);
    c.respond();
    if (err) throw err;
  },
  // ioas.c iommufd_ioas_map: (flags & ~valid) || __reserved → EOPNOTSUPP first
  0x85: async (c) => {
    c.reserved('__reserved');
    const r = await c.call(args(c, 'flags', 'ioas_id', 'user_va', 'length', 'iova'));
    c.put(r, 'iova');
    c.respond();
  },
  // ioas.c iommufd_ioas_unmap: length written back
  0x86: async (c) => {
    const r = await c.call(args(c, 'ioas_id', 'iova', 'length'));
    c.put(r, 'length');
    c.respond();
  },
  // main.c iommufd_option: only val64 is copied back (copy_to_user(&ubuffer->val64, ...))
  0x87: async (c) => {
    c.reserved('__reserved');
    const a = args(c, 'option_id', 'op', 'object_id', 'val64');
    const r = await c.call(a);
    c.set('val64', r.val64 === undefined ? (a.val64 as bigint) : c.out(r, 'val64'));
    const fl = fieldOf(c.layout, 'val64');
    c.arg.set(c.kbuf.subarray(fl.offset, fl.offset + 8), fl.offset);
  },
  // vfio_compat.c iommufd_vfio_ioas: responds for GET only
  0x88: async (c) => {
    c.reserved('__reserved');
    const a = args(c, 'ioas_id', 'op');
    const r = await c.call(a);
    if (a.op === IOMMU_VFIO_IOAS_GET) {
      c.put(r, 'ioas_id');
      c.respond();
    }
  },
  // hw_pagetable.c iommufd_hwpt_alloc: __reserved checked, __reserved2 is not
  0x89: async (c) => {
    c.reserved('__reserved');
    const a = args(c, 'flags', 'dev_id', 'pt_id', 'data_type', 'data_len', 'fault_id');
    defineLazyUserBytes(a, 'data', c.mem, c.big('data_uptr'), c.num('data_len'), `${c.what} data_uptr`);
    const r = await c.call(a);
    c.put(r, 'out_hwpt_id');
    c.respond();
  },
  // device.c iommufd_get_hw_info: copy min(data_len, kernel len), clear the rest, data_len = kernel len
  0x8a: async (c) => {
    c.reserved('__reserved');
    const a = args(c, 'flags', 'dev_id', 'data_len', 'in_data_type');
    const r = await c.call(a);
    const data = r.data instanceof Uint8Array ? r.data : new Uint8Array(0);
    const userLen = c.num('data_len');
    const copyLen = Math.min(userLen, data.length);
    const ptr = c.big('data_uptr');
    writeUser(c.mem, ptr, data.subarray(0, copyLen), `${c.what} data_uptr`);
    clearUser(c.mem, ptr + BigInt(copyLen), userLen - copyLen, `${c.what} data_uptr`);
    c.set('data_len', data.length);
    c.put(r, 'out_data_type');
    c.put(r, 'out_max_pasid_log2');
    c.put(r, 'out_capabilities');
    c.respond();
  },
  // hw_pagetable.c iommufd_hwpt_set_dirty_tracking (does not check __reserved)
  0x8b: async (c) => {
    await c.call(args(c, 'flags', 'hwpt_id'));
  },
  // hw_pagetable.c iommufd_hwpt_get_dirty_bitmap: the kernel sets bits in the user bitmap (OR)
  0x8c: async (c) => {
    c.reserved('__reserved');
    const r = await c.call(args(c, 'hwpt_id', 'flags', 'iova', 'length', 'page_size'));
    const bits = r.bitmap;
    if (!(bits instanceof Uint8Array)) throw new TypeError(`${c.what}: typed result has no bitmap`);
    if (bits.length === 0) return;
    const ptr = c.big('data');
    const cur = readUser(c.mem, ptr, bits.length, `${c.what} data`);
    for (let i = 0; i < bits.length; i++) cur[i] |= bits[i];
    writeUser(c.mem, ptr, cur, `${c.what} data`);
  },
  // hw_pagetable.c iommufd_hwpt_invalidate: entry_num = done count is written back on every path
  0x8d: async (c) => {
    let done: number | bigint = 0;
    try {
      c.reserved('__reserved');
      const num = c.num('entry_num');
      const len = c.num('entry_len');
      if (num !== 0 && (c.big('data_uptr') === 0n || len === 0)) {
        fail('EINVAL', `${c.what}: entry_num ${num} needs a data_uptr and an entry_len`);
      }
      const a = args(c, 'hwpt_id', 'data_type', 'entry_len', 'entry_num');
      defineLazyUserBytes(a, 'data', c.mem, c.big('data_uptr'), num * len, `${c.what} data_uptr`);
      const r = await c.call(a);
      done = c.out(r, 'entryNum');
    } catch (e) {
      const out = e instanceof IommufdError ? e.out : undefined;
      const n = out?.entryNum;
      c.set('entry_num', typeof n === 'number' || typeof n === 'bigint' ? n : 0);
      c.respond();
      throw e;
    }
    c.set('entry_num', done);
    c.respond();
  },
  // fault.c iommufd_fault_alloc
  0x8e: async (c) => {
    const r = await c.call(args(c, 'flags'));
    c.put(r, 'out_fault_id');
    c.set('out_fault_fd', c.installFd(r.outFaultFd, 'outFaultFd'));
    c.respond();
  },
  // ioas.c iommufd_ioas_map_file: fget(fd) after the flag / overflow / IOAS checks → lazy `fd`
  0x8f: async (c) => {
    const a = args(c, 'flags', 'ioas_id', 'start', 'length', 'iova');
    const fdNum = c.num('fd');
    let file: FdObject | undefined;
    Object.defineProperty(a, 'fd', {
      enumerable: true,
      get: () => (file ??= c.file(fdNum)),
    });
    const r = await c.call(a);
    c.put(r, 'iova');
    c.respond();
  },
  // viommu.c iommufd_viommu_alloc_ioctl (does not check __reserved); driver data is in/out
  0x90: async (c) => {
    const a = args(c, 'flags', 'type', 'dev_id', 'hwpt_id', 'data_len');
    const ptr = c.big('data_uptr');
    const len = c.num('data_len');
    defineLazyUserBytes(a, 'data', c.mem, ptr, len, `${c.what} data_uptr`);
    const r = await c.call(a);
    if (r.data instanceof Uint8Array) {
      writeUser(c.mem, ptr, r.data.subarray(0, Math.min(len, r.data.length)), `${c.what} data_uptr`);
    }
    c.put(r, 'out_viommu_id');
    c.respond();
  },
  // viommu.c iommufd_vdevice_alloc_ioctl
  0x91: async (c) => {
    const r = await c.call(args(c, 'viommu_id', 'dev_id', 'virt_id'));
    c.put(r, 'out_vdevice_id');
    c.respond();
  },
  // ioas.c iommufd_ioas_change_process
  0x92: async (c) => {
    c.reserved('__reserved');
    await c.call({});
  },
  // eventq.c iommufd_veventq_alloc: flags || __reserved || type == DEFAULT → EOPNOTSUPP
  0x93: async (c) => {
    c.reserved('__reserved');
    const r = await c.call(args(c, 'flags', 'viommu_id', 'type', 'veventq_depth'));
    c.put(r, 'out_veventq_id');
    c.set('out_veventq_fd', c.installFd(r.outVeventqFd, 'outVeventqFd'));
    c.respond();
  },
  // viommu.c iommufd_hw_queue_alloc_ioctl
  0x94: async (c) => {
    const r = await c.call(args(c, 'flags', 'viommu_id', 'type', 'index', 'nesting_parent_iova', 'length'));
    c.put(r, 'out_hw_queue_id');
    c.respond();
  },
};

// test cmd and dma-buf
/** `_IOC_NR(IOMMU_TEST_CMD)` = IOMMUFD_CMD_BASE + 32. */
export const IOMMU_TEST_CMD_NR = 0xa0;
/** A target's IOMMU_TEST_CMD handler: resolves to the ioctl's return value (e.g. a dma-buf fd). */
export type TestCmdHandler = (cmd: number, arg: Uint8Array | null) => Promise<number>;
const testCmdHandlers = new WeakMap<object, TestCmdHandler>();
/**
 * Installs (or with null removes) the IOMMU_TEST_CMD handler of `target` (test-cmd.ts,
 * `enableSelftest`). Without one, nr 0xa0 takes the path of a kernel without CONFIG_IOMMUFD_TEST.
 */
export function setTestCmdHandler(target: object, handler: TestCmdHandler | null): void {
  if (handler === null) testCmdHandlers.delete(target);
  else testCmdHandlers.set(target, handler);
}

/**
 * `ioctl(iommufd, cmd, arg)`: runs one binary iommufd ioctl against `target`'s typed methods.
 * `arg` is the caller's struct (read, and written back in place); `null` models a NULL pointer.
 * Resolves to 0 or rejects with the {@link IommufdError} the kernel's errno corresponds to.
 */
export async function iommufdIoctl(target: IoctlTarget, cmd: number, arg: Uint8Array | null): Promise<number> {
  const request = cmd >>> 0;
  const nr = request & 0xff;
  // CONFIG_IOMMUFD_TEST: IOMMU_TEST_CMD (nr 0xa0) is in the table only when the target enabled it.
  const testCmd = nr === IOMMU_TEST_CMD_NR ? testCmdHandlers.get(target) : undefined;
  if (testCmd !== undefined) return await testCmd(request, arg);
  if (nr < IOMMUFD_CMD_BASE || nr >= IOCTL_TABLE_END) {
    // main.c: iommufd_vfio_ioctl() (vfio_compat.c) answers ENOTTY for anything it doesn't know.
    if (typeof target.vfioCompatIoctl === 'function') return await target.vfioCompatIoctl(request, arg);
    fail('ENOTTY', `ioctl ${hex(request)} is not an iommufd ioctl`);
  }
  const layout = ioctlLayoutByNr(nr);
  const usize = readUserSize(arg, `ioctl ${hex(request)}`);
  if (!layout || layout.cmd !== request || !arg) {
    fail('ENOTTY', `ioctl ${hex(request)} is not ${layout ? `${layout.name} (${hex(iommuIoctl(nr))})` : 'known'}`);
  }
  if (usize < layout.minSize) {
    fail('EINVAL', `${layout.name}: size ${usize} is below the minimum ${layout.minSize}`);
  }
  const kbuf = copyStructFromUser(arg, layout.size, usize, layout.name);
  const handler = HANDLERS[nr];
  if (!handler) fail('ENOTTY', `${layout.name}: no handler`);
  await handler(new Ucmd(target, layout, arg, usize, kbuf));
  return 0;
}
