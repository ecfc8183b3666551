/**
 * Bench: I/O page-fault round trips through the fault layer, with the Arm SMMUv3 model IN ITS
 * OWN WORKER (driver-api `openBackend(..., { mode: 'worker' })`) and the driver, the IopfQueue and
 * the FaultQueue on this thread.
 *
 *   cd /work/main/packages/fault-queues && node --conditions=@iommulab/source --import tsx bench/round-trip.ts
 *
 * One round trip: the device sends a PRI Page Request (`port.pageRequest`, a request record on
 * the device-port ring; the worker's model writes the PRIQ entry and raises the PRIQ interrupt)
 * → the driver drains the PRIQ into the IopfQueue → the group lands in the FaultQueue → the
 * "VMM" reads the 40-byte record (`readInto`, a reused buffer) → writes `{cookie, SUCCESS}` →
 * IopfQueue → `driver.pageResponse` → CMD_PRI_RESP on the command queue → `await iopf.flush()`
 * resolves once the worker's SMMU has consumed the command (the PRG Response is then delivered to
 * the device inside the worker). A Page Request is a posted message: the device-port completion
 * of `pageRequest` is awaited after the timed part.
 *
 * Two ways for the driver to notice the PRIQ entry:
 * - irq: the driver's own interrupt loop (`onFault`, woken by the model's PRIQ interrupt through
 *   the register file's irq doorbell, `Atomics.waitAsync`); the FaultQueue's `onReadable` wakes the
 *   reader;
 * - poll: the reader calls `driver.drainFaults()` until the FaultQueue is readable (the driver reads
 *   PRIQ_PROD each time: a busy poll, as a polling-mode driver would do).
 *
 * Rows:
 * (a) one outstanding fault: median and p90 µs per round trip over RUNS × 2000 round trips after
 *     a warm-up; bar: median < 50 µs.
 * (b) many outstanding: batches of 256 PRGs in flight (16 devices × 16 PRG indices), the VMM reads
 *     the whole batch with one readInto and answers with one 2 KiB write; faults/s per run, median
 *     of RUNS runs; bar ≥ 200 K faults/s.
 * (info) the bare driver → worker round trips on the same stack: a CMD_SYNC (`cmdq.submit(0)`), a
 *     CMD_PRI_RESP issued and consumed (`driver.pageResponse`), and a page request with its
 *     device-port completion awaited (`port.pageRequest`).
 *
 * Environment: RUNS (default 5, ≥ 3), ONLY (rows to run, default `a,b,info`), MODE=in-thread to run the same rows with the model in this
 * thread (for comparison; the bars are for the worker).
 */
import { loadavg } from 'node:os';
import { NO_PASID, PageResponseCode, PgFaultPerm, openBackend, type BackendStack, type IommuDevice } from '@iommulab/driver-api';
import type { SmmuV3Driver } from '@iommulab/hw-smmuv3';
import { FaultQueue, IOMMU_HWPT_PGFAULT_BYTES, IopfQueue, type FaultHandler } from '../src/index.js';

const CMD = 'cd /work/main/packages/fault-queues && node --conditions=@iommulab/source --import tsx bench/round-trip.ts';
const SMMUV3_URL = new URL('../../hw-smmuv3/src/index.ts', import.meta.url).href;
const RUNS = Number(process.env.RUNS ?? 5);
if (!Number.isInteger(RUNS) || RUNS < 3) throw new Error(`RUNS must be an integer >= 3, got ${process.env.RUNS}`);
const MODE: 'worker' | 'in-thread' = process.env.MODE === 'in-thread' ? 'in-thread' : 'worker';
const ROUND_TRIPS = 2000;
const WARM_UP = 500;
const BATCH_DEVICES = 16;
const BATCH_GROUPS = 16;
const BATCH = BATCH_DEVICES * BATCH_GROUPS;
const BATCHES_PER_RUN = 200;
const IOVA = 0x4000_0000;
const REC = IOMMU_HWPT_PGFAULT_BYTES;
/** Spin limit of a poll before falling back to an asynchronous wait (a stuck bench fails fast). */
const POLL_LIMIT_MS = 2000;

type Wait = 'irq' | 'poll';

interface Rig {
  stack: BackendStack;
  driver: SmmuV3Driver;
  iopf: IopfQueue;
  fq: FaultQueue;
  devices: IommuDevice[];
  close(): Promise<void>;
}

