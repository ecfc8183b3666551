// The device port's other request kinds: PCIe ATS Translation Requests (atsTranslate) and PRI Page
// Request Messages (pageRequest), in-thread and through the rings / an instance worker.
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEVICE_PORT_KIND_ATS,
  DEVICE_PORT_KIND_PAGE_REQUEST,
  DEVICE_PORT_STATUS_BAD_KIND,
  DEVICE_PORT_STATUS_UNSUPPORTED,
  DevicePortServer,
  DirectDevicePort,
  RingDevicePort,
  createDevicePortRings,
} from '../src/device-port.js';
import type { DevicePort, InstanceCounters } from '../src/device-port.js';
import {
  ACCESS_EXEC,
  ACCESS_READ,
  ACCESS_WRITE,
  InstanceError,
  InstanceHost,
  NO_PASID,
  PhysMem,
  RegisterFile,
  RuntimeError,
  dmaRequest,
  waitUntil,
} from '../src/index.js';
import type { DmaResult, HostedHardware, InstanceMode, PageRequestInit } from '../src/index.js';
import { MAGIC_EXIT, REG_ENTERED, REG_RELEASE } from './fixtures/crashing-backend.js';
import {
  KINDS_ATS_OFFSET,
  KINDS_DROP_GRPID,
  KINDS_TRANSLATE_OFFSET,
  createKindsHardware,
  packRequest,
} from './fixtures/kinds-backend.js';

const mem = PhysMem.create(1 << 20);

type KindsHw = HostedHardware & { pages: PageRequestInit[] };

async function kindsModel(options: Record<string, unknown> = {}): Promise<KindsHw> {
  return createKindsHardware({ instanceId: 'k', mem, regs: RegisterFile.create(0x100), options });
}

interface Rig {
  port: DevicePort;
  hw: KindsHw;
  counters: InstanceCounters;
  stop: () => void;
}

/**
 * A port over the kinds model: `direct` calls it in this thread; `ring` goes through the request
 * and completion rings to a same-thread DevicePortServer served from setImmediate (stands in for
 * the worker loop).
 */
async function rig(kind: 'direct' | 'ring', options: Record<string, unknown> = {}, timeoutMs = 5000): Promise<Rig> {
  const hw = await kindsModel(options);
  const counters: InstanceCounters = { serviceCalls: 0, devicePortRequests: 0 };
  if (kind === 'direct') return { port: new DirectDevicePort(hw, counters), hw, counters, stop: () => undefined };
  const rings = createDevicePortRings(8);
  const port = new RingDevicePort({ instanceId: 'dpk', requests: rings.requests, completions: rings.completions, timeoutMs, wake: () => undefined });
  const server = new DevicePortServer(hw, { requests: rings.requests.handle, completions: rings.completions.handle }, counters);
  let serving = true;
  const serve = (): void => {
    if (!serving) return;
    server.drain();
    setImmediate(serve);
  };
  setImmediate(serve);
  return {
    port,
    hw,
    counters,
    stop: () => {
      serving = false;
    },
  };
}

const page = (o: Partial<PageRequestInit> = {}): PageRequestInit => ({
  rid: 3,
  pasid: NO_PASID,
  addr: 0x5000,
  perm: ACCESS_READ,
  grpid: 1,
  last: true,
  ...o,
});

