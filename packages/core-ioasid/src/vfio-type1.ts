/**
 * The VFIO type1 container ioctls on /dev/iommu (drivers/iommu/iommufd/vfio_compat.c,
 * `iommufd_vfio_ioctl`): a VFIO container emulated over the compatibility IOAS chosen with
 * IOMMU_VFIO_IOAS (vfio-compat.ts). Request numbers below iommufd's own table (0x80...) arrive here
 * from the ABI dispatcher; anything not listed answers `ENOTTY` (the kernel's ENOIOCTLCMD).
 *
 * Typed entry points (one per ioctl, on the context) and {@link vfioType1Ioctl}, the binary
 * handler. Rules carried over from the kernel:
 *  - Every ioctl but VFIO_GET_API_VERSION / VFIO_CHECK_EXTENSION needs a compat IOAS: `ENODEV`.
 *  - VFIO_SET_IOMMU(VFIO_TYPE1_IOMMU) turns the IOAS's huge pages off (IOMMU_OPTION_HUGE_PAGES 0)
 *    so that any mapping may later be cut on unmap; TYPE1v2 leaves the IOAS alone and unmapping
 *    part of a mapping fails with `ENOENT`.
 *  - MAP_DMA always maps at the given IOVA with the IOAS's accounting mode; UNMAP_DMA of a range
 *    holding nothing succeeds (0 bytes), unlike IOMMU_IOAS_UNMAP.
 *  - GET_INFO reports the page sizes and a capability chain (DMA_AVAIL then IOVA_RANGE), written
 *    only where it fits in `argsz`; `argsz` comes back as the size the full chain needs.
 *
 * Binary argument convention: `arg` is the caller's memory at the ioctl's pointer (for GET_INFO
 * the whole buffer the capability chain may be written into; writes beyond `arg.length` fault
 * with `EFAULT`). VFIO_CHECK_EXTENSION and VFIO_SET_IOMMU take a value, not a pointer: there `arg`
 * holds that `unsigned long` as up to 8 little-endian bytes ({@link vfioIoctlArg}); null is 0.
 */
import type { IommufdCtx } from './context.js';
import { fail, IommufdError } from './errors.js';
import type { Interval } from './io-pagetable/interval-set.js';
import { IoptArea } from './io-pagetable/area.js';
import type { IoPagetable } from './io-pagetable/io-pagetable.js';
import type { Ioas } from './ioas.js';
import { Prot } from '@iommulab/driver-api';
import { hex, PAGE_SIZE_N, U64_MAX, ULONG_MAX } from './uapi/u64.js';
import { pagesAccountMode } from './user-memory/accounting.js';
import { getCompatIoas } from './vfio-compat.js';

// ------------------------------------------------------------------ uAPI (include/uapi/linux/vfio.h)

/** `VFIO_API_VERSION`. */
export const VFIO_API_VERSION = 0;

/** Extensions (VFIO_CHECK_EXTENSION / VFIO_SET_IOMMU arguments). */
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_SPAPR_TCE_IOMMU = 2;
export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_DMA_CC_IOMMU = 4;
export const VFIO_EEH = 5;
export const VFIO_TYPE1_NESTING_IOMMU = 6;
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
export const VFIO_NOIOMMU_IOMMU = 8;
export const VFIO_UNMAP_ALL = 9;
export const VFIO_UPDATE_VADDR = 10;

/** `VFIO_TYPE` (`';'`, the same ioctl type as iommufd) and `VFIO_BASE`. */
export const VFIO_TYPE = 0x3b;
export const VFIO_BASE = 100;

/** `_IO(VFIO_TYPE, VFIO_BASE + n)`. */
export function vfioIoctl(n: number): number {
  return (VFIO_TYPE << 8) | (VFIO_BASE + n);
}

export const VFIO_GET_API_VERSION = vfioIoctl(0);
export const VFIO_CHECK_EXTENSION = vfioIoctl(1);
export const VFIO_SET_IOMMU = vfioIoctl(2);
export const VFIO_IOMMU_GET_INFO = vfioIoctl(12);
export const VFIO_IOMMU_MAP_DMA = vfioIoctl(13);
export const VFIO_IOMMU_UNMAP_DMA = vfioIoctl(14);
export const VFIO_IOMMU_DIRTY_PAGES = vfioIoctl(17);

