/**
 * RecordRing throughput versus postMessage, producer on the main thread and consumer in a
 * worker (the worker runs this same file from source through tsx, so it uses the real
 * RecordRing from src).
 *
 * Issue bar: RecordRing, 16-byte records, two threads: at least 50 M records/s, and at least
 * 100x the rate of postMessage carrying the same records one per message.
 *
 * Run: cd packages/runtime && pnpm exec tsx bench/ring.ts
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join, relative } from 'node:path';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { RecordRing, type RecordRingHandle } from '../src/record-ring.js';

const RING_ENTRIES = 4096;
const PUSH_BATCH = 256;
const POP_BATCH = 1024;
const RING_RECORDS = 20_000_000;
const PM_RECORDS = 300_000;
const RUNS = 3;

type ToWorker =
  | { kind: 'ring'; handle: RecordRingHandle; total: number }
  | { kind: 'pm'; total: number };
type FromWorker = { kind: 'ready' } | { kind: 'done'; count: number; checksum: number };

// ---------------------------------------------------------------- worker side (consumer)

function workerMain(): void {
  const port = parentPort!;
  let pmTotal = 0;
  let pmCount = 0;
  let pmSum = 0;
  port.on('message', (m: ToWorker | Int32Array) => {
    if (m instanceof Int32Array) {
      // postMessage transport: one record per message
      pmSum = (pmSum + m[0]) | 0;
      if (++pmCount === pmTotal) port.postMessage({ kind: 'done', count: pmCount, checksum: pmSum >>> 0 } satisfies FromWorker);
      return;
    }
    if (m.kind === 'pm') {
      pmTotal = m.total;
      pmCount = 0;
      pmSum = 0;
      port.postMessage({ kind: 'ready' } satisfies FromWorker);
      return;
    }
    // ring transport: drain with popBatch, spin-then-wait when empty
    const ring = RecordRing.attach(m.handle);
    const rw = ring.recordWords;
    const buf = new Uint32Array(POP_BATCH * rw);
    port.postMessage({ kind: 'ready' } satisfies FromWorker);
    let got = 0;
    let sum = 0;
    while (got < m.total) {
      const n = ring.popBatch(buf, POP_BATCH);
      if (n === 0) {
        if (ring.waitForData(10_000) === 'timed-out') break;
        continue;
      }
      for (let r = 0; r < n; r++) sum = (sum + buf[r * rw]) | 0;
      got += n;
    }
    port.postMessage({ kind: 'done', count: got, checksum: sum >>> 0 } satisfies FromWorker);
  });
}

// ---------------------------------------------------------------- main side (producer)

function expectedChecksum(total: number): number {
  let s = 0;
  for (let i = 0; i < total; i++) s = (s + i) | 0;
  return s >>> 0;
}

class Peer {
  private readonly w: Worker;
  private waiting: ((m: FromWorker) => void) | undefined;

  constructor() {
    const require = createRequire(import.meta.url);
    const tsx = pathToFileURL(join(dirname(require.resolve('tsx/package.json')), 'dist/esm/api/index.mjs')).href;
    const boot = `(async () => {
      const wd = require('node:worker_threads').workerData;
      if (wd.tsx) (await import(wd.tsx)).register();
      await import(wd.entry);
    })()`;
    this.w = new Worker(boot, {
      eval: true,
      workerData: { tsx, entry: import.meta.url, role: 'ring-bench-consumer' },
      execArgv: ['--conditions=@iommulab/source'],
    });
    this.w.on('message', (m: FromWorker) => {
      const f = this.waiting;
      this.waiting = undefined;
      f?.(m);
    });
    this.w.on('error', (e) => {
      console.error('consumer worker failed:', e);
      process.exit(2);
    });
  }

  next(): Promise<FromWorker> {
    return new Promise((resolve) => (this.waiting = resolve));
  }

  post(m: ToWorker | Int32Array): void {
    this.w.postMessage(m);
  }

  terminate(): Promise<number> {
    return this.w.terminate();
  }
}

async function runRing(peer: Peer, recordBytes: number, total: number): Promise<number> {
  const ring = RecordRing.create({ entries: RING_ENTRIES, recordBytes });
  const rw = ring.recordWords;
  const src = new Uint32Array(PUSH_BATCH * rw);
  for (let i = 0; i < src.length; i++) src[i] = 0x5a5a0000 + i; // payload words
  const ready = peer.next();
  peer.post({ kind: 'ring', handle: ring.handle, total });
  await ready;
  const done = peer.next();
  const t0 = performance.now();
  let seq = 0;
  while (seq < total) {
    const k = Math.min(PUSH_BATCH, total - seq);
    for (let r = 0; r < k; r++) src[r * rw] = seq + r; // encode: word 0 = sequence number
    let off = 0;
    while (off < k) {
      const n = ring.pushBatch(src, k - off, off);
      off += n;
      // Full: spin ~2000 checks, then park on the data-taken word (Atomics.wait is allowed on
      // Node's main thread; it only blocks this loop), so a descheduled consumer gets the CPU.
      if (n === 0 && ring.waitForSpace(10_000) === 'timed-out') throw new Error('consumer stalled');
    }
    seq += k;
  }
  const res = (await done) as Extract<FromWorker, { kind: 'done' }>;
  const ms = performance.now() - t0;
  if (res.count !== total || res.checksum !== expectedChecksum(total)) {
    throw new Error(`ring ${recordBytes} B: consumer got ${res.count} records, checksum ${res.checksum}`);
  }
  return total / ms / 1000; // M records/s
}

async function runPostMessage(peer: Peer, recordBytes: number, total: number): Promise<number> {
  const rec = new Int32Array(recordBytes / 4);
  for (let i = 1; i < rec.length; i++) rec[i] = 0x5a5a0000 + i;
  const ready = peer.next();
  peer.post({ kind: 'pm', total });
  await ready;
  const done = peer.next();
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    rec[0] = i;
    peer.post(rec); // structured clone: one record per message
  }
  const res = (await done) as Extract<FromWorker, { kind: 'done' }>;
  const ms = performance.now() - t0;
  if (res.count !== total || res.checksum !== expectedChecksum(total)) {
    throw new Error(`postMessage ${recordBytes} B: consumer got ${res.count} records, checksum ${res.checksum}`);
  }
  return total / ms / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const here = dirname(fileURLToPath(import.meta.url));
  const pkg = dirname(here);
  const root = join(pkg, '..', '..');
  console.log(`command: cd ${relative(root, pkg) || '.'} && pnpm exec tsx bench/${relative(here, fileURLToPath(import.meta.url))}`);
  console.log(
    `node ${process.version}, ${availableParallelism()} CPU(s) (${cpus()[0]?.model.trim() ?? 'unknown'}); ` +
      `producer = main thread, consumer = worker_threads Worker`,
  );
  console.log(
    `RecordRing: ${RING_ENTRIES} entries, pushBatch ${PUSH_BATCH}, popBatch ≤ ${POP_BATCH}, ${RING_RECORDS / 1e6} M records/run; ` +
      `postMessage: one Int32Array record per message, ${PM_RECORDS / 1e3} k records/run; ${RUNS} runs each, median reported\n`,
  );
  const load = loadavg()[0];
  if (load > 0.5) {
    console.log(`note: 1-minute load average is ${load.toFixed(2)}; other processes compete for the CPUs, expect lower ring numbers\n`);
  }
  const tStart = performance.now();
  const peer = new Peer();

  const rows: Array<{ name: string; bytes: number; runs: number[] }> = [];
  for (const bytes of [16, 32]) {
    await runRing(peer, bytes, 4_000_000); // warm-up (not reported)
    const runs: number[] = [];
    for (let i = 0; i < RUNS; i++) runs.push(await runRing(peer, bytes, RING_RECORDS));
    rows.push({ name: `RecordRing (pushBatch ${PUSH_BATCH})`, bytes, runs });
  }
  for (const bytes of [16, 32]) {
    await runPostMessage(peer, bytes, 20_000); // warm-up (not reported)
    const runs: number[] = [];
    for (let i = 0; i < RUNS; i++) runs.push(await runPostMessage(peer, bytes, PM_RECORDS));
    rows.push({ name: 'postMessage (1 record/message)', bytes, runs });
  }
  await peer.terminate();

  const pmMedian = new Map(rows.filter((r) => r.name.startsWith('postMessage')).map((r) => [r.bytes, median(r.runs)]));
  const fmt = (x: number): string => (x >= 10 ? x.toFixed(1) : x.toFixed(3));
  const header = ['transport', 'record', 'runs (M rec/s)', 'median M rec/s', 'vs postMessage'];
  const body = rows.map((r) => {
    const m = median(r.runs);
    return [r.name, `${r.bytes} B`, r.runs.map(fmt).join(' / '), fmt(m), `${(m / pmMedian.get(r.bytes)!).toFixed(0)}x`];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const b of body) console.log(line(b));

  const ring16 = median(rows[0].runs);
  const ratio16 = ring16 / pmMedian.get(16)!;
  const okRate = ring16 >= 50;
  const okRatio = ratio16 >= 100;
  console.log(
    `\nbar: RecordRing 16 B >= 50 M rec/s: ${okRate ? 'PASS' : 'FAIL'} (${fmt(ring16)}); ` +
      `>= 100x postMessage: ${okRatio ? 'PASS' : 'FAIL'} (${ratio16.toFixed(0)}x)`,
  );
  console.log(`total time ${((performance.now() - tStart) / 1000).toFixed(1)} s`);
  if (!okRate || !okRatio) process.exitCode = 1;
}

if (isMainThread) {
  await main();
} else if ((workerData as { role?: string } | null)?.role === 'ring-bench-consumer') {
  workerMain();
}
