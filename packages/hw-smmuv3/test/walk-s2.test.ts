/**
 * Stage-2 walks (smmuv3.md §7.2–§7.4): S2SL0 start levels, concatenated start tables, the IPA
 * range check, S2AP / XN / XNX permissions, access flag and S2HA, dirty state with S2HD,
 * address-size faults. Stage-2 faults: S2 = 1, CLASS = IN, IPA = the input.
 */
import { ACCESS_EXEC, ACCESS_READ, ACCESS_WRITE, PhysMem } from '@iommulab/runtime';
import { beforeEach, describe, expect, it } from 'vitest';
import { EvtClass, EvtId } from '../src/codec/index.js';
import { newS2Ctx, newWalkResult, PERM_R, PERM_W, PERM_X, Walker, type S2Ctx, type WalkResult } from '../src/model/walk/index.js';
import { readDesc, S2_NORMAL, S2_RW, Tables } from './helpers/tables.js';

const MiB = 1 << 20;
const AF = 0x400;
const S2AP_R = 0x40;
const S2AP_W = 0x80;
const XN0 = 1 << 21; // bit 53
const XN1 = 1 << 22; // bit 54
const DBM = 1 << 19;

let mem: PhysMem;
let w: Walker;
let r: WalkResult;

beforeEach(() => {
  mem = PhysMem.create(64 * MiB);
  w = new Walker(mem, { httu: 2 });
  r = newWalkResult();
});

function sl0For(g: number, start: number): number {
  return g === 12 ? 2 - start : 3 - start;
}

function ctx(t: Tables, init: Partial<S2Ctx> = {}): S2Ctx {
  return newS2Ctx({ ttb: t.root, t0sz: 64 - t.ia, sl0: sl0For(t.g, t.startLevel), g: t.g as 12 | 14 | 16, oaBits: 48, ...init });
}

function expectS2Fault(res: WalkResult, id: number, ipa: number, fetchAddr = 0): void {
  expect(res.ok).toBe(false);
  expect({ fault: res.fault, s2: res.s2, cls: res.cls, ipa: res.ipa, fetchAddr: res.fetchAddr }).toEqual({
    fault: id,
    s2: true,
    cls: EvtClass.IN,
    ipa,
    fetchAddr,
  });
}

