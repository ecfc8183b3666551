/**
 * I/O page faults end to end through the iommufd uAPI on the Arm SMMUv3 backend with a PCIe
 * function that has ATS and PRI (vmm-and-faults.md §3.2–§3.4, §4.2, §4.5, §4.6;
 * drivers/iommu/iommufd/eventq.c, drivers/iommu/io-pgfault.c):
 *
 *   IOMMU_FAULT_QUEUE_ALLOC → IOMMU_HWPT_ALLOC(pt_id = IOAS, IOMMU_HWPT_FAULT_ID_VALID) → attach →
 *   the device's ATS Translation Request for an unmapped IOVA fails → it sends a PRG (a
 *   `PriFunction` of @iommulab/fault-queues sending through the device port) → the SMMU writes
 *   PRIQ records → the driver drains the PRIQ (drainFaults) → read(fault fd) gives the exact
 *   40-byte `struct iommu_hwpt_pgfault` records → IOMMU_IOAS_MAP of user memory with known bytes →
 *   write(fault fd) `{cookie, IOMMUFD_PAGE_RESP_SUCCESS}` → the driver issues CMD_PRI_RESP (SID,
 *   SSV / SSID, PRGI, Resp) → the SMMU delivers the PRG Response to the function (the model's
 *   `onPageResponse`, the host bridge) → the function retries its ATS translation, which now
 *   succeeds, and a DMA read through the device port sees the bytes.
 *
 * Everything runs with the hardware model on this thread (its PRG Responses are visible), except
 * the last test, which runs the model in its worker and checks through the host's counters and
 * the commands the driver published.
 */
import { ACCESS_READ, ACCESS_WRITE, FaultReason, NO_PASID, PageResponseCode, PgFaultPerm, type PageResponse } from '@iommulab/driver-api';
import {
  IOMMU_HWPT_PGFAULT_BYTES,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  PriFunction,
  PriStatus,
  decodePgfaults,
  encodePageResponses,
} from '@iommulab/fault-queues';
import type { SmmuV3Hardware } from '@iommulab/hw-smmuv3';
import { CmdOp, EvtId, PriResp } from '@iommulab/hw-smmuv3/codec';
import { afterEach, describe, expect, it } from 'vitest';
import type { FaultFile } from '../src/fault.js';
import { IOMMU_HWPT_ALLOC_PASID, IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_HWPT_FAULT_ID_VALID } from '../src/uapi/constants.js';
import { expectErrno, FIXED, PAGE_SIZE, RW } from './fixture.js';
import {
  bindSmmuDevice,
  dmaRead,
  GVA,
  HostCmdRecorder,
  openSmmuSelf,
  openVm,
  teardownSmmu,
  vste,
  writeGuestCd,
  type HostCmd,
  type SmmuSelf,
} from './smmuv3-fixture.js';

const P = PAGE_SIZE;
/** IOVAs used (below the software MSI window at 0x800_0000). */
const IOVA = 0x20_0000;
const R = PgFaultPerm.READ;
const W = PgFaultPerm.WRITE;
const REC = IOMMU_HWPT_PGFAULT_BYTES;
const LAST = IOMMU_PGFAULT_FLAGS_LAST_PAGE;
const PV = IOMMU_PGFAULT_FLAGS_PASID_VALID;
const S = PageResponseCode.SUCCESS;
const I = PageResponseCode.INVALID;

/** The 40 bytes of one `struct iommu_hwpt_pgfault`, written field by field (little-endian). */
function pgfault(f: { flags: number; devId: number; pasid?: number; grpid: number; perm: number; addr: number; cookie: number }): Uint8Array {
  const b = new Uint8Array(REC);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, f.flags, true);
  dv.setUint32(4, f.devId, true);
  dv.setUint32(8, f.pasid ?? 0, true);
  dv.setUint32(12, f.grpid, true);
  dv.setUint32(16, f.perm, true);
  dv.setUint32(20, 0, true); // __reserved
  dv.setBigUint64(24, BigInt(f.addr), true);
  dv.setUint32(32, 0, true); // length: always 0
  dv.setUint32(36, f.cookie, true);
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `struct iommu_hwpt_page_response {u32 cookie; u32 code}[]`. */
function answers(...rs: [cookie: number, code: number][]): Uint8Array {
  return encodePageResponses(rs.map(([cookie, code]) => ({ cookie, code })));
}

/** CMD_PRI_RESP as IHI 0070 §4.5.2 lays it out: SSV [11], SSID [31:12], SID [63:32], PRGI [72:64], Resp [77:76]. */
function priResp(sid: number, ssid: number, prgi: number, resp: number): HostCmd {
  const ssv = ssid >= 0;
  return [(CmdOp.PRI_RESP | (ssv ? (1 << 11) | (ssid << 12) : 0)) >>> 0, sid, (resp << 12) | prgi, 0];
}

/** A recognisable page: byte j = (seed + 7 j) & 0xff. */
function pattern(seed: number, n = P): Uint8Array {
  return new Uint8Array(n).map((_, j) => (seed + j * 7) & 0xff);
}

/** Lets the in-thread model, the driver's interrupt loop and promise continuations run until `cond` holds. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return;
    await new Promise<void>((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}

/** A process with an SMMUv3 (PRI-capable), the host bridge routing PRG Responses to the functions. */
interface Rig {
  self: SmmuSelf;
  hw: SmmuV3Hardware;
  /** The commands the driver publishes (CMD_PRI_RESP among them). */
  cmds: HostCmdRecorder;
  /** Every PRG Response the SMMU delivered, in order. */
  delivered: PageResponse[];
  /** A PCIe function with PRI sending its Page Requests through the device port. */
  fn(rid: number, o?: { responsePasidRequired?: boolean; capacity?: number }): PriFunction;
  /** CMD_PRI_RESP published since the last call. */
  priResps(): HostCmd[];
  /** PRG Responses delivered since the last call. */
  responses(): PageResponse[];
}

async function openRig(): Promise<Rig> {
  const self = await openSmmuSelf();
  const hw = self.stack.host.hardware as SmmuV3Hardware;
  const cmds = new HostCmdRecorder(self);
  const delivered: PageResponse[] = [];
  const fns = new Map<number, PriFunction>();
  hw.onPageResponse((r) => {
    delivered.push(r);
    fns.get(r.rid)?.receive(r);
  });
  let seen = 0;
  return {
    self,
    hw,
    cmds,
    delivered,
    fn(rid, o = {}) {
      const f = new PriFunction({ rid, send: (req) => self.stack.port.pageRequest(req), timeoutMs: 5_000, ...o });
      fns.set(rid, f);
      return f;
    },
    priResps() {
      return cmds.take().filter((c) => (c[0] & 0xff) === CmdOp.PRI_RESP);
    },
    responses() {
      const out = delivered.slice(seen);
      seen = delivered.length;
      return out;
    },
  };
}

