/**
 * The IOTLB: a direct-mapped cache of IO-page translations, tagged by DOMAIN_ID and IO page
 * number (iova >>> 11), held in typed arrays so a lookup is a few loads and never allocates.
 *
 * Entries stay until invalidated by a command (CMD_INV_ALL / _DOMAIN / _RANGE), exactly as on
 * hardware: unmapping a page in memory does not remove a cached translation. 1 MiB leaves are
 * cached as the 2 KiB IO pages that were used.
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
    return this.page[i] === page && this.dom[i] === dom ? this.pa[i]! + (iova % 2048) : -1;
  }

  /** Number of valid entries (a scan; for tests and stats). */
  count(): number {
    let n = 0;
    for (let i = 0; i < this.entries; i++) if (this.page[i] !== -1) n++;
    return n;
  }

  /** Drops every entry. */
  invalidateAll(): void {
    this.page.fill(-1);
  }

  /** Drops every entry of a domain. */
  invalidateDomain(dom: number): void {
    for (let i = 0; i < this.entries; i++) {
      if (this.page[i] !== -1 && this.dom[i] === dom) {
        this.page[i] = -1;
        this.invalidatedEntries++;
      }
    }
  }

  /** Drops the entries of a domain for IO pages [firstPage, firstPage + count). */
  invalidateRange(dom: number, firstPage: number, count: number): void {
    if (count <= 0) return;
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
