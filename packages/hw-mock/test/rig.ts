/**
 * Test rig: a MockHardware driven in-thread exactly as a driver would drive it (registers,
 * tables and commands in PhysMem), without the MockDriver.
 */
import { ACCESS_READ, NO_PASID, PhysMem, RegisterFile, dmaRequest, dmaResult, type DmaResult } from '@iommulab/runtime';
import {
  decodeFaultRecord,
  encodeDte,
  encodePasidDirEntry,
  encodePasidEntry,
  writeCmdSync,
  type Dte,
  type FaultRecord,
} from '../src/codec.js';
import { MockHardware, type MockHardwareOptions } from '../src/hardware.js';
import {
  CTRL_CMDQ_EN,
  CTRL_EN,
  CTRL_FAULTQ_EN,
  REG_CMDQ_BASE,
  REG_CMDQ_CONS,
  REG_CMDQ_PROD,
  REG_CTRL,
  REG_DT_BASE,
  REG_DT_LOG2,
  REG_FAULTQ_BASE,
  REG_FAULTQ_CONS,
  REG_FAULTQ_PROD,
} from '../src/regs.js';
import { MockPageTable } from '../src/page-table.js';

export interface RigOptions {
  hw?: MockHardwareOptions;
  dtLog2?: number;
  cmdqLog2?: number;
  faultqLog2?: number;
}

export class Rig {
  readonly mem = PhysMem.create(16 * 1024 * 1024);
  readonly regs = RegisterFile.create(4096);
  readonly hw: MockHardware;
  readonly dt: number;
  readonly dtLog2: number;
  readonly cmdq: number;
  readonly cmdqLog2: number;
  readonly faultq: number;
  readonly faultqLog2: number;
  readonly syncWord: number;
  prod = 0;
  fcons = 0;
  private readonly req = dmaRequest();
  private readonly res = dmaResult();

  constructor(o: RigOptions = {}) {
    this.hw = new MockHardware({ instanceId: 'rig', mem: this.mem, regs: this.regs, options: { ...o.hw } });
    this.regs.onWrite(() => this.hw.service());
    this.dtLog2 = o.dtLog2 ?? 8;
    this.cmdqLog2 = o.cmdqLog2 ?? 8;
    this.faultqLog2 = o.faultqLog2 ?? 8;
    this.dt = this.mem.allocFrames(Math.max(1, (32 << this.dtLog2) / 4096));
    this.cmdq = this.mem.allocFrames(Math.max(1, (16 << this.cmdqLog2) / 4096));
    this.faultq = this.mem.allocFrames(Math.max(1, (32 << this.faultqLog2) / 4096));
    this.syncWord = this.mem.allocFrame();
    this.regs.write64(REG_DT_BASE, this.dt);
    this.regs.write32(REG_DT_LOG2, this.dtLog2);
    this.regs.write64(REG_CMDQ_BASE, this.cmdq | this.cmdqLog2);
    this.regs.write64(REG_FAULTQ_BASE, this.faultq | this.faultqLog2);
    this.regs.write32(REG_CTRL, CTRL_EN | CTRL_CMDQ_EN | CTRL_FAULTQ_EN);
  }

  setDte(rid: number, d: Partial<Dte>): void {
    const w = encodeDte({ valid: true, pasidEnable: false, dirtyEnable: false, priEnable: false, domainId: 0, root: 0, pasidDir: 0, ...d });
    for (let k = 0; k < 8; k++) this.mem.write32(this.dt + rid * 32 + k * 4, w[k]!);
  }

  /** Builds a PASID directory (if needed) and writes the PASID entry. Returns the directory PA. */
  setPasid(dir: number, pasid: number, e: { valid?: boolean; dirtyEnable?: boolean; domainId: number; root: number }): void {
    const de = dir + (pasid >>> 8) * 8;
    let leaf = this.mem.read32(de) & 0xffff_f000;
    if ((this.mem.read32(de) & 1) === 0) {
      leaf = this.mem.allocFrame();
      const w = encodePasidDirEntry({ valid: true, leaf });
      this.mem.write64Parts(de, w[0]!, w[1]!);
    }
    const w = encodePasidEntry({ valid: e.valid ?? true, dirtyEnable: e.dirtyEnable ?? false, domainId: e.domainId, root: e.root });
    for (let k = 0; k < 4; k++) this.mem.write32(leaf + (pasid & 0xff) * 16 + k * 4, w[k]!);
  }

  newTable(huge = true): MockPageTable {
    return MockPageTable.create(this.mem, { huge });
  }

  /** Writes raw commands at PROD and publishes them with one PROD write. */
  cmd(...cmds: number[][]): void {
    const mask = (1 << this.cmdqLog2) - 1;
    for (const c of cmds) {
      const at = this.cmdq + (this.prod & mask) * 16;
      for (let k = 0; k < 4; k++) this.mem.write32(at + k * 4, (c[k] ?? 0) >>> 0);
      this.prod = (this.prod + 1) & ((2 << this.cmdqLog2) - 1);
    }
    this.regs.write32(REG_CMDQ_PROD, this.prod);
  }

  /** Pushes a CMD_SYNC writing `value` to the sync word; returns the word read back. */
  sync(value = 1): number {
    const w = new Uint32Array(4);
    writeCmdSync(w, 0, value, this.syncWord);
    this.mem.write32(this.syncWord, 0);
    this.cmd(Array.from(w));
    return this.mem.read32(this.syncWord);
  }

  get cons(): number {
    return this.regs.read32(REG_CMDQ_CONS);
  }

  translate(rid: number, iova: number, access = ACCESS_READ, pasid = NO_PASID, privileged = false): DmaResult {
    const r = this.req;
    r.rid = rid;
    r.iova = iova;
    r.access = access;
    r.pasid = pasid;
    r.privileged = privileged;
    return { ...this.hw.translate(r, this.res) };
  }

  /** Drains the fault queue like a driver (one CONS write), keeping OVACKFLG. */
  drainFaults(): FaultRecord[] {
    const out: FaultRecord[] = [];
    const log2 = this.faultqLog2;
    const prod = this.regs.read32(REG_FAULTQ_PROD);
    let cons = this.fcons;
    while (((prod ^ cons) & ((2 << log2) - 1)) !== 0) {
      const at = this.faultq + (cons & ((1 << log2) - 1)) * 32;
      const w: number[] = [];
      for (let k = 0; k < 8; k++) w.push(this.mem.read32(at + k * 4));
      out.push(decodeFaultRecord(w));
      cons = (cons + 1) & ((2 << log2) - 1);
    }
    this.fcons = (cons | (this.fcons & 0x8000_0000)) >>> 0;
    this.regs.write32(REG_FAULTQ_CONS, this.fcons);
    return out;
  }

  /** Acknowledges a fault-queue overflow: OVACKFLG := OVFLG. */
  ackOverflow(): void {
    const ov = this.regs.read32(REG_FAULTQ_PROD) & 0x8000_0000;
    this.fcons = ((this.fcons & 0x7fff_ffff) | ov) >>> 0;
    this.regs.write32(REG_FAULTQ_CONS, this.fcons);
  }
}