async function closeRig(rig: Rig): Promise<void> {
  rig.cmds.close();
  rig.hw.onPageResponse(undefined);
  await teardownSmmu(rig.self);
}

/** IOMMU_FAULT_QUEUE_ALLOC (unless `fault` is given) + IOMMU_HWPT_ALLOC on `ptId` with IOMMU_HWPT_FAULT_ID_VALID | `flags`. */
async function faultHwpt(
  self: SmmuSelf,
  devId: number,
  ptId: number,
  flags = 0,
  fault?: { faultId: number; file: FaultFile },
): Promise<{ faultId: number; file: FaultFile; hwptId: number }> {
  let f = fault;
  if (f === undefined) {
    const q = await self.fd.faultQueueAlloc();
    f = { faultId: q.outFaultId, file: q.file };
  }
  const hwptId = (await self.fd.hwptAlloc({ devId, ptId, flags: IOMMU_HWPT_FAULT_ID_VALID | flags, faultId: f.faultId })).outHwptId;
  return { ...f, hwptId };
}

/** The device's ATS Translation Request (a copy of the result). */
async function ats(self: SmmuSelf, rid: number, iova: number, access = ACCESS_READ, pasid = NO_PASID) {
  return { ...(await self.stack.port.atsTranslate({ rid, iova, access, pasid })) };
}

/** IOMMU_IOAS_MAP (FIXED, RW) of `pages` pages of the process's buffer at `iova`, page i filled with pattern(seed + i). */
async function mapKnown(self: SmmuSelf, ioasId: number, iova: number, bufPage: number, seed: number, pages = 1): Promise<number> {
  const va = self.buffer + bufPage * P;
  for (let i = 0; i < pages; i++) self.proc.write(va + i * P, pattern(seed + i));
  await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: va, length: pages * P, iova });
  return va;
}

const ATS_MISS = { ok: false, pa: 0, fault: FaultReason.TRANSLATION, faultDetail: EvtId.F_TRANSLATION };

