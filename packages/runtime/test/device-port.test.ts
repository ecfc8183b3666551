import { describe, expect, it } from 'vitest';
import { DevicePortServer, DirectDevicePort, RingDevicePort, createDevicePortRings } from '../src/device-port.js';
import type { InstanceCounters } from '../src/device-port.js';
import { ACCESS_EXEC, ACCESS_READ, InstanceError, NO_PASID, RecordRing, dmaRequest } from '../src/index.js';
import type { DmaRequest, DmaResult, HostedHardware } from '../src/index.js';

/** rid 1 translates to iova + 0x1000; others fault with detail = rid | (pasid+1) << 8 | access << 16 | priv << 24. */
function model(): HostedHardware & { reqs: DmaRequest[] } {
  const reqs: DmaRequest[] = [];
  return {
    reqs,
    translate(req, out): DmaResult {
      reqs.push({ ...req });
      if (req.rid === 1) {
        out.ok = true;
        out.pa = req.iova + 0x1000;
      } else {
        out.ok = false;
        out.fault = 3;
        out.faultDetail = ((req.rid & 0xff) | ((req.pasid + 1) << 8) | (req.access << 16) | ((req.privileged ? 1 : 0) << 24)) >>> 0;
      }
      return out;
    },
    service: () => 0,
    reset: () => undefined,
    stats: () => ({}),
  };
}

/** A host port and a same-thread server, served from setImmediate (stands in for the worker loop). */
function loop(entries: number, timeoutMs = 5000) {
  const rings = createDevicePortRings(entries);
  const hw = model();
  const counters: InstanceCounters = { serviceCalls: 0, devicePortRequests: 0 };
  let wakes = 0;
  const port = new RingDevicePort({
    instanceId: 'dp0',
    requests: rings.requests,
    completions: rings.completions,
    timeoutMs,
    wake: () => {
      wakes++;
    },
  });
  const server = new DevicePortServer(hw, { requests: rings.requests.handle, completions: rings.completions.handle }, counters);
  let serving = false;
  const serve = (): void => {
    if (!serving) return;
    server.drain();
    setImmediate(serve);
  };
  return {
    port,
    server,
    hw,
    counters,
    rings,
    wakes: () => wakes,
    start: () => {
      serving = true;
      setImmediate(serve);
    },
    stop: () => {
      serving = false;
    },
  };
}