describe.each(['direct', 'ring'] as const)('device port kinds (%s)', (kind) => {
  it('atsTranslate calls the model\'s atsTranslate: exact result, fault fields, addresses above 2^32', async () => {
    const r = await rig(kind);
    try {
      expect(await r.port.atsTranslate(dmaRequest({ rid: 1, iova: 2 ** 45 + 0xabc000 }))).toEqual({
        ok: true,
        pa: 2 ** 45 + 0xabc000 + KINDS_ATS_OFFSET,
        fault: 0,
        faultDetail: 0, // seq 0
      });
      const req = { rid: 0x42, pasid: 0x7e, iova: 0x1000, access: ['read', 'exec'] as const, privileged: true };
      expect(await r.port.atsTranslate(req)).toEqual({
        ok: false,
        pa: 0,
        fault: 2,
        faultDetail: packRequest({ rid: 0x42, pasid: 0x7e, iova: 0x1000, access: ACCESS_READ | ACCESS_EXEC, privileged: true }),
      });
      // translate still goes to translate, not to atsTranslate
      expect(await r.port.translate(dmaRequest({ rid: 1, iova: 0x2000 }))).toEqual({
        ok: true,
        pa: 0x2000 + KINDS_TRANSLATE_OFFSET,
        fault: 0,
        faultDetail: 2,
      });
      expect(r.hw.stats()).toMatchObject({ translations: 1, atsRequests: 2, pageRequests: 0, seq: 3 });
      expect(r.counters.devicePortRequests).toBe(3);
    } finally {
      r.stop();
    }
  });

  it('pageRequest delivers every field exactly and resolves with the model\'s answer (false = dropped)', async () => {
    const r = await rig(kind);
    try {
      const sent: PageRequestInit[] = [
        { rid: 0xffffffff, pasid: 0xfffff, addr: 2 ** 52 + 0x1234_5000, perm: 0xf, grpid: 0x1fe, last: false },
        { rid: 0, pasid: NO_PASID, addr: 0, perm: 0, grpid: 0, last: true },
        { rid: 7, pasid: 0, addr: 0xffff_f000, perm: ACCESS_WRITE | 8, grpid: 0xffffffff, last: true },
      ];
      for (const p of sent) expect(await r.port.pageRequest(p)).toBe(true);
      expect(await r.port.pageRequest(page({ grpid: KINDS_DROP_GRPID }))).toBe(false);
      expect(r.hw.pages).toEqual([...sent, page({ grpid: KINDS_DROP_GRPID })]);
      expect(r.hw.stats()).toMatchObject({ pageRequests: 4, pageDropped: 1, lastPageSeq: 3, lastPageGrpid: KINDS_DROP_GRPID });
      expect(r.counters.devicePortRequests).toBe(4);
    } finally {
      r.stop();
    }
  });

  it('a model without atsTranslate / pageRequest: the calls reject with UNSUPPORTED; translate is unaffected', async () => {
    const r = await rig(kind, { ats: false, pri: false });
    try {
      const ats = await r.port.atsTranslate(dmaRequest({ rid: 1 })).catch((e: unknown) => e);
      expect(ats).toBeInstanceOf(RuntimeError);
      expect(ats).toMatchObject({ code: 'UNSUPPORTED' });
      expect((ats as Error).message).toContain('the model does not implement atsTranslate (no PCIe ATS)');
      const pr = await r.port.pageRequest(page()).catch((e: unknown) => e);
      expect(pr).toBeInstanceOf(RuntimeError);
      expect(pr).toMatchObject({ code: 'UNSUPPORTED' });
      expect((pr as Error).message).toContain('the model does not implement pageRequest (no PCIe PRI)');
      expect(await r.port.translate(dmaRequest({ rid: 1, iova: 0x8000 }))).toEqual({
        ok: true,
        pa: 0x8000 + KINDS_TRANSLATE_OFFSET,
        fault: 0,
        faultDetail: 0,
      });
      // Unsupported requests are not counted as served.
      expect(r.counters.devicePortRequests).toBe(1);
    } finally {
      r.stop();
    }
  });

  it('malformed ATS and page requests reject with BAD_ARGUMENT and never reach the model', async () => {
    const r = await rig(kind);
    try {
      for (const bad of [{ iova: -1 }, { iova: 2 ** 53 }, { rid: 1.5 }, { pasid: -2 }, { access: 0x100 }]) {
        await expect(r.port.atsTranslate(dmaRequest({ rid: 1, ...bad }))).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
      }
      await expect(r.port.atsTranslate({ rid: 1, iova: 0, access: 'fly' as never })).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
      await expect(r.port.atsTranslate(null as never)).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
      const bads: unknown[] = [
        null,
        42,
        { ...page(), rid: -1 },
        { ...page(), rid: 2 ** 32 },
        { ...page(), pasid: -2 },
        { ...page(), pasid: 0xffffffff },
        { ...page(), addr: -0x1000 },
        { ...page(), addr: 2 ** 53 },
        { ...page(), addr: 0.5 },
        { ...page(), perm: 0x100 },
        { ...page(), perm: -1 },
        { ...page(), grpid: -1 },
        { ...page(), grpid: 2 ** 32 },
        { ...page(), grpid: Number.NaN },
        { ...page(), last: 1 },
        { ...page(), last: undefined },
        { rid: 1, addr: 0 },
      ];
      for (const bad of bads) {
        const err = await r.port.pageRequest(bad as PageRequestInit).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(RuntimeError);
        expect(err).toMatchObject({ code: 'BAD_ARGUMENT' });
      }
      expect(await r.port.pageRequest(page({ rid: 9 }))).toBe(true);
      expect(r.hw.pages).toEqual([page({ rid: 9 })]);
      expect(r.hw.stats()).toMatchObject({ atsRequests: 0, pageRequests: 1 });
    } finally {
      r.stop();
    }
  });

  it('interleaved kinds reach the model in submission order', async () => {
    const r = await rig(kind);
    try {
      const t0 = r.port.translate(dmaRequest({ rid: 1, iova: 0x1000 }));
      const a1 = r.port.atsTranslate(dmaRequest({ rid: 1, iova: 0x2000 }));
      const p2 = r.port.pageRequest(page({ grpid: 2 }));
      const m345 = r.port.translateMany([1, 2, 3].map((i) => dmaRequest({ rid: 1, iova: i * 0x10000 })));
      const p6 = r.port.pageRequest(page({ grpid: KINDS_DROP_GRPID }));
      const a7 = r.port.atsTranslate(dmaRequest({ rid: 1, iova: 0x7000 }));
      const t8 = r.port.translate(dmaRequest({ rid: 1, iova: 0x8000 }));
      const ok = (pa: number, seq: number): DmaResult => ({ ok: true, pa, fault: 0, faultDetail: seq });
      expect(await t0).toEqual(ok(0x1000 + KINDS_TRANSLATE_OFFSET, 0));
      expect(await a1).toEqual(ok(0x2000 + KINDS_ATS_OFFSET, 1));
      expect(await p2).toBe(true);
      expect(await m345).toEqual([1, 2, 3].map((i) => ok(i * 0x10000 + KINDS_TRANSLATE_OFFSET, 2 + i)));
      expect(await p6).toBe(false);
      expect(await a7).toEqual(ok(0x7000 + KINDS_ATS_OFFSET, 7));
      expect(await t8).toEqual(ok(0x8000 + KINDS_TRANSLATE_OFFSET, 8));
      expect(r.hw.pages.map((p) => p.grpid)).toEqual([2, KINDS_DROP_GRPID]);
      expect(r.hw.stats()).toMatchObject({ seq: 9, lastPageSeq: 6, translations: 5, atsRequests: 2, pageRequests: 2 });
      expect(r.counters.devicePortRequests).toBe(9);
    } finally {
      r.stop();
    }
  });
});

