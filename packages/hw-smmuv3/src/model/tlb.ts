/**
 * The SMMU's TLB (smmuv3.md §4.7): a set-associative cache of translations held in typed arrays.
 *
 * Tags (every entry):
 * - **VMID tag**: the stream's S2VMID (0..65535) in the Non-secure EL1 world, or
 *   {@link TLB_VMID_EL2} for streams with STRW = EL2 (EL2 entries carry no VMID);
 * - **ASID tag**: the CD's ASID (0..65535); {@link TLB_NO_ASID} for stage-2-only translations
 *   (STE Config S2, or stage 1 bypassed by S1DSS); entries from a global leaf (nG = 0) match any
 *   ASID of their VMID tag (but never a stage-2-only lookup);
 * - **input page**: `floor(iova / 2^size)` at the entry's size (input addresses below 2^53).
 * Data: output base PA, packed permissions (privileged R/W/X in [2:0], unprivileged in [5:3]; W is
 * cached only for dirty pages, so a write to a clean DBM page misses and is walked), and for
 * entries that went through stage 2 the IPA range of the stage-2 leaf (for TLBI_S2_IPA).
 *
 * Lookup probes one set per entry size present in the TLB (a short list kept up to date), so a hit
 * costs a few loads. Nothing allocates after construction.
 *
 * ⚠ TLBI_S2_IPA choice: entries are tagged with the stage-2 leaf they were translated through
 * (IPA base + size); TLBI_S2_IPA drops every entry of the VMID whose stage-2 leaf overlaps the
 * IPA range — stage-2-only and combined (nested) entries alike. This is more than the
 * architecture requires for combined entries (Linux follows a nesting-parent change with a
 * VMID-wide stage-1 flush anyway) and never leaves a combined entry built on an invalidated
 * stage-2 leaf.
 */
import type { TlbPolicy } from './features.js';
import { newWalkResult, type WalkResult } from './walk/walk-context.js';

/** ASID tag of stage-2-only entries (no stage 1). */
export const TLB_NO_ASID = 0x10000;
/** VMID tag of the EL2 (STRW = EL2) world. */
export const TLB_VMID_EL2 = 0x10000;
/** Internal ASID tag of global (nG = 0) stage-1 entries. */
const ASID_GLOBAL = 0x20000;
/** Key of an empty slot. */
const EMPTY = -1;
/** Buckets of the per-(VMID, ASID tag) and per-VMID occupancy counters (a power of two). */
const OCC_BUCKETS = 4096;
const OCC_MASK = OCC_BUCKETS - 1;

/** Occupancy bucket of (VMID tag, ASID tag): distinct tags may share one (counts are conservative). */
function tagBucket(vmid: number, asidTag: number): number {
  return Math.imul(asidTag ^ Math.imul(vmid, 0x27d4eb2d), -1640531535) >>> 20;
}

export type { TlbPolicy };

/** Construction options beyond capacity and policy. */
export interface TlbOptions {
  /** Associativity (a power of two dividing the capacity; default min(4, capacity)). */
  ways?: number;
  /** Seed of the 'random' policy's generator (default 0x2545f491). */
  seed?: number;
}

/** What a hit returns (preallocate with {@link newTlbHit} and reuse). */
export interface TlbHit {
  /** Output PA of the looked-up address. */
  pa: number;
  /** Packed permissions (privileged [2:0], unprivileged [5:3]); check with `permAllows`. */
  perm: number;
  /** log2 of the entry's size. */
  sizeLog2: number;
  /** The entry came from a global (nG = 0) leaf. */
  global: boolean;
}

/** A new hit record. */
export function newTlbHit(): TlbHit {
  return { pa: 0, perm: 0, sizeLog2: 0, global: false };
}

/**
 * An invalidation range, handed over in an object (preallocate with {@link newTlbRange} and
 * reuse): passing addresses ≥ 2^31 (heap numbers) to a non-inlined call allocates on every call.
 */
export interface TlbRange {
  /** First byte (a non-negative integer). */
  start: number;
  /** Bytes (at least 1 is used). */
  bytes: number;
}

