/**
 * Configuration cache (smmuv3.md §4.7, decision §12 #17): decoded STEs per StreamID and, inside
 * each, decoded CDs per SubstreamID. Entries stay (stale) until the matching CMD_CFGI_* — so a
 * driver that forgets an invalidation sees the old configuration, as on real hardware.
 *
 * Only legal, valid structures are cached (a V = 0 / ILLEGAL STE or CD, a failed fetch or an
 * invalid L1 descriptor is looked up again every time), which is always allowed and never hides
 * a driver bug that real hardware would show: software must invalidate after every change of a
 * valid structure.
 *
 * Hot path: StreamIDs below 2^16 index an Int32Array of slots (−1 = not cached); larger ones go
 * through a Map (bounded; the oldest entry is dropped beyond {@link BIG_SID_CAPACITY}).
 */
import { StreamConfig, FastMode, type CdConfig } from './stream-config.js';

/** StreamIDs cached through the typed-array index. */
export const SMALL_SID_LIMIT = 1 << 16;
/** Most cached STEs with StreamID ≥ 2^16. */
export const BIG_SID_CAPACITY = 4096;
/** Most cached CDs per stream. */
export const CDS_PER_STREAM = 4096;

/** Cached STEs (and the CDs below them). */
export class ConfigCache {
  /** Slot of a small StreamID in {@link ConfigCache.slots} (−1: not cached). */
  readonly slotOfSid = new Int32Array(SMALL_SID_LIMIT).fill(-1);
  /** Slot objects (reused after invalidation). */
  readonly slots: StreamConfig[] = [];
  private readonly freeSlots: number[] = [];
  /** Cached STEs of StreamIDs ≥ 2^16. */
  readonly big = new Map<number, StreamConfig>();
  private readonly spare: StreamConfig[] = [];
  /** STEs and CDs dropped by invalidation (stats). */
  invalidatedStes = 0;
  invalidatedCds = 0;

  /** The cached STE of `sid`, or undefined. */
  get(sid: number): StreamConfig | undefined {
    if (sid < SMALL_SID_LIMIT) {
      const s = this.slotOfSid[sid];
      return s < 0 ? undefined : this.slots[s];
    }
    return this.big.get(sid);
  }

  /** A StreamConfig object to decode into (reused when possible); hand it to {@link ConfigCache.insert} or {@link ConfigCache.release}. */
  acquire(): StreamConfig {
    return this.spare.pop() ?? new StreamConfig();
  }

  /** Returns an unused object from {@link ConfigCache.acquire}. */
  release(c: StreamConfig): void {
    c.cds.clear();
    c.fastCd = null;
    this.spare.push(c);
  }

  /** Caches `c` as the STE of `sid` (replacing any entry). */
  insert(sid: number, c: StreamConfig): void {
    if (this.get(sid) !== undefined) {
      this.invalidateSid(sid);
      this.invalidatedStes--; // a replacement, not an invalidation
    }
    if (sid < SMALL_SID_LIMIT) {
      let s = this.freeSlots.pop();
      if (s === undefined) {
        s = this.slots.length;
        this.slots.push(c);
      } else {
        this.slots[s] = c;
      }
      this.slotOfSid[sid] = s;
      return;
    }
    if (this.big.size >= BIG_SID_CAPACITY) {
      const first = this.big.keys().next();
      if (first.done !== true) this.invalidateSid(first.value);
    }
    this.big.set(sid, c);
  }

  /** CFGI_STE: drops the STE of `sid` and every CD below it. */
  invalidateSid(sid: number): void {
    if (sid < SMALL_SID_LIMIT) {
      const s = this.slotOfSid[sid];
      if (s < 0) return;
      this.slotOfSid[sid] = -1;
      this.freeSlots.push(s);
      this.invalidatedStes++;
      this.release(this.slots[s]);
      return;
    }
    const c = this.big.get(sid);
    if (c === undefined) return;
    this.big.delete(sid);
    this.invalidatedStes++;
    this.release(c);
  }

  /** CFGI_STE_RANGE: drops StreamIDs `[start, start + count)`. */
  invalidateRange(start: number, count: number): void {
    const end = start + count;
    if (count >= SMALL_SID_LIMIT && start === 0 && end >= 2 ** 32) {
      this.invalidateAll();
      return;
    }
    const smallEnd = Math.min(end, SMALL_SID_LIMIT);
    for (let sid = start; sid < smallEnd; sid++) if (this.slotOfSid[sid] >= 0) this.invalidateSid(sid);
    if (end > SMALL_SID_LIMIT) {
      for (const sid of [...this.big.keys()]) if (sid >= start && sid < end) this.invalidateSid(sid);
    }
  }

  /** CFGI_ALL: drops everything. */
  invalidateAll(): void {
    for (let sid = 0; sid < SMALL_SID_LIMIT; sid++) if (this.slotOfSid[sid] >= 0) this.invalidateSid(sid);
    for (const sid of [...this.big.keys()]) this.invalidateSid(sid);
  }

  /** Caches CD `cd` for SubstreamID `ssid` below `ste` (0 = the CD used without a SubstreamID). */
  insertCd(ste: StreamConfig, ssid: number, cd: CdConfig): void {
    if (ste.cds.size >= CDS_PER_STREAM && !ste.cds.has(ssid)) {
      const first = ste.cds.keys().next();
      if (first.done !== true) this.dropCd(ste, first.value);
    }
    ste.cds.set(ssid, cd);
  }

  /** CFGI_CD: drops the CD of (sid, ssid). */
  invalidateCd(sid: number, ssid: number): void {
    const ste = this.get(sid);
    if (ste !== undefined) this.dropCd(ste, ssid);
  }

  /** CFGI_CD_ALL: drops every CD of `sid`. */
  invalidateAllCds(sid: number): void {
    const ste = this.get(sid);
    if (ste === undefined) return;
    this.invalidatedCds += ste.cds.size;
    ste.cds.clear();
    this.dropFast(ste);
  }

  private dropCd(ste: StreamConfig, ssid: number): void {
    const cd = ste.cds.get(ssid);
    if (cd === undefined) return;
    ste.cds.delete(ssid);
    this.invalidatedCds++;
    if (ste.fastCd === cd) this.dropFast(ste);
  }

  private dropFast(ste: StreamConfig): void {
    if (ste.fastCd !== null) {
      ste.fastCd = null;
      ste.fastMode = FastMode.SLOW;
    }
  }

  /** Number of cached STEs. */
  get size(): number {
    return this.slots.length - this.freeSlots.length + this.big.size;
  }
}
