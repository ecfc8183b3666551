/**
 * Stage-1 walks (smmuv3.md §7.1–§7.4): granules, start levels, descriptor types, region selection
 * with TBI, address-size faults, access flag, permissions and hierarchical attributes. Tables are
 * hand-built (test/helpers/tables.ts); every assertion is an exact value.
 */
import { ACCESS_EXEC, ACCESS_READ, ACCESS_WRITE, PhysMem } from '@iommulab/runtime';
import { beforeEach, describe, expect, it } from 'vitest';
import { EvtClass, EvtId } from '../src/codec/index.js';
import {
  newS1Ctx,
  newWalkResult,
  PERM_R,
  PERM_W,
  PERM_X,
  Walker,
  type S1Ctx,
  type WalkResult,
} from '../src/model/walk/index.js';
import { readDesc, S1_NORMAL, Tables } from './helpers/tables.js';

const MiB = 1 << 20;
const AP_UNPRIV = 0x40;
const AP_RDONLY = 0x80;
const NG = 0x800;
const AF = 0x400;
const PXN = 1 << 21; // bit 53 in the high word
const UXN = 1 << 22; // bit 54
const DBM = 1 << 19; // bit 51

let mem: PhysMem;
let w: Walker;
let r: WalkResult;

beforeEach(() => {
  mem = PhysMem.create(64 * MiB);
  w = new Walker(mem, { httu: 2 });
  r = newWalkResult();
});

function ctx(t: Tables, init: Partial<S1Ctx> = {}): S1Ctx {
  return newS1Ctx({ ttb0: t.root, t0sz: 64 - t.ia, g0: t.g as 12 | 14 | 16, epd0: false, epd1: true, oaBits: 48, ...init });
}

/** IHI 0070 §7.3.13: a stage-1 fault is S2 = 0, CLASS = IN (IPA UNKNOWN, 0 here); §7.3.12: a stage-1 F_WALK_EABT is CLASS = TT. */
function expectS1Fault(res: WalkResult, id: number, fetchAddr = 0): void {
  expect(res.ok).toBe(false);
  expect({ fault: res.fault, s2: res.s2, cls: res.cls, ipa: res.ipa, fetchAddr: res.fetchAddr, ttrnw: res.ttrnw }).toEqual({
    fault: id,
    s2: false,
    cls: id === EvtId.F_WALK_EABT ? EvtClass.TT : EvtClass.IN,
    ipa: 0,
    fetchAddr,
    ttrnw: false,
  });
}

