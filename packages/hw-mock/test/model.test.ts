import fc from 'fast-check';
import { FaultReason } from '@iommulab/driver-api';
import { ACCESS_READ, ACCESS_WRITE } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { writeCmdInvRange } from '../src/codec.js';
import { MOCK_APERTURE_START, MOCK_HUGE_PAGE_SIZE, MOCK_PAGE_SIZE } from '../src/constants.js';
import { DriverCommandQueue } from '../src/driver-cmdq.js';
import { REG_GERROR, REG_GERRORN } from '../src/regs.js';
import { Rig } from './rig.js';

const A = MOCK_APERTURE_START;
const PS = MOCK_PAGE_SIZE;
const HUGE = MOCK_HUGE_PAGE_SIZE;

type Op =
  | { op: 'map'; at: number; pages: number; huge: boolean; writable: boolean }
  | { op: 'unmap'; at: number; pages: number }
  | { op: 'dma'; at: number; off: number; write: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('map' as const), at: fc.nat(2047), pages: fc.integer({ min: 1, max: 700 }), huge: fc.boolean(), writable: fc.boolean() }),
  fc.record({ op: fc.constant('unmap' as const), at: fc.nat(2047), pages: fc.integer({ min: 1, max: 700 }) }),
  fc.record({ op: fc.constant('dma' as const), at: fc.nat(2047), off: fc.nat(PS - 1), write: fc.boolean() }),
  fc.record({ op: fc.constant('dma' as const), at: fc.nat(2047), off: fc.nat(PS - 1), write: fc.boolean() }),
);

describe('hardware against a reference model', () => {
  it('translate agrees with a page map after every map / unmap + INV_RANGE + SYNC (2 KiB and 1 MiB leaves)', () => {
    const r = new Rig();
    const paBase = r.mem.allocFrames(2048, 256); // 8 MiB, 1 MiB aligned
    let domainId = 1;
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), (ops) => {
        const pt = r.newTable();
        const dom = domainId++;
        r.setDte(1, { domainId: dom, root: pt.root });
        r.cmd([4, 1, 0, 0]); // CMD_INV_DTE
        const model = new Map<number, { pa: number; w: boolean }>();
        for (const o of ops) {
          if (o.op === 'map') {
            let at = o.at;
            let pages = Math.min(o.pages, 2048 - at);
            let pa = paBase + ((o.at * 7) % 2048) * PS;
            if (o.huge) {
              at = Math.floor(at / 512) * 512;
              pages = 512;
              pa = paBase + (o.at % 8) * HUGE;
            }
            let clash = false;
            for (let k = 0; k < pages; k++) if (model.has(at + k)) clash = true;
            let err = '';
            try {
              pt.map(A + at * PS, pa, pages * PS, o.writable ? 3 : 1);
            } catch (e) {
              err = (e as { errno: string }).errno;
            }
            expect(err).toBe(clash ? 'EEXIST' : '');
            if (!clash) for (let k = 0; k < pages; k++) model.set(at + k, { pa: pa + k * PS, w: o.writable });
          } else if (o.op === 'unmap') {
            const pages = Math.min(o.pages, 2048 - o.at);
            let n = 0;
            while (n < pages && model.has(o.at + n)) n++;
            expect(pt.unmap(A + o.at * PS, pages * PS)).toBe(n * PS);
            for (let k = 0; k < n; k++) model.delete(o.at + k);
            if (n > 0) {
              const w = new Uint32Array(4);
              writeCmdInvRange(w, 0, dom, A + o.at * PS, n);
              r.cmd(Array.from(w));
              r.sync();
            }
          } else {
            const res = r.translate(1, A + o.at * PS + o.off, o.write ? ACCESS_WRITE : ACCESS_READ);
            const m = model.get(o.at);
            if (m === undefined) expect(res.fault).toBe(FaultReason.TRANSLATION);
            else if (o.write && !m.w) expect(res.fault).toBe(FaultReason.PERMISSION);
            else expect(res).toEqual({ ok: true, pa: m.pa + o.off, fault: 0, faultDetail: 0 });
          }
        }
        r.drainFaults();
        pt.free();
      }),
      { numRuns: 60 },
    );
  });
});

describe('driver command queue', () => {
  it('recovers from a halted queue by replacing the bad command with a SYNC', async () => {
    const r = new Rig();
    const q = new DriverCommandQueue('rig', r.mem, r.regs, r.cmdq, r.cmdqLog2, r.syncWord, 1000);
    await q.submit(3, (u32, w, k) => {
      u32[w] = k === 1 ? 0x7f : 6; // an illegal opcode in the middle
      u32[w + 1] = 0;
      u32[w + 2] = 0;
      u32[w + 3] = 0;
    });
    expect(q.errorsRecovered).toBe(1);
    expect(r.regs.read32(REG_GERROR)).toBe(r.regs.read32(REG_GERRORN));
    expect(r.cons).toBe(4);
    expect(r.hw.stats().cmdqErrors).toBe(1);
  });

  it('splits batches larger than the ring', async () => {
    const r = new Rig({ cmdqLog2: 2 }); // 4 entries
    const q = new DriverCommandQueue('rig', r.mem, r.regs, r.cmdq, 2, r.syncWord, 1000);
    await q.submit(10, (u32, w) => {
      u32[w] = 1; // CMD_INV_ALL
      u32[w + 1] = u32[w + 2] = u32[w + 3] = 0;
    });
    expect(q.batches).toBe(4); // 3 + 3 + 3 + 1 commands, each batch + SYNC
    expect(r.hw.stats().commands).toBe(14);
  });
});
