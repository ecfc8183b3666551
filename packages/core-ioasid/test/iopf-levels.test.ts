/**
 * Faults per handle on SMMUv3 nesting (ARCHITECTURE.md "nesting": page faults and responses are
 * per handle — one queue for the parent (level-2 faults) and one per child (level-1 faults);
 * vmm-and-faults.md §3.1 item 2 (stall model), §3.2 steps 4–15, §3.4):
 *
 *   a stall-capable platform device (driver option `stallRids`: STE.S2S, CD.S) behind a vIOMMU,
 *   on a nested HWPT (guest STE → guest CD table → guest stage-1 table, all in guest RAM) over a
 *   nest-parent stage-2 HWPT. A DMA whose guest stage 1 gives an IPA the IOAS does not map stalls
 *   at stage 2 (event record S2 = 1) → the driver reports a stall page request with `stage: 2` →
 *   core-ioasid routes it to the parent's FAULT (level 2); a DMA the guest stage 1 does not map
 *   stalls at stage 1 → the nested HWPT's own FAULT (level 1).
 *
 * FINDING: the uAPI cannot give the parent a FAULT. IOMMU_HWPT_ALLOC refuses
 * NEST_PARENT | FAULT_ID_VALID with EOPNOTSUPP (hw-pagetable.ts hwptPagingAlloc, as Linux and its
 * selftest; iommufd.md §IOMMU_HWPT_ALLOC step 4), and no other ioctl sets a HWPT's FAULT. So the
 * level-2 route (src/fault.ts handlerOf / faultSyncDevice / faultAutoResponse) is unreachable
 * through the uAPI. The first test pins that refusal; the tests named "white-box parent FAULT"
 * attach a FAULT to the parent HWPT object directly (`hwpt.fault = fault`, one users reference,
 * exactly what IOMMU_HWPT_ALLOC with FAULT_ID_VALID does for any other HWPT) so that the routing
 * code and the real hardware path (stage-2 stall, S2 = 1, CMD_RESUME) are still exercised end to
 * end. The test without a parent FAULT uses the uAPI only.
 *
 * Also observed: the record a level-2 fault puts on the parent's fd carries the stage-1 input
 * address (the GVA) as `addr`, like every stall record; the IPA that actually faulted at stage 2
 * (event dword 3, asserted here from the SMMU's event queue) is not in `PageRequest` nor in
 * `iommu_hwpt_pgfault`, so the parent's owner cannot tell from the record what to map (the tests
 * know HOLE_IPA because they chose it).
 *
 * Everything runs with the hardware model on this thread (its stall table is visible).
 */
import { ACCESS_READ, ACCESS_WRITE, FaultReason, NO_PASID, PgFaultPerm } from '@iommulab/driver-api';
import {
  IOMMU_HWPT_PGFAULT_BYTES,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  encodePageResponses,
} from '@iommulab/fault-queues';
import type { SmmuV3Hardware } from '@iommulab/hw-smmuv3';
import { CmdOp, EvtClass, EvtId, SMMU_EVTQ_BASE, SMMU_EVTQ_PROD } from '@iommulab/hw-smmuv3/codec';
import { makeS1Cd } from '@iommulab/hw-smmuv3/driver';
import { afterEach, describe, expect, it } from 'vitest';
import type { FaultFile, IommufdFault } from '../src/fault.js';
import type { HwPagetable } from '../src/hw-pagetable.js';
import { IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_HWPT_FAULT_ID_VALID } from '../src/uapi/constants.js';
import { expectErrno, FIXED, PAGE_SIZE, RW } from './fixture.js';
import {
  GVA,
  guestCdBytes,
  HostCmdRecorder,
  openSmmuSelf,
  openVm,
  s1PageDesc,
  s1TableDesc,
  steDwords,
  teardownSmmu,
  vste,
  type HostCmd,
  type SmmuSelf,
  type Vm,
  writeU64,
} from './smmuv3-fixture.js';

const P = PAGE_SIZE;
const REC = IOMMU_HWPT_PGFAULT_BYTES;
const LAST = IOMMU_PGFAULT_FLAGS_LAST_PAGE;
const PV = IOMMU_PGFAULT_FLAGS_PASID_VALID;
const R = PgFaultPerm.READ;
const W = PgFaultPerm.WRITE;
/** The stall-capable device's StreamID (firmware "dma-can-stall": driver option stallRids). */
const SID = 0x40;
/** An IPA outside guest RAM (GUEST_IPA_BASE + 64 pages) that the IOAS does not map until the VMM resolves the fault. */
const HOLE_IPA = 0x5000_0000;
/** CMD_RESUME Action (IHI 0070 §4.7.3): 1 RETRY, 2 ABORT. */
const RETRY = 1;
const ABORT = 2;

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