/** `struct vfio_iommu_type1_info` flags. */
export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;

/** Capability ids of the type1 info chain. */
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;

/** `struct vfio_iommu_type1_dma_map` flags. */
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
export const VFIO_DMA_MAP_FLAG_VADDR = 1 << 2;

/** `struct vfio_iommu_type1_dma_unmap` flags. */
export const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0;
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
export const VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2;

/**
 * Struct sizes (bytes). `vfio_iommu_type1_info` = {u32 argsz; u32 flags; u64 iova_pgsizes;
 * u32 cap_offset; u32 pad}; `vfio_iommu_type1_dma_map` = {u32 argsz; u32 flags; u64 vaddr;
 * u64 iova; u64 size}; `vfio_iommu_type1_dma_unmap` = {u32 argsz; u32 flags; u64 iova; u64 size;
 * u8 data[]}; `vfio_info_cap_header` = {u16 id; u16 version; u32 next};
 * `vfio_iommu_type1_info_cap_iova_range` = {header; u32 nr_iovas; u32 reserved;
 * vfio_iova_range iova_ranges[]} with `vfio_iova_range` = {u64 start; u64 end};
 * `vfio_iommu_type1_info_dma_avail` = {header; u32 avail}.
 */
export const VFIO_IOMMU_TYPE1_INFO_SIZE = 24;
export const VFIO_IOMMU_TYPE1_DMA_MAP_SIZE = 32;
export const VFIO_IOMMU_TYPE1_DMA_UNMAP_SIZE = 24;
export const VFIO_INFO_CAP_HEADER_SIZE = 8;
export const VFIO_IOVA_RANGE_SIZE = 16;
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE_SIZE = 16;
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL_SIZE = 12;

/** `offsetofend(struct vfio_iommu_type1_info, iova_pgsizes)`: the part GET_INFO reads. */
const INFO_MINSZ = 16;
const U32_MAX = 0xffff_ffff;

// ------------------------------------------------------------------ typed API

/** What VFIO_IOMMU_GET_INFO reports (before it is laid out in the caller's buffer). */
export interface VfioType1Info {
  /** VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS. */
  flags: number;
  /** `iommufd_get_pagesizes`: the page sizes every domain supports, at least PAGE_SIZE and the IOAS alignment. */
  iovaPgsizes: bigint;
  /** VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE: the usable IOVA ranges (holes of the reserved ranges), inclusive. */
  iovaRanges: Interval[];
  /** VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL: `avail` (iommufd has no mapping count limit: U32_MAX). */
  dmaAvail: number;
}

function asValue(v: bigint | number, what: string): bigint {
  const x = BigInt(v);
  if (x < 0n || x > U64_MAX) fail('EINVAL', `${what}: ${String(v)} is not an unsigned long`);
  return x;
}

/** VFIO_GET_API_VERSION. */
export function vfioGetApiVersion(_ctx: IommufdCtx): number {
  return VFIO_API_VERSION;
}

/** `iommufd_vfio_cc_iommu`: every HWPT of the compat IOAS enforces cache coherency (the model requires it at bind). */
function ccIommu(ctx: IommufdCtx): number {
  const ioas = getCompatIoas(ctx);
  for (const hwpt of ioas.hwptList) {
    const enforce = (hwpt as { enforceCacheCoherency?: boolean }).enforceCacheCoherency;
    if (enforce === false) return 0;
  }
  return 1;
}

/**
 * VFIO_CHECK_EXTENSION (`iommufd_vfio_check_extension`): 1 for TYPE1, TYPE1v2 and UNMAP_ALL;
 * DMA_CC_IOMMU needs the compat IOAS (`ENODEV`); everything else (nesting, no-IOMMU, vaddr
 * update, SPAPR, EEH, unknown) is 0.
 */
export function vfioCheckExtension(ctx: IommufdCtx, ext: bigint | number): number {
  const type = asValue(ext, 'VFIO_CHECK_EXTENSION');
  switch (type) {
    case BigInt(VFIO_TYPE1_IOMMU):
    case BigInt(VFIO_TYPE1v2_IOMMU):
    case BigInt(VFIO_UNMAP_ALL):
      return 1;
    case BigInt(VFIO_DMA_CC_IOMMU):
      return ccIommu(ctx);
    default:
      return 0;
  }
}

