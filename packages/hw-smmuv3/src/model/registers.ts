/**
 * Register-side behaviour of the SMMU (smmuv3.md §1.1–§1.5) over a RegisterFile.
 *
 * The model never sees register writes as events: a software write stores the value in the
 * shared register file and rings `regs.doorbell`; the hardware then calls `service()`, which
 * calls {@link SmmuRegisters.sync}. `sync()` compares every software-writable register with its
 * shadow and acts on the differences:
 * - CR0 → RES0 bits masked (register rewritten), the `cr0Changed(prev, next)` hook applies the
 *   enables (queue consumers/producers start or stop), then CR0ACK = CR0. SMMUEN / ATSCHK are
 *   read by the pipeline through the getters.
 * - IRQ_CTRL → masked, applied to the interrupt enables, then IRQ_CTRLACK.
 * - GBPA → a write with UPDATE = 1 applies the defined fields and clears UPDATE (the register
 *   then reads back the applied value); a write without UPDATE is ignored (the register is put
 *   back), as required from v3.2.
 * - GERRORN → GlobalErrors.acknowledge (acks active errors; the command queue restarts on the next
 *   process() if CMDQ_ERR was acknowledged).
 * - CR1 (12 bits), CR2 (E2H only with HYP, PTM only with BTM, RECINVSID) stored, RES0 bits masked;
 *   CR1.TABLE_* and CR2 writes are ignored while SMMUEN is on, CR1.QUEUE_* while a queue is enabled,
 *   and *_IRQ_CFGn writes while their IRQ_CTRL enable is on (IHI 0070 §6.3.11, §6.3.12, §6.3.21:
 *   the only permitted behaviour from v3.2).
 * - STRTAB_BASE / STRTAB_BASE_CFG: RES0 masked; latched into {@link SmmuRegisters.strtab} whenever
 *   SMMUEN = 0 (checked before and after a CR0 change in the same sync, so "write STRTAB then set
 *   SMMUEN" seen at once works). Writes while SMMUEN = 1 (CONSTRAINED UNPREDICTABLE) take effect
 *   only once SMMUEN is cleared.
 * - *_BASE and *_IRQ_CFG0/1/2: RES0 masked (IRQ_CFG registers are all RES0 without IDR0.MSI, the
 *   PRIQ registers without IDR0.PRI). Queue bases are latched by the queues at enable time.
 * - CMDQ_PROD / EVTQ_CONS / PRIQ_CONS: reported in the change mask (the queues read them live).
 * - Read-only registers (IDR0–5, IIDR, AIDR, CR0ACK, IRQ_CTRLACK, STATUSR, AGBPA (RAZ/WI), the
 *   page-0 RES0 slots 0xA8/0xAC/0xC8/0xCC, the CoreSight ID registers) are put back if software
 *   wrote them; GERROR by GlobalErrors.restore; CMDQ_CONS / EVTQ_PROD / PRIQ_PROD by the queues'
 *   restore() while enabled.
 * Register write-backs use Atomics.compareExchange against the value read, so a concurrent newer
 * software write is never overwritten.
 *
 * ## Composition (how the pipeline wires this; SmmuControl in control.ts does exactly this)
 * ```ts
 * const features = resolveFeatures(ctx.options, myOptionNames);
 * const irq = new SmmuIrq(mem, regs, features);
 * const gerror = new GlobalErrors(regs, irq);               // binds irq.gerror
 * const cmdq = new CommandQueue(mem, regs, gerror, features, target, irq);
 * const evtq = new EventQueue(mem, regs, gerror, irq, features);
 * const priq = new PriQueue(mem, regs, gerror, irq, features);
 * const registers = new SmmuRegisters(regs, features, gerror, irq, {
 *   cr0Changed(prev, next) {                                 // before CR0ACK is written
 *     if ((prev ^ next) & CR0_CMDQEN) (next & CR0_CMDQEN ? cmdq.enable() : cmdq.disable());
 *     if ((prev ^ next) & CR0_EVTQEN) (next & CR0_EVTQEN ? evtq.enable() : evtq.disable());
 *     if ((prev ^ next) & CR0_PRIQEN) (next & CR0_PRIQEN ? priq.enable() : priq.disable());
 *   },
 * });
 * // reset(): irq.reset(); gerror.reset(); cmdq.reset(); evtq.reset(); priq.reset(); registers.reset();
 * // service(): const ch = registers.sync(); cmdq.restore(); evtq.restore(); priq.restore(); return cmdq.process() + (ch ? 1 : 0);
 * ```
 */
