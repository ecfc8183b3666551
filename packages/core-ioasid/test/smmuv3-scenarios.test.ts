/**
 * The core-ioasid scenarios that make sense on real hardware, run table-driven on two backends:
 * the selftest mock (hw-mock) and the Arm SMMUv3 model with its Linux-style driver (hw-smmuv3).
 * Devices are bound with `deviceBind({ stack, spec })` (no selftest objects) and every check is
 * made by DMA through the backend's device port: translated PA and the bytes at it.
 *
 * Scenarios (iommufd.md §2.4, §2.9, §2.11; the selftest's iommufd_ioas / iommufd_mock_domain /
 * change_process fixtures): IOAS map / unmap (fixed and automatic IOVA, read-only areas),
 * IOAS_COPY, unmap faulting at once (the IOTLB was synced), attach / replace / detach, the auto
 * domain shared by the devices of an IOAS, PASID attach with PASID-capable HWPTs, an ACCESS pinning
 * and copying while a device is attached, an IOPF-capable HWPT with its FAULT, IOAS_CHANGE_PROCESS
 * with a memfd mapping, and teardown: closing the iommufd with everything still set up releases
 * every pin and, once the backend shuts down, every frame (checked after every test).
 *
 * Everything runs in-thread; the map/unmap, attach/replace and a nested SMMUv3 scenario also run
 * with the hardware model in its own worker thread.
 */
import { ACCESS_READ, ACCESS_WRITE, FaultReason, openBackend, type DeviceSpec, type InstanceMode } from '@iommulab/driver-api';
import { CmdOp, EvtId } from '@iommulab/hw-smmuv3/codec';
import { afterEach, describe, expect, it } from 'vitest';
import { IOMMUFD_ACCESS_RW_WRITE } from '../src/access.js';
import {
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_PGFAULT_BYTES,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
} from '../src/uapi/constants.js';
import { U64_MAX } from '../src/uapi/u64.js';
import { Memfd } from '../src/user-memory/memfd.js';
import { BUFFER_SIZE, expectErrno, FIXED, MOCK_APERTURE_START, MOCK_PAGE_SIZE, openSelf, PAGE_SIZE, RW } from './fixture.js';
import { HW_MOCK } from './mock-fixture.js';
import {
  allocNested,
  bytesDwords,
  dmaRead,
  dmaWrite,
  drainEvents,
  GVA,
  HostCmdRecorder,
  HW_SMMUV3,
  openSmmuSelf,
  openVm,
  SMMU_MSI_IOVA_BASE,
  SMMU_MSI_IOVA_LENGTH,
  smmuDma,
  teardownSmmu,
  writeGuestCd,
  type SmmuSelf,
} from './smmuv3-fixture.js';

interface Backend {
  name: string;
  url: string;
  /** A usable IOVA (in every domain's aperture, clear of reserved regions). */
  base: number;
  /** Smallest IO page. */
  ioPage: number;
  /** PASID width of the PASID-capable device used here. */
  pasidBits: number;
  /** `DmaResult.fault` of a DMA to an IOVA nothing maps. */
  unmapped: number;
  /** `DmaResult.fault` of a DMA from a detached (blocked) device. */
  blocked: number;
  /** `DmaResult.fault` of a write to a read-only mapping. */
  readOnly: number;
}

const BACKENDS: Backend[] = [
  {
    name: 'hw-mock',
    url: HW_MOCK,
    base: MOCK_APERTURE_START,
    ioPage: MOCK_PAGE_SIZE,
    pasidBits: 20,
    unmapped: FaultReason.TRANSLATION,
    blocked: FaultReason.BLOCKED,
    readOnly: FaultReason.PERMISSION,
  },
  {
    name: 'arm-smmuv3',
    url: HW_SMMUV3,
    base: 0x100_0000, // below the MSI window at 0x800_0000
    ioPage: PAGE_SIZE,
    pasidBits: 8,
    unmapped: FaultReason.TRANSLATION,
    blocked: FaultReason.BLOCKED,
    readOnly: FaultReason.PERMISSION,
  },
];

const P = PAGE_SIZE;

/** A process, its iommufd and one backend instance over the same PhysMem. */
async function open(b: Backend, mode: InstanceMode = 'in-thread'): Promise<SmmuSelf> {
  const self = openSelf(64 * 1024 * 1024);
  const stack = await openBackend(b.url, { mode, mem: self.mem, timeoutMs: 10_000 });
  return { ...self, stack, memfds: [] };
}

