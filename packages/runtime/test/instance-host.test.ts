import { threadId } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ACCESS_READ,
  ACCESS_WRITE,
  InstanceError,
  InstanceGroup,
  InstanceHost,
  NO_PASID,
  PhysMem,
  dmaRequest,
  waitUntil,
} from '../src/index.js';
import type { InstanceMode, InstanceOptions, WorkloadSpec } from '../src/index.js';
import { IDENTITY_OFFSET } from './fixtures/identity-backend.js';
import { MAGIC_EXIT, MAGIC_HANG, MAGIC_THROW, REG_ENTERED, REG_RELEASE } from './fixtures/crashing-backend.js';

const fixture = (name: string): string => new URL(`./fixtures/${name}.ts`, import.meta.url).href;
const IDENTITY = fixture('identity-backend');

const mem = PhysMem.create(1 << 20);
const started: InstanceHost[] = [];

async function start(o: Partial<InstanceOptions> & { mode: InstanceMode }): Promise<InstanceHost> {
  const h = await InstanceHost.start({ id: 'iommu0', backend: IDENTITY, mem, ...o });
  started.push(h);
  return h;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((h) => h.shutdown()));
});

/** The expected rejection: an InstanceError with this code, naming the instance. */
async function expectInstanceError(p: Promise<unknown>, code: string, id: string, ...inMessage: string[]): Promise<InstanceError> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InstanceError);
  const ie = err as InstanceError;
  expect(ie.code).toBe(code);
  expect(ie.instanceId).toBe(id);
  expect(ie.message).toContain(`"${id}"`);
  for (const s of inMessage) expect(ie.message).toContain(s);
  return ie;
}

/** Reference checksum of a sequential rid-1 workload on the identity model. */
function expectedChecksum(spec: WorkloadSpec, offset: number): number {
  let sum = 0;
  let off = 0;
  for (let i = 0; i < spec.count; i++) {
    sum = (sum + ((spec.iovaBase + off + offset) >>> 0)) >>> 0;
    off = (off + spec.step) % spec.length;
  }
  return sum;
}