import type { RegisterFile } from '@iommulab/runtime';
import {
  CR0_ATSCHK,
  CR0_CMDQEN,
  CR0_EVTQEN,
  CR0_PRIQEN,
  CR0_SMMUEN,
  CR2_E2H,
  CR2_PTM,
  CR2_RECINVSID,
  GBPA_ABORT,
  GBPA_RESET,
  GBPA_UPDATE,
  IRQ_CTRL_EVTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  IRQ_CTRL_PRIQ_IRQEN,
  SMMU_AGBPA,
  SMMU_AIDR,
  SMMU_CMDQ_BASE,
  SMMU_CMDQ_PROD,
  SMMU_CR0,
  SMMU_CR0ACK,
  SMMU_CR1,
  SMMU_CR2,
  SMMU_EVTQ_BASE,
  SMMU_EVTQ_CONS,
  SMMU_EVTQ_IRQ_CFG0,
  SMMU_EVTQ_IRQ_CFG1,
  SMMU_EVTQ_IRQ_CFG2,
  SMMU_GBPA,
  SMMU_GERRORN,
  SMMU_GERROR_IRQ_CFG0,
  SMMU_GERROR_IRQ_CFG1,
  SMMU_GERROR_IRQ_CFG2,
  SMMU_ID_REGS,
  SMMU_IDR0,
  SMMU_IDR1,
  SMMU_IDR2,
  SMMU_IDR3,
  SMMU_IDR4,
  SMMU_IDR5,
  SMMU_IIDR,
  SMMU_IRQ_CTRL,
  SMMU_IRQ_CTRLACK,
  SMMU_PIDR4,
  SMMU_PRIQ_BASE,
  SMMU_PRIQ_CONS,
  SMMU_PRIQ_IRQ_CFG0,
  SMMU_PRIQ_IRQ_CFG1,
  SMMU_PRIQ_IRQ_CFG2,
  SMMU_STATUSR,
  SMMU_STRTAB_BASE,
  SMMU_STRTAB_BASE_CFG,
  STRTAB_BASE_ADDR_MASK_HI,
  STRTAB_BASE_ADDR_MASK_LO,
  STRTAB_BASE_CFG_FMT_MASK,
  STRTAB_BASE_CFG_FMT_SHIFT,
  STRTAB_BASE_CFG_LOG2SIZE_MASK,
  STRTAB_BASE_CFG_SPLIT_MASK,
  STRTAB_BASE_CFG_SPLIT_SHIFT,
  STRTAB_BASE_RA_HI,
} from '../codec/index.js';
import type { SmmuFeatures } from './features.js';
import type { GlobalErrors } from './gerror.js';
import { idrRegisters, type IdrValues } from './idr.js';
import type { SmmuIrq } from './irq.js';

const TWO_32 = 4294967296;

/** Bits of the mask {@link SmmuRegisters.sync} returns: what changed since the previous call. */
export const RegChange = {
  /** CR0 changed (any bit); CR0ACK now equals it. */
  CR0: 1 << 0,
  /** CR0.SMMUEN changed. */
  SMMUEN: 1 << 1,
  /** CR0.CMDQEN changed. */
  CMDQEN: 1 << 2,
  /** CR0.EVTQEN changed. */
  EVTQEN: 1 << 3,
  /** CR0.PRIQEN changed. */
  PRIQEN: 1 << 4,
  /** CR0.ATSCHK changed. */
  ATSCHK: 1 << 5,
  /** CR1 changed. */
  CR1: 1 << 6,
  /** CR2 changed (E2H / RECINVSID / PTM). */
  CR2: 1 << 7,
  /** GBPA was updated (UPDATE protocol) to a different value. */
  GBPA: 1 << 8,
  /** IRQ_CTRL changed; IRQ_CTRLACK now equals it. */
  IRQ_CTRL: 1 << 9,
  /** GERRORN written (errors acknowledged). */
  GERRORN: 1 << 10,
  /** The latched stream-table configuration changed. */
  STRTAB: 1 << 11,
  /** CMDQ_PROD moved. */
  CMDQ_PROD: 1 << 12,
  /** EVTQ_CONS moved (software consumed events / acknowledged overflow). */
  EVTQ_CONS: 1 << 13,
  /** PRIQ_CONS moved. */
  PRIQ_CONS: 1 << 14,
  /** An *_IRQ_CFGn register changed. */
  IRQ_CFG: 1 << 15,
  /** A queue *_BASE register changed (takes effect at the queue's next enable). */
  QUEUE_BASE: 1 << 16,
} as const;

