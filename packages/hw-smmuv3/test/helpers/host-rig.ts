/**
 * Software side of an SMMUv3 model hosted by the runtime's InstanceHost (in-thread or in a worker):
 * the §1.6 bring-up through the shared register file, commands in the CMDQ with CONS polling for
 * CMD_SYNC, STEs / CDs packed with the codec, event records read from the EVTQ. Asynchronous,
 * because the model may run on another thread.
 */
import { InstanceHost, PhysMem, waitUntil } from '@iommulab/runtime';
import {
  CFGI_RANGE_ALL,
  CR0_CMDQEN,
  CR0_EVTQEN,
  CR0_SMMUEN,
  CR2_PTM,
  CR2_RECINVSID,
  Cd,
  CmdField,
  CmdOp,
  SMMU_CMDQ_BASE,
  SMMU_CMDQ_CONS,
  SMMU_CMDQ_PROD,
  SMMU_CR0,
  SMMU_CR0ACK,
  SMMU_CR2,
  SMMU_EVTQ_BASE,
  SMMU_EVTQ_CONS,
  SMMU_EVTQ_PROD,
  SMMU_STRTAB_BASE,
  SMMU_STRTAB_BASE_CFG,
  Ste,
  SyncCs,
  packFields,
  type FieldValues,
} from '../../src/codec/index.js';

/** The model-only backend module (model-backend.ts). */
export const MODEL_BACKEND = new URL('./model-backend.ts', import.meta.url).href;
/** log2 entries of each queue. */
const Q = 8;

/** Software side of an SMMU hosted by an InstanceHost (asynchronous: the model may be in a worker). */
export class HostRig {
  prod = 0;
  evCons = 0;
  strtab = 0;
  cmdq = 0;
  evtq = 0;
  private constructor(
    readonly host: InstanceHost,
    readonly mem: PhysMem,
  ) {}

  /** Starts the model (`memBytes` of PhysMem, default 32 MiB) and brings it up. */
  static async open(mode: 'in-thread' | 'worker', memBytes = 32 * 1024 * 1024, options: Record<string, unknown> = {}): Promise<HostRig> {
    const mem = PhysMem.create(memBytes);
    const host = await InstanceHost.start({ id: `smmuv3-${mode}`, backend: MODEL_BACKEND, mode, mem, options });
    const r = new HostRig(host, mem);
    await r.bringUp();
    return r;
  }

  until(pred: () => boolean, what: string): Promise<void> {
    return waitUntil(pred, { timeoutMs: 10_000, what });
  }

  async cr0(v: number): Promise<void> {
    this.host.regs.write32(SMMU_CR0, v);
    await this.until(() => this.host.regs.read32(SMMU_CR0ACK) === v, `CR0ACK = ${v}`);
  }

  private async bringUp(): Promise<void> {
    const regs = this.host.regs;
    this.strtab = this.mem.allocFrames(4, 4); // 256 STEs, aligned to the table size (IHI 0070 §6.3.24)
    this.cmdq = this.mem.allocFrame();
    this.evtq = this.mem.allocFrames(2, 2); // 2^Q × 32 B = 8 KiB, aligned to its size (IHI 0070 §6.3.29)
    await this.cr0(0);
    regs.write32(SMMU_CR2, CR2_PTM | CR2_RECINVSID);
    regs.write64(SMMU_STRTAB_BASE, this.strtab);
    regs.write32(SMMU_STRTAB_BASE_CFG, 8);
    regs.write64(SMMU_CMDQ_BASE, this.cmdq | Q);
    regs.write32(SMMU_CMDQ_PROD, 0);
    regs.write32(SMMU_CMDQ_CONS, 0);
    await this.cr0(CR0_CMDQEN);
    this.put({ OPCODE: CmdOp.CFGI_STE_RANGE, RANGE: CFGI_RANGE_ALL });
    this.put({ OPCODE: CmdOp.TLBI_NSNH_ALL });
    await this.sync();
    regs.write64(SMMU_EVTQ_BASE, this.evtq | Q);
    regs.write32(SMMU_EVTQ_PROD, 0);
    regs.write32(SMMU_EVTQ_CONS, 0);
    await this.cr0(CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
  }

  put(f: FieldValues<typeof CmdField>): void {
    const w = packFields(CmdField, f, 2);
    const at = this.cmdq + (this.prod & ((1 << Q) - 1)) * 16;
    for (let i = 0; i < 4; i++) this.mem.write32(at + 4 * i, w[i]);
    this.prod = (this.prod + 1) & ((2 << Q) - 1);
  }

  /** CMD_SYNC, doorbell, wait for CONS to pass it (§4.5 CONS polling). */
  async sync(): Promise<void> {
    this.put({ OPCODE: CmdOp.SYNC, CS: SyncCs.SEV });
    this.host.regs.write32(SMMU_CMDQ_PROD, this.prod);
    await this.until(() => (this.host.regs.read32(SMMU_CMDQ_CONS) & ((2 << Q) - 1)) === this.prod, 'CMD_SYNC');
  }

  writeSte(sid: number, f: FieldValues<typeof Ste>): void {
    const w = packFields(Ste, f, 8);
    for (let i = 0; i < 16; i++) this.mem.write32(this.strtab + sid * 64 + 4 * i, w[i]);
  }

  writeCd(pa: number, f: FieldValues<typeof Cd>): void {
    const w = packFields(Cd, f, 8);
    for (let i = 0; i < 16; i++) this.mem.write32(pa + 4 * i, w[i]);
  }

  /** Event ids and SIDs recorded since the last call. */
  events(): [number, number, number][] {
    const out: [number, number, number][] = [];
    const prod = this.host.regs.read32(SMMU_EVTQ_PROD) & ((2 << Q) - 1);
    while (this.evCons !== prod) {
      const pa = this.evtq + (this.evCons & ((1 << Q) - 1)) * 32;
      out.push([this.mem.read32(pa) & 0xff, this.mem.read32(pa + 4), this.mem.read32(pa + 8 + 8)]);
      this.evCons = (this.evCons + 1) & ((2 << Q) - 1);
    }
    this.host.regs.write32(SMMU_EVTQ_CONS, this.evCons);
    return out;
  }
}