async function bind(self: SmmuSelf, spec: DeviceSpec): Promise<number> {
  return (await self.fd.deviceBind({ stack: self.stack, spec })).outDevId;
}

/** A byte pattern for page `i` of the shared buffer. */
function pattern(i: number): Uint8Array {
  return new Uint8Array(P).map((_, j) => (i * 31 + j * 7) & 0xff);
}

function fillBuffer(self: SmmuSelf): void {
  for (let i = 0; i < BUFFER_SIZE / P; i++) self.proc.write(self.buffer + i * P, pattern(i));
}

describe.each(BACKENDS)('scenarios on $name (in-thread)', (b) => {
  let self: SmmuSelf;
  afterEach(async () => {
    // fail-free teardown: the iommufd closes with whatever is left, no page stays pinned, and once
    // the backend is shut down and the process exits every PhysMem frame is free again
    await teardownSmmu(self);
  });

  it('IOAS map / unmap with DMA through the device: PA and bytes of every page; read-only areas; unmap faults', async () => {
    self = await open(b);
    fillBuffer(self);
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const devId = await bind(self, { rid: 1 });
    await self.fd.deviceAttach({ devId, ptId: ioasId });
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer, length: 8 * P, iova: b.base });
    const auto = (await self.fd.ioasMap({ flags: RW, ioasId, userVa: self.buffer + 8 * P, length: 4 * P })).iova;
    const ro = (await self.fd.ioasMap({ flags: IOMMU_IOAS_MAP_READABLE, ioasId, userVa: self.buffer + 12 * P, length: P })).iova;
    for (let i = 0; i < 8; i++) {
      const r = await smmuDma(self, 1, b.base + i * P + 0x30, ACCESS_READ);
      expect(r).toMatchObject({ ok: true, pa: self.proc.translate(self.buffer + i * P) + 0x30 });
      expect(await dmaRead(self, 1, b.base + i * P, P)).toEqual(pattern(i));
    }
    for (let i = 0; i < 4; i++) expect(await dmaRead(self, 1, Number(auto) + i * P, P)).toEqual(pattern(8 + i));
    // a device write is seen by the process
    expect(await dmaWrite(self, 1, Number(auto) + P + 100, new Uint8Array([1, 2, 3]))).toBe(true);
    expect([...self.proc.read(self.buffer + 9 * P + 100, 3)]).toEqual([1, 2, 3]);
    // read-only area: reads work, writes fault
    expect(await dmaRead(self, 1, Number(ro), 16)).toEqual(pattern(12).subarray(0, 16));
    expect(await smmuDma(self, 1, ro, ACCESS_WRITE)).toMatchObject({ ok: false, fault: b.readOnly });
    // unmap: the whole area, bytes returned; the device then faults
    expect((await self.fd.ioasUnmap({ ioasId, iova: b.base, length: 8 * P })).length).toBe(BigInt(8 * P));
    for (let i = 0; i < 8; i++) expect(await smmuDma(self, 1, b.base + i * P, ACCESS_READ)).toMatchObject({ ok: false, fault: b.unmapped });
    await expectErrno('ENOENT', self.fd.ioasUnmap({ ioasId, iova: b.base, length: 8 * P }));
    expect((await smmuDma(self, 1, auto, ACCESS_READ)).ok).toBe(true);
  });

  it('IOAS_COPY: the copy maps the same pages in another IOAS (another device sees them), and outlives the source', async () => {
    self = await open(b);
    fillBuffer(self);
    const src = (await self.fd.ioasAlloc()).outIoasId;
    const dst = (await self.fd.ioasAlloc()).outIoasId;
    const d1 = await bind(self, { rid: 1 });
    const d2 = await bind(self, { rid: 2 });
    await self.fd.deviceAttach({ devId: d1, ptId: src });
    await self.fd.deviceAttach({ devId: d2, ptId: dst });
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId: src, userVa: self.buffer, length: 4 * P, iova: b.base });
    const dstIova = b.base + 64 * P;
    await self.fd.ioasCopy({ flags: FIXED | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE, dstIoasId: dst, srcIoasId: src, length: 4 * P, srcIova: b.base, dstIova });
    for (let i = 0; i < 4; i++) {
      const a = await smmuDma(self, 1, b.base + i * P + 8);
      const c = await smmuDma(self, 2, dstIova + i * P + 8);
      expect(c).toMatchObject({ ok: true, pa: a.pa });
    }
    await self.fd.ioasUnmap({ ioasId: src, iova: 0, length: U64_MAX });
    expect((await smmuDma(self, 1, b.base)).ok).toBe(false);
    expect(await dmaRead(self, 2, dstIova + 2 * P, P)).toEqual(pattern(2));
    // the copy source must be mapped
    await expectErrno('ENOENT', self.fd.ioasCopy({ flags: FIXED | IOMMU_IOAS_MAP_READABLE, dstIoasId: dst, srcIoasId: src, length: P, srcIova: b.base, dstIova: b.base }));
  });

  it('unmap after the IOTLB sync: pages the device just used fault at once, their neighbours still translate', async () => {
    self = await open(b);
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const devId = await bind(self, { rid: 3 });
    await self.fd.deviceAttach({ devId, ptId: ioasId });
    for (let i = 0; i < 4; i++) await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer + i * P, length: P, iova: b.base + i * P });
    // warm the IOTLB with reads and writes
    for (let round = 0; round < 2; round++) for (let i = 0; i < 4; i++) expect((await smmuDma(self, 3, b.base + i * P, ACCESS_READ | ACCESS_WRITE)).ok).toBe(true);
    await self.fd.ioasUnmap({ ioasId, iova: b.base + P, length: P });
    await self.fd.ioasUnmap({ ioasId, iova: b.base + 2 * P, length: P });
    const ok = [];
    for (let i = 0; i < 4; i++) ok.push((await smmuDma(self, 3, b.base + i * P + b.ioPage - 4, ACCESS_READ)).ok);
    expect(ok).toEqual([true, false, false, true]);
    await self.fd.ioasUnmap({ ioasId, iova: 0, length: U64_MAX });
    for (let i = 0; i < 4; i++) expect(await smmuDma(self, 3, b.base + i * P, ACCESS_READ)).toMatchObject({ ok: false, fault: b.unmapped });
  });

  it('attach / replace / detach: the device follows its HWPT; EBUSY / EINVAL rules; blocked after detach', async () => {
    self = await open(b);
    fillBuffer(self);
    const a = (await self.fd.ioasAlloc()).outIoasId;
    const c = (await self.fd.ioasAlloc()).outIoasId;
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId: a, userVa: self.buffer, length: P, iova: b.base });
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId: c, userVa: self.buffer + 5 * P, length: P, iova: b.base });
    const devId = await bind(self, { rid: 4 });
    const ha = (await self.fd.hwptAlloc({ devId, ptId: a })).outHwptId;
    const hc = (await self.fd.hwptAlloc({ devId, ptId: c })).outHwptId;
    await expectErrno('EINVAL', self.fd.deviceReplace({ devId, ptId: ha })); // nothing attached yet
    expect((await self.fd.deviceAttach({ devId, ptId: ha })).ptId).toBe(ha);
    await expectErrno('EBUSY', self.fd.deviceAttach({ devId, ptId: hc }));
    expect(await dmaRead(self, 4, b.base, 64)).toEqual(pattern(0).subarray(0, 64));
    await self.fd.deviceReplace({ devId, ptId: hc });
    expect(await dmaRead(self, 4, b.base, 64)).toEqual(pattern(5).subarray(0, 64));
    await expectErrno('EBUSY', self.fd.destroy({ id: hc }));
    // replace onto the IOAS: an auto HWPT (the manual `ha` of that IOAS is never picked)
    const auto = (await self.fd.deviceReplace({ devId, ptId: a })).ptId;
    expect([ha, hc]).not.toContain(auto);
    await self.fd.destroy({ id: ha }); // nobody uses it
    expect(await dmaRead(self, 4, b.base, 64)).toEqual(pattern(0).subarray(0, 64));
    await self.fd.deviceDetach({ devId });
    expect(await smmuDma(self, 4, b.base, ACCESS_READ)).toMatchObject({ ok: false, fault: b.blocked });
    await expectErrno('ENOENT', self.fd.destroy({ id: auto })); // the auto HWPT went with its last device
    await self.fd.deviceDetach({ devId }); // detaching a detached device is fine
    await self.fd.destroy({ id: hc });
  });

  it('auto domain: the devices of one IOAS share its auto HWPT; it lives until its last device leaves', async () => {
    self = await open(b);
    fillBuffer(self);
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer + 2 * P, length: 2 * P, iova: b.base });
    const d1 = await bind(self, { rid: 5 });
    const d2 = await bind(self, { rid: 6 });
    const h1 = (await self.fd.deviceAttach({ devId: d1, ptId: ioasId })).ptId;
    const h2 = (await self.fd.deviceAttach({ devId: d2, ptId: ioasId })).ptId;
    expect(h2).toBe(h1);
    expect((await smmuDma(self, 5, b.base + P)).pa).toBe((await smmuDma(self, 6, b.base + P)).pa);
    await expectErrno('EBUSY', self.fd.destroy({ id: h1 }));
    await expectErrno('EBUSY', self.fd.destroy({ id: ioasId }));
    await self.fd.deviceDetach({ devId: d1 });
    await expectErrno('EBUSY', self.fd.destroy({ id: h1 }));
    expect(await dmaRead(self, 6, b.base + P, 32)).toEqual(pattern(3).subarray(0, 32));
    await self.fd.deviceDetach({ devId: d2 });
    await expectErrno('ENOENT', self.fd.destroy({ id: h1 }));
    await self.fd.destroy({ id: ioasId });
  });

  it('PASID attach with PASID-capable (IOMMU_HWPT_ALLOC_PASID) HWPTs: PASID DMA uses its HWPT, the RID its own', async () => {
    self = await open(b);
    fillBuffer(self);
    const a = (await self.fd.ioasAlloc()).outIoasId;
    const c = (await self.fd.ioasAlloc()).outIoasId;
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId: a, userVa: self.buffer + P, length: P, iova: b.base });
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId: c, userVa: self.buffer + 7 * P, length: P, iova: b.base });
    const devId = await bind(self, { rid: 7, pasidBits: b.pasidBits });
    const plainDev = await bind(self, { rid: 8 });
    expect((await self.fd.getHwInfo({ devId })).outMaxPasidLog2).toBe(b.pasidBits);
    const ridHwpt = (await self.fd.hwptAlloc({ devId, ptId: a, flags: IOMMU_HWPT_ALLOC_PASID })).outHwptId;
    const pasHwpt = (await self.fd.hwptAlloc({ devId, ptId: c, flags: IOMMU_HWPT_ALLOC_PASID })).outHwptId;
    const noPasid = (await self.fd.hwptAlloc({ devId, ptId: c })).outHwptId;
    await self.fd.deviceAttach({ devId, ptId: ridHwpt });
    await expectErrno('EINVAL', self.fd.deviceAttach({ devId, ptId: noPasid, pasid: 5 }));
    await expectErrno('EINVAL', self.fd.deviceAttach({ devId, ptId: c, pasid: 5 })); // an IOAS is not a PASID target
    await self.fd.deviceAttach({ devId, ptId: pasHwpt, pasid: 5 });
    await expectErrno('EBUSY', self.fd.deviceAttach({ devId, ptId: pasHwpt, pasid: 5 }));
    expect(await dmaRead(self, 7, b.base, 64, 5)).toEqual(pattern(7).subarray(0, 64));
    expect(await dmaRead(self, 7, b.base, 64)).toEqual(pattern(1).subarray(0, 64));
    expect((await smmuDma(self, 7, b.base, ACCESS_READ, 6)).ok).toBe(false); // PASID 6 is not attached
    // while a PASID is attached the RID must stay on a PASID-compatible HWPT
    await expectErrno('EINVAL', self.fd.deviceReplace({ devId, ptId: noPasid }));
    // replace the PASID onto the RID's HWPT
    await self.fd.deviceReplace({ devId, ptId: ridHwpt, pasid: 5 });
    expect(await dmaRead(self, 7, b.base, 64, 5)).toEqual(pattern(1).subarray(0, 64));
    await self.fd.deviceDetach({ devId, pasid: 5 });
    expect((await smmuDma(self, 7, b.base, ACCESS_READ, 5)).ok).toBe(false);
    await self.fd.deviceDetach({ devId, pasid: 5 }); // detaching an unattached PASID is a no-op
    // a device without PASID: any PASID attach is EINVAL, but it may use a PASID HWPT on its RID
    await expectErrno('EINVAL', self.fd.deviceAttach({ devId: plainDev, ptId: pasHwpt, pasid: 5 }));
    await self.fd.deviceAttach({ devId: plainDev, ptId: pasHwpt });
    expect(await dmaRead(self, 8, b.base, 16)).toEqual(pattern(7).subarray(0, 16));
  });

  it('an ACCESS pins the pages the device translates to and copies bytes the device then reads; unmap asks it to unpin', async () => {
    self = await open(b);
    fillBuffer(self);
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const devId = await bind(self, { rid: 9 });
    await self.fd.deviceAttach({ devId, ptId: ioasId });
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer, length: 4 * P, iova: b.base });
    let pinned: { iova: number; length: number } | null = null;
    const calls: bigint[][] = [];
    const { accessId } = await self.fd.accessCreate({
      ioasId,
      ops: {
        needsPinPages: true,
        unmap: async (iova, length) => {
          calls.push([iova, length]);
          if (pinned !== null) await self.fd.accessUnpin({ accessId, ...pinned });
          pinned = null;
        },
      },
    });
    const { pages } = await self.fd.accessPin({ accessId, iova: b.base + P, length: 2 * P, flags: IOMMUFD_ACCESS_RW_WRITE });
    pinned = { iova: b.base + P, length: 2 * P };
    for (let i = 0; i < 2; i++) expect(pages[i]).toBe((await smmuDma(self, 9, b.base + (i + 1) * P)).pa);
    // the emulated device writes through the ACCESS, the real one reads it back, and vice versa
    await self.fd.accessRw({ accessId, iova: b.base + 2 * P - 2, data: new Uint8Array([0xa1, 0xa2, 0xa3, 0xa4]), flags: IOMMUFD_ACCESS_RW_WRITE });
    expect([...((await dmaRead(self, 9, b.base + 2 * P - 2, 4)) ?? [])]).toEqual([0xa1, 0xa2, 0xa3, 0xa4]);
    expect(await dmaWrite(self, 9, b.base + 3 * P + 5, new Uint8Array([0x5a, 0x5b]))).toBe(true);
    const back = new Uint8Array(2);
    await self.fd.accessRw({ accessId, iova: b.base + 3 * P + 5, data: back });
    expect([...back]).toEqual([0x5a, 0x5b]);
    // unmap: the owner is told and unpins; then the device faults
    await self.fd.ioasUnmap({ ioasId, iova: b.base, length: 4 * P });
    expect(calls).toEqual([[BigInt(b.base), BigInt(4 * P)]]);
    expect((await smmuDma(self, 9, b.base + P)).ok).toBe(false);
    await self.fd.accessDestroy({ accessId });
  });

  it('IOMMU_FAULT_QUEUE_ALLOC and an IOPF-capable HWPT: the device DMAs through it; the FAULT is busy while used', async () => {
    self = await open(b);
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer, length: 2 * P, iova: b.base });
    // A PRI-capable function: the SMMUv3 takes I/O page faults only from PRI or stall masters.
    const devId = await bind(self, { rid: 10, ats: true, pri: true });
    const { outFaultId: faultId, outFaultFd: faultFd, file } = await self.fd.faultQueueAlloc();
    await expectErrno('EOPNOTSUPP', self.fd.faultQueueAlloc({ flags: 1 }));
    await expectErrno('ENOENT', self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId: 0xffff_ffff }));
    const iopf = (await self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId })).outHwptId;
    await self.fd.deviceAttach({ devId, ptId: iopf });
    expect((await smmuDma(self, 10, b.base + P)).pa).toBe(self.proc.translate(self.buffer + P));
    await expectErrno('EBUSY', self.fd.destroy({ id: faultId }));
    expect(file.read(40).length).toBe(0); // nothing faulted
    await self.fd.deviceDetach({ devId });
    await self.fd.destroy({ id: iopf });
    self.fd.files.close(faultFd);
    await self.fd.destroy({ id: faultId });
  });

  it('IOAS_CHANGE_PROCESS: a MAP_FILE mapping moves its accounting to a forked child; the device keeps reading the memfd page', async () => {
    self = await open(b);
    self.proc.capIpcLock = false;
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const devId = await bind(self, { rid: 11 });
    await self.fd.deviceAttach({ devId, ptId: ioasId });
    const mfd = Memfd.create(self.mem, 4 * P);
    self.memfds.push(mfd);
    mfd.write(P, new Uint8Array(P).fill(0x3c));
    const { iova } = await self.fd.ioasMapFile({ flags: RW, ioasId, fd: mfd, start: P, length: P });
    const parent = self.proc;
    expect(parent.vmPinned).toBe(1);
    const child = parent.fork();
    self.fd.setCurrentProcess(child);
    await self.fd.ioasChangeProcess();
    expect([parent.vmPinned, child.vmPinned]).toEqual([0, 1]);
    const r = await smmuDma(self, 11, Number(iova) + 0x10);
    expect(r.ok).toBe(true);
    expect(self.mem.u8[r.pa]).toBe(0x3c);
    // with a plain (non-file) map present CHANGE_PROCESS is EINVAL
    await self.fd.ioasMap({ flags: RW, ioasId, userVa: self.buffer, length: P });
    await expectErrno('EINVAL', self.fd.ioasChangeProcess());
    self.fd.setCurrentProcess(parent);
    await self.fd.close();
    child.exit();
  });

  it('teardown without cleanup: close(iommufd) with devices attached, HWPTs, accesses, faults and mappings left', async () => {
    self = await open(b);
    const i1 = (await self.fd.ioasAlloc()).outIoasId;
    const i2 = (await self.fd.ioasAlloc()).outIoasId;
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId: i1, userVa: self.buffer, length: BUFFER_SIZE, iova: b.base });
    await self.fd.ioasCopy({ flags: FIXED | IOMMU_IOAS_MAP_READABLE, dstIoasId: i2, srcIoasId: i1, length: 4 * P, srcIova: b.base, dstIova: b.base });
    const devs = [];
    for (let i = 0; i < 3; i++) devs.push(await bind(self, { rid: 20 + i, pasidBits: i === 2 ? b.pasidBits : 0 }));
    await self.fd.deviceAttach({ devId: devs[0], ptId: i1 });
    const h = (await self.fd.hwptAlloc({ devId: devs[1], ptId: i2 })).outHwptId;
    await self.fd.deviceAttach({ devId: devs[1], ptId: h });
    const hp = (await self.fd.hwptAlloc({ devId: devs[2], ptId: i1, flags: IOMMU_HWPT_ALLOC_PASID })).outHwptId;
    await self.fd.deviceAttach({ devId: devs[2], ptId: hp });
    await self.fd.deviceAttach({ devId: devs[2], ptId: hp, pasid: 3 });
    const { accessId } = await self.fd.accessCreate({ ioasId: i2, ops: { needsPinPages: true, unmap: () => {} } });
    await self.fd.accessPin({ accessId, iova: b.base, length: P });
    await self.fd.faultQueueAlloc();
    for (const rid of [20, 21, 22]) expect((await smmuDma(self, rid, b.base)).ok).toBe(true);
    expect(self.mem.allocatedFrameCount).toBeGreaterThan(0);
    // afterEach: close, no pins, stack shutdown, exit → 0 frames
  });
});