/** Hooks {@link SmmuRegisters.sync} calls. */
export interface SmmuRegisterHooks {
  /**
   * CR0 is changing from `prev` to `next` (both RES0-masked): apply the enables here. Called
   * before CR0ACK is published, so the driver sees the ACK only once the effects are in place.
   */
  cr0Changed?(prev: number, next: number): void;
}

/** The latched stream-table configuration (STRTAB_BASE, STRTAB_BASE_CFG; §1.4). */
export interface StrtabConfig {
  /** Table address: STRTAB_BASE.ADDR [51:6] (may be beyond PhysMem: fetches then abort). */
  base: number;
  /** STRTAB_BASE.RA [62]. */
  ra: boolean;
  /** STRTAB_BASE_CFG.LOG2SIZE [5:0] as written. */
  log2size: number;
  /** min(LOG2SIZE, IDR1.SIDSIZE): StreamIDs at or above 2^this are out of range (§2.4 step 1). */
  sidLog2: number;
  /** STRTAB_BASE_CFG.SPLIT [10:6] as written. */
  split: number;
  /** STRTAB_BASE_CFG.FMT [17:16] as written (0 linear, 1 2-level, 2/3 reserved). */
  fmt: number;
}

// Masks of defined bits.
const CR1_MASK = 0xfff;
/** CR1.TABLE_SH [11:10], TABLE_OC [9:8], TABLE_IC [7:6]: guarded by SMMUEN (IHI 0070 §6.3.11). */
const CR1_TABLE_FIELDS = 0xfc0;
/** CR1.QUEUE_SH [5:4], QUEUE_OC [3:2], QUEUE_IC [1:0]: guarded by the queue enables (§6.3.11). */
const CR1_QUEUE_FIELDS = 0x03f;
const GBPA_FIELDS = 0x001f3f1f; // MemAttr [3:0], MTCFG [4], ALLOCCFG [11:8], SHCFG [13:12], PRIVCFG [17:16], INSTCFG [19:18], ABORT [20]; [15:14] RES0 (IHI 0070 §6.3.14)
const STRTAB_CFG_MASK =
  STRTAB_BASE_CFG_LOG2SIZE_MASK |
  (STRTAB_BASE_CFG_SPLIT_MASK << STRTAB_BASE_CFG_SPLIT_SHIFT) |
  (STRTAB_BASE_CFG_FMT_MASK << STRTAB_BASE_CFG_FMT_SHIFT);
const Q_BASE_HI_MASK = 0x400fffff; // RA/WA [62], ADDR [51:32]
const STRTAB_HI_MASK = STRTAB_BASE_RA_HI | STRTAB_BASE_ADDR_MASK_HI;

/** The IRQ_CTRL enable guarding the *_IRQ_CFGn register at `off` (IHI 0070 §6.3.16, §6.3.21). */
function irqGuard(off: number): number {
  if (off >= SMMU_GERROR_IRQ_CFG0 && off <= SMMU_GERROR_IRQ_CFG2) return IRQ_CTRL_GERROR_IRQEN;
  if (off >= SMMU_EVTQ_IRQ_CFG0 && off <= SMMU_EVTQ_IRQ_CFG2) return IRQ_CTRL_EVTQ_IRQEN;
  if (off >= SMMU_PRIQ_IRQ_CFG0 && off <= SMMU_PRIQ_IRQ_CFG2) return IRQ_CTRL_PRIQ_IRQEN;
  return 0;
}

/** The SMMU's register-side state machine. */
export class SmmuRegisters {
  /** ID register values (also written into the register file by reset()). */
  readonly idr: IdrValues;
  /** CR0 as applied (= CR0ACK). */
  cr0 = 0;
  /** CR1 as stored. */
  cr1 = 0;
  /** CR2 as stored. */
  cr2 = 0;
  /** GBPA as applied (UPDATE clear). */
  gbpa = GBPA_RESET;
  /** IRQ_CTRL as applied (= IRQ_CTRLACK). */
  irqCtrl = 0;
  /** The latched stream-table configuration. */
  readonly strtab: StrtabConfig = { base: 0, ra: false, log2size: 0, sidLog2: 0, split: 0, fmt: 0 };
  /** Number of sync() calls that found a change. */
  changesSeen = 0;