describe('RingDevicePort + DevicePortServer: request kinds on the wire', () => {
  it('settles calls of every kind in submission order, across the ring backlog, and around UNSUPPORTED', async () => {
    const hw = await kindsModel({ pri: false });
    const rings = createDevicePortRings(4);
    const counters: InstanceCounters = { serviceCalls: 0, devicePortRequests: 0 };
    const port = new RingDevicePort({ instanceId: 'dpk', requests: rings.requests, completions: rings.completions, timeoutMs: 5000, wake: () => undefined });
    const server = new DevicePortServer(hw, { requests: rings.requests.handle, completions: rings.completions.handle }, counters);
    const settled: string[] = [];
    const track = <T>(name: string, p: Promise<T>): Promise<T | unknown> =>
      p.then(
        (v) => {
          settled.push(name);
          return v;
        },
        (e: unknown) => {
          settled.push(`${name}!`);
          return e;
        },
      );
    const calls = [
      track('t0', port.translate(dmaRequest({ rid: 1, iova: 0 }))),
      track('p1', port.pageRequest(page())),
      track('a2', port.atsTranslate(dmaRequest({ rid: 5 }))),
      track('m3', port.translateMany(Array.from({ length: 6 }, (_, i) => dmaRequest({ rid: 1, iova: i * 0x1000 })))),
      track('a9', port.atsTranslate(dmaRequest({ rid: 1, iova: 0x9000 }))),
      track('p10', port.pageRequest(page())),
      track('t11', port.translate(dmaRequest({ rid: 1, iova: 0xb000 }))),
    ];
    // 12 records, 4 fit in the ring: the rest waits in the host's staging buffer.
    expect(rings.requests.count()).toBe(4);
    expect(port.pendingCount).toBe(12);
    let serving = true;
    const serve = (): void => {
      if (!serving) return;
      server.drain();
      setImmediate(serve);
    };
    setImmediate(serve);
    try {
      const out = await Promise.all(calls);
      expect(settled).toEqual(['t0', 'p1!', 'a2', 'm3', 'a9', 'p10!', 't11']);
      expect(out[1]).toMatchObject({ code: 'UNSUPPORTED', instanceId: 'dpk' });
      expect(out[1]).toBeInstanceOf(InstanceError);
      expect((out[1] as Error).message).toBe('instance "dpk" device port: the model does not implement pageRequest (no PCIe PRI)');
      expect(out[2]).toEqual({ ok: false, pa: 0, fault: 2, faultDetail: packRequest(dmaRequest({ rid: 5 })) });
      expect(out[4]).toEqual({ ok: true, pa: 0x9000 + KINDS_ATS_OFFSET, fault: 0, faultDetail: 8 });
      expect(out[6]).toEqual({ ok: true, pa: 0xb000 + KINDS_TRANSLATE_OFFSET, fault: 0, faultDetail: 9 });
      expect(counters.devicePortRequests).toBe(10);
      expect(port.pendingCount).toBe(0);
    } finally {
      serving = false;
    }
  });

  it('host side: encodes ATS and page requests as documented and maps the completion status', async () => {
    const rings = createDevicePortRings(8);
    const port = new RingDevicePort({ instanceId: 'raw', requests: rings.requests, completions: rings.completions, timeoutMs: 5000, wake: () => undefined });
    const t = port.translate({ rid: 0x11, pasid: 4, iova: 2 ** 40 + 0x3000, access: 'write', privileged: true });
    const a = port.atsTranslate({ rid: 0x12, iova: 0x4000, access: ['read', 'exec'] });
    const p = port.pageRequest({ rid: 0x13, pasid: 0x9, addr: 2 ** 33 + 0x5000, perm: 0xb, grpid: 0x1a5, last: true });
    const p2 = port.pageRequest({ rid: 0x14, pasid: NO_PASID, addr: 0x6000, perm: 1, grpid: 0, last: false });
    const a2 = port.atsTranslate({ rid: 0x15, iova: 0 });
    const p3 = port.pageRequest(page());
    const buf = new Uint32Array(6 * 8);
    expect(rings.requests.popBatch(buf, 6)).toBe(6);
    expect(Array.from(buf.subarray(0, 8))).toEqual([0x11, 5, 0x3000, 2 ** 8, ACCESS_WRITE | 0x100, 1, 0, 0]);
    expect(Array.from(buf.subarray(8, 16))).toEqual([0x12, 0, 0x4000, 0, ACCESS_READ | ACCESS_EXEC, 2, DEVICE_PORT_KIND_ATS, 0]);
    expect(Array.from(buf.subarray(16, 24))).toEqual([0x13, 0xa, 0x5000, 2, 0xb | 0x100, 3, DEVICE_PORT_KIND_PAGE_REQUEST, 0x1a5]);
    expect(Array.from(buf.subarray(24, 32))).toEqual([0x14, 0, 0x6000, 0, 1, 4, DEVICE_PORT_KIND_PAGE_REQUEST, 0]);
    // Completions: translate ok, ATS fault, page queued, page dropped, ATS unsupported, unknown kind.
    rings.completions.pushOrThrow([1, 1, 0x7000, 1, 0, 0, 0, 0]);
    rings.completions.pushOrThrow([2, 0, 0, 0, 0xfffffffe, 0x80000001, 0, 0]);
    rings.completions.pushOrThrow([3, 1, 0, 0, 0, 0, 0, 0]);
    rings.completions.pushOrThrow([4, 0, 0, 0, 0, 0, 0, 0]);
    rings.completions.pushOrThrow([5, 0, 0, 0, 0, 0, DEVICE_PORT_STATUS_UNSUPPORTED, 0]);
    rings.completions.pushOrThrow([6, 0, 0, 0, 0, 0, DEVICE_PORT_STATUS_BAD_KIND, 0]);
    expect(await t).toEqual({ ok: true, pa: 2 ** 32 + 0x7000, fault: 0, faultDetail: 0 });
    expect(await a).toEqual({ ok: false, pa: 0, fault: 0xfffffffe, faultDetail: 0x80000001 });
    expect(await p).toBe(true);
    expect(await p2).toBe(false);
    await expect(a2).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      instanceId: 'raw',
      message: 'instance "raw" device port: the model does not implement atsTranslate (no PCIe ATS)',
    });
    await expect(p3).rejects.toMatchObject({ code: 'WORKER_ERROR', instanceId: 'raw' });
    expect(port.pendingCount).toBe(0);
  });

  it('server side: decodes raw records of every kind and writes the documented completions', async () => {
    const hw = await kindsModel();
    const bare = await kindsModel({ ats: false, pri: false });
    for (const [model, expectStatus] of [
      [hw, 0],
      [bare, DEVICE_PORT_STATUS_UNSUPPORTED],
    ] as const) {
      const rings = createDevicePortRings(8);
      const counters: InstanceCounters = { serviceCalls: 0, devicePortRequests: 0 };
      const server = new DevicePortServer(model, { requests: rings.requests.handle, completions: rings.completions.handle }, counters);
      rings.requests.pushOrThrow([0x21, 3, 0x9000, 1, ACCESS_WRITE | 0x100, 100, DEVICE_PORT_KIND_ATS, 0xdead]);
      rings.requests.pushOrThrow([0x22, 0, 0xa000, 0x10, 0xf | 0x100, 101, DEVICE_PORT_KIND_PAGE_REQUEST, 0x1ff]);
      rings.requests.pushOrThrow([0x23, 8, 0xb000, 0, 4, 102, DEVICE_PORT_KIND_PAGE_REQUEST, 7]);
      rings.requests.pushOrThrow([1, 0, 0xc000, 0, ACCESS_READ, 103, 0, 0]);
      rings.requests.pushOrThrow([1, 0, 0xd000, 0, ACCESS_READ, 104, 99, 0]);
      expect(server.drain()).toBe(5);
      const out = new Uint32Array(5 * 8);
      expect(rings.completions.popBatch(out, 5)).toBe(5);
      const rec = (i: number): number[] => Array.from(out.subarray(i * 8, i * 8 + 8));
      if (expectStatus === 0) {
        const atsReq = { rid: 0x21, pasid: 2, iova: 2 ** 32 + 0x9000, access: ACCESS_WRITE, privileged: true };
        expect(rec(0)).toEqual([100, 0, 0, 0, 2, packRequest(atsReq), 0, 0]);
        expect(rec(1)).toEqual([101, 0, 0, 0, 0, 0, 0, 0]); // dropped (grpid 0x1ff)
        expect(rec(2)).toEqual([102, 1, 0, 0, 0, 0, 0, 0]);
        expect(hw.pages).toEqual([
          { rid: 0x22, pasid: NO_PASID, addr: 0x10 * 2 ** 32 + 0xa000, perm: 0xf, grpid: 0x1ff, last: true },
          { rid: 0x23, pasid: 7, addr: 0xb000, perm: 4, grpid: 7, last: false },
        ]);
        expect(rec(3)).toEqual([103, 1, 0xc000 + KINDS_TRANSLATE_OFFSET, 0, 0, 3, 0, 0]); // faultDetail = seq 3
        expect(counters.devicePortRequests).toBe(4);
      } else {
        for (let i = 0; i < 3; i++) expect(rec(i)).toEqual([100 + i, 0, 0, 0, 0, 0, DEVICE_PORT_STATUS_UNSUPPORTED, 0]);
        expect(rec(3)).toEqual([103, 1, 0xc000 + KINDS_TRANSLATE_OFFSET, 0, 0, 0, 0, 0]);
        expect(counters.devicePortRequests).toBe(1);
      }
      // An unknown kind is answered (never a hang), with status 2, and not served.
      expect(rec(4)).toEqual([104, 0, 0, 0, 0, 0, DEVICE_PORT_STATUS_BAD_KIND, 0]);
    }
  });

  it('an ATS or page request with no completion rejects with TIMEOUT naming the kind, rid and address', async () => {
    const rings = createDevicePortRings(8);
    const port = new RingDevicePort({ instanceId: 'dpk', requests: rings.requests, completions: rings.completions, timeoutMs: 50, wake: () => undefined });
    const [a, p] = await Promise.all([
      port.atsTranslate(dmaRequest({ rid: 3, iova: 0x5000 })).catch((e: unknown) => e),
      port.pageRequest(page({ rid: 4, addr: 0x6000 })).catch((e: unknown) => e),
    ]);
    expect(a).toBeInstanceOf(InstanceError);
    expect(a).toMatchObject({
      code: 'TIMEOUT',
      message: 'instance "dpk": device-port ATS translation request (rid 0x3, iova 0x5000) got no completion within 50 ms',
    });
    expect(p).toMatchObject({
      code: 'TIMEOUT',
      message: 'instance "dpk": device-port page request (rid 0x4, addr 0x6000) got no completion within 50 ms',
    });
  });

  it('fail() rejects pending ATS and page requests, and every later call of any kind', async () => {
    const rings = createDevicePortRings(2);
    const port = new RingDevicePort({ instanceId: 'dpk', requests: rings.requests, completions: rings.completions, timeoutMs: 5000, wake: () => undefined });
    const ps = [
      port.atsTranslate(dmaRequest({ rid: 1 })),
      port.pageRequest(page()),
      port.translate(dmaRequest({ rid: 1 })),
      port.pageRequest(page()), // still staged (ring holds 2)
    ].map((p) => (p as Promise<unknown>).catch((e: unknown) => e));
    const boom = new InstanceError('WORKER_DIED', 'dpk', 'instance "dpk": worker died (test)');
    port.fail(boom);
    expect(await Promise.all(ps)).toEqual([boom, boom, boom, boom]);
    await expect(port.atsTranslate(dmaRequest({ rid: 1 }))).rejects.toBe(boom);
    await expect(port.pageRequest(page())).rejects.toBe(boom);
    expect(port.pendingCount).toBe(0);
  });
});

