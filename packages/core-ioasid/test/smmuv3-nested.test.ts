/**
 * SMMUv3 nesting through /dev/iommu (smmuv3.md §8, §9.3; iommufd.md §2.7, §2.10, §2.11): a
 * NEST_PARENT HWPT is a stage-2 domain; IOMMU_VIOMMU_ALLOC type ARM_SMMUV3 (1) over it; vDEVICEs
 * give virtual StreamIDs; nested HWPTs are allocated on the vIOMMU from
 * `struct iommu_hwpt_arm_smmuv3 { __le64 ste[2]; }` (IOMMU_HWPT_DATA_ARM_SMMUV3 = 2) and checked
 * like `arm_smmu_validate_vste` (allowed fields only, Config 0/4/5, EATS 0/1, else EIO; V = 0 →
 * abort). The guest's CD and stage-1 tables live in guest RAM (user memory mapped in the IOAS;
 * IPA = IOVA) and are written by hand with IPAs; DMA walks them through the host's stage 2.
 */
import { ACCESS_READ, ACCESS_WRITE, FaultReason } from '@iommulab/driver-api';
import { EvtId } from '@iommulab/hw-smmuv3/codec';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_DEFAULT,
  IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
} from '../src/uapi/constants.js';
import { expectErrno, FIXED, PAGE_SIZE, RW } from './fixture.js';
import {
  allocNested,
  bindSmmuDevice,
  dmaRead,
  dmaWrite,
  dwordBytes,
  GUEST_IPA_BASE,
  GVA,
  openSmmuSelf,
  openVm,
  smmuDma,
  steConfig,
  steDwords,
  teardownSmmu,
  vste,
  writeGuestCd,
  type SmmuSelf,
  type Vm,
} from './smmuv3-fixture.js';

/** STE.Config encodings (smmuv3.md §2.2). */
const CFG = { ABORT: 0, BYPASS: 4, S1: 5, S2: 6, NESTED: 7 } as const;
/** STE dword1 bits the kernel adds (§2.1): MEV [19], S2FWB [25]; EATS [29:28]. */
const MEV = 1n << 19n;
const S2FWB = 1n << 25n;
const EATS_TRANS = 1n << 28n;

