/**
 * The SMMU's programming interface assembled: features + ID registers, register-side behaviour,
 * global errors, interrupts, command queue, event queue and PRI queue, wired as the module
 * comment of registers.ts describes. The pipeline (SmmuV3Hardware) owns one and calls
 * {@link SmmuControl.service} from its own `service()`, {@link SmmuControl.reset} from `reset()`,
 * records events with `evtq.push(rec)` and page requests with `priq.push(rec)`, and reads
 * `registers.smmuEn`, `registers.strtab`, `registers.gbpaAbort`... for translation.
 */
import type { PhysMem, RegisterFile } from '@iommulab/runtime';
import { CR0_CMDQEN, CR0_EVTQEN, CR0_PRIQEN } from '../codec/index.js';
import { CommandQueue, type CommandTarget } from './command-queue.js';
import { EventQueue } from './event-queue.js';
import type { SmmuFeatures } from './features.js';
import { GlobalErrors } from './gerror.js';
import type { IdrValues } from './idr.js';
import { SmmuIrq } from './irq.js';
import type { ProducerQueueStats } from './output-queue.js';
import { PriQueue, type PriAutoResponder } from './pri-queue.js';
import { SmmuRegisters } from './registers.js';

/** Options of {@link SmmuControl}. */
export interface SmmuControlOptions {
  /** Executes commands (CFGI/TLBI/ATC_INV/PRI_RESP/RESUME/...) and answers CMD_SYNC's `syncPending()`. */
  readonly target: CommandTarget;
  /**
   * Called when CR0 changes, after the queues were started/stopped and before CR0ACK is written
   * (e.g. to react to SMMUEN / ATSCHK).
   */
  readonly onCr0?: (prev: number, next: number) => void;
  /** Receives automatic PRG responses of the PRI queue (also settable later as `priq.onAutoResponse`). */
  readonly onPriAutoResponse?: PriAutoResponder;
}

/** Registers, errors, interrupts and the three queues of one SMMU. */
export class SmmuControl {
  /** The feature set. */
  readonly features: SmmuFeatures;
  /** The ID register values. */
  readonly idr: IdrValues;
  /** Interrupt delivery. */
  readonly irq: SmmuIrq;
  /** GERROR / GERRORN. */
  readonly gerror: GlobalErrors;
  /** Register-side state machine. */
  readonly registers: SmmuRegisters;
  /** Command queue consumer. */
  readonly cmdq: CommandQueue;
  /** Event queue producer. */
  readonly evtq: EventQueue;
  /** PRI queue producer. */
  readonly priq: PriQueue;

  /** Builds everything and resets it (the register file gets its power-on values). */
  constructor(mem: PhysMem, regs: RegisterFile, features: SmmuFeatures, opts: SmmuControlOptions) {
    this.features = features;
    const irq = (this.irq = new SmmuIrq(mem, regs, features));
    const gerror = (this.gerror = new GlobalErrors(regs, irq));
    const cmdq = (this.cmdq = new CommandQueue(mem, regs, gerror, features, opts.target, irq));
    const evtq = (this.evtq = new EventQueue(mem, regs, gerror, irq, features));
    const priq = (this.priq = new PriQueue(mem, regs, gerror, irq, features));
    if (opts.onPriAutoResponse) priq.onAutoResponse = opts.onPriAutoResponse;
    const onCr0 = opts.onCr0;
    this.registers = new SmmuRegisters(regs, features, gerror, irq, {
      cr0Changed(prev, next) {
        const diff = prev ^ next;
        if (diff & CR0_CMDQEN) {
          if (next & CR0_CMDQEN) cmdq.enable();
          else cmdq.disable();
        }
        if (diff & CR0_EVTQEN) {
          if (next & CR0_EVTQEN) evtq.enable();
          else evtq.disable();
        }
        if (diff & CR0_PRIQEN) {
          if (next & CR0_PRIQEN) priq.enable();
          else priq.disable();
        }
        onCr0?.(prev, next);
      },
    });
    this.idr = this.registers.idr;
    this.reset();
  }

  /** Power-on state: registers to reset values, queues disabled and empty, no error, counters 0. */
  reset(): void {
    this.irq.reset();
    this.gerror.reset();
    this.cmdq.reset();
    this.evtq.reset();
    this.priq.reset();
    this.registers.reset();
  }

  /**
   * Applies register writes (RegChange mask kept in {@link SmmuControl.lastChanges}) and
   * consumes the command queue.
   * @returns units of work: commands consumed, + 1 if any register changed
   */
  service(): number {
    const ch = this.registers.sync();
    this.lastChanges = ch;
    this.cmdq.restore();
    this.evtq.restore();
    this.priq.restore();
    const n = this.cmdq.process();
    if (this.evtq.pendingStallRecords > 0) this.evtq.flushPending();
    return n + (ch !== 0 ? 1 : 0);
  }

  /** The RegChange mask of the last {@link SmmuControl.service} call. */
  lastChanges = 0;

  /** Counters, flat, prefixed by unit (cmdq*, evtq*, priq*, irq*, gerror*). */
  stats(out: Record<string, number> = {}): Record<string, number> {
    const c = this.cmdq.stats;
    out.cmdqCommands = c.commands;
    out.cmdqSyncs = c.syncs;
    out.cmdqSev = c.sev;
    out.cmdqSyncMsi = c.syncMsi;
    out.cmdqErrors = c.errors;
    out.cmdqIll = c.ill;
    out.cmdqAbt = c.abt;
    out.cmdqAtcInvSync = c.atcInvSync;
    producerQueueStats(out, 'evtq', this.evtq.stats);
    producerQueueStats(out, 'priq', this.priq.stats);
    out.priqAutoResponses = this.priq.priStats.autoResponses;
    const i = this.irq.stats;
    out.irqGerror = i.gerror;
    out.irqEvtq = i.evtq;
    out.irqPriq = i.priq;
    out.irqSync = i.sync;
    out.irqMsiWrites = i.msiWrites;
    out.irqMsiAborts = i.msiAborts;
    out.irqWired = i.wired;
    out.gerrorRaised = this.gerror.raised;
    return out;
  }
}

/** Copies the counters of a producer queue (event or PRI queue) into `out`, keys prefixed by `prefix`. */
function producerQueueStats(out: Record<string, number>, prefix: 'evtq' | 'priq', s: ProducerQueueStats): void {
  out[`${prefix}Written`] = s.written;
  out[`${prefix}OverflowDrops`] = s.overflowDrops;
  out[`${prefix}Overflows`] = s.overflows;
  out[`${prefix}AbortDrops`] = s.abortDrops;
  out[`${prefix}DisabledDrops`] = s.disabledDrops;
}