describe('DirectDevicePort: request kinds', () => {
  it('rejects ATS and page requests when its check throws (instance shut down)', async () => {
    const err = new InstanceError('SHUT_DOWN', 'x', 'instance "x" is shut down');
    const port = new DirectDevicePort(await kindsModel(), { serviceCalls: 0, devicePortRequests: 0 }, () => {
      throw err;
    });
    await expect(port.atsTranslate(dmaRequest())).rejects.toBe(err);
    await expect(port.pageRequest(page())).rejects.toBe(err);
  });
});

// ------------------------------------------------------------------------------ through InstanceHost

const KINDS = new URL('./fixtures/kinds-backend.ts', import.meta.url).href;
const started: InstanceHost[] = [];

async function start(mode: InstanceMode, options: Record<string, unknown> = {}, id = 'kinds0'): Promise<InstanceHost> {
  const h = await InstanceHost.start({ id, backend: KINDS, mem, mode, options });
  started.push(h);
  return h;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((h) => h.shutdown()));
});

describe.each<InstanceMode>(['in-thread', 'worker'])('InstanceHost (%s): device-port request kinds', (mode) => {
  it('ATS translation requests and page requests reach the model exactly, in order with translations', async () => {
    const h = await start(mode);
    const calls = [
      h.port.translate(dmaRequest({ rid: 1, iova: 0x1000 })),
      h.port.atsTranslate({ rid: 1, pasid: 3, iova: 2 ** 40 + 0x2000, access: 'write', privileged: true }),
      h.port.pageRequest({ rid: 0x55, pasid: 0x1234, addr: 2 ** 44 + 0x7000, perm: 0xb, grpid: 0x1a5, last: false }),
      h.port.atsTranslate({ rid: 9, pasid: 3, iova: 0x2000, access: ['read', 'exec'] }),
      h.port.pageRequest(page({ grpid: KINDS_DROP_GRPID })),
      h.port.translateMany([dmaRequest({ rid: 1, iova: 0x3000 }), dmaRequest({ rid: 2, iova: 0x4000 })]),
    ];
    const [t, a, p, af, pd, m] = await Promise.all(calls as Promise<unknown>[]);
    expect(t).toEqual({ ok: true, pa: 0x1000 + KINDS_TRANSLATE_OFFSET, fault: 0, faultDetail: 0 });
    expect(a).toEqual({ ok: true, pa: 2 ** 40 + 0x2000 + KINDS_ATS_OFFSET, fault: 0, faultDetail: 1 });
    expect(p).toBe(true);
    expect(af).toEqual({
      ok: false,
      pa: 0,
      fault: 2,
      faultDetail: packRequest({ rid: 9, pasid: 3, iova: 0x2000, access: ACCESS_READ | ACCESS_EXEC, privileged: false }),
    });
    expect(pd).toBe(false);
    expect(m).toEqual([
      { ok: true, pa: 0x3000 + KINDS_TRANSLATE_OFFSET, fault: 0, faultDetail: 5 },
      { ok: false, pa: 0, fault: 1, faultDetail: packRequest(dmaRequest({ rid: 2, iova: 0x4000 })) },
    ]);
    const s = await h.stats();
    expect(s).toMatchObject({
      translations: 3,
      atsRequests: 2,
      pageRequests: 2,
      pageDropped: 1,
      seq: 7,
      lastPageSeq: 4,
      lastPageRid: 3,
      lastPagePasid: NO_PASID,
      lastPageAddr: 0x5000,
      lastPagePerm: ACCESS_READ,
      lastPageGrpid: KINDS_DROP_GRPID,
      lastPageLast: 1,
      devicePortRequests: 7,
    });
    // The first page request, checked on its own.
    await h.reset();
    expect(await h.port.pageRequest({ rid: 0x55, pasid: 0x1234, addr: 2 ** 44 + 0x7000, perm: 0xb, grpid: 0x1a5, last: false })).toBe(true);
    expect(await h.stats()).toMatchObject({
      lastPageSeq: 0,
      lastPageRid: 0x55,
      lastPagePasid: 0x1234,
      lastPageAddr: 2 ** 44 + 0x7000,
      lastPagePerm: 0xb,
      lastPageGrpid: 0x1a5,
      lastPageLast: 0,
    });
  });

  it('a backend without ATS / PRI: atsTranslate and pageRequest reject with UNSUPPORTED', async () => {
    const h = await start(mode, { ats: false, pri: false });
    for (const p of [h.port.atsTranslate(dmaRequest({ rid: 1 })), h.port.pageRequest(page())] as Promise<unknown>[]) {
      const err = await p.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RuntimeError);
      expect(err).toMatchObject({ code: 'UNSUPPORTED' });
    }
    expect(await h.port.translate(dmaRequest({ rid: 1, iova: 0 }))).toMatchObject({ ok: true });
    expect((await h.stats()).devicePortRequests).toBe(1);
  });

  it('bad input rejects with BAD_ARGUMENT; after shutdown every kind rejects with SHUT_DOWN', async () => {
    const h = await start(mode);
    await expect(h.port.pageRequest({ ...page(), grpid: -1 })).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    await expect(h.port.atsTranslate(dmaRequest({ rid: 1, iova: -1 }))).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    await h.shutdown();
    await expect(h.port.atsTranslate(dmaRequest({ rid: 1 }))).rejects.toMatchObject({ code: 'SHUT_DOWN' });
    await expect(h.port.pageRequest(page())).rejects.toMatchObject({ code: 'SHUT_DOWN' });
  });
});