describe.each(BACKENDS)('scenarios on $name with the hardware in its worker', (b) => {
  let self: SmmuSelf;
  afterEach(async () => {
    await teardownSmmu(self);
  });

  it('map / DMA bytes / replace / unmap / detach', async () => {
    self = await open(b, 'worker');
    expect(self.stack.host.mode).toBe('worker');
    fillBuffer(self);
    const a = (await self.fd.ioasAlloc()).outIoasId;
    const c = (await self.fd.ioasAlloc()).outIoasId;
    const devId = await bind(self, { rid: 2 });
    await self.fd.deviceAttach({ devId, ptId: a });
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId: a, userVa: self.buffer, length: 8 * P, iova: b.base });
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId: c, userVa: self.buffer + 8 * P, length: 8 * P, iova: b.base });
    for (let i = 0; i < 8; i++) expect(await dmaRead(self, 2, b.base + i * P, P)).toEqual(pattern(i));
    expect(await dmaWrite(self, 2, b.base + 3 * P + 9, new Uint8Array([7, 7, 7]))).toBe(true);
    expect([...self.proc.read(self.buffer + 3 * P + 9, 3)]).toEqual([7, 7, 7]);
    await self.fd.deviceReplace({ devId, ptId: c });
    for (let i = 0; i < 8; i++) expect(await dmaRead(self, 2, b.base + i * P, 64)).toEqual(pattern(8 + i).subarray(0, 64));
    await self.fd.ioasUnmap({ ioasId: c, iova: b.base, length: 8 * P });
    expect(await smmuDma(self, 2, b.base, ACCESS_READ)).toMatchObject({ ok: false, fault: b.unmapped });
    await self.fd.deviceDetach({ devId });
    expect(await smmuDma(self, 2, b.base, ACCESS_READ)).toMatchObject({ ok: false, fault: b.blocked });
  });
});