describe.each<InstanceMode>(['in-thread', 'worker'])('InstanceHost (%s)', (mode) => {
  it('starts the backend and reports its id, version and mode', async () => {
    const h = await start({ mode });
    expect(h.id).toBe('iommu0');
    expect(h.mode).toBe(mode);
    expect(h.backendId).toBe('identity');
    expect(h.apiVersion).toBe(1);
    expect(h.alive).toBe(true);
    expect(h.mem).toBe(mem);
    expect(h.regs.size).toBe(0x100); // the backend's registerFileBytes
    expect(h.hardware === undefined).toBe(mode === 'worker');
    const tid = await h.ping();
    if (mode === 'worker') expect(tid).not.toBe(threadId);
    else expect(tid).toBe(threadId);
  });

  it('uses registerFileBytes from the options when given', async () => {
    const h = await start({ mode, registerFileBytes: 0x400 });
    expect(h.regs.size).toBe(0x400);
    h.regs.write32(0x3fc, 7); // the last register exists
    expect(h.regs.read32(0x3fc)).toBe(7);
    h.regs.write32(0, 0x55);
    await waitUntil(() => h.regs.read32(4) === 0x55, { doorbell: h.regs.doorbell, timeoutMs: 5000, what: 'reg 4' });
    expect(h.regs.read32(4)).toBe(0x55);
  });

  it('runs service() when a register is written (doorbell path)', async () => {
    const h = await start({ mode });
    h.regs.write32(0, 0x1234abcd);
    await waitUntil(() => h.regs.read32(4) === 0x1234abcd, { timeoutMs: 5000, what: 'reg 4 = reg 0' });
    expect(h.regs.read32(4)).toBe(0x1234abcd);
    const s = await h.stats();
    expect(s.serviceCalls).toBe(1);
    expect(s.services).toBe(1);
  });

  it('translates through the device port (ok, fault, wire encoding, > 2^32)', async () => {
    const h = await start({ mode, options: { offset: 0x200000 } });
    const ok = await h.port.translate(dmaRequest({ rid: 1, iova: 0x3000 }));
    expect(ok).toEqual({ ok: true, pa: 0x203000, fault: 0, faultDetail: 0 });
    const high = await h.port.translate(dmaRequest({ rid: 1, iova: 2 ** 40 + 0x5000 }));
    expect(high).toEqual({ ok: true, pa: 2 ** 40 + 0x205000, fault: 0, faultDetail: 0 });
    const fault = await h.port.translate({ rid: 7, pasid: 5, iova: 0x1000, access: ACCESS_WRITE, privileged: true });
    expect(fault).toEqual({ ok: false, pa: 0, fault: 1, faultDetail: (7 | (6 << 8) | (ACCESS_WRITE << 16) | (1 << 24)) >>> 0 });
    const noPasid = await h.port.translate({ rid: 3, pasid: NO_PASID, iova: 0, access: ACCESS_READ, privileged: false });
    expect(noPasid.faultDetail).toBe(3 | (ACCESS_READ << 16));
    const s = await h.stats();
    expect(s).toEqual({ translations: 4, faults: 2, services: 0, offset: 0x200000, serviceCalls: 0, devicePortRequests: 4 });
  });

  it('translateMany keeps request order (more requests than the ring holds)', async () => {
    const h = await start({ mode });
    const reqs = Array.from({ length: 3000 }, (_, i) => dmaRequest({ rid: i % 3 === 0 ? 2 : 1, iova: i * 0x1000 }));
    const res = await h.port.translateMany(reqs);
    expect(res.length).toBe(3000);
    for (let i = 0; i < 3000; i++) {
      if (i % 3 === 0) expect(res[i]).toEqual({ ok: false, pa: 0, fault: 1, faultDetail: 2 | (ACCESS_READ << 16) });
      else expect(res[i]).toEqual({ ok: true, pa: i * 0x1000 + IDENTITY_OFFSET, fault: 0, faultDetail: 0 });
    }
    const s = await h.stats();
    expect(s.devicePortRequests).toBe(3000);
    expect(s.translations).toBe(3000);
    expect(s.faults).toBe(1000);
  });

  it('runs a workload next to the model', async () => {
    const h = await start({ mode });
    const spec: WorkloadSpec = { pattern: 'sequential', rid: 1, iovaBase: 0x10000, length: 16 * 4096, step: 4096, count: 1000 };
    const r = await h.runWorkload(spec);
    expect(r.translations).toBe(1000);
    expect(r.faults).toBe(0);
    expect(r.checksum).toBe(expectedChecksum(spec, IDENTITY_OFFSET));
    const f = await h.runWorkload({ ...spec, rid: 9, pattern: 'random', seed: 42 });
    expect(f.translations).toBe(1000);
    expect(f.faults).toBe(1000);
    expect(f.checksum).toBe(0);
    const s = await h.stats();
    expect(s.translations).toBe(2000);
    expect(s.faults).toBe(1000);
    expect(s.devicePortRequests).toBe(0);
  });

  it('rejects a bad workload spec with BAD_ARGUMENT naming the instance', async () => {
    const h = await start({ mode });
    await expectInstanceError(
      h.runWorkload({ pattern: 'sequential', rid: 1, iovaBase: 0, length: 0, step: 4096, count: 1 }),
      'BAD_ARGUMENT',
      'iommu0',
      'length',
    );
    expect(h.alive).toBe(true);
    expect(await h.ping()).toBeTypeOf('number');
  });

  it('reset() resets the model and the counters', async () => {
    const h = await start({ mode });
    h.regs.write32(0, 9);
    await waitUntil(() => h.regs.read32(4) === 9, { timeoutMs: 5000 });
    await h.port.translate(dmaRequest({ rid: 1, iova: 0 }));
    await h.reset();
    expect(h.regs.read32(4)).toBe(0);
    expect(await h.stats()).toEqual({
      translations: 0,
      faults: 0,
      services: 0,
      offset: IDENTITY_OFFSET,
      serviceCalls: 0,
      devicePortRequests: 0,
    });
  });

  it('after shutdown every call rejects with SHUT_DOWN; shutdown is idempotent', async () => {
    const h = await start({ mode });
    await h.shutdown();
    expect(h.alive).toBe(false);
    await expectInstanceError(h.ping(), 'SHUT_DOWN', 'iommu0');
    await expectInstanceError(h.stats(), 'SHUT_DOWN', 'iommu0');
    await expectInstanceError(h.port.translate(dmaRequest({ rid: 1 })), 'SHUT_DOWN', 'iommu0');
    await h.shutdown();
  });

  it('start() rejects when createHardware throws (BAD_BACKEND naming the instance)', async () => {
    await expectInstanceError(
      InstanceHost.start({ id: 'thrower', backend: fixture('throwing-backend'), mem, mode }),
      'BAD_BACKEND',
      'thrower',
      'no hardware for you',
    );
  });

  it('start() rejects an unsupported apiVersion naming both versions', async () => {
    await expectInstanceError(
      InstanceHost.start({ id: 'v99', backend: fixture('bad-version-backend'), mem, mode, acceptApiVersions: [1, 0] }),
      'API_VERSION',
      'v99',
      'apiVersion 99',
      'accepted apiVersion: 1, 0',
    );
  });

  it('start() rejects a backend that cannot be imported or is not a backend', async () => {
    await expectInstanceError(
      InstanceHost.start({ id: 'ghost', backend: fixture('no-such-backend'), mem, mode }),
      'BAD_BACKEND',
      'ghost',
      'no-such-backend',
    );
    await expectInstanceError(
      InstanceHost.start({ id: 'notbackend', backend: fixture('square-job'), mem, mode }),
      'BAD_BACKEND',
      'notbackend',
      'createHardware',
    );
  });
});

