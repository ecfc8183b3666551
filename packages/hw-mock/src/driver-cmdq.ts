/**
 * Driver side of the command queue: writes spec-format commands at CMDQ_PROD, always ends a
 * batch with a CMD_SYNC carrying a sequence number, rings the doorbell with one PROD write and
 * waits (bounded by the driver's timeout) for the sync word in PhysMem to reach that sequence.
 * A halted queue is recovered as Linux does for SMMUv3: the bad command is replaced by a
 * CMD_SYNC and the error acknowledged through GERRORN.
 */
import { IommuError } from '@iommulab/driver-api';
import { RuntimeError, qIdx, qInc, qSpace, waitUntil, type PhysMem, type RegisterFile } from '@iommulab/runtime';
import { CMD_BYTES, writeCmdSync } from './codec.js';
import { GERROR_CMDQ_ERR, REG_CMDQ_CONS, REG_CMDQ_PROD, REG_GERROR, REG_GERRORN } from './regs.js';

/** The result of a submit that completed synchronously. */
const DONE: Promise<void> = Promise.resolve();

/** Fills one command at word index `w` of `u32`; `k` is its number within the batch. */
export type CommandFiller = (u32: Uint32Array, w: number, k: number) => void;

/** The driver's command-queue producer. */
export class DriverCommandQueue {
  private prod = 0;
  private seq = 0;
  /** Queue errors recovered (commands skipped). */
  errorsRecovered = 0;
  /** Batches submitted. */
  batches = 0;

  /**
   * @param base - PA of the ring; @param log2 - log2 entries; @param syncWord - PA of the 4-byte completion word
   */
  constructor(
    private readonly instanceId: string,
    private readonly mem: PhysMem,
    private readonly regs: RegisterFile,
    private readonly base: number,
    private readonly log2: number,
    private readonly syncWord: number,
    private readonly timeoutMs: number,
  ) {
    this.seq = mem.read32(syncWord);
  }

  private consNow(): number {
    return this.regs.read32(REG_CMDQ_CONS) & ((2 << this.log2) - 1);
  }

  /** If the hardware halted on an error: replace the bad command with a CMD_SYNC and acknowledge. */
  private recover(): void {
    const gerror = this.regs.read32(REG_GERROR);
    const gerrorn = this.regs.read32(REG_GERRORN);
    if (((gerror ^ gerrorn) & GERROR_CMDQ_ERR) === 0) return;
    const at = this.base + qIdx(this.consNow(), this.log2) * CMD_BYTES;
    writeCmdSync(this.mem.u32, at >>> 2, 0, 0);
    this.errorsRecovered++;
    this.regs.write32(REG_GERRORN, (gerrorn ^ GERROR_CMDQ_ERR) >>> 0);
  }

  private async wait(pred: () => boolean, what: string): Promise<void> {
    try {
      await waitUntil(
        () => {
          if (pred()) return true;
          this.recover();
          return pred();
        },
        { doorbell: this.regs.irq, timeoutMs: this.timeoutMs, what },
      );
    } catch (e) {
      if (e instanceof RuntimeError && e.code === 'TIMEOUT') {
        throw new IommuError(
          'ETIMEDOUT',
          `instance ${this.instanceId}: ${what} did not complete within ${this.timeoutMs} ms ` +
            `(CMDQ_PROD=0x${this.prod.toString(16)}, CMDQ_CONS=0x${this.regs.read32(REG_CMDQ_CONS).toString(16)})`,
          { cause: e },
        );
      }
      throw e;
    }
  }

  /** True once the CMD_SYNC numbered `seq` has completed (recovering a halted queue first if not). */
  private synced(seq: number): boolean {
    if (this.reached(seq)) return true;
    this.recover();
    return this.reached(seq);
  }

  /** True once the sync word has reached `seq`. */
  private reached(seq: number): boolean {
    return ((Atomics.load(this.mem.i32, this.syncWord >>> 2) - seq) | 0) >= 0;
  }

  /**
   * Submits `count` commands (possibly 0: a bare sync) in batches that fit the ring, each batch
   * followed by a CMD_SYNC, and waits for the last sync (rejects, never throws synchronously).
   * Fast path: one batch with ring space free now; when the hardware completes the CMD_SYNC
   * inside the PROD write (in-thread) the returned Promise is already resolved and nothing
   * waits for an event-loop turn.
   * @throws IommuError ETIMEDOUT when the hardware does not complete in time
   */
  submit(count: number, fill: CommandFiller): Promise<void> {
    const log2 = this.log2;
    if (count < (1 << log2) - 1) {
      try {
        if (qSpace(this.prod, this.consNow(), log2) >= count + 1) {
          const seq = this.push(count, fill, 0);
          if (this.synced(seq)) return DONE;
          return this.wait(() => this.reached(seq), `CMD_SYNC #${seq}`);
        }
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return this.submitSlow(count, fill);
  }

  /** Writes commands `k .. k + n)` of a batch and its CMD_SYNC, rings PROD; returns the sync's number. */
  private push(n: number, fill: CommandFiller, k: number): number {
    const log2 = this.log2;
    const u32 = this.mem.u32;
    for (let i = 0; i < n; i++) {
      fill(u32, (this.base + qIdx(this.prod, log2) * CMD_BYTES) >>> 2, k + i);
      this.prod = qInc(this.prod, log2);
    }
    const seq = (this.seq = (this.seq + 1) >>> 0);
    writeCmdSync(u32, (this.base + qIdx(this.prod, log2) * CMD_BYTES) >>> 2, seq, this.syncWord);
    this.prod = qInc(this.prod, log2);
    this.batches++;
    this.regs.write32(REG_CMDQ_PROD, this.prod);
    return seq;
  }

  /** {@link submit} in general: several batches, or waiting for ring space. */
  private async submitSlow(count: number, fill: CommandFiller): Promise<void> {
    const log2 = this.log2;
    const maxBatch = (1 << log2) - 1;
    let k = 0;
    do {
      const n = Math.min(count - k, maxBatch);
      // Re-check synchronously after every wait: another submit may have taken the space.
      while (qSpace(this.prod, this.consNow(), log2) < n + 1) {
        await this.wait(() => qSpace(this.prod, this.consNow(), log2) >= n + 1, `space for ${n + 1} commands in the CMDQ`);
      }
      const seq = this.push(n, fill, k);
      if (!this.synced(seq)) await this.wait(() => this.reached(seq), `CMD_SYNC #${seq}`);
      k += n;
    } while (k < count);
  }
}