describe('SMMUv3: the IOAS after an attach (reserved MSI window, stage-1 aperture, alignment)', () => {
  let self: SmmuSelf;
  afterEach(async () => {
    await teardownSmmu(self);
  });

  it('IOAS_IOVA_RANGES: the software MSI window [0x800_0000, +1 MiB) is reserved, the aperture is 48 bits; 4 KiB alignment', async () => {
    self = await openSmmuSelf();
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const devId = await bind(self, { rid: 1 });
    await self.fd.deviceAttach({ devId, ptId: ioasId });
    const r = await self.fd.ioasIovaRanges({ ioasId, numIovas: 4 });
    expect(r.allowedIovas).toEqual([
      { start: 0n, last: BigInt(SMMU_MSI_IOVA_BASE - 1) },
      { start: BigInt(SMMU_MSI_IOVA_BASE + SMMU_MSI_IOVA_LENGTH), last: (1n << 48n) - 1n },
    ]);
    expect(r.outIovaAlignment).toBe(BigInt(P));
    // a FIXED map over a reserved range (the MSI window, beyond the aperture): iopt_check_iova's EINVAL
    await expectErrno('EINVAL', self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer, length: P, iova: SMMU_MSI_IOVA_BASE + 16 * P }));
    await expectErrno('EINVAL', self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer, length: P, iova: 2 ** 48 }));
    // an area already there when a device arrives: its MSI window cannot be reserved (EADDRINUSE)
    const other = (await self.fd.ioasAlloc()).outIoasId;
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId: other, userVa: self.buffer, length: P, iova: SMMU_MSI_IOVA_BASE });
    const dev2 = await bind(self, { rid: 2 });
    await expectErrno('EADDRINUSE', self.fd.deviceAttach({ devId: dev2, ptId: other }));
    // the top page of the aperture works
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer + P, length: P, iova: 2 ** 48 - P });
    expect((await smmuDma(self, 1, 2 ** 48 - P + 8)).pa).toBe(self.proc.translate(self.buffer + P) + 8);
    // the window leaves with the device
    await self.fd.deviceDetach({ devId });
    expect((await self.fd.ioasIovaRanges({ ioasId, numIovas: 4 })).allowedIovas).toEqual([{ start: 0n, last: (1n << 64n) - 1n }]);
  });
});