/** A new range record. */
export function newTlbRange(): TlbRange {
  return { start: 0, bytes: 0 };
}

/** TLB counters. */
export interface TlbStats {
  /** Lookups that hit. */
  hits: number;
  /** Lookups that missed. */
  misses: number;
  /** Entries inserted (including replacements of an identical tag). */
  inserts: number;
  /** Valid entries displaced by an insert. */
  evictions: number;
  /** Invalidation operations performed. */
  invalidations: number;
  /** Entries removed by invalidations. */
  invalidatedEntries: number;
}

const INV32 = 2 ** -32;
/** LRU/FIFO stamps are int32: halve them all when the clock reaches this. */
const CLOCK_MAX = 0x3fff_ffff;
const POW = new Float64Array(64);
const INV = new Float64Array(64);
for (let i = 0; i < 64; i++) {
  POW[i] = 2 ** i;
  INV[i] = 2 ** -i;
}

/**
 * Set-associative, typed-array TLB (see the module comment for tags and invalidation scopes).
 *
 * Storage: one 32-byte record per entry in a single buffer (so a set of 4 ways is two cache
 * lines): float64 [0] input page, [1] output PA of the entry base; int32 [4] key (VMID tag |
 * size << 18, −1 when empty), [5] ASID tag, [6] permissions | stage-2 leaf size << 8, [7] stamp.
 * The stage-2 leaf base (only read by TLBI_S2_IPA) is kept apart.
 */
export class Tlb {
  /** Number of entries (a power of two). */
  readonly capacity: number;
  /** Entries per set. */
  readonly ways: number;
  /** Number of sets (capacity / ways). */
  readonly sets: number;
  /** Replacement policy within a set. */
  readonly policy: TlbPolicy;
  /** Counters. */
  readonly stats: TlbStats = { hits: 0, misses: 0, inserts: 0, evictions: 0, invalidations: 0, invalidatedEntries: 0 };

  private readonly setShift: number;
  private readonly setMask: number;
  private readonly lru: boolean;
  private readonly rnd: boolean;
  /** Entry records as float64 (index entry*4 + 0/1). */
  private readonly f64: Float64Array;
  /** Entry records as int32 (index entry*8 + 4..7). */
  private readonly i32: Int32Array;
  /** IPA base of the stage-2 leaf (entries through stage 2). */
  private readonly s2Base: Float64Array;
  private clock = 0;
  private rng: number;
  /** Valid entries per size. */
  private readonly sizeCount = new Int32Array(64);
  /** Sizes present, ascending, `nSizes` of them. */
  private readonly sizeList = new Int32Array(64);
  private nSizes = 0;
  /**
   * Valid entries per {@link tagBucket} of (VMID tag, ASID tag), and per VMID tag & OCC_MASK: a
   * zero count proves no entry of those tags is present, so a VA invalidation can skip its probes.
   */
  private readonly tagCount = new Int32Array(OCC_BUCKETS);
  private readonly vmidCount = new Int32Array(OCC_BUCKETS);
  /** insert()'s arguments, handed to insertWalk (reused: insert allocates nothing). */
  private readonly insertArgs: WalkResult = newWalkResult();
  /** invalidateVa()'s range, handed to invalidateVaRange. */
  private readonly vaArgs: TlbRange = newTlbRange();

