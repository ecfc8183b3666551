/**
 * Bench: SMMUv3 command processing with the hardware IN ITS OWN WORKER (the real backend through
 * driver-api's `openBackend`), next to the same measurement in-thread.
 *
 *   cd /work/main/packages/hw-smmuv3 && node --conditions=@iommulab/source --import tsx bench/cmdq-worker.ts
 *
 * Bar (issue): command processing, CMD_TLBI_NH_VA with a CMD_SYNC after every 64, ≥ 10 M
 * commands/s in the worker. The control plane of an instance (runtime control-api.ts: reset,
 * stats, runWorkload, ping) has no way to run a command loop inside the worker, so two numbers
 * are measured:
 *
 * 1. cmdq-ring (the bar): the worker's consumer alone. The driver's own command queue (2^19
 *    entries, `driverCmdqLog2: 19`) is filled once with the stream of bench/cmdq.ts —
 *    TLBI_NH_VA (ASID, VA, Leaf) ×64 then CMD_SYNC (CS = SEV) — and this thread then only writes
 *    CMDQ_PROD one full lap at a time (the register write rings the worker's doorbell; the worker
 *    runs `hw.service()`, which decodes and executes every command: TLB invalidation by VA over
 *    a TLB holding 2048 live entries, micro-TLB flush, CMD_SYNC completion) and sleeps in 0.1 ms
 *    steps until CMDQ_CONS reaches PROD. Laps come in pairs, so the queue ends where the driver
 *    left it. Commands/s = commands consumed / (PROD write → CONS seen).
 * 2. driver-submit: end to end, the host driver submitting through the real CMDQ
 *    (`SmmuCmdq.submit(64, TLBI_NH_VA)`: 64 commands + its CMD_SYNC with MSI-poll completion,
 *    one batch after the other, each awaited as Linux's `arm_smmu_cmdq_issue_cmdlist` waits):
 *    the cross-thread round trip of every batch included. Also with batches of 1024, and the
 *    round trip of a bare CMD_SYNC (info).
 *
 * Each row: a warm-up, then RUNS (default 7, at least 5) timed runs; median, every run, and the
 * rate per second of process CPU time.
 */
import { Prot, type BackendStack } from '@iommulab/driver-api';
import { CmdField, CmdOp, SH_ISH, SMMU_CMDQ_CONS, SMMU_CMDQ_PROD, SyncCs, packFields, setAddr } from '../src/codec/index.js';
import { cmdTlbiVa } from '../src/driver/cmd-build.js';
import type { SmmuV3Driver } from '../src/driver/driver.js';
import { RUNS, openSmmu, report, statsDelta, summary, type Measurement } from './harness.js';

const CMD = 'cd /work/main/packages/hw-smmuv3 && node --conditions=@iommulab/source --import tsx bench/cmdq-worker.ts';
const LOG2 = 19;
const ENTRIES = 1 << LOG2;
/** Full laps per timed run (even: the queue ends where the driver left it). */
const LAPS = 8;
const SYNC_EVERY = 64;
const PAGE = 4096;
const BASE = 0x4000_0000;
/** VAs the TLBIs name: 4 GiB up, away from the live mapping at BASE. */
const TLBI_VA = 0x1_0000_0000;

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Sleeps about `ms` without spinning (a core stays free for the worker). */
function nap(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** Opens the backend, attaches a stage-1 device, maps 2048 pages and fills the TLB with them. */
async function openLive(mode: 'worker' | 'in-thread'): Promise<{ stack: BackendStack; drv: SmmuV3Driver }> {
  const stack = await openSmmu(`bench-cmdq-${mode}`, { driverCmdqLog2: LOG2 }, 128 * 1024 * 1024, mode);
  const drv = stack.driver as SmmuV3Driver;
  if (drv.layout.cmdqLog2 !== LOG2) throw new Error(`the driver chose a 2^${drv.layout.cmdqLog2} CMDQ`);
  const dev = await drv.probeDevice({ rid: 3, name: 'bench-cmdq' });
  const dom = await drv.domainAllocPaging(dev);
  await drv.attachDevice(dev, dom);
  const pages = 2048;
  dom.mapPages(BASE, stack.mem.allocFrames(pages), PAGE, pages, Prot.READ | Prot.WRITE);
  await dom.iotlbSyncMap(BASE, pages * PAGE);
  await stack.host.runWorkload({ pattern: 'sequential', rid: 3, iovaBase: BASE, length: pages * PAGE, step: PAGE, count: pages });
  return { stack, drv };
}

/** Writes the bench/cmdq.ts stream over the whole ring. */
function fillRing(stack: BackendStack, ringPa: number): void {
  const mem = stack.mem;
  for (let i = 0; i < ENTRIES; i++) {
    let w: Uint32Array;
    if (i % (SYNC_EVERY + 1) === SYNC_EVERY) {
      w = packFields(CmdField, { OPCODE: CmdOp.SYNC, CS: SyncCs.SEV, MSH: SH_ISH, MSIATTR: 0xf }, 2);
    } else {
      w = packFields(CmdField, { OPCODE: CmdOp.TLBI_NH_VA, ASID: 1 + (i & 0xff), LEAF: 1 }, 2);
      setAddr(w, 0, CmdField.ADDR, TLBI_VA + i * PAGE);
    }
    mem.u32.set(w, (ringPa + 16 * i) >>> 2);
  }
}

async function ringRow(mode: 'worker' | 'in-thread', target: number | null): Promise<Measurement> {
  const { stack, drv } = await openLive(mode);
  try {
    const regs = stack.host.regs;
    const mask = (2 << LOG2) - 1;
    const start = drv.cmdq.shadowProd;
    if ((regs.read32(SMMU_CMDQ_CONS) & mask) !== start) throw new Error('the CMDQ is not idle');
    fillRing(stack, drv.layout.cmdqPa);
    let prod = start;
    /** Runs `laps` full laps; returns commands consumed and seconds. */
    const laps = (n: number): { commands: number; seconds: number } => {
      const t0 = performance.now();
      for (let l = 0; l < n; l++) {
        prod ^= ENTRIES; // one full lap: PROD = CONS with the wrap bit flipped
        regs.write32(SMMU_CMDQ_PROD, prod);
        while ((regs.read32(SMMU_CMDQ_CONS) & mask) !== prod) nap(0.1);
      }
      return { commands: n * ENTRIES, seconds: (performance.now() - t0) / 1000 };
    };
    laps(2); // warm-up
    const before = await stack.host.stats();
    const runs: number[] = [];
    const cpuRuns: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const c0 = process.cpuUsage();
      const m = laps(LAPS);
      const c = process.cpuUsage(c0);
      runs.push(m.commands / m.seconds);
      cpuRuns.push(m.commands / ((c.user + c.system) / 1e6));
    }
    const d = statsDelta(await stack.host.stats(), before);
    if (prod !== start) throw new Error('odd number of laps');
    const want = RUNS * LAPS * ENTRIES;
    if (d.commands !== want || d.cmdqErrors !== 0) throw new Error(`the SMMU consumed ${d.commands} of ${want} commands, ${d.cmdqErrors} errors`);
    return report({
      name: `cmdq-ring TLBI_NH_VA+SYNC/64, ${mode}`,
      runs,
      cpuRuns,
      target,
      unit: 'commands',
      note:
        `${LAPS} laps of ${ENTRIES} per run; per run ${d.commands / RUNS} commands, ${d.syncs / RUNS} CMD_SYNCs, ` +
        `${d.tlbInvalidations / RUNS} TLB invalidations, ${d.utlbFlushes / RUNS} micro-TLB flushes, 0 errors`,
    });
  } finally {
    await stack.close();
  }
}

