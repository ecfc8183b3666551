/**
 * The IOAS object and its ioctls (drivers/iommu/iommufd/ioas.c): IOMMU_IOAS_ALLOC, IOVA_RANGES,
 * ALLOW_IOVAS, MAP, MAP_FILE, COPY, UNMAP, CHANGE_PROCESS, and the per-IOAS HUGE_PAGES option.
 * Each handler checks the struct-level fields in the kernel's order, then calls the io_pagetable.
 * MAP / MAP_FILE / COPY / UNMAP return synchronously when no domain I/O is needed (and may throw
 * synchronously): call them through the async IommuFd methods.
 */
import { Prot } from '@iommulab/driver-api';
import type { IommufdCtx } from './context.js';
import { fail, IommufdError } from './errors.js';
import { IoPagetable, type MaybePromise } from './io-pagetable/io-pagetable.js';
import type { IoptPages } from './io-pagetable/pages.js';
import { IommufdObject } from './object-table.js';
import {
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
} from './uapi/constants.js';
import { hex, u32, u64, ULONG_MAX } from './uapi/u64.js';
import { chargeMemlock, pagesAccountMode, unchargeMemlock } from './user-memory/accounting.js';
import { Memfd } from './user-memory/memfd.js';
import { DmaBuf, dmabufMapFile, isDmabufPages } from './dmabuf.js';

// Result wrappers (module-level: no closure per call on the hot path).
const toIova = (v: bigint): { iova: bigint } => ({ iova: v });
const toDstIova = (v: bigint): { dstIova: bigint } => ({ dstIova: v });
const toLength = (v: bigint): { length: bigint } => ({ length: v });

/** Applies `f` to a value or to the value of a Promise (keeps the synchronous fast paths synchronous). */
function then<U>(v: MaybePromise<bigint>, f: (t: bigint) => U): MaybePromise<U> {
  return typeof v === 'bigint' ? f(v) : v.then(f);
}

/** An inclusive IOVA range as IOVA_RANGES reports it (`struct iommu_iova_range`). */
export interface IovaRange {
  start: bigint;
  last: bigint;
}

/** An IO address space (`struct iommufd_ioas`). */
export class Ioas extends IommufdObject {
  readonly type = 'ioas' as const;
  /** The IOVA map. */
  readonly iopt = new IoPagetable();
  /** HWPT_PAGING objects built on this IOAS (`hwpt_list`; maintained by hw-pagetable.ts). */
  readonly hwptList: IommufdObject[] = [];

  /** `iommufd_ioas_destroy`: unmaps everything (no domain is attached any more: HWPTs hold users). */
  async destroy(): Promise<void> {
    await this.iopt.destroy();
  }
}

const MAP_FLAGS = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;

/** `conv_iommu_prot`: IOMMU_CACHE always (coherency is required at bind), plus READ / WRITE. */
export function convIommuProt(flags: number): number {
  let prot = Prot.CACHE;
  if (flags & IOMMU_IOAS_MAP_WRITEABLE) prot |= Prot.WRITE;
  if (flags & IOMMU_IOAS_MAP_READABLE) prot |= Prot.READ;
  return prot;
}

/** `iommufd_get_ioas`: `ENOENT` unless `id` names an IOAS. */
export function getIoas(ctx: IommufdCtx, id: number): Ioas {
  return ctx.objects.get<Ioas>(id, 'ioas', 'IOAS');
}

/** Common MAP / MAP_FILE / COPY flag checks, in the kernel's order. */
function checkMapFlags(what: string, flags: number): void {
  if (flags & ~MAP_FLAGS) fail('EOPNOTSUPP', `${what}: unknown flags ${hex(flags & ~MAP_FLAGS)}`);
}
function checkRw(what: string, flags: number): void {
  if (!(flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE))) {
    fail('EINVAL', `${what}: neither IOMMU_IOAS_MAP_READABLE nor IOMMU_IOAS_MAP_WRITEABLE`);
  }
}

/** IOMMU_IOAS_ALLOC (`iommufd_ioas_alloc_ioctl`). */
export async function ioasAlloc(ctx: IommufdCtx, a: { flags?: number } = {}): Promise<{ outIoasId: number }> {
  const flags = u32(a.flags, 'IOMMU_IOAS_ALLOC flags');
  if (flags) fail('EOPNOTSUPP', `IOMMU_IOAS_ALLOC: flags ${hex(flags)} must be 0`);
  const ioas = ctx.objects.alloc(new Ioas());
  ctx.objects.finalize(ioas);
  return { outIoasId: ioas.id };
}

