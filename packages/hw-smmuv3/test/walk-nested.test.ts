/**
 * Nested walks (smmuv3.md §8): every stage-1 descriptor address is an IPA translated by stage 2
 * (faults S2 = 1, CLASS = TT, IPA = descriptor IPA, TTRnW), the stage-1 output is translated by
 * stage 2 (CLASS = IN), permissions combine and the result size is the smaller leaf.
 *
 * Layout: stage 2 maps IPA = PA + OFF with 4 KiB pages over the first 16 MiB of PhysMem (4-level,
 * S2T0SZ 16, SL0 2); the stage-1 tables are written with IPAs (PA + OFF).
 */
import { ACCESS_READ, ACCESS_WRITE, PhysMem } from '@iommulab/runtime';
import { beforeEach, describe, expect, it } from 'vitest';
import { EvtClass, EvtId } from '../src/codec/index.js';
import {
  newS1Ctx,
  newS2Ctx,
  newWalkResult,
  PERM_R,
  PERM_W,
  PERM_X,
  Walker,
  type S1Ctx,
  type S2Ctx,
  type WalkResult,
} from '../src/model/walk/index.js';
import { readDesc, S1_NORMAL, S2_NORMAL, S2_RW, Tables } from './helpers/tables.js';

const MiB = 1 << 20;
const OFF = 0x40_0000_0000;
const AF = 0x400;
const NG = 0x800;
const AP_UNPRIV = 0x40;
const DBM = 1 << 19;

let mem: PhysMem;
let w: Walker;
let r: WalkResult;
let s2t: Tables;
let s1t: Tables;
let s1: S1Ctx;
let s2: S2Ctx;

/** Maps IPA [OFF, OFF + bytes) → PA [0, bytes) with 4 KiB stage-2 pages. */
function mapS2Pages(t: Tables, bytes: number, attrLo = S2_NORMAL | S2_RW): void {
  for (let pa = 0; pa < bytes; pa += 4096) t.map(OFF + pa, pa, 3, attrLo);
}

beforeEach(() => {
  mem = PhysMem.create(64 * MiB);
  w = new Walker(mem, { httu: 2 });
  r = newWalkResult();
  s2t = new Tables(mem, { ia: 48, startLevel: 0 });
  s1t = new Tables(mem, { ia: 48, ipaOffset: OFF });
  mapS2Pages(s2t, 16 * MiB);
  s1 = newS1Ctx({ ttb0: s1t.root, t0sz: 16, g0: 12, epd0: false, oaBits: 48 });
  s2 = newS2Ctx({ ttb: s2t.root, t0sz: 16, sl0: 2, g: 12, oaBits: 48 });
});

function expectFault(res: WalkResult, f: { fault: number; s2: boolean; cls: number; ipa: number; fetchAddr?: number; ttrnw?: boolean }): void {
  expect(res.ok).toBe(false);
  expect({ fault: res.fault, s2: res.s2, cls: res.cls, ipa: res.ipa, fetchAddr: res.fetchAddr, ttrnw: res.ttrnw }).toEqual({
    fetchAddr: 0,
    ttrnw: false,
    ...f,
  });
}

const VA = 0x7f12_3456_7000;

