/**
 * Model-based property test of the IOAS / device API over hw-mock devices (in-thread stack):
 * random sequences of MAP (fixed / automatic IOVA), UNMAP (exact, multi-area, or arbitrary
 * ranges), COPY (within and across IOASes, fixed / automatic), device attach / replace / detach,
 * checked against a reference model of which IOVA page maps to which page of the user buffer.
 *
 * After every command: each IOAS's iopt lookups agree with the model page by page, every attached
 * device's DMA through the device port reaches exactly the model's page (the PA the process sees),
 * every other IOVA of the window faults, and a detached device faults everywhere. At the end the
 * context closes and every pin, charge and frame must be released.
 *
 * Both IOASes allow IOVAs only in a window inside the mock aperture, so automatic placement always
 * lands where a device can see it.
 */
import { ACCESS_READ, openBackend, type BackendStack } from '@iommulab/driver-api';
import { PhysMem } from '@iommulab/runtime';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IommufdError } from '../src/errors.js';
import type { Ioas } from '../src/ioas.js';
import { IommuFd } from '../src/iommufd.js';
import { MockTestOps } from '../src/selftest-mock.js';
import { FrameTable } from '../src/user-memory/frames.js';
import { UserProcess } from '../src/user-memory/process.js';
import { FIXED, MOCK_APERTURE_START, PAGE_SIZE, RW } from './fixture.js';
import { HW_MOCK } from './mock-fixture.js';

/** IOVA window (pages) of both IOASes, from MOCK_APERTURE_START. */
const WINDOW = 48;
/** Pages of the user buffer. */
const BUF_PAGES = 24;
const NIOAS = 2;
const NDEV = 2;

type Cmd =
  | { k: 'map'; ioas: number; page: number; n: number; slot: number | null }
  | { k: 'unmap'; ioas: number; slot: number; n: number }
  | { k: 'unmapArea'; ioas: number; pick: number; span: number }
  | { k: 'copy'; src: number; dst: number; pick: number; off: number; n: number; dstSlot: number | null }
  | { k: 'attach'; dev: number; ioas: number }
  | { k: 'detach'; dev: number };

const ioasArb = fc.integer({ min: 0, max: NIOAS - 1 });
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('map' as const), ioas: ioasArb, page: fc.integer({ min: 0, max: BUF_PAGES - 1 }), n: fc.integer({ min: 1, max: 6 }), slot: fc.option(fc.integer({ min: 0, max: WINDOW - 1 }), { nil: null }) }).map((c) => ({ ...c, n: Math.min(c.n, BUF_PAGES - c.page) })) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('unmap' as const), ioas: ioasArb, slot: fc.integer({ min: 0, max: WINDOW - 1 }), n: fc.integer({ min: 1, max: 12 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('unmapArea' as const), ioas: ioasArb, pick: fc.nat(), span: fc.integer({ min: 1, max: 3 }) }) },
  // The source range starts inside an existing area (picked by index) at offset `off`.
  { weight: 3, arbitrary: fc.record({ k: fc.constant('copy' as const), src: ioasArb, dst: ioasArb, pick: fc.nat(), off: fc.nat({ max: 5 }), n: fc.integer({ min: 1, max: 6 }), dstSlot: fc.option(fc.integer({ min: 0, max: WINDOW - 1 }), { nil: null }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('attach' as const), dev: fc.integer({ min: 0, max: NDEV - 1 }), ioas: ioasArb }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('detach' as const), dev: fc.integer({ min: 0, max: NDEV - 1 }) }) },
);

/** One area of the model: `n` IOVA pages from `slot`. */
interface MArea {
  slot: number;
  n: number;
}
/** The reference model. */
interface Model {
  /** Per IOAS: window page -> user buffer page. */
  map: Map<number, number>[];
  /** Per IOAS: areas. */
  areas: MArea[][];
  /** Per device: attached IOAS or null. */
  dev: (number | null)[];
}

interface Real {
  mem: PhysMem;
  proc: UserProcess;
  fd: IommuFd;
  stack: BackendStack;
  mock: MockTestOps;
  buffer: number;
  ioas: number[];
  stdev: number[];
  idev: number[];
  rid: number[];
  /** PA of each buffer page. */
  pa: number[];
}