/** IOMMU_IOAS_IOVA_RANGES (`iommufd_ioas_iova_ranges`). */
export async function ioasIovaRanges(
  ctx: IommufdCtx,
  a: { ioasId: number; numIovas: number },
): Promise<{ numIovas: number; allowedIovas: IovaRange[]; outIovaAlignment: bigint }> {
  const ioas = getIoas(ctx, u32(a.ioasId, 'ioas_id'));
  const max = u32(a.numIovas, 'num_iovas');
  const all = ioas.iopt.iovaRanges();
  const out = { numIovas: all.length, allowedIovas: all.slice(0, max), outIovaAlignment: ioas.iopt.iovaAlignment };
  if (all.length > max) {
    throw new IommufdError('EMSGSIZE', `IOMMU_IOAS_IOVA_RANGES: ${all.length} ranges, room for ${max}`, out);
  }
  return out;
}

/** IOMMU_IOAS_ALLOW_IOVAS (`iommufd_ioas_allow_iovas`). */
export async function ioasAllowIovas(
  ctx: IommufdCtx,
  a: { ioasId: number; allowedIovas: readonly { start: bigint | number; last: bigint | number }[] },
): Promise<void> {
  const ioas = getIoas(ctx, u32(a.ioasId, 'ioas_id'));
  // ioas.c iommufd_ioas_load_iovas copies and checks one range at a time (copy_from_user → EFAULT,
  // start >= last / overlap → EINVAL, then the next range): convert lazily so that a bad range is
  // reported before a later unreadable one (the binary ABI's array faults on first access).
  const src = a.allowedIovas;
  const ranges = {
    *[Symbol.iterator](): Generator<{ start: bigint; last: bigint }> {
      for (let i = 0; i < src.length; i++) {
        const r = src[i]!;
        yield { start: u64(r.start, `allowed_iovas[${i}].start`), last: u64(r.last, `allowed_iovas[${i}].last`) };
      }
    },
  };
  ioas.iopt.setAllowedIovas(ranges as unknown as readonly { start: bigint; last: bigint }[]);
}

/** IOMMU_IOAS_MAP (`iommufd_ioas_map`). */
export function ioasMap(
  ctx: IommufdCtx,
  a: { flags: number; ioasId: number; userVa: bigint | number; length: bigint | number; iova?: bigint | number },
): MaybePromise<{ iova: bigint }> {
  const what = 'IOMMU_IOAS_MAP';
  const flags = u32(a.flags, 'flags');
  const iova = u64(a.iova, 'iova');
  const length = u64(a.length, 'length');
  const userVa = u64(a.userVa, 'user_va');
  checkMapFlags(what, flags);
  if (iova >= ULONG_MAX || length >= ULONG_MAX) fail('EOVERFLOW', `${what}: iova ${hex(iova)} / length ${hex(length)} too large`);
  checkRw(what, flags);
  const ioas = getIoas(ctx, u32(a.ioasId, 'ioas_id'));
  const proc = ctx.current;
  const out = ioas.iopt.mapUser({
    process: proc,
    accountMode: pagesAccountMode(ctx.accountMode, proc),
    userVa,
    length,
    prot: convIommuProt(flags),
    iova: flags & IOMMU_IOAS_MAP_FIXED_IOVA ? iova : null,
  });
  return then(out, toIova);
}

/** IOMMU_IOAS_MAP_FILE (`iommufd_ioas_map_file`). `fd` is the memfd (the ABI layer resolves numbers). */
export function ioasMapFile(
  ctx: IommufdCtx,
  a: { flags: number; ioasId: number; fd: Memfd | DmaBuf; start: bigint | number; length: bigint | number; iova?: bigint | number },
): MaybePromise<{ iova: bigint }> {
  const what = 'IOMMU_IOAS_MAP_FILE';
  const flags = u32(a.flags, 'flags');
  const iova = u64(a.iova, 'iova');
  const length = u64(a.length, 'length');
  const start = u64(a.start, 'start');
  checkMapFlags(what, flags);
  if (iova >= ULONG_MAX || length >= ULONG_MAX) fail('EOVERFLOW', `${what}: iova ${hex(iova)} / length ${hex(length)} too large`);
  checkRw(what, flags);
  const ioas = getIoas(ctx, u32(a.ioasId, 'ioas_id'));
  const file = a.fd; // read after the IOAS lookup, as the kernel's fget()
  if (file instanceof DmaBuf) {
    const prot = convIommuProt(flags);
    return then(dmabufMapFile(ctx, ioas.iopt, file, { start, length, prot, iova: flags & IOMMU_IOAS_MAP_FIXED_IOVA ? iova : null }), toIova);
  }
  if (!(file instanceof Memfd) || !file.isOpen) fail('EBADF', `${what}: fd is not an open memfd`);
  const proc = ctx.current;
  const out = ioas.iopt.mapFile({
    file,
    process: proc,
    accountMode: pagesAccountMode(ctx.accountMode, proc),
    start,
    length,
    prot: convIommuProt(flags),
    iova: flags & IOMMU_IOAS_MAP_FIXED_IOVA ? iova : null,
  });
  return then(out, toIova);
}

