/**
 * The command queue consumer (smmuv3.md §1.5, §4): 16-byte commands in a ring in PhysMem,
 * produced by software (CMDQ_PROD) and consumed here (CMDQ_CONS).
 *
 * - Base and LOG2SIZE are latched from CMDQ_BASE when CR0.CMDQEN goes 0→1 ({@link CommandQueue.enable});
 *   LOG2SIZE above IDR1.CMDQS is treated as CMDQS; the base is aligned down to the larger of the
 *   queue size in bytes or 32 bytes (IHI 0070 §6.3.26, {@link alignQueueBase}). CONS is latched from CMDQ_CONS at the same time
 *   (software may write CONS only while CMDQEN = 0; later software writes are undone by
 *   {@link CommandQueue.restore}). Changing CMDQ_BASE while enabled has no effect until re-enable.
 * - {@link CommandQueue.process} consumes from CONS to CMDQ_PROD (read once: at most one lap of
 *   the ring per call, so an absurd queue size cannot hang the model) while CMDQEN = 1 and
 *   GERROR.CMDQ_ERR is not active.
 * - Errors halt the queue: CONS keeps pointing at the offending command, CMDQ_CONS.ERR [30:24]
 *   gets the code, GERROR.CMDQ_ERR is raised. CERROR_ILL: {@link CmdDecoder}; CERROR_ABT: the
 *   16-byte entry is not inside PhysMem (no throw); CERROR_ATC_INV_SYNC: the target's
 *   `syncPending()` reported it for a CMD_SYNC. After software acknowledges CMDQ_ERR through
 *   GERRORN, processing restarts by re-fetching the command at CONS, and ERR is cleared to 0.
 * - Every command except CMD_SYNC goes to the {@link CommandTarget}; a non-zero return halts the
 *   queue with that code.
 * - CMD_SYNC (§4.5): completes once the target reports nothing pending; then CONS is advanced past
 *   it and published, CS = SIG_IRQ writes the 32-bit MSIData at MSIAddress (truncated to the OAS) in
 *   PhysMem when IDR0.MSI and MSIAddress ≠ 0 (IHI 0070 §4.7.3; address outside PhysMem →
 *   GERROR.MSI_CMDQ_ABT_ERR; the sync still completes),
 *   CS = SIG_SEV counts a SEV (accepted even without IDR0.SEV, §12 #9), and every completed sync
 *   rings the irq doorbell (the runtime's wake-up for a waiting driver).
 * - CONS is published once per call and at each CMD_SYNC.
 */
import type { PhysMem, RegisterFile } from '@iommulab/runtime';
import {
  CERROR_ABT,
  CERROR_ATC_INV_SYNC,
  CERROR_ILL,
  CERROR_NONE,
  CMDQ_CONS_ERR_SHIFT,
  CMDQ_ENT_BYTES,
  CmdOp,
  GERROR_CMDQ_ERR,
  GERROR_MSI_CMDQ_ABT_ERR,
  Q_BASE_ADDR_MASK_HI,
  Q_BASE_ADDR_MASK_LO,
  Q_BASE_LOG2SIZE_MASK,
  SMMU_CMDQ_BASE,
  SMMU_CMDQ_CONS,
  SMMU_CMDQ_PROD,
  SyncCs,
} from '../codec/index.js';
import { CmdDecoder, CmdqEntry } from './cmdq-entry.js';
import type { SmmuFeatures } from './features.js';
import type { GlobalErrors } from './gerror.js';
import type { SmmuIrq } from './irq.js';

const TWO_32 = 4294967296;
const CONS_WORD = SMMU_CMDQ_CONS >>> 2;
const PROD_WORD = SMMU_CMDQ_PROD >>> 2;

/**
 * The effective base of a queue of 2^log2 entries of `entryBytes` (IHI 0070 §6.3.26 CMDQ_BASE,
 * §6.3.29 EVENTQ_BASE, PRIQ_BASE: "The effective base address is aligned by the SMMU to the
 * larger of the queue size in bytes or 32 bytes, ignoring the least-significant bits of ADDR").
 * `log2` is the effective (capped) LOG2SIZE.
 */
