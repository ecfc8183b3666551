/**
 * The driver's command-queue producer (smmuv3.md §1.5, §4.5): commands are written at the shadow
 * PROD, a batch is published with one CMDQ_PROD write and ends with a CMD_SYNC, and the driver
 * waits (bounded by `timeoutMs`, woken by the `regs.irq` doorbell) for that CMD_SYNC to complete:
 * - MSI-poll (Linux ARM_SMMU_OPT_MSIPOLL, when IDR0.MSI && COHACC): CS = SIG_IRQ with MSIAddress
 *   = the CMD_SYNC entry itself and MSIData 0; complete when word 0 of the entry reads 0;
 * - otherwise CS = SIG_SEV; complete when CMDQ_CONS has been consumed past the CMD_SYNC.
 * (CONS having passed the CMD_SYNC is also accepted in MSI-poll mode: the SMMU never advances
 * CONS past an uncompleted sync, §4.5.)
 *
 * A halted queue (GERROR.CMDQ_ERR active) is recovered as Linux's `arm_smmu_cmdq_skip_err` +
 * gerror handler: CERROR_ILL (or an unknown code) → the offending entry is overwritten with a
 * CMD_SYNC; CERROR_ABT / CERROR_ATC_INV_SYNC / CERROR_NONE → nothing; then GERRORN := GERROR.
 */
import { IommuError } from '@iommulab/driver-api';
import { RuntimeError, qIdx, qInc, qSpace, qWrap, waitUntil, type PhysMem, type RegisterFile } from '@iommulab/runtime';
import {
  CERROR_ABT,
  CERROR_ATC_INV_SYNC,
  CERROR_ILL,
  CERROR_NONE,
  CMDQ_CONS_ERR_MASK,
  CMDQ_CONS_ERR_SHIFT,
  CMDQ_ENT_BYTES,
  GERROR_CMDQ_ERR,
  GERROR_ERR_MASK,
  SMMU_CMDQ_CONS,
  SMMU_CMDQ_PROD,
  SMMU_GERROR,
  SMMU_GERRORN,
} from '../codec/index.js';
import { cmdSync } from './cmd-build.js';

/** Fills command `k` of a batch at word `w` of `u32` (four words). */
export type CmdFiller = (u32: Uint32Array, w: number, k: number) => void;

/** What a {@link SmmuCmdq} is built over. */
export interface CmdqConfig {
  readonly instanceId: string;
  readonly mem: PhysMem;
  readonly regs: RegisterFile;
  /** PA of the ring (aligned to its size). */
  readonly base: number;
  /** log2 of the number of entries (≥ 7). */
  readonly log2: number;
  /** Upper bound of every wait, in ms. */
  readonly timeoutMs: number;
  /** Complete CMD_SYNCs by MSI write over the entry (IDR0.MSI && COHACC) instead of CS = SEV. */
  readonly msiPoll: boolean;
}

/** Counters of the command queue. */
export interface CmdqStats {
  batches: number;
  commands: number;
  syncs: number;
  /** Commands skipped after CERROR_ILL (replaced by a CMD_SYNC). */
  illegal: number;
  /** CERROR_ABT recoveries (fetch retried). */
  aborts: number;
  /** CERROR_ATC_INV_SYNC recoveries (sync retried). */
  atcInvSyncErrors: number;
  /** GERROR acknowledgements written (any error bit). */
  gerrorAcks: number;
}

/** The result of a submit that completed synchronously. */
const DONE: Promise<void> = Promise.resolve();

/** Linux `queue_consumed`: true once CONS has moved past the entry at `p` (index + wrap). */
export function queueConsumed(cons: number, p: number, log2: number): boolean {
  const ci = qIdx(cons, log2);
  const pi = qIdx(p, log2);
  return qWrap(cons, log2) === qWrap(p, log2) ? ci > pi : ci <= pi;
}

/** The host driver's CMDQ producer. */
export class SmmuCmdq {
  /** Shadow CMDQ_PROD (index + wrap). */
  private prod = 0;
  private readonly u32: Uint32Array;
  private readonly i32: Int32Array;
  private readonly mask: number;
  /** Counters. */
  readonly stats: CmdqStats = { batches: 0, commands: 0, syncs: 0, illegal: 0, aborts: 0, atcInvSyncErrors: 0, gerrorAcks: 0 };
  /** Last GERROR value seen active, for reports. */
  lastGerror = 0;
  /** Last illegal command skipped (four words), for reports and tests. */
  lastIllegal: Uint32Array | undefined;
  /** The shared wait of the commands issued without a CMD_SYNC (see issuedConsumed). */
  private issuedWait: Promise<void> | undefined;