describe('SMMUv3: I/O page faults of a stall-capable device (IOPF through the FAULT fd)', () => {
  let self: SmmuSelf;
  afterEach(async () => {
    await teardownSmmu(self);
  });

  it('a stalled DMA becomes an iommu_hwpt_pgfault; SUCCESS resumes it with CMD_RESUME(RETRY), INVALID with CMD_RESUME(ABORT)', async () => {
    // firmware marks StreamID 0x40 as able to stall ("dma-can-stall"): the driver sets CD.S
    self = await openSmmuSelf({ options: { stallRids: [0x40] } });
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const devId = await bind(self, { rid: 0x40 });
    const { outFaultId: faultId, file } = await self.fd.faultQueueAlloc();
    const iopf = (await self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId })).outHwptId;
    await self.fd.deviceAttach({ devId, ptId: iopf });
    const rec = new HostCmdRecorder(self);
    const iova = 0x20_0000;
    // the device touches an unmapped page: the transaction stalls (the device waits)
    expect(await smmuDma(self, 0x40, iova + 0x10, ACCESS_READ)).toMatchObject({ ok: false, fault: FaultReason.PAGE_REQUEST, faultDetail: EvtId.F_TRANSLATION });
    await drainEvents(self);
    const pg = file.read(IOMMU_HWPT_PGFAULT_BYTES);
    expect(pg.length).toBe(IOMMU_HWPT_PGFAULT_BYTES);
    const dv = new DataView(pg.buffer, pg.byteOffset, pg.byteLength);
    // struct iommu_hwpt_pgfault: flags, dev_id, pasid, grpid (the STAG), perm, __reserved, addr, length, cookie
    expect([0, 4, 8, 12, 16, 20].map((o) => dv.getUint32(o, true))).toEqual([IOMMU_PGFAULT_FLAGS_LAST_PAGE, devId, 0, 0, IOMMU_PGFAULT_PERM_READ, 0]);
    expect(dv.getBigUint64(24, true)).toBe(BigInt(iova + 0x10));
    expect(dv.getUint32(32, true)).toBe(0);
    const cookie = dv.getUint32(36, true);
    expect(cookie).toBe(1);
    // the VMM maps the page and answers SUCCESS: CMD_RESUME(SID, STAG 0, RETRY), no CMD_SYNC after it
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer + P, length: P, iova });
    rec.take();
    const resp = new Uint8Array(8);
    new DataView(resp.buffer).setUint32(0, cookie, true);
    new DataView(resp.buffer).setUint32(4, IOMMUFD_PAGE_RESP_SUCCESS, true);
    expect(file.write(resp)).toBe(8);
    await (self.fd.ctx.objects.get(faultId) as unknown as { flush(): Promise<void> }).flush();
    expect(rec.take()).toEqual([[CmdOp.RESUME | (1 << 12), 0x40, 0, 0]]);
    // the device retries
    expect(await smmuDma(self, 0x40, iova + 0x10, ACCESS_READ)).toMatchObject({ ok: true, pa: self.proc.translate(self.buffer + P) + 0x10 });
    // another stall, answered INVALID: CMD_RESUME(ABORT)
    expect((await smmuDma(self, 0x40, iova + 8 * P, ACCESS_WRITE)).fault).toBe(FaultReason.PAGE_REQUEST);
    await drainEvents(self);
    const pg2 = file.read(IOMMU_HWPT_PGFAULT_BYTES);
    const dv2 = new DataView(pg2.buffer, pg2.byteOffset, pg2.byteLength);
    expect([dv2.getUint32(12, true), dv2.getUint32(16, true)]).toEqual([1, IOMMU_PGFAULT_PERM_WRITE]); // STAG 1, write
    new DataView(resp.buffer).setUint32(0, dv2.getUint32(36, true), true);
    new DataView(resp.buffer).setUint32(4, IOMMUFD_PAGE_RESP_INVALID, true);
    expect(file.write(resp)).toBe(8);
    await (self.fd.ctx.objects.get(faultId) as unknown as { flush(): Promise<void> }).flush();
    expect(rec.take()).toEqual([[CmdOp.RESUME | (2 << 12), 0x40, 1, 0]]);
    expect((self.stack.driver as unknown as { stats(): Record<string, number> }).stats().pendingStalls).toBe(0);
    rec.close();
  });
});

