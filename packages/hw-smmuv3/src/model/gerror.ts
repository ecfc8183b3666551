/**
 * Global errors: GERROR / GERRORN toggle semantics (smmuv3.md §1.3).
 *
 * - An error `n` is **active** while GERROR[n] != GERRORN[n].
 * - The SMMU raises an error by toggling GERROR[n], only when it is not already active, and then
 *   signals the GERROR interrupt (if IRQ_CTRL.GERROR_IRQEN).
 * - Software acknowledges by writing GERRORN = the GERROR value it read (toggling the handled bits).
 *
 * Model choices (⚠ CONSTRAINED UNPREDICTABLE in the architecture):
 * - A GERRORN write that toggles a bit whose error is not active is ignored for that bit (the
 *   register is put back), as are writes to undefined bits (RES0). So software cannot make an
 *   error "active" that the SMMU never raised (which would halt the command queue forever).
 * - Acknowledgements take effect when the model next services the register file (the write
 *   rings the doorbell), through {@link GlobalErrors.acknowledge} called by SmmuRegisters.sync.
 * - GERROR is read-only: a software write to it is undone at the next sync ({@link GlobalErrors.restore}).
 */
import type { RegisterFile } from '@iommulab/runtime';
import { GERROR_ERR_MASK, SMMU_GERROR, SMMU_GERRORN } from '../codec/index.js';
import type { SmmuIrq } from './irq.js';

const GERRORN_WORD = SMMU_GERRORN >>> 2;

/** The GERROR register owner (hardware side). */
export class GlobalErrors {
  /** GERROR as the hardware holds it. */
  value = 0;
  /** GERRORN as accepted by the hardware (the last acknowledged value). */
  ackd = 0;
  /** Number of errors raised (toggles of GERROR), all bits. */
  raised = 0;
  /** Raises per GERROR bit index (0..8). */
  readonly raisedByBit = new Uint32Array(9);

  /**
   * @param regs - the register file
   * @param irq - interrupt delivery; the constructor binds it back (`irq.gerror = this`) so an
   *   aborted MSI can raise MSI_*_ABT_ERR
   */
  constructor(
    private readonly regs: RegisterFile,
    private readonly irq: SmmuIrq,
  ) {
    irq.gerror = this;
  }

  /** Bits whose errors are active (GERROR ^ GERRORN). */
  get activeMask(): number {
    return (this.value ^ this.ackd) & GERROR_ERR_MASK;
  }

  /** True while error `bit` (a GERROR_* mask) is active. */
  active(bit: number): boolean {
    return ((this.value ^ this.ackd) & bit) !== 0;
  }

  /**
   * Raises error `bit` (one GERROR_* mask) unless already active: toggles GERROR, publishes it
   * and signals the GERROR interrupt.
   * @returns true when GERROR toggled
   */
  raise(bit: number): boolean {
    if (!this.toggle(bit)) return false;
    this.irq.fireGerror();
    return true;
  }

  /**
   * Toggles GERROR for `bit` unless active, without signalling an interrupt (used while the GERROR
   * interrupt itself is being delivered).
   * @returns true when GERROR toggled
   */
  toggle(bit: number): boolean {
    if (((this.value ^ this.ackd) & bit) !== 0) return false;
    this.value = (this.value ^ bit) & GERROR_ERR_MASK;
    this.regs.hwWrite32(SMMU_GERROR, this.value);
    this.raised++;
    this.raisedByBit[31 - Math.clz32(bit)]++;
    return true;
  }

  /**
   * Takes a software GERRORN value: toggles of active errors are accepted (acknowledged), any
   * other difference is reverted in the register.
   * @returns the acknowledged bits
   */
  acknowledge(written: number): number {
    const acked = (written ^ this.ackd) & this.activeMask;
    const next = (this.ackd ^ acked) >>> 0;
    if ((written >>> 0) !== next) Atomics.compareExchange(this.regs.i32, GERRORN_WORD, written | 0, next | 0);
    this.ackd = next;
    return acked;
  }

  /** Rewrites GERROR if software wrote to it (it is read-only). */
  restore(): void {
    if (this.regs.hwRead32(SMMU_GERROR) !== this.value) this.regs.hwWrite32(SMMU_GERROR, this.value);
  }

  /** Power-on state: no error, both registers 0. */
  reset(): void {
    this.value = 0;
    this.ackd = 0;
    this.raised = 0;
    this.raisedByBit.fill(0);
    this.regs.hwWrite32(SMMU_GERROR, 0);
    this.regs.hwWrite32(SMMU_GERRORN, 0);
  }
}
