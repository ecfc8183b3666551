/**
 * Global errors (SMMUv3 GERROR / GERRORN semantics): the hardware toggles a GERROR bit to
 * report an error; the error is active while the GERROR bit differs from the GERRORN bit, which
 * software toggles to acknowledge. The hardware keeps its own copy of GERROR (software writes to
 * the read-only register are undone on the next service).
 */
import type { RegisterFile } from '@iommulab/runtime';
import { GERROR_MASK, REG_GERROR, REG_GERRORN } from './regs.js';

/** The GERROR register owner. */
export class GlobalErrors {
  /** The hardware's value of GERROR. */
  value = 0;
  /** Errors raised. */
  raised = 0;

  constructor(private readonly regs: RegisterFile) {}

  /** True while the error `bit` is active (not acknowledged). */
  active(bit: number): boolean {
    return ((this.value ^ this.regs.hwRead32(REG_GERRORN)) & bit) !== 0;
  }

  /**
   * Reports error `bit` unless it is already active. Returns true when it toggled GERROR (the
   * caller raises the interrupt).
   */
  raise(bit: number): boolean {
    if (this.active(bit)) return false;
    this.value = (this.value ^ bit) & GERROR_MASK;
    this.regs.hwWrite32(REG_GERROR, this.value);
    this.raised++;
    return true;
  }

  /** Rewrites GERROR if software clobbered it. */
  restore(): void {
    if (this.regs.hwRead32(REG_GERROR) !== this.value) this.regs.hwWrite32(REG_GERROR, this.value);
  }

  /** Power-on state. */
  reset(): void {
    this.value = 0;
    this.regs.hwWrite32(REG_GERROR, 0);
  }
}