  constructor(private readonly cfg: CmdqConfig) {
    this.u32 = cfg.mem.u32;
    this.i32 = cfg.mem.i32;
    this.mask = (2 << cfg.log2) - 1;
  }

  /** The shadow PROD (what the driver last wrote to CMDQ_PROD). */
  get shadowProd(): number {
    return this.prod;
  }

  /** Number of entries of the ring. */
  get entries(): number {
    return 1 << this.cfg.log2;
  }

  private consNow(): number {
    return this.cfg.regs.read32(SMMU_CMDQ_CONS) & this.mask;
  }

  private wordOf(p: number): number {
    return (this.cfg.base + qIdx(p, this.cfg.log2) * CMDQ_ENT_BYTES) >>> 2;
  }

  /**
   * Linux's gerror handler, run whenever the driver waits: acknowledges every active GERROR bit
   * (GERRORN := GERROR), first recovering a halted command queue. Returns the active bits.
   */
  handleGerror(): number {
    const regs = this.cfg.regs;
    const gerror = regs.read32(SMMU_GERROR);
    const gerrorn = regs.read32(SMMU_GERRORN);
    const active = (gerror ^ gerrorn) & GERROR_ERR_MASK;
    if (active === 0) return 0;
    this.lastGerror = active;
    if (active & GERROR_CMDQ_ERR) this.skipErr();
    this.stats.gerrorAcks++;
    regs.write32(SMMU_GERRORN, gerror);
    return active;
  }

  /** `arm_smmu_cmdq_skip_err`: CONS points at the failed command. */
  private skipErr(): void {
    const consReg = this.cfg.regs.read32(SMMU_CMDQ_CONS);
    const err = (consReg >>> CMDQ_CONS_ERR_SHIFT) & CMDQ_CONS_ERR_MASK;
    switch (err) {
      case CERROR_ABT:
        this.stats.aborts++;
        return;
      case CERROR_NONE:
        return;
      case CERROR_ATC_INV_SYNC:
        this.stats.atcInvSyncErrors++;
        return;
      case CERROR_ILL:
      default: {
        const w = this.wordOf(consReg & this.mask);
        this.lastIllegal = this.u32.slice(w, w + 4);
        this.stats.illegal++;
        // Convert the erroneous command into a CMD_SYNC (CS = SEV: Linux builds it without MSI).
        cmdSync(this.u32, w, 0);
      }
    }
  }

  private timeout(e: unknown, what: string): unknown {
    if (e instanceof RuntimeError && e.code === 'TIMEOUT') {
      const regs = this.cfg.regs;
      return new IommuError(
        'ETIMEDOUT',
        `instance ${this.cfg.instanceId}: ${what} did not complete within ${this.cfg.timeoutMs} ms ` +
          `(CMDQ_PROD=0x${this.prod.toString(16)}, CMDQ_CONS=0x${regs.read32(SMMU_CMDQ_CONS).toString(16)}, ` +
          `GERROR=0x${regs.read32(SMMU_GERROR).toString(16)})`,
        { cause: e },
      );
    }
    return e;
  }

  /**
   * Waits for `pred`: spins briefly, then sleeps on the irq doorbell, or (`poll`) re-checks once
   * per event-loop turn. The SMMU rings the doorbell for completed CMD_SYNCs and queue interrupts
   * only, so CONS progress alone (commands issued without a CMD_SYNC, CMDQ space) is polled: a
   * doorbell wait would sleep a whole wait slice, 20 ms, whenever the spin missed it.
   */
  private async wait(pred: () => boolean, what: string, poll = false): Promise<void> {
    try {
      await waitUntil(
        () => {
          if (pred()) return true;
          this.handleGerror();
          return pred();
        },
        poll ? { timeoutMs: this.cfg.timeoutMs, what } : { doorbell: this.cfg.regs.irq, timeoutMs: this.cfg.timeoutMs, what },
      );
    } catch (e) {
      throw this.timeout(e, what);
    }
  }