/** IOMMU_IOAS_COPY (`iommufd_ioas_copy`): shares the source's pages (no new pin, no new charge). */
export function ioasCopy(
  ctx: IommufdCtx,
  a: { flags: number; dstIoasId: number; srcIoasId: number; length: bigint | number; dstIova?: bigint | number; srcIova: bigint | number },
): MaybePromise<{ dstIova: bigint }> {
  const what = 'IOMMU_IOAS_COPY';
  const flags = u32(a.flags, 'flags');
  const length = u64(a.length, 'length');
  const srcIova = u64(a.srcIova, 'src_iova');
  const dstIova = u64(a.dstIova, 'dst_iova');
  checkMapFlags(what, flags);
  if (length >= ULONG_MAX || srcIova >= ULONG_MAX || dstIova >= ULONG_MAX) {
    fail('EOVERFLOW', `${what}: length / src_iova / dst_iova too large`);
  }
  checkRw(what, flags);
  const src = getIoas(ctx, u32(a.srcIoasId, 'src_ioas_id'));
  const list = src.iopt.getPages(srcIova, length);
  let dst: Ioas;
  try {
    dst = getIoas(ctx, u32(a.dstIoasId, 'dst_ioas_id'));
  } catch (e) {
    for (const s of list) s.pages.put();
    throw e;
  }
  const out = dst.iopt.mapPages(list, length, flags & IOMMU_IOAS_MAP_FIXED_IOVA ? dstIova : null, convIommuProt(flags));
  return then(out, toDstIova);
}

/** IOMMU_IOAS_UNMAP (`iommufd_ioas_unmap`): iova 0 + length U64_MAX unmaps everything. */
export function ioasUnmap(ctx: IommufdCtx, a: { ioasId: number; iova: bigint | number; length: bigint | number }): MaybePromise<{ length: bigint }> {
  const iova = u64(a.iova, 'iova');
  const length = u64(a.length, 'length');
  const ioas = getIoas(ctx, u32(a.ioasId, 'ioas_id'));
  if (iova === 0n && length === ULONG_MAX) return then(ioas.iopt.unmapAll(), toLength);
  if (iova >= ULONG_MAX || length >= ULONG_MAX) fail('EOVERFLOW', `IOMMU_IOAS_UNMAP: iova ${hex(iova)} / length ${hex(length)} too large`);
  return then(ioas.iopt.unmap(iova, length), toLength);
}

/**
 * IOMMU_IOAS_CHANGE_PROCESS (`iommufd_ioas_change_process`): moves the pinned-page accounting of
 * every area of every IOAS to the current process. Only MAP_FILE areas may exist (`EINVAL`
 * otherwise); a charge failure (`ENOMEM`) changes nothing.
 */
export async function ioasChangeProcess(ctx: IommufdCtx, _a: Record<string, never> = {}): Promise<void> {
  const to = ctx.current;
  const all = new Set<IoptPages>();
  for (const obj of ctx.objects.objects()) {
    if (obj.type !== 'ioas') continue;
    for (const area of (obj as Ioas).iopt.areas) {
      const pages = area.pagesRef;
      // `area->pages->type != IOPT_ADDRESS_FILE` → EINVAL: user-VA maps and dma-buf maps alike.
      if (pages.source.kind !== 'file' || isDmabufPages(pages)) {
        fail('EINVAL', 'IOMMU_IOAS_CHANGE_PROCESS: an IOAS holds a mapping that is not of a memfd (IOMMU_IOAS_MAP or a dma-buf)');
      }
      all.add(pages);
    }
  }
  // charge_current(): each pages object is charged to the caller in its *own* account_mode (a
  // pages object keeps its mode; it is not re-derived from the context or the new process), then
  // the old charge is dropped and the source moves (change_mm).
  const list = [...all].filter((p) => p.accountProcess !== to);
  const done: IoptPages[] = [];
  try {
    for (const pages of list) {
      chargeMemlock(pages.accountMode, to, pages.npinned);
      done.push(pages);
    }
  } catch (e) {
    for (const p of done) unchargeMemlock(p.accountMode, to, p.npinned);
    throw e;
  }
  for (const p of done) {
    unchargeMemlock(p.accountMode, p.accountProcess, p.npinned);
    p.accountProcess = to;
  }
}

/** IOMMU_OPTION_HUGE_PAGES on an IOAS (`iommufd_ioas_option`). */
export async function ioasOptionHugePages(ioas: Ioas, op: number, val64: bigint): Promise<bigint> {
  if (op === IOMMU_OPTION_OP_GET) return ioas.iopt.disableLargePages ? 0n : 1n;
  if (op === IOMMU_OPTION_OP_SET) {
    if (val64 === 0n) await ioas.iopt.setLargePagesDisabled(true);
    else if (val64 === 1n) await ioas.iopt.setLargePagesDisabled(false);
    else fail('EINVAL', `IOMMU_OPTION_HUGE_PAGES: value ${val64} is not 0 or 1`);
    return val64;
  }
  return fail('EOPNOTSUPP', `IOMMU_OPTION: unknown op ${op}`);
}