describe('IOPF through iommufd on SMMUv3: a PCIe function with ATS + PRI (in-thread model)', () => {
  let rig: Rig | undefined;
  afterEach(async () => {
    if (rig !== undefined) await closeRig(rig);
    rig = undefined;
  });

  it('§3.2 steps 1–15: ATS miss → PRG → PRIQ → drainFaults → read() gives one iommu_hwpt_pgfault (LAST_PAGE, dev_id, grpid, perm, addr, length 0, cookie 1) → IOAS_MAP → write {1, SUCCESS} → CMD_PRI_RESP(SID, PRGI 0, Resp Success) → PRG Response Success → the ATS retry hits and a DMA read sees the bytes', async () => {
    rig = await openRig();
    const { self, hw } = rig;
    const SID = 0x10;
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const devId = await bindSmmuDevice(self, { rid: SID, ats: true, pri: true });
    const { outFaultId: faultId, outFaultFd: faultFd, file } = await self.fd.faultQueueAlloc();
    expect(self.fd.files.get(faultFd)).toBe(file);
    const hwptId = (await self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId })).outHwptId;
    await self.fd.deviceAttach({ devId, ptId: hwptId });
    const pri = rig.fn(SID);
    rig.cmds.take();

    // The device translates with ATS: nothing is mapped there yet.
    const addr = IOVA + 3 * P;
    expect(await ats(self, SID, addr + 0x40)).toEqual(ATS_MISS);
    // PCIe §10.4: it sends a one-page PRG (PRG index 0, Last) and waits for the PRG Response.
    const answer = pri.request([{ addr, perm: R }]);
    await until(() => hw.stats().priQueued === 1, 'the page request reaches the PRIQ');
    expect(pri.outstanding).toBe(1);
    // The driver's PRIQ interrupt may already have drained it; drainFaults empties what is left.
    await self.stack.driver.drainFaults();
    expect(file.poll()).toEqual({ readable: true, writable: true });

    // read(fault fd): exactly one 40-byte record (a bigger buffer gets only whole groups).
    const rec = file.read(4 * REC);
    expect(rec).toEqual(pgfault({ flags: LAST, devId, grpid: 0, perm: R, addr, cookie: 1 }));
    expect(decodePgfaults(rec)).toEqual([{ flags: LAST, devId, pasid: 0, grpid: 0, perm: R, addr, length: 0, cookie: 1 }]);
    expect(file.read(4 * REC).length).toBe(0);
    expect(rig.priResps()).toEqual([]);
    expect(rig.responses()).toEqual([]);

    // The VMM resolves the fault: it maps user memory with known bytes there, then answers.
    const va = await mapKnown(self, ioasId, addr, 5, 0x30);
    expect(file.write(answers([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
    await file.fault.flush();
    expect(rig.priResps()).toEqual([priResp(SID, -1, 0, PriResp.SUCCESS)]);
    expect(rig.responses()).toEqual([{ rid: SID, pasid: -1, grpid: 0, code: S }]);
    expect(await answer).toBe(S);
    expect(pri.outstanding).toBe(0);
    expect(pri.stats).toMatchObject({ requests: 1, groups: 1, success: 1, invalid: 0, failure: 0, unexpected: 0 });

    // The device retries: its ATS translation now returns the page; a DMA read sees the bytes.
    const pa = self.proc.translate(va);
    expect(await ats(self, SID, addr + 0x40)).toEqual({ ok: true, pa: pa + 0x40, fault: 0, faultDetail: 0 });
    expect(await dmaRead(self, SID, addr + 0x40, 32)).toEqual(pattern(0x30).subarray(0x40, 0x60));
    expect(hw.stats()).toMatchObject({ priRequests: 1, priQueued: 1, pageResponses: 1, pageResponsesAutomatic: 0, atsRequests: 2 });
    // The cookie is gone: a second answer is EINVAL and nothing more reaches the SMMU.
    expect(() => file.write(answers([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    await file.fault.flush();
    expect(rig.priResps()).toEqual([]);
  });

  it('§3.3 one response per PRG: a three-request group gives three records in arrival order (one cookie, LAST_PAGE only on the third); a read too small for the whole group returns 0 bytes; one {cookie, SUCCESS} gives one CMD_PRI_RESP and the retried translations of all three pages hit', async () => {
    rig = await openRig();
    const { self, hw } = rig;
    const SID = 0x11;
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const devId = await bindSmmuDevice(self, { rid: SID, ats: true, pri: true });
    const { file, hwptId } = await faultHwpt(self, devId, ioasId);
    await self.fd.deviceAttach({ devId, ptId: hwptId });
    const pri = rig.fn(SID);
    rig.cmds.take();

    const pages = [
      { addr: IOVA, perm: R },
      { addr: IOVA + P, perm: W },
      { addr: IOVA + 5 * P, perm: R | W },
    ];
    const answer = pri.request(pages);
    await until(() => hw.stats().priQueued === 3, 'three page requests in the PRIQ');
    expect(pri.outstanding).toBe(3); // three credits in use
    await self.stack.driver.drainFaults();
    // 80 bytes cannot hold the 3-record group: nothing is read, the group stays queued.
    expect(file.read(2 * REC).length).toBe(0);
    expect(file.poll().readable).toBe(true);
    expect(file.read(8 * REC)).toEqual(
      concat(
        pgfault({ flags: 0, devId, grpid: 0, perm: R, addr: IOVA, cookie: 1 }),
        pgfault({ flags: 0, devId, grpid: 0, perm: W, addr: IOVA + P, cookie: 1 }),
        pgfault({ flags: LAST, devId, grpid: 0, perm: R | W, addr: IOVA + 5 * P, cookie: 1 }),
      ),
    );

    const va0 = await mapKnown(self, ioasId, IOVA, 0, 0x10, 2);
    const va5 = await mapKnown(self, ioasId, IOVA + 5 * P, 2, 0x20);
    expect(file.write(answers([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
    await file.fault.flush();
    expect(rig.priResps()).toEqual([priResp(SID, -1, 0, PriResp.SUCCESS)]);
    expect(rig.responses()).toEqual([{ rid: SID, pasid: -1, grpid: 0, code: S }]);
    expect(await answer).toBe(S);
    expect(pri.outstanding).toBe(0); // the one response refunded the three credits

    expect(await ats(self, SID, IOVA + 8)).toEqual({ ok: true, pa: self.proc.translate(va0) + 8, fault: 0, faultDetail: 0 });
    expect(await ats(self, SID, IOVA + P + 8, ACCESS_WRITE)).toEqual({ ok: true, pa: self.proc.translate(va0 + P) + 8, fault: 0, faultDetail: 0 });
    expect(await ats(self, SID, IOVA + 5 * P, ACCESS_READ | ACCESS_WRITE)).toEqual({ ok: true, pa: self.proc.translate(va5), fault: 0, faultDetail: 0 });
    expect(await dmaRead(self, SID, IOVA + P - 16, 32)).toEqual(concat(pattern(0x10).subarray(P - 16), pattern(0x11).subarray(0, 16)));
    expect(await dmaRead(self, SID, IOVA + 5 * P, 16)).toEqual(pattern(0x20, 16));
    expect(hw.stats()).toMatchObject({ priQueued: 3, pageResponses: 1 });
    expect(pri.stats).toMatchObject({ requests: 3, groups: 1, success: 1, unexpected: 0 });
  });

  it('§3.8 routing: three functions, two PASIDs, three FAULTs (one shared by three HWPTs) at once; PRG index 0 is in use by all three functions, and each answer reaches only its requester: CMD_PRI_RESP (SID, SSV/SSID, PRGI) and the PRG Response (PASID required by A) match the group exactly', async () => {
    rig = await openRig();
    const { self, hw } = rig;
    const A = 0x20;
    const B = 0x21;
    const C = 0x22;
    const ioas = async () => (await self.fd.ioasAlloc()).outIoasId;
    const [ioasA, ioasA1, ioasA2, ioasB, ioasC] = [await ioas(), await ioas(), await ioas(), await ioas(), await ioas()];
    const devA = await bindSmmuDevice(self, { rid: A, ats: true, pri: true, pasidBits: 8 });
    const devB = await bindSmmuDevice(self, { rid: B, ats: true, pri: true });
    const devC = await bindSmmuDevice(self, { rid: C, ats: true, pri: true });
    // A's RID and PASID 1 have their own FAULTs; A's PASID 2, B and C share one.
    const hA = await faultHwpt(self, devA, ioasA, IOMMU_HWPT_ALLOC_PASID);
    const hA1 = await faultHwpt(self, devA, ioasA1, IOMMU_HWPT_ALLOC_PASID);
    const hA2 = await faultHwpt(self, devA, ioasA2, IOMMU_HWPT_ALLOC_PASID);
    const hB = await faultHwpt(self, devB, ioasB, 0, hA2);
    const hC = await faultHwpt(self, devC, ioasC, 0, hA2);
    await self.fd.deviceAttach({ devId: devA, ptId: hA.hwptId });
    await self.fd.deviceAttach({ devId: devA, ptId: hA1.hwptId, pasid: 1 });
    await self.fd.deviceAttach({ devId: devA, ptId: hA2.hwptId, pasid: 2 });
    await self.fd.deviceAttach({ devId: devB, ptId: hB.hwptId });
    await self.fd.deviceAttach({ devId: devC, ptId: hC.hwptId });
    const priA = rig.fn(A, { responsePasidRequired: true });
    const priB = rig.fn(B);
    const priC = rig.fn(C);
    rig.cmds.take();

    // One PRG at a time reaches the PRIQ (its arrival order is the order of the records).
    let queued = 0;
    const sent = async (n: number): Promise<void> => {
      queued += n;
      await until(() => hw.stats().priQueued === queued, `${queued} page requests in the PRIQ`);
    };
    const rA0 = priA.request([{ addr: IOVA, perm: R }]); // PRG 0, no PASID
    await sent(1);
    const rA1 = priA.request([{ addr: IOVA, perm: R | W }], 1); // PRG 1, PASID 1
    await sent(1);
    const rA2 = priA.request([{ addr: IOVA, perm: R }, { addr: IOVA + P, perm: R }], 2); // PRG 2, PASID 2
    await sent(2);
    const rB = priB.request([{ addr: IOVA, perm: W }]); // PRG 0
    await sent(1);
    const rC = priC.request([{ addr: IOVA + 2 * P, perm: R }]); // PRG 0
    await sent(1);
    await self.stack.driver.drainFaults();

    expect(hA.file.read(8 * REC)).toEqual(pgfault({ flags: LAST, devId: devA, grpid: 0, perm: R, addr: IOVA, cookie: 1 }));
    expect(hA1.file.read(8 * REC)).toEqual(pgfault({ flags: PV | LAST, devId: devA, pasid: 1, grpid: 1, perm: R | W, addr: IOVA, cookie: 1 }));
    expect(hA2.file.read(8 * REC)).toEqual(
      concat(
        pgfault({ flags: PV, devId: devA, pasid: 2, grpid: 2, perm: R, addr: IOVA, cookie: 1 }),
        pgfault({ flags: PV | LAST, devId: devA, pasid: 2, grpid: 2, perm: R, addr: IOVA + P, cookie: 1 }),
        pgfault({ flags: LAST, devId: devB, grpid: 0, perm: W, addr: IOVA, cookie: 2 }),
        pgfault({ flags: LAST, devId: devC, grpid: 0, perm: R, addr: IOVA + 2 * P, cookie: 3 }),
      ),
    );

    // The Success groups get their pages; answers in an order unrelated to the requests.
    const vaA = await mapKnown(self, ioasA, IOVA, 0, 0xa0);
    const vaA2 = await mapKnown(self, ioasA2, IOVA, 1, 0xa2, 2);
    const vaC = await mapKnown(self, ioasC, IOVA + 2 * P, 3, 0xc0);
    expect(hA2.file.write(answers([1, IOMMUFD_PAGE_RESP_SUCCESS], [2, IOMMUFD_PAGE_RESP_INVALID]))).toBe(16);
    expect(hA1.file.write(answers([1, IOMMUFD_PAGE_RESP_INVALID]))).toBe(8);
    expect(hA.file.write(answers([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
    expect(hA2.file.write(answers([3, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
    await hA.file.fault.flush();
    expect(rig.priResps()).toEqual([
      priResp(A, 2, 2, PriResp.SUCCESS),
      priResp(B, -1, 0, PriResp.INVALID_REQUEST),
      priResp(A, 1, 1, PriResp.INVALID_REQUEST),
      priResp(A, -1, 0, PriResp.SUCCESS),
      priResp(C, -1, 0, PriResp.SUCCESS),
    ]);
    expect(rig.responses()).toEqual([
      { rid: A, pasid: 2, grpid: 2, code: S },
      { rid: B, pasid: -1, grpid: 0, code: I },
      { rid: A, pasid: 1, grpid: 1, code: I },
      { rid: A, pasid: -1, grpid: 0, code: S },
      { rid: C, pasid: -1, grpid: 0, code: S },
    ]);
    expect(await Promise.all([rA0, rA1, rA2, rB, rC])).toEqual([S, I, S, I, S]);
    expect(priA.stats).toMatchObject({ groups: 3, success: 2, invalid: 1, unexpected: 0 });
    expect(priB.stats).toMatchObject({ groups: 1, success: 0, invalid: 1, unexpected: 0 });
    expect(priC.stats).toMatchObject({ groups: 1, success: 1, invalid: 0, unexpected: 0 });
    for (const f of [priA, priB, priC]) {
      expect(f.outstanding).toBe(0);
      expect(f.status & (PriStatus.UPRGI | PriStatus.RF)).toBe(0);
    }

    // Each retry translates through its own RID / PASID table.
    const hit = (va: number, off = 0) => ({ ok: true, pa: self.proc.translate(va) + off, fault: 0, faultDetail: 0 });
    expect(await ats(self, A, IOVA + 4)).toEqual(hit(vaA, 4));
    expect(await ats(self, A, IOVA + 4, ACCESS_READ, 2)).toEqual(hit(vaA2, 4));
    expect(await ats(self, A, IOVA + P, ACCESS_READ, 2)).toEqual(hit(vaA2 + P));
    expect(await ats(self, C, IOVA + 2 * P)).toEqual(hit(vaC));
    expect(await ats(self, A, IOVA, ACCESS_READ, 1)).toEqual(ATS_MISS); // answered INVALID, nothing mapped
    expect(await ats(self, B, IOVA, ACCESS_WRITE)).toEqual(ATS_MISS);
    expect(await dmaRead(self, A, IOVA + P, 8, 2)).toEqual(pattern(0xa3, 8));
    expect(await dmaRead(self, A, IOVA, 8)).toEqual(pattern(0xa0, 8));
    expect(hw.stats()).toMatchObject({ priQueued: 6, pageResponses: 5, pageResponsesAutomatic: 0 });
  });

  it('§4.5 Invalid Request: write {cookie, IOMMUFD_PAGE_RESP_INVALID} → CMD_PRI_RESP Resp 1 (InvalidRequest) → the function gets Invalid Request, refunds its credit, sets no RF and does not retry (its ATS translation still misses)', async () => {
    rig = await openRig();
    const { self, hw } = rig;
    const SID = 0x12;
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const devId = await bindSmmuDevice(self, { rid: SID, ats: true, pri: true });
    const { file, hwptId } = await faultHwpt(self, devId, ioasId);
    await self.fd.deviceAttach({ devId, ptId: hwptId });
    const pri = rig.fn(SID);
    rig.cmds.take();
    expect(await ats(self, SID, IOVA, ACCESS_WRITE)).toEqual(ATS_MISS);
    const answer = pri.request([{ addr: IOVA, perm: W }]);
    await until(() => hw.stats().priQueued === 1, 'the page request in the PRIQ');
    await self.stack.driver.drainFaults();
    expect(file.read(REC)).toEqual(pgfault({ flags: LAST, devId, grpid: 0, perm: W, addr: IOVA, cookie: 1 }));
    expect(file.write(answers([1, IOMMUFD_PAGE_RESP_INVALID]))).toBe(8);
    await file.fault.flush();
    expect(rig.priResps()).toEqual([priResp(SID, -1, 0, PriResp.INVALID_REQUEST)]);
    expect(rig.responses()).toEqual([{ rid: SID, pasid: -1, grpid: 0, code: I }]);
    expect(await answer).toBe(I);
    expect(pri.stats).toMatchObject({ invalid: 1, success: 0, failure: 0, unexpected: 0 });
    expect(pri.outstanding).toBe(0);
    expect(pri.status & PriStatus.RF).toBe(0);
    // No retry: the page is still not there; only the first ATS request was made.
    expect(hw.stats().atsRequests).toBe(1);
    expect(await ats(self, SID, IOVA, ACCESS_WRITE)).toEqual(ATS_MISS);
    // A code other than SUCCESS / INVALID (the removed FAILURE = 2) is EINVAL.
    const again = pri.request([{ addr: IOVA, perm: W }]);
    await until(() => hw.stats().priQueued === 2, 'the second page request in the PRIQ');
    await self.stack.driver.drainFaults();
    // Cookies are cyclic: the second group gets 2, and the answered group's 1 is not handed out again.
    expect(file.read(REC)).toEqual(pgfault({ flags: LAST, devId, grpid: 1, perm: W, addr: IOVA, cookie: 2 }));
    expect(() => file.write(answers([2, 2]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => file.write(answers([1, IOMMUFD_PAGE_RESP_INVALID]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    await file.fault.flush();
    expect(rig.priResps()).toEqual([]);
    expect(pri.outstanding).toBe(1);
    expect(file.write(answers([2, IOMMUFD_PAGE_RESP_INVALID]))).toBe(8);
    await file.fault.flush();
    expect(await again).toBe(I);
  });

  /** An attached function with a FAULT HWPT: the pieces the §3.4 tests share. */
  async function attachedFunction(sid: number, o: { pasidBits?: number; flags?: number; responsePasidRequired?: boolean } = {}) {
    const { self } = rig!;
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const devId = await bindSmmuDevice(self, { rid: sid, ats: true, pri: true, pasidBits: o.pasidBits ?? 0 });
    const h = await faultHwpt(self, devId, ioasId, o.flags ?? 0);
    await self.fd.deviceAttach({ devId, ptId: h.hwptId });
    const pri = rig!.fn(sid, { responsePasidRequired: o.responsePasidRequired });
    rig!.cmds.take();
    return { ioasId, devId, ...h, pri };
  }

  /** Waits until the PRIQ holds `n` requests in all, then drains it. */
  async function drainAfter(n: number): Promise<void> {
    await until(() => rig!.hw.stats().priQueued === n, `${n} page requests in the PRIQ`);
    await rig!.self.stack.driver.drainFaults();
  }

  it('§3.4 detach (iommufd_auto_response_faults after the hardware detach): the queued group and the read one are answered INVALID → CMD_PRI_RESP Resp 1 for PRGI 1 then 0 (deliver list, then response table); the old cookie is EINVAL; IOPF is off: the next PRG is denied by the driver and reaches no FAULT', async () => {
    rig = await openRig();
    const { self } = rig;
    const SID = 0x13;
    const { devId, file, pri } = await attachedFunction(SID);
    const g0 = pri.request([{ addr: IOVA, perm: R }]);
    await drainAfter(1);
    expect(file.read(REC)).toEqual(pgfault({ flags: LAST, devId, grpid: 0, perm: R, addr: IOVA, cookie: 1 }));
    const g1 = pri.request([{ addr: IOVA + P, perm: W }]);
    await drainAfter(2);
    expect(file.poll().readable).toBe(true); // g1 queued, unread

    await self.fd.deviceDetach({ devId });
    expect(rig.priResps()).toEqual([priResp(SID, -1, 1, PriResp.INVALID_REQUEST), priResp(SID, -1, 0, PriResp.INVALID_REQUEST)]);
    expect(rig.responses()).toEqual([
      { rid: SID, pasid: -1, grpid: 1, code: I },
      { rid: SID, pasid: -1, grpid: 0, code: I },
    ]);
    expect(await Promise.all([g0, g1])).toEqual([I, I]);
    expect(pri.outstanding).toBe(0);
    expect(file.poll().readable).toBe(false);
    expect(file.read(4 * REC).length).toBe(0);
    expect(() => file.write(answers([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    // The function is blocked now, and its next PRG is denied by the driver (no IOPF, no handler).
    expect((await ats(self, SID, IOVA)).ok).toBe(false);
    const g2 = pri.request([{ addr: IOVA, perm: R }]);
    await drainAfter(3);
    expect(await g2).toBe(I);
    expect(rig.priResps()).toEqual([priResp(SID, -1, 2, PriResp.INVALID_REQUEST)]);
    expect(rig.responses()).toEqual([{ rid: SID, pasid: -1, grpid: 2, code: I }]);
    expect(file.read(4 * REC).length).toBe(0);
  });

  it('§3.4 replace: FAULT HWPT → another FAULT HWPT answers the old FAULT\'s groups INVALID after the replace and keeps IOPF on (the next PRG reaches the new FAULT); → a HWPT without FAULT answers the new FAULT\'s groups INVALID and turns IOPF off (the next PRG is denied by the driver)', async () => {
    rig = await openRig();
    const { self } = rig;
    const SID = 0x14;
    const { ioasId, devId, file: f1, pri } = await attachedFunction(SID);
    const h2 = await faultHwpt(self, devId, ioasId);
    const plain = (await self.fd.hwptAlloc({ devId, ptId: ioasId })).outHwptId;
    const g0 = pri.request([{ addr: IOVA, perm: R }]);
    await drainAfter(1);
    expect(f1.read(REC)).toEqual(pgfault({ flags: LAST, devId, grpid: 0, perm: R, addr: IOVA, cookie: 1 }));
    const g1 = pri.request([{ addr: IOVA + P, perm: R }]);
    await drainAfter(2);

    await self.fd.deviceReplace({ devId, ptId: h2.hwptId });
    expect(rig.priResps()).toEqual([priResp(SID, -1, 1, PriResp.INVALID_REQUEST), priResp(SID, -1, 0, PriResp.INVALID_REQUEST)]);
    expect(await Promise.all([g0, g1])).toEqual([I, I]);
    expect(f1.read(4 * REC).length).toBe(0);
    // IOPF stayed on: the next PRG goes to the new FAULT.
    const g2 = pri.request([{ addr: IOVA + 2 * P, perm: W }]);
    await drainAfter(3);
    expect(f1.read(4 * REC).length).toBe(0);
    expect(h2.file.read(4 * REC)).toEqual(pgfault({ flags: LAST, devId, grpid: 2, perm: W, addr: IOVA + 2 * P, cookie: 1 }));
    const g3 = pri.request([{ addr: IOVA + 3 * P, perm: R }]);
    await drainAfter(4);
    expect(rig.priResps()).toEqual([]);

    await self.fd.deviceReplace({ devId, ptId: plain });
    expect(rig.priResps()).toEqual([priResp(SID, -1, 3, PriResp.INVALID_REQUEST), priResp(SID, -1, 2, PriResp.INVALID_REQUEST)]);
    expect(await Promise.all([g2, g3])).toEqual([I, I]);
    expect(() => h2.file.write(answers([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    // IOPF is off: denied by the driver.
    const g4 = pri.request([{ addr: IOVA, perm: R }]);
    await drainAfter(5);
    expect(await g4).toBe(I);
    expect(rig.priResps()).toEqual([priResp(SID, -1, 4, PriResp.INVALID_REQUEST)]);
    expect(h2.file.read(4 * REC).length).toBe(0);
    expect(rig.responses().map((r) => [r.grpid, r.code])).toEqual([
      [1, I],
      [0, I],
      [3, I],
      [2, I],
      [4, I],
    ]);
  });

  it('§3.4 PASID detach: the groups of the PASID attachment (read and queued) get CMD_PRI_RESP Invalid with SSV + SSID 7; the RID\'s group on the same FAULT stays pending and is answered normally; a later PRG of PASID 7 has no handler (the RID is not nested) and is denied with SSID 7', async () => {
    rig = await openRig();
    const { self } = rig;
    const SID = 0x15;
    const { ioasId, devId, file, faultId, pri } = await attachedFunction(SID, { pasidBits: 8, flags: IOMMU_HWPT_ALLOC_PASID, responsePasidRequired: true });
    const hp = await faultHwpt(self, devId, ioasId, IOMMU_HWPT_ALLOC_PASID, { faultId, file });
    await self.fd.deviceAttach({ devId, ptId: hp.hwptId, pasid: 7 });
    const gR = pri.request([{ addr: IOVA, perm: R }]); // PRG 0, RID
    await drainAfter(1);
    const gP = pri.request([{ addr: IOVA, perm: R | W }], 7); // PRG 1
    await drainAfter(2);
    expect(file.read(8 * REC)).toEqual(
      concat(
        pgfault({ flags: LAST, devId, grpid: 0, perm: R, addr: IOVA, cookie: 1 }),
        pgfault({ flags: PV | LAST, devId, pasid: 7, grpid: 1, perm: R | W, addr: IOVA, cookie: 2 }),
      ),
    );
    const gP2 = pri.request([{ addr: IOVA + P, perm: R }], 7); // PRG 2, queued
    await drainAfter(3);

    await self.fd.deviceDetach({ devId, pasid: 7 });
    expect(rig.priResps()).toEqual([priResp(SID, 7, 2, PriResp.INVALID_REQUEST), priResp(SID, 7, 1, PriResp.INVALID_REQUEST)]);
    expect(rig.responses()).toEqual([
      { rid: SID, pasid: 7, grpid: 2, code: I },
      { rid: SID, pasid: 7, grpid: 1, code: I },
    ]);
    expect(await Promise.all([gP, gP2])).toEqual([I, I]);
    expect(pri.outstanding).toBe(1); // the RID's group
    expect(() => file.write(answers([2, IOMMUFD_PAGE_RESP_SUCCESS]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    const va = await mapKnown(self, ioasId, IOVA, 4, 0x44);
    expect(file.write(answers([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
    await file.fault.flush();
    expect(rig.priResps()).toEqual([priResp(SID, -1, 0, PriResp.SUCCESS)]);
    expect(await gR).toBe(S);
    expect(await ats(self, SID, IOVA)).toEqual({ ok: true, pa: self.proc.translate(va), fault: 0, faultDetail: 0 });

    const gP3 = pri.request([{ addr: IOVA, perm: R }], 7);
    await drainAfter(4);
    await file.fault.flush();
    expect(await gP3).toBe(I);
    expect(rig.priResps()).toEqual([priResp(SID, 7, 3, PriResp.INVALID_REQUEST)]);
    expect(file.read(4 * REC).length).toBe(0);
    expect(pri.stats.unexpected).toBe(0);
  });

  it('§3.4 FAULT destroy / close: close(iommufd) with the function still attached, a group read and a group queued: both are answered INVALID (CMD_PRI_RESP Resp 1 each) and nothing stays outstanding on the function; an explicit IOMMU_DESTROY of the FAULT is EBUSY while a HWPT or its file holds it', async () => {
    rig = await openRig();
    const { self } = rig;
    const SID = 0x16;
    const { devId, faultId, hwptId, file, pri } = await attachedFunction(SID);
    await expectErrno('EBUSY', self.fd.destroy({ id: faultId }));
    const g0 = pri.request([{ addr: IOVA, perm: R }]);
    await drainAfter(1);
    expect(file.read(REC)).toEqual(pgfault({ flags: LAST, devId, grpid: 0, perm: R, addr: IOVA, cookie: 1 }));
    const g1 = pri.request([{ addr: IOVA + P, perm: R }]);
    await drainAfter(2);
    await expectErrno('EBUSY', self.fd.destroy({ id: hwptId }));
    await expectErrno('EBUSY', self.fd.destroy({ id: faultId }));

    await self.fd.close();
    expect(rig.priResps()).toEqual([priResp(SID, -1, 1, PriResp.INVALID_REQUEST), priResp(SID, -1, 0, PriResp.INVALID_REQUEST)]);
    expect(rig.responses()).toEqual([
      { rid: SID, pasid: -1, grpid: 1, code: I },
      { rid: SID, pasid: -1, grpid: 0, code: I },
    ]);
    expect(await Promise.all([g0, g1])).toEqual([I, I]);
    expect(pri.outstanding).toBe(0);
    expect(file.closed).toBe(true);
  });

  it('§3.3 a late answer after detach is EINVAL and never reaches a newer group that reused the PRG index: the function reuses index 5 once its INVALID arrived; the newer group is read first (cookie 2: cookies are cyclic, unlike the kernel\'s lowest-free xa_alloc, which would give it 1 again); only then does the stale {1, SUCCESS} arrive: EINVAL, nothing sent, the newer group still pending until answered with its own cookie 2', async () => {
    rig = await openRig();
    const { self } = rig;
    const SID = 0x17;
    const { ioasId, devId, hwptId, file } = await attachedFunction(SID);
    // The function's PRG index 5 (raw Page Request Messages through the device port).
    const request = (addr: number) => self.stack.port.pageRequest({ rid: SID, pasid: NO_PASID, addr, perm: R, grpid: 5, last: true });
    expect(await request(IOVA)).toBe(true);
    await drainAfter(1);
    expect(file.read(REC)).toEqual(pgfault({ flags: LAST, devId, grpid: 5, perm: R, addr: IOVA, cookie: 1 }));
    await self.fd.deviceDetach({ devId });
    expect(rig.priResps()).toEqual([priResp(SID, -1, 5, PriResp.INVALID_REQUEST)]);
    expect(rig.responses()).toEqual([{ rid: SID, pasid: -1, grpid: 5, code: I }]);

    // Re-attached, the function uses index 5 again for a new group, and the VMM reads it before
    // its late answer to the old group: the new group's cookie is 2, never the old group's 1.
    await self.fd.deviceAttach({ devId, ptId: hwptId });
    expect(await request(IOVA + P)).toBe(true);
    await drainAfter(2);
    expect(file.poll().readable).toBe(true);
    expect(file.read(4 * REC)).toEqual(pgfault({ flags: LAST, devId, grpid: 5, perm: R, addr: IOVA + P, cookie: 2 }));
    expect(file.fault.queue.awaitingResponse).toBe(1);
    // The VMM's late answer to the old group, written after the new group was read: EINVAL, also
    // as the first entry of a batch (nothing consumed, so the new group's entry is not reached).
    expect(() => file.write(answers([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => file.write(answers([1, IOMMUFD_PAGE_RESP_SUCCESS], [2, IOMMUFD_PAGE_RESP_SUCCESS]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    await file.fault.flush();
    expect(rig.priResps()).toEqual([]);
    expect(rig.responses()).toEqual([]);
    // The new group is still pending, and only its own cookie answers it.
    expect(file.fault.queue.awaitingResponse).toBe(1);
    expect(rig.hw.stats()).toMatchObject({ priQueued: 2, pageResponses: 1, pageResponsesAutomatic: 0 });
    const va = await mapKnown(self, ioasId, IOVA + P, 6, 0x66);
    expect(file.write(answers([2, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
    await file.fault.flush();
    expect(rig.priResps()).toEqual([priResp(SID, -1, 5, PriResp.SUCCESS)]);
    expect(rig.responses()).toEqual([{ rid: SID, pasid: -1, grpid: 5, code: S }]);
    expect(file.fault.queue.awaitingResponse).toBe(0);
    expect(await ats(self, SID, IOVA + P)).toEqual({ ok: true, pa: self.proc.translate(va), fault: 0, faultDetail: 0 });
    expect(rig.hw.stats()).toMatchObject({ priQueued: 2, pageResponses: 2, pageResponsesAutomatic: 0 });
  });

  it('§3.2 step 4 no handler: a function on a HWPT without FAULT (IOPF never enabled) gets CMD_PRI_RESP Invalid from the driver; with IOPF on for the RID, a PASID on a HWPT without FAULT and an unattached PASID get Invalid from the fault layer (SSV + SSID); the non-Last request of such a PRG is dropped unanswered; no FAULT sees anything', async () => {
    rig = await openRig();
    const { self, hw } = rig;
    const D = 0x18;
    const E = 0x19;
    // D: attached to a plain HWPT (auto domain of its IOAS).
    const ioasD = (await self.fd.ioasAlloc()).outIoasId;
    const devD = await bindSmmuDevice(self, { rid: D, ats: true, pri: true });
    await self.fd.deviceAttach({ devId: devD, ptId: ioasD });
    const priD = rig.fn(D);
    rig.cmds.take();
    const gD = priD.request([{ addr: IOVA, perm: R }]);
    await drainAfter(1);
    expect(await gD).toBe(I);
    expect(rig.priResps()).toEqual([priResp(D, -1, 0, PriResp.INVALID_REQUEST)]);
    expect(rig.responses()).toEqual([{ rid: D, pasid: -1, grpid: 0, code: I }]);

    // E: RID on a FAULT HWPT; PASID 3 on a HWPT without FAULT; PASID 4 not attached.
    const { ioasId, devId, file, pri } = await attachedFunction(E, { pasidBits: 8, flags: IOMMU_HWPT_ALLOC_PASID, responsePasidRequired: true });
    const noFault = (await self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_PASID })).outHwptId;
    await self.fd.deviceAttach({ devId, ptId: noFault, pasid: 3 });
    expect(await self.stack.port.pageRequest({ rid: E, pasid: 3, addr: IOVA + 9 * P, perm: R, grpid: 200, last: false })).toBe(true);
    const g3 = pri.request([{ addr: IOVA, perm: R }], 3); // PRG 0
    await drainAfter(3);
    const g4 = pri.request([{ addr: IOVA, perm: W }], 4); // PRG 1
    await drainAfter(4);
    await file.fault.flush();
    expect(await Promise.all([g3, g4])).toEqual([I, I]);
    expect(rig.priResps()).toEqual([priResp(E, 3, 0, PriResp.INVALID_REQUEST), priResp(E, 4, 1, PriResp.INVALID_REQUEST)]);
    expect(rig.responses()).toEqual([
      { rid: E, pasid: 3, grpid: 0, code: I },
      { rid: E, pasid: 4, grpid: 1, code: I },
    ]);
    expect(file.read(8 * REC).length).toBe(0);
    expect(pri.stats.unexpected).toBe(0);
    expect(hw.stats()).toMatchObject({ priQueued: 4, pageResponses: 3 });
  });

  it('§3.2 step 3 stop marker (L = 1, R = W = 0, with a PASID): the SMMU records it in the PRIQ, the fault layer drops it: read() returns nothing, no CMD_PRI_RESP, no PRG Response; the next PRG of that PASID is delivered normally (PRG index 0, cookie 1)', async () => {
    rig = await openRig();
    const { self, hw } = rig;
    const SID = 0x1a;
    const { ioasId, devId, file, faultId, pri } = await attachedFunction(SID, { pasidBits: 8, flags: IOMMU_HWPT_ALLOC_PASID, responsePasidRequired: true });
    const hp = await faultHwpt(self, devId, ioasId, IOMMU_HWPT_ALLOC_PASID, { faultId, file });
    await self.fd.deviceAttach({ devId, ptId: hp.hwptId, pasid: 6 });
    expect(await pri.stopMarker(6)).toBe(true);
    await drainAfter(1);
    await file.fault.flush();
    expect(file.poll().readable).toBe(false);
    expect(file.read(4 * REC).length).toBe(0);
    expect(rig.priResps()).toEqual([]);
    expect(rig.responses()).toEqual([]);
    expect(hw.stats()).toMatchObject({ priRequests: 1, priQueued: 1, pageResponses: 0 });
    expect(pri.stats).toMatchObject({ stopMarkers: 1, requests: 0, unexpected: 0 });

    const g = pri.request([{ addr: IOVA, perm: R }], 6);
    await drainAfter(2);
    expect(file.read(4 * REC)).toEqual(pgfault({ flags: PV | LAST, devId, pasid: 6, grpid: 0, perm: R, addr: IOVA, cookie: 1 }));
    expect(file.write(answers([1, IOMMUFD_PAGE_RESP_INVALID]))).toBe(8);
    await file.fault.flush();
    expect(await g).toBe(I);
    expect(rig.priResps()).toEqual([priResp(SID, 6, 0, PriResp.INVALID_REQUEST)]);
  });

  it('§3.2 steps 8–15 with nesting: a function behind a vIOMMU on a nested HWPT with a FAULT (guest stage 1 over stage 2, STE.EATS from the vSTE); its PRG without PASID and its PRG with PASID 1 (no PASID attachment: the RID\'s nested HWPT takes it — user-managed PASID table) reach that FAULT with the guest addresses; the guest maps the pages in its CDs 0 and 1, SUCCESS → CMD_PRI_RESP (SSV + SSID 1 for the second) → the ATS retries walk stage 1 + stage 2', async () => {
    rig = await openRig();
    const { self, hw } = rig;
    const vm = await openVm(self, { rid: 0x40, vsid: 0x77, spec: { ats: true, pri: true, pasidBits: 8 } });
    writeGuestCd(vm, { asid: 3 });
    writeGuestCd(vm, { ssid: 1, asid: 4 }); // CD 1: the same guest stage-1 table
    const { outFaultId: faultId, file } = await self.fd.faultQueueAlloc();
    const nested = (
      await self.fd.hwptAlloc({
        devId: vm.devId,
        ptId: vm.viommuId,
        flags: IOMMU_HWPT_FAULT_ID_VALID,
        faultId,
        dataType: IOMMU_HWPT_DATA_ARM_SMMUV3,
        data: vste({ cdPtr: vm.cdIpa, s1cdmax: 1, s1dss: 2, eats: 1 }), // S1DSS = SUBSTREAM0: no SSID uses CD 0
      })
    ).outHwptId;
    await self.fd.deviceAttach({ devId: vm.devId, ptId: nested });
    const pri = rig.fn(vm.rid, { responsePasidRequired: true });
    rig.cmds.take();

    expect(await ats(self, vm.rid, GVA + 0x10)).toEqual(ATS_MISS);
    const g0 = pri.request([{ addr: GVA, perm: R }]); // PRG 0, no PASID
    await until(() => hw.stats().priQueued === 1, 'the first PRG in the PRIQ');
    const g1 = pri.request([{ addr: GVA + P, perm: R | W }], 1); // PRG 1, PASID 1
    await until(() => hw.stats().priQueued === 2, 'the second PRG in the PRIQ');
    await self.stack.driver.drainFaults();
    expect(file.read(4 * REC)).toEqual(
      concat(
        pgfault({ flags: LAST, devId: vm.devId, grpid: 0, perm: R, addr: GVA, cookie: 1 }),
        pgfault({ flags: PV | LAST, devId: vm.devId, pasid: 1, grpid: 1, perm: R | W, addr: GVA + P, cookie: 2 }),
      ),
    );

    // The guest handles both: new stage-1 leaves (no invalidation needed for a new entry).
    const p0 = vm.ram.allocPage();
    const p1 = vm.ram.allocPage();
    vm.ram.write(p0, pattern(0x50, 64));
    vm.ram.write(p1, pattern(0x51, 64));
    vm.s1.map(GVA, p0);
    vm.s1.map(GVA + P, p1);
    expect(file.write(answers([2, IOMMUFD_PAGE_RESP_SUCCESS], [1, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(16);
    await file.fault.flush();
    expect(rig.priResps()).toEqual([priResp(vm.rid, 1, 1, PriResp.SUCCESS), priResp(vm.rid, -1, 0, PriResp.SUCCESS)]);
    expect(rig.responses()).toEqual([
      { rid: vm.rid, pasid: 1, grpid: 1, code: S },
      { rid: vm.rid, pasid: -1, grpid: 0, code: S },
    ]);
    expect(await Promise.all([g0, g1])).toEqual([S, S]);
    expect(await ats(self, vm.rid, GVA + 0x10)).toEqual({ ok: true, pa: vm.ram.paOf(p0) + 0x10, fault: 0, faultDetail: 0 });
    expect(await ats(self, vm.rid, GVA + P + 0x10, ACCESS_WRITE, 1)).toEqual({ ok: true, pa: vm.ram.paOf(p1) + 0x10, fault: 0, faultDetail: 0 });
    expect(await dmaRead(self, vm.rid, GVA, 16)).toEqual(pattern(0x50, 16));
    expect(await dmaRead(self, vm.rid, GVA + P, 16, 1)).toEqual(pattern(0x51, 16));
  });
});

describe('IOPF through iommufd on SMMUv3 with the hardware model in its worker', () => {
  let self: SmmuSelf | undefined;
  let cmds: HostCmdRecorder | undefined;
  afterEach(async () => {
    cmds?.close();
    if (self !== undefined) await teardownSmmu(self);
    self = cmds = undefined;
  });

  it('§3.2 across threads: a two-request PRG through the device port → two records (one cookie) → IOAS_MAP → {1, SUCCESS} → CMD_PRI_RESP Resp 2 consumed by the worker (host stats: 3 requests queued, 2 PRG Responses, 0 automatic) → the ATS retry hits and a DMA read sees the bytes; a function on a HWPT without FAULT is denied (Resp 1)', async () => {
    self = await openSmmuSelf({ mode: 'worker' });
    expect(self.stack.host.mode).toBe('worker');
    expect(self.stack.host.hardware).toBeUndefined();
    const A = 0x30;
    const B = 0x31;
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const devA = await bindSmmuDevice(self, { rid: A, ats: true, pri: true });
    const devB = await bindSmmuDevice(self, { rid: B, ats: true, pri: true });
    const { outFaultId: faultId, file } = await self.fd.faultQueueAlloc();
    const hwptId = (await self.fd.hwptAlloc({ devId: devA, ptId: ioasId, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId })).outHwptId;
    await self.fd.deviceAttach({ devId: devA, ptId: hwptId });
    await self.fd.deviceAttach({ devId: devB, ptId: ioasId }); // auto domain, no FAULT
    cmds = new HostCmdRecorder(self);
    const priResps = () => cmds!.take().filter((c) => (c[0] & 0xff) === CmdOp.PRI_RESP);

    expect(await ats(self, A, IOVA + 0x80)).toEqual(ATS_MISS);
    // The worker writes the PRIQ record before it answers the port.
    expect(await self.stack.port.pageRequest({ rid: A, pasid: NO_PASID, addr: IOVA, perm: R, grpid: 17, last: false })).toBe(true);
    expect(await self.stack.port.pageRequest({ rid: A, pasid: NO_PASID, addr: IOVA + P, perm: R | W, grpid: 17, last: true })).toBe(true);
    expect(await self.stack.port.pageRequest({ rid: B, pasid: NO_PASID, addr: IOVA, perm: R, grpid: 4, last: true })).toBe(true);
    await self.stack.driver.drainFaults();
    expect(file.read(8 * REC)).toEqual(
      concat(
        pgfault({ flags: 0, devId: devA, grpid: 17, perm: R, addr: IOVA, cookie: 1 }),
        pgfault({ flags: LAST, devId: devA, grpid: 17, perm: R | W, addr: IOVA + P, cookie: 1 }),
      ),
    );
    const va = await mapKnown(self, ioasId, IOVA, 7, 0x77, 2);
    expect(file.write(answers([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
    await file.fault.flush();
    // B's denial (queued by the driver while it drained the PRIQ), then A's answer; the driver's
    // CMDQ waits for the worker to consume each command, in order.
    expect(priResps()).toEqual([priResp(B, -1, 4, PriResp.INVALID_REQUEST), priResp(A, -1, 17, PriResp.SUCCESS)]);
    const st = await self.stack.host.stats();
    expect(st).toMatchObject({ priRequests: 3, priQueued: 3, pageResponses: 2, pageResponsesAutomatic: 0, atsRequests: 1 });

    // The function retries: its ATS translation now hits, and a DMA read sees the bytes.
    expect(await ats(self, A, IOVA + 0x80)).toEqual({ ok: true, pa: self.proc.translate(va) + 0x80, fault: 0, faultDetail: 0 });
    expect(await ats(self, A, IOVA + P, ACCESS_WRITE)).toEqual({ ok: true, pa: self.proc.translate(va + P), fault: 0, faultDetail: 0 });
    expect(await dmaRead(self, A, IOVA + P - 8, 16)).toEqual(concat(pattern(0x77).subarray(P - 8), pattern(0x78, 8)));
    expect(() => file.write(answers([1, IOMMUFD_PAGE_RESP_SUCCESS]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
  });
});