  /** True once the CMD_SYNC at queue position `p` has completed. */
  private syncDone(p: number): boolean {
    if (this.cfg.msiPoll && Atomics.load(this.i32, this.wordOf(p)) === 0) return true;
    return queueConsumed(this.consNow(), p, this.cfg.log2);
  }

  private hasSpace(n: number): boolean {
    return qSpace(this.prod, this.consNow(), this.cfg.log2) >= n;
  }

  /** Writes `n` commands (`fill(k)` for k in [k0, k0 + n)), optionally a CMD_SYNC; one PROD write. Returns the sync's position or -1. */
  private push(n: number, fill: CmdFiller, k0: number, sync: boolean): number {
    const log2 = this.cfg.log2;
    const u32 = this.u32;
    for (let i = 0; i < n; i++) {
      fill(u32, this.wordOf(this.prod), k0 + i);
      this.prod = qInc(this.prod, log2);
    }
    let at = -1;
    if (sync) {
      at = this.prod;
      const w = this.wordOf(at);
      cmdSync(u32, w, this.cfg.msiPoll ? w * 4 : 0);
      this.prod = qInc(this.prod, log2);
      this.stats.syncs++;
    }
    this.stats.commands += n;
    this.stats.batches++;
    this.cfg.regs.write32(SMMU_CMDQ_PROD, this.prod);
    return at;
  }

  /**
   * Submits `count` commands (0 = a bare CMD_SYNC) followed by a CMD_SYNC and resolves when it
   * has completed; more commands than the ring holds go in several batches, each with its sync.
   * Never throws synchronously. Fast path: when the hardware completes the sync inside the PROD
   * write (in-thread), the returned Promise is already resolved.
   * @throws IommuError ETIMEDOUT (rejection) when the hardware does not complete in time
   */
  submit(count: number, fill: CmdFiller): Promise<void> {
    if (count < this.entries - 1) {
      try {
        if (this.hasSpace(count + 1)) {
          const at = this.push(count, fill, 0, true);
          if (this.syncDone(at)) return DONE;
          this.handleGerror();
          if (this.syncDone(at)) return DONE;
          return this.wait(() => this.syncDone(at), `CMD_SYNC at CMDQ position 0x${at.toString(16)}`);
        }
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return this.submitSlow(count, fill, true);
  }

  /**
   * Issues `count` commands without a CMD_SYNC (Linux's `arm_smmu_cmdq_issue_cmd` for
   * PREFETCH_CONFIG, PRI_RESP and RESUME) and resolves once the SMMU has consumed them.
   * @throws IommuError ETIMEDOUT (rejection)
   */
  issue(count: number, fill: CmdFiller): Promise<void> {
    if (count <= 0) return DONE;
    return this.submitSlow(count, fill, false);
  }

  /**
   * Resolves once the SMMU has consumed every command pushed so far. One poll serves a burst of
   * issues: the target is taken a microtask later, when the burst (e.g. the responses of one
   * fault-fd write) is pushed, and consumption is in order, so reaching it covers each of them.
   */
  private issuedConsumed(): Promise<void> {
    if (this.issuedWait === undefined) {
      this.issuedWait = Promise.resolve().then(() => {
        this.issuedWait = undefined;
        const target = (this.prod - 1) & this.mask;
        const log2 = this.cfg.log2;
        if (queueConsumed(this.consNow(), target, log2)) return;
        return this.wait(() => queueConsumed(this.consNow(), target, log2), 'consumption of issued commands', true);
      });
    }
    return this.issuedWait;
  }

  private async submitSlow(count: number, fill: CmdFiller, sync: boolean): Promise<void> {
    const maxBatch = this.entries - 1;
    let k = 0;
    do {
      const n = Math.min(count - k, sync ? maxBatch : maxBatch + 1);
      const need = sync ? n + 1 : n;
      // Re-check synchronously after every wait: another submit may have taken the space.
      while (!this.hasSpace(need)) {
        await this.wait(() => this.hasSpace(need), `space for ${need} commands in the CMDQ`, true);
      }
      const at = this.push(n, fill, k, sync);
      k += n;
      if (sync) {
        if (!this.syncDone(at)) await this.wait(() => this.syncDone(at), `CMD_SYNC at CMDQ position 0x${at.toString(16)}`);
      } else {
        const last = (this.prod - 1) & this.mask;
        if (!queueConsumed(this.consNow(), last, this.cfg.log2)) await this.issuedConsumed();
      }
    } while (k < count);
  }
}