const iovaOf = (slot: number): number => MOCK_APERTURE_START + slot * PAGE_SIZE;
const slotOf = (iova: bigint): number => (Number(iova) - MOCK_APERTURE_START) / PAGE_SIZE;

async function open(): Promise<{ real: Real; model: Model }> {
  const mem = PhysMem.create(32 * 1024 * 1024);
  const proc = UserProcess.create({ mem });
  const buffer = proc.mmap({ length: BUF_PAGES * PAGE_SIZE, shared: true });
  for (let p = 0; p < BUF_PAGES; p++) proc.write(buffer + p * PAGE_SIZE, Uint8Array.of(p + 1));
  const fd = IommuFd.open({ process: proc });
  const stack = await openBackend(HW_MOCK, { mode: 'in-thread', mem, timeoutMs: 10_000 });
  const mock = new MockTestOps(fd, stack);
  const ioas: number[] = [];
  for (let i = 0; i < NIOAS; i++) {
    const id = (await fd.ioasAlloc()).outIoasId;
    await fd.ioasAllowIovas({ ioasId: id, allowedIovas: [{ start: iovaOf(0), last: iovaOf(WINDOW) - 1 }] });
    ioas.push(id);
  }
  const stdev: number[] = [];
  const idev: number[] = [];
  const rid: number[] = [];
  const dev: (number | null)[] = [];
  for (let d = 0; d < NDEV; d++) {
    const r = await mock.mockDomain(ioas[d % NIOAS]);
    stdev.push(r.outStdevId);
    idev.push(r.outIdevId);
    rid.push(mock.deviceOf(r.outStdevId).dev.rid);
    dev.push(d % NIOAS);
  }
  const pa: number[] = [];
  for (let p = 0; p < BUF_PAGES; p++) pa.push(proc.translate(buffer + p * PAGE_SIZE));
  return {
    real: { mem, proc, fd, stack, mock, buffer, ioas, stdev, idev, rid, pa },
    model: { map: ioas.map(() => new Map()), areas: ioas.map(() => []), dev },
  };
}

async function close(real: Real): Promise<void> {
  await real.fd.close();
  const pins = FrameTable.of(real.mem).pins;
  expect(pins.reduce((a, b) => a + b, 0)).toBe(0);
  expect(real.proc.vmPinned).toBe(0);
  expect(real.proc.account.lockedVm).toBe(0);
  await real.stack.close();
  real.proc.exit();
  expect(real.mem.allocatedFrameCount).toBe(0);
}

function overlaps(areas: readonly MArea[], slot: number, n: number): boolean {
  return areas.some((a) => a.slot < slot + n && slot < a.slot + a.n);
}

/**
 * Expects `p` to reject with `errno`, or resolve when `errno` is null; returns the value
 * (undefined after an error, also for a `tolerated` one).
 */
async function outcome<T>(p: Promise<T>, errno: string | null, what: string, tolerated: string[] = []): Promise<T | undefined> {
  let v: T;
  try {
    v = await p;
  } catch (e) {
    if (!(e instanceof IommufdError)) throw e;
    if (tolerated.includes(e.errno)) return undefined;
    if (errno === null) throw new Error(`${what}: unexpected ${e.errno}: ${e.message}`);
    expect(e.errno, `${what}: ${e.message}`).toBe(errno);
    return undefined;
  }
  if (errno !== null) throw new Error(`${what}: expected ${errno}, it succeeded`);
  return v;
}

/** Places an automatically allocated range in the model (checks it is inside the window and free). */
function placeAuto(model: Model, ioas: number, iova: bigint, n: number, what: string): number {
  const slot = slotOf(iova);
  expect(Number.isInteger(slot) && slot >= 0 && slot + n <= WINDOW, `${what}: auto IOVA 0x${iova.toString(16)} outside the window`).toBe(true);
  expect(overlaps(model.areas[ioas], slot, n), `${what}: auto IOVA overlaps an area`).toBe(false);
  return slot;
}