/** The cookie of record `i` of a read (cookie numbering is the fault queue's business: read, never assumed). */
function cookieOf(bytes: Uint8Array, i = 0): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(i * REC + 36, true);
}

function answers(...rs: [cookie: number, code: number][]): Uint8Array {
  return encodePageResponses(rs.map(([cookie, code]) => ({ cookie, code })));
}

/** CMD_RESUME(SID, STAG, Action): opcode 0x44, Action [13:12], SID [63:32], STAG [79:64]. */
function resume(sid: number, stag: number, action: number): HostCmd {
  return [(CmdOp.RESUME | (action << 12)) >>> 0, sid, stag, 0];
}

/** A recognisable page: byte j = (seed + 7 j) & 0xff. */
function pattern(seed: number, n = P): Uint8Array {
  return new Uint8Array(n).map((_, j) => (seed + j * 7) & 0xff);
}

/**
 * The fields of the last record the SMMU wrote to its event queue (the ring slot before
 * EVTQ_PROD; the driver's drain does not clear it): Stall, STAG, S2 (dword 1 bit 39), CLASS
 * [41:40], InputAddr, IPA (dword 3 [51:12]).
 */
function lastEvent(self: SmmuSelf): { id: number; sid: number; stall: boolean; stag: number; s2: boolean; cls: number; inputAddr: number; ipa: number } {
  const regs = self.stack.host.regs;
  const base = regs.u32[SMMU_EVTQ_BASE >>> 2]!;
  const log2 = base & 0x1f;
  const slots = 1 << log2;
  const i = ((regs.u32[SMMU_EVTQ_PROD >>> 2]! & (slots - 1)) + slots - 1) % slots;
  const w = self.mem.u32.subarray(((base & 0xffffffe0) + 32 * i) >>> 2, (((base & 0xffffffe0) + 32 * i) >>> 2) + 8);
  return {
    id: w[0]! & 0xff,
    sid: w[1]!,
    stall: (w[2]! & 0x8000_0000) !== 0,
    stag: w[2]! & 0xffff,
    s2: (w[3]! & (1 << 7)) !== 0,
    cls: (w[3]! >>> 8) & 3,
    inputAddr: w[4]! + w[5]! * 2 ** 32,
    ipa: (w[6]! & 0xffff_f000) + (w[7]! & 0xfffff) * 2 ** 32,
  };
}

/** The guest writes CD `ssid` with CD.S = 1 (it sees a stall-capable device, as Linux arm_smmu_make_s1_cd with stall_enabled). */
function writeStallCd(vm: Vm, ssid = 0, asid = 3): void {
  const words = makeS1Cd(new Uint32Array(16), { tcr: { t0sz: 16, tg: 0, ir: 1, or: 1, sh: 3, ips: 5 }, ttb0: vm.s1.root, asid, stall: true, dirty: false });
  vm.ram.write(vm.cdIpa + 64 * ssid, guestCdBytes(words));
}

interface Rig {
  self: SmmuSelf;
  hw: SmmuV3Hardware;
  cmds: HostCmdRecorder;
  vm: Vm;
  /** The nested HWPT (vIOMMU-based) with its own FAULT (level 1). */
  nestedId: number;
  child: { faultId: number; file: FaultFile };
  /** The parent's FAULT (level 2), when installed. */
  parent: { faultId: number; file: FaultFile } | null;
  /** CMD_RESUME published since the last call. */
  resumes(): HostCmd[];
}

/**
 * The VM (IOAS, DEVICE, NEST_PARENT HWPT, vIOMMU, vDEVICE, guest RAM), guest CDs 0 and 1 with
 * CD.S = 1, a FAULT for the nested HWPT and, with `parentFault`, a FAULT given to the parent HWPT
 * white-box (see the module comment); the device attached to the nested HWPT.
 */
