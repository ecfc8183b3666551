/**
 * Interrupt delivery (smmuv3.md §1.1 MSI config, §1.3 IRQ_CTRL, §4.5, §5.3 step 4).
 *
 * Three interrupt sources are gated by IRQ_CTRL(ACK): GERROR [0], PRIQ [1], EVTQ [2]. When one
 * fires and is enabled:
 * - MSI: if IDR0.MSI and the source's *_IRQ_CFG0 address [51:2] is non-zero, the 32-bit
 *   *_IRQ_CFG1 data is written at that address in PhysMem (Atomics.store + notify, so a thread
 *   waiting on the word wakes). An address outside PhysMem is an abort: GERROR.MSI_{GERROR,PRIQ,
 *   EVTQ}_ABT_ERR is raised and nothing is written.
 * - Wired: the register file's irq doorbell is rung (`regs.raiseIrq()`). The model rings it for
 *   MSIs too: the doorbell is the runtime's only hardware→software wake-up, a stand-in for the
 *   interrupt controller that an MSI write would reach.
 *
 * CMD_SYNC completion (not gated by IRQ_CTRL) rings the doorbell as well ({@link SmmuIrq.syncDone}):
 * the runtime's equivalent of SEV waking a WFE-waiting CPU; the MSI write of a CS = SIG_IRQ sync is
 * done by the command queue through {@link SmmuIrq.msiWrite} (abort → MSI_CMDQ_ABT_ERR).
 */
import type { PhysMem, RegisterFile } from '@iommulab/runtime';
import {
  GERROR_MSI_EVTQ_ABT_ERR,
  GERROR_MSI_GERROR_ABT_ERR,
  GERROR_MSI_PRIQ_ABT_ERR,
  IRQ_CFG0_ADDR_MASK_HI,
  IRQ_CFG0_ADDR_MASK_LO,
  IRQ_CTRL_EVTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  IRQ_CTRL_PRIQ_IRQEN,
  SMMU_EVTQ_IRQ_CFG0,
  SMMU_GERROR_IRQ_CFG0,
  SMMU_PRIQ_IRQ_CFG0,
} from '../codec/index.js';
import type { SmmuFeatures } from './features.js';
import type { GlobalErrors } from './gerror.js';

const TWO_32 = 4294967296;

/** Interrupt delivery counters. */
export interface IrqStats {
  /** GERROR interrupts signalled. */
  gerror: number;
  /** Event-queue interrupts signalled. */
  evtq: number;
  /** PRI-queue interrupts signalled. */
  priq: number;
  /** CMD_SYNC completions signalled (doorbell rings for syncs). */
  sync: number;
  /** MSI writes done (all sources, CMD_SYNC included). */
  msiWrites: number;
  /** MSI writes that aborted (address outside PhysMem). */
  msiAborts: number;
  /** Doorbell rings (wired line). */
  wired: number;
}

/** Interrupt delivery for one SMMU. */
export class SmmuIrq {
  /** The effective interrupt enables: the IRQ_CTRLACK value (maintained by SmmuRegisters). */
  enables = 0;
  /** Global errors (bound by the GlobalErrors constructor). */
  gerror: GlobalErrors | null = null;
  /** Counters. */
  readonly stats: IrqStats = { gerror: 0, evtq: 0, priq: 0, sync: 0, msiWrites: 0, msiAborts: 0, wired: 0 };
  private readonly msi: boolean;

  constructor(
    private readonly mem: PhysMem,
    private readonly regs: RegisterFile,
    features: SmmuFeatures,
  ) {
    this.msi = features.msi;
  }

  /**
   * Writes the 32-bit `data` at physical address `addr` (4-aligned) as an MSI.
   * @returns false (nothing written) when the address is outside PhysMem
   */
  msiWrite(addr: number, data: number): boolean {
    if (!(addr >= 0 && addr + 4 <= this.mem.size) || (addr & 3) !== 0) {
      this.stats.msiAborts++;
      return false;
    }
    const i = addr >>> 2;
    Atomics.store(this.mem.i32, i, data | 0);
    Atomics.notify(this.mem.i32, i);
    this.stats.msiWrites++;
    return true;
  }

  /** MSI address programmed in the *_IRQ_CFG0 register at `off` (bits [51:2]); 0 = none. */
  cfgAddr(off: number): number {
    const lo = this.regs.hwRead32(off) & IRQ_CFG0_ADDR_MASK_LO;
    const hi = this.regs.hwRead32(off + 4) & IRQ_CFG0_ADDR_MASK_HI;
    return (lo >>> 0) + hi * TWO_32;
  }

  /** Sends the MSI of a source if configured; returns false on abort. */
  private sendMsi(cfg0: number): boolean {
    if (!this.msi) return true;
    const addr = this.cfgAddr(cfg0);
    if (addr === 0) return true;
    return this.msiWrite(addr, this.regs.hwRead32(cfg0 + 8));
  }

  private ring(): void {
    this.stats.wired++;
    this.regs.raiseIrq();
  }

  /** Signals the event-queue interrupt if IRQ_CTRL.EVTQ_IRQEN. @returns whether it was enabled */
  fireEvtq(): boolean {
    if ((this.enables & IRQ_CTRL_EVTQ_IRQEN) === 0) return false;
    this.stats.evtq++;
    if (!this.sendMsi(SMMU_EVTQ_IRQ_CFG0)) this.gerror?.raise(GERROR_MSI_EVTQ_ABT_ERR);
    this.ring();
    return true;
  }

  /** Signals the PRI-queue interrupt if IRQ_CTRL.PRIQ_IRQEN. @returns whether it was enabled */
  firePriq(): boolean {
    if ((this.enables & IRQ_CTRL_PRIQ_IRQEN) === 0) return false;
    this.stats.priq++;
    if (!this.sendMsi(SMMU_PRIQ_IRQ_CFG0)) this.gerror?.raise(GERROR_MSI_PRIQ_ABT_ERR);
    this.ring();
    return true;
  }

  /**
   * Signals the GERROR interrupt if IRQ_CTRL.GERROR_IRQEN. An aborted GERROR MSI toggles
   * MSI_GERROR_ABT_ERR without a second interrupt (the one being delivered reports it).
   * @returns whether it was enabled
   */
  fireGerror(): boolean {
    if ((this.enables & IRQ_CTRL_GERROR_IRQEN) === 0) return false;
    this.stats.gerror++;
    if (!this.sendMsi(SMMU_GERROR_IRQ_CFG0)) this.gerror?.toggle(GERROR_MSI_GERROR_ABT_ERR);
    this.ring();
    return true;
  }

  /** A CMD_SYNC completed: rings the doorbell so a waiting driver wakes (SEV stand-in). */
  syncDone(): void {
    this.stats.sync++;
    this.ring();
  }

  /** Zeroes the enables (IRQ_CTRLACK reset value) and the counters. */
  reset(): void {
    this.enables = 0;
    const s = this.stats;
    s.gerror = s.evtq = s.priq = s.sync = s.msiWrites = s.msiAborts = s.wired = 0;
  }
}
