/**
 * Spec rig for the hardware-model tests: drives an SmmuV3Hardware in-thread exactly as software
 * would, from the architecture only (smmuv3.md): register writes (RegisterFile.write32/write64
 * at SMMU_* offsets, then `hw.service()` as the doorbell), structures packed with the codec
 * (STEs, CDs, L1 descriptors, commands) and hand-built VMSAv8-64 translation tables in PhysMem,
 * and event / PRI records read back from the queues in memory. It knows nothing of the model's
 * internal classes.
 */
import {
  ACCESS_READ,
  NO_PASID,
  PhysMem,
  RegisterFile,
  dmaRequest,
  dmaResult,
  type DmaResult,
} from '@iommulab/runtime';
import {
  CFGI_RANGE_ALL,
  CR0_CMDQEN,
  CR0_EVTQEN,
  CR0_PRIQEN,
  CR0_SMMUEN,
  CR1_LINUX,
  CR2_PTM,
  CR2_RECINVSID,
  Cd,
  CmdField,
  CmdOp,
  Evt,
  GBPA_UPDATE,
  IRQ_CTRL_EVTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  IRQ_CTRL_PRIQ_IRQEN,
  L1Cd,
  L1Std,
  Priq,
  Q_OVF,
  SMMU_CMDQ_BASE,
  SMMU_CMDQ_CONS,
  SMMU_CMDQ_PROD,
  SMMU_CR0,
  SMMU_CR0ACK,
  SMMU_CR1,
  SMMU_CR2,
  SMMU_EVTQ_BASE,
  SMMU_EVTQ_CONS,
  SMMU_EVTQ_PROD,
  SMMU_GBPA,
  SMMU_IRQ_CTRL,
  SMMU_PRIQ_BASE,
  SMMU_PRIQ_CONS,
  SMMU_PRIQ_PROD,
  SMMU_REG_BYTES,
  SMMU_STRTAB_BASE,
  SMMU_STRTAB_BASE_CFG,
  STRTAB_BASE_CFG_FMT_SHIFT,
  STRTAB_BASE_CFG_SPLIT_SHIFT,
  STRTAB_FMT_2LVL,
  Ste,
  SyncCs,
  getAddr,
  getField,
  packFields,
  type FieldValues,
} from '../../src/codec/index.js';
import { SmmuV3Hardware } from '../../src/model/smmu.js';

const TWO_32 = 4294967296;

/** Options of a {@link SpecRig}. */
export interface SpecRigOptions {
  /** Backend options (SMMU features). */
  options?: Record<string, unknown>;
  /** PhysMem size (default 64 MiB). */
  memBytes?: number;
  /** Stream table format (default linear). */
  strtab?: 'linear' | '2level';
  /** STRTAB_BASE_CFG.LOG2SIZE (default 8 linear, 16 2-level). */
  strtabLog2?: number;
  /** STRTAB_BASE_CFG.SPLIT for 2-level tables (default 8). */
  split?: number;
  /** Queue sizes (log2 entries; default 8). */
  cmdqLog2?: number;
  evtqLog2?: number;
  priqLog2?: number;
  /** CR2 value (default PTM | RECINVSID, as Linux). */
  cr2?: number;
  /** Set CR0.SMMUEN at the end of bring-up (default true). */
  enable?: boolean;
  /** Enable the PRI queue (default true). */
  priq?: boolean;
  /** Extra CR0 bits (e.g. ATSCHK). */
  cr0Extra?: number;
}

/** A decoded event record (smmuv3.md §5.1). */
export interface EventView {
  id: number;
  sid: number;
  ssv: number;
  ssid: number;
  stag: number;
  stall: number;
  pnu: number;
  ind: number;
  rnw: number;
  s2: number;
  cls: number;
  ttrnw: number;
  inputAddr: number;
  ipa: number;
  fetchAddr: number;
  /** The 8 raw words. */
  words: number[];
}

/** A decoded PRI record (smmuv3.md §6.1). */
export interface PriView {
  sid: number;
  ssid: number;
  pv: number;
  priv: number;
  exec: number;
  read: number;
  write: number;
  last: number;
  prgi: number;
  addr: number;
  words: number[];
}