describe('§7.2 stage-2 start level and concatenation', () => {
  it('4 KiB, IAS 40, SL0 = 1: two concatenated level-1 tables (Linux layout), IPA bit 39 selects the second', () => {
    const t = new Tables(mem, { ia: 40, startLevel: 1 });
    expect(t.startBits).toBe(10);
    expect(t.rootPa % 8192).toBe(0);
    t.map(0x80_1234_5000, 0x0056_7000, 3, S2_NORMAL | S2_RW);
    // The level-1 descriptor is in the second 4 KiB table: index 512 + 0 of the 8 KiB block.
    expect(t.descPa(0x80_1234_5000, 1)).toBe(t.rootPa + 512 * 8);
    expect(w.s2(0x80_1234_5abc, ACCESS_READ, false, ctx(t), r)).toBe(true);
    expect(r).toMatchObject({ ok: true, pa: 0x0056_7abc, sizeLog2: 12, level: 3, walkSteps: 3, global: false, ipaOut: 0x80_1234_5abc, s2Base: 0x80_1234_5000, s2SizeLog2: 12 });
    expect(r.permAll).toBe(PERM_R | PERM_W | PERM_X | ((PERM_R | PERM_W | PERM_X) << 3));
  });

  it('4 KiB, IAS 43 at level 1: 16 concatenated tables (the maximum)', () => {
    const t = new Tables(mem, { ia: 43, startLevel: 1 });
    expect(t.startBits).toBe(13);
    t.map(0x7ff_c000_0000, 0x4000_0000, 1, S2_NORMAL | S2_RW); // last 1 GiB of the IPA space
    expect(t.descPa(0x7ff_c000_0000, 1)).toBe(t.rootPa + 8191 * 8);
    expect(w.s2(0x7ff_c123_4567, ACCESS_READ, false, ctx(t), r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x4123_4567, sizeLog2: 30, walkSteps: 1, s2Base: 0x7ff_c000_0000 });
  });

  it('4 KiB, IAS 48, SL0 = 2 (level 0); 16 KiB IAS 48 → 2 level-1 tables; 64 KiB IAS 42 → level 2', () => {
    const t4 = new Tables(mem, { ia: 48, startLevel: 0 });
    t4.map(0xffff_ffff_f000, 0x1000, 3, S2_NORMAL | S2_RW);
    expect(w.s2(0xffff_ffff_f008, ACCESS_READ, false, ctx(t4), r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x1008, walkSteps: 4 });
    const t16 = new Tables(mem, { ia: 48, g: 14, startLevel: 1 });
    expect(t16.startBits).toBe(12);
    expect(ctx(t16).sl0).toBe(2);
    t16.map(0x8000_0200_0000, 0x0200_0000, 2, S2_NORMAL | S2_RW);
    expect(w.s2(0x8000_0200_0010, ACCESS_READ, false, ctx(t16), r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x0200_0010, sizeLog2: 25, walkSteps: 2 });
    const t64 = new Tables(mem, { ia: 42, g: 16, startLevel: 2 });
    expect(ctx(t64).sl0).toBe(1);
    t64.map(0x3ff_ffff_0000, 0x0001_0000, 3, S2_NORMAL | S2_RW);
    expect(w.s2(0x3ff_ffff_0004, ACCESS_READ, false, ctx(t64), r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x0001_0004, sizeLog2: 16, walkSteps: 2 });
  });

  it('IPA at or above 2^(64 − S2T0SZ) → F_TRANSLATION (S2, CLASS IN) before any fetch', () => {
    const t = new Tables(mem, { ia: 40, startLevel: 1 });
    expect(w.s2(0x100_0000_0000, ACCESS_READ, false, ctx(t), r)).toBe(false);
    expectS2Fault(r, EvtId.F_TRANSLATION, 0x100_0000_0000);
    expect(r.walkSteps).toBe(0);
  });

  it('CD fetch through stage 2 (cls = CD): faults carry CLASS CD and the CD IPA', () => {
    const t = new Tables(mem, { ia: 40, startLevel: 1 });
    t.map(0x8000, 0x3000, 3, S2_NORMAL | S2_RW);
    expect(w.s2(0x8040, ACCESS_READ, false, ctx(t), r, EvtClass.CD)).toBe(true);
    expect(r.pa).toBe(0x3040);
    expect(w.s2(0x9040, ACCESS_READ, false, ctx(t), r, EvtClass.CD)).toBe(false);
    expect({ fault: r.fault, s2: r.s2, cls: r.cls, ipa: r.ipa, ttrnw: r.ttrnw }).toEqual({ fault: EvtId.F_TRANSLATION, s2: true, cls: EvtClass.CD, ipa: 0x9040, ttrnw: false });
  });

  it('invalid descriptor → F_TRANSLATION with the IPA', () => {
    const t = new Tables(mem, { ia: 40, startLevel: 1 });
    expect(w.s2(0x1234_5678, ACCESS_READ, false, ctx(t), r)).toBe(false);
    expectS2Fault(r, EvtId.F_TRANSLATION, 0x1234_5678);
  });
});

