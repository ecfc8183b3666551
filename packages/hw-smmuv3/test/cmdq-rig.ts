/**
 * Rig for the registers / queue tests: an SmmuControl over a PhysMem and a RegisterFile, driven
 * as software drives the SMMU (register writes through the software side of the RegisterFile,
 * structures in PhysMem). Every software register write runs `service()` (like InstanceHost's
 * in-thread mode); a fake CommandTarget records the commands it receives.
 */
import { PhysMem, RegisterFile } from '@iommulab/runtime';
import {
  CERROR_NONE,
  CR0_CMDQEN,
  CR0_EVTQEN,
  CR0_PRIQEN,
  CmdField,
  SMMU_CMDQ_BASE,
  SMMU_CMDQ_CONS,
  SMMU_CMDQ_PROD,
  SMMU_CR0,
  SMMU_CR0ACK,
  SMMU_EVTQ_BASE,
  SMMU_EVTQ_CONS,
  SMMU_EVTQ_PROD,
  SMMU_PRIQ_BASE,
  SMMU_PRIQ_CONS,
  SMMU_PRIQ_PROD,
  SMMU_REG_BYTES,
  packFields,
  setAddr,
} from '../src/codec/index.js';
import { SmmuControl, resolveFeatures, type CmdqEntry, type CommandTarget, type SmmuFeatures } from '../src/model/queues-index.js';

/** A copy of the decoded fields of one executed command. */
export type Executed = Pick<
  CmdqEntry,
  | 'op'
  | 'index'
  | 'ssv'
  | 'ssid'
  | 'sid'
  | 'vmid'
  | 'asid'
  | 'leaf'
  | 'ttl'
  | 'tg'
  | 'num'
  | 'scale'
  | 'range'
  | 'addr'
  | 'addrLo'
  | 'addrHi'
  | 'ipa'
  | 'atcSize'
  | 'global'
  | 'prgi'
  | 'resp'
  | 'action'
  | 'stag'
  | 'pfSize'
  | 'pfStride'
>;

/** A CommandTarget that records what it executes and returns programmable codes. */
export class FakeTarget implements CommandTarget {
  readonly calls: Executed[] = [];
  /** Order of events: 'cmd:<op>' and 'sync'. */
  readonly log: string[] = [];
  /** Return code of execute() for a given opcode. */
  readonly fail = new Map<number, number>();
  /** Return code of syncPending(). */
  pending = CERROR_NONE;

  execute(e: CmdqEntry): number {
    this.calls.push({
      op: e.op,
      index: e.index,
      ssv: e.ssv,
      ssid: e.ssid,
      sid: e.sid,
      vmid: e.vmid,
      asid: e.asid,
      leaf: e.leaf,
      ttl: e.ttl,
      tg: e.tg,
      num: e.num,
      scale: e.scale,
      range: e.range,
      addr: e.addr,
      addrLo: e.addrLo,
      addrHi: e.addrHi,
      ipa: e.ipa,
      atcSize: e.atcSize,
      global: e.global,
      prgi: e.prgi,
      resp: e.resp,
      action: e.action,
      stag: e.stag,
      pfSize: e.pfSize,
      pfStride: e.pfStride,
    });
    this.log.push(`cmd:${e.op}`);
    return this.fail.get(e.op) ?? CERROR_NONE;
  }

  syncPending(): number {
    this.log.push('sync');
    return this.pending;
  }
}

/** Options of {@link Rig}. */
export interface RigOptions {
  /** Backend options (features). */
  features?: Record<string, unknown>;
  /** PhysMem size (default 8 MiB). */
  memBytes?: number;
  /** Do not service on every write (tests call `rig.ctl.service()` themselves). */
  manual?: boolean;
}

/** Command fields accepted by {@link Rig.cmd}; `ADDR`/`IPA`/`MSIADDR` are addresses (in place). */
export type CmdValues = { -readonly [K in keyof typeof CmdField]?: number };

/** Packs a command (two dwords) from field values; address fields take the address. */
export function packCmd(v: CmdValues): Uint32Array {
  const plain: CmdValues = { ...v };
  delete plain.ADDR;
  delete plain.IPA;
  delete plain.MSIADDR;
  const w = packFields(CmdField, plain, 2);
  if (v.ADDR !== undefined) setAddr(w, 0, CmdField.ADDR, v.ADDR);
  if (v.IPA !== undefined) setAddr(w, 0, CmdField.IPA, v.IPA);
  if (v.MSIADDR !== undefined) setAddr(w, 0, CmdField.MSIADDR, v.MSIADDR);
  return w;
}