describe('IOMMU_HWPT_ALLOC_NEST_PARENT on an SMMUv3', () => {
  let self: SmmuSelf;
  beforeEach(async () => {
    self = await openSmmuSelf();
  });
  afterEach(async () => {
    await teardownSmmu(self);
  });

  it('is a stage-2 domain: the device gets an S2 STE (Config 0b110, S2VMID); a plain HWPT is stage 1 (Config 0b101)', async () => {
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const devId = await bindSmmuDevice(self, { rid: 0x21 });
    const iova = 0x20_0000;
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer, length: 4 * PAGE_SIZE, iova });
    const plain = (await self.fd.hwptAlloc({ devId, ptId: ioasId })).outHwptId;
    const parent = (await self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).outHwptId;
    await self.fd.deviceAttach({ devId, ptId: plain });
    expect(steConfig(steDwords(self, 0x21))).toBe(CFG.S1);
    await self.fd.deviceReplace({ devId, ptId: parent });
    const ste = steDwords(self, 0x21);
    expect(steConfig(ste)).toBe(CFG.S2);
    expect(ste[0]).toBe(0x1n | (BigInt(CFG.S2) << 1n)); // V | Config, nothing else in dword0
    const vmid = (self.fd.ctx.objects.get(parent) as unknown as { pagingDomain: { vmid: number } }).pagingDomain.vmid;
    expect(Number(ste[2] & 0xffffn)).toBe(vmid); // S2VMID
    expect(ste[1] & S2FWB).toBe(S2FWB); // a nest parent on an SMMU with IDR3.FWB sets S2FWB
    // stage 2 only: IPA = IOVA → the pinned user page
    for (let i = 0; i < 4; i++) {
      const r = await smmuDma(self, 0x21, iova + i * PAGE_SIZE + 0x18, ACCESS_READ);
      expect(r).toMatchObject({ ok: true, pa: self.proc.translate(self.buffer + i * PAGE_SIZE) + 0x18 });
    }
    await self.fd.deviceDetach({ devId });
    expect(steConfig(steDwords(self, 0x21))).toBe(CFG.ABORT);
  });

  it('flag combinations: NEST_PARENT with DIRTY_TRACKING / PASID / FAULT_ID_VALID is EOPNOTSUPP; no nested HWPT on the parent itself', async () => {
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const devId = await bindSmmuDevice(self, { rid: 0x21, pasidBits: 8 });
    await expectErrno('EOPNOTSUPP', self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING }));
    await expectErrno('EOPNOTSUPP', self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID }));
    await expectErrno('EOPNOTSUPP', self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_FAULT_ID_VALID }));
    const parent = (await self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).outHwptId;
    // Linux arm_smmu_ops has no domain_alloc_nested: SMMUv3 nested domains come from a vIOMMU only
    const objects = self.fd.ctx.objects.size;
    await expectErrno('EOPNOTSUPP', self.fd.hwptAlloc({ devId, ptId: parent, dataType: IOMMU_HWPT_DATA_ARM_SMMUV3, data: vste({ cdPtr: 0x1000 }) }));
    expect(self.fd.ctx.objects.size).toBe(objects);
  });

  it('an SMMU without S2FWB: NEST_PARENT works, IOMMU_VIOMMU_ALLOC is EOPNOTSUPP (checked before the HWPT)', async () => {
    await teardownSmmu(self);
    self = await openSmmuSelf({ options: { fwb: false } });
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const devId = await bindSmmuDevice(self, { rid: 0x21 });
    const parent = (await self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).outHwptId;
    await self.fd.deviceAttach({ devId, ptId: parent });
    expect(steConfig(steDwords(self, 0x21))).toBe(CFG.S2);
    expect(steDwords(self, 0x21)[1] & S2FWB).toBe(0n);
    await expectErrno('EOPNOTSUPP', self.fd.viommuAlloc({ devId, hwptId: parent, type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3 }));
    await expectErrno('EOPNOTSUPP', self.fd.viommuAlloc({ devId, hwptId: 0xffff, type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3 }));
  });

  it('an SMMU without stage 2 (no nesting: Linux needs S1P && S2P): NEST_PARENT and IOMMU_VIOMMU_ALLOC are EOPNOTSUPP', async () => {
    await teardownSmmu(self);
    self = await openSmmuSelf({ options: { stage2: false } });
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const devId = await bindSmmuDevice(self, { rid: 0x21 });
    await expectErrno('EOPNOTSUPP', self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT }));
    const plain = (await self.fd.hwptAlloc({ devId, ptId: ioasId })).outHwptId;
    await expectErrno('EOPNOTSUPP', self.fd.viommuAlloc({ devId, hwptId: plain, type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3 }));
  });
});

