/**
 * The page-fault phase end to end, with small counts: exact counts on both backends (every fault
 * one group, one SUCCESS response consumed by the hardware, nothing dropped), `--faults 0`, and
 * backends without PRI (n/a, never a crash). No timing assertions.
 */
import { IommuError, openBackend, type BackendStack, type IommuDriver } from '@iommulab/driver-api';
import { RuntimeError } from '@iommulab/runtime';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_SEQ_STEP, type BenchConfig } from '../src/args.js';
import {
  FAULT_MIN_LIMITED_BATCHES,
  FAULT_MIN_WARMUP_BATCHES,
  FAULT_RID_OFFSET,
  FAULT_WARMUP,
  FAULT_WARMUP_BATCHES,
  faultCounts,
  measurePageFaults,
  priFromStats,
} from '../src/fault-phase.js';
import { main, reportWarnings } from '../src/main.js';
import { faultLine, plainProgress } from '../src/progress.js';
import type { PageFaultCounts, PageFaultRecord } from '../src/records.js';
import type { BenchReport } from '../src/report-json.js';
import { formatReport } from '../src/report-table.js';
import { resolveBackend, type ResolvedBackend } from '../src/resolve-backend.js';
import { runHost } from '../src/runner-host.js';
import { runPool } from '../src/runner-pool.js';
import { PassThrough } from 'node:stream';
import { fixedReport } from './fixture.js';

const K = 40;
const B = 32;
const R = 3;

function cfg(over: Partial<BenchConfig> = {}): BenchConfig {
  return {
    backend: 'mock',
    backends: ['mock'],
    instances: 2,
    patterns: ['sequential'],
    translations: 1000,
    mapBytes: 1024 * 1024,
    pageSize: 'smallest',
    iotlbEntries: null,
    seqStep: DEFAULT_SEQ_STEP,
    mode: 'in-thread',
    runner: 'host',
    short: true,
    portTranslations: 256,
    portBatch: 256,
    faults: K,
    faultBatch: B,
    faultBatches: R,
    faultTimeLimited: false,
    jsonFile: null,
    ...over,
  };
}

const clean = (n: number): PageFaultCounts => ({ sent: n, queued: n, dropped: 0, responses: n, groups: n, success: n, iopfDrops: 0 });

function checkOk(r: PageFaultRecord | null, crossThread: boolean, k = K): void {
  expect(r).not.toBeNull();
  const f = r!;
  expect(f.reason).toBeNull();
  expect(f.status).toBe('ok');
  expect(f).toMatchObject({ rid: 1 + FAULT_RID_OFFSET, warmup: Math.min(FAULT_WARMUP, k), crossThread });
  // K faults → K groups, K SUCCESS responses sent and consumed by the hardware, 0 drops.
  expect(f.latency?.roundTrips).toBe(k);
  expect([f.latency?.stoppedAtTimeLimit, f.throughput?.stoppedAtTimeLimit]).toEqual([false, false]);
  expect(f.latency?.counts).toEqual(clean(k));
  expect(f.throughput).toMatchObject({ batch: B, batches: R, faults: B * R });
  expect(f.throughput?.counts).toEqual(clean(B * R));
  const l = f.latency!;
  expect(l.minUs).toBeLessThanOrEqual(l.medianUs);
  expect(l.medianUs).toBeLessThanOrEqual(l.p90Us);
  expect(l.p90Us).toBeLessThanOrEqual(l.p99Us);
  expect(l.p99Us).toBeLessThanOrEqual(l.maxUs);
  // faults/s of the run (faults / its wall time) lies between the slowest and the fastest batch.
  const t = f.throughput!;
  expect(t.faultsPerSec).toBeGreaterThan(0);
  expect(t.minFaultsPerSec).toBeLessThanOrEqual(t.faultsPerSec + 1);
  expect(t.faultsPerSec).toBeLessThanOrEqual(t.maxFaultsPerSec + 1);
  // Every wait ended one way or another: warm-up + K round trips, the warm-up batches + R batches.
  expect(f.noticed.poll + f.noticed.irq + f.noticed.fallback).toBe(Math.min(FAULT_WARMUP, k) + k + FAULT_WARMUP_BATCHES + R);
}

function checkReport(report: BenchReport, k = K): void {
  expect(report.config.pageFaults).toEqual({ roundTrips: k, batch: B, batches: R, timeLimited: false });
  const n = report.instances.length;
  expect(report.pageFaults).toMatchObject({
    ok: n,
    unsupported: 0,
    errors: 0,
    roundTrips: n * k,
    batch: B,
    sent: n * (k + B * R),
    groups: n * (k + B * R),
    success: n * (k + B * R),
    dropped: 0,
  });
  expect(report.pageFaults?.medianUs).toBeGreaterThan(0);
  const text = formatReport(report);
  expect(text).toContain('Page faults (PRI round trips through IopfQueue + FaultQueue, one instance at a time)');
  expect(text).toMatch(new RegExp(`\\n${report.instances[0].id} +${k} +[\\d.]+ µs +[\\d.]+ µs +[\\d.]+ µs +${R} x ${B} +[\\d.]+( k| M)? +${k + B * R} +${k + B * R} +0\\n`));
}