/**
 * Hand-built VMSAv8-64 tables with 4 KiB granules (smmuv3.md §7): levels `startLevel..3`,
 * `concat` concatenated start-level tables. Table pointers written in descriptors go through
 * `toOutput` (identity, or PA → IPA for stage-1 tables of a nested configuration).
 */
export class HandTables {
  /** PA of the (first) start-level table. */
  readonly root: number;
  /** Frames allocated (tables). */
  readonly frames: number[] = [];

  constructor(
    readonly mem: PhysMem,
    readonly startLevel = 0,
    readonly concat = 1,
    readonly toOutput: (pa: number) => number = (pa) => pa,
  ) {
    this.root = mem.allocFrames(concat, concat);
    for (let i = 0; i < concat; i++) this.frames.push(this.root + i * 4096);
  }

  private static shift(level: number): number {
    return 12 + (3 - level) * 9;
  }

  /** PA of the descriptor for `va` at `level`, creating tables above it (null if a leaf is in the way). */
  descPa(va: number, level: number): number {
    let table = this.root;
    for (let l = this.startLevel; l < level; l++) {
      const sh = HandTables.shift(l);
      const idx = l === this.startLevel ? Math.floor(va / 2 ** sh) % (512 * this.concat) : Math.floor(va / 2 ** sh) % 512;
      const d = table + idx * 8;
      const lo = this.mem.read32(d);
      const hi = this.mem.read32(d + 4);
      if ((lo & 3) === 3) {
        table = this.tablePaOf(lo, hi);
        continue;
      }
      const next = this.mem.allocFrame();
      this.frames.push(next);
      const out = this.toOutput(next);
      this.mem.write32(d, ((out >>> 0) & 0xfffff000) | 3);
      this.mem.write32(d + 4, Math.floor(out / TWO_32));
      table = next;
    }
    const sh = HandTables.shift(level);
    const idx = level === this.startLevel ? Math.floor(va / 2 ** sh) % (512 * this.concat) : Math.floor(va / 2 ** sh) % 512;
    return table + idx * 8;
  }

  private tablePaOf(lo: number, hi: number): number {
    const out = ((lo & 0xfffff000) >>> 0) + (hi & 0xffff) * TWO_32;
    for (const f of this.frames) if (this.toOutput(f) === out) return f;
    throw new Error(`table at output address 0x${out.toString(16)} not built by this HandTables`);
  }

  /**
   * Writes a leaf for `va` at `level` (3: page, 2/1: block): `pa` | `attrsLo` (low-word bits: type,
   * AF, AP, SH, nG ...) and `attrsHi` (high-word bits above the address: XN, DBM ...).
   */
  map(va: number, pa: number, level: number, attrsLo: number, attrsHi = 0): number {
    const d = this.descPa(va, level);
    this.mem.write32(d, (((pa >>> 0) & 0xfffff000) | attrsLo) >>> 0);
    this.mem.write32(d + 4, ((Math.floor(pa / TWO_32) & 0xffff) | attrsHi) >>> 0);
    return d;
  }

  /** Clears the leaf for `va` at `level` (an "unmap" without invalidation). */
  unmap(va: number, level = 3): void {
    const d = this.descPa(va, level);
    this.mem.write32(d, 0);
    this.mem.write32(d + 4, 0);
  }

  /** Raw descriptor words (lo, hi) at `level` for `va`. */
  read(va: number, level = 3): [number, number] {
    const d = this.descPa(va, level);
    return [this.mem.read32(d), this.mem.read32(d + 4)];
  }

  /** Writes raw words at the descriptor slot for `va` at `level`. */
  writeRaw(va: number, level: number, lo: number, hi: number): number {
    const d = this.descPa(va, level);
    this.mem.write32(d, lo >>> 0);
    this.mem.write32(d + 4, hi >>> 0);
    return d;
  }
}

