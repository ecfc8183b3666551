/**
 * The TLB (smmuv3.md §4.7 invalidation scopes, §8 combined entries): tags (VMID, ASID, global,
 * EL2 world, stage-2-only "no ASID"), entry sizes, every invalidation scope, the TLBI_S2_IPA
 * choice, replacement policies and counters.
 */
import { ACCESS_READ, ACCESS_WRITE, PhysMem } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { newTlbHit, Tlb, TLB_NO_ASID, TLB_VMID_EL2 } from '../src/model/tlb.js';
import { newS1Ctx, newWalkResult, PERM_R, PERM_W, PERM_X, permAllows, Walker } from '../src/model/walk/index.js';
import { S1_NORMAL, Tables } from './helpers/tables.js';

const RW = PERM_R | PERM_W | ((PERM_R | PERM_W) << 3);
const RO = PERM_R | (PERM_R << 3);

function hits(t: Tlb, vmid: number, asid: number, iova: number): number {
  const h = newTlbHit();
  return t.lookup(vmid, asid, iova, h) ? h.pa : -1;
}

describe('Tlb construction', () => {
  it('rejects a capacity that is not a power of two, bad ways, bad policy', () => {
    expect(() => new Tlb(1000)).toThrow(RangeError);
    expect(() => new Tlb(0)).toThrow(RangeError);
    expect(() => new Tlb(64, 'lru', { ways: 3 })).toThrow(RangeError);
    expect(() => new Tlb(64, 'lru', { ways: 128 })).toThrow(RangeError);
    expect(() => new Tlb(64, 'mru' as 'lru')).toThrow(RangeError);
    const t = new Tlb(64, 'fifo', { ways: 8 });
    expect([t.capacity, t.ways, t.sets, t.policy]).toEqual([64, 8, 8, 'fifo']);
  });
});

describe('Tlb tags and sizes', () => {
  it('hit returns PA, permissions and size; other ASID / VMID miss; counters', () => {
    const t = new Tlb(256);
    t.insert(1, 5, 0x7f12_3456_7abc, 12, 0xabc_d000 + 0xabc, RW, false, -1, 0);
    const h = newTlbHit();
    expect(t.lookup(1, 5, 0x7f12_3456_7010, h)).toBe(true);
    expect(h).toEqual({ pa: 0xabc_d010, perm: RW, sizeLog2: 12, global: false });
    expect(hits(t, 1, 6, 0x7f12_3456_7010)).toBe(-1);
    expect(hits(t, 2, 5, 0x7f12_3456_7010)).toBe(-1);
    expect(hits(t, 1, 5, 0x7f12_3456_8010)).toBe(-1);
    expect(t.stats).toMatchObject({ hits: 1, misses: 3, inserts: 1, evictions: 0 });
  });

  it('block entries: any address inside hits; only sizes present are probed', () => {
    const t = new Tlb(256);
    t.insert(0, 1, 0x4020_0000, 21, 0x8000_0000, RO, false, -1, 0);
    t.insert(0, 1, 0x1000, 12, 0x5000, RO, false, -1, 0);
    expect(t.presentSizes()).toEqual([12, 21]);
    const h = newTlbHit();
    expect(t.lookup(0, 1, 0x403f_fff8, h)).toBe(true);
    expect([h.pa, h.sizeLog2]).toEqual([0x801f_fff8, 21]);
    t.invalidateVa(1, 0, 0x4030_0000, 4096);
    expect(t.presentSizes()).toEqual([12]);
    expect(t.count()).toBe(1);
  });

  it('global entries match every ASID of their VMID, but not a stage-2-only lookup', () => {
    const t = new Tlb(256);
    t.insert(3, 5, 0x1000, 12, 0x9000, RO, true, -1, 0);
    const h = newTlbHit();
    expect(t.lookup(3, 77, 0x1004, h)).toBe(true);
    expect([h.pa, h.global]).toEqual([0x9004, true]);
    expect(hits(t, 3, TLB_NO_ASID, 0x1004)).toBe(-1);
    expect(hits(t, 4, 5, 0x1004)).toBe(-1);
  });

  it('stage-2-only entries (TLB_NO_ASID) are separate from stage-1 entries of the same VMID', () => {
    const t = new Tlb(256);
    t.insert(3, TLB_NO_ASID, 0x1000, 12, 0x9000, RW, false, 0x1000, 12);
    expect(hits(t, 3, TLB_NO_ASID, 0x1008)).toBe(0x9008);
    expect(hits(t, 3, 0, 0x1008)).toBe(-1);
  });

  it('re-inserting the same tag refreshes the entry instead of duplicating it', () => {
    const t = new Tlb(256);
    t.insert(1, 1, 0x1000, 12, 0x9000, RO, false, -1, 0);
    t.insert(1, 1, 0x1800, 12, 0xa800, RW, false, -1, 0);
    expect(t.count()).toBe(1);
    const h = newTlbHit();
    expect(t.lookup(1, 1, 0x1000, h)).toBe(true);
    expect([h.pa, h.perm]).toEqual([0xa000, RW]);
  });
});