describe('InstanceHost (worker): device-port request kinds when the worker dies', () => {
  it('pending ATS, page-request and translate calls reject with WORKER_DIED, and later calls at once', async () => {
    const h = await start('worker', {}, 'kcrash');
    h.regs.write32(0, MAGIC_EXIT);
    await waitUntil(() => h.regs.read32(REG_ENTERED) === 1, { timeoutMs: 10_000, what: 'model entered service()' });
    // The worker is stuck in service(): these are pending in the rings.
    const pending = [
      h.port.atsTranslate(dmaRequest({ rid: 1, iova: 0x1000 })),
      h.port.pageRequest(page()),
      h.port.translate(dmaRequest({ rid: 1, iova: 0x2000 })),
      h.port.pageRequest(page({ grpid: 5 })),
    ].map((p) => (p as Promise<unknown>).then(() => new Error('expected a rejection'), (e: unknown) => e));
    h.regs.write32(REG_RELEASE, 1);
    const errs = await Promise.all(pending);
    for (const e of errs) {
      expect(e).toBeInstanceOf(InstanceError);
      expect(e).toMatchObject({ code: 'WORKER_DIED', instanceId: 'kcrash' });
      expect((e as Error).message).toContain('exited with code 3');
    }
    await expect(h.port.atsTranslate(dmaRequest({ rid: 1 }))).rejects.toMatchObject({ code: 'WORKER_DIED' });
    await expect(h.port.pageRequest(page())).rejects.toMatchObject({ code: 'WORKER_DIED' });
  });
});