/** Stage-1 page descriptor bits (smmuv3.md §7.3/§7.5): page | AF | SH=ISH | AttrIndx 1. */
export const S1_PAGE = 0x3 | 0x400 | 0x300 | 0x4;
/** Stage-1 block descriptor bits. */
export const S1_BLOCK = 0x1 | 0x400 | 0x300 | 0x4;
/** Stage-1 AP[1]: unprivileged access allowed. */
export const S1_AP_EL0 = 0x40;
/** Stage-1 AP[2]: read-only. */
export const S1_AP_RO = 0x80;
/** Stage-1 nG: not global (ASID-tagged). */
export const S1_NG = 0x800;
/** Stage-2 page descriptor bits: page | AF | SH=ISH | MemAttr 0xF | S2AP R+W. */
export const S2_PAGE_RW = 0x3 | 0x400 | 0x300 | 0x3c | 0xc0;
/** Stage-2 block descriptor bits (R+W). */
export const S2_BLOCK_RW = 0x1 | 0x400 | 0x300 | 0x3c | 0xc0;

/** The rig. */
export class SpecRig {
  readonly mem: PhysMem;
  readonly regs = RegisterFile.create(SMMU_REG_BYTES);
  readonly hw: SmmuV3Hardware;
  readonly strtab: number;
  readonly strtabLog2: number;
  readonly split: number;
  readonly twoLevel: boolean;
  readonly cmdq: number;
  readonly cmdqLog2: number;
  readonly evtq: number;
  readonly evtqLog2: number;
  readonly priq: number;
  readonly priqLog2: number;
  /** Software's CMDQ_PROD shadow. */
  prod = 0;
  private readonly req = dmaRequest();
  private readonly res = dmaResult();
  private readonly l2 = new Map<number, number>();

  constructor(readonly o: SpecRigOptions = {}) {
    this.mem = PhysMem.create(o.memBytes ?? 64 * 1024 * 1024);
    this.hw = new SmmuV3Hardware({ instanceId: 'spec-rig', mem: this.mem, regs: this.regs, options: o.options ?? {} });
    this.twoLevel = o.strtab === '2level';
    this.strtabLog2 = o.strtabLog2 ?? (this.twoLevel ? 16 : 8);
    this.split = o.split ?? 8;
    this.cmdqLog2 = o.cmdqLog2 ?? 8;
    this.evtqLog2 = o.evtqLog2 ?? 8;
    this.priqLog2 = o.priqLog2 ?? 8;
    const stBytes = this.twoLevel ? 8 * 2 ** Math.max(0, this.strtabLog2 - this.split) : 64 * 2 ** this.strtabLog2;
    this.strtab = this.alloc(stBytes);
    this.cmdq = this.alloc(16 * 2 ** this.cmdqLog2);
    this.evtq = this.alloc(32 * 2 ** this.evtqLog2);
    this.priq = this.alloc(16 * 2 ** this.priqLog2);
    this.bringUp();
  }

  /** Allocates `bytes` of zeroed, naturally aligned memory (at least one frame). */
  alloc(bytes: number): number {
    const frames = Math.max(1, Math.ceil(bytes / 4096));
    let align = 1;
    while (align < frames) align *= 2;
    return this.mem.allocFrames(frames, align);
  }

  // ------------------------------------------------------------------ registers

  /** Software 32-bit register write, then the doorbell (service). */
  w32(off: number, v: number): void {
    this.regs.write32(off, v);
    this.hw.service();
  }

  /** Software 64-bit register write, then the doorbell (service). */
  w64(off: number, v: number): void {
    this.regs.write64(off, v);
    this.hw.service();
  }

  r32(off: number): number {
    return this.regs.read32(off);
  }

  /** CR0 write, then checks CR0ACK (§1.3 protocol). */
  cr0(v: number): void {
    this.w32(SMMU_CR0, v);
    const ack = this.r32(SMMU_CR0ACK);
    if (ack !== v) throw new Error(`CR0ACK 0x${ack.toString(16)} != CR0 0x${v.toString(16)}`);
  }

  /** GBPA update protocol (§1.3): write value | UPDATE, wait for UPDATE = 0. */
  gbpa(v: number): void {
    this.w32(SMMU_GBPA, (v | GBPA_UPDATE) >>> 0);
    if ((this.r32(SMMU_GBPA) & GBPA_UPDATE) !== 0) throw new Error('GBPA.UPDATE did not clear');
  }