async function step(real: Real, model: Model, c: Cmd): Promise<void> {
  const what = JSON.stringify(c);
  switch (c.k) {
    case 'map': {
      const areas = model.areas[c.ioas];
      const fixed = c.slot !== null;
      const fits = !fixed || c.slot! + c.n <= WINDOW;
      // Fixed IOVAs past the window are outside the allowed range too, but a fixed map only checks
      // reserved ranges and areas: it succeeds there (inside the aperture).
      const errno = fixed && overlaps(areas, c.slot!, c.n) ? 'EEXIST' : null;
      const res = await outcome(
        real.fd.ioasMap({ flags: RW | (fixed ? FIXED : 0), ioasId: real.ioas[c.ioas], userVa: real.buffer + c.page * PAGE_SIZE, length: c.n * PAGE_SIZE, iova: fixed ? iovaOf(c.slot!) : 0 }),
        errno,
        what,
        // An automatic IOVA may not find room in a fragmented window (not modelled).
        fixed ? [] : ['ENOSPC'],
      );
      if (res === undefined) return;
      const slot = fixed ? c.slot! : placeAuto(model, c.ioas, res.iova, c.n, what);
      if (!fits) {
        // Outside the modelled window: unmap it again to keep the model small.
        await real.fd.ioasUnmap({ ioasId: real.ioas[c.ioas], iova: iovaOf(slot), length: c.n * PAGE_SIZE });
        return;
      }
      areas.push({ slot, n: c.n });
      for (let i = 0; i < c.n; i++) model.map[c.ioas].set(slot + i, c.page + i);
      return;
    }
    case 'unmap':
    case 'unmapArea': {
      const areas = model.areas[c.ioas].slice().sort((a, b) => a.slot - b.slot);
      let slot: number;
      let n: number;
      if (c.k === 'unmap') {
        slot = c.slot;
        n = c.n;
      } else {
        if (areas.length === 0) return;
        const i = c.pick % areas.length;
        const j = Math.min(areas.length - 1, i + c.span - 1);
        slot = areas[i].slot;
        n = areas[j].slot + areas[j].n - slot;
      }
      // iopt_unmap_iova_range: areas in IOVA order; one sticking out is ENOENT (earlier ones stay
      // unmapped); nothing unmapped is ENOENT.
      let errno: string | null = null;
      let removed = 0;
      for (const a of areas) {
        if (!(a.slot < slot + n && slot < a.slot + a.n)) continue;
        if (a.slot < slot || a.slot + a.n > slot + n) {
          errno = 'ENOENT';
          break;
        }
        model.areas[c.ioas].splice(model.areas[c.ioas].indexOf(a), 1);
        for (let k = 0; k < a.n; k++) model.map[c.ioas].delete(a.slot + k);
        removed += a.n;
      }
      if (removed === 0) errno = 'ENOENT';
      const res = await outcome(real.fd.ioasUnmap({ ioasId: real.ioas[c.ioas], iova: iovaOf(slot), length: n * PAGE_SIZE }), errno, what);
      if (res !== undefined) expect(res.length).toBe(BigInt(removed * PAGE_SIZE));
      return;
    }
    case 'copy': {
      // Prefer a source IOAS that has areas; the range mostly stays inside the picked area and
      // sometimes runs one page past it (into an adjacent area, or a hole: ENOENT).
      const srcIdx = model.areas[c.src].length > 0 ? c.src : (c.src + 1) % NIOAS;
      const src = model.map[srcIdx];
      const from = model.areas[srcIdx].slice().sort((a, b) => a.slot - b.slot);
      const pickA = from.length === 0 ? null : from[c.pick % from.length];
      const slot = pickA === null ? c.off : pickA.slot + (c.off % pickA.n);
      const n = pickA === null ? c.n : Math.min(c.n, pickA.slot + pickA.n - slot + (c.pick % 4 === 0 ? 1 : 0));
      let covered = slot + n <= WINDOW;
      for (let i = 0; covered && i < n; i++) covered = src.has(slot + i);
      const fixed = c.dstSlot !== null;
      const dstFits = !fixed || c.dstSlot! + n <= WINDOW;
      let errno: string | null = null;
      if (!covered) errno = 'ENOENT';
      else if (fixed && overlaps(model.areas[c.dst], c.dstSlot!, n)) errno = 'EEXIST';
      const res = await outcome(
        real.fd.ioasCopy({ flags: RW | (fixed ? FIXED : 0), srcIoasId: real.ioas[srcIdx], dstIoasId: real.ioas[c.dst], srcIova: iovaOf(slot), length: n * PAGE_SIZE, dstIova: fixed ? iovaOf(c.dstSlot!) : 0 }),
        errno,
        what,
        // An automatic IOVA may not find room in a fragmented window (not modelled).
        fixed ? [] : ['ENOSPC'],
      );
      if (res === undefined) return;
      const pages = Array.from({ length: n }, (_, i) => src.get(slot + i)!);
      const dstSlot = fixed ? c.dstSlot! : placeAuto(model, c.dst, res.dstIova, n, what);
      if (!dstFits) {
        await real.fd.ioasUnmap({ ioasId: real.ioas[c.dst], iova: iovaOf(dstSlot), length: n * PAGE_SIZE });
        return;
      }
      // One area per source area covered: track them as the kernel creates them.
      let s = 0;
      const srcAreas = model.areas[srcIdx].slice().sort((a, b) => a.slot - b.slot);
      while (s < n) {
        const a = srcAreas.find((x) => x.slot <= slot + s && slot + s < x.slot + x.n)!;
        const len = Math.min(a.slot + a.n, slot + n) - (slot + s);
        model.areas[c.dst].push({ slot: dstSlot + s, n: len });
        s += len;
      }
      for (let i = 0; i < n; i++) model.map[c.dst].set(dstSlot + i, pages[i]);
      return;
    }
    case 'attach': {
      const cur = model.dev[c.dev];
      if (cur === null) {
        await real.fd.deviceAttach({ devId: real.idev[c.dev], ptId: real.ioas[c.ioas] });
      } else {
        await real.fd.deviceReplace({ devId: real.idev[c.dev], ptId: real.ioas[c.ioas] });
      }
      model.dev[c.dev] = c.ioas;
      return;
    }
    case 'detach': {
      await real.fd.deviceDetach({ devId: real.idev[c.dev] });
      model.dev[c.dev] = null;
      return;
    }
  }
}

