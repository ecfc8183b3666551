import { describe, expect, it } from 'vitest';
import { ACCESS_READ, ACCESS_WRITE, NO_PASID, RuntimeError, WORKLOAD_CHUNK, runWorkload, runWorkloadSync } from '../src/index.js';
import type { DmaRequest, DmaResult, HostedHardware, WorkloadSpec } from '../src/index.js';

/** A model that records every request (allocates: for checking addresses only). */
function recorder(faultAbove = Infinity): HostedHardware & { seen: DmaRequest[] } {
  const seen: DmaRequest[] = [];
  return {
    seen,
    translate(req: DmaRequest, out: DmaResult): DmaResult {
      seen.push({ ...req });
      out.ok = req.iova < faultAbove;
      out.pa = out.ok ? req.iova + 0x1_0000_0000 + 3 : 0;
      out.fault = out.ok ? 0 : 2;
      out.faultDetail = 0;
      return out;
    },
    service: () => 0,
    reset: () => undefined,
    stats: () => ({}),
  };
}

/** A model that does not allocate. */
function counter(): HostedHardware & { n: number; lastReq: DmaRequest | undefined; lastOut: DmaResult | undefined } {
  const m = {
    n: 0,
    lastReq: undefined as DmaRequest | undefined,
    lastOut: undefined as DmaResult | undefined,
    translate(req: DmaRequest, out: DmaResult): DmaResult {
      m.n++;
      m.lastReq = req;
      m.lastOut = out;
      out.ok = true;
      out.pa = req.iova;
      return out;
    },
    service: () => 0,
    reset: () => undefined,
    stats: () => ({ n: m.n }),
  };
  return m;
}

const base: WorkloadSpec = { pattern: 'sequential', rid: 5, iovaBase: 0x40000, length: 4 * 4096, step: 4096, count: 10 };