describe('SMMUv3 nesting with the hardware in its worker', () => {
  let self: SmmuSelf;
  afterEach(async () => {
    await teardownSmmu(self);
  });

  it('guest stage 1 over stage 2, a guest TLBI through the vIOMMU, a vEVENTQ record with the virtual SID', async () => {
    self = await open(BACKENDS[1], 'worker');
    const vm = await openVm(self, { rid: 0x30, vsid: 0x77 });
    const page = vm.ram.allocPage();
    vm.ram.write(page, new Uint8Array([9, 8, 7, 6]));
    vm.s1.map(GVA, page);
    writeGuestCd(vm, { asid: 3 });
    const q = await self.fd.veventqAlloc({ viommuId: vm.viommuId, type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, veventqDepth: 8 });
    await self.fd.deviceAttach({ devId: vm.devId, ptId: await allocNested(self, vm) });
    expect([...((await dmaRead(self, vm.rid, GVA, 4)) ?? [])]).toEqual([9, 8, 7, 6]);
    vm.s1.unmap(GVA);
    expect((await smmuDma(self, vm.rid, GVA)).ok).toBe(true); // cached until the guest's TLBI
    const cmd = new Uint8Array(16);
    new DataView(cmd.buffer).setUint32(0, CmdOp.TLBI_NSNH_ALL, true);
    expect(await self.fd.hwptInvalidate({ hwptId: vm.viommuId, dataType: IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, entryLen: 16, entryNum: 1, data: cmd })).toEqual({
      entryNum: 1,
    });
    expect(await smmuDma(self, vm.rid, GVA + 0x20)).toMatchObject({ ok: false, fault: FaultReason.TRANSLATION, faultDetail: EvtId.F_TRANSLATION });
    await drainEvents(self);
    const rec = q.file.read(40);
    expect(rec.length).toBe(40);
    const evt = bytesDwords(rec.subarray(8));
    expect(evt[0]).toBe((0x77n << 32n) | BigInt(EvtId.F_TRANSLATION));
    expect(evt[2]).toBe(BigInt(GVA + 0x20));
  });
});