  private readonly i32: Int32Array;
  private readonly cr0Writable: number;
  private readonly cr2Writable: number;
  private readonly irqWritable: number;
  /** [word, mask] of the simple masked software registers (CR1/CR2 handled separately). */
  private readonly masked: Int32Array;
  /** Change bit of each `masked` entry. */
  private readonly maskedBit: Int32Array;
  /** IRQ_CTRL enable guarding each `masked` entry (IHI 0070 §6.3.21), 0 = unguarded. */
  private readonly maskedGuard: Int32Array;
  /** Shadows of the `masked` registers. */
  private readonly maskedShadow: Int32Array;
  /** [word, value] pairs of read-only registers. */
  private readonly ro: Int32Array;
  private strtabLo = 0;
  private strtabHi = 0;
  private strtabCfg = 0;
  private cmdqProd = 0;
  private evtqCons = 0;
  private priqCons = 0;
  private readonly sidBits: number;

  constructor(
    private readonly regs: RegisterFile,
    features: SmmuFeatures,
    private readonly gerror: GlobalErrors,
    private readonly irq: SmmuIrq,
    private readonly hooks: SmmuRegisterHooks = {},
  ) {
    this.i32 = regs.i32;
    this.idr = idrRegisters(features);
    this.sidBits = features.sidBits;
    this.cr0Writable = CR0_SMMUEN | CR0_EVTQEN | CR0_CMDQEN | (features.pri ? CR0_PRIQEN : 0) | (features.ats ? CR0_ATSCHK : 0);
    // IHI 0070 §6.3.12: PTM is RES0 unless IDR0.BTM, E2H unless IDR0.Hyp (REC_CFG_ATS: no ATSRECERR).
    this.cr2Writable = CR2_RECINVSID | (features.btm ? CR2_PTM : 0) | (features.hyp ? CR2_E2H : 0);
    this.irqWritable = IRQ_CTRL_GERROR_IRQEN | IRQ_CTRL_EVTQ_IRQEN | (features.pri ? IRQ_CTRL_PRIQ_IRQEN : 0);
    const msi = features.msi;
    const pri = features.pri;
    const m: [number, number, number, number?][] = [
      // [offset, defined bits, change bit, guarding IRQ_CTRL enable]
      [SMMU_CMDQ_BASE, -1, RegChange.QUEUE_BASE],
      [SMMU_CMDQ_BASE + 4, Q_BASE_HI_MASK, RegChange.QUEUE_BASE],
      [SMMU_EVTQ_BASE, -1, RegChange.QUEUE_BASE],
      [SMMU_EVTQ_BASE + 4, Q_BASE_HI_MASK, RegChange.QUEUE_BASE],
      [SMMU_PRIQ_BASE, pri ? -1 : 0, RegChange.QUEUE_BASE],
      [SMMU_PRIQ_BASE + 4, pri ? Q_BASE_HI_MASK : 0, RegChange.QUEUE_BASE],
    ];
    for (const [cfg0, on] of [
      [SMMU_GERROR_IRQ_CFG0, msi],
      [SMMU_EVTQ_IRQ_CFG0, msi],
      [SMMU_PRIQ_IRQ_CFG0, msi && pri],
    ] as const) {
      m.push([cfg0, on ? 0xfffffffc | 0 : 0, RegChange.IRQ_CFG, irqGuard(cfg0)]);
      m.push([cfg0 + 4, on ? 0x000fffff : 0, RegChange.IRQ_CFG, irqGuard(cfg0)]);
    }
    for (const [off, on] of [
      [SMMU_GERROR_IRQ_CFG1, msi],
      [SMMU_EVTQ_IRQ_CFG1, msi],
      [SMMU_PRIQ_IRQ_CFG1, msi && pri],
    ] as const) {
      m.push([off, on ? -1 : 0, RegChange.IRQ_CFG, irqGuard(off)]);
    }
    for (const [off, on] of [
      [SMMU_GERROR_IRQ_CFG2, msi],
      [SMMU_EVTQ_IRQ_CFG2, msi],
      [SMMU_PRIQ_IRQ_CFG2, msi && pri],
    ] as const) {
      m.push([off, on ? 0x3f : 0, RegChange.IRQ_CFG, irqGuard(off)]);
    }
    this.masked = new Int32Array(m.length * 2);
    this.maskedBit = new Int32Array(m.length);
    this.maskedShadow = new Int32Array(m.length);
    this.maskedGuard = new Int32Array(m.length);
    m.forEach(([off, mask, bit, guard], i) => {
      this.masked[2 * i] = off >>> 2;
      this.masked[2 * i + 1] = mask;
      this.maskedBit[i] = bit;
      this.maskedGuard[i] = guard ?? 0;
    });
    const ro: [number, number][] = [
      [SMMU_IDR0, this.idr.idr0],
      [SMMU_IDR1, this.idr.idr1],
      [SMMU_IDR2, this.idr.idr2],
      [SMMU_IDR3, this.idr.idr3],
      [SMMU_IDR4, this.idr.idr4],
      [SMMU_IDR5, this.idr.idr5],
      [SMMU_IIDR, this.idr.iidr],
      [SMMU_AIDR, this.idr.aidr],
      [SMMU_STATUSR, 0],
      [SMMU_AGBPA, 0],
      [0xa8, 0],
      [0xac, 0],
      [0xc8, 0],
      [0xcc, 0],
    ];
    SMMU_ID_REGS.forEach((v, i) => ro.push([SMMU_PIDR4 + 4 * i, v]));
    this.ro = new Int32Array(ro.length * 2);
    ro.forEach(([off, v], i) => {
      this.ro[2 * i] = off >>> 2;
      this.ro[2 * i + 1] = v | 0;
    });
  }