  /** The Linux probe / reset sequence (smmuv3.md §1.6). */
  private bringUp(): void {
    const o = this.o;
    this.cr0(0);
    this.w32(SMMU_CR1, CR1_LINUX);
    this.w32(SMMU_CR2, o.cr2 ?? CR2_PTM | CR2_RECINVSID);
    this.w64(SMMU_STRTAB_BASE, this.strtab);
    this.w32(
      SMMU_STRTAB_BASE_CFG,
      this.twoLevel
        ? this.strtabLog2 | (this.split << STRTAB_BASE_CFG_SPLIT_SHIFT) | (STRTAB_FMT_2LVL << STRTAB_BASE_CFG_FMT_SHIFT)
        : this.strtabLog2,
    );
    this.w64(SMMU_CMDQ_BASE, this.cmdq + this.cmdqLog2);
    this.w32(SMMU_CMDQ_PROD, 0);
    this.w32(SMMU_CMDQ_CONS, 0);
    this.cr0(CR0_CMDQEN);
    this.cmd({ OPCODE: CmdOp.CFGI_STE_RANGE, RANGE: CFGI_RANGE_ALL });
    this.sync();
    this.cmd({ OPCODE: CmdOp.TLBI_NSNH_ALL });
    this.sync();
    this.w64(SMMU_EVTQ_BASE, this.evtq + this.evtqLog2);
    this.w32(SMMU_EVTQ_PROD, 0);
    this.w32(SMMU_EVTQ_CONS, 0);
    let cr0 = CR0_CMDQEN | CR0_EVTQEN;
    this.cr0(cr0);
    if (o.priq !== false) {
      this.w64(SMMU_PRIQ_BASE, this.priq + this.priqLog2);
      this.w32(SMMU_PRIQ_PROD, 0);
      this.w32(SMMU_PRIQ_CONS, 0);
      cr0 |= CR0_PRIQEN;
      this.cr0(cr0);
    }
    cr0 |= o.cr0Extra ?? 0;
    this.w32(SMMU_IRQ_CTRL, 0);
    this.w32(SMMU_IRQ_CTRL, IRQ_CTRL_EVTQ_IRQEN | IRQ_CTRL_GERROR_IRQEN | IRQ_CTRL_PRIQ_IRQEN);
    if (o.enable !== false) cr0 |= CR0_SMMUEN;
    this.cr0(cr0);
  }

  // ------------------------------------------------------------------ structures

  /** PA of the STE of `sid` (allocating an L2 table, Span = SPLIT + 1, for 2-level tables). */
  steAddr(sid: number): number {
    if (!this.twoLevel) return this.strtab + sid * 64;
    const l1 = Math.floor(sid / 2 ** this.split);
    let l2 = this.l2.get(l1);
    if (l2 === undefined) {
      l2 = this.alloc(64 * 2 ** this.split);
      this.l2.set(l1, l2);
      this.writeL1Std(l1, l2, this.split + 1);
    }
    return l2 + (sid % 2 ** this.split) * 64;
  }

  /** Writes the L1STD at index `l1` (§2.4). */
  writeL1Std(l1: number, l2ptr: number, span: number): void {
    this.writeWords(this.strtab + l1 * 8, packFields(L1Std, { SPAN: span, L2PTR: Math.floor(l2ptr / 64) }, 1));
  }

  /** Writes words at `pa`. */
  writeWords(pa: number, w: Uint32Array): void {
    for (let i = 0; i < w.length; i++) this.mem.write32(pa + 4 * i, w[i]);
  }

  /** Writes the STE of `sid` (fields by spec name; address fields as their [hi:lo] value, see `ste()`). */
  writeSte(sid: number, f: FieldValues<typeof Ste>): number {
    const a = this.steAddr(sid);
    this.writeWords(a, packFields(Ste, f, 8));
    return a;
  }

  /** Writes a CD at `pa`. */
  writeCd(pa: number, f: FieldValues<typeof Cd>): void {
    this.writeWords(pa, packFields(Cd, f, 8));
  }

  /** Writes an L1CD at `pa` (V + L2Ptr). */
  writeL1Cd(pa: number, l2ptr: number, valid = true): void {
    this.writeWords(pa, packFields(L1Cd, { V: valid ? 1 : 0, L2PTR: Math.floor(l2ptr / 4096) }, 1));
  }