describe('IOMMU_VIOMMU_ALLOC (ARM_SMMUV3) and IOMMU_VDEVICE_ALLOC', () => {
  let self: SmmuSelf;
  beforeEach(async () => {
    self = await openSmmuSelf();
  });
  afterEach(async () => {
    await teardownSmmu(self);
  });

  it('vIOMMU: type and parent checks, references on the parent', async () => {
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const devId = await bindSmmuDevice(self, { rid: 0x30 });
    const parent = (await self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).outHwptId;
    const plain = (await self.fd.hwptAlloc({ devId, ptId: ioasId })).outHwptId;
    await expectErrno('EOPNOTSUPP', self.fd.viommuAlloc({ devId, hwptId: parent, type: IOMMU_VIOMMU_TYPE_DEFAULT }));
    await expectErrno('EOPNOTSUPP', self.fd.viommuAlloc({ devId, hwptId: parent, type: IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV }));
    await expectErrno('EOPNOTSUPP', self.fd.viommuAlloc({ devId, hwptId: parent, type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3, flags: 1 }));
    await expectErrno('EINVAL', self.fd.viommuAlloc({ devId, hwptId: plain, type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3 }));
    await expectErrno('ENOENT', self.fd.viommuAlloc({ devId, hwptId: ioasId, type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3 }));
    await expectErrno('ENOENT', self.fd.viommuAlloc({ devId: ioasId, hwptId: parent, type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3 }));
    const v1 = (await self.fd.viommuAlloc({ devId, hwptId: parent, type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3 })).outViommuId;
    // two vIOMMUs (two VMs' slices) may share one parent
    const v2 = (await self.fd.viommuAlloc({ devId, hwptId: parent, type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3 })).outViommuId;
    await expectErrno('EBUSY', self.fd.destroy({ id: parent }));
    await self.fd.destroy({ id: v1 });
    await expectErrno('EBUSY', self.fd.destroy({ id: parent }));
    await self.fd.destroy({ id: v2 });
    await self.fd.destroy({ id: parent });
  });

  it('vDEVICE: one virtual StreamID per device and per vIOMMU (EEXIST), ids checked (ENOENT / EINVAL), tombstone after unbind', async () => {
    const vm = await openVm(self, { rid: 0x31, vsid: 0x99 });
    const other = await bindSmmuDevice(self, { rid: 0x32 });
    await expectErrno('EEXIST', self.fd.vdeviceAlloc({ viommuId: vm.viommuId, devId: other, virtId: 0x99 })); // vSID taken
    await expectErrno('EEXIST', self.fd.vdeviceAlloc({ viommuId: vm.viommuId, devId: vm.devId, virtId: 0x98 })); // device has one
    await expectErrno('ENOENT', self.fd.vdeviceAlloc({ viommuId: vm.ioasId, devId: other, virtId: 0x77 }));
    await expectErrno('ENOENT', self.fd.vdeviceAlloc({ viommuId: vm.viommuId, devId: vm.ioasId, virtId: 0x77 }));
    await expectErrno('EINVAL', self.fd.vdeviceAlloc({ viommuId: vm.viommuId, devId: other, virtId: 1n << 64n }));
    const v2 = (await self.fd.vdeviceAlloc({ viommuId: vm.viommuId, devId: other, virtId: 0x77 })).outVdeviceId;
    await expectErrno('EBUSY', self.fd.destroy({ id: vm.viommuId }));
    // destroying the vDEVICE frees its vSID
    await self.fd.destroy({ id: vm.vdevId });
    await self.fd.vdeviceAlloc({ viommuId: vm.viommuId, devId: vm.devId, virtId: 0x99 });
    // the device goes first: its vDEVICE becomes a tombstone (DESTROY → ENOENT)
    await self.fd.deviceUnbind({ devId: other });
    await expectErrno('ENOENT', self.fd.destroy({ id: v2 }));
  });
});