describe('§7.4 stage-2 leaf checks', () => {
  it('S2AP: read-only page faults a write, write-only page faults a read', () => {
    const t = new Tables(mem, { ia: 40, startLevel: 1 });
    t.map(0x1000, 0x1000, 3, S2_NORMAL | S2AP_R);
    t.map(0x2000, 0x2000, 3, S2_NORMAL | S2AP_W);
    expect(w.s2(0x1000, ACCESS_READ, false, ctx(t), r)).toBe(true);
    expect(w.s2(0x1000, ACCESS_WRITE, false, ctx(t), r)).toBe(false);
    expectS2Fault(r, EvtId.F_PERMISSION, 0x1000);
    expect(w.s2(0x2008, ACCESS_WRITE, false, ctx(t), r)).toBe(true);
    expect(w.s2(0x2008, ACCESS_READ, false, ctx(t), r)).toBe(false);
    expectS2Fault(r, EvtId.F_PERMISSION, 0x2008);
  });

  it('XN (bit 54) forbids execution; bit 53 alone is ignored without XNX', () => {
    const t = new Tables(mem, { ia: 40, startLevel: 1 });
    t.map(0x1000, 0x1000, 3, S2_NORMAL | S2_RW, XN1);
    t.map(0x2000, 0x2000, 3, S2_NORMAL | S2_RW, XN0);
    expect(w.s2(0x1000, ACCESS_EXEC, true, ctx(t), r)).toBe(false);
    expectS2Fault(r, EvtId.F_PERMISSION, 0x1000);
    expect(w.s2(0x2000, ACCESS_EXEC, false, ctx(t), r)).toBe(true);
  });

  it('XNX: XN[1:0] 00 both, 01 unprivileged only, 10 none, 11 privileged only', () => {
    const wx = new Walker(mem, { httu: 2, xnx: true });
    const t = new Tables(mem, { ia: 40, startLevel: 1 });
    const hiFor = [0, XN0, XN1, XN0 | XN1];
    const want = [
      [true, true],
      [false, true],
      [false, false],
      [true, false],
    ];
    for (let x = 0; x < 4; x++) t.map(0x1000 * (x + 1), 0x1000 * (x + 1), 3, S2_NORMAL | S2_RW, hiFor[x]);
    for (let x = 0; x < 4; x++) {
      expect(wx.s2(0x1000 * (x + 1), ACCESS_EXEC, true, ctx(t), r), `xn ${x} priv`).toBe(want[x][0]);
      expect(wx.s2(0x1000 * (x + 1), ACCESS_EXEC, false, ctx(t), r), `xn ${x} unpriv`).toBe(want[x][1]);
    }
  });

  it('AF = 0: F_ACCESS; S2AFFD → ok; S2HA sets AF (exact words)', () => {
    const t = new Tables(mem, { ia: 40, startLevel: 1 });
    const d = t.map(0x1000, 0x3000, 3, (S2_NORMAL & ~AF) | S2_RW, XN1);
    expect(w.s2(0x1000, ACCESS_READ, false, ctx(t), r)).toBe(false);
    expectS2Fault(r, EvtId.F_ACCESS, 0x1000);
    expect(w.s2(0x1000, ACCESS_READ, false, ctx(t, { affd: true }), r)).toBe(true);
    expect(readDesc(mem, d)[0] & AF).toBe(0);
    expect(w.s2(0x1000, ACCESS_READ, false, ctx(t, { ha: true }), r)).toBe(true);
    expect(readDesc(mem, d)).toEqual([0x3000 | S2_NORMAL | S2_RW | 3, XN1]);
    expect(r.httuWrites).toBe(1);
  });

  it('S2HD: a write to a DBM page without S2AP.W sets S2AP[1]; no DBM or no S2HD → F_PERMISSION', () => {
    const t = new Tables(mem, { ia: 40, startLevel: 1 });
    const d = t.map(0x1000, 0x3000, 3, S2_NORMAL | S2AP_R, DBM);
    t.map(0x2000, 0x4000, 3, S2_NORMAL | S2AP_R);
    expect(w.s2(0x1000, ACCESS_WRITE, false, ctx(t), r)).toBe(false);
    expectS2Fault(r, EvtId.F_PERMISSION, 0x1000);
    expect(w.s2(0x1000, ACCESS_READ, false, ctx(t, { hd: true }), r)).toBe(true);
    expect(r.permAll & PERM_W).toBe(0);
    expect(w.s2(0x1010, ACCESS_WRITE, false, ctx(t, { hd: true }), r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x3010, httuWrites: 1 });
    expect(r.perm & PERM_W).toBe(PERM_W);
    expect(readDesc(mem, d)).toEqual([0x3000 | S2_NORMAL | S2_RW | 3, DBM]);
    expect(w.s2(0x2000, ACCESS_WRITE, false, ctx(t, { hd: true }), r)).toBe(false);
    expectS2Fault(r, EvtId.F_PERMISSION, 0x2000);
  });

  it('output at or above 2^oaBits → F_ADDR_SIZE; table above → F_ADDR_SIZE', () => {
    const t = new Tables(mem, { ia: 40, startLevel: 1 });
    t.map(0x1000, 0x10_0000_0000, 3, S2_NORMAL | S2_RW); // OA bit 36
    expect(w.s2(0x1000, ACCESS_READ, false, ctx(t, { oaBits: 36 }), r)).toBe(false);
    expectS2Fault(r, EvtId.F_ADDR_SIZE, 0x1000);
    expect(w.s2(0x1000, ACCESS_READ, false, ctx(t, { oaBits: 40 }), r)).toBe(true);
    t.setRaw(0x4000_0000, 1, 0x3, 0x10); // level-1 table pointer at 0x10_0000_0000
    expect(w.s2(0x4000_0000, ACCESS_READ, false, ctx(t, { oaBits: 36 }), r)).toBe(false);
    expectS2Fault(r, EvtId.F_ADDR_SIZE, 0x4000_0000);
  });
});