/**
 * VFIO_SET_IOMMU (`iommufd_vfio_set_iommu`): only TYPE1 / TYPE1v2 (`EINVAL`); needs the compat
 * IOAS (`ENODEV`, VFIO needs a group). TYPE1 disables huge pages on the IOAS (`EINVAL` if a
 * domain already holds mappings, `EADDRINUSE` for mappings not PAGE_SIZE aligned).
 */
export async function vfioSetIommu(ctx: IommufdCtx, iommuType: bigint | number): Promise<void> {
  const type = asValue(iommuType, 'VFIO_SET_IOMMU');
  if (type !== BigInt(VFIO_TYPE1_IOMMU) && type !== BigInt(VFIO_TYPE1v2_IOMMU)) {
    fail('EINVAL', `VFIO_SET_IOMMU: type ${type} is neither VFIO_TYPE1_IOMMU nor VFIO_TYPE1v2_IOMMU`);
  }
  const ioas = getCompatIoas(ctx);
  if (type === BigInt(VFIO_TYPE1_IOMMU)) await ioas.iopt.setLargePagesDisabled(true);
}

/** `iommufd_get_pagesizes`. */
function pageSizes(ioas: Ioas): bigint {
  let bitmap = ULONG_MAX;
  for (const d of ioas.iopt.domains) {
    let b = 0n;
    for (const ps of d.pageSizes) b |= BigInt(ps);
    bitmap &= b;
  }
  // vfio_update_pgsize_bitmap(): sizes below PAGE_SIZE collapse into PAGE_SIZE.
  const subPage = PAGE_SIZE_N - 1n;
  if (bitmap & subPage) bitmap = (bitmap & ~subPage & U64_MAX) | PAGE_SIZE_N;
  const align = ioas.iopt.iovaAlignment;
  return bitmap > align ? bitmap : align;
}

/** VFIO_IOMMU_GET_INFO (`iommufd_vfio_iommu_get_info`) as values; {@link vfioType1Ioctl} lays them out. */
export function vfioIommuGetInfo(ctx: IommufdCtx): VfioType1Info {
  const ioas = getCompatIoas(ctx);
  return {
    flags: VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS,
    iovaPgsizes: pageSizes(ioas),
    iovaRanges: ioas.iopt.iovaRanges(),
    dmaAvail: U32_MAX,
  };
}

/**
 * VFIO_IOMMU_MAP_DMA (`iommufd_vfio_map_dma`): maps `size` bytes of the caller's memory at `vaddr`
 * at exactly `iova`. Flags other than READ / WRITE → `EINVAL`; no compat IOAS → `ENODEV`; then
 * the io_pagetable's errnos (EEXIST, EINVAL alignment / reserved, EFAULT, ENOMEM, ...).
 */
export async function vfioIommuMapDma(
  ctx: IommufdCtx,
  a: { flags: number; vaddr: bigint | number; iova: bigint | number; size: bigint | number },
): Promise<void> {
  const supported = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
  const flags = a.flags >>> 0;
  if (flags & ~supported) fail('EINVAL', `VFIO_IOMMU_MAP_DMA: unsupported flags ${hex(flags & ~supported)}`);
  let prot = Prot.CACHE;
  if (flags & VFIO_DMA_MAP_FLAG_READ) prot |= Prot.READ;
  if (flags & VFIO_DMA_MAP_FLAG_WRITE) prot |= Prot.WRITE;
  const vaddr = asValue(a.vaddr, 'vaddr');
  const iova = asValue(a.iova, 'iova');
  const size = asValue(a.size, 'size');
  const ioas = getCompatIoas(ctx);
  const proc = ctx.current;
  await ioas.iopt.mapUser({
    process: proc,
    accountMode: pagesAccountMode(ctx.accountMode, proc),
    userVa: vaddr,
    length: size,
    prot,
    iova,
  });
}

/**
 * `iopt_area_split`: cuts `area` so that `iova` becomes the last IOVA of the left part. Both parts
 * keep pointing at the same pages (pins and domain mappings are untouched). Nothing to do when
 * `iova` is already an edge. `EBUSY` while the area is created / torn down or an unmap waits on
 * it; `EINVAL` for a cut that is not aligned (IOVA or page offset), an area with an access, or a
 * domain filled while huge pages were allowed.
 */