describe('§8 nested translation', () => {
  it('4-level stage 1 over 4-level stage 2: exact PA, 24 fetches, combined permissions and size', () => {
    s1t.map(VA, OFF + 0x0012_3000, 3, S1_NORMAL | NG | AP_UNPRIV);
    expect(w.s1(VA + 0x45, 0, ACCESS_READ, false, s1, s2, r)).toBe(true);
    expect(r).toMatchObject({
      ok: true,
      pa: 0x0012_3045,
      sizeLog2: 12,
      walkSteps: 4 + 4 * 4 + 4,
      global: false,
      ipaOut: OFF + 0x0012_3045,
      s2Base: OFF + 0x0012_3000,
      s2SizeLog2: 12,
      fault: 0,
    });
    // S1 AP=01 (priv RW no X, unpriv RWX) ∧ S2 RW+X.
    expect(r.permAll).toBe(PERM_R | PERM_W | ((PERM_R | PERM_W | PERM_X) << 3));
  });

  it('stage-2 translation fault on a stage-1 descriptor fetch: S2, CLASS TT, IPA of the descriptor, TTRnW', () => {
    s1t.map(VA, OFF + 0x0012_3000, 3, S1_NORMAL);
    const l2Pa = s1t.tablePa(VA, 2);
    s2t.setRaw(OFF + l2Pa, 3, 0, 0); // stage 2 no longer maps the level-2 table's page
    expect(w.s1(VA, 0, ACCESS_READ, true, s1, s2, r)).toBe(false);
    const idx2 = Math.floor(VA / 2 ** 21) % 512;
    expectFault(r, { fault: EvtId.F_TRANSLATION, s2: true, cls: EvtClass.TT, ipa: OFF + l2Pa + idx2 * 8, ttrnw: true });
    expect(r.walkSteps).toBe(2 + 2 * 4 + 4);
  });

  it('external abort in the stage-2 walk of a descriptor IPA: F_WALK_EABT, S2, CLASS TT, FetchAddr of the stage-2 descriptor', () => {
    s1t.map(VA, OFF + 0x0012_3000, 3, S1_NORMAL);
    const ttbIpa = s1t.root + (Math.floor(VA / 2 ** 39) % 512) * 8;
    // The stage-2 level-2 table for the TTB page now points outside PhysMem (2 GiB).
    s2t.setRaw(OFF + s1t.rootPa, 2, 0x8000_0003, 0);
    const idx3 = Math.floor((OFF + s1t.rootPa) / 4096) % 512;
    expect(w.s1(VA, 0, ACCESS_READ, true, s1, s2, r)).toBe(false);
    expectFault(r, { fault: EvtId.F_WALK_EABT, s2: true, cls: EvtClass.TT, ipa: ttbIpa, fetchAddr: 0x8000_0000 + idx3 * 8, ttrnw: true });
  });

  it('stage-1 descriptor whose PA (after stage 2) is outside PhysMem: F_WALK_EABT at stage 1 with FetchAddr', () => {
    s1t.map(VA, OFF + 0x0012_3000, 3, S1_NORMAL);
    const l3Pa = s1t.tablePa(VA, 3);
    s2t.map(OFF + l3Pa, 0xf000_0000, 3, S2_NORMAL | S2_RW);
    expect(w.s1(VA, 0, ACCESS_READ, true, s1, s2, r)).toBe(false);
    expectFault(r, { fault: EvtId.F_WALK_EABT, s2: false, cls: EvtClass.TT, ipa: 0, fetchAddr: 0xf000_0000 + (Math.floor(VA / 4096) % 512) * 8 });
  });

  it('final stage-2 fault of the output IPA: CLASS IN, IPA = the full output IPA', () => {
    s1t.map(VA, OFF + 0x3000_0000, 3, S1_NORMAL); // outside the 16 MiB stage-2 mapping
    expect(w.s1(VA + 0x9a8, 0, ACCESS_READ, true, s1, s2, r)).toBe(false);
    expectFault(r, { fault: EvtId.F_TRANSLATION, s2: true, cls: EvtClass.IN, ipa: OFF + 0x3000_09a8 });
  });

  it('final stage-2 IPA range check (S2T0SZ) and stage-2 permission on the output', () => {
    s1t.map(VA, 0x100_0000_0000, 3, S1_NORMAL); // output IPA 2^40
    const s2small = { ...s2, t0sz: 24 }; // IPA space 2^40: the table IPAs (2^38 + PA) still fit
    expect(w.s1(VA, 0, ACCESS_READ, true, s1, s2small, r)).toBe(false);
    expectFault(r, { fault: EvtId.F_TRANSLATION, s2: true, cls: EvtClass.IN, ipa: 0x100_0000_0000 });
    s1t.map(VA, OFF + 0x0012_3000, 3, S1_NORMAL);
    s2t.map(OFF + 0x0012_3000, 0x0012_3000, 3, S2_NORMAL | 0x40); // read-only at stage 2
    expect(w.s1(VA, 0, ACCESS_READ, true, s1, s2, r)).toBe(true);
    expect(r.permAll & PERM_W).toBe(0);
    expect(w.s1(VA + 8, 0, ACCESS_WRITE, true, s1, s2, r)).toBe(false);
    expectFault(r, { fault: EvtId.F_PERMISSION, s2: true, cls: EvtClass.IN, ipa: OFF + 0x0012_3008 });
  });

  it('stage-1 faults in a nested walk are stage-1 records: S2 = 0, CLASS = IN (IHI 0070 §7.3.13), IPA = 0', () => {
    s1t.tablePa(VA, 3);
    expect(w.s1(VA, 0, ACCESS_READ, true, s1, s2, r)).toBe(false);
    expectFault(r, { fault: EvtId.F_TRANSLATION, s2: false, cls: EvtClass.IN, ipa: 0 });
    s1t.map(VA, OFF + 0x0012_3000, 3, S1_NORMAL & ~AF);
    expect(w.s1(VA, 0, ACCESS_READ, true, s1, s2, r)).toBe(false);
    expectFault(r, { fault: EvtId.F_ACCESS, s2: false, cls: EvtClass.IN, ipa: 0 });
  });

  it('stage-1 HA update needs stage-2 write permission on the table page (CLASS TT, TTRnW = 0)', () => {
    const d = s1t.map(VA, OFF + 0x0012_3000, 3, S1_NORMAL & ~AF);
    const l3Pa = s1t.tablePa(VA, 3);
    const descIpa = OFF + d;
    s2t.map(OFF + l3Pa, l3Pa, 3, S2_NORMAL | 0x40); // table page read-only at stage 2
    const c = { ...s1, ha: true };
    expect(w.s1(VA, 0, ACCESS_READ, true, c, s2, r)).toBe(false);
    expectFault(r, { fault: EvtId.F_PERMISSION, s2: true, cls: EvtClass.TT, ipa: descIpa, ttrnw: false });
    expect(readDesc(mem, d)[0] & AF).toBe(0);
    s2t.map(OFF + l3Pa, l3Pa, 3, S2_NORMAL | S2_RW);
    expect(w.s1(VA, 0, ACCESS_READ, true, c, s2, r)).toBe(true);
    expect(readDesc(mem, d)).toEqual([0x0012_3000 | S1_NORMAL | 3, 0x40]); // output IPA OFF + 0x12_3000, AF now set
    expect(r.walkSteps).toBe(4 + 4 * 4 + 4 + 4); // + the stage-2 walk for the update write
    expect(r.httuWrites).toBe(1);
  });

  it('stage-2 access flag and S2PTW on descriptor fetches (CLASS TT)', () => {
    s1t.map(VA, OFF + 0x0012_3000, 3, S1_NORMAL);
    const l1Pa = s1t.tablePa(VA, 1);
    const l1Ipa = OFF + l1Pa + (Math.floor(VA / 2 ** 30) % 512) * 8;
    s2t.map(OFF + l1Pa, l1Pa, 3, (S2_NORMAL & ~AF) | S2_RW);
    expect(w.s1(VA, 0, ACCESS_READ, true, s1, s2, r)).toBe(false);
    expectFault(r, { fault: EvtId.F_ACCESS, s2: true, cls: EvtClass.TT, ipa: l1Ipa, ttrnw: true });
    s2t.map(OFF + l1Pa, l1Pa, 3, AF | 0x300 | (0x1 << 2) | S2_RW); // Device-nGnRE
    expect(w.s1(VA, 0, ACCESS_READ, true, s1, s2, r)).toBe(true);
    expect(w.s1(VA, 0, ACCESS_READ, true, s1, { ...s2, ptw: true }, r)).toBe(false);
    expectFault(r, { fault: EvtId.F_PERMISSION, s2: true, cls: EvtClass.TT, ipa: l1Ipa, ttrnw: true });
  });

  it('combined size is the smaller leaf: S1 2 MiB block over S2 pages, S1 page over an S2 1 GiB block', () => {
    s1t.map(0x4020_0000, OFF + 0x0040_0000, 2, S1_NORMAL);
    expect(w.s1(0x4021_2345, 0, ACCESS_READ, true, s1, s2, r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x0041_2345, sizeLog2: 12, s2SizeLog2: 12, s2Base: OFF + 0x0041_2000 });
    // Second stage-2 table: IPA [OFF, OFF + 1 GiB) → PA [0, 1 GiB) as one level-1 block.
    const s2b = new Tables(mem, { ia: 48, startLevel: 0 });
    s2b.map(OFF, 0, 1, S2_NORMAL | S2_RW);
    const s2blk = { ...s2, ttb: s2b.root };
    s1t.map(VA, OFF + 0x0012_3000, 3, S1_NORMAL);
    expect(w.s1(VA + 1, 0, ACCESS_READ, true, s1, s2blk, r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x0012_3001, sizeLog2: 12, s2SizeLog2: 30, s2Base: OFF, walkSteps: 4 + 4 * 2 + 2 });
    expect(w.s1(0x4021_2345, 0, ACCESS_READ, true, s1, s2blk, r)).toBe(true);
    expect(r).toMatchObject({ pa: 0x0041_2345, sizeLog2: 21, s2SizeLog2: 30 });
  });

  it('dirty update at both stages on a nested write', () => {
    const d1 = s1t.map(VA, OFF + 0x0012_3000, 3, S1_NORMAL | 0x80, DBM); // S1 clean DBM
    const d2 = s2t.map(OFF + 0x0012_3000, 0x0012_3000, 3, S2_NORMAL | 0x40, DBM); // S2 clean DBM
    expect(w.s1(VA, 0, ACCESS_WRITE, true, { ...s1, ha: true, hd: true }, { ...s2, hd: true }, r)).toBe(true);
    expect(r.perm & PERM_W).toBe(PERM_W);
    expect(r.httuWrites).toBe(2);
    expect(readDesc(mem, d1)[0] & 0x80).toBe(0);
    expect(readDesc(mem, d2)[0] & 0xc0).toBe(0xc0);
  });
});
