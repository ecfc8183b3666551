/**
 * The IOTLB: a direct-mapped cache of IO-page translations, tagged by DOMAIN_ID and IO page
 * number (iova >>> 11), held in typed arrays so a lookup is a few loads and never allocates.
 *
 * Entries stay until invalidated by a command (CMD_INV_ALL / _DOMAIN / _RANGE), exactly as on
 * hardware: unmapping a page in memory does not remove a cached translation.
 *
 * Like CPU TLBs with a separate array per page size, 1 MiB leaves are cached whole in a smaller
 * second array tagged by DOMAIN_ID and iova >>> 20, so one walk serves the whole huge page.
 */

/** Multiplier of the set-index hash (golden ratio, as a signed 32-bit integer). */
const HASH_MUL = -1640531535; // 0x9E3779B1

/** Returns the slot of (page, domain) in an IOTLB with `mask` = entries - 1. */
export function iotlbSlot(page: number, dom: number, mask: number): number {
  return (page ^ Math.imul(dom, HASH_MUL)) & mask;
}

/** The IOTLB storage and its invalidation operations. */
export class Iotlb {
  /** Number of entries (a power of two). */
  readonly entries: number;
  /** entries - 1. */
  readonly mask: number;
  /** Tag: IO page number, -1 when the slot is empty. */
  readonly page: Int32Array;
  /** Tag: DOMAIN_ID. */
  readonly dom: Int32Array;
  /** Output PA of the IO page (2048 aligned). */
  readonly pa: Float64Array;
  /** ACCESS_* bits the cached translation allows (WRITE only once the PTE is dirty, when DIRTY_EN). */
  readonly perm: Uint8Array;
  /** Huge-leaf array: entries (a power of two, entries / 16, at least 16). */
  readonly hugeEntries: number;
  /** hugeEntries - 1. */
  readonly hugeMask: number;
  /** Tag: 1 MiB page number (iova >>> 20), -1 when empty. */
  readonly hugePage: Int32Array;
  /** Tag: DOMAIN_ID. */
  readonly hugeDom: Int32Array;
  /** Output PA of the 1 MiB leaf (1 MiB aligned). */
  readonly hugePa: Float64Array;
  /** ACCESS_* bits the cached huge translation allows. */
  readonly hugePerm: Uint8Array;
  /** Entries removed by domain / range invalidations. */
  invalidatedEntries = 0;

  /** @param entries - a power of two, 1..2^20 */
  constructor(entries: number) {
    if (!Number.isInteger(entries) || entries < 1 || entries > 1 << 20 || (entries & (entries - 1)) !== 0) {
      throw new RangeError(`iotlbEntries ${String(entries)} is not a power of two in 1..2^20`);
    }
    this.entries = entries;
    this.mask = entries - 1;
    this.page = new Int32Array(entries).fill(-1);
    this.dom = new Int32Array(entries);
    this.pa = new Float64Array(entries);
    this.perm = new Uint8Array(entries);
    this.hugeEntries = Math.max(16, entries >>> 4);
    this.hugeMask = this.hugeEntries - 1;
    this.hugePage = new Int32Array(this.hugeEntries).fill(-1);
    this.hugeDom = new Int32Array(this.hugeEntries);
    this.hugePa = new Float64Array(this.hugeEntries);
    this.hugePerm = new Uint8Array(this.hugeEntries);
  }

  /** Fills the huge-leaf slot of (1 MiB page, dom); `pa` is the leaf's 1 MiB-aligned base. */
  insertHuge(hugePage: number, dom: number, pa: number, perm: number): void {
    const i = iotlbSlot(hugePage, dom, this.hugeMask);
    this.hugePage[i] = hugePage;
    this.hugeDom[i] = dom;
    this.hugePa[i] = pa;
    this.hugePerm[i] = perm;
  }

  /** Fills the slot of (page, dom). */
  insert(page: number, dom: number, pa: number, perm: number): void {
    const i = iotlbSlot(page, dom, this.mask);
    this.page[i] = page;
    this.dom[i] = dom;
    this.pa[i] = pa;
    this.perm[i] = perm;
  }

  /** The cached PA for `iova` in `dom` (ignoring permissions), or -1. For tests and debugging. */
  lookup(dom: number, iova: number): number {
    const page = Math.floor(iova / 2048);
    const i = iotlbSlot(page, dom, this.mask);
    if (this.page[i] === page && this.dom[i] === dom) return this.pa[i]! + (iova % 2048);
    const huge = Math.floor(iova / 0x10_0000);
    const h = iotlbSlot(huge, dom, this.hugeMask);
    return this.hugePage[h] === huge && this.hugeDom[h] === dom ? this.hugePa[h]! + (iova % 0x10_0000) : -1;
  }

  /** Number of valid entries (a scan; for tests and stats). */
  count(): number {
    let n = 0;
    for (let i = 0; i < this.entries; i++) if (this.page[i] !== -1) n++;
    for (let i = 0; i < this.hugeEntries; i++) if (this.hugePage[i] !== -1) n++;
    return n;
  }

  /** Drops every entry. */
  invalidateAll(): void {
    this.page.fill(-1);
    this.hugePage.fill(-1);
  }

  /** Drops every entry of a domain. */
  invalidateDomain(dom: number): void {
    for (let i = 0; i < this.entries; i++) {
      if (this.page[i] !== -1 && this.dom[i] === dom) {
        this.page[i] = -1;
        this.invalidatedEntries++;
      }
    }
    for (let i = 0; i < this.hugeEntries; i++) {
      if (this.hugePage[i] !== -1 && this.hugeDom[i] === dom) {
        this.hugePage[i] = -1;
        this.invalidatedEntries++;
      }
    }
  }

  /** Drops the entries of a domain for IO pages [firstPage, firstPage + count), huge leaves included. */
  invalidateRange(dom: number, firstPage: number, count: number): void {
    if (count <= 0) return;
    const firstHuge = Math.floor(firstPage / 512);
    const lastHuge = Math.floor((firstPage + count - 1) / 512);
    for (let i = 0; i < this.hugeEntries; i++) {
      const h = this.hugePage[i]!;
      if (h !== -1 && this.hugeDom[i] === dom && h >= firstHuge && h <= lastHuge) {
        this.hugePage[i] = -1;
        this.invalidatedEntries++;
      }
    }
    if (count < this.entries) {
      for (let k = 0; k < count; k++) {
        const p = firstPage + k;
        const i = iotlbSlot(p, dom, this.mask);
        if (this.page[i] === p && this.dom[i] === dom) {
          this.page[i] = -1;
          this.invalidatedEntries++;
        }
      }
      return;
    }
    const last = firstPage + count - 1;
    for (let i = 0; i < this.entries; i++) {
      const p = this.page[i]!;
      if (p !== -1 && this.dom[i] === dom && p >= firstPage && p <= last) {
        this.page[i] = -1;
        this.invalidatedEntries++;
      }
    }
  }
}
