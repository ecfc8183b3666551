/**
 * Cross-check with the driver's io-pgtable (smmuv3.md §7.5, §7.6): for every granule × format ×
 * IAS, the tables IoPgtableArm writes (Linux layout, stage-2 concatenation) are accepted by
 * checkS1Config / checkS2Config and the walker translates every mapped page size exactly like
 * `iovaToPhys`, including the last largest page of the IAS; unmapped addresses fault.
 */
import { Prot } from '@iommulab/driver-api';
import { ACCESS_EXEC, ACCESS_READ, ACCESS_WRITE, PhysMem } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { EvtClass, EvtId } from '../src/codec/index.js';
import { IoPgtableArm } from '../src/pgtable/io-pgtable-arm.js';
import {
  checkS1Config,
  checkS2Config,
  newS1Ctx,
  newS2Ctx,
  newWalkResult,
  Walker,
  type GranuleShift,
  type WalkCaps,
} from '../src/model/walk/index.js';

const caps: WalkCaps = { granules: { '4k': true, '16k': true, '64k': true }, oas: 48, vax: false, stt: false, httu: 2 };
const G_OF_TG: Record<number, GranuleShift> = { 0: 12, 1: 16, 2: 14 };
const GiB = 2 ** 30;

describe('walker ⟷ io-pgtable-arm (§7.6 scenarios)', () => {
  for (const granule of [4096, 16384, 65536] as const) {
    for (const fmt of ['s1', 's2'] as const) {
      it(`${fmt} ${granule / 1024} KiB, IAS 32..48: every page size and the last page of the IAS`, () => {
        for (const ias of [32, 36, 40, 42, 44, 48]) {
          const mem = PhysMem.create(32 << 20);
          const w = new Walker(mem, { httu: 2 });
          const r = newWalkResult();
          const pt = new IoPgtableArm(mem, { fmt, granule, ias, oas: 48 });
          const s1 = newS1Ctx({ ttb0: pt.pgdPa, t0sz: pt.tcr.t0sz, g0: G_OF_TG[pt.tcr.tg], epd0: false, epd1: true, oaBits: 48 });
          const s2 = newS2Ctx({ ttb: pt.pgdPa, t0sz: pt.vtcr.t0sz, sl0: pt.vtcr.sl0, g: G_OF_TG[pt.vtcr.tg], oaBits: 48 });
          if (fmt === 's1') expect(checkS1Config(s1, caps), `ias ${ias}`).toBe(true);
          else expect(checkS2Config(s2, caps), `ias ${ias}`).toBe(true);
          const walk = (iova: number, access: number) => (fmt === 's1' ? w.s1(iova, 0, access, true, s1, null, r) : w.s2(iova, access, true, s2, r));
          const prot = Prot.READ | Prot.WRITE | Prot.NOEXEC | Prot.CACHE;
          // One mapping per page size at iova = k GiB (→ PA = iova), as the selftest.
          let iova = 0;
          for (const size of pt.pgsizes) {
            if (iova + size > 2 ** ias) break;
            expect(pt.map(iova, iova, size, 1, prot)).toBe(size);
            expect(walk(iova + 42, ACCESS_READ), `ias ${ias} size ${size}`).toBe(true);
            expect([r.pa, r.sizeLog2]).toEqual([pt.iovaToPhys(iova + 42), Math.log2(size)]);
            expect(walk(iova + 42, ACCESS_WRITE)).toBe(true);
            expect(walk(iova + 42, ACCESS_EXEC)).toBe(false);
            expect([r.fault, r.s2, r.cls]).toEqual([EvtId.F_PERMISSION, fmt === 's2', EvtClass.IN]); // §7.3.13: CLASS = IN at either stage
            iova += GiB;
          }
          // Empty addresses fault.
          expect(walk(iova + 42, ACCESS_READ)).toBe(false);
          expect(r.fault).toBe(EvtId.F_TRANSLATION);
          // Last largest page of the IAS (the concatenated-PGD corner case).
          const big = pt.pgsizes[pt.pgsizes.length - 1];
          const last = 2 ** ias - big;
          if (last >= iova) {
            expect(pt.map(last, 0, big, 1, Prot.READ)).toBe(big);
            expect(walk(last + big - 8, ACCESS_READ)).toBe(true);
            expect(r.pa).toBe(big - 8);
            expect(walk(last + big - 8, ACCESS_WRITE)).toBe(false);
            expect(r.fault).toBe(EvtId.F_PERMISSION);
          }
          pt.free();
        }
      });
    }
  }

  it('dirty tracking: a DBM write walk marks the page dirty for readAndClearDirty; clearing makes it clean again', () => {
    const mem = PhysMem.create(8 << 20);
    const w = new Walker(mem, { httu: 2 });
    const r = newWalkResult();
    const pt = new IoPgtableArm(mem, { fmt: 's1', granule: 4096, ias: 48, oas: 48, dbm: true });
    pt.map(0x10000, 0x20000, 4096, 4, Prot.READ | Prot.WRITE);
    const s1 = newS1Ctx({ ttb0: pt.pgdPa, t0sz: 16, g0: 12, epd0: false, ha: true, hd: true });
    const dirty = () => {
      const out: number[] = [];
      pt.readAndClearDirty(0x10000, 0x4000, true, (iova) => out.push(iova));
      return out;
    };
    // Linux maps writable DBM leaves dirty (AP[2] = 0); start tracking by clearing them.
    expect(dirty()).toEqual([0x10000, 0x11000, 0x12000, 0x13000]);
    pt.readAndClearDirty(0x10000, 0x4000, false, () => undefined);
    expect(dirty()).toEqual([]);
    expect(w.s1(0x12008, 0, ACCESS_READ, true, s1, null, r)).toBe(true);
    expect(r.permAll & 2).toBe(0);
    expect(w.s1(0x12008, 0, ACCESS_WRITE, true, s1, null, r)).toBe(true);
    expect(r.pa).toBe(0x22008);
    expect(dirty()).toEqual([0x12000]);
    pt.readAndClearDirty(0x10000, 0x4000, false, () => undefined);
    expect(dirty()).toEqual([]);
  });
});