async function openRig(o: { parentFault: boolean }): Promise<Rig> {
  const self = await openSmmuSelf({ options: { stallRids: [SID] } });
  const hw = self.stack.host.hardware as SmmuV3Hardware;
  const vm = await openVm(self, { rid: SID, vsid: 0x77 });
  writeStallCd(vm, 0, 3);
  writeStallCd(vm, 1, 4);
  let parent: Rig['parent'] = null;
  if (o.parentFault) {
    const q = await self.fd.faultQueueAlloc();
    parent = { faultId: q.outFaultId, file: q.file };
    const hwpt = self.fd.ctx.objects.get<HwPagetable>(vm.parentId, 'hwpt_paging', 'HWPT_PAGING');
    const fault = self.fd.ctx.objects.get<IommufdFault>(q.outFaultId, 'fault', 'FAULT');
    // White-box: what IOMMU_HWPT_ALLOC does with FAULT_ID_VALID (it refuses it with NEST_PARENT).
    hwpt.fault = fault;
    fault.users++;
  }
  const c = await self.fd.faultQueueAlloc();
  const child = { faultId: c.outFaultId, file: c.file };
  const nestedId = (
    await self.fd.hwptAlloc({
      devId: vm.devId,
      ptId: vm.viommuId,
      flags: IOMMU_HWPT_FAULT_ID_VALID,
      faultId: child.faultId,
      dataType: IOMMU_HWPT_DATA_ARM_SMMUV3,
      data: vste({ cdPtr: vm.cdIpa, s1cdmax: 1, s1dss: 2 }), // S1DSS = SUBSTREAM0: SSID 0 uses CD 0; SSID 1 CD 1
    })
  ).outHwptId;
  await self.fd.deviceAttach({ devId: vm.devId, ptId: nestedId });
  const cmds = new HostCmdRecorder(self);
  return {
    self,
    hw,
    cmds,
    vm,
    nestedId,
    child,
    parent,
    resumes: () => cmds.take().filter((cmd) => (cmd[0] & 0xff) === CmdOp.RESUME),
  };
}

async function closeRig(rig: Rig): Promise<void> {
  rig.cmds.close();
  await teardownSmmu(rig.self);
}

/** One DMA by the device (a copy of the result). */
async function dma(rig: Rig, iova: number, access = ACCESS_READ, pasid = NO_PASID) {
  return { ...(await rig.self.stack.port.translate({ rid: SID, iova, access, pasid })) };
}

const STALLED = { ok: false, pa: 0, fault: FaultReason.PAGE_REQUEST, faultDetail: EvtId.F_TRANSLATION };

/** The only outstanding stall in the model (the device's, at `iova`): its STAG. */
function onlyStagOf(hw: SmmuV3Hardware, iova: number, ssid = -1): number {
  const s = hw.pendingStalls();
  expect(s).toEqual([{ sid: SID, stag: expect.any(Number), ssid, iova }]);
  return s[0]!.stag;
}

function onlyStag(rig: Rig, iova: number, ssid = -1): number {
  return onlyStagOf(rig.hw, iova, ssid);
}

/** IOMMU_IOAS_MAP (FIXED, RW) of one page of the process's buffer, filled with pattern(seed), at `iova`: its user VA. */
async function mapKnown(rig: Rig, iova: number, bufPage: number, seed: number): Promise<number> {
  const va = rig.self.buffer + bufPage * P;
  rig.self.proc.write(va, pattern(seed));
  await rig.self.fd.ioasMap({ flags: RW | FIXED, ioasId: rig.vm.ioasId, userVa: va, length: P, iova });
  return va;
}

describe('faults per handle on SMMUv3 nesting: the uAPI and the parent FAULT', () => {
  let self: SmmuSelf | undefined;
  afterEach(async () => {
    if (self !== undefined) await teardownSmmu(self);
    self = undefined;
  });

  it('FINDING — "one queue for the parent (level-2 faults)" cannot be set up through the uAPI: IOMMU_HWPT_ALLOC(NEST_PARENT | FAULT_ID_VALID, a valid fault_id) is EOPNOTSUPP (Linux / selftest), while the nested HWPT on the vIOMMU takes FAULT_ID_VALID; the NEST_PARENT HWPT has no FAULT', async () => {
    self = await openSmmuSelf({ options: { stallRids: [SID] } });
    const vm = await openVm(self, { rid: SID });
    const { outFaultId: faultId } = await self.fd.faultQueueAlloc();
    await expectErrno('EOPNOTSUPP', self.fd.hwptAlloc({ devId: vm.devId, ptId: vm.ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_FAULT_ID_VALID, faultId }));
    expect(self.fd.ctx.objects.get<HwPagetable>(vm.parentId, 'hwpt_paging', 'HWPT_PAGING').fault).toBeNull();
    const nested = await self.fd.hwptAlloc({
      devId: vm.devId,
      ptId: vm.viommuId,
      flags: IOMMU_HWPT_FAULT_ID_VALID,
      faultId,
      dataType: IOMMU_HWPT_DATA_ARM_SMMUV3,
      data: vste({ cdPtr: vm.cdIpa }),
    });
    expect(self.fd.ctx.objects.get<HwPagetable>(nested.outHwptId, 'hwpt_nested', 'HWPT_NESTED').fault?.id).toBe(faultId);
  });
});