describe('page-fault phase (host runner, exact counts)', () => {
  for (const [name, id] of [
    ['mock', 'mock'],
    ['smmuv3', 'arm-smmuv3'],
  ] as const) {
    it(`${name}, in-thread: ${K} round trips and ${R} x ${B} in flight, every fault one group answered SUCCESS`, async () => {
      const lines: string[] = [];
      const report = await runHost(cfg({ backend: name, backends: [name] }), resolveBackend(name), plainProgress((l) => lines.push(l)));
      for (const i of report.instances) checkOk(i.pageFaults, false);
      checkReport(report);
      expect(report.config.backend.id).toBe(id);
      const faultLines = lines.filter((l) => / faults: /.test(l));
      expect(faultLines).toHaveLength(2);
      expect(faultLines[0]).toMatch(
        new RegExp(`^\\[${id}-0\\] faults: ${K} round trips p50 [\\d.]+ µs p90 [\\d.]+ µs, ${R} x ${B} in flight .* faults/s, ${K + B * R} groups, 0 dropped in-thread$`),
      );
    });
  }

  it('smmuv3 in its worker: the same exact counts across threads', async () => {
    const report = await runHost(cfg({ backend: 'smmuv3', backends: ['smmuv3'], mode: 'worker', instances: 1 }), resolveBackend('smmuv3'), plainProgress(() => {}));
    checkOk(report.instances[0].pageFaults, true);
    checkReport(report);
  });

  it('mock in its worker, and the pool runner', async () => {
    const w = await runHost(cfg({ mode: 'worker', instances: 1 }), resolveBackend('mock'), plainProgress(() => {}));
    checkOk(w.instances[0].pageFaults, true);
    const lines: string[] = [];
    const p = await runPool(cfg({ runner: 'pool' }), resolveBackend('mock'), plainProgress((l) => lines.push(l)));
    for (const i of p.instances) checkOk(i.pageFaults, false);
    checkReport(p);
    expect(lines.filter((l) => / faults: /.test(l))).toHaveLength(2);
  });

  it('--faults 0 disables the phase', async () => {
    const lines: string[] = [];
    const report = await runHost(cfg({ faults: 0, faultBatches: 0 }), resolveBackend('smmuv3'), plainProgress((l) => lines.push(l)));
    expect(report.instances.map((i) => i.pageFaults)).toEqual([null, null]);
    expect(report.pageFaults).toBeNull();
    expect(report.config.pageFaults).toEqual({ roundTrips: 0, batch: B, batches: 0, timeLimited: false });
    expect(lines.some((l) => / faults: /.test(l))).toBe(false);
    expect(formatReport(report)).not.toContain('Page faults');
  });
});

describe('time limits of the default counts', () => {
  it('a time-limited phase stops at its minimums (100 round trips, 2 warm-up batches, 3 batches) and says so; the counts match what ran', async () => {
    const stack = await openBackend(resolveBackend('smmuv3').url, { mode: 'in-thread', memBytes: 16 << 20, id: 'limited-0' });
    try {
      const input = { stack, id: 'limited-0', rid: 1, roundTrips: 150, batch: 8, batches: 6, timeLimited: true };
      const r = await measurePageFaults(input, { latencyLimitMs: 0, throughputLimitMs: 0, warmupLimitMs: 0 });
      expect(r.status).toBe('ok');
      expect(r.noticed.poll + r.noticed.irq + r.noticed.fallback).toBe(2 * FAULT_WARMUP + FAULT_MIN_WARMUP_BATCHES + FAULT_MIN_LIMITED_BATCHES);
      expect(r.latency).toMatchObject({ roundTrips: FAULT_WARMUP, stoppedAtTimeLimit: true, counts: clean(FAULT_WARMUP) });
      expect(r.throughput).toMatchObject({
        batches: FAULT_MIN_LIMITED_BATCHES,
        stoppedAtTimeLimit: true,
        faults: 8 * FAULT_MIN_LIMITED_BATCHES,
        counts: clean(8 * FAULT_MIN_LIMITED_BATCHES),
      });
      expect(faultLine('limited-0', r)).toMatch(
        /^\[limited-0\] faults: 100 round trips \(time limit\) p50 [\d.]+ µs p90 [\d.]+ µs, 3 x 8 in flight \(time limit\) .* faults\/s, 124 groups, 0 dropped in-thread$/,
      );
    } finally {
      await stack.close();
    }
  });
});