  // ---------------------------------------------------------------- decoded state

  /** CR0(ACK).SMMUEN: translation enabled (else GBPA applies). */
  get smmuEn(): boolean {
    return (this.cr0 & CR0_SMMUEN) !== 0;
  }
  /** CR0(ACK).CMDQEN. */
  get cmdqEn(): boolean {
    return (this.cr0 & CR0_CMDQEN) !== 0;
  }
  /** CR0(ACK).EVTQEN. */
  get evtqEn(): boolean {
    return (this.cr0 & CR0_EVTQEN) !== 0;
  }
  /** CR0(ACK).PRIQEN. */
  get priqEn(): boolean {
    return (this.cr0 & CR0_PRIQEN) !== 0;
  }
  /** CR0(ACK).ATSCHK: ATS-translated transactions are checked against the STE (EATS). */
  get atsChk(): boolean {
    return (this.cr0 & CR0_ATSCHK) !== 0;
  }
  /** GBPA.ABORT: with SMMUEN = 0, every transaction is aborted (no event). */
  get gbpaAbort(): boolean {
    return (this.gbpa & GBPA_ABORT) !== 0;
  }
  /** CR2.E2H. */
  get e2h(): boolean {
    return (this.cr2 & CR2_E2H) !== 0;
  }
  /** CR2.RECINVSID: record C_BAD_STREAMID for out-of-range StreamIDs (§12 #2). */
  get recInvSid(): boolean {
    return (this.cr2 & CR2_RECINVSID) !== 0;
  }
  /** CR2.PTM: private TLB maintenance (ignore broadcast TLBI). */
  get ptm(): boolean {
    return (this.cr2 & CR2_PTM) !== 0;
  }

  // ---------------------------------------------------------------- reset / sync

  /** Power-on state: every register 0 except the ID registers and GBPA (0x1000). */
  reset(): void {
    const i32 = this.i32;
    for (let i = 0; i < i32.length; i++) Atomics.store(i32, i, 0);
    const ro = this.ro;
    for (let i = 0; i < ro.length; i += 2) Atomics.store(i32, ro[i], ro[i + 1]);
    Atomics.store(i32, SMMU_GBPA >>> 2, GBPA_RESET);
    this.cr0 = this.cr1 = this.cr2 = this.irqCtrl = 0;
    this.gbpa = GBPA_RESET;
    this.maskedShadow.fill(0);
    this.strtabLo = this.strtabHi = this.strtabCfg = 0;
    this.cmdqProd = this.evtqCons = this.priqCons = 0;
    this.latchStrtab();
    this.irq.enables = 0;
    this.changesSeen = 0;
  }

  /** Rewrites the register at word `w` from `seen` to `v` unless software changed it meanwhile. */
  private fix(w: number, seen: number, v: number): void {
    if (seen !== v) Atomics.compareExchange(this.i32, w, seen, v);
  }