/** The rig. */
export class Rig {
  readonly mem: PhysMem;
  readonly regs = RegisterFile.create(SMMU_REG_BYTES);
  readonly target = new FakeTarget();
  readonly features: SmmuFeatures;
  readonly ctl: SmmuControl;
  /** Software's CMDQ producer index (idx | wrap), written to CMDQ_PROD by {@link Rig.publish}. */
  prod = 0;
  cmdqBase = 0;
  cmdqLog2 = 0;
  evtqBase = 0;
  evtqLog2 = 0;
  priqBase = 0;
  priqLog2 = 0;

  constructor(o: RigOptions = {}) {
    this.mem = PhysMem.create(o.memBytes ?? 8 * 1024 * 1024);
    this.features = resolveFeatures(o.features ?? {});
    this.ctl = new SmmuControl(this.mem, this.regs, this.features, { target: this.target });
    if (!o.manual) this.regs.onWrite(() => this.ctl.service());
  }

  /** Sets CR0 bits (read-modify-write of CR0) and checks the ACK. */
  cr0Set(bits: number): void {
    this.regs.write32(SMMU_CR0, this.regs.read32(SMMU_CR0) | bits);
    if (this.regs.read32(SMMU_CR0ACK) !== this.regs.read32(SMMU_CR0)) throw new Error('CR0ACK mismatch');
  }

  /** Clears CR0 bits. */
  cr0Clear(bits: number): void {
    this.regs.write32(SMMU_CR0, this.regs.read32(SMMU_CR0) & ~bits);
  }

  /** Allocates a command queue of 2^log2 entries, programs CMDQ_BASE/PROD/CONS and enables it. */
  setupCmdq(log2 = 8, base?: number): void {
    this.cmdqLog2 = log2;
    this.cmdqBase = base ?? this.mem.allocFrames(Math.max(1, (16 << log2) / 4096), Math.max(1, (16 << log2) / 4096));
    this.regs.write64(SMMU_CMDQ_BASE, this.cmdqBase + log2);
    this.regs.write32(SMMU_CMDQ_PROD, 0);
    this.regs.write32(SMMU_CMDQ_CONS, 0);
    this.prod = 0;
    this.cr0Set(CR0_CMDQEN);
  }

  /** Allocates and enables the event queue (2^log2 entries of 32 bytes). */
  setupEvtq(log2 = 4, base?: number): void {
    this.evtqLog2 = log2;
    this.evtqBase = base ?? this.mem.allocFrames(Math.max(1, (32 << log2) / 4096));
    this.regs.write64(SMMU_EVTQ_BASE, this.evtqBase + log2);
    this.regs.write32(SMMU_EVTQ_PROD, 0);
    this.regs.write32(SMMU_EVTQ_CONS, 0);
    this.cr0Set(CR0_EVTQEN);
  }

  /** Allocates and enables the PRI queue (2^log2 entries of 16 bytes). */
  setupPriq(log2 = 4, base?: number): void {
    this.priqLog2 = log2;
    this.priqBase = base ?? this.mem.allocFrames(Math.max(1, (16 << log2) / 4096));
    this.regs.write64(SMMU_PRIQ_BASE, this.priqBase + log2);
    this.regs.write32(SMMU_PRIQ_PROD, 0);
    this.regs.write32(SMMU_PRIQ_CONS, 0);
    this.cr0Set(CR0_PRIQEN);
  }

  /** PA of command-queue slot `i` (index part only). */
  slot(i: number): number {
    return this.cmdqBase + 16 * (i & ((1 << this.cmdqLog2) - 1));
  }

  /** Writes a command (fields or raw words) at the software PROD and advances it (not published). */
  cmd(v: CmdValues | Uint32Array): number {
    const w = v instanceof Uint32Array ? v : packCmd(v);
    const pa = this.slot(this.prod);
    for (let i = 0; i < 4; i++) this.mem.write32(pa + 4 * i, w[i]);
    const at = this.prod;
    this.prod = (this.prod + 1) & ((2 << this.cmdqLog2) - 1);
    return at;
  }

  /** Writes CMDQ_PROD (the doorbell). */
  publish(): void {
    this.regs.write32(SMMU_CMDQ_PROD, this.prod);
  }

  /** CMDQ_CONS as software reads it. */
  get cons(): number {
    return this.regs.read32(SMMU_CMDQ_CONS);
  }
}