/** Checks the IOASes and every device against the model. */
async function check(real: Real, model: Model, what: string): Promise<void> {
  for (let i = 0; i < NIOAS; i++) {
    const iopt = real.fd.ctx.objects.get<Ioas>(real.ioas[i], 'ioas').iopt;
    for (let s = 0; s < WINDOW; s++) {
      const l = iopt.lookup(iovaOf(s));
      const want = model.map[i].get(s);
      expect(l === undefined ? undefined : Number(l.address), `${what}: IOAS ${i} lookup slot ${s}`).toBe(want === undefined ? undefined : real.buffer + want * PAGE_SIZE);
    }
  }
  for (let d = 0; d < NDEV; d++) {
    const reqs = [];
    for (let s = 0; s < WINDOW; s++) reqs.push({ rid: real.rid[d], iova: iovaOf(s) + (s % 2) * 2048, access: ACCESS_READ });
    const res = await real.stack.port.translateMany(reqs);
    const on = model.dev[d];
    for (let s = 0; s < WINDOW; s++) {
      const want = on === null ? undefined : model.map[on].get(s);
      const r = res[s];
      if (want === undefined) expect(r.ok, `${what}: device ${d} (IOAS ${on}) slot ${s} must fault`).toBe(false);
      else expect(r.ok ? r.pa : `fault ${r.fault}`, `${what}: device ${d} (IOAS ${on}) slot ${s}`).toBe(real.pa[want] + (s % 2) * 2048);
    }
  }
}

describe('iommufd model-based properties (hw-mock devices)', () => {
  it('map / unmap / copy / attach / replace / detach agree with the reference model', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { minLength: 1, maxLength: 30 }), async (cmds) => {
        const { real, model } = await open();
        try {
          await check(real, model, 'initial');
          for (let i = 0; i < cmds.length; i++) {
            await step(real, model, cmds[i]);
            await check(real, model, `after #${i} ${JSON.stringify(cmds[i])}`);
          }
        } finally {
          await close(real);
        }
      }),
      { numRuns: Number(process.env.PROPS_RUNS ?? 40) },
    );
  }, 60_000);
});