describe('backends without PRI are n/a', () => {
  const stacks: BackendStack[] = [];
  afterEach(async () => {
    await Promise.all(stacks.splice(0).map((s) => s.close()));
  });
  const open = async (url: string): Promise<BackendStack> => {
    const s = await openBackend(url, { mode: 'in-thread', memBytes: 16 << 20, id: 'stub-0' });
    stacks.push(s);
    return s;
  };
  const input = (stack: BackendStack) => ({ stack, id: 'stub-0', rid: 1, roundTrips: 8, batch: 4, batches: 1 });
  const mockUrl = resolveBackend('mock').url;
  const noPriUrl = new URL('./no-pri-backend.ts', import.meta.url).href;

  it('no capabilities.pri (the mock built without PRI)', async () => {
    const r = await measurePageFaults(input(await open(noPriUrl)));
    expect(r).toMatchObject({ status: 'unsupported', latency: null, throughput: null, reason: 'the mock IOMMU has no PRI (capabilities.pri is false)' });
    expect(faultLine('mock-no-pri-0', r)).toBe('[mock-no-pri-0] faults: n/a (the mock IOMMU has no PRI (capabilities.pri is false))');
  });

  it('a device port that rejects page requests with UNSUPPORTED (a model without pageRequest)', async () => {
    const real = await open(mockUrl);
    const stack: BackendStack = {
      ...real,
      port: {
        translate: (r) => real.port.translate(r),
        translateMany: (r) => real.port.translateMany(r),
        atsTranslate: (r) => real.port.atsTranslate(r),
        pageRequest: () => Promise.reject(new RuntimeError('UNSUPPORTED', 'device port: the model does not implement pageRequest (no PCIe PRI)')),
      },
    };
    const r = await measurePageFaults(input(stack));
    expect(r.status).toBe('unsupported');
    expect(r.reason).toBe('port.pageRequest: device port: the model does not implement pageRequest (no PCIe PRI)');
    // The PRI device was released again.
    await expect(real.driver.probeDevice({ rid: 1 + FAULT_RID_OFFSET })).resolves.toMatchObject({ rid: 1 + FAULT_RID_OFFSET });
  });

  it('a driver whose probeDevice refuses pri', async () => {
    const real = await open(mockUrl);
    const driver = new Proxy(real.driver, {
      get(t, k) {
        if (k === 'probeDevice') return () => Promise.reject(new IommuError('EOPNOTSUPP', 'probeDevice: no PRI'));
        const v = Reflect.get(t, k, t) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    }) as IommuDriver;
    const r = await measurePageFaults(input({ ...real, driver }));
    expect(r).toMatchObject({ status: 'unsupported', reason: 'probeDevice({ rid: 17, ats: true, pri: true }) refused: EOPNOTSUPP: probeDevice: no PRI' });
  });

  it('the whole run with a backend without PRI: n/a in the tables and the comparison, no warning, exit 0', async () => {
    const backend: ResolvedBackend = { name: 'no-pri', matched: noPriUrl, url: noPriUrl, tried: [noPriUrl] };
    const report = await runHost(cfg(), backend, plainProgress(() => {}));
    expect(report.instances.map((i) => i.pageFaults?.status)).toEqual(['unsupported', 'unsupported']);
    expect(report.pageFaults).toMatchObject({ ok: 0, unsupported: 2, errors: 0 });
    expect(formatReport(report)).toMatch(/\nmock-no-pri-0 +n\/a +n\/a +n\/a/);
    const out: string[] = [];
    const stdout = new PassThrough() as unknown as NodeJS.WriteStream;
    stdout.on('data', (d: Buffer) => out.push(d.toString()));
    const argv = ['--short', '--backend', `mock,${noPriUrl}`, '--instances', '1', '--translations', '1k', '--map-mb', '1', '--faults', '10'];
    expect(await main([...argv, '--mode', 'in-thread'], { stdout, stderr: new PassThrough() })).toBe(0);
    const text = out.join('');
    expect(text).toMatch(/\nmock-no-pri +2 KiB .* +n\/a +n\/a\n/);
    expect(text).toMatch(/\nmock +2 KiB .* +[\d.]+\/[\d.]+ +[\d.]+( k| M)?\n/);
    expect(text).not.toContain('warning:');
  });
});

describe('failures are bounded and reported, never a hang', () => {
  const stacks: BackendStack[] = [];
  afterEach(async () => {
    await Promise.all(stacks.splice(0).map((s) => s.close()));
  });
  const open = async (): Promise<BackendStack> => {
    const s = await openBackend(resolveBackend('mock').url, { mode: 'in-thread', memBytes: 16 << 20, id: 'lossy-0' });
    stacks.push(s);
    return s;
  };
  const input = (stack: BackendStack) => ({ stack, id: 'lossy-0', rid: 1, roundTrips: 8, batch: 4, batches: 1 });

  it('a page request the port accepts but that never reaches the driver: an error record naming the wait', async () => {
    const real = await open();
    const stack: BackendStack = { ...real, port: { ...real.port, pageRequest: () => Promise.resolve(true) } };
    const r = await measurePageFaults(input(stack), { waitTimeoutMs: 150, drainAfterMs: 20 });
    expect(r.status).toBe('error');
    expect(r.reason).toBe(
      "lossy-0 page-fault phase: the fault group of page request 0 did not happen within 150 ms (0 of 1 fault groups arrived; the driver's interrupt loop and drainFaults() delivered nothing more)",
    );
    expect(r.noticed.fallback).toBe(0);
  });

  it('a page request the model drops: an error record, and a warning line from the CLI', async () => {
    const real = await open();
    const stack: BackendStack = { ...real, port: { ...real.port, pageRequest: () => Promise.resolve(false) } };
    const r = await measurePageFaults(input(stack), { waitTimeoutMs: 2000 });
    expect(r).toMatchObject({ status: 'error', reason: 'lossy-0 page-fault phase: the model dropped page request 0 (port.pageRequest resolved false)' });
    expect(faultLine('lossy-0', r)).toBe(
      '[lossy-0] faults: 0 groups, 0 dropped in-thread; failed: lossy-0 page-fault phase: the model dropped page request 0 (port.pageRequest resolved false)',
    );
    const base = fixedReport();
    const report = { ...base, instances: [base.instances[0], { ...base.instances[1], pageFaults: r }] };
    expect(reportWarnings(report)).toEqual([
      'mock-1: the page-fault phase failed: lossy-0 page-fault phase: the model dropped page request 0 (port.pageRequest resolved false)',
    ]);
  });

  it('warns about counts that are not clean', () => {
    const base = fixedReport();
    const f = base.instances[0].pageFaults!;
    const dirty = { ...f, latency: { ...f.latency!, counts: { ...f.latency!.counts, groups: 1999, success: 1999, responses: 1999, dropped: 1 } } };
    const report = { ...base, instances: [{ ...base.instances[0], pageFaults: dirty }, base.instances[1]] };
    expect(reportWarnings(base)).toEqual([]);
    expect(reportWarnings(report)).toEqual(['mock-0: page faults (one outstanding): 2000 sent, 1999 groups, 1999 SUCCESS, 1999 responses consumed, 1 dropped']);
  });
});

describe('counters', () => {
  it('reads the SMMUv3 and the mock page-request counters', () => {
    expect(priFromStats({ priRequests: 10, priQueued: 8, priDropped: 2, pageResponses: 7 })).toEqual({ requests: 10, queued: 8, dropped: 2, responses: 7 });
    expect(priFromStats({ pageRequests: 9, pageRequestsRejected: 1, faultRecordsDropped: 2, pageResponses: 6 })).toEqual({
      requests: 10,
      queued: 7,
      dropped: 3,
      responses: 6,
    });
    expect(priFromStats({ translations: 1 })).toEqual({ requests: undefined, queued: undefined, dropped: undefined, responses: undefined });
  });

  it('counts a part as deltas, null where the backend reports nothing', () => {
    const zero = { unknownDevice: 0, noHandler: 0, partialDropped: 0, partialDiscarded: 0, refused: 0, invalid: 0, failure: 0, timeouts: 0, responseErrors: 0, pageRequestOverflows: 0 };
    const iopf = (groups: number, success: number, invalid = 0) => ({ requests: groups, stopMarkers: 0, groups, success, lateResponses: 0, eventOverflows: 0, events: 0, eventsDropped: 0, ...zero, invalid });
    expect(faultCounts({ hw: { priRequests: 5, priQueued: 5, priDropped: 0, pageResponses: 5 }, iopf: iopf(5, 5) }, { hw: { priRequests: 9, priQueued: 8, priDropped: 1, pageResponses: 7 }, iopf: iopf(8, 7, 1) }, 4)).toEqual({
      sent: 4,
      queued: 3,
      dropped: 1,
      responses: 2,
      groups: 3,
      success: 2,
      iopfDrops: 1,
    });
    expect(faultCounts({ hw: {}, iopf: iopf(0, 0) }, { hw: {}, iopf: iopf(2, 2) }, 2)).toEqual({ sent: 2, queued: null, dropped: null, responses: null, groups: 2, success: 2, iopfDrops: 0 });
  });
});
