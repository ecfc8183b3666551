/**
 * Test rig for the host driver: an in-thread SmmuV3Hardware (service() on every register write,
 * as the in-thread InstanceHost does) and a SmmuV3Driver over the same PhysMem / RegisterFile,
 * plus a recorder of register writes and of the commands the driver publishes.
 */
import { ACCESS_READ, NO_PASID, PhysMem, RegisterFile, dmaRequest, dmaResult, type DmaResult } from '@iommulab/runtime';
import { CMDQ_ENT_BYTES, SMMU_CMDQ_BASE, SMMU_CMDQ_PROD, SMMU_REG_BYTES } from '../src/codec/index.js';
import { SmmuV3Driver, createSmmuV3Driver } from '../src/driver/driver.js';
import { SmmuV3Hardware } from '../src/model/smmu.js';

/** One recorded register write. */
export interface RegWrite {
  readonly off: number;
  /** The 32-bit value (64-bit registers: low word). */
  readonly lo: number;
  /** High word for 64-bit writes made through write64 / write64Parts (else undefined). */
  readonly hi?: number;
}

/** A command the driver published (4 words). */
export type RecordedCmd = readonly [number, number, number, number];

export interface RigOptions {
  /** Hardware (feature) options. */
  hw?: Record<string, unknown>;
  /** Driver options. */
  drv?: Record<string, unknown>;
  memBytes?: number;
  timeoutMs?: number;
}

/** Records every software register write (offset + value read back right after). */
export function recordWrites(regs: RegisterFile): { writes: RegWrite[]; stop: () => void } {
  const writes: RegWrite[] = [];
  const is64 = new Set([0x068, 0x080, 0x090, 0x0a0, 0x0b0, 0x0c0, 0x0d0]);
  // Read the value written before the model (listener registered first) changes anything.
  const stop = regs.onWrite((off) => {
    const lo = regs.u32[off >>> 2];
    writes.push(is64.has(off) ? { off, lo, hi: regs.u32[(off >>> 2) + 1] } : { off, lo });
  });
  return { writes, stop };
}

/** Records the commands between the old and new CMDQ_PROD on every PROD write. */
export class CmdRecorder {
  readonly cmds: RecordedCmd[] = [];
  private last = 0;
  constructor(private readonly mem: PhysMem, private readonly regs: RegisterFile) {
    regs.onWrite((off) => {
      if (off !== SMMU_CMDQ_PROD) return;
      const base = regs.u32[SMMU_CMDQ_BASE >>> 2];
      const log2 = base & 0x1f;
      const pa = base & 0xffffffe0;
      const mask = (2 << log2) - 1;
      const prod = regs.u32[off >>> 2] & mask;
      if (prod === 0 && this.last === 0) return;
      let p = this.last;
      while (p !== prod) {
        const w = (pa + (p & ((1 << log2) - 1)) * CMDQ_ENT_BYTES) >>> 2;
        const c = mem.u32;
        this.cmds.push([c[w], c[w + 1], c[w + 2], c[w + 3]]);
        p = (p + 1) & mask;
      }
      this.last = prod;
    });
  }
  /** Takes the recorded commands (and forgets them). */
  take(): RecordedCmd[] {
    return this.cmds.splice(0);
  }
  /** Opcodes of the recorded commands (and forgets them). */
  ops(): number[] {
    return this.take().map((c) => c[0] & 0xff);
  }
}

/** The hardware + driver stack. */
export class DriverRig {
  readonly mem: PhysMem;
  readonly regs: RegisterFile;
  readonly hw: SmmuV3Hardware;
  drv!: SmmuV3Driver;
  readonly rec: CmdRecorder;
  private readonly req = dmaRequest();
  private readonly res = dmaResult();

  private constructor(private readonly o: RigOptions) {
    this.mem = PhysMem.create(o.memBytes ?? 32 * 1024 * 1024);
    this.regs = RegisterFile.create(SMMU_REG_BYTES);
    this.rec = new CmdRecorder(this.mem, this.regs);
    this.hw = new SmmuV3Hardware({ instanceId: 'rig', mem: this.mem, regs: this.regs, options: { ...o.hw } });
    this.regs.onWrite(() => this.hw.service());
  }

  /** Builds the model and probes the driver. */
  static async create(o: RigOptions = {}): Promise<DriverRig> {
    const r = new DriverRig(o);
    r.drv = await createSmmuV3Driver({ instanceId: 'rig', mem: r.mem, regs: r.regs, options: { ...o.drv }, timeoutMs: o.timeoutMs ?? 2000 });
    r.rec.take();
    return r;
  }

  /** One transaction through the device port (a copy of the result). */
  dma(rid: number, iova: number, access = ACCESS_READ, pasid = NO_PASID, privileged = false): DmaResult {
    const q = this.req;
    q.rid = rid;
    q.iova = iova;
    q.access = access;
    q.pasid = pasid;
    q.privileged = privileged;
    return { ...this.hw.translate(q, this.res) };
  }

  /** The 16 words of the STE of `sid` as the model would read them. */
  ste(sid: number): number[] {
    const w = this.drv.strtab.steWord(sid);
    return Array.from(this.mem.u32.subarray(w, w + 16));
  }

  /** Dwords of 16 words as bigints. */
  static dwords(words: ArrayLike<number>): bigint[] {
    const out: bigint[] = [];
    for (let i = 0; i < words.length; i += 2) out.push((BigInt(words[i + 1] >>> 0) << 32n) | BigInt(words[i] >>> 0));
    return out;
  }
}