async function submitRow(mode: 'worker' | 'in-thread', batch: number, target: number | null): Promise<Measurement> {
  const { stack, drv } = await openLive(mode);
  try {
    const cmdq = drv.cmdq;
    let seq = 0;
    const fill = (u32: Uint32Array, w: number): void => {
      const i = seq++;
      cmdTlbiVa(u32, w, CmdOp.TLBI_NH_VA, 1 + (i & 0xff), 0, TLBI_VA + (i & 0xffff) * PAGE, true, 0, 0, 0, 0);
    };
    const perRun = Math.max(batch, Math.round(2_000_000 / batch) * batch);
    const run = async (commands: number): Promise<number> => {
      const t0 = performance.now();
      for (let k = 0; k < commands; k += batch) await cmdq.submit(batch, fill);
      return (performance.now() - t0) / 1000;
    };
    await run(perRun / 4); // warm-up
    const before = await stack.host.stats();
    const runs: number[] = [];
    const cpuRuns: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const c0 = process.cpuUsage();
      const s = await run(perRun);
      const c = process.cpuUsage(c0);
      // Rate of all commands the SMMU consumed: the TLBIs and one CMD_SYNC per batch.
      const commands = perRun + perRun / batch;
      runs.push(commands / s);
      cpuRuns.push(commands / ((c.user + c.system) / 1e6));
    }
    const d = statsDelta(await stack.host.stats(), before);
    const tlbis = (median(runs) * batch) / (batch + 1);
    return report({
      name: `driver-submit ${batch}+SYNC, ${mode}${target === null ? ' (info)' : ''}`,
      runs,
      cpuRuns,
      target,
      unit: 'commands (TLBIs + syncs)',
      note:
        `${perRun} TLBI_NH_VA per run in awaited batches of ${batch} + CMD_SYNC (MSI poll); median ${(tlbis / 1e6).toFixed(2)} M TLBIs/s; ` +
        `per run ${d.commands / RUNS} commands, ${d.syncs / RUNS} syncs, ${d.cmdqErrors} errors`,
    });
  } finally {
    await stack.close();
  }
}

/** A bare CMD_SYNC submitted and awaited, again and again: the cross-thread round trip. */
async function syncRow(mode: 'worker' | 'in-thread'): Promise<Measurement> {
  const { stack, drv } = await openLive(mode);
  try {
    const n = 5000;
    const none = (): void => {};
    const run = async (): Promise<number> => {
      const t0 = performance.now();
      for (let k = 0; k < n; k++) await drv.cmdq.submit(0, none);
      return (performance.now() - t0) / 1000;
    };
    await run();
    const runs: number[] = [];
    for (let r = 0; r < RUNS; r++) runs.push(n / (await run()));
    return report({
      name: `driver CMD_SYNC round trip, ${mode} (info)`,
      runs,
      target: null,
      unit: 'syncs',
      note: `${n} bare CMD_SYNCs per run, each awaited; median ${(1e6 / median(runs)).toFixed(1)} µs per round trip`,
    });
  } finally {
    await stack.close();
  }
}

function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[xs.length >> 1];
}

console.log(`# ${CMD}`);
console.log(`# hw-smmuv3 backend through openBackend, node ${process.version}; ${RUNS} timed runs per row after a warm-up, median`);
const rows: Measurement[] = [];
rows.push(await ringRow('worker', 10e6));
rows.push(await ringRow('in-thread', null));
rows.push(await submitRow('worker', 64, null));
rows.push(await submitRow('in-thread', 64, null));
rows.push(await submitRow('worker', 1024, null));
rows.push(await syncRow('worker'));
summary('cmdq-worker', CMD, rows);