describe('faults per handle on SMMUv3 nesting: stage-2 stalls to the parent FAULT, stage-1 stalls to the child FAULT (in-thread model)', () => {
  let rig: Rig | undefined;
  afterEach(async () => {
    if (rig !== undefined) await closeRig(rig);
    rig = undefined;
  });

  it('stall-capable master (stallRids): the nested STE keeps the parent S2 STE\'s S2S = 1 (dword 2 bit 57, S1STALLD = 0) and the guest CDs have CD.S = 1', async () => {
    rig = await openRig({ parentFault: false });
    const ste = steDwords(rig.self, SID);
    expect(Number((ste[0] >> 1n) & 7n)).toBe(7); // Config = nested
    expect((ste[2] >> 57n) & 1n).toBe(1n); // S2S
    expect((ste[1] >> 27n) & 1n).toBe(0n); // S1STALLD
    expect((rig.vm.ram.read64(rig.vm.cdIpa) >> 44n) & 1n).toBe(1n); // CD.S
    expect((rig.vm.ram.read64(rig.vm.cdIpa + 64) >> 44n) & 1n).toBe(1n);
  });

  it('(a) white-box parent FAULT — level-2 fault to the parent\'s queue, §3.2 steps 4–15 with the stall model: guest stage 1 maps the GVA to an IPA the IOAS does not map → stage-2 stall (S2 = 1) → the parent\'s fault fd gives exactly one record {LAST_PAGE, dev_id, pasid 0, grpid = STAG, READ, addr = the GVA as input address (the faulting IPA of the record\'s dword 3 is not carried), length 0}; the child\'s fd gives nothing → IOAS_MAP of the IPA → {cookie, SUCCESS} on the parent\'s fd → CMD_RESUME(SID, STAG, RETRY) → the retried DMA hits the mapped page', async () => {
    rig = await openRig({ parentFault: true });
    const { self, vm, hw, child } = rig;
    const parent = rig.parent!;
    vm.s1.map(GVA, HOLE_IPA);
    rig.resumes();

    const addr = GVA + 0x48;
    expect(await dma(rig, addr)).toEqual(STALLED);
    const stag = onlyStag(rig, addr);
    // The SMMU's record: a stage-2 fault of the input (CLASS = IN) at the IPA the guest gave.
    expect(lastEvent(self)).toEqual({ id: EvtId.F_TRANSLATION, sid: SID, stall: true, stag, s2: true, cls: EvtClass.IN, inputAddr: addr, ipa: HOLE_IPA });
    await self.stack.driver.drainFaults();
    expect(child.file.poll().readable).toBe(false);
    expect(child.file.read(4 * REC).length).toBe(0);
    expect(parent.file.poll()).toEqual({ readable: true, writable: true });
    const rec = parent.file.read(4 * REC);
    expect(rec.length).toBe(REC);
    const cookie = cookieOf(rec);
    expect(cookie).toBeGreaterThan(0);
    expect(rec).toEqual(pgfault({ flags: LAST, devId: vm.devId, grpid: stag, perm: R, addr, cookie }));
    expect(rig.resumes()).toEqual([]);
    expect(hw.pendingStalls()).toHaveLength(1); // the device still waits

    // The VMM (owner of level 2) resolves it: IOAS_MAP of the missing IPA, then SUCCESS.
    const va = await mapKnown(rig, HOLE_IPA, 3, 0x5a);
    expect(parent.file.write(answers([cookie, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
    await parent.file.fault.flush();
    expect(rig.resumes()).toEqual([resume(SID, stag, RETRY)]);
    expect(hw.takeStallResolutions()).toEqual([{ sid: SID, ssid: -1, stag, iova: addr, access: ACCESS_READ, evt: EvtId.F_TRANSLATION, action: 'retry' }]);
    expect(hw.pendingStalls()).toEqual([]);
    // The device retries the transaction: GVA → HOLE_IPA (guest stage 1) → the pinned page (stage 2).
    const pa = self.proc.translate(va);
    expect(await dma(rig, addr)).toEqual({ ok: true, pa: pa + 0x48, fault: 0, faultDetail: 0 });
    expect(Array.from(self.mem.u8.subarray(pa + 0x48, pa + 0x58))).toEqual(Array.from(pattern(0x5a).subarray(0x48, 0x58)));
    // The cookie is spent; nothing else reached either queue or the SMMU.
    expect(() => parent.file.write(answers([cookie, IOMMUFD_PAGE_RESP_SUCCESS]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(child.file.read(4 * REC).length).toBe(0);
    expect(rig.resumes()).toEqual([]);
  });

  it('(a) white-box parent FAULT — level 2 with a PASID: a stage-2 stall of SSID 1 (no PASID attachment: the RID\'s nested HWPT, user-managed CD table) is the parent\'s record {PASID_VALID | LAST_PAGE, pasid 1, grpid = STAG, WRITE, addr}; INVALID on the parent\'s fd → CMD_RESUME(SID, STAG, ABORT) and the transaction is aborted', async () => {
    rig = await openRig({ parentFault: true });
    const { self, vm, hw, child } = rig;
    const parent = rig.parent!;
    vm.s1.map(GVA + P, HOLE_IPA + P);
    rig.resumes();

    const addr = GVA + P + 0x100;
    expect(await dma(rig, addr, ACCESS_WRITE, 1)).toEqual(STALLED);
    const stag = onlyStag(rig, addr, 1);
    expect(lastEvent(self)).toMatchObject({ stall: true, stag, s2: true, cls: EvtClass.IN, inputAddr: addr, ipa: HOLE_IPA + P });
    await self.stack.driver.drainFaults();
    expect(child.file.read(4 * REC).length).toBe(0);
    const rec = parent.file.read(4 * REC);
    const cookie = cookieOf(rec);
    expect(rec).toEqual(pgfault({ flags: PV | LAST, devId: vm.devId, pasid: 1, grpid: stag, perm: W, addr, cookie }));
    expect(parent.file.write(answers([cookie, IOMMUFD_PAGE_RESP_INVALID]))).toBe(8);
    await parent.file.fault.flush();
    expect(rig.resumes()).toEqual([resume(SID, stag, ABORT)]);
    expect(hw.takeStallResolutions()).toEqual([{ sid: SID, ssid: 1, stag, iova: addr, access: ACCESS_WRITE, evt: EvtId.F_TRANSLATION, action: 'abort' }]);
    expect(hw.pendingStalls()).toEqual([]);
  });

  it('(a) white-box parent FAULT — level 2 on the guest stage-1 table walk (S2 = 1, CLASS = TT): a guest L2 table descriptor points at an IPA the IOAS does not map → stage-2 stall reported at the input GVA → the parent\'s record {LAST_PAGE, grpid = STAG, READ, addr = GVA}; the VMM maps user memory holding the guest\'s L3 table there, SUCCESS → CMD_RESUME RETRY → the retried walk reaches the guest page', async () => {
    rig = await openRig({ parentFault: true });
    const { self, vm, hw, child } = rig;
    const parent = rig.parent!;
    // The guest's L2 table of GVA (L0 0, L1 0x1fd): entry 2 (GVA + 2 MiB) → an L3 table at an IPA the IOAS lacks.
    vm.s1.leafIpa(GVA);
    const l1 = Number(vm.ram.read64(vm.s1.root) & 0x0000_ffff_ffff_f000n);
    const l2 = Number(vm.ram.read64(l1 + 8 * 0x1fd) & 0x0000_ffff_ffff_f000n);
    const tableIpa = HOLE_IPA + 2 * P;
    vm.ram.write64(l2 + 8 * 2, s1TableDesc(BigInt(tableIpa)));
    rig.resumes();

    const gva = GVA + 0x20_0000;
    const addr = gva + 0x30;
    expect(await dma(rig, addr)).toEqual(STALLED);
    const stag = onlyStag(rig, addr);
    // A stage-2 fault while fetching the guest's L3 descriptor (CLASS = TT, IPA = that table).
    expect(lastEvent(self)).toEqual({ id: EvtId.F_TRANSLATION, sid: SID, stall: true, stag, s2: true, cls: EvtClass.TT, inputAddr: addr, ipa: tableIpa });
    await self.stack.driver.drainFaults();
    expect(child.file.read(4 * REC).length).toBe(0);
    const rec = parent.file.read(4 * REC);
    const cookie = cookieOf(rec);
    expect(rec).toEqual(pgfault({ flags: LAST, devId: vm.devId, grpid: stag, perm: R, addr, cookie }));

    // The VMM populates that guest page: user memory holding the L3 table (entry 0 → a guest RAM page).
    const page = vm.ram.allocPage();
    vm.ram.write(page, pattern(0x71, 64));
    const va = self.buffer + 6 * P;
    self.proc.write(va, new Uint8Array(P));
    writeU64(self, va, s1PageDesc(BigInt(page)));
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId: vm.ioasId, userVa: va, length: P, iova: tableIpa });
    expect(parent.file.write(answers([cookie, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
    await parent.file.fault.flush();
    expect(rig.resumes()).toEqual([resume(SID, stag, RETRY)]);
    expect(hw.takeStallResolutions()).toEqual([{ sid: SID, ssid: -1, stag, iova: addr, access: ACCESS_READ, evt: EvtId.F_TRANSLATION, action: 'retry' }]);
    expect(await dma(rig, addr)).toEqual({ ok: true, pa: vm.ram.paOf(page) + 0x30, fault: 0, faultDetail: 0 });
  });

  it('(b) white-box parent FAULT — level-1 fault to the child\'s queue: a GVA the guest stage 1 does not map → stage-1 stall (CD.S, S2 = 0) → the child\'s fault fd gives {LAST_PAGE, dev_id, grpid = STAG, READ, addr}; the parent\'s gives nothing; the guest maps the page in its stage 1, {cookie, SUCCESS} on the child\'s fd → CMD_RESUME(SID, STAG, RETRY) → the retried DMA walks stage 1 + stage 2 to the guest page', async () => {
    rig = await openRig({ parentFault: true });
    const { self, vm, hw, child } = rig;
    const parent = rig.parent!;
    rig.resumes();

    const addr = GVA + 2 * P + 0x10;
    expect(await dma(rig, addr)).toEqual(STALLED);
    const stag = onlyStag(rig, addr);
    expect(lastEvent(self)).toMatchObject({ id: EvtId.F_TRANSLATION, sid: SID, stall: true, stag, s2: false, inputAddr: addr });
    await self.stack.driver.drainFaults();
    expect(parent.file.poll().readable).toBe(false);
    expect(parent.file.read(4 * REC).length).toBe(0);
    const rec = child.file.read(4 * REC);
    const cookie = cookieOf(rec);
    expect(rec).toEqual(pgfault({ flags: LAST, devId: vm.devId, grpid: stag, perm: R, addr, cookie }));

    // The guest (owner of level 1) handles it: a new stage-1 leaf to a page of its RAM.
    const page = vm.ram.allocPage();
    vm.ram.write(page, pattern(0x21, 64));
    vm.s1.map(GVA + 2 * P, page);
    expect(child.file.write(answers([cookie, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
    await child.file.fault.flush();
    expect(rig.resumes()).toEqual([resume(SID, stag, RETRY)]);
    expect(hw.takeStallResolutions()).toEqual([{ sid: SID, ssid: -1, stag, iova: addr, access: ACCESS_READ, evt: EvtId.F_TRANSLATION, action: 'retry' }]);
    expect(await dma(rig, addr)).toEqual({ ok: true, pa: vm.ram.paOf(page) + 0x10, fault: 0, faultDetail: 0 });
    expect(parent.file.read(4 * REC).length).toBe(0);
  });

  it('(c) uAPI only, no parent FAULT — a stage-2 stall of the nested attachment goes to the nested HWPT\'s own FAULT: the child\'s fd gives {LAST_PAGE, dev_id, grpid = STAG, READ, addr}; IOAS_MAP + {cookie, SUCCESS} → CMD_RESUME(SID, STAG, RETRY) → the retried DMA hits', async () => {
    rig = await openRig({ parentFault: false });
    const { self, vm, hw, child } = rig;
    vm.s1.map(GVA, HOLE_IPA);
    rig.resumes();

    const addr = GVA + 0x8;
    expect(await dma(rig, addr)).toEqual(STALLED);
    const stag = onlyStag(rig, addr);
    expect(lastEvent(self)).toMatchObject({ stall: true, stag, s2: true, cls: EvtClass.IN, inputAddr: addr, ipa: HOLE_IPA });
    await self.stack.driver.drainFaults();
    const rec = child.file.read(4 * REC);
    const cookie = cookieOf(rec);
    expect(rec).toEqual(pgfault({ flags: LAST, devId: vm.devId, grpid: stag, perm: R, addr, cookie }));
    const va = await mapKnown(rig, HOLE_IPA, 4, 0x33);
    expect(child.file.write(answers([cookie, IOMMUFD_PAGE_RESP_SUCCESS]))).toBe(8);
    await child.file.fault.flush();
    expect(rig.resumes()).toEqual([resume(SID, stag, RETRY)]);
    expect(hw.takeStallResolutions()).toEqual([{ sid: SID, ssid: -1, stag, iova: addr, access: ACCESS_READ, evt: EvtId.F_TRANSLATION, action: 'retry' }]);
    expect(await dma(rig, addr)).toEqual({ ok: true, pa: self.proc.translate(va) + 0x8, fault: 0, faultDetail: 0 });
  });

  it('(c) uAPI only, no FAULT anywhere on the stage-2 path: a nested HWPT without FAULT (IOPF never enabled) gets its stage-2 stall terminated by the driver (CMD_RESUME ABORT, §3.2 step 4 no handler)', async () => {
    const self = await openSmmuSelf({ options: { stallRids: [SID] } });
    const hw = self.stack.host.hardware as SmmuV3Hardware;
    const vm = await openVm(self, { rid: SID });
    writeStallCd(vm);
    const nestedId = (await self.fd.hwptAlloc({ devId: vm.devId, ptId: vm.viommuId, dataType: IOMMU_HWPT_DATA_ARM_SMMUV3, data: vste({ cdPtr: vm.cdIpa }) })).outHwptId;
    await self.fd.deviceAttach({ devId: vm.devId, ptId: nestedId });
    const cmds = new HostCmdRecorder(self);
    try {
      vm.s1.map(GVA, HOLE_IPA);
      expect({ ...(await self.stack.port.translate({ rid: SID, iova: GVA, access: ACCESS_READ, pasid: NO_PASID })) }).toEqual(STALLED);
      // The driver may already have drained the record on its interrupt (nobody to report to: ABORT).
      await self.stack.driver.drainFaults();
      await new Promise<void>((r) => setImmediate(r));
      const resolved = hw.takeStallResolutions();
      expect(resolved).toEqual([{ sid: SID, ssid: -1, stag: expect.any(Number), iova: GVA, access: ACCESS_READ, evt: EvtId.F_TRANSLATION, action: 'abort' }]);
      expect(cmds.take().filter((c) => (c[0] & 0xff) === CmdOp.RESUME)).toEqual([resume(SID, resolved[0]!.stag, ABORT)]);
      expect(hw.pendingStalls()).toEqual([]);
    } finally {
      cmds.close();
      await teardownSmmu(self);
    }
  });

  it('white-box parent FAULT — IOPF is on while the parent has a FAULT: a nested HWPT without its own FAULT still reports its stage-2 stall to the parent\'s fd {LAST_PAGE, grpid = STAG, READ, addr}, while its stage-1 stall has no level-1 queue and is answered INVALID by the fault layer (CMD_RESUME ABORT, §3.2 step 4)', async () => {
    const self = await openSmmuSelf({ options: { stallRids: [SID] } });
    const hw = self.stack.host.hardware as SmmuV3Hardware;
    const vm = await openVm(self, { rid: SID });
    writeStallCd(vm);
    const q = await self.fd.faultQueueAlloc();
    const hwpt = self.fd.ctx.objects.get<HwPagetable>(vm.parentId, 'hwpt_paging', 'HWPT_PAGING');
    const fault = self.fd.ctx.objects.get<IommufdFault>(q.outFaultId, 'fault', 'FAULT');
    hwpt.fault = fault;
    fault.users++;
    const nestedId = (await self.fd.hwptAlloc({ devId: vm.devId, ptId: vm.viommuId, dataType: IOMMU_HWPT_DATA_ARM_SMMUV3, data: vste({ cdPtr: vm.cdIpa }) })).outHwptId;
    await self.fd.deviceAttach({ devId: vm.devId, ptId: nestedId });
    const cmds = new HostCmdRecorder(self);
    const translate = async (iova: number) => ({ ...(await self.stack.port.translate({ rid: SID, iova, access: ACCESS_READ, pasid: NO_PASID })) });
    try {
      vm.s1.map(GVA, HOLE_IPA);
      expect(await translate(GVA + 0x20)).toEqual(STALLED);
      const stag = onlyStagOf(hw, GVA + 0x20);
      await self.stack.driver.drainFaults();
      const rec = q.file.read(4 * REC);
      const cookie = cookieOf(rec);
      expect(rec).toEqual(pgfault({ flags: LAST, devId: vm.devId, grpid: stag, perm: R, addr: GVA + 0x20, cookie }));
      expect(hw.pendingStalls()).toHaveLength(1);

      // Stage 1 (GVA + 3 pages is not in the guest's table): no FAULT on the nested HWPT.
      expect(await translate(GVA + 3 * P)).toEqual(STALLED);
      await self.stack.driver.drainFaults();
      await q.file.fault.flush();
      const resolved = hw.takeStallResolutions();
      expect(resolved).toEqual([{ sid: SID, ssid: -1, stag: expect.any(Number), iova: GVA + 3 * P, access: ACCESS_READ, evt: EvtId.F_TRANSLATION, action: 'abort' }]);
      expect(cmds.take().filter((c) => (c[0] & 0xff) === CmdOp.RESUME)).toEqual([resume(SID, resolved[0]!.stag, ABORT)]);
      expect(q.file.read(4 * REC).length).toBe(0);
      // The stage-2 group is still waiting for the parent's owner.
      expect(hw.pendingStalls()).toEqual([{ sid: SID, stag, ssid: -1, iova: GVA + 0x20 }]);
      expect(q.file.write(answers([cookie, IOMMUFD_PAGE_RESP_INVALID]))).toBe(8);
      await q.file.fault.flush();
      expect(cmds.take().filter((c) => (c[0] & 0xff) === CmdOp.RESUME)).toEqual([resume(SID, stag, ABORT)]);
      expect(hw.pendingStalls()).toEqual([]);
    } finally {
      cmds.close();
      await teardownSmmu(self);
    }
  });

  it('(d) white-box parent FAULT — §3.4 detach answers per handle: with a level-2 group read (cookie held) and one queued in the parent\'s FAULT and a level-1 group read in the child\'s, IOMMU detach of the nested attachment answers all three INVALID (CMD_RESUME ABORT for each STAG, every stall aborted); the parent\'s and the child\'s cookies are then EINVAL and both fds read nothing', async () => {
    rig = await openRig({ parentFault: true });
    const { self, vm, hw, child } = rig;
    const parent = rig.parent!;
    vm.s1.map(GVA, HOLE_IPA);
    vm.s1.map(GVA + P, HOLE_IPA + P);
    rig.resumes();

    // Level 2, read.
    expect(await dma(rig, GVA)).toEqual(STALLED);
    const stagA = onlyStag(rig, GVA);
    await self.stack.driver.drainFaults();
    const recA = parent.file.read(4 * REC);
    const cookieA = cookieOf(recA);
    expect(recA).toEqual(pgfault({ flags: LAST, devId: vm.devId, grpid: stagA, perm: R, addr: GVA, cookie: cookieA }));
    // Level 1, read.
    expect(await dma(rig, GVA + 5 * P)).toEqual(STALLED);
    await self.stack.driver.drainFaults();
    const recB = child.file.read(4 * REC);
    const cookieB = cookieOf(recB);
    const stagB = hw.pendingStalls().find((s) => s.iova === GVA + 5 * P)!.stag;
    expect(recB).toEqual(pgfault({ flags: LAST, devId: vm.devId, grpid: stagB, perm: R, addr: GVA + 5 * P, cookie: cookieB }));
    // Level 2, queued (not read).
    expect(await dma(rig, GVA + P, ACCESS_WRITE)).toEqual(STALLED);
    await self.stack.driver.drainFaults();
    const stagC = hw.pendingStalls().find((s) => s.iova === GVA + P)!.stag;
    expect(parent.file.poll().readable).toBe(true);
    expect(new Set([stagA, stagB, stagC]).size).toBe(3);
    expect(rig.resumes()).toEqual([]);

    await self.fd.deviceDetach({ devId: vm.devId });
    await parent.file.fault.flush();
    expect(hw.pendingStalls()).toEqual([]);
    // Every stall aborted once, by CMD_RESUME ABORT of its STAG (the order across the two FAULTs is not specified).
    const byStag = <T extends { stag: number }>(xs: T[]): T[] => [...xs].sort((x, y) => x.stag - y.stag);
    const all = (action: string) =>
      byStag([
        { sid: SID, ssid: -1, stag: stagA, iova: GVA, access: ACCESS_READ, evt: EvtId.F_TRANSLATION, action },
        { sid: SID, ssid: -1, stag: stagB, iova: GVA + 5 * P, access: ACCESS_READ, evt: EvtId.F_TRANSLATION, action },
        { sid: SID, ssid: -1, stag: stagC, iova: GVA + P, access: ACCESS_WRITE, evt: EvtId.F_TRANSLATION, action },
      ]);
    expect(byStag(hw.takeStallResolutions())).toEqual(all('abort'));
    const sent = rig.resumes();
    expect([...sent].sort((x, y) => x[2] - y[2])).toEqual([stagA, stagB, stagC].sort((x, y) => x - y).map((stag) => resume(SID, stag, ABORT)));
    // The held cookies are gone: a late answer is EINVAL on either fd and sends nothing.
    expect(() => parent.file.write(answers([cookieA, IOMMUFD_PAGE_RESP_SUCCESS]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => child.file.write(answers([cookieB, IOMMUFD_PAGE_RESP_SUCCESS]))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(parent.file.poll().readable).toBe(false);
    expect(parent.file.read(4 * REC).length).toBe(0);
    expect(child.file.read(4 * REC).length).toBe(0);
    await parent.file.fault.flush();
    expect(rig.resumes()).toEqual([]);
  });
});
