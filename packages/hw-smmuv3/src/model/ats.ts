/**
 * PCIe ATS: the devices' Address Translation Caches (smmuv3.md §4.4, §2.1 EATS).
 *
 * The SMMU answers ATS Translation Requests (see SmmuV3Hardware.atsTranslate); a successful
 * answer is cached in the requesting device's ATC, modelled here as one shared table of entries
 * tagged (StreamID, SubstreamID or −1, input range, global). CMD_ATC_INV forwards an
 * invalidation to the device: entries of the StreamID overlapping
 * `[Address aligned down to the span, + 2^(12 + Size))` are dropped, every address when
 * Size = 52 (ATC_INV_SIZE_ALL); SSV = 0 matches every SubstreamID, SSV = 1 only the SSID's
 * entries — plus global entries when Global = 1.
 *
 * Replacement: FIFO over `capacity` entries. Lookups scan linearly (the ATC is a device-side
 * cache, off the SMMU's hot path).
 */

/** Size field meaning "the whole address space" (§4.4). */
const SIZE_ALL = 52;

/** The device-side ATCs. */
export class Atc {
  private readonly sid: Float64Array;
  private readonly ssid: Int32Array;
  private readonly va: Float64Array;
  private readonly size: Float64Array;
  private readonly pa: Float64Array;
  private readonly perm: Uint8Array;
  private readonly global: Uint8Array;
  private readonly valid: Uint8Array;
  private next = 0;
  /** Lookup hits / misses, entries inserted and invalidated (stats). */
  hits = 0;
  misses = 0;
  inserted = 0;
  invalidated = 0;
  /** ATC_INV commands received. */
  invalidations = 0;

  /** @param capacity - entries (all devices together) */
  constructor(readonly capacity = 1024) {
    this.sid = new Float64Array(capacity);
    this.ssid = new Int32Array(capacity);
    this.va = new Float64Array(capacity);
    this.size = new Float64Array(capacity);
    this.pa = new Float64Array(capacity);
    this.perm = new Uint8Array(capacity);
    this.global = new Uint8Array(capacity);
    this.valid = new Uint8Array(capacity);
  }

  /**
   * Caches a translation: `[va, va + size)` → `pa` with `perm` (ACCESS_* bits granted).
   * @param ssid - SubstreamID or −1
   */
  insert(sid: number, ssid: number, va: number, size: number, pa: number, perm: number, global: boolean): void {
    let i = -1;
    for (let k = 0; k < this.capacity; k++) {
      if (this.valid[k] === 1 && this.sid[k] === sid && this.ssid[k] === ssid && this.va[k] === va && this.size[k] === size) {
        i = k;
        break;
      }
    }
    if (i < 0) {
      i = this.next;
      this.next = (i + 1) % this.capacity;
    }
    this.valid[i] = 1;
    this.sid[i] = sid;
    this.ssid[i] = ssid;
    this.va[i] = va;
    this.size[i] = size;
    this.pa[i] = pa;
    this.perm[i] = perm;
    this.global[i] = global ? 1 : 0;
    this.inserted++;
  }

  /**
   * Device-side lookup: the PA of `iova` for (sid, ssid) when cached with every bit of `access`.
   * @returns the PA, or −1 on a miss
   */
  lookup(sid: number, ssid: number, iova: number, access: number): number {
    for (let k = 0; k < this.capacity; k++) {
      if (this.valid[k] !== 1 || this.sid[k] !== sid) continue;
      if (this.ssid[k] !== ssid && !(this.global[k] === 1 && ssid >= 0)) continue;
      const off = iova - this.va[k];
      if (off < 0 || off >= this.size[k]) continue;
      if ((this.perm[k] & access) !== access) continue;
      this.hits++;
      return this.pa[k] + off;
    }
    this.misses++;
    return -1;
  }

  /**
   * CMD_ATC_INV (§4.4).
   * @param sizeField - Size [5:0]: log2 of the number of 4 KiB pages; 52 = everything
   * @returns entries dropped
   */
  invalidate(sid: number, ssv: boolean, ssid: number, global: boolean, address: number, sizeField: number): number {
    this.invalidations++;
    const all = sizeField >= SIZE_ALL;
    const span = all ? 0 : 2 ** (12 + sizeField);
    const start = all ? 0 : address - (address % span);
    const end = start + span;
    let n = 0;
    for (let k = 0; k < this.capacity; k++) {
      if (this.valid[k] !== 1 || this.sid[k] !== sid) continue;
      if (ssv && this.ssid[k] !== ssid && !(global && this.global[k] === 1)) continue;
      if (!all && (this.va[k] + this.size[k] <= start || this.va[k] >= end)) continue;
      this.valid[k] = 0;
      n++;
    }
    this.invalidated += n;
    return n;
  }

  /** Number of valid entries of `sid` (tests). */
  entries(sid: number): number {
    let n = 0;
    for (let k = 0; k < this.capacity; k++) if (this.valid[k] === 1 && this.sid[k] === sid) n++;
    return n;
  }

  /** Drops everything (reset). */
  reset(): void {
    this.valid.fill(0);
    this.next = 0;
  }
}