  /**
   * @param capacity - entries, a power of two in 1..2^22
   * @param policy - victim choice within a full set: 'lru' (least recently hit), 'fifo' (oldest
   *   insert) or 'random'
   * @throws RangeError for a bad capacity, policy or associativity (configuration, not guest input)
   */
  constructor(capacity: number, policy: TlbPolicy = 'lru', opts: TlbOptions = {}) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 22 || (capacity & (capacity - 1)) !== 0) {
      throw new RangeError(`TLB capacity ${String(capacity)} is not a power of two in 1..2^22`);
    }
    if (policy !== 'lru' && policy !== 'fifo' && policy !== 'random') {
      throw new RangeError(`TLB policy ${String(policy)} is not 'lru', 'fifo' or 'random'`);
    }
    const ways = opts.ways ?? Math.min(4, capacity);
    if (!Number.isInteger(ways) || ways < 1 || ways > capacity || (ways & (ways - 1)) !== 0) {
      throw new RangeError(`TLB ways ${String(ways)} is not a power of two in 1..${capacity}`);
    }
    this.capacity = capacity;
    this.ways = ways;
    this.sets = capacity / ways;
    this.policy = policy;
    this.lru = policy === 'lru';
    this.rnd = policy === 'random';
    this.rng = (opts.seed ?? 0x2545f491) | 0 || 1;
    const log2 = Math.round(Math.log2(this.sets));
    this.setShift = 32 - log2;
    this.setMask = this.sets - 1;
    const buf = new ArrayBuffer(capacity * 32);
    this.f64 = new Float64Array(buf);
    this.i32 = new Int32Array(buf);
    for (let e = 0; e < capacity; e++) {
      this.f64[e * 4] = -1;
      this.i32[e * 8 + 4] = EMPTY;
    }
    this.s2Base = new Float64Array(capacity);
  }

  /** First entry of the set of (page, key). */
  private setOf(page: number, key: number): number {
    const h = Math.imul((page | 0) ^ Math.imul(key, 0x27d4eb2d) ^ ((page * INV32) | 0), -1640531535);
    return ((h >>> this.setShift) & this.setMask) * this.ways;
  }

  /**
   * Looks up `iova` for a stream with the given tags. Permissions are not checked here: the
   * caller tests `out.perm` (`permAllows`) and walks when the access is not covered (a clean DBM
   * page is cached without W, so its first write is walked and dirties the descriptor).
   * @param vmid - VMID tag (S2VMID, or TLB_VMID_EL2)
   * @param asid - ASID tag (CD.ASID, or TLB_NO_ASID for stage-2-only translation)
   * @param iova - input address (VA or IPA), a non-negative integer below 2^53
   * @returns true on a hit (`out` filled)
   */
  lookup(vmid: number, asid: number, iova: number, out: TlbHit): boolean {
    const n = this.nSizes;
    const f = this.f64;
    const w = this.i32;
    for (let k = 0; k < n; k++) {
      const s = this.sizeList[k];
      const page = Math.floor(iova * INV[s]);
      const key = vmid | (s << 18);
      const first = this.setOf(page, key);
      const end = first + this.ways;
      for (let e = first; e < end; e++) {
        const b = e << 3;
        if (w[b + 4] === key && f[e << 2] === page) {
          const a = w[b + 5];
          if (a === asid || (a === ASID_GLOBAL && asid !== TLB_NO_ASID)) {
            out.pa = f[(e << 2) + 1] + (iova - page * POW[s]);
            out.perm = w[b + 6] & 0xff;
            out.sizeLog2 = s;
            out.global = a === ASID_GLOBAL;
            if (this.lru) w[b + 7] = this.tick();
            this.stats.hits++;
            return true;
          }
        }
      }
    }
    this.stats.misses++;
    return false;
  }

  /** Next stamp (int32), halving every stamp when the clock gets large (order is kept). */
  private tick(): number {
    const c = ++this.clock;
    if (c < CLOCK_MAX) return c;
    const w = this.i32;
    for (let e = 0; e < this.capacity; e++) w[e * 8 + 7] >>= 1;
    this.clock = (CLOCK_MAX >> 1) + 1; // above every halved stamp
    return this.clock;
  }

  /**
   * Inserts (or refreshes) a translation. Input addresses must be below 2^53 (the pipeline
   * caches only those).
   * @param vmid - VMID tag (0..0xffff, or TLB_VMID_EL2)
   * @param asid - ASID tag (ignored for `global` entries, which match every ASID but TLB_NO_ASID)
   * @param iova - any input address inside the entry
   * @param sizeLog2 - log2 of the entry size (12..52)
   * @param pa - output PA of `iova`
   * @param permAll - packed permissions
   * @param global - nG = 0 leaf
   * @param s2Base - IPA base of the stage-2 leaf, or -1 when stage 2 was not involved
   * @param s2SizeLog2 - log2 size of the stage-2 leaf (0 when none)
   */
  insert(
    vmid: number,
    asid: number,
    iova: number,
    sizeLog2: number,
    pa: number,
    permAll: number,
    global: boolean,
    s2Base: number,
    s2SizeLog2: number,
  ): void {
    const r = this.insertArgs;
    r.inAddr = iova;
    r.sizeLog2 = sizeLog2;
    r.pa = pa;
    r.permAll = permAll;
    r.global = global;
    r.s2Base = s2Base;
    r.s2SizeLog2 = s2SizeLog2;
    this.insertWalk(vmid, asid, r);
  }

  /**
   * Inserts the result `r` of a successful walk of `r.inAddr` (tags as for {@link Tlb.insert}; the
   * fields read are those insert() takes). The one implementation of insert(): every address
   * (input, PA, stage-2 base) is read from `r` here, as passing addresses ≥ 2^31 (heap numbers)
   * to a non-inlined call would allocate on every walk.
   */
  insertWalk(vmid: number, asid: number, r: WalkResult): void {
    const iova = r.inAddr;
    const s = r.sizeLog2;
    const page = Math.floor(iova * INV[s]);
    const key = vmid | (s << 18);
    const tag = r.global && asid !== TLB_NO_ASID ? ASID_GLOBAL : asid;
    const f = this.f64;
    const w = this.i32;
    const first = this.setOf(page, key);
    const end = first + this.ways;
    let slot = -1;
    let free = -1;
    for (let e = first; e < end; e++) {
      const k = w[(e << 3) + 4];
      if (k === EMPTY) {
        if (free < 0) free = e;
      } else if (k === key && f[e << 2] === page && w[(e << 3) + 5] === tag) {
        slot = e;
        break;
      }
    }
    if (slot < 0) {
      if (free >= 0) {
        slot = free;
        this.addSize(s);
      } else {
        slot = this.victim(first);
        this.stats.evictions++;
        const vk = w[(slot << 3) + 4];
        this.uncount(vk & 0x3ffff, w[(slot << 3) + 5]);
        // Same size: the size counts and list are unchanged (no rebuild on remove + add).
        const vs = vk >>> 18;
        if (vs !== s) {
          this.removeSize(vs);
          this.addSize(s);
        }
      }
      this.tagCount[tagBucket(vmid, tag)]++;
      this.vmidCount[vmid & OCC_MASK]++;
    }
    const b = slot << 3;
    f[slot << 2] = page;
    f[(slot << 2) + 1] = r.pa - (iova - page * POW[s]);
    w[b + 4] = key;
    w[b + 5] = tag;
    const s2SizeLog2 = r.s2SizeLog2;
    const withS2 = s2SizeLog2 > 0 && r.s2Base >= 0;
    w[b + 6] = (r.permAll & 0xff) | (withS2 ? s2SizeLog2 << 8 : 0);
    w[b + 7] = this.tick();
    this.s2Base[slot] = withS2 ? r.s2Base : 0;
    this.stats.inserts++;
  }

  private victim(first: number): number {
    const ways = this.ways;
    if (this.rnd) {
      let x = this.rng;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.rng = x;
      return first + ((x >>> 0) & (ways - 1));
    }
    const w = this.i32;
    let best = first;
    let bestStamp = w[(first << 3) + 7];
    for (let e = first + 1; e < first + ways; e++) {
      const st = w[(e << 3) + 7];
      if (st < bestStamp) {
        bestStamp = st;
        best = e;
      }
    }
    return best;
  }

  /** Takes an entry of (vmid, asid tag) off the occupancy counters. */
  private uncount(vmid: number, asidTag: number): void {
    this.tagCount[tagBucket(vmid, asidTag)]--;
    this.vmidCount[vmid & OCC_MASK]--;
  }

  private addSize(s: number): void {
    if (this.sizeCount[s]++ === 0) this.rebuildSizes();
  }

  private removeSize(s: number): void {
    if (--this.sizeCount[s] === 0) this.rebuildSizes();
  }

  private rebuildSizes(): void {
    let n = 0;
    for (let s = 0; s < 64; s++) if (this.sizeCount[s] > 0) this.sizeList[n++] = s;
    this.nSizes = n;
  }

  /** Key of entry `e` (EMPTY when free). */
  private keyOf(e: number): number {
    return this.i32[(e << 3) + 4];
  }

  private drop(e: number): void {
    const k = this.i32[(e << 3) + 4];
    const s = k >>> 18;
    this.uncount(k & 0x3ffff, this.i32[(e << 3) + 5]);
    this.i32[(e << 3) + 4] = EMPTY;
    this.f64[e << 2] = -1;
    this.stats.invalidatedEntries++;
    this.removeSize(s);
  }

  /** Number of valid entries (a scan; for tests and stats). */
  count(): number {
    let n = 0;
    for (let e = 0; e < this.capacity; e++) if (this.keyOf(e) !== EMPTY) n++;
    return n;
  }

  /** The sizes (log2) currently present, ascending (for tests and stats; allocates). */
  presentSizes(): number[] {
    return Array.from(this.sizeList.subarray(0, this.nSizes));
  }

  // ------------------------------------------------------------------ invalidation (§4.7)

  /** Drops every entry (reset, or any command the model treats as "everything"). */
  invalidateAll(): void {
    this.stats.invalidations++;
    for (let e = 0; e < this.capacity; e++) if (this.keyOf(e) !== EMPTY) this.drop(e);
  }

  /** TLBI_NSNH_ALL: every Non-secure, non-EL2 entry. */
  invalidateNsnhAll(): void {
    this.stats.invalidations++;
    for (let e = 0; e < this.capacity; e++) {
      const k = this.keyOf(e);
      if (k !== EMPTY && (k & 0x3ffff) < TLB_VMID_EL2) this.drop(e);
    }
  }

  /** TLBI_EL2_ALL: every EL2-world entry. */
  invalidateEl2All(): void {
    this.stats.invalidations++;
    for (let e = 0; e < this.capacity; e++) {
      const k = this.keyOf(e);
      if (k !== EMPTY && (k & 0x3ffff) === TLB_VMID_EL2) this.drop(e);
    }
  }

  /** TLBI_S12_VMALL(VMID): every stage-1, stage-2 and combined entry of the VMID tag. */
  invalidateVmid(vmid: number): void {
    this.stats.invalidations++;
    for (let e = 0; e < this.capacity; e++) {
      const k = this.keyOf(e);
      if (k !== EMPTY && (k & 0x3ffff) === vmid) this.drop(e);
    }
  }

  /** TLBI_NH_ALL(VMID): every stage-1 and combined entry of the VMID tag (not stage-2-only ones). */
  invalidateNhAll(vmid: number): void {
    this.stats.invalidations++;
    for (let e = 0; e < this.capacity; e++) {
      const k = this.keyOf(e);
      if (k !== EMPTY && (k & 0x3ffff) === vmid && this.i32[(e << 3) + 5] !== TLB_NO_ASID) this.drop(e);
    }
  }

  /**
   * TLBI_NH_ASID(ASID, VMID) / TLBI_EL2_ASID (vmid = TLB_VMID_EL2): non-global entries with that
   * ASID and VMID tag.
   */
  invalidateAsid(asid: number, vmid: number): void {
    this.stats.invalidations++;
    for (let e = 0; e < this.capacity; e++) {
      const k = this.keyOf(e);
      if (k !== EMPTY && (k & 0x3ffff) === vmid && this.i32[(e << 3) + 5] === asid) this.drop(e);
    }
  }

  /**
   * TLBI_NH_VA / TLBI_EL2_VA (asid ≥ 0): entries of the VMID tag with that ASID, plus global
   * entries, overlapping [va, va + size); TLBI_NH_VAA / TLBI_EL2_VAA (asid = -1): entries of any
   * ASID of the VMID tag overlapping the range. Stage-2-only entries are never affected. Leaf/TTL
   * hints are not needed: every entry overlapping the range goes. Probes the sets of the pages
   * in range when that is cheaper than scanning the whole TLB.
   * @param size - bytes (at least 1 is used)
   */
  invalidateVa(asid: number, vmid: number, va: number, size: number): void {
    const r = this.vaArgs;
    r.start = va;
    r.bytes = size;
    this.invalidateVaRange(asid, vmid, r);
  }

  /**
   * {@link Tlb.invalidateVa} of the range `r` ([r.start, r.start + r.bytes)); the one
   * implementation, which reads the addresses from `r` so that the command path allocates nothing.
   */
  invalidateVaRange(asid: number, vmid: number, r: TlbRange): void {
    const va = r.start;
    const size = r.bytes;
    this.stats.invalidations++;
    const n = this.nSizes;
    if (n === 0) return;
    // Nothing of that VMID (VAA) / of that ASID nor global in that VMID (VA): nothing to drop.
    if (asid < 0) {
      if (this.vmidCount[vmid & OCC_MASK] === 0) return;
    } else if (this.tagCount[tagBucket(vmid, asid)] === 0 && this.tagCount[tagBucket(vmid, ASID_GLOBAL)] === 0) return;
    const f = this.f64;
    const w = this.i32;
    const list = this.sizeList;
    const ways = this.ways;
    // One address (TG = 0): one page, so one probe, per size present.
    const single = !(size > 1);
    const endVa = va + (single ? 1 : size);
    let probes = n;
    if (!single) {
      probes = 0;
      for (let k = 0; k < n; k++) {
        const s = list[k];
        probes += Math.floor((endVa - 1) * INV[s]) - Math.floor(va * INV[s]) + 1;
      }
    }
    if (probes <= this.sets) {
      // Downwards: drop() may rebuild the list, which only shifts sizes above index k.
      for (let k = n - 1; k >= 0; k--) {
        const s = list[k];
        const key = vmid | (s << 18);
        let p = Math.floor(va * INV[s]);
        const last = single ? p : Math.floor((endVa - 1) * INV[s]);
        for (; p <= last; p++) {
          const first = this.setOf(p, key);
          const end = first + ways;
          for (let e = first; e < end; e++) {
            if (w[(e << 3) + 4] === key && f[e << 2] === p && vaAsidMatch(w[(e << 3) + 5], asid)) this.drop(e);
          }
        }
      }
      return;
    }
    for (let e = 0; e < this.capacity; e++) {
      const k = w[(e << 3) + 4];
      if (k === EMPTY || (k & 0x3ffff) !== vmid || !vaAsidMatch(w[(e << 3) + 5], asid)) continue;
      const s = k >>> 18;
      const start = f[e << 2] * POW[s];
      if (start < endVa && va < start + POW[s]) this.drop(e);
    }
  }

  /**
   * TLBI_S2_IPA(VMID, IPA range): every entry of the VMID (NS-EL1 world) whose stage-2 leaf
   * overlaps [ipa, ipa + size) — stage-2-only and combined entries (see the module comment).
   * @param size - bytes (at least 1 is used)
   */
  invalidateIpa(vmid: number, ipa: number, size: number): void {
    this.stats.invalidations++;
    const end = ipa + (size >= 1 ? size : 1);
    const w = this.i32;
    for (let e = 0; e < this.capacity; e++) {
      const k = w[(e << 3) + 4];
      if (k === EMPTY || (k & 0x3ffff) !== vmid) continue;
      const ss = w[(e << 3) + 6] >>> 8;
      if (ss === 0) continue;
      const b = this.s2Base[e];
      if (b < end && ipa < b + POW[ss]) this.drop(e);
    }
  }
}

/** Whether an entry's ASID tag is hit by a VA invalidation for `asid` (−1: any ASID, i.e. VAA). */
function vaAsidMatch(tag: number, asid: number): boolean {
  if (tag === TLB_NO_ASID) return false;
  return asid < 0 || tag === asid || tag === ASID_GLOBAL;
}
