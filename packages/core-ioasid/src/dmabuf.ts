/**
 * The selftest dma-buf exporter (drivers/iommu/iommufd/selftest.c: `iommufd_test_dmabuf_get`,
 * `iommufd_test_dmabuf_revoke`, `iommufd_test_dma_buf_iommufd_map`) and the importer side of
 * IOMMU_IOAS_MAP_FILE for dma-buf files (pages.c: `iopt_alloc_dmabuf_pages`, `iopt_map_dmabuf`,
 * `iopt_revoke_notify`).
 *
 * Contracts:
 * - DMABUF_GET (op 22) `dmabufGet(fd, { length, openFlags })`: `length` is rounded up to
 *   PAGE_SIZE; 0 or more than 512 pages → EINVAL. The buffer reads as zeros; its fd (installed
 *   in the IommuFd's fd table) is the ioctl's return value.
 * - DMABUF_REVOKE (op 23) `dmabufRevoke(fd, { dmabufFd, revoked })`: an fd that is not open →
 *   EBADF; an open file that is not a dma-buf → EINVAL. Sets the revoked state, then notifies the
 *   importers (`dma_buf_move_notify`). iommufd treats **any** move notification as a revoke: every
 *   pages object imported so far has its IOPTEs zapped from every domain and stays revoked for
 *   good (also after an un-revoke; a new domain maps nothing for it). The area itself stays, so
 *   the test must unmap it and map the dma-buf again (selftest dmabuf_revoke: "Restore the iova
 *   back").
 * - MAP_FILE of a dma-buf: `size <= start + length - 1` (computed modulo 2^64, so length 0 at
 *   start 0 fails too) or `length / PAGE_SIZE >= 65535` → EINVAL; revoked → ENODEV; then as any
 *   map. No pinned-page accounting (account mode none).
 * - Accesses on dma-buf areas (kernel: EINVAL) are not modelled.
 */
import { IotlbGather, Prot } from '@iommulab/driver-api';
import type { PhysMem } from '@iommulab/runtime';
import type { FdTable } from './abi/fd-table.js';
import type { IommufdCtx } from './context.js';
import { fail } from './errors.js';
import { failpoint } from './fail-nth.js';
import { unmapAreaFromDomain } from './io-pagetable/domain-map.js';
import type { IoPagetable, MaybePromise } from './io-pagetable/io-pagetable.js';
import { IoptPages, pagesSpan } from './io-pagetable/pages.js';
import type { Ioas } from './ioas.js';
import { hex, PAGE_SIZE, u32, U64_MAX } from './uapi/u64.js';
import { Memfd } from './user-memory/memfd.js';
import { UserProcess } from './user-memory/process.js';

/** IOMMU_TEST_OP_* numbers of the dma-buf ops. */
export const IOMMU_TEST_OP_DMABUF_GET = 22;
export const IOMMU_TEST_OP_DMABUF_REVOKE = 23;
/** Largest selftest dma-buf, in pages (`PAGE_SIZE * 512`). */
export const DMABUF_MAX_PAGES = 512;
/** `MAX_NPFNS` of pages.c (u16 pfn counts): a dma-buf map must stay below this many pages. */
const MAX_NPFNS = 0xffff;
const PAGE_N = BigInt(PAGE_SIZE);

/** One pages object made from this dma-buf (`pages->dmabuf.attach`). */
interface DmabufImport {
  readonly pages: IoptPages;
  readonly ctx: IommufdCtx;
}

/** Pages objects made from a dma-buf (`pages->type == IOPT_ADDRESS_DMABUF`). */
const dmabufPagesSet = new WeakSet<IoptPages>();

/** True for a pages object imported from a dma-buf (`IOPT_ADDRESS_DMABUF`, not `IOPT_ADDRESS_FILE`). */
export function isDmabufPages(pages: IoptPages): boolean {
  return dmabufPagesSet.has(pages);
}

/** A selftest dma-buf: a zero-filled page store, its `open_flags` and the revoked flag. */
export class DmaBuf {
  /** Size in bytes (a multiple of PAGE_SIZE). */
  readonly size: number;
  /** The `open_flags` it was created with (`O_CLOEXEC`, ...), recorded only. */
  readonly openFlags: number;
  /** @internal The pages (a memfd-like store over the PhysMem). */
  readonly store: Memfd;
  /**
   * @internal The account the model's pin bookkeeping charges for this buffer: the exporter's
   * kernel memory, never the importer (dma-buf maps do no pinned-page accounting, VmPin included).
   */
  readonly exporter: UserProcess;
  private isRevoked = false;
  private open = true;
  private readonly importers = new Set<DmabufImport>();

  private constructor(mem: PhysMem, size: number, openFlags: number) {
    this.size = size;
    this.openFlags = openFlags;
    this.store = Memfd.create(mem, size);
    this.exporter = UserProcess.create({ mem });
  }

  /** `iommufd_test_dmabuf_get` without the fd: EINVAL for a length of 0 or above 512 pages. */
  static create(mem: PhysMem, length: number, openFlags = 0): DmaBuf {
    const len = u32(length, 'length');
    const size = Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
    if (size === 0 || size > PAGE_SIZE * DMABUF_MAX_PAGES) fail('EINVAL', `DMABUF_GET: length ${len} is 0 or above ${DMABUF_MAX_PAGES} pages`);
    return new DmaBuf(mem, size, u32(openFlags, 'open_flags'));
  }