describe('Tlb invalidation scopes (§4.7)', () => {
  /** One entry of each kind: S1 (vmid 1, asid 1 and 2), global (vmid 1), S2-only (vmid 1), other VMID, EL2. */
  function filled(): Tlb {
    const t = new Tlb(1024);
    t.insert(1, 1, 0x1000, 12, 0x11000, RW, false, -1, 0); // A
    t.insert(1, 2, 0x1000, 12, 0x12000, RW, false, -1, 0); // B
    t.insert(1, 9, 0x2000, 12, 0x13000, RW, true, -1, 0); // G (global)
    t.insert(1, TLB_NO_ASID, 0x1000, 12, 0x14000, RW, false, 0x1000, 12); // S2
    t.insert(2, 1, 0x1000, 12, 0x15000, RW, false, -1, 0); // V2
    t.insert(TLB_VMID_EL2, 1, 0x1000, 12, 0x16000, RW, false, -1, 0); // EL2
    return t;
  }
  function present(t: Tlb): string[] {
    const out: string[] = [];
    if (hits(t, 1, 1, 0x1000) === 0x11000) out.push('A');
    if (hits(t, 1, 2, 0x1000) === 0x12000) out.push('B');
    if (hits(t, 1, 1, 0x2000) === 0x13000) out.push('G');
    if (hits(t, 1, TLB_NO_ASID, 0x1000) === 0x14000) out.push('S2');
    if (hits(t, 2, 1, 0x1000) === 0x15000) out.push('V2');
    if (hits(t, TLB_VMID_EL2, 1, 0x1000) === 0x16000) out.push('EL2');
    return out;
  }

  it('all, NSNH_ALL, EL2_ALL', () => {
    let t = filled();
    expect(present(t)).toEqual(['A', 'B', 'G', 'S2', 'V2', 'EL2']);
    t.invalidateAll();
    expect(present(t)).toEqual([]);
    t = filled();
    t.invalidateNsnhAll();
    expect(present(t)).toEqual(['EL2']);
    t = filled();
    t.invalidateEl2All();
    expect(present(t)).toEqual(['A', 'B', 'G', 'S2', 'V2']);
  });

  it('S12_VMALL drops every entry of the VMID; NH_ALL keeps its stage-2-only entries', () => {
    let t = filled();
    t.invalidateVmid(1);
    expect(present(t)).toEqual(['V2', 'EL2']);
    t = filled();
    t.invalidateNhAll(1);
    expect(present(t)).toEqual(['S2', 'V2', 'EL2']);
  });

  it('NH_ASID drops non-global entries of ASID + VMID only', () => {
    const t = filled();
    t.invalidateAsid(1, 1);
    expect(present(t)).toEqual(['B', 'G', 'S2', 'V2', 'EL2']);
    expect(t.stats.invalidatedEntries).toBe(1);
  });

  it('NH_VA drops the ASID entry and global entries covering the VA; VAA drops every ASID (never stage-2-only)', () => {
    let t = filled();
    t.invalidateVa(1, 1, 0x1abc, 1);
    expect(present(t)).toEqual(['B', 'G', 'S2', 'V2', 'EL2']);
    t.invalidateVa(1, 1, 0x2000, 4096);
    expect(present(t)).toEqual(['B', 'S2', 'V2', 'EL2']);
    t = filled();
    t.invalidateVa(-1, 1, 0, 0x3000);
    expect(present(t)).toEqual(['S2', 'V2', 'EL2']);
    t = filled();
    t.invalidateVa(1, TLB_VMID_EL2, 0x1000, 4096); // EL2_VA
    expect(present(t)).toEqual(['A', 'B', 'G', 'S2', 'V2']);
  });

  it('range invalidation: probe path and scan path give the same result; partial overlap of a block drops it', () => {
    for (const size of [0x20_0000, 2 ** 40]) {
      const t = new Tlb(64);
      t.insert(0, 1, 0x4000_0000, 21, 0x8000_0000, RO, false, -1, 0); // [1 GiB, +2 MiB)
      t.insert(0, 1, 0x4030_0000, 12, 0x9000_0000, RO, false, -1, 0);
      t.insert(0, 1, 0x3fff_f000, 12, 0xa000_0000, RO, false, -1, 0); // just below
      t.invalidateVa(1, 0, 0x401f_f000, size); // last page of the block onwards
      expect([hits(t, 0, 1, 0x4000_0000), hits(t, 0, 1, 0x4030_0000), hits(t, 0, 1, 0x3fff_f000)]).toEqual([-1, -1, 0xa000_0000]);
    }
  });

  it('S2_IPA drops entries whose stage-2 leaf overlaps the IPA range (stage-2-only and combined), of that VMID only', () => {
    const t = new Tlb(256);
    // Combined entry: VA 0x1000 (4 KiB) through the 2 MiB stage-2 leaf at IPA 0x4000_0000.
    t.insert(1, 1, 0x1000, 12, 0x8000_5000, RW, false, 0x4000_0000, 21);
    t.insert(1, 1, 0x3000, 12, 0x9000_0000, RW, false, -1, 0); // stage-1 only
    t.insert(1, TLB_NO_ASID, 0x5000_0000, 12, 0x5000_0000, RW, false, 0x5000_0000, 12);
    t.insert(2, TLB_NO_ASID, 0x4000_0000, 21, 0x4000_0000, RW, false, 0x4000_0000, 21);
    // An IPA in the same stage-2 leaf but not the page the combined entry used.
    t.invalidateIpa(1, 0x401f_f000, 4096);
    expect([hits(t, 1, 1, 0x1000), hits(t, 1, 1, 0x3000), hits(t, 1, TLB_NO_ASID, 0x5000_0000), hits(t, 2, TLB_NO_ASID, 0x4000_0000)]).toEqual([
      -1,
      0x9000_0000,
      0x5000_0000,
      0x4000_0000,
    ]);
    t.invalidateIpa(1, 0x4fff_ffff, 2);
    expect(hits(t, 1, TLB_NO_ASID, 0x5000_0000)).toBe(-1);
    expect(t.stats.invalidations).toBe(2);
  });
});