function splitArea(iopt: IoPagetable, area: IoptArea, iova: bigint): void {
  if (iova === area.start || iova === area.last) return;
  const pages = area.pages;
  if (pages === null || area.preventAccess) fail('EBUSY', `area [${hex(area.start)}, ${hex(area.last)}] is busy`);
  // Not in the kernel source read for this port: an area locked by a HW queue is not cut (its lock
  // count cannot be divided between the parts).
  if (area.numLocks > 0) fail('EBUSY', `area [${hex(area.start)}, ${hex(area.last)}] is locked`);
  const newStart = iova + 1n;
  const mask = iopt.iovaAlignment - 1n;
  if ((newStart & mask) !== 0n || (area.startByte(newStart) & mask) !== 0n) {
    fail('EINVAL', `cannot cut [${hex(area.start)}, ${hex(area.last)}] at ${hex(newStart)}: not aligned to ${iopt.iovaAlignment}`);
  }
  if (area.numAccesses > 0) fail('EINVAL', `cannot cut [${hex(area.start)}, ${hex(area.last)}]: an access uses it`);
  if (area.filled && !iopt.disableLargePages) {
    fail('EINVAL', `cannot cut [${hex(area.start)}, ${hex(area.last)}]: domains may hold huge IOPTEs`);
  }
  const lhs = new IoptArea(area.start, iova, pages, area.startByte(area.start), area.prot);
  const rhs = new IoptArea(newStart, area.last, pages, area.startByte(newStart), area.prot);
  lhs.filled = rhs.filled = area.filled;
  iopt.areas.delete(area);
  area.pages = null;
  lhs.pages = pages; // takes over the area's reference
  rhs.pages = pages.get();
  iopt.areas.insert(lhs);
  iopt.areas.insert(rhs);
}

/** `iopt_cut_iova`: splits the areas containing each IOVA (under the domains lock, as the kernel's iova_rwsem). */
async function cutIova(iopt: IoPagetable, iovas: readonly bigint[]): Promise<void> {
  if (!iopt.domainsSem.tryRead()) await iopt.domainsSem.read();
  try {
    for (const iova of iovas) {
      const area = iopt.areas.containing(iova);
      if (area !== undefined) splitArea(iopt, area, iova);
    }
  } finally {
    iopt.domainsSem.upRead();
  }
}

/**
 * VFIO_IOMMU_UNMAP_DMA (`iommufd_vfio_unmap_dma`): returns the bytes unmapped (0 for an empty
 * range: not an error here). Flags other than UNMAP_FLAG_ALL (GET_DIRTY_BITMAP, VADDR) → `EINVAL`;
 * no compat IOAS → `ENODEV`; UNMAP_FLAG_ALL needs iova = size = 0 (`EINVAL`). Without huge pages
 * (type1) the areas around the range are cut first, so any aligned sub-range can be unmapped;
 * otherwise (type1v2) an area sticking out of the range is `ENOENT`. A failure of the unmap
 * itself carries `out.size` (the kernel still writes `size` back).
 */
export async function vfioIommuUnmapDma(
  ctx: IommufdCtx,
  a: { flags: number; iova: bigint | number; size: bigint | number },
): Promise<{ size: bigint }> {
  const flags = a.flags >>> 0;
  if (flags & ~VFIO_DMA_UNMAP_FLAG_ALL) fail('EINVAL', `VFIO_IOMMU_UNMAP_DMA: unsupported flags ${hex(flags & ~VFIO_DMA_UNMAP_FLAG_ALL)}`);
  const iova = asValue(a.iova, 'iova');
  const size = asValue(a.size, 'size');
  const ioas = getCompatIoas(ctx);
  const iopt = ioas.iopt;
  if (flags & VFIO_DMA_UNMAP_FLAG_ALL) {
    if (iova !== 0n || size !== 0n) fail('EINVAL', 'VFIO_IOMMU_UNMAP_DMA: VFIO_DMA_UNMAP_FLAG_ALL needs iova and size 0');
    return { size: await withSizeOut(iopt.unmapAll()) };
  }
  if (iopt.disableLargePages) {
    // Cut at the last IOVA of the range and just before its start (unsigned long arithmetic).
    const cuts = [(iova + size - 1n) & U64_MAX];
    if (iova !== 0n) cuts.push(iova - 1n);
    await cutIova(iopt, cuts);
  }
  // iopt_unmap_iova: a range without any area unmaps nothing and succeeds.
  if (size !== 0n && iova + size - 1n <= U64_MAX && iopt.areas.firstIntersecting(iova, iova + size - 1n) === undefined) {
    return { size: 0n };
  }
  return { size: await withSizeOut(iopt.unmap(iova, size)) };
}