export function alignQueueBase(addr: number, entryBytes: number, log2: number): number {
  const bytes = Math.max(entryBytes * 2 ** log2, 32);
  return addr - (addr % bytes);
}

/** What the commands act on: the SMMU's caches, ATCs, stall and PRI state (the pipeline, H-D). */
export interface CommandTarget {
  /**
   * Executes one decoded, legal command other than CMD_SYNC. The entry is scratch: copy what you
   * keep. @returns CERROR_NONE (0), or a CERROR code that halts the queue at this command
   */
  execute(e: CmdqEntry): number;
  /**
   * Asked before a CMD_SYNC completes: CERROR_NONE when every earlier command's effects are
   * complete, CERROR_ATC_INV_SYNC when an ATC invalidation it waits for failed (the queue then
   * halts at the CMD_SYNC).
   */
  syncPending(): number;
}

/** Command queue counters. */
export interface CmdqStats {
  /** Commands consumed (CMD_SYNC included). */
  commands: number;
  /** CMD_SYNCs completed. */
  syncs: number;
  /** CMD_SYNCs with CS = SIG_SEV. */
  sev: number;
  /** CMD_SYNC MSI writes done. */
  syncMsi: number;
  /** Halts on errors (all codes). */
  errors: number;
  /** Halts with CERROR_ILL. */
  ill: number;
  /** Halts with CERROR_ABT. */
  abt: number;
  /** Halts with CERROR_ATC_INV_SYNC. */
  atcInvSync: number;
  /** Calls of process() that consumed at least one command. */
  batches: number;
}

/** The command-queue consumer (hardware side). */
export class CommandQueue {
  /** CR0ACK.CMDQEN as applied. */
  enabled = false;
  /** Latched PA of entry 0 (CMDQ_BASE.ADDR [51:5]; may be beyond PhysMem: fetches then abort). */
  basePa = 0;
  /** Latched log2 of the number of entries (clamped to IDR1.CMDQS). */
  log2 = 0;
  /** The hardware's CONS (index | wrap). */
  cons = 0;
  /** The current CMDQ_CONS.ERR code (non-zero while halted). */
  err = CERROR_NONE;
  /** The scratch entry of the command being executed. */
  readonly entry = new CmdqEntry();
  /** The decoder (feature tables). */
  readonly decoder: CmdDecoder;
  /** Counters. */
  readonly stats: CmdqStats = { commands: 0, syncs: 0, sev: 0, syncMsi: 0, errors: 0, ill: 0, abt: 0, atcInvSync: 0, batches: 0 };
  private readonly maxLog2: number;
  private readonly msi: boolean;
  private readonly oasBytes: number;

  constructor(
    private readonly mem: PhysMem,
    private readonly regs: RegisterFile,
    private readonly gerror: GlobalErrors,
    features: SmmuFeatures,
    private readonly target: CommandTarget,
    private readonly irq: SmmuIrq,
  ) {
    this.decoder = new CmdDecoder(features);
    this.maxLog2 = features.cmdqLog2;
    this.msi = features.msi;
    this.oasBytes = 2 ** features.oas;
  }

  /** True while halted on an error (CONS.ERR ≠ 0). */
  get halted(): boolean {
    return this.err !== CERROR_NONE;
  }

  /** The CMDQ_CONS value the hardware publishes: index | wrap | ERR << 24. */
  get consValue(): number {
    return (this.cons | (this.err << CMDQ_CONS_ERR_SHIFT)) >>> 0;
  }

  private publish(): void {
    Atomics.store(this.regs.i32, CONS_WORD, this.cons | (this.err << CMDQ_CONS_ERR_SHIFT));
  }

  /** CMDQEN 0→1: latches CMDQ_BASE and CMDQ_CONS (index and wrap; ERR cleared) and starts consuming. */
  enable(): void {
    const lo = this.regs.hwRead32(SMMU_CMDQ_BASE);
    const hi = this.regs.hwRead32(SMMU_CMDQ_BASE + 4);
    this.log2 = Math.min(lo & Q_BASE_LOG2SIZE_MASK, this.maxLog2);
    this.basePa = alignQueueBase(((lo & Q_BASE_ADDR_MASK_LO) >>> 0) + (hi & Q_BASE_ADDR_MASK_HI) * TWO_32, CMDQ_ENT_BYTES, this.log2);
    this.cons = this.regs.hwRead32(SMMU_CMDQ_CONS) & ((2 << this.log2) - 1);
    this.err = CERROR_NONE;
    this.enabled = true;
    this.publish();
  }