  private latchStrtab(): boolean {
    const s = this.strtab;
    const lo = this.strtabLo;
    const hi = this.strtabHi;
    const cfg = this.strtabCfg;
    const base = ((lo & STRTAB_BASE_ADDR_MASK_LO) >>> 0) + (hi & STRTAB_BASE_ADDR_MASK_HI) * TWO_32;
    const ra = (hi & STRTAB_BASE_RA_HI) !== 0;
    const log2size = cfg & STRTAB_BASE_CFG_LOG2SIZE_MASK;
    const split = (cfg >>> STRTAB_BASE_CFG_SPLIT_SHIFT) & STRTAB_BASE_CFG_SPLIT_MASK;
    const fmt = (cfg >>> STRTAB_BASE_CFG_FMT_SHIFT) & STRTAB_BASE_CFG_FMT_MASK;
    if (s.base === base && s.ra === ra && s.log2size === log2size && s.split === split && s.fmt === fmt) return false;
    s.base = base;
    s.ra = ra;
    s.log2size = log2size;
    s.sidLog2 = Math.min(log2size, this.sidBits);
    s.split = split;
    s.fmt = fmt;
    return true;
  }

  /**
   * Applies software register writes made since the last call (see the module comment).
   * @returns a {@link RegChange} bit mask of what changed (0 = nothing)
   */
  sync(): number {
    const i32 = this.i32;
    let ch = 0;

    // Read-only registers.
    const ro = this.ro;
    for (let i = 0; i < ro.length; i += 2) {
      const w = ro[i];
      const v = Atomics.load(i32, w);
      if (v !== ro[i + 1]) Atomics.store(i32, w, ro[i + 1]);
    }
    Atomics.store(i32, SMMU_CR0ACK >>> 2, this.cr0);
    Atomics.store(i32, SMMU_IRQ_CTRLACK >>> 2, this.irqCtrl);
    this.gerror.restore();

    // Plain masked registers (queue bases, IRQ_CFGn).
    // IRQ_CFGn are RO while IRQ_CTRL.x_IRQEN or IRQ_CTRLACK.x_IRQEN is 1 (IHI 0070 §6.3.21; a write
    // is IGNORED from v3.2). The applied value (ACK) and the written one are both 1 only when the
    // enable was on before and still is: the write cannot have preceded it.
    const irqLocked = this.irqCtrl & Atomics.load(i32, SMMU_IRQ_CTRL >>> 2);
    const m = this.masked;
    const shadow = this.maskedShadow;
    const guard = this.maskedGuard;
    for (let i = 0, j = 0; i < m.length; i += 2, j++) {
      const w = m[i];
      const v = Atomics.load(i32, w);
      if (v !== shadow[j]) {
        if ((guard[j] & irqLocked) !== 0) {
          this.fix(w, v, shadow[j]);
          continue;
        }
        const mv = v & m[i + 1];
        this.fix(w, v, mv);
        if (mv !== shadow[j]) {
          shadow[j] = mv;
          ch |= this.maskedBit[j];
        }
      }
    }

    // CR1, CR2 (IHI 0070 §6.3.11 / §6.3.12): CR1.TABLE_* and CR2 are RO while CR0.SMMUEN or
    // CR0ACK.SMMUEN is 1, CR1.QUEUE_* while any queue enable is; from v3.2 such a write is IGNORED.
    // Locked = the enable was applied before this sync and is still written (so the write did not
    // precede the enable).
    const cr0Both = this.cr0 & Atomics.load(i32, SMMU_CR0 >>> 2);
    const smmuEnLocked = (cr0Both & CR0_SMMUEN) !== 0;
    const queuesLocked = (cr0Both & (CR0_EVTQEN | CR0_CMDQEN | CR0_PRIQEN)) !== 0;
    {
      const w = SMMU_CR1 >>> 2;
      const v = Atomics.load(i32, w);
      if (v !== this.cr1) {
        const keep = (smmuEnLocked ? CR1_TABLE_FIELDS : 0) | (queuesLocked ? CR1_QUEUE_FIELDS : 0);
        const mv = ((v & CR1_MASK & ~keep) | (this.cr1 & keep)) >>> 0;
        this.fix(w, v, mv);
        if (mv !== this.cr1) {
          this.cr1 = mv;
          ch |= RegChange.CR1;
        }
      }
    }
    {
      const w = SMMU_CR2 >>> 2;
      const v = Atomics.load(i32, w);
      if (v !== this.cr2) {
        const mv = smmuEnLocked ? this.cr2 : v & this.cr2Writable;
        this.fix(w, v, mv);
        if (mv !== this.cr2) {
          this.cr2 = mv;
          ch |= RegChange.CR2;
        }
      }
    }

    // GBPA: UPDATE protocol.
    {
      const w = SMMU_GBPA >>> 2;
      const v = Atomics.load(i32, w);
      if (v !== this.gbpa) {
        if ((v & GBPA_UPDATE) !== 0) {
          const nv = v & GBPA_FIELDS;
          if (nv !== this.gbpa) {
            this.gbpa = nv;
            ch |= RegChange.GBPA;
          }
        }
        this.fix(w, v, this.gbpa);
      }
    }

    // GERRORN: acknowledgements.
    {
      const v = Atomics.load(i32, SMMU_GERRORN >>> 2) >>> 0;
      if (v !== this.gerror.ackd) {
        this.gerror.acknowledge(v);
        ch |= RegChange.GERRORN;
      }
    }

    // IRQ_CTRL → IRQ_CTRLACK.
    {
      const w = SMMU_IRQ_CTRL >>> 2;
      const v = Atomics.load(i32, w);
      if (v !== this.irqCtrl) {
        const mv = v & this.irqWritable;
        this.fix(w, v, mv);
        if (mv !== this.irqCtrl) {
          this.irqCtrl = mv;
          this.irq.enables = mv;
          Atomics.store(i32, SMMU_IRQ_CTRLACK >>> 2, mv);
          ch |= RegChange.IRQ_CTRL;
        }
      }
    }

    // STRTAB_BASE / _CFG (latched while SMMUEN = 0).
    {
      const wl = SMMU_STRTAB_BASE >>> 2;
      const lo = Atomics.load(i32, wl);
      const hi = Atomics.load(i32, wl + 1);
      const cfg = Atomics.load(i32, SMMU_STRTAB_BASE_CFG >>> 2);
      const mlo = lo & STRTAB_BASE_ADDR_MASK_LO;
      const mhi = hi & STRTAB_HI_MASK;
      const mcfg = cfg & STRTAB_CFG_MASK;
      this.fix(wl, lo, mlo);
      this.fix(wl + 1, hi, mhi);
      this.fix(SMMU_STRTAB_BASE_CFG >>> 2, cfg, mcfg);
      this.strtabLo = mlo;
      this.strtabHi = mhi;
      this.strtabCfg = mcfg;
      if (!this.smmuEn && this.latchStrtab()) ch |= RegChange.STRTAB;
    }

    // CR0 → enables → CR0ACK.
    {
      const w = SMMU_CR0 >>> 2;
      const v = Atomics.load(i32, w);
      if (v !== this.cr0) {
        const mv = v & this.cr0Writable;
        this.fix(w, v, mv);
        const prev = this.cr0;
        if (mv !== prev) {
          const diff = prev ^ mv;
          this.hooks.cr0Changed?.(prev, mv);
          this.cr0 = mv;
          Atomics.store(i32, SMMU_CR0ACK >>> 2, mv);
          ch |= RegChange.CR0;
          if (diff & CR0_SMMUEN) ch |= RegChange.SMMUEN;
          if (diff & CR0_CMDQEN) ch |= RegChange.CMDQEN;
          if (diff & CR0_EVTQEN) ch |= RegChange.EVTQEN;
          if (diff & CR0_PRIQEN) ch |= RegChange.PRIQEN;
          if (diff & CR0_ATSCHK) ch |= RegChange.ATSCHK;
          if (!this.smmuEn && this.latchStrtab()) ch |= RegChange.STRTAB;
        }
      }
    }

    // Queue indices software moves.
    {
      const p = Atomics.load(i32, SMMU_CMDQ_PROD >>> 2);
      if (p !== this.cmdqProd) {
        this.cmdqProd = p;
        ch |= RegChange.CMDQ_PROD;
      }
      const ec = Atomics.load(i32, SMMU_EVTQ_CONS >>> 2);
      if (ec !== this.evtqCons) {
        this.evtqCons = ec;
        ch |= RegChange.EVTQ_CONS;
      }
      const pc = Atomics.load(i32, SMMU_PRIQ_CONS >>> 2);
      if (pc !== this.priqCons) {
        this.priqCons = pc;
        ch |= RegChange.PRIQ_CONS;
      }
    }
    if (ch !== 0) this.changesSeen++;
    return ch;
  }
}