describe('InstanceHost (worker): control plane and failures', () => {
  it('stats() and ping() answer while a long runWorkload is running in the worker', async () => {
    const h = await start({ mode: 'worker' });
    const count = 20_000_000;
    let workloadDone = false;
    const run = h.runWorkload({ pattern: 'sequential', rid: 1, iovaBase: 0, length: 1 << 20, step: 4096, count }).then((r) => {
      workloadDone = true;
      return r;
    });
    const tid = await h.ping();
    const pingBeforeEnd = !workloadDone;
    const s = await h.stats();
    const statsBeforeEnd = !workloadDone;
    expect(tid).not.toBe(threadId);
    expect(pingBeforeEnd).toBe(true);
    expect(statsBeforeEnd).toBe(true);
    expect(s.translations).toBeLessThan(count);
    const r = await run;
    expect(r.translations).toBe(count);
    expect((await h.stats()).translations).toBe(count);
  });

  it('a workload longer than callTimeoutMs completes (liveness pings instead of a deadline)', async () => {
    const h = await start({ mode: 'worker', callTimeoutMs: 200 });
    const count = 30_000_000;
    const r = await h.runWorkload({ pattern: 'random', rid: 1, iovaBase: 0, length: 1 << 24, step: 4096, count, seed: 3 });
    expect(r.translations).toBe(count);
    expect(r.faults).toBe(0);
  });

  it('serves the device port while a workload runs', async () => {
    const h = await start({ mode: 'worker' });
    const run = h.runWorkload({ pattern: 'random', rid: 1, iovaBase: 0, length: 1 << 20, step: 4096, count: 2_000_000, seed: 7 });
    const r = await h.port.translate(dmaRequest({ rid: 1, iova: 0x7000 }));
    expect(r).toEqual({ ok: true, pa: 0x7000 + IDENTITY_OFFSET, fault: 0, faultDetail: 0 });
    expect((await run).translations).toBe(2_000_000);
  });

  for (const [label, magic, cause] of [
    ['exits (process.exit)', MAGIC_EXIT, 'exited with code 3'],
    ['throws inside service()', MAGIC_THROW, 'model exploded in service()'],
  ] as const) {
    it(`when the worker ${label}, pending and later calls reject with WORKER_DIED naming the instance`, async () => {
      const h = await InstanceHost.start({ id: 'crashy', backend: fixture('crashing-backend'), mem });
      started.push(h);
      h.regs.write32(0, magic);
      await waitUntil(() => h.regs.read32(REG_ENTERED) === 1, { timeoutMs: 10_000, what: 'model entered service()' });
      // The worker is now stuck in service(): these calls are pending.
      const ping = h.ping();
      const stats = h.stats();
      const translate = h.port.translate(dmaRequest({ rid: 1, iova: 0x1000 }));
      h.regs.write32(REG_RELEASE, 1);
      await expectInstanceError(ping, 'WORKER_DIED', 'crashy', cause);
      await expectInstanceError(stats, 'WORKER_DIED', 'crashy', cause);
      await expectInstanceError(translate, 'WORKER_DIED', 'crashy', cause);
      expect(h.alive).toBe(false);
      // Later calls reject at once with the same error.
      await expectInstanceError(h.reset(), 'WORKER_DIED', 'crashy', cause);
      await expectInstanceError(h.port.translate(dmaRequest({ rid: 1 })), 'WORKER_DIED', 'crashy', cause);
      await h.shutdown();
    });
  }

  it('a control call or device-port request to a hung worker rejects with TIMEOUT after callTimeoutMs', async () => {
    const h = await InstanceHost.start({ id: 'hung', backend: fixture('crashing-backend'), mem, callTimeoutMs: 300 });
    started.push(h);
    expect(await h.ping()).not.toBe(threadId);
    h.regs.write32(0, MAGIC_HANG);
    await waitUntil(() => h.regs.read32(REG_ENTERED) === 1, { timeoutMs: 10_000, what: 'model entered service()' });
    await expectInstanceError(h.ping(), 'TIMEOUT', 'hung', 'ping()', '300 ms');
    await expectInstanceError(h.port.translate(dmaRequest({ rid: 1, iova: 0x2000 })), 'TIMEOUT', 'hung', 'iova 0x2000');
    // runWorkload is not bounded by callTimeoutMs, but its liveness pings are.
    await expectInstanceError(
      h.runWorkload({ pattern: 'sequential', rid: 1, iovaBase: 0, length: 4096, step: 4096, count: 1 }),
      'TIMEOUT',
      'hung',
      'runWorkload() abandoned, the worker stopped answering',
      'ping() got no answer within 300 ms',
    );
    await h.shutdown(); // terminates the busy worker
    expect(h.alive).toBe(false);
    await expectInstanceError(h.stats(), 'SHUT_DOWN', 'hung');
  });
});

describe('InstanceGroup', () => {
  it('adds, looks up, lists and shuts down instances', async () => {
    const g = new InstanceGroup();
    const a = g.add(await InstanceHost.start({ id: 'a', backend: IDENTITY, mem, mode: 'in-thread' }));
    const b = g.add(await InstanceHost.start({ id: 'b', backend: IDENTITY, mem, mode: 'worker' }));
    expect(g.ids()).toEqual(['a', 'b']);
    expect(g.size).toBe(2);
    expect(g.get('a')).toBe(a);
    expect(g.get('b')).toBe(b);
    expect(g.has('b')).toBe(true);
    expect(() => g.add(a)).toThrowError(/"a" is already in this group/);
    let err: unknown;
    try {
      g.get('nope');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InstanceError);
    expect((err as InstanceError).code).toBe('UNKNOWN_INSTANCE');
    expect((err as InstanceError).instanceId).toBe('nope');
    expect((err as InstanceError).message).toBe('unknown instance "nope" (known: "a", "b")');
    await g.shutdownAll();
    expect(g.ids()).toEqual([]);
    expect(a.alive).toBe(false);
    expect(b.alive).toBe(false);
  });
});