async function openRig(id: string, rids: readonly number[]): Promise<Rig> {
  const stack = await openBackend(SMMUV3_URL, { mode: MODE, memBytes: 64 * 1024 * 1024, id, timeoutMs: 30_000 });
  const driver = stack.driver as SmmuV3Driver;
  const iopf = new IopfQueue(driver);
  const fq = new FaultQueue();
  const devices: IommuDevice[] = [];
  for (const rid of rids) {
    const dev = await driver.probeDevice({ rid, ats: true, pri: true });
    await driver.attachDevice(dev, await driver.domainAllocPaging(dev));
    const h: FaultHandler = { handle: { rid }, sink: fq };
    iopf.addDevice(dev, (pasid) => (pasid === NO_PASID ? h : null), rid);
    devices.push(dev);
  }
  return {
    stack,
    driver,
    iopf,
    fq,
    devices,
    async close() {
      iopf.close();
      await iopf.flush();
      await stack.close();
    },
  };
}

/** Resolves once `fq` is readable with at least `n` groups: the driver's interrupt loop, or polling drainFaults. */
function waitReadable(rig: Rig, n: number, wait: Wait): Promise<void> | undefined {
  const { fq, driver } = rig;
  if (fq.pendingRead >= n) return undefined;
  if (wait === 'poll') {
    const until = performance.now() + POLL_LIMIT_MS;
    for (;;) {
      void driver.drainFaults(); // synchronous drain; the promise only carries the count
      if (fq.pendingRead >= n) return undefined;
      if (performance.now() > until) break;
    }
  }
  return new Promise<void>((resolve) => {
    fq.onReadable(() => {
      if (fq.pendingRead >= n) {
        fq.onReadable(undefined);
        resolve();
      }
    });
  });
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[xs.length >> 1];
}