  // ------------------------------------------------------------------ commands

  /** Writes one command (fields by CmdField name) at PROD and advances PROD (no doorbell). */
  put(f: FieldValues<typeof CmdField>): void {
    const w = packFields(CmdField, f, 2);
    this.putWords(w);
  }

  /** Writes one raw command (4 words) at PROD and advances PROD (no doorbell). */
  putWords(w: ArrayLike<number>): void {
    const n = 2 ** this.cmdqLog2;
    const idx = this.prod & (n - 1);
    for (let i = 0; i < 4; i++) this.mem.write32(this.cmdq + idx * 16 + 4 * i, w[i] >>> 0);
    this.prod = (this.prod + 1) & (2 * n - 1);
  }

  /** Publishes PROD (the doorbell). */
  kick(): void {
    this.w32(SMMU_CMDQ_PROD, this.prod);
  }

  /** Issues one command (put + kick). */
  cmd(f: FieldValues<typeof CmdField>): void {
    this.put(f);
    this.kick();
  }

  /** CMD_SYNC (CS = SEV) and checks that CONS passed it. */
  sync(): void {
    this.cmd({ OPCODE: CmdOp.SYNC, CS: SyncCs.SEV, MSH: 3, MSIATTR: 0xf });
    const cons = this.r32(SMMU_CMDQ_CONS);
    if ((cons & (2 * 2 ** this.cmdqLog2 - 1)) !== this.prod) {
      throw new Error(`CMD_SYNC not consumed: CONS 0x${cons.toString(16)} PROD 0x${this.prod.toString(16)}`);
    }
  }

  /** CFGI_STE(sid, Leaf) + SYNC. */
  cfgiSte(sid: number): void {
    this.cmd({ OPCODE: CmdOp.CFGI_STE, SID: sid, LEAF: 1 });
    this.sync();
  }

  /** CFGI_CD(sid, ssid, Leaf) + SYNC. */
  cfgiCd(sid: number, ssid: number): void {
    this.cmd({ OPCODE: CmdOp.CFGI_CD, SID: sid, SSID: ssid, LEAF: 1 });
    this.sync();
  }

  // ------------------------------------------------------------------ device port

  /** One translation (copied result). */
  dma(sid: number, iova: number, access = ACCESS_READ, o: { pasid?: number; priv?: boolean } = {}): DmaResult {
    const q = this.req;
    q.rid = sid;
    q.iova = iova;
    q.access = access;
    q.pasid = o.pasid ?? NO_PASID;
    q.privileged = o.priv ?? false;
    this.hw.translate(q, this.res);
    return { ...this.res };
  }

  // ------------------------------------------------------------------ queues

  /** Pops every pending event record (EVTQ_PROD/CONS, §5.3), acknowledging overflow. */
  events(): EventView[] {
    const n = 2 ** this.evtqLog2;
    const mask = 2 * n - 1;
    const out: EventView[] = [];
    const prod = this.r32(SMMU_EVTQ_PROD);
    let cons = this.r32(SMMU_EVTQ_CONS) & mask;
    while ((cons & mask) !== (prod & mask)) {
      const pa = this.evtq + (cons & (n - 1)) * 32;
      const w = new Uint32Array(8);
      for (let i = 0; i < 8; i++) w[i] = this.mem.read32(pa + 4 * i);
      out.push(SpecRig.decodeEvent(w));
      cons = (cons + 1) & mask;
    }
    this.w32(SMMU_EVTQ_CONS, (cons | (prod & Q_OVF)) >>> 0);
    return out;
  }

  /** Decodes one event record. */
  static decodeEvent(w: Uint32Array): EventView {
    return {
      id: getField(w, 0, Evt.ID),
      sid: getField(w, 0, Evt.SID),
      ssv: getField(w, 0, Evt.SSV),
      ssid: getField(w, 0, Evt.SSID),
      stag: getField(w, 0, Evt.STAG),
      stall: getField(w, 0, Evt.STALL),
      pnu: getField(w, 0, Evt.PNU),
      ind: getField(w, 0, Evt.IND),
      rnw: getField(w, 0, Evt.RNW),
      s2: getField(w, 0, Evt.S2),
      cls: getField(w, 0, Evt.CLASS),
      ttrnw: getField(w, 0, Evt.TTRNW),
      inputAddr: getField(w, 0, Evt.INPUT_ADDR_LO) + getField(w, 0, Evt.INPUT_ADDR_HI) * TWO_32,
      ipa: getAddr(w, 0, Evt.IPA),
      fetchAddr: getAddr(w, 0, Evt.FETCH_ADDR),
      words: Array.from(w),
    };
  }

