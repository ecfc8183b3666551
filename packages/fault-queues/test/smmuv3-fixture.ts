/**
 * Fixture for the end-to-end fault tests over the Arm SMMUv3 backend (`@iommulab/hw-smmuv3`):
 * the backend stack (hardware model + Linux-style driver, in-thread by default so the device side
 * of the model is reachable), an {@link IopfQueue} over its driver, the PRG responses the model
 * delivers to devices routed by requester id to {@link PriFunction}s (the host bridge), a
 * recorder of the CMD_PRI_RESP / CMD_RESUME commands the driver publishes, and a device model
 * (`PriDevice`) that follows PCIe §10.4: an ATS miss becomes a one-page PRG, Success → retry the
 * ATS translation, Invalid Request → give up.
 *
 * core-ioasid is not used: fault objects are {@link FaultQueue}s and attachments are plain
 * handles returned by the per-device lookup, as `find_fault_handler` would see them.
 */
import {
  ACCESS_READ,
  NO_PASID,
  openBackend,
  type BackendStack,
  type DmaResult,
  type InstanceMode,
  type IommuDevice,
  type PageResponse,
  type PageResponseCodeValue,
} from '@iommulab/driver-api';
import type { SmmuV3Driver, SmmuV3Hardware } from '@iommulab/hw-smmuv3';
import { CMDQ_ENT_BYTES, CmdOp, SMMU_CMDQ_BASE, SMMU_CMDQ_PROD } from '@iommulab/hw-smmuv3/codec';
import { IopfQueue, PriFunction, type FaultHandler, type FaultSink } from '../src/index.js';

/** The hw-smmuv3 backend module (source). */
export const HW_SMMUV3 = new URL('../../hw-smmuv3/src/index.ts', import.meta.url).href;

/** A 4 KiB page. */
export const PAGE = 4096;

/** Lets pending promise continuations and the driver's interrupt microtask run. */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((r) => setImmediate(r));
}

/** One command the driver published (4 words). */
export type Cmd = [number, number, number, number];

/**
 * Records the commands between the old and the new CMDQ_PROD on every CMDQ_PROD write (the ring
 * entries stay in PhysMem after the SMMU consumed them). Only PRI_RESP and RESUME are kept by
 * {@link CmdRecorder.faultCmds}.
 */
export class CmdRecorder {
  readonly cmds: Cmd[] = [];
  #last: number;
  readonly #stop: () => void;

  constructor(stack: BackendStack) {
    const { mem, regs } = { mem: stack.mem, regs: stack.host.regs };
    // Start at the driver's current CMDQ_PROD: everything published from now on is recorded.
    this.#last = regs.u32[SMMU_CMDQ_PROD >>> 2] & ((2 << (regs.u32[SMMU_CMDQ_BASE >>> 2] & 0x1f)) - 1);
    this.#stop = regs.onWrite((off) => {
      if (off !== SMMU_CMDQ_PROD) return;
      const base = regs.u32[SMMU_CMDQ_BASE >>> 2];
      const log2 = base & 0x1f;
      const pa = (base & 0xffffffe0) >>> 0;
      const mask = (2 << log2) - 1;
      const prod = regs.u32[off >>> 2] & mask;
      let p = this.#last;
      while (p !== prod) {
        const w = (pa + (p & ((1 << log2) - 1)) * CMDQ_ENT_BYTES) >>> 2;
        const c = mem.u32;
        this.cmds.push([c[w], c[w + 1], c[w + 2], c[w + 3]]);
        p = (p + 1) & mask;
      }
      this.#last = prod;
    });
  }

  /** Takes every recorded command. */
  take(): Cmd[] {
    return this.cmds.splice(0);
  }

  /** Takes the recorded CMD_PRI_RESP and CMD_RESUME commands (forgets every recorded command). */
  faultCmds(): Cmd[] {
    return this.cmds.splice(0).filter((c) => (c[0] & 0xff) === CmdOp.PRI_RESP || (c[0] & 0xff) === CmdOp.RESUME);
  }

  stop(): void {
    this.#stop();
  }
}

/** CMD_PRI_RESP as IHI 0070 §4.5.2 lays it out: Resp 2 Success, 1 InvalidRequest, 0 ResponseFailure. */
export function priRespCmd(sid: number, ssid: number, prgi: number, resp: 0 | 1 | 2): Cmd {
  const ssv = ssid >= 0;
  return [(CmdOp.PRI_RESP | (ssv ? (1 << 11) | (ssid << 12) : 0)) >>> 0, sid, (resp << 12) | prgi, 0];
}

/** CMD_RESUME (IHI 0070 §4.7.1): Action 1 RETRY (Ac), 2 ABORT (Ab). */
export function resumeCmd(sid: number, stag: number, action: 1 | 2): Cmd {
  return [(CmdOp.RESUME | (action << 12)) >>> 0, sid, stag, 0];
}

/** The 40 bytes of one `struct iommu_hwpt_pgfault`, written field by field (little-endian). */
export function pgfaultBytes(f: { flags: number; devId: number; pasid: number; grpid: number; perm: number; addr: number; cookie: number }): Uint8Array {
  const b = new Uint8Array(40);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, f.flags, true);
  dv.setUint32(4, f.devId, true);
  dv.setUint32(8, f.pasid, true);
  dv.setUint32(12, f.grpid, true);
  dv.setUint32(16, f.perm, true);
  dv.setUint32(20, 0, true); // __reserved
  dv.setBigUint64(24, BigInt(f.addr), true);
  dv.setUint32(32, 0, true); // length
  dv.setUint32(36, f.cookie, true);
  return b;
}