describe('nested HWPT from struct iommu_hwpt_arm_smmuv3 (IOMMU_HWPT_DATA_ARM_SMMUV3)', () => {
  let self: SmmuSelf;
  let vm: Vm;
  beforeEach(async () => {
    self = await openSmmuSelf();
    vm = await openVm(self);
  });
  afterEach(async () => {
    await teardownSmmu(self);
  });

  it('vSTE validation (arm_smmu_validate_vste): disallowed bits, Config and EATS → EIO; V = 0 accepted; flags, data type and struct length', async () => {
    const cdPtr = vm.cdIpa;
    const alloc = (data: Uint8Array, dataType = IOMMU_HWPT_DATA_ARM_SMMUV3, flags = 0) => self.fd.hwptAlloc({ devId: vm.devId, ptId: vm.viommuId, dataType, data, flags });
    const before = self.fd.ctx.objects.size;
    // dword0: only V, Config, S1Fmt, S1ContextPtr, S1CDMax; dword1: only S1DSS, S1CIR, S1COR, S1CSH, S1STALLD, EATS
    for (const [extra0, extra1] of [
      [1n << 52n, 0n], // dword0 [58:52] (reserved between S1ContextPtr and S1CDMax)
      [1n << 58n, 0n],
      [0n, 1n << 18n], // PPAR
      [0n, MEV], // MEV: the kernel sets it, the guest may not
      [0n, S2FWB],
      [0n, 1n << 26n], // S1MPAM
      [0n, 1n << 30n], // STRW
      [0n, 1n << 44n], // SHCFG
      [0n, 1n << 48n], // PRIVCFG
      [0n, 1n << 63n],
    ]) {
      await expectErrno('EIO', alloc(vste({ cdPtr, extra0, extra1 })));
    }
    await expectErrno('EIO', alloc(dwordBytes([BigInt(cdPtr) | 0xbn, 0xffff_ffff_ffff_ffffn]))); // every dword1 bit
    // Config: only abort (0), bypass (4) and S1 translate (5)
    for (const config of [1, 2, 3, CFG.S2, CFG.NESTED]) await expectErrno('EIO', alloc(vste({ cdPtr, config })));
    // EATS: 0 or 1 only
    for (const eats of [2, 3]) await expectErrno('EIO', alloc(vste({ cdPtr, eats })));
    expect(self.fd.ctx.objects.size).toBe(before);
    // V = 0: the whole vSTE is zeroed and accepted, whatever else it holds
    const off = await allocNested(self, vm, vste({ v: false, config: CFG.NESTED, cdPtr, extra1: MEV | S2FWB, eats: 3 }));
    // every allowed field set is fine
    const full = await allocNested(self, vm, vste({ cdPtr, s1fmt: 2, s1cdmax: 31, s1dss: 2, dw1: 0xffn | (1n << 27n), eats: 1 }));
    // struct length: short → EINVAL; a longer struct needs a zero tail (E2BIG)
    await expectErrno('EINVAL', alloc(vste({ cdPtr }).subarray(0, 8)));
    await expectErrno('EINVAL', alloc(vste({ cdPtr }).subarray(0, 15)));
    await expectErrno('E2BIG', alloc(new Uint8Array([...vste({ cdPtr }), 0, 0, 0, 1])));
    const longer = (await self.fd.hwptAlloc({ devId: vm.devId, ptId: vm.viommuId, dataType: IOMMU_HWPT_DATA_ARM_SMMUV3, data: new Uint8Array([...vste({ cdPtr }), 0, 0, 0, 0]) })).outHwptId;
    // flags first (EOPNOTSUPP), then iommu_copy_struct_from_user: another data type is EINVAL
    await expectErrno('EINVAL', alloc(vste({ cdPtr }), IOMMU_HWPT_DATA_VTD_S1));
    await expectErrno('EINVAL', alloc(vste({ cdPtr }), 0xdead));
    await expectErrno('EOPNOTSUPP', alloc(vste({ cdPtr }), IOMMU_HWPT_DATA_VTD_S1, IOMMU_HWPT_ALLOC_PASID));
    await expectErrno('EOPNOTSUPP', alloc(vste({ cdPtr }), IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_HWPT_ALLOC_NEST_PARENT));
    await expectErrno('EOPNOTSUPP', alloc(vste({ cdPtr }), IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_HWPT_ALLOC_DIRTY_TRACKING));
    await expectErrno('EOPNOTSUPP', alloc(vste({ cdPtr }), IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_HWPT_ALLOC_PASID));
    await expectErrno('EOPNOTSUPP', self.fd.hwptAlloc({ devId: vm.devId, ptId: vm.viommuId, dataType: 0 }));
    for (const id of [off, full, longer]) await self.fd.destroy({ id });
  });

  it('Config = S1: the physical STE is the parent S2 STE made nested (Config 0b111, the guest CD pointer, MEV); DMA walks the guest tables then stage 2', async () => {
    // The parent's S2 STE, as the device would get it attached to the parent directly
    await self.fd.deviceAttach({ devId: vm.devId, ptId: vm.parentId });
    const s2ste = steDwords(self, vm.rid);
    expect(steConfig(s2ste)).toBe(CFG.S2);
    // guest: CD 0 → stage-1 table mapping GVA + i·4K → data page i (page 2 read-only)
    const data = [vm.ram.allocPage(), vm.ram.allocPage(), vm.ram.allocPage()];
    data.forEach((ipa, i) => {
      vm.s1.map(GVA + i * PAGE_SIZE, ipa, { ro: i === 2 });
      vm.ram.write(ipa, new Uint8Array(PAGE_SIZE).map((_, j) => (j * 7 + i) & 0xff));
    });
    writeGuestCd(vm, { asid: 7 });
    const nested = await allocNested(self, vm);
    await self.fd.deviceReplace({ devId: vm.devId, ptId: nested });
    const ste = steDwords(self, vm.rid);
    expect(ste).toEqual([
      BigInt(vm.cdIpa) | 0x1n | (BigInt(CFG.NESTED) << 1n), // V | Config 0b111 | S1ContextPtr (an IPA); S1Fmt 0, S1CDMax 0
      0xd4n | s2ste[1] | MEV, // the guest's S1CIR/S1COR/S1CSH over the parent's dword1 (S2FWB), plus MEV
      s2ste[2], // S2VMID, VTCR
      s2ste[3], // S2TTB
      0n,
      0n,
      0n,
      0n,
    ]);
    expect(Number(ste[2] & 0xffffn)).toBe(vm.vmid);
    // DMA: bytes and PAs of the guest pages
    for (let i = 0; i < 3; i++) {
      const r = await smmuDma(self, vm.rid, GVA + i * PAGE_SIZE + 0x44, ACCESS_READ);
      expect(r).toMatchObject({ ok: true, pa: vm.ram.paOf(data[i]) + 0x44 });
      expect(await dmaRead(self, vm.rid, GVA + i * PAGE_SIZE, PAGE_SIZE)).toEqual(vm.ram.read(data[i], PAGE_SIZE));
    }
    // a device write lands in guest RAM; the read-only guest page refuses writes (stage-1 F_PERMISSION)
    expect(await dmaWrite(self, vm.rid, GVA + PAGE_SIZE + 0x100, new Uint8Array([0xde, 0xad, 0xbe, 0xef]))).toBe(true);
    expect([...vm.ram.read(data[1] + 0x100, 4)]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    expect(await smmuDma(self, vm.rid, GVA + 2 * PAGE_SIZE, ACCESS_WRITE)).toMatchObject({ ok: false, fault: FaultReason.PERMISSION, faultDetail: EvtId.F_PERMISSION });
    // an unmapped guest VA: stage-1 F_TRANSLATION
    expect(await smmuDma(self, vm.rid, GVA + 3 * PAGE_SIZE, ACCESS_READ)).toMatchObject({ ok: false, fault: FaultReason.TRANSLATION, faultDetail: EvtId.F_TRANSLATION });
    await self.fd.deviceReplace({ devId: vm.devId, ptId: vm.ioasId });
    await self.fd.destroy({ id: nested });
  });

  it('a translating nested HWPT needs the vDEVICE of the device (ENOENT); abort / bypass ones attach without', async () => {
    const other = await bindSmmuDevice(self, { rid: 0x44 });
    writeGuestCd(vm);
    const s1 = await allocNested(self, vm);
    const byp = await allocNested(self, vm, vste({ config: CFG.BYPASS }));
    const abort = await allocNested(self, vm, vste({ config: CFG.ABORT }));
    await expectErrno('ENOENT', self.fd.deviceAttach({ devId: other, ptId: s1 }));
    expect(steConfig(steDwords(self, 0x44))).toBe(CFG.ABORT); // nothing changed
    await self.fd.deviceAttach({ devId: other, ptId: byp });
    expect(steConfig(steDwords(self, 0x44))).toBe(CFG.S2);
    await self.fd.deviceReplace({ devId: other, ptId: abort });
    expect(steConfig(steDwords(self, 0x44))).toBe(CFG.ABORT);
    await expectErrno('ENOENT', self.fd.deviceReplace({ devId: other, ptId: s1 }));
    await self.fd.vdeviceAlloc({ viommuId: vm.viommuId, devId: other, virtId: 0x44 });
    await self.fd.deviceReplace({ devId: other, ptId: s1 });
    expect(steConfig(steDwords(self, 0x44))).toBe(CFG.NESTED);
    await self.fd.deviceDetach({ devId: other });
  });

  it('Config = abort and V = 0 give the abort STE (DMA blocked, no event); Config = bypass gives the parent S2 STE (IPA = IOVA)', async () => {
    const iova = 0x1_0000_0000;
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId: vm.ioasId, userVa: self.buffer, length: 2 * PAGE_SIZE, iova });
    await self.fd.deviceAttach({ devId: vm.devId, ptId: vm.parentId });
    const s2ste = steDwords(self, vm.rid);
    const byp = await allocNested(self, vm, vste({ config: CFG.BYPASS, s1cdmax: 3, cdPtr: 0x1000 }));
    await self.fd.deviceReplace({ devId: vm.devId, ptId: byp });
    expect(steDwords(self, vm.rid)).toEqual(s2ste);
    expect(await smmuDma(self, vm.rid, iova + PAGE_SIZE + 8, ACCESS_READ)).toMatchObject({ ok: true, pa: self.proc.translate(self.buffer + PAGE_SIZE) + 8 });
    for (const data of [vste({ config: CFG.ABORT }), vste({ v: false, cdPtr: vm.cdIpa }), new Uint8Array(16)]) {
      const h = await allocNested(self, vm, data);
      await self.fd.deviceReplace({ devId: vm.devId, ptId: h });
      expect(steDwords(self, vm.rid)).toEqual([1n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]); // V = 1, Config = abort
      expect(await smmuDma(self, vm.rid, iova, ACCESS_READ)).toMatchObject({ ok: false, fault: FaultReason.BLOCKED, faultDetail: 0 });
      await self.fd.deviceReplace({ devId: vm.devId, ptId: byp });
      await self.fd.destroy({ id: h });
    }
    await self.fd.deviceDetach({ devId: vm.devId });
  });

  it('EATS = 1 (S1 only) enables ATS for an ATS-capable device: the kernel sets STE.EATS; stripped otherwise', async () => {
    const atsDev = await bindSmmuDevice(self, { rid: 0x45, ats: true });
    await self.fd.vdeviceAlloc({ viommuId: vm.viommuId, devId: atsDev, virtId: 0x45 });
    writeGuestCd(vm);
    const eats = await allocNested(self, vm, vste({ cdPtr: vm.cdIpa, eats: 1 }));
    const noEats = await allocNested(self, vm, vste({ cdPtr: vm.cdIpa }));
    const bypEats = await allocNested(self, vm, vste({ config: CFG.BYPASS, eats: 1 }));
    await self.fd.deviceAttach({ devId: atsDev, ptId: eats });
    expect(steDwords(self, 0x45)[1] & (3n << 28n)).toBe(EATS_TRANS);
    await self.fd.deviceReplace({ devId: atsDev, ptId: noEats });
    expect(steDwords(self, 0x45)[1] & (3n << 28n)).toBe(0n);
    await self.fd.deviceReplace({ devId: atsDev, ptId: bypEats }); // EATS only counts with Config = S1
    expect(steConfig(steDwords(self, 0x45))).toBe(CFG.S2);
    expect(steDwords(self, 0x45)[1] & (3n << 28n)).toBe(0n);
    // a device without ATS never gets EATS
    await self.fd.deviceAttach({ devId: vm.devId, ptId: eats });
    expect(steConfig(steDwords(self, vm.rid))).toBe(CFG.NESTED);
    expect(steDwords(self, vm.rid)[1] & (3n << 28n)).toBe(0n);
    await self.fd.deviceDetach({ devId: atsDev });
    await self.fd.deviceDetach({ devId: vm.devId });
  });

  it('the host stage 2 still applies: a guest IPA outside the IOAS faults at stage 2; IOAS unmap removes nested translations at once', async () => {
    const data = vm.ram.allocPage();
    vm.s1.map(GVA, data);
    vm.s1.map(GVA + PAGE_SIZE, 0x8000_0000); // an IPA the VMM never mapped
    writeGuestCd(vm);
    const nested = await allocNested(self, vm);
    await self.fd.deviceAttach({ devId: vm.devId, ptId: nested });
    expect(await smmuDma(self, vm.rid, GVA, ACCESS_READ)).toMatchObject({ ok: true, pa: vm.ram.paOf(data) });
    expect(await smmuDma(self, vm.rid, GVA + PAGE_SIZE, ACCESS_READ)).toMatchObject({ ok: false, fault: FaultReason.TRANSLATION, faultDetail: EvtId.F_TRANSLATION });
    // The VMM unmaps all guest RAM: IOMMU_IOAS_UNMAP invalidates stage 2 (TLBI_S2_IPA + TLBI_NH_ALL of the VMID)
    await self.fd.ioasUnmap({ ioasId: vm.ioasId, iova: GUEST_IPA_BASE, length: vm.ram.pages * PAGE_SIZE });
    expect(await smmuDma(self, vm.rid, GVA, ACCESS_READ)).toMatchObject({ ok: false });
    await self.fd.deviceDetach({ devId: vm.devId });
  });

  it('object lifetime: EBUSY while in use; replace between nested HWPTs and back to the IOAS; destroy in order', async () => {
    const a = vm.ram.allocPage();
    const b = vm.ram.allocPage();
    vm.s1.map(GVA, a);
    writeGuestCd(vm, { asid: 1 });
    // a second CD table (CD 0 at another IPA) with its own stage 1
    const cd2 = vm.ram.allocPage();
    const root2 = vm.ram.allocPage();
    const n1 = await allocNested(self, vm);
    await self.fd.deviceAttach({ devId: vm.devId, ptId: n1 });
    expect((await smmuDma(self, vm.rid, GVA)).pa).toBe(vm.ram.paOf(a));
    // guest 2: same GVA → page b, through a CD at cd2 whose TTB0 is root2
    const l3 = vm.ram.allocPage();
    const l2 = vm.ram.allocPage();
    const l1 = vm.ram.allocPage();
    vm.ram.write64(root2, BigInt(l1) | 3n);
    vm.ram.write64(l1 + 8 * 0x1fd, BigInt(l2) | 3n);
    vm.ram.write64(l2 + 8 * 1, BigInt(l3) | 3n);
    vm.ram.write64(l3, BigInt(b) | 0xf43n); // page | AP[1] | SH IS | AF | nG
    writeGuestCd({ ...vm, cdIpa: cd2 }, { asid: 2, ttb0: root2 });
    const n2 = await allocNested(self, vm, vste({ cdPtr: cd2 }));
    await self.fd.deviceReplace({ devId: vm.devId, ptId: n2 });
    expect((await smmuDma(self, vm.rid, GVA)).pa).toBe(vm.ram.paOf(b));
    await expectErrno('EBUSY', self.fd.destroy({ id: n2 }));
    await self.fd.destroy({ id: n1 });
    await expectErrno('EBUSY', self.fd.destroy({ id: vm.viommuId })); // n2 and the vDEVICE hold it
    await expectErrno('EBUSY', self.fd.destroy({ id: vm.parentId }));
    await self.fd.deviceReplace({ devId: vm.devId, ptId: vm.ioasId }); // auto (stage-1) domain of the IOAS
    expect(steConfig(steDwords(self, vm.rid))).toBe(CFG.S1);
    expect((await smmuDma(self, vm.rid, GUEST_IPA_BASE)).pa).toBe(vm.ram.paOf(GUEST_IPA_BASE));
    await self.fd.destroy({ id: n2 });
    await self.fd.destroy({ id: vm.vdevId });
    await self.fd.destroy({ id: vm.viommuId });
    await self.fd.destroy({ id: vm.parentId });
  });
});