describe('runWorkloadSync', () => {
  it('sequential walks the range in order and wraps', () => {
    const hw = recorder();
    const r = runWorkloadSync(hw, base);
    expect(hw.seen.map((q) => q.iova)).toEqual([
      0x40000, 0x41000, 0x42000, 0x43000, 0x40000, 0x41000, 0x42000, 0x43000, 0x40000, 0x41000,
    ]);
    expect(hw.seen[0]).toEqual({ rid: 5, pasid: NO_PASID, iova: 0x40000, access: ACCESS_READ, privileged: false });
    expect(r.translations).toBe(10);
    expect(r.faults).toBe(0);
    // pa = iova + 2^32 + 3: low 32 bits are iova + 3
    const expected = hw.seen.reduce((s, q) => (s + q.iova + 3) >>> 0, 0);
    expect(r.checksum).toBe(expected);
    expect(r.elapsedMs).toBeGreaterThanOrEqual(0);
    expect(typeof r.heapUsedDelta).toBe('number');
  });

  it('strided uses base + (i * step) mod length', () => {
    const hw = recorder();
    runWorkloadSync(hw, { ...base, pattern: 'strided', length: 10_000, step: 3000, count: 6, pasid: 9, access: ACCESS_WRITE });
    expect(hw.seen.map((q) => q.iova - 0x40000)).toEqual([0, 3000, 6000, 9000, 2000, 5000]);
    expect(hw.seen[5].pasid).toBe(9);
    expect(hw.seen[5].access).toBe(ACCESS_WRITE);
  });

  it('random is a seeded xorshift32 over the pages of the range', () => {
    const a = recorder();
    const b = recorder();
    const c = recorder();
    const spec: WorkloadSpec = { ...base, pattern: 'random', length: 64 * 4096, count: 200, seed: 1234 };
    runWorkloadSync(a, spec);
    runWorkloadSync(b, spec);
    runWorkloadSync(c, { ...spec, seed: 99 });
    const ia = a.seen.map((q) => q.iova);
    expect(b.seen.map((q) => q.iova)).toEqual(ia);
    expect(c.seen.map((q) => q.iova)).not.toEqual(ia);
    // reference xorshift32
    let x = 1234;
    const ref: number[] = [];
    for (let i = 0; i < 200; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      ref.push(0x40000 + Math.floor(((x >>> 0) * 64) / 2 ** 32) * 4096); // page = floor(u32 * pages / 2^32)
    }
    expect(ia).toEqual(ref);
  });

  it('counts faults and leaves them out of the checksum', () => {
    const hw = recorder(0x42000);
    const r = runWorkloadSync(hw, base);
    expect(r.translations).toBe(10);
    expect(r.faults).toBe(4); // 0x42000 and 0x43000, twice each
    expect(r.checksum).toBe(((0x40003 + 0x41003) * 3) >>> 0);
  });

  it('reuses one request and one result for the whole run (no allocation per translation)', () => {
    const hw = counter();
    const reqs = new Set<DmaRequest>();
    const outs = new Set<DmaResult>();
    const probe: HostedHardware = {
      ...hw,
      translate(req, out) {
        reqs.add(req);
        outs.add(out);
        return hw.translate(req, out);
      },
    };
    runWorkloadSync(probe, { ...base, count: 1000 });
    expect(reqs.size).toBe(1);
    expect(outs.size).toBe(1);
    const count = 1_000_000;
    const spec = { ...base, length: 1 << 30, count };
    runWorkloadSync(hw, spec); // warm-up: JIT code and field-representation changes allocate once
    const r = runWorkloadSync(hw, spec);
    expect(r.translations).toBe(count);
    // A loop that allocated even 8 B per translation would add megabytes here (or trigger
    // scavenges); warm, the whole run adds well under 64 KiB.
    expect(r.heapUsedDelta).toBeLessThan(65536);
  });

  it('rejects malformed specs with BAD_ARGUMENT before translating', () => {
    const hw = counter();
    const bad: Partial<WorkloadSpec>[] = [
      { length: 0 },
      { step: 0 },
      { count: -1 },
      { count: 1.5 },
      { iovaBase: -4096 },
      { iovaBase: 2 ** 53 },
      { pattern: 'zigzag' as WorkloadSpec['pattern'] },
      { pattern: 'random', step: 8 * 4096 },
    ];
    for (const b of bad) {
      let err: unknown;
      try {
        runWorkloadSync(hw, { ...base, ...b });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RuntimeError);
      expect((err as RuntimeError).code).toBe('BAD_ARGUMENT');
    }
    expect(hw.n).toBe(0);
  });

  it('count 0 does nothing', () => {
    const hw = counter();
    expect(runWorkloadSync(hw, { ...base, count: 0 })).toMatchObject({ translations: 0, faults: 0, checksum: 0 });
    expect(hw.n).toBe(0);
  });
});

describe('runWorkload (async)', () => {
  it('runs in chunks, reports progress and matches the sync result', async () => {
    const count = 2 * WORKLOAD_CHUNK + 100;
    const spec: WorkloadSpec = { ...base, pattern: 'random', length: 1 << 24, count, seed: 5 };
    const progress: number[] = [];
    const hw = counter();
    const r = await runWorkload(hw, spec, (d) => progress.push(d));
    expect(progress).toEqual([WORKLOAD_CHUNK, 2 * WORKLOAD_CHUNK, count]);
    expect(hw.n).toBe(count);
    const s = runWorkloadSync(counter(), spec);
    expect(r.translations).toBe(s.translations);
    expect(r.checksum).toBe(s.checksum);
    expect(r.faults).toBe(0);
  });

  it('yields to the event loop between chunks', async () => {
    const hw = counter();
    let immediates = 0;
    let stop = false;
    const tick = (): void => {
      if (stop) return;
      immediates++;
      setImmediate(tick);
    };
    setImmediate(tick);
    await runWorkload(hw, { ...base, count: 4 * WORKLOAD_CHUNK });
    stop = true;
    expect(immediates).toBeGreaterThanOrEqual(3);
  });

  it('rejects a malformed spec', async () => {
    await expect(runWorkload(counter(), { ...base, step: -1 })).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
  });
});
