/**
 * PASID context: fetching, checking and caching PASID-table entries (the mock's CD / PASID
 * entry). Two-level table: a directory of 4096 x 8-byte entries indexed by pasid >> 8, each
 * pointing at a leaf of 256 x 16-byte entries indexed by pasid & 0xff. A small direct-mapped
 * cache keyed by (RID, PASID) holds valid entries until CMD_INV_PASID / CMD_INV_DTE / CMD_INV_ALL.
 */
import type { PhysMem } from '@iommulab/runtime';
import {
  PASID_DIR_RES,
  PASID_DIR_V,
  PASID_DIRTY_EN,
  PASID_ENTRY_BYTES,
  PASID_V,
  join52,
  pasidEntryReservedBitsSet,
} from './codec.js';
import { S } from './status.js';

/** Entries of the PASID cache. */
export const PASID_CACHE_ENTRIES = 1024;
const MASK = PASID_CACHE_ENTRIES - 1;

/** Slot of (rid, pasid) in the PASID cache. */
export function pasidSlot(rid: number, pasid: number): number {
  return (pasid ^ Math.imul(rid, 0x45d9f3b)) & MASK;
}

/** The PASID-entry cache. Fields are typed arrays indexed by slot. */
export class PasidContext {
  /** Tag: RID (-1 = empty slot). */
  readonly rid = new Int32Array(PASID_CACHE_ENTRIES).fill(-1);
  /** Tag: PASID. */
  readonly pasid = new Int32Array(PASID_CACHE_ENTRIES);
  /** Cached entry word0 (V, DIRTY_EN, DOMAIN_ID). */
  readonly w0 = new Int32Array(PASID_CACHE_ENTRIES);
  /** Cached page-table root PA. */
  readonly root = new Float64Array(PASID_CACHE_ENTRIES);
  /** Directory / leaf fetches from memory. */
  fetches = 0;

  constructor(private readonly mem: PhysMem) {}

  /**
   * Fetches the entry of (`rid`, `pasid`) through the directory at `dir`, checks and caches it.
   * @param dirtyOk - the hardware supports DIRTY_EN
   * @returns a packed status (0 = cached at {@link pasidSlot}(rid, pasid))
   */
  load(dir: number, rid: number, pasid: number, dirtyOk: boolean): number {
    const mem = this.mem;
    const u32 = mem.u32;
    const dpa = dir + (pasid >>> 8) * 8;
    if (dpa + 8 > mem.size) return S.PASID_FETCH;
    this.fetches++;
    const d0 = u32[dpa >>> 2]!;
    const d1 = u32[(dpa >>> 2) + 1]!;
    if ((d0 & PASID_DIR_V) === 0) return S.PASID_DIR_INVALID;
    if ((d0 & PASID_DIR_RES) !== 0 || (d1 & 0xfff0_0000) !== 0) return S.PASID_RESERVED;
    const epa = join52(d0 & 0xffff_f000, d1) + (pasid & 0xff) * PASID_ENTRY_BYTES;
    if (epa + PASID_ENTRY_BYTES > mem.size) return S.PASID_FETCH;
    this.fetches++;
    const i = epa >>> 2;
    const w0 = u32[i]!;
    if ((w0 & PASID_V) === 0) return S.PASID_INVALID;
    if (pasidEntryReservedBitsSet(u32, i)) return S.PASID_RESERVED;
    if (!dirtyOk && (w0 & PASID_DIRTY_EN) !== 0) return S.PASID_RESERVED;
    const s = pasidSlot(rid, pasid);
    this.rid[s] = rid;
    this.pasid[s] = pasid;
    this.w0[s] = w0 | 0;
    this.root[s] = join52(u32[i + 2]!, u32[i + 3]!);
    return S.OK;
  }

  /** Drops the cached entry of (rid, pasid). */
  invalidate(rid: number, pasid: number): void {
    const s = pasidSlot(rid, pasid);
    if (this.rid[s] === rid && this.pasid[s] === pasid) this.rid[s] = -1;
  }

  /** Drops every cached entry of `rid`. */
  invalidateRid(rid: number): void {
    for (let s = 0; s < PASID_CACHE_ENTRIES; s++) if (this.rid[s] === rid) this.rid[s] = -1;
  }

  /** Drops every cached entry. */
  invalidateAll(): void {
    this.rid.fill(-1);
  }
}