describe('§7.1 granules, levels and leaf sizes (stage 1)', () => {
  it('4 KiB, 48-bit VA: 4-level page walk → exact PA, size, level, steps, nG', () => {
    const t = new Tables(mem, { ia: 48 });
    const va = 0x7f12_3456_7000;
    t.map(va, 0x0234_5000, 3, S1_NORMAL | NG | AP_UNPRIV);
    expect(w.s1(va + 0x123, 0, ACCESS_READ, false, ctx(t), null, r)).toBe(true);
    expect(r).toMatchObject({ ok: true, pa: 0x0234_5123, sizeLog2: 12, level: 3, walkSteps: 4, global: false, fault: 0, ipaOut: 0x0234_5123, s2Base: -1 });
    // AP = 01: RW for both, exec forbidden at privileged level (unprivileged-writable implies PXN).
    expect(r.permAll).toBe(PERM_R | PERM_W | ((PERM_R | PERM_W | PERM_X) << 3));
    expect(r.perm).toBe(PERM_R | PERM_W | PERM_X);
  });

  it('4 KiB blocks: 1 GiB at level 1 and 2 MiB at level 2, global when nG = 0', () => {
    const t = new Tables(mem, { ia: 48 });
    t.map(0x40_0000_0000, 0x4000_0000, 1, S1_NORMAL);
    t.map(0x80_0020_0000, 0x0060_0000, 2, S1_NORMAL | NG);
    expect(w.s1(0x40_1234_5678, 0, ACCESS_READ, true, ctx(t), null, r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x5234_5678, sizeLog2: 30, level: 1, walkSteps: 2, global: true });
    expect(w.s1(0x80_003f_fff8, 0, ACCESS_READ, true, ctx(t), null, r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x007f_fff8, sizeLog2: 21, level: 2, walkSteps: 3, global: false });
  });

  it('start levels from T0SZ (4 KiB): IA 39 → level 1 (3 steps), IA 32 → level 1 with 4 entries', () => {
    const t39 = new Tables(mem, { ia: 39 });
    expect(t39.startLevel).toBe(1);
    t39.map(0x7f_ffff_f000, 0x1000, 3, S1_NORMAL);
    expect(w.s1(0x7f_ffff_f010, 0, ACCESS_READ, true, ctx(t39), null, r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x1010, walkSteps: 3 });
    const t32 = new Tables(mem, { ia: 32 });
    expect([t32.startLevel, t32.startBits]).toEqual([1, 2]);
    t32.map(0xc000_1000, 0x2000, 3, S1_NORMAL);
    expect(w.s1(0xc000_1004, 0, ACCESS_READ, true, ctx(t32), null, r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x2004, walkSteps: 3 });
    // The same VA one bit beyond IA 32 is outside the TTB0 region.
    expect(w.s1(0x1_c000_1004, 0, ACCESS_READ, true, ctx(t32), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_TRANSLATION);
  });

  it('16 KiB, 48-bit VA: level 0 with 2 entries, 16 KiB pages and 32 MiB blocks', () => {
    const t = new Tables(mem, { ia: 48, g: 14 });
    expect([t.startLevel, t.startBits]).toEqual([0, 1]);
    t.map(0x8765_4321_4000, 0x0012_c000, 3, S1_NORMAL);
    t.map(0x0000_0200_0000, 0x0200_0000, 2, S1_NORMAL);
    expect(w.s1(0x8765_4321_4abc, 0, ACCESS_READ, true, ctx(t), null, r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x0012_cabc, sizeLog2: 14, walkSteps: 4 });
    expect(w.s1(0x0000_03ff_fff0, 0, ACCESS_READ, true, ctx(t), null, r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x03ff_fff0, sizeLog2: 25, walkSteps: 3 });
  });

  it('64 KiB, 48-bit VA: level 1 with 64 entries, 64 KiB pages and 512 MiB blocks', () => {
    const t = new Tables(mem, { ia: 48, g: 16 });
    expect([t.startLevel, t.startBits]).toEqual([1, 6]);
    t.map(0xfedc_ba98_0000, 0x0033_0000, 3, S1_NORMAL);
    t.map(0x0001_2000_0000, 0x2000_0000, 2, S1_NORMAL);
    expect(w.s1(0xfedc_ba98_fff0, 0, ACCESS_READ, true, ctx(t), null, r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x0033_fff0, sizeLog2: 16, walkSteps: 3 });
    expect(w.s1(0x0001_3fff_0000, 0, ACCESS_READ, true, ctx(t), null, r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x3fff_0000, sizeLog2: 29, walkSteps: 2 });
  });

  it('64 KiB with a 52-bit output: level-1 4 TiB block and OA bits [51:48] from descriptor bits [15:12]', () => {
    const t = new Tables(mem, { ia: 48, g: 16 });
    // 4 TiB block at level 1 mapping to OA 0x000a_0000_0000_0000 (bits [51:48] = 0xa in desc [15:12]).
    t.setRaw(0x0400_0000_0000, 1, 0xa000 | S1_NORMAL | 1, 0);
    expect(w.s1(0x0400_0000_1234, 0, ACCESS_READ, true, ctx(t, { oaBits: 52 }), null, r)).toBe(true);
    expect(r).toMatchObject({ pa: 0xa_0000_0000_0000 + 0x1234, sizeLog2: 42, walkSteps: 1 });
    // With a 48-bit output the level-1 block is reserved.
    expect(w.s1(0x0400_0000_1234, 0, ACCESS_READ, true, ctx(t, { oaBits: 48 }), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_TRANSLATION);
  });
});

describe('§7.3 descriptor types: invalid and reserved encodings → F_TRANSLATION', () => {
  it('invalid descriptor at each level', () => {
    const t = new Tables(mem, { ia: 48 });
    const va = 0x1234_5678_9000;
    expect(w.s1(va, 0, ACCESS_READ, true, ctx(t), null, r)).toBe(false); // empty level 0
    expectS1Fault(r, EvtId.F_TRANSLATION);
    expect(r.walkSteps).toBe(1);
    t.tablePa(va, 3); // levels 0..2 are tables now, level 3 empty
    expect(w.s1(va, 0, ACCESS_READ, true, ctx(t), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_TRANSLATION);
    expect(r.walkSteps).toBe(4);
    t.setRaw(va, 3, 0x1000 | S1_NORMAL | 2, 0); // bit 0 clear: invalid even with other bits
    expect(w.s1(va, 0, ACCESS_READ, true, ctx(t), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_TRANSLATION);
  });

  it('level-3 type 0b01, 4 KiB level-0 block and 16 KiB level-1 block are reserved', () => {
    const t = new Tables(mem, { ia: 48 });
    t.setRaw(0x1000, 3, 0x5000 | S1_NORMAL | 1, 0);
    expect(w.s1(0x1000, 0, ACCESS_READ, true, ctx(t), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_TRANSLATION);
    t.setRaw(0x80_0000_0000, 0, S1_NORMAL | 1, 0);
    expect(w.s1(0x80_0000_0000, 0, ACCESS_READ, true, ctx(t), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_TRANSLATION);
    const t16 = new Tables(mem, { ia: 47, g: 14 });
    expect(t16.startLevel).toBe(1);
    t16.setRaw(0, 1, S1_NORMAL | 1, 0);
    expect(w.s1(0x10, 0, ACCESS_READ, true, ctx(t16), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_TRANSLATION);
  });
});

describe('§7.4 region selection (TTB0 / TTB1, TBI, EPDx)', () => {
  it('TTB1 region: all-ones upper bits walk TTB1 with its own granule', () => {
    const t0 = new Tables(mem, { ia: 48 });
    const t1 = new Tables(mem, { ia: 39, g: 16 }); // T1SZ 25, 64 KiB: start level 2
    t1.map(0x7f_ffff_0000, 0x0077_0000, 3, S1_NORMAL); // VA bits [38:0] of 0xffff_ffff_ffff_0000
    const c = ctx(t0, { ttb1: t1.root, t1sz: 25, g1: 16, epd1: false });
    // VA 0xffff_ffff_ffff_0abc: low word 0xffff_0abc, high word 0xffff_ffff.
    expect(w.s1(0xffff_0abc, 0xffff_ffff, ACCESS_READ, true, c, null, r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x0077_0abc, sizeLog2: 16, walkSteps: 2 });
    // EPD1: the same VA faults.
    expect(w.s1(0xffff_0abc, 0xffff_ffff, ACCESS_READ, true, { ...c, epd1: true }, null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_TRANSLATION);
    // Bits above IA neither all 0 nor all 1 → translation fault.
    expect(w.s1(0xffff_0abc, 0xff7f_ffff, ACCESS_READ, true, c, null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_TRANSLATION);
  });

  it('TBI0 ignores the top byte of TTB0-region VAs; without TBI the tagged VA faults', () => {
    const t = new Tables(mem, { ia: 48 });
    t.map(0x1234_5000, 0x9000, 3, S1_NORMAL);
    expect(w.s1(0x1234_5008, 0x5a00_0000, ACCESS_READ, true, ctx(t, { tbi0: true }), null, r)).toBe(true);
    expect(r.pa).toBe(0x9008);
    expect(w.s1(0x1234_5008, 0x5a00_0000, ACCESS_READ, true, ctx(t), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_TRANSLATION);
    // TBI1 does not apply to VAs with bit 55 = 0.
    expect(w.s1(0x1234_5008, 0x5a00_0000, ACCESS_READ, true, ctx(t, { tbi1: true }), null, r)).toBe(false);
  });

  it('EPD0 → translation fault without any fetch', () => {
    const t = new Tables(mem, { ia: 48 });
    t.map(0x1000, 0x1000, 3, S1_NORMAL);
    expect(w.s1(0x1000, 0, ACCESS_READ, true, ctx(t, { epd0: true }), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_TRANSLATION);
    expect(r.walkSteps).toBe(0);
  });
});

describe('§7.4 address-size faults (stage 1)', () => {
  it('leaf output at or above 2^oaBits → F_ADDR_SIZE; just below → ok', () => {
    const t = new Tables(mem, { ia: 48 });
    t.map(0x1000, 0x100_0000_0000, 3, S1_NORMAL); // OA bit 40
    expect(w.s1(0x1000, 0, ACCESS_READ, true, ctx(t, { oaBits: 40 }), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_ADDR_SIZE);
    expect(w.s1(0x1000, 0, ACCESS_READ, true, ctx(t, { oaBits: 44 }), null, r)).toBe(true);
    expect(r.pa).toBe(0x100_0000_0000);
  });

  it('next-level table address at or above 2^oaBits → F_ADDR_SIZE', () => {
    const t = new Tables(mem, { ia: 48 });
    t.setRaw(0x1000, 0, 3, 0x100); // table at 0x100_0000_0000 (bit 40)
    expect(w.s1(0x1000, 0, ACCESS_READ, true, ctx(t, { oaBits: 40 }), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_ADDR_SIZE);
    expect(r.walkSteps).toBe(1);
  });
});

describe('§7.4 access flag (stage 1)', () => {
  it('AF = 0 → F_ACCESS without HA; AFFD → ok and descriptor untouched', () => {
    const t = new Tables(mem, { ia: 48 });
    const d = t.map(0x5000, 0x7000, 3, S1_NORMAL & ~AF);
    expect(w.s1(0x5000, 0, ACCESS_READ, true, ctx(t), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_ACCESS);
    expect(w.s1(0x5000, 0, ACCESS_READ, true, ctx(t, { affd: true }), null, r)).toBe(true);
    expect(readDesc(mem, d)).toEqual([0x7000 | (S1_NORMAL & ~AF) | 3, 0]);
    expect(r.httuWrites).toBe(0);
  });

  it('HA sets AF atomically (exact descriptor words); CD.HA without HTTU support faults', () => {
    const t = new Tables(mem, { ia: 48 });
    const d = t.map(0x5000, 0x7000, 3, (S1_NORMAL & ~AF) | NG, UXN);
    expect(w.s1(0x5000, 0, ACCESS_READ, true, ctx(t, { ha: true }), null, r)).toBe(true);
    expect(readDesc(mem, d)).toEqual([0x7000 | S1_NORMAL | NG | 3, UXN]);
    expect(r.httuWrites).toBe(1);
    expect(w.stats.afUpdates).toBe(1);
    const w0 = new Walker(mem, { httu: 0 });
    mem.write32(d, 0x7000 | (S1_NORMAL & ~AF) | 3);
    expect(w0.s1(0x5000, 0, ACCESS_READ, true, ctx(t, { ha: true }), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_ACCESS);
    expect(readDesc(mem, d)[0]).toBe(0x7000 | (S1_NORMAL & ~AF) | 3);
  });

  it('access flag fault has priority over a permission fault', () => {
    const t = new Tables(mem, { ia: 48 });
    t.map(0x5000, 0x7000, 3, (S1_NORMAL & ~AF) | AP_RDONLY);
    expect(w.s1(0x5000, 0, ACCESS_WRITE, true, ctx(t), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_ACCESS);
  });

  it('HA does not write when the access then takes a permission fault', () => {
    const t = new Tables(mem, { ia: 48 });
    const d = t.map(0x5000, 0x7000, 3, (S1_NORMAL & ~AF) | AP_RDONLY);
    expect(w.s1(0x5000, 0, ACCESS_WRITE, true, ctx(t, { ha: true }), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_PERMISSION);
    expect(readDesc(mem, d)[0] & AF).toBe(0);
  });
});

describe('§7.4 stage-1 permissions', () => {
  // AP[2:1] → [priv perms, unpriv perms] for data, with XN clear.
  const cases: Array<[number, number, number]> = [
    [0, PERM_R | PERM_W | PERM_X, 0], // 00: priv RW, unpriv none (no unpriv exec without read)
    [AP_UNPRIV, PERM_R | PERM_W, PERM_R | PERM_W | PERM_X], // 01: RW/RW, PXN implied
    [AP_RDONLY, PERM_R | PERM_X, 0], // 10: RO / none
    [AP_RDONLY | AP_UNPRIV, PERM_R | PERM_X, PERM_R | PERM_X], // 11: RO / RO
  ];
  it.each(cases)('AP bits %i → privileged / unprivileged permissions', (ap, priv, unpriv) => {
    const t = new Tables(mem, { ia: 48 });
    t.map(0x3000, 0x3000, 3, S1_NORMAL | ap);
    for (const [p, want] of [[true, priv], [false, unpriv]] as const) {
      for (const a of [ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC]) {
        const ok = w.s1(0x3000, 0, a, p, ctx(t), null, r);
        expect(ok, `ap ${ap} priv ${p} access ${a}`).toBe((want & a) === a);
        if (!ok) expectS1Fault(r, EvtId.F_PERMISSION);
        else expect(r.permAll).toBe(priv | (unpriv << 3));
      }
    }
  });

  it('PXN / UXN forbid execution at their privilege only; a combined R|W access needs both', () => {
    const t = new Tables(mem, { ia: 48 });
    t.map(0x3000, 0x3000, 3, S1_NORMAL | AP_RDONLY | AP_UNPRIV, PXN);
    t.map(0x4000, 0x4000, 3, S1_NORMAL | AP_RDONLY | AP_UNPRIV, UXN);
    expect(w.s1(0x3000, 0, ACCESS_EXEC, true, ctx(t), null, r)).toBe(false);
    expect(w.s1(0x3000, 0, ACCESS_EXEC, false, ctx(t), null, r)).toBe(true);
    expect(w.s1(0x4000, 0, ACCESS_EXEC, true, ctx(t), null, r)).toBe(true);
    expect(w.s1(0x4000, 0, ACCESS_EXEC, false, ctx(t), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_PERMISSION);
    expect(w.s1(0x4000, 0, ACCESS_READ | ACCESS_WRITE, true, ctx(t), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_PERMISSION);
  });

  it('WXN makes writable pages non-executable; PAN removes privileged data access to user pages', () => {
    const t = new Tables(mem, { ia: 48 });
    t.map(0x3000, 0x3000, 3, S1_NORMAL); // priv RW
    t.map(0x4000, 0x4000, 3, S1_NORMAL | AP_UNPRIV | AP_RDONLY); // RO/RO
    expect(w.s1(0x3000, 0, ACCESS_EXEC, true, ctx(t), null, r)).toBe(true);
    expect(w.s1(0x3000, 0, ACCESS_EXEC, true, ctx(t, { wxn: true }), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_PERMISSION);
    expect(w.s1(0x4000, 0, ACCESS_READ, true, ctx(t, { pan: true }), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_PERMISSION);
    expect(w.s1(0x4000, 0, ACCESS_EXEC, true, ctx(t, { pan: true }), null, r)).toBe(true);
    expect(w.s1(0x4000, 0, ACCESS_READ, false, ctx(t, { pan: true }), null, r)).toBe(true);
    expect(w.s1(0x3000, 0, ACCESS_READ, true, ctx(t, { pan: true }), null, r)).toBe(true);
  });

  it('APTable / XNTable / PXNTable restrict everything below; HAD0 disables them', () => {
    const t = new Tables(mem, { ia: 48 });
    const va = 0x12_3456_7000;
    t.map(va, 0x8000, 3, S1_NORMAL | AP_UNPRIV); // RW / RW
    expect(w.s1(va, 0, ACCESS_WRITE, false, ctx(t), null, r)).toBe(true);
    t.orTableHi(va, 1, 1 << 30); // APTable[1] at level 1: no writes below
    expect(w.s1(va, 0, ACCESS_WRITE, true, ctx(t), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_PERMISSION);
    expect(w.s1(va, 0, ACCESS_READ, false, ctx(t), null, r)).toBe(true);
    // Effective AP is now RO/RO: no longer unprivileged-writable, so PXN is no longer implied.
    expect(r.permAll).toBe(PERM_R | PERM_X | ((PERM_R | PERM_X) << 3));
    expect(w.s1(va, 0, ACCESS_WRITE, true, ctx(t, { had0: true }), null, r)).toBe(true);
    t.orTableHi(va, 0, 1 << 29); // APTable[0] at level 0: no unprivileged access
    expect(w.s1(va, 0, ACCESS_READ, false, ctx(t), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_PERMISSION);
    expect(w.s1(va, 0, ACCESS_READ, true, ctx(t), null, r)).toBe(true);
    // Privileged execution is allowed now (the page is no longer unprivileged-writable)...
    expect(r.permAll).toBe(PERM_R | PERM_X);
    t.orTableHi(va, 2, 1 << 27); // ...until PXNTable at level 2.
    expect(w.s1(va, 0, ACCESS_EXEC, true, ctx(t), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_PERMISSION);
    expect(w.s1(va, 0, ACCESS_EXEC, true, ctx(t, { had0: true }), null, r)).toBe(false); // leaf is user-writable → PXN
    const u = new Tables(mem, { ia: 48 });
    u.map(va, 0x8000, 3, S1_NORMAL | AP_UNPRIV | AP_RDONLY);
    expect(w.s1(va, 0, ACCESS_EXEC, false, ctx(u), null, r)).toBe(true);
    u.orTableHi(va, 2, 1 << 28); // XNTable
    expect(w.s1(va, 0, ACCESS_EXEC, false, ctx(u), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_PERMISSION);
    expect(w.s1(va, 0, ACCESS_EXEC, true, ctx(u), null, r)).toBe(true);
  });
});

describe('§7.4 dirty state (DBM, CD.HD; §12 #16)', () => {
  it('write to a clean DBM page with HD clears AP[2] and grants W; without HD it faults', () => {
    const t = new Tables(mem, { ia: 48 });
    const d = t.map(0x6000, 0x9000, 3, S1_NORMAL | NG | AP_RDONLY, DBM);
    expect(w.s1(0x6000, 0, ACCESS_WRITE, true, ctx(t), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_PERMISSION);
    // A read with HD leaves it clean and grants no W (so a cached entry cannot satisfy a write).
    expect(w.s1(0x6000, 0, ACCESS_READ, true, ctx(t, { ha: true, hd: true }), null, r)).toBe(true);
    expect(r.permAll & PERM_W).toBe(0);
    expect(readDesc(mem, d)).toEqual([0x9000 | S1_NORMAL | NG | AP_RDONLY | 3, DBM]);
    expect(w.s1(0x6008, 0, ACCESS_WRITE, true, ctx(t, { ha: true, hd: true }), null, r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x9008, perm: PERM_R | PERM_W | PERM_X, httuWrites: 1 });
    expect(readDesc(mem, d)).toEqual([0x9000 | S1_NORMAL | NG | 3, DBM]);
    expect(w.stats.dirtyUpdates).toBe(1);
  });

  it('AF and dirty are set in one update', () => {
    const t = new Tables(mem, { ia: 48 });
    const d = t.map(0x6000, 0x9000, 3, (S1_NORMAL & ~AF) | AP_RDONLY, DBM);
    expect(w.s1(0x6000, 0, ACCESS_WRITE, true, ctx(t, { ha: true, hd: true }), null, r)).toBe(true);
    expect(r.httuWrites).toBe(1);
    expect(readDesc(mem, d)).toEqual([0x9000 | S1_NORMAL | 3, DBM]);
  });

  it('no dirty update when AP[2] is not the only obstacle (APTable read-only, unprivileged without AP[1])', () => {
    const t = new Tables(mem, { ia: 48 });
    const d = t.map(0x6000, 0x9000, 3, S1_NORMAL | AP_RDONLY, DBM);
    expect(w.s1(0x6000, 0, ACCESS_WRITE, false, ctx(t, { ha: true, hd: true }), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_PERMISSION);
    t.orTableHi(0x6000, 2, 1 << 30);
    expect(w.s1(0x6000, 0, ACCESS_WRITE, true, ctx(t, { ha: true, hd: true }), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_PERMISSION);
    expect(readDesc(mem, d)).toEqual([0x9000 | S1_NORMAL | AP_RDONLY | 3, DBM]);
    // HTTU level 1 (AF only): HD has no effect.
    const w1 = new Walker(mem, { httu: 1 });
    const t2 = new Tables(mem, { ia: 48 });
    t2.map(0x6000, 0x9000, 3, S1_NORMAL | AP_RDONLY, DBM);
    expect(w1.s1(0x6000, 0, ACCESS_WRITE, true, ctx(t2, { ha: true, hd: true }), null, r)).toBe(false);
    expectS1Fault(r, EvtId.F_PERMISSION);
  });
});