/** Attaches `out.size = 0` to a failing io_pagetable unmap (what the kernel writes back then). */
async function withSizeOut(p: bigint | Promise<bigint>): Promise<bigint> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof IommufdError && e.out === undefined) throw new IommufdError(e.errno, e.message, { size: 0n }, { cause: e });
    throw e;
  }
}

// ------------------------------------------------------------------ binary ABI

/** Encodes an `unsigned long` ioctl argument (VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU) as {@link vfioType1Ioctl} reads it. */
export function vfioIoctlArg(value: bigint | number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(value)), true);
  return out;
}

/** The `unsigned long` value argument: up to 8 little-endian bytes, null = 0. */
function argValue(arg: Uint8Array | null): bigint {
  if (arg === null) return 0n;
  let v = 0n;
  const n = Math.min(arg.length, 8);
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(arg[i]);
  return v;
}

/** `copy_from_user(&k, arg, len)`. */
function copyIn(arg: Uint8Array | null, len: number, what: string): DataView {
  if (arg === null || arg.length < len) fail('EFAULT', `${what}: cannot read ${len} bytes from the argument`);
  const k = arg.slice(0, len);
  return new DataView(k.buffer);
}

/** `copy_to_user(arg + off, bytes)`. */
function copyOut(arg: Uint8Array, off: number, bytes: Uint8Array, what: string): void {
  if (off + bytes.length > arg.length) fail('EFAULT', `${what}: cannot write ${bytes.length} bytes at offset ${off} of the argument`);
  arg.set(bytes, off);
}

/** `fill_cap_dma_avail`: writes the capability when `avail` bytes allow; returns its size. */
function fillCapDmaAvail(info: VfioType1Info, arg: Uint8Array | null, off: number, avail: number, what: string): number {
  const size = VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL_SIZE;
  if (arg !== null && avail >= size) {
    const b = new Uint8Array(size);
    const v = new DataView(b.buffer);
    v.setUint16(0, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, true);
    v.setUint16(2, 1, true);
    v.setUint32(8, info.dmaAvail, true);
    copyOut(arg, off, b, what);
  }
  return size;
}

/** `fill_cap_iova`: the ranges that fit, then the header if all of it fits; returns the full size. */
function fillCapIova(info: VfioType1Info, arg: Uint8Array | null, off: number, avail: number, what: string): number {
  const head = VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE_SIZE;
  let n = 0;
  for (const r of info.iovaRanges) {
    if (arg !== null && avail >= head + (n + 1) * VFIO_IOVA_RANGE_SIZE) {
      const b = new Uint8Array(VFIO_IOVA_RANGE_SIZE);
      const v = new DataView(b.buffer);
      v.setBigUint64(0, r.start, true);
      v.setBigUint64(8, r.last, true);
      copyOut(arg, off + head + n * VFIO_IOVA_RANGE_SIZE, b, what);
    }
    n++;
  }
  const total = head + n * VFIO_IOVA_RANGE_SIZE;
  if (arg !== null && avail >= total) {
    const b = new Uint8Array(head);
    const v = new DataView(b.buffer);
    v.setUint16(0, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, true);
    v.setUint16(2, 1, true);
    v.setUint32(8, n, true);
    copyOut(arg, off, b, what);
  }
  return total;
}

type FillCap = (info: VfioType1Info, arg: Uint8Array | null, off: number, avail: number, what: string) => number;
const FILL_CAPS: readonly FillCap[] = [fillCapDmaAvail, fillCapIova];

