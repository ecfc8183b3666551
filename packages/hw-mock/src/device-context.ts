/**
 * Device context: fetching, checking and caching device-table entries (the mock's STE / context
 * entry). The cache holds one entry per RID (up to 2^16) until CMD_INV_DTE / CMD_INV_ALL; only
 * valid, well-formed entries are cached, so a fixed DTE is seen once it has been invalidated.
 */
import type { PhysMem } from '@iommulab/runtime';
import { DTE_BYTES, DTE_DIRTY_EN, DTE_PASID_EN, DTE_PRI_EN, DTE_V, dteReservedBitsSet, join52 } from './codec.js';
import { S } from './status.js';

/** Largest number of RIDs the model decodes (DT_LOG2 <= 16). */
export const MAX_RIDS = 1 << 16;

/** The DTE cache. Fields are typed arrays indexed by RID (hot-path reads go straight to them). */
export class DeviceContext {
  /** 1 when the RID's DTE is cached. */
  readonly cached = new Uint8Array(MAX_RIDS);
  /** Cached DTE word0. */
  readonly w0 = new Int32Array(MAX_RIDS);
  /** Cached page-table root PA. */
  readonly root = new Float64Array(MAX_RIDS);
  /** Cached PASID directory PA. */
  readonly pasidDir = new Float64Array(MAX_RIDS);
  /** DTE fetches from memory. */
  fetches = 0;

  constructor(private readonly mem: PhysMem) {}

  /**
   * Fetches the DTE of `rid` from the table at `dtBase`, checks it and caches it.
   * @param features - DTE bits the hardware supports among PASID_EN / DIRTY_EN / PRI_EN
   * @returns a packed status (0 = cached and valid)
   */
  load(dtBase: number, rid: number, features: number): number {
    const pa = dtBase + rid * DTE_BYTES;
    const mem = this.mem;
    if (pa + DTE_BYTES > mem.size) return S.DTE_FETCH;
    this.fetches++;
    const u32 = mem.u32;
    const i = pa >>> 2;
    const w0 = u32[i]!;
    if ((w0 & DTE_V) === 0) return S.DTE_INVALID;
    if (dteReservedBitsSet(u32, i)) return S.DTE_RESERVED;
    if ((w0 & (DTE_PASID_EN | DTE_DIRTY_EN | DTE_PRI_EN) & ~features) !== 0) return S.DTE_FEATURE;
    this.w0[rid] = w0 | 0;
    this.root[rid] = join52(u32[i + 2]!, u32[i + 3]!);
    this.pasidDir[rid] = join52(u32[i + 4]!, u32[i + 5]!);
    this.cached[rid] = 1;
    return S.OK;
  }

  /** Drops the cached DTE of `rid` (no-op for RIDs out of range). */
  invalidate(rid: number): void {
    if (rid >= 0 && rid < MAX_RIDS) this.cached[rid] = 0;
  }

  /** Drops every cached DTE. */
  invalidateAll(): void {
    this.cached.fill(0);
  }
}