  /** Pops every pending PRI record (PRIQ_PROD/CONS, §6). */
  priRecords(): PriView[] {
    const n = 2 ** this.priqLog2;
    const mask = 2 * n - 1;
    const out: PriView[] = [];
    const prod = this.r32(SMMU_PRIQ_PROD);
    let cons = this.r32(SMMU_PRIQ_CONS) & mask;
    while ((cons & mask) !== (prod & mask)) {
      const pa = this.priq + (cons & (n - 1)) * 16;
      const w = new Uint32Array(4);
      for (let i = 0; i < 4; i++) w[i] = this.mem.read32(pa + 4 * i);
      out.push({
        sid: getField(w, 0, Priq.SID),
        ssid: getField(w, 0, Priq.SSID),
        pv: getField(w, 0, Priq.PV),
        priv: getField(w, 0, Priq.PRIV),
        exec: getField(w, 0, Priq.EXEC),
        read: getField(w, 0, Priq.READ),
        write: getField(w, 0, Priq.WRITE),
        last: getField(w, 0, Priq.LAST),
        prgi: getField(w, 0, Priq.PRGI),
        addr: getAddr(w, 0, Priq.ADDR),
        words: Array.from(w),
      });
      cons = (cons + 1) & mask;
    }
    this.w32(SMMU_PRIQ_CONS, (cons | (prod & Q_OVF)) >>> 0);
    return out;
  }
}

// ---------------------------------------------------------------------------- config builders

/**
 * A Linux-style stage-1 CD (smmuv3.md §3.3): 48-bit input, 4 KiB granule, WBWA ISH walks, EPD1,
 * IPS 48 bits, AA64, R, A, ASET, the given ASID and TTB0; `extra` overrides any field.
 */
export function linuxCd(ttb0: number, asid: number, extra: FieldValues<typeof Cd> = {}): FieldValues<typeof Cd> {
  return { V: 1, T0SZ: 16, TG0: 0, IR0: 1, OR0: 1, SH0: 3, EPD1: 1, IPS: 5, AA64: 1, R: 1, A: 1, ASET: 1, ASID: asid, TTB0: ttb0 / 16, ...extra };
}

/**
 * A Linux-style stage-1 STE (§2.3): Config S1, CD table at `cdPtr`, S1DSS = SSID0, WB ISH CD
 * fetches; `extra` overrides any field.
 */
export function linuxS1Ste(cdPtr: number, extra: FieldValues<typeof Ste> = {}): FieldValues<typeof Ste> {
  return { V: 1, CONFIG: 5, S1_CONTEXT_PTR: cdPtr / 64, S1DSS: 2, S1CIR: 1, S1COR: 1, S1CSH: 3, ...extra };
}

/**
 * A Linux-style stage-2 STE (§2.3): Config S2, VMID, IAS 40 with 4 KiB granule (S2T0SZ 24,
 * S2SL0 1: level 1, two concatenated tables), S2PS 48 bits, AA64, S2R, table at `ttb`.
 */
export function linuxS2Ste(vmid: number, ttb: number, extra: FieldValues<typeof Ste> = {}): FieldValues<typeof Ste> {
  return {
    V: 1,
    CONFIG: 6,
    S2VMID: vmid,
    S2T0SZ: 24,
    S2SL0: 1,
    S2IR0: 1,
    S2OR0: 1,
    S2SH0: 3,
    S2TG: 0,
    S2PS: 5,
    S2AA64: 1,
    S2R: 1,
    S2TTB: ttb / 16,
    ...extra,
  };
}

/** Stage-2 tables for {@link linuxS2Ste}: level 1 start, two concatenated tables. */
export function s2Tables(mem: PhysMem): HandTables {
  return new HandTables(mem, 1, 2);
}