describe('RingDevicePort + DevicePortServer', () => {
  it('round-trips requests through the rings with the wire format intact', async () => {
    const l = loop(16);
    l.start();
    try {
      const ok = await l.port.translate(dmaRequest({ rid: 1, iova: 2 ** 45 + 0xabc000 }));
      expect(ok).toEqual({ ok: true, pa: 2 ** 45 + 0xabd000, fault: 0, faultDetail: 0 });
      const f = await l.port.translate({ rid: 0x42, pasid: 0x7e, iova: 0x1000, access: ACCESS_EXEC | ACCESS_READ, privileged: true });
      expect(f).toEqual({ ok: false, pa: 0, fault: 3, faultDetail: (0x42 | (0x7f << 8) | (5 << 16) | (1 << 24)) >>> 0 });
      expect(l.hw.reqs).toEqual([
        { rid: 1, pasid: NO_PASID, iova: 2 ** 45 + 0xabc000, access: ACCESS_READ, privileged: false },
        { rid: 0x42, pasid: 0x7e, iova: 0x1000, access: ACCESS_EXEC | ACCESS_READ, privileged: true },
      ]);
      expect(l.counters.devicePortRequests).toBe(2);
      expect(l.wakes()).toBe(2);
      expect(l.port.pendingCount).toBe(0);
    } finally {
      l.stop();
    }
  });

  it('keeps order and limits in-flight requests to the ring size (backlog)', async () => {
    const l = loop(4);
    const reqs = Array.from({ length: 37 }, (_, i) => dmaRequest({ rid: 1, iova: i * 0x1000 }));
    const all = l.port.translateMany(reqs);
    // Nothing served yet: only 4 requests went into the ring.
    expect(l.rings.requests.count()).toBe(4);
    expect(l.port.pendingCount).toBe(37);
    l.start();
    try {
      const res = await all;
      expect(res.map((r) => r.pa)).toEqual(reqs.map((r) => r.iova + 0x1000));
      expect(l.hw.reqs.map((r) => r.iova)).toEqual(reqs.map((r) => r.iova));
      expect(l.counters.devicePortRequests).toBe(37);
    } finally {
      l.stop();
    }
  });

  it('rejects a request with no completion after timeoutMs (TIMEOUT naming instance, rid, iova)', async () => {
    const l = loop(4, 50);
    const err = await l.port.translate(dmaRequest({ rid: 3, iova: 0x5000 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InstanceError);
    expect((err as InstanceError).code).toBe('TIMEOUT');
    expect((err as InstanceError).instanceId).toBe('dp0');
    expect((err as InstanceError).message).toBe(
      'instance "dp0": device-port translate (rid 0x3, iova 0x5000) got no completion within 50 ms',
    );
    // A late completion for the timed-out tag is dropped; the port keeps working.
    l.start();
    try {
      expect(await l.port.translate(dmaRequest({ rid: 1, iova: 0 }))).toEqual({ ok: true, pa: 0x1000, fault: 0, faultDetail: 0 });
    } finally {
      l.stop();
    }
  });

  it('fail() rejects every pending request and every later one', async () => {
    const l = loop(2);
    const ps = [0, 1, 2, 3].map((i) => l.port.translate(dmaRequest({ rid: 1, iova: i })).catch((e: unknown) => e));
    const boom = new InstanceError('WORKER_DIED', 'dp0', 'instance "dp0": worker died (test)');
    l.port.fail(boom);
    expect(await Promise.all(ps)).toEqual([boom, boom, boom, boom]);
    await expect(l.port.translate(dmaRequest({ rid: 1 }))).rejects.toBe(boom);
    expect(l.port.pendingCount).toBe(0);
  });

  it('rejects malformed requests with BAD_ARGUMENT', async () => {
    const l = loop(2);
    for (const bad of [{ iova: -1 }, { iova: 2 ** 53 }, { rid: 1.5 }, { pasid: -2 }, { access: 0x100 }]) {
      await expect(l.port.translate(dmaRequest({ rid: 1, ...bad }))).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    }
    expect(l.rings.requests.count()).toBe(0);
  });

  it('the server keeps completions that do not fit and pushes them on the next drain', () => {
    const requests = RecordRing.create({ entries: 8, recordBytes: 32 });
    const completions = RecordRing.create({ entries: 2, recordBytes: 32 });
    const counters: InstanceCounters = { serviceCalls: 0, devicePortRequests: 0 };
    const server = new DevicePortServer(model(), { requests: requests.handle, completions: completions.handle }, counters);
    for (let tag = 1; tag <= 3; tag++) requests.pushOrThrow([1, 0, tag * 0x1000, 0, ACCESS_READ, tag, 0, 0]);
    expect(server.drain()).toBe(3);
    expect(completions.count()).toBe(2);
    expect(server.hasWork()).toBe(true);
    const out = new Uint32Array(16);
    expect(completions.popBatch(out, 2)).toBe(2);
    expect([out[0], out[1], out[2], out[8], out[10]]).toEqual([1, 1, 0x2000, 2, 0x3000]);
    expect(server.drain()).toBe(0);
    expect(completions.popBatch(out, 2)).toBe(1);
    expect([out[0], out[1], out[2], out[3], out[4], out[5]]).toEqual([3, 1, 0x4000, 0, 0, 0]);
    expect(server.hasWork()).toBe(false);
    expect(counters.devicePortRequests).toBe(3);
  });
});

describe('DirectDevicePort', () => {
  it('calls the model directly and counts requests', async () => {
    const hw = model();
    const counters: InstanceCounters = { serviceCalls: 0, devicePortRequests: 0 };
    const port = new DirectDevicePort(hw, counters);
    expect(await port.translate(dmaRequest({ rid: 1, iova: 0x2000 }))).toEqual({ ok: true, pa: 0x3000, fault: 0, faultDetail: 0 });
    const many = await port.translateMany([dmaRequest({ rid: 2 }), dmaRequest({ rid: 1, iova: 8 })]);
    expect(many).toEqual([
      { ok: false, pa: 0, fault: 3, faultDetail: 2 | (ACCESS_READ << 16) },
      { ok: true, pa: 0x1008, fault: 0, faultDetail: 0 },
    ]);
    expect(counters.devicePortRequests).toBe(3);
  });

  it('rejects when its check throws (instance shut down)', async () => {
    const err = new InstanceError('SHUT_DOWN', 'x', 'instance "x" is shut down');
    const port = new DirectDevicePort(model(), { serviceCalls: 0, devicePortRequests: 0 }, () => {
      throw err;
    });
    await expect(port.translate(dmaRequest())).rejects.toBe(err);
  });
});

describe('device port accepts the issue\'s request shape: { rid, pasid?, iova, access: read|write|exec, privileged? }', () => {
  it('in-thread: names are mapped to ACCESS_* bits and an unknown name is rejected', async () => {
    const hw = model();
    const port = new DirectDevicePort(hw, { serviceCalls: 0, devicePortRequests: 0 });
    const ok = await port.translate({ rid: 1, iova: 0x4000, access: 'read' });
    expect(ok).toEqual({ ok: true, pa: 0x5000, fault: 0, faultDetail: 0 });
    const f = await port.translate({ rid: 2, pasid: 4, iova: 0x10, access: ['read', 'exec'], privileged: true });
    expect(f.faultDetail).toBe(2 | (5 << 8) | ((ACCESS_READ | ACCESS_EXEC) << 16) | (1 << 24));
    await expect(port.translate({ rid: 1, iova: 0, access: 'fly' as never })).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
  });

  it('through the rings: the same request shape crosses the wire exactly', async () => {
    const l = loop(8);
    l.start();
    try {
      const f = await l.port.translate({ rid: 3, iova: 0x20, access: 'write' });
      expect(f.faultDetail).toBe(3 | ((NO_PASID + 1) << 8) | (2 << 16));
    } finally {
      l.stop();
    }
  });
});
