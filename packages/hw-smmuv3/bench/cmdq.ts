/**
 * Bench: command-queue consumption rate, in-thread, with a trivial CommandTarget.
 * Stream: CMD_TLBI_NH_VA (ASID, VA, Leaf) with a CMD_SYNC (CS = SEV) after every 64, in a 2^16-entry
 * ring; software (this script) writes CMDQ_PROD one full lap at a time and calls service() (as the
 * doorbell would). Reports the median of the runs, the heap-used delta and GC events during the
 * timed loop (decoding reuses one CmdqEntry: no allocation per command).
 *
 * Run from packages/hw-smmuv3:
 *   cd /work/main/packages/hw-smmuv3 && node --conditions=@iommulab/source --expose-gc --import tsx bench/cmdq.ts
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { PhysMem, RegisterFile } from '@iommulab/runtime';
import {
  CR0_CMDQEN,
  CmdField,
  CmdOp,
  SH_ISH,
  SMMU_CMDQ_BASE,
  SMMU_CMDQ_CONS,
  SMMU_CMDQ_PROD,
  SMMU_CR0,
  SMMU_REG_BYTES,
  SyncCs,
  packFields,
  setAddr,
} from '../src/codec/index.js';
import { SmmuControl, resolveFeatures, type CmdqEntry, type CommandTarget } from '../src/model/queues-index.js';

const CMD = 'cd /work/main/packages/hw-smmuv3 && node --conditions=@iommulab/source --expose-gc --import tsx bench/cmdq.ts';
const RUNS = 7;
const LOG2 = 16;
const ENTRIES = 1 << LOG2;
const LAPS = 320; // ≈ 21 M commands per run
const SYNC_EVERY = 64;

let gcs = 0;
new PerformanceObserver((list) => {
  gcs += list.getEntries().length;
}).observe({ entryTypes: ['gc'] });
const forceGc = (globalThis as { gc?: () => void }).gc;

/** A trivial target: counts and folds a field so the work is not optimised away. */
class CountingTarget implements CommandTarget {
  n = 0;
  sum = 0;
  execute(e: CmdqEntry): number {
    this.n++;
    this.sum = (this.sum + e.asid + e.addrLo) | 0;
    return 0;
  }
  syncPending(): number {
    return 0;
  }
}

const mem = PhysMem.create(64 * 1024 * 1024);
const regs = RegisterFile.create(SMMU_REG_BYTES);
const target = new CountingTarget();
const ctl = new SmmuControl(mem, regs, resolveFeatures(), { target });

const ring = mem.allocFrames((16 * ENTRIES) / 4096, (16 * ENTRIES) / 4096);
for (let i = 0; i < ENTRIES; i++) {
  let w: Uint32Array;
  if (i % (SYNC_EVERY + 1) === SYNC_EVERY) {
    w = packFields(CmdField, { OPCODE: CmdOp.SYNC, CS: SyncCs.SEV, MSH: SH_ISH, MSIATTR: 0xf }, 2);
  } else {
    w = packFields(CmdField, { OPCODE: CmdOp.TLBI_NH_VA, ASID: 1 + (i & 0xff), LEAF: 1 }, 2);
    setAddr(w, 0, CmdField.ADDR, 0x1000_0000 + i * 4096);
  }
  mem.u32.set(w, (ring + 16 * i) >>> 2);
}
regs.write64(SMMU_CMDQ_BASE, ring + LOG2);
regs.write32(SMMU_CMDQ_PROD, 0);
regs.write32(SMMU_CMDQ_CONS, 0);
regs.write32(SMMU_CR0, CR0_CMDQEN);
ctl.service();

let prod = 0;
/** One lap = the whole ring: PROD = CONS with the wrap bit flipped (full). */
function laps(n: number): number {
  let done = 0;
  for (let l = 0; l < n; l++) {
    prod ^= ENTRIES;
    regs.write32(SMMU_CMDQ_PROD, prod);
    done += ctl.service();
  }
  return done;
}

laps(40); // warm-up
if (regs.read32(SMMU_CMDQ_CONS) !== prod) throw new Error(`queue did not drain: CONS ${regs.read32(SMMU_CMDQ_CONS).toString(16)}`);

async function measure() {
  forceGc?.();
  await new Promise((r) => setTimeout(r, 30));
  const gc0 = gcs;
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = process.hrtime.bigint();
  const n = laps(LAPS);
  const t1 = process.hrtime.bigint();
  const heap1 = process.memoryUsage().heapUsed;
  await new Promise((r) => setTimeout(r, 30));
  const s = Number(t1 - t0) / 1e9;
  return { commands: n, seconds: s, mCmdPerSec: n / s / 1e6, heapUsedDeltaBytes: heap1 - heap0, gcEvents: gcs - gc0 };
}

const runs = [];
for (let r = 0; r < RUNS; r++) runs.push(await measure());
const rates = runs.map((r) => r.mCmdPerSec).sort((a, b) => a - b);
const median = rates[Math.floor(rates.length / 2)];
const st = ctl.cmdq.stats;
console.log(
  JSON.stringify(
    {
      bench: 'cmdq: TLBI_NH_VA + CMD_SYNC(SEV) every 64, trivial target',
      command: CMD,
      ringEntries: ENTRIES,
      runs: runs.map((r) => ({
        commands: r.commands,
        seconds: Number(r.seconds.toFixed(3)),
        mCmdPerSec: Number(r.mCmdPerSec.toFixed(1)),
        heapUsedDeltaBytes: r.heapUsedDeltaBytes,
        gcEvents: r.gcEvents,
      })),
      medianMCmdPerSec: Number(median.toFixed(1)),
      target10M: median >= 10 ? 'met' : 'NOT met',
      totals: { commands: st.commands, syncs: st.syncs, errors: st.errors, executed: target.n },
      checksum: target.sum,
    },
    null,
    2,
  ),
);