async function getInfoIoctl(ctx: IommufdCtx, arg: Uint8Array | null): Promise<number> {
  const what = 'VFIO_IOMMU_GET_INFO';
  const user = copyIn(arg, INFO_MINSZ, what);
  const argsz = user.getUint32(0, true);
  if (argsz < INFO_MINSZ) fail('EINVAL', `${what}: argsz ${argsz} is below ${INFO_MINSZ}`);
  const minsz = Math.min(argsz, VFIO_IOMMU_TYPE1_INFO_SIZE);
  const info = vfioIommuGetInfo(ctx);
  const buf = arg!;
  let total = VFIO_IOMMU_TYPE1_INFO_SIZE;
  let lastCap = -1;
  for (const fill of FILL_CAPS) {
    const size = argsz > total ? fill(info, buf, total, argsz - total, what) : fill(info, null, 0, 0, what);
    const aligned = (size + 7) & ~7;
    if (lastCap >= 0 && argsz >= total) {
      const next = new Uint8Array(4);
      new DataView(next.buffer).setUint32(0, total, true);
      copyOut(buf, lastCap + 4, next, what);
    }
    lastCap = total;
    total += aligned;
  }
  const out = new Uint8Array(VFIO_IOMMU_TYPE1_INFO_SIZE);
  const v = new DataView(out.buffer);
  v.setUint32(0, total, true);
  v.setUint32(4, info.flags, true);
  v.setBigUint64(8, info.iovaPgsizes, true);
  v.setUint32(16, argsz >= total ? VFIO_IOMMU_TYPE1_INFO_SIZE : 0, true);
  copyOut(buf, 0, out.subarray(0, minsz), what);
  return 0;
}

async function mapDmaIoctl(ctx: IommufdCtx, arg: Uint8Array | null): Promise<number> {
  const what = 'VFIO_IOMMU_MAP_DMA';
  const minsz = VFIO_IOMMU_TYPE1_DMA_MAP_SIZE;
  const k = copyIn(arg, minsz, what);
  const argsz = k.getUint32(0, true);
  const flags = k.getUint32(4, true);
  if (argsz < minsz) fail('EINVAL', `${what}: argsz ${argsz} is below ${minsz}`);
  await vfioIommuMapDma(ctx, { flags, vaddr: k.getBigUint64(8, true), iova: k.getBigUint64(16, true), size: k.getBigUint64(24, true) });
  return 0;
}

async function unmapDmaIoctl(ctx: IommufdCtx, arg: Uint8Array | null): Promise<number> {
  const what = 'VFIO_IOMMU_UNMAP_DMA';
  const minsz = VFIO_IOMMU_TYPE1_DMA_UNMAP_SIZE;
  const k = copyIn(arg, minsz, what);
  const argsz = k.getUint32(0, true);
  if (argsz < minsz) fail('EINVAL', `${what}: argsz ${argsz} is below ${minsz}`);
  const writeBack = (size: bigint): void => {
    k.setBigUint64(16, size, true);
    copyOut(arg!, 0, new Uint8Array(k.buffer, 0, minsz), what);
  };
  let unmapped: bigint;
  try {
    unmapped = (await vfioIommuUnmapDma(ctx, { flags: k.getUint32(4, true), iova: k.getBigUint64(8, true), size: k.getBigUint64(16, true) })).size;
  } catch (e) {
    const out = e instanceof IommufdError ? e.out?.size : undefined;
    if (typeof out === 'bigint') writeBack(out);
    throw e;
  }
  writeBack(unmapped);
  return 0;
}

/**
 * `iommufd_vfio_ioctl`: one binary VFIO type1 ioctl on the context. Resolves to the ioctl's
 * return value (the API version, an extension check result, or 0); `ENOTTY` for any other
 * request (VFIO_IOMMU_DIRTY_PAGES included).
 */
export async function vfioType1Ioctl(ctx: IommufdCtx, cmd: number, arg: Uint8Array | null): Promise<number> {
  const request = cmd >>> 0;
  switch (request) {
    case VFIO_GET_API_VERSION:
      return vfioGetApiVersion(ctx);
    case VFIO_SET_IOMMU:
      await vfioSetIommu(ctx, argValue(arg));
      return 0;
    case VFIO_CHECK_EXTENSION:
      return vfioCheckExtension(ctx, argValue(arg));
    case VFIO_IOMMU_GET_INFO:
      return getInfoIoctl(ctx, arg);
    case VFIO_IOMMU_MAP_DMA:
      return mapDmaIoctl(ctx, arg);
    case VFIO_IOMMU_UNMAP_DMA:
      return unmapDmaIoctl(ctx, arg);
    default:
      return fail('ENOTTY', `ioctl ${hex(request)} is neither an iommufd nor a VFIO type1 ioctl`);
  }
}