function fmtRate(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)} M/s` : x >= 1e3 ? `${(x / 1e3).toFixed(0)} K/s` : `${x.toFixed(0)}/s`;
}

interface Row {
  name: string;
  value: string;
  p90: string;
  bar: string;
  status: 'MET' | 'NOT MET' | 'info';
  note: string;
  json: Record<string, unknown>;
}
const rows: Row[] = [];

/** (a): one fault at a time. */
async function singleRow(wait: Wait): Promise<void> {
  const rig = await openRig(`fq-rt-single-${wait}`, [0x10]);
  try {
    const { stack, fq, iopf } = rig;
    const rec = new Uint8Array(REC);
    const recDv = new DataView(rec.buffer);
    const resp = new Uint8Array(8);
    const respDv = new DataView(resp.buffer);
    respDv.setUint32(4, PageResponseCode.SUCCESS, true);
    const req = { rid: 0x10, pasid: NO_PASID, addr: IOVA, perm: PgFaultPerm.READ, grpid: 0, last: true };
    const one = async (i: number): Promise<number> => {
      req.grpid = i & 511;
      req.addr = IOVA + (i & 0xfff) * 4096;
      const t0 = performance.now();
      const sent = stack.port.pageRequest(req);
      const w = waitReadable(rig, 1, wait);
      if (w !== undefined) await w;
      if (fq.readInto(rec) !== REC) throw new Error('no record');
      respDv.setUint32(0, recDv.getUint32(36, true), true);
      fq.write(resp);
      await iopf.flush();
      const t1 = performance.now();
      if (!(await sent)) throw new Error('page request dropped');
      return (t1 - t0) * 1000;
    };
    for (let i = 0; i < WARM_UP; i++) await one(i);
    const before = await stack.host.stats();
    const all: number[] = [];
    const runMedians: number[] = [];
    let k = WARM_UP;
    for (let r = 0; r < RUNS; r++) {
      const xs: number[] = [];
      for (let i = 0; i < ROUND_TRIPS; i++) xs.push(await one(k++));
      runMedians.push(median(xs));
      all.push(...xs);
    }
    const after = await stack.host.stats();
    const n = RUNS * ROUND_TRIPS;
    const d = (key: string) => after[key] - before[key];
    if (d('priQueued') !== n || d('pageResponses') !== n || iopf.stats.responseErrors !== 0) {
      throw new Error(`counters: ${d('priQueued')} queued, ${d('pageResponses')} responses for ${n} round trips`);
    }
    all.sort((a, b) => a - b);
    const med = quantile(all, 0.5);
    const p90 = quantile(all, 0.9);
    rows.push({
      name: `(a) 1 outstanding, ${wait}`,
      value: `${med.toFixed(1)} µs`,
      p90: `${p90.toFixed(1)} µs`,
      bar: '< 50 µs',
      status: med < 50 ? 'MET' : 'NOT MET',
      note: `${n} round trips (${RUNS} × ${ROUND_TRIPS}) after ${WARM_UP}; run medians [${runMedians.map((x) => x.toFixed(1)).join(', ')}] µs; p99 ${quantile(all, 0.99).toFixed(1)} µs; model: ${d('priQueued')} PRIQ entries, ${d('pageResponses')} PRG responses`,
      json: { medianUs: +med.toFixed(2), p90Us: +p90.toFixed(2), runMediansUs: runMedians.map((x) => +x.toFixed(2)) },
    });
  } finally {
    await rig.close();
  }
}

/**
 * (b): BATCH groups in flight, batch read and batch write. `pipelined`: the devices send the next
 * batch (the other half of their PRG index space: indices 16..31 vs 0..15, so no index is reused
 * before its response) as soon as the current batch's responses are written, before they are
 * consumed; lock-step: the next batch only after `iopf.flush()`.
 */
async function batchRow(wait: Wait, pipelined: boolean): Promise<void> {
  const rids = Array.from({ length: BATCH_DEVICES }, (_, i) => 0x100 + i);
  const rig = await openRig(`fq-rt-batch-${wait}${pipelined ? '-pipe' : ''}`, rids);
  try {
    const { stack, fq, iopf } = rig;
    const recs = new Uint8Array(BATCH * REC);
    const recDv = new DataView(recs.buffer);
    const resp = new Uint8Array(BATCH * 8);
    const respDv = new DataView(resp.buffer);
    for (let i = 0; i < BATCH; i++) respDv.setUint32(i * 8 + 4, PageResponseCode.SUCCESS, true);
    const reqs = [0, 1].map((half) =>
      Array.from({ length: BATCH }, (_, i) => ({
        rid: rids[i % BATCH_DEVICES],
        pasid: NO_PASID,
        addr: IOVA + i * 4096,
        perm: PgFaultPerm.READ | PgFaultPerm.WRITE,
        grpid: half * BATCH_GROUPS + Math.floor(i / BATCH_DEVICES),
        last: true,
      })),
    );
    const send = (b: number): Promise<boolean>[] => {
      const rs = reqs[b & 1];
      const out: Promise<boolean>[] = new Array(BATCH);
      for (let i = 0; i < BATCH; i++) out[i] = stack.port.pageRequest(rs[i]);
      return out;
    };
    const checkSent = async (sent: Promise<boolean>[]): Promise<void> => {
      for (const ok of await Promise.all(sent)) if (!ok) throw new Error('page request dropped');
    };
    /** Runs `n` batches; returns when every response of the last one was consumed. */
    const batches = async (n: number): Promise<void> => {
      let sent = send(0);
      for (let b = 0; b < n; b++) {
        const w = waitReadable(rig, BATCH, wait);
        if (w !== undefined) await w;
        const got = fq.readInto(recs);
        if (got !== BATCH * REC) throw new Error(`read ${got / REC} records`);
        for (let i = 0; i < BATCH; i++) respDv.setUint32(i * 8, recDv.getUint32(i * REC + 36, true), true);
        if (fq.write(resp) !== resp.length) throw new Error('short write');
        const prev = sent;
        if (pipelined && b + 1 < n) sent = send(b + 1);
        await iopf.flush();
        await checkSent(prev);
        if (!pipelined && b + 1 < n) sent = send(b + 1);
      }
    };
    await batches(20);
    const before = await stack.host.stats();
    const rates: number[] = [];
    const cpu: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await batches(BATCHES_PER_RUN);
      const s = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      rates.push((BATCH * BATCHES_PER_RUN) / s);
      cpu.push((BATCH * BATCHES_PER_RUN) / ((c.user + c.system) / 1e6));
    }
    const after = await stack.host.stats();
    const n = RUNS * BATCHES_PER_RUN * BATCH;
    const d = (key: string) => after[key] - before[key];
    if (d('priQueued') !== n || d('pageResponses') !== n || iopf.stats.responseErrors !== 0 || d('pageResponsesAutomatic') !== 0) {
      throw new Error(`counters: ${d('priQueued')} queued, ${d('pageResponses')} responses for ${n} faults`);
    }
    const med = median(rates);
    rows.push({
      name: `(b) ${BATCH} outstanding, ${wait}, ${pipelined ? 'pipelined' : 'lock-step'}`,
      value: fmtRate(med),
      p90: '-',
      bar: '>= 200 K/s',
      status: med >= 200e3 ? 'MET' : 'NOT MET',
      note: `${BATCH_DEVICES} devices x ${BATCH_GROUPS} PRG indices, ${BATCHES_PER_RUN} batches per run; runs [${rates.map(fmtRate).join(', ')}]; per process CPU-second ${fmtRate(median(cpu))}`,
      json: { median: Math.round(med), runs: rates.map(Math.round) },
    });
  } finally {
    await rig.close();
  }
}

/** (info) bare round trips on one stack. */
async function bareRows(): Promise<void> {
  const rig = await openRig('fq-rt-bare', [0x10]);
  try {
    const { stack, driver, devices, iopf } = rig;
    const none = (): void => {};
    const time = async (f: (i: number) => Promise<unknown>): Promise<{ med: number; p90: number }> => {
      for (let i = 0; i < WARM_UP; i++) await f(i);
      const xs: number[] = [];
      for (let i = 0; i < ROUND_TRIPS; i++) {
        const t0 = performance.now();
        await f(i);
        xs.push((performance.now() - t0) * 1000);
      }
      xs.sort((a, b) => a - b);
      return { med: quantile(xs, 0.5), p90: quantile(xs, 0.9) };
    };
    iopf.removeDevice(devices[0]); // nobody listens: the bare page requests are not answered by anyone here
    const sync = await time(() => driver.cmdq.submit(0, none));
    const resp = await time((i) => driver.pageResponse(devices[0], { rid: 0x10, pasid: NO_PASID, grpid: i & 511, code: PageResponseCode.SUCCESS }));
    const req = { rid: 0x10, pasid: NO_PASID, addr: IOVA, perm: PgFaultPerm.READ, grpid: 0, last: false };
    const pr = await time(async (i) => {
      req.grpid = i & 511;
      const ok = await stack.port.pageRequest(req);
      await driver.drainFaults(); // keep the PRIQ empty (non-Last requests: nobody answers them)
      return ok;
    });
    for (const [name, m, note] of [
      ['bare CMD_SYNC (cmdq.submit(0))', sync, 'driver → worker → MSI write / CONS, awaited'],
      ['bare CMD_PRI_RESP (pageResponse)', resp, 'issued without CMD_SYNC, resolved once CONS passed it'],
      ['bare pageRequest + completion', pr, 'device port ring → model → completion ring, awaited (+ a PRIQ drain)'],
    ] as const) {
      rows.push({ name: `(info) ${name}`, value: `${m.med.toFixed(1)} µs`, p90: `${m.p90.toFixed(1)} µs`, bar: '-', status: 'info', note: `${ROUND_TRIPS} after ${WARM_UP}; ${note}`, json: { medianUs: +m.med.toFixed(2), p90Us: +m.p90.toFixed(2) } });
    }
  } finally {
    await rig.close();
  }
}

console.log(`# ${CMD}`);
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
console.log(`# load average before: ${load()} (the bench shares the machine; ${process.env.ONLY ?? 'all rows'})`);
console.log(`# SMMUv3 model ${MODE === 'worker' ? 'in its own worker' : 'IN-THREAD (comparison)'} via openBackend; driver, IopfQueue and FaultQueue on the main thread; node ${process.version}; RUNS=${RUNS}`);
const ONLY = (process.env.ONLY ?? 'a,b,info').split(',');
if (ONLY.includes('a')) {
  await singleRow('irq');
  await singleRow('poll');
}
if (ONLY.includes('b')) {
  await batchRow('irq', false);
  await batchRow('poll', false);
  await batchRow('irq', true);
  await batchRow('poll', true);
}
if (ONLY.includes('info')) await bareRows();

console.log(`# load average after: ${load()}`);
const w = [Math.max(...rows.map((r) => r.name.length)), 12, 12, 11, 7];
const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(w[i] ?? 0)).join(' | ')} |`;
console.log('');
console.log(line(['measurement', 'median', 'p90', 'bar', 'status', 'notes']));
console.log(line(w.map((n) => '-'.repeat(n)).concat(['-----'])));
for (const r of rows) console.log(line([r.name, r.value, r.p90, r.bar, r.status, r.note]));
console.log(`# result ${JSON.stringify({ bench: 'fault-queues/round-trip', command: CMD, mode: MODE, node: process.version, rows: rows.map((r) => ({ name: r.name, status: r.status, ...r.json })) })}`);