/** Concatenates records. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Eight bytes per `{cookie, code}` response. */
export function responses(...rs: [cookie: number, code: number][]): Uint8Array {
  const b = new Uint8Array(rs.length * 8);
  const dv = new DataView(b.buffer);
  rs.forEach(([cookie, code], i) => {
    dv.setUint32(i * 8, cookie, true);
    dv.setUint32(i * 8 + 4, code, true);
  });
  return b;
}

/** An attachment with a fault object (what the lookup returns). */
export function attachment(name: string, sink: FaultSink | null): FaultHandler {
  return { handle: { name }, sink };
}

/** The stack, its hardware and driver, the fault layer and the host bridge. */
export interface SmmuFaultRig {
  readonly stack: BackendStack;
  readonly driver: SmmuV3Driver;
  /** The model (in-thread only). */
  readonly hw: SmmuV3Hardware;
  readonly iopf: IopfQueue;
  readonly cmds: CmdRecorder;
  /** Every PRG response the model delivered, in order (the host bridge's view). */
  readonly delivered: PageResponse[];
  /** Registers the device side of a requester id (its responses are routed to it). */
  addFunction(pri: PriFunction): PriFunction;
  /** A PriFunction for `rid` sending through the device port. */
  priFunction(rid: number, opts?: { responsePasidRequired?: boolean; capacity?: number }): PriFunction;
  /** A fresh 4 KiB frame filled with `fill`'s bytes (the rest zero). */
  frameWith(fill: Uint8Array): number;
  close(): Promise<void>;
}

/** Opens the SMMUv3 stack (in-thread by default) with `options` and an IopfQueue over its driver. */
export async function openSmmuFaultRig(o: { options?: Record<string, unknown>; mode?: InstanceMode; memBytes?: number } = {}): Promise<SmmuFaultRig> {
  const stack = await openBackend(HW_SMMUV3, { mode: o.mode ?? 'in-thread', memBytes: o.memBytes ?? 32 * 1024 * 1024, timeoutMs: 10_000, options: o.options ?? {} });
  const driver = stack.driver as SmmuV3Driver;
  const hw = stack.host.hardware as SmmuV3Hardware;
  const iopf = new IopfQueue(driver);
  const cmds = new CmdRecorder(stack);
  const delivered: PageResponse[] = [];
  const functions = new Map<number, PriFunction>();
  if (hw !== undefined) {
    hw.onPageResponse((r) => {
      delivered.push(r);
      functions.get(r.rid)?.receive(r);
    });
  }
  const rig: SmmuFaultRig = {
    stack,
    driver,
    hw,
    iopf,
    cmds,
    delivered,
    addFunction(pri) {
      functions.set(pri.rid, pri);
      return pri;
    },
    priFunction(rid, opts = {}) {
      return rig.addFunction(new PriFunction({ rid, send: (req) => stack.port.pageRequest(req), timeoutMs: 5_000, ...opts }));
    },
    frameWith(fill) {
      const pa = stack.mem.allocFrame();
      stack.mem.writeBytes(pa, new Uint8Array(PAGE));
      stack.mem.writeBytes(pa, fill);
      return pa;
    },
    async close() {
      iopf.close();
      await iopf.flush();
      cmds.stop();
      hw?.onPageResponse(undefined);
      await stack.close();
    },
  };
  return rig;
}

/** Bytes `0..n-1` offset by `seed` (recognisable page contents). */
export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (seed + i * 7) & 0xff;
  return b;
}

/** What one device access went through. */
export interface AccessOutcome {
  /** The first ATS translation (the miss, or a hit). */
  readonly first: DmaResult;
  /** The PRG response code, when a page request was sent. */
  readonly code?: PageResponseCodeValue;
  /** The retried ATS translation (only after Success). */
  readonly retry?: DmaResult;
  /** ATS translation requests sent. */
  readonly atsRequests: number;
}

/**
 * A PCIe function with ATS and PRI (PCIe §10.4): it translates with ATS; on a miss it sends a
 * one-page PRG and waits for the PRG Response; on Success it retries the ATS translation once, on
 * Invalid Request (or Response Failure) it does not retry.
 * `beforeRequest` runs after the page request was issued (the test drains and answers there).
 */
export class PriDevice {
  constructor(
    readonly stack: BackendStack,
    readonly dev: IommuDevice,
    readonly pri: PriFunction,
  ) {}

  /** Starts an access; resolves with what happened (the test answers the fault meanwhile). */
  async access(iova: number, access = ACCESS_READ, pasid = NO_PASID, perm = 1): Promise<AccessOutcome> {
    const port = this.stack.port;
    const first = { ...(await port.atsTranslate({ rid: this.dev.rid, iova, access, pasid })) };
    if (first.ok) return { first, atsRequests: 1 };
    const code = await this.pri.request([{ addr: iova - (iova % PAGE), perm }], pasid);
    if (code !== 0) return { first, code, atsRequests: 1 };
    const retry = { ...(await port.atsTranslate({ rid: this.dev.rid, iova, access, pasid })) };
    return { first, code, retry, atsRequests: 2 };
  }
}