  /** CMDQEN 1→0: stops consuming; CMDQ_CONS keeps its value and becomes software-writable. */
  disable(): void {
    this.enabled = false;
  }

  /** Power-on state (disabled, CONS 0). */
  reset(): void {
    this.enabled = false;
    this.basePa = 0;
    this.log2 = 0;
    this.cons = 0;
    this.err = CERROR_NONE;
    const s = this.stats;
    s.commands = s.syncs = s.sev = s.syncMsi = s.errors = s.ill = s.abt = s.atcInvSync = s.batches = 0;
  }

  /** Undoes a software write to CMDQ_CONS while the queue is enabled (CONS is then hardware-owned). */
  restore(): void {
    if (this.enabled && Atomics.load(this.regs.i32, CONS_WORD) >>> 0 !== this.consValue) this.publish();
  }

  /**
   * Consumes commands from CONS up to CMDQ_PROD (read once), executing each.
   * @returns the number of commands consumed
   */
  process(): number {
    if (!this.enabled || this.gerror.active(GERROR_CMDQ_ERR)) return 0;
    const log2 = this.log2;
    const mask = (2 << log2) - 1;
    const idxMask = (1 << log2) - 1;
    const prod = Atomics.load(this.regs.i32, PROD_WORD) & mask;
    let cons = this.cons;
    if (this.err !== CERROR_NONE) {
      // CMDQ_ERR was acknowledged: resume at CONS with ERR cleared.
      this.err = CERROR_NONE;
      this.publish();
    }
    if (prod === cons) return 0;
    const u32 = this.mem.u32;
    const memSize = this.mem.size;
    const base = this.basePa;
    const e = this.entry;
    const decoder = this.decoder;
    const target = this.target;
    let err = CERROR_NONE;
    let n = 0;
    while (cons !== prod) {
      const pa = base + (cons & idxMask) * CMDQ_ENT_BYTES;
      if (pa + CMDQ_ENT_BYTES > memSize) {
        err = CERROR_ABT;
        break;
      }
      e.index = cons;
      err = decoder.decode(u32, pa >>> 2, e);
      if (err !== CERROR_NONE) break;
      if (e.op === CmdOp.SYNC) {
        err = target.syncPending();
        if (err !== CERROR_NONE) break;
        cons = (cons + 1) & mask;
        n++;
        this.cons = cons;
        this.publish();
        this.completeSync(e);
      } else {
        err = target.execute(e);
        if (err !== CERROR_NONE) break;
        cons = (cons + 1) & mask;
        n++;
      }
    }
    this.cons = cons;
    const s = this.stats;
    s.commands += n;
    if (n > 0) s.batches++;
    if (err !== CERROR_NONE) {
      this.err = err;
      s.errors++;
      if (err === CERROR_ILL) s.ill++;
      else if (err === CERROR_ABT) s.abt++;
      else if (err === CERROR_ATC_INV_SYNC) s.atcInvSync++;
      this.publish(); // CONS (at the bad command) + ERR before GERROR: software reads them in that order
      this.gerror.raise(GERROR_CMDQ_ERR);
    } else {
      this.publish();
    }
    return n;
  }

  /** Signals a completed CMD_SYNC (§4.5). */
  private completeSync(e: CmdqEntry): void {
    const s = this.stats;
    s.syncs++;
    if (e.cs === SyncCs.IRQ) {
      // IHI 0070 §4.7.3: the MSI write is made "if MSIAddress is non-zero" (the whole field, not
      // only the bits within the OAS); the address is then truncated to the OAS (§3.4.3).
      if (this.msi && e.msiAddr !== 0) {
        if (this.irq.msiWrite(e.msiAddr % this.oasBytes, e.msiData)) s.syncMsi++;
        else this.gerror.raise(GERROR_MSI_CMDQ_ABT_ERR);
      }
    } else if (e.cs === SyncCs.SEV) {
      s.sev++;
    }
    this.irq.syncDone();
  }
}