  /** The exporter's revoked state (`priv->revoked`). */
  get revoked(): boolean {
    return this.isRevoked;
  }

  /** False once its last descriptor is closed. */
  get isOpen(): boolean {
    return this.open;
  }

  /** Pages objects of IOAS maps that still hold the buffer. */
  get importCount(): number {
    return this.importers.size;
  }

  /** CPU read of the buffer (the exporter's view). */
  read(offset: number, length: number): Uint8Array {
    return this.store.read(offset, length);
  }

  /** CPU write into the buffer (must stay inside it). */
  write(offset: number, data: Uint8Array): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + data.length > this.size) {
      fail('EINVAL', `DmaBuf.write: [${offset}, +${data.length}) is outside the ${this.size}-byte buffer`);
    }
    this.store.write(offset, data);
  }

  /**
   * `iommufd_test_dmabuf_revoke` after the lookup: sets the state, then `dma_buf_move_notify`:
   * every importer is revoked for good and its IOPTEs are unmapped from every domain.
   */
  async setRevoked(revoked: boolean): Promise<void> {
    this.isRevoked = revoked;
    for (const imp of [...this.importers]) {
      if (imp.pages.revoked) continue;
      imp.pages.revoked = true;
      await zapPages(imp.ctx, imp.pages);
    }
  }

  /** close(2) of the last descriptor: the memory goes once no IOAS map holds the buffer. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.releaseIfUnused();
  }

  /** @internal `iopt_map_dmabuf`: ENODEV when revoked; the pages hold the buffer until released. */
  attach(ctx: IommufdCtx, pages: IoptPages): void {
    if (this.isRevoked) fail('ENODEV', 'IOMMU_IOAS_MAP_FILE: the dma-buf is revoked');
    const imp: DmabufImport = { pages, ctx };
    this.importers.add(imp);
    dmabufPagesSet.add(pages);
    pages.onRelease = () => {
      this.importers.delete(imp);
      this.releaseIfUnused();
    };
  }

  private releaseIfUnused(): void {
    if (!this.open && this.importers.size === 0 && this.store.isOpen) this.store.close();
  }
}

/** `iopt_revoke_notify`: unmaps every area of `pages` from every domain of every IOAS of `ctx`. */
async function zapPages(ctx: IommufdCtx, pages: IoptPages): Promise<void> {
  for (const obj of ctx.objects.objects()) {
    if (obj.type !== 'ioas') continue;
    const iopt: IoPagetable = (obj as Ioas).iopt;
    if (!iopt.domainsSem.tryRead()) await iopt.domainsSem.read();
    try {
      for (const area of iopt.areas) {
        if (area.pagesRef !== pages || !area.filled) continue;
        for (const d of iopt.domains) {
          const g = new IotlbGather();
          unmapAreaFromDomain(d, area, g);
          await d.iotlbSync(g);
        }
      }
    } finally {
      iopt.domainsSem.upRead();
    }
  }
}

/**
 * The dma-buf branch of `iopt_map_file_pages` (`iopt_alloc_dmabuf_pages` + `iopt_map_common`),
 * after ioas.c's flag / overflow / IOAS checks. Returns the IOVA.
 */
export function dmabufMapFile(
  ctx: IommufdCtx,
  iopt: IoPagetable,
  buf: DmaBuf,
  o: { start: bigint; length: bigint; prot: number; iova: bigint | null },
): MaybePromise<bigint> {
  const what = 'IOMMU_IOAS_MAP_FILE';
  const lastByte = (o.start + o.length - 1n) & U64_MAX;
  if (BigInt(buf.size) <= lastByte || o.length / PAGE_N >= BigInt(MAX_NPFNS)) {
    fail('EINVAL', `${what}: [${hex(o.start)}, +${hex(o.length)}) is not inside the ${buf.size}-byte dma-buf`);
  }
  const startDown = o.start - (o.start % PAGE_N);
  const startByte = o.start - startDown;
  const npages = pagesSpan(startByte, o.length);
  failpoint(null, 'iopt.pages_alloc');
  const pages = new IoptPages(
    { kind: 'file', file: buf.store, start: startDown },
    npages,
    (o.prot & Prot.WRITE) !== 0,
    'none',
    buf.exporter,
  );
  buf.attach(ctx, pages);
  return iopt.mapPages([{ pages, startByte, length: o.length }], o.length, o.iova, o.prot);
}

/** IOMMU_TEST_OP_DMABUF_GET: a new dma-buf installed in `files`; `outDmabufFd` is the ioctl's return value. */
export function dmabufGet(
  target: { readonly ctx: IommufdCtx; readonly files: FdTable },
  a: { length: number; openFlags?: number },
): { outDmabufFd: number; dmabuf: DmaBuf } {
  const dmabuf = DmaBuf.create(target.ctx.mem, a.length, a.openFlags ?? 0);
  return { outDmabufFd: target.files.install(dmabuf), dmabuf };
}

/** IOMMU_TEST_OP_DMABUF_REVOKE: EBADF for a closed fd, EINVAL unless it is a dma-buf. */
export async function dmabufRevoke(target: { readonly files: FdTable }, a: { dmabufFd: number; revoked: boolean | number }): Promise<void> {
  const f = target.files.get(a.dmabufFd);
  if (!(f instanceof DmaBuf)) fail('EINVAL', `DMABUF_REVOKE: fd ${a.dmabufFd} is not a dma-buf`);
  await f.setRevoked(typeof a.revoked === 'number' ? a.revoked !== 0 : a.revoked);
}