describe('Tlb replacement policies (one set of 4 ways)', () => {
  function fill(policy: 'lru' | 'fifo' | 'random'): Tlb {
    const t = new Tlb(4, policy, { ways: 4, seed: 7 });
    for (let i = 0; i < 4; i++) t.insert(0, 0, i * 0x1000, 12, 0x10_0000 + i * 0x1000, RO, false, -1, 0);
    return t;
  }
  const alive = (t: Tlb) => [0, 1, 2, 3, 4].map((i) => hits(t, 0, 0, i * 0x1000) >= 0);

  it('fifo evicts the oldest insert even if it was just used', () => {
    const t = fill('fifo');
    hits(t, 0, 0, 0);
    t.insert(0, 0, 0x4000, 12, 0x20_0000, RO, false, -1, 0);
    expect(alive(t)).toEqual([false, true, true, true, true]);
    expect(t.stats.evictions).toBe(1);
  });

  it('lru evicts the least recently used', () => {
    const t = fill('lru');
    hits(t, 0, 0, 0);
    t.insert(0, 0, 0x4000, 12, 0x20_0000, RO, false, -1, 0);
    expect(alive(t)).toEqual([true, false, true, true, true]);
  });

  it('lru order survives the stamp clock wrapping (stamps are halved, order kept)', () => {
    const t = fill('lru');
    (t as unknown as { clock: number }).clock = 0x3fff_fffd;
    hits(t, 0, 0, 0x2000); // stamp 0x3ffffffe
    hits(t, 0, 0, 0x0000); // clock reaches the limit: every stamp halved
    hits(t, 0, 0, 0x3000);
    hits(t, 0, 0, 0x1000);
    t.insert(0, 0, 0x4000, 12, 0x20_0000, RO, false, -1, 0); // LRU is now 0x2000
    expect(alive(t)).toEqual([true, true, false, true, true]);
  });

  it('random evicts exactly one entry of the set, deterministically for a seed', () => {
    const a = fill('random');
    const b = fill('random');
    a.insert(0, 0, 0x4000, 12, 0x20_0000, RO, false, -1, 0);
    b.insert(0, 0, 0x4000, 12, 0x20_0000, RO, false, -1, 0);
    expect(a.count()).toBe(4);
    expect(alive(a)).toEqual(alive(b));
    expect(alive(a).filter(Boolean).length).toBe(4);
  });
});

describe('Tlb + walker: dirty tracking through cached permissions (§7.4 DBM)', () => {
  it('an entry for a clean DBM page does not satisfy a write; after the dirtying walk it does', () => {
    const mem = PhysMem.create(4 << 20);
    const w = new Walker(mem, { httu: 2 });
    const tb = new Tables(mem, { ia: 48 });
    tb.map(0x6000, 0x9000, 3, S1_NORMAL | 0x80 | 0x800, 1 << 19); // RO + DBM, nG
    const c = newS1Ctx({ ttb0: tb.root, epd0: false, ha: true, hd: true, asid: 4 });
    const r = newWalkResult();
    const t = new Tlb(64);
    const h = newTlbHit();
    expect(w.s1(0x6000, 0, ACCESS_READ, true, c, null, r)).toBe(true);
    t.insertWalk(0, 4, r);
    expect(t.lookup(0, 4, 0x6010, h)).toBe(true);
    expect(permAllows(h.perm, ACCESS_READ, true)).toBe(true);
    expect(permAllows(h.perm, ACCESS_WRITE, true)).toBe(false);
    expect(w.s1(0x6010, 0, ACCESS_WRITE, true, c, null, r)).toBe(true);
    t.insertWalk(0, 4, r);
    expect(t.count()).toBe(1);
    expect(t.lookup(0, 4, 0x6020, h)).toBe(true);
    expect(h.pa).toBe(0x9020);
    expect(permAllows(h.perm, ACCESS_WRITE, true)).toBe(true);
    expect(h.perm).toBe(PERM_R | PERM_W | PERM_X);
  });
});
