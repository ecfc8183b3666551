/**
 * Linux's STE/CD update protocol (`arm_smmu_write_entry`, smmuv3.md §2.6). The hardware may read
 * an entry at any time, one 64-bit dword at a time, so a live entry is changed so that every
 * intermediate state is valid:
 * - no used bit changes → write nothing (only unused bits, which needs no sync);
 * - exactly one dword's used bits change → hitless: write every bit the current entry ignores,
 *   sync, write that critical dword, sync, clear bits now unused, sync;
 * - otherwise → breaking: write dword 0 with V = 0, sync, write dwords 1–7, sync, write dword 0,
 *   sync.
 * A "sync" is the writer's invalidation: CFGI_STE / CFGI_CD for the entry + CMD_SYNC. Each dword
 * is stored with one 64-bit atomic store (`Atomics.store` on a BigInt64Array view).
 */
import type { PhysMem } from '@iommulab/runtime';

/** Dwords of an STE or CD. */
export const ENTRY_DWORDS = 8;
const WORDS = ENTRY_DWORDS * 2;

/** How one kind of entry is written (Linux `arm_smmu_entry_writer_ops`). */
export interface EntryWriter {
  /** The bits of the entry at word `w` of `src` the hardware uses, into `used` (16 words). */
  getUsed(src: Uint32Array, w: number, used: Uint32Array): void;
  /** Makes the hardware drop its cached copy of the entry and waits (CFGI_* + CMD_SYNC). */
  sync(): Promise<void>;
  /**
   * Optional (`get_update_safe` of recent kernels): bits used by both the current entry (at word
   * `w` of `cur`) and `target` whose value may change at any moment without harm, ORed into
   * `safe` (16 words, zeroed by the caller). They are written with the unused bits, so they do
   * not make a dword critical.
   */
  getUpdateSafe?(cur: Uint32Array, w: number, target: Uint32Array, safe: Uint32Array): void;
}

const bigViews = new WeakMap<ArrayBufferLike, BigInt64Array>();

function bigView(mem: PhysMem): BigInt64Array {
  const buf = mem.u32.buffer;
  let v = bigViews.get(buf);
  if (v === undefined) {
    v = new BigInt64Array(buf);
    bigViews.set(buf, v);
  }
  return v;
}

/** Stores dword `i` of `src` (words) over dword `i` of the entry at word `w`, single-copy atomic. */
function storeDword(mem: PhysMem, w: number, i: number, lo: number, hi: number): void {
  const v = BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
  Atomics.store(bigView(mem), (w >>> 1) + i, v);
}

/** Linux `entry_set`: writes dwords [start, start + len) of `target`; syncs if anything changed. */
async function entrySet(mem: PhysMem, w: number, target: Uint32Array, start: number, len: number, writer: EntryWriter, stats: { syncs: number }): Promise<boolean> {
  const u32 = mem.u32;
  let changed = false;
  for (let i = start; i < start + len; i++) {
    const lo = target[2 * i];
    const hi = target[2 * i + 1];
    if (u32[w + 2 * i] !== lo || u32[w + 2 * i + 1] !== hi) {
      storeDword(mem, w, i, lo, hi);
      changed = true;
    }
  }
  if (changed) {
    stats.syncs++;
    await writer.sync();
  }
  return changed;
}

/**
 * `arm_smmu_entry_qword_diff`: fills `unusedUpdate` (the current entry with every bit it does not
 * use replaced by the target's) and returns the bitmask of dwords whose used bits still differ.
 */
export function entryQwordDiff(cur: Uint32Array, w: number, target: Uint32Array, writer: EntryWriter, unusedUpdate: Uint32Array): number {
  const curUsed = new Uint32Array(WORDS);
  const targetUsed = new Uint32Array(WORDS);
  writer.getUsed(cur, w, curUsed);
  writer.getUsed(target, 0, targetUsed);
  if (writer.getUpdateSafe !== undefined) {
    const safe = new Uint32Array(WORDS);
    writer.getUpdateSafe(cur, w, target, safe);
    // Only bits both entries use count as safe; the others are sequenced as unused bits anyway.
    for (let k = 0; k < WORDS; k++) curUsed[k] = (curUsed[k] & ~(safe[k] & targetUsed[k] & curUsed[k])) >>> 0;
  }
  let diff = 0;
  for (let i = 0; i < ENTRY_DWORDS; i++) {
    for (let h = 0; h < 2; h++) {
      const k = 2 * i + h;
      const u = ((cur[w + k] & curUsed[k]) | (target[k] & ~curUsed[k])) >>> 0;
      unusedUpdate[k] = u;
      if (((u & targetUsed[k]) >>> 0) !== target[k] >>> 0) diff |= 1 << i;
    }
  }
  return diff;
}

/**
 * Writes `target` (16 words) over the live entry at word `w` of PhysMem following §2.6, syncing
 * through `writer`. Returns the number of syncs issued (tests compare it with Linux's KUnit
 * expectations, e.g. 2 for bypass → abort).
 */
export async function writeEntry(mem: PhysMem, w: number, target: Uint32Array, writer: EntryWriter): Promise<number> {
  const stats = { syncs: 0 };
  const unusedUpdate = new Uint32Array(WORDS);
  const diff = entryQwordDiff(mem.u32, w, target, writer, unusedUpdate);
  if (diff !== 0 && (diff & (diff - 1)) === 0) {
    // Hitless: one critical dword.
    const critical = 31 - Math.clz32(diff);
    unusedUpdate[2 * critical] = mem.u32[w + 2 * critical];
    unusedUpdate[2 * critical + 1] = mem.u32[w + 2 * critical + 1];
    await entrySet(mem, w, unusedUpdate, 0, ENTRY_DWORDS, writer, stats);
    await entrySet(mem, w, target, critical, 1, writer, stats);
    await entrySet(mem, w, target, 0, ENTRY_DWORDS, writer, stats);
  } else if (diff !== 0) {
    // Breaking: V = 0 first (dword 0 = 0), then dwords 1..7, then dword 0.
    unusedUpdate[0] = 0;
    unusedUpdate[1] = 0;
    await entrySet(mem, w, unusedUpdate, 0, 1, writer, stats);
    await entrySet(mem, w, target, 1, ENTRY_DWORDS - 1, writer, stats);
    await entrySet(mem, w, target, 0, 1, writer, stats);
  } else {
    // No used bit changes: only bits the hardware ignores may differ.
    await entrySet(mem, w, target, 0, ENTRY_DWORDS, writer, stats);
  }
  return stats.syncs;
}
