/**
 * IOMMU_GET_HW_INFO of SMMUv3 devices bound into /dev/iommu (smmuv3.md §9.1, §9.2; iommufd.md
 * §2.7, §2.8): `out_data_type` = IOMMU_HW_INFO_TYPE_ARM_SMMUV3 (2), 40 bytes of
 * `struct iommu_hw_info_arm_smmuv3 { u32 flags; u32 __reserved; u32 idr[6]; u32 iidr; u32 aidr; }`
 * holding exact copies of the ID registers (read here straight from the SMMU's register file, and
 * checked against values computed by hand from smmuv3.md §1.2), the capabilities
 * (IOMMU_HW_CAP_DIRTY_TRACKING from HTTU = 2 + COHACC, IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED for a
 * device without ATS) and `out_max_pasid_log2` (the device's PASID width capped by SSIDSIZE, and by
 * 10 bits without CD2L). Also the binary ioctl: min(data_len, 40) bytes copied, the rest of the
 * user buffer zeroed, data_len written back as 40.
 */
import { SMMU_AIDR, SMMU_IDR0, SMMU_IIDR } from '@iommulab/hw-smmuv3/codec';
import { afterEach, describe, expect, it } from 'vitest';
import { fieldOf, ioctlLayout, readField, writeField } from '../src/abi/index.js';
import {
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HW_CAP_PCI_PASID_EXEC,
  IOMMU_HW_CAP_PCI_PASID_PRIV,
  IOMMU_HW_INFO_FLAG_INPUT_TYPE,
  IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  IOMMU_HW_INFO_TYPE_DEFAULT,
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV,
  IommufdCmd,
  iommuIoctl,
} from '../src/uapi/constants.js';
import { expectErrno, PAGE_SIZE } from './fixture.js';
import { bindSmmuDevice, openSmmuSelf, teardownSmmu, type SmmuSelf } from './smmuv3-fixture.js';

/** IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED (include/uapi/linux/iommufd.h). */
const IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED = 1 << 3;

/** Decodes `struct iommu_hw_info_arm_smmuv3`. */
function decode(b: Uint8Array): { flags: number; reserved: number; idr: number[]; iidr: number; aidr: number } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    flags: dv.getUint32(0, true),
    reserved: dv.getUint32(4, true),
    idr: [0, 1, 2, 3, 4, 5].map((i) => dv.getUint32(8 + 4 * i, true)),
    iidr: dv.getUint32(32, true),
    aidr: dv.getUint32(36, true),
  };
}

/** IDR0..5, IIDR, AIDR as the SMMU's register file holds them (what Linux `arm_smmu_hw_info` reads). */
function registers(self: SmmuSelf): { idr: number[]; iidr: number; aidr: number } {
  const u32 = self.stack.host.regs.u32;
  return {
    idr: [0, 1, 2, 3, 4, 5].map((i) => u32[(SMMU_IDR0 >>> 2) + i] >>> 0),
    iidr: u32[SMMU_IIDR >>> 2] >>> 0,
    aidr: u32[SMMU_AIDR >>> 2] >>> 0,
  };
}

const VARIANTS = [
  {
    name: 'default SMMUv3.2 (every feature)',
    options: {},
    // IDR0 = S2P|S1P (0x3) | TTF AArch64 (2<<2) | COHACC (1<<4) | HTTU AF+dirty (2<<6) | HYP (1<<9) |
    //        ATS|NS1ATS (3<<10) | ASID16 (1<<12) | MSI (1<<13) | SEV (1<<14) | PRI (1<<16) |
    //        VMID16 (1<<18) | CD2L (1<<19) | TTENDIAN LE (2<<21) | STALL_MODEL 0 | ST_LEVEL 2-level (1<<27)
    // IDR1 = SIDSIZE 16 | SSIDSIZE 20<<6 | PRIQS 19<<11 | EVENTQS 19<<16 | CMDQS 19<<21
    // IDR3 = HAD (1<<2) | XNX (1<<4) | FWB (1<<8) | RIL (1<<10) | BBML Level 2 (2<<11) (IHI 0070 §6.3.4)
    // IDR5 = OAS 48 (5) | GRAN4K|16K|64K (0x70) | STALL_MAX 64<<16
    idr: [0x084d_7e9b, 0x0273_9d10, 0, 0x1514, 0, 0x0040_0075],
    iidr: 0x0010_0000,
    aidr: 0x02,
    dirty: true,
    pasidLog2: 20,
  },
  {
    name: 'a smaller SMMUv3.1 (no HTTU / PRI / CD2L / RIL, 8-bit SSIDs, 4K only, OAS 44, terminate-only)',
    options: { ssidBits: 8, ril: false, granules: { '4k': true, '16k': false, '64k': false }, httu: 0, stall: 'none', pri: false, cd2l: false, oas: 44, iidr: 0x1234_543b, aidr: 0x01 },
    // IDR0 = default − HTTU (0x80) − PRI (0x10000) − CD2L (0x80000) + STALL_MODEL terminate (1<<24)
    // IDR1 = SIDSIZE 16 | SSIDSIZE 8<<6 | PRIQS 0 | EVENTQS 19<<16 | CMDQS 19<<21
    // IDR3 = HAD | XNX (v3.1 with S2P, §6.3.4) | FWB, no BBML before v3.2; IDR5 = OAS 44 (4) | GRAN4K (0x10), STALL_MAX 0 (no stalls)
    idr: [0x0944_7e1b, 0x0273_0210, 0, 0x114, 0, 0x14],
    iidr: 0x1234_543b,
    aidr: 0x01,
    dirty: false,
    pasidLog2: 8,
  },
];

describe.each(VARIANTS)('IOMMU_GET_HW_INFO on an SMMUv3: $name', (variant) => {
  let self: SmmuSelf;
  afterEach(async () => {
    await teardownSmmu(self);
  });

  it('reports IOMMU_HW_INFO_TYPE_ARM_SMMUV3 with the raw IDR0..5, IIDR and AIDR', async () => {
    self = await openSmmuSelf({ options: variant.options });
    const devId = await bindSmmuDevice(self, { rid: 0x12, pasidBits: 20 });
    const info = await self.fd.getHwInfo({ devId });
    expect(info.outDataType).toBe(IOMMU_HW_INFO_TYPE_ARM_SMMUV3);
    expect(info.outDataType).toBe(2);
    expect(info.dataLen).toBe(40);
    expect(info.data.length).toBe(40);
    const d = decode(info.data);
    // exact copies of the registers ...
    expect({ idr: d.idr, iidr: d.iidr, aidr: d.aidr }).toEqual(registers(self));
    // ... whose values are the ones smmuv3.md §1.2 gives for this feature set
    expect(d).toEqual({ flags: 0, reserved: 0, idr: variant.idr, iidr: variant.iidr, aidr: variant.aidr });

    // capabilities: dirty tracking needs HTTU = 2 (and COHACC); no ATS on this device
    expect(info.outCapabilities).toBe(BigInt((variant.dirty ? IOMMU_HW_CAP_DIRTY_TRACKING : 0) | IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED));
    expect(info.outCapabilities & BigInt(IOMMU_HW_CAP_PCI_PASID_EXEC | IOMMU_HW_CAP_PCI_PASID_PRIV)).toBe(0n);
    expect(info.outMaxPasidLog2).toBe(variant.pasidLog2);
  });

  it('per device: PASID width, ATS, no-dirty devices; the requested type; not a device', async () => {
    self = await openSmmuSelf({ options: variant.options });
    const plain = await bindSmmuDevice(self, { rid: 1 });
    const narrow = await bindSmmuDevice(self, { rid: 2, pasidBits: 5 });
    const ats = await bindSmmuDevice(self, { rid: 3, ats: true });
    const noDirty = await bindSmmuDevice(self, { rid: 4, noDirty: true });
    expect((await self.fd.getHwInfo({ devId: plain })).outMaxPasidLog2).toBe(0);
    expect((await self.fd.getHwInfo({ devId: narrow })).outMaxPasidLog2).toBe(5);
    const dirtyCap = variant.dirty ? IOMMU_HW_CAP_DIRTY_TRACKING : 0;
    expect((await self.fd.getHwInfo({ devId: ats })).outCapabilities).toBe(BigInt(dirtyCap));
    expect((await self.fd.getHwInfo({ devId: noDirty })).outCapabilities).toBe(BigInt(IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED));
    // every device behind the same SMMU reports the same registers
    expect(decode((await self.fd.getHwInfo({ devId: noDirty })).data)).toEqual(decode((await self.fd.getHwInfo({ devId: plain })).data));

    // IOMMU_HW_INFO_FLAG_INPUT_TYPE: DEFAULT and ARM_SMMUV3 are answered, another type is EOPNOTSUPP
    const flags = IOMMU_HW_INFO_FLAG_INPUT_TYPE;
    expect((await self.fd.getHwInfo({ devId: plain, flags, inDataType: IOMMU_HW_INFO_TYPE_ARM_SMMUV3 })).outDataType).toBe(IOMMU_HW_INFO_TYPE_ARM_SMMUV3);
    expect((await self.fd.getHwInfo({ devId: plain, flags, inDataType: IOMMU_HW_INFO_TYPE_DEFAULT })).outDataType).toBe(IOMMU_HW_INFO_TYPE_ARM_SMMUV3);
    await expectErrno('EOPNOTSUPP', self.fd.getHwInfo({ devId: plain, flags, inDataType: IOMMU_HW_INFO_TYPE_INTEL_VTD }));
    await expectErrno('EOPNOTSUPP', self.fd.getHwInfo({ devId: plain, flags, inDataType: IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV }));
    // without the flag the input type is ignored
    expect((await self.fd.getHwInfo({ devId: plain, inDataType: IOMMU_HW_INFO_TYPE_INTEL_VTD })).outDataType).toBe(IOMMU_HW_INFO_TYPE_ARM_SMMUV3);
    await expectErrno('EOPNOTSUPP', self.fd.getHwInfo({ devId: plain, flags: 2 }));
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    await expectErrno('ENOENT', self.fd.getHwInfo({ devId: ioasId }));
    await self.fd.deviceUnbind({ devId: narrow });
    await expectErrno('ENOENT', self.fd.getHwInfo({ devId: narrow }));
  });

  it('binary IOMMU_GET_HW_INFO: min(data_len, 40) bytes copied, the tail zeroed, data_len = 40', async () => {
    self = await openSmmuSelf({ options: variant.options });
    const devId = await bindSmmuDevice(self, { rid: 0x12, pasidBits: 20 });
    const expected = (await self.fd.getHwInfo({ devId })).data;
    const l = ioctlLayout('IOMMU_GET_HW_INFO');
    const user = self.proc.mmap({ length: PAGE_SIZE });
    const call = async (dataLen: number): Promise<Uint8Array> => {
      self.proc.write(user, new Uint8Array(64).fill(0x5a));
      const buf = new Uint8Array(l.size);
      writeField(buf, fieldOf(l, 'size'), l.size);
      writeField(buf, fieldOf(l, 'dev_id'), devId);
      writeField(buf, fieldOf(l, 'data_len'), dataLen);
      writeField(buf, fieldOf(l, 'data_uptr'), BigInt(user));
      expect(await self.fd.ioctl(iommuIoctl(IommufdCmd.GET_HW_INFO), buf)).toBe(0);
      expect(readField(buf, fieldOf(l, 'data_len'))).toBe(40);
      expect(readField(buf, fieldOf(l, 'out_data_type'))).toBe(IOMMU_HW_INFO_TYPE_ARM_SMMUV3);
      expect(readField(buf, fieldOf(l, 'out_max_pasid_log2'))).toBe(variant.pasidLog2);
      return self.proc.read(user, 64);
    };
    // a larger buffer: the 40 bytes, then zeroes up to data_len, the rest untouched
    expect(await call(48)).toEqual(new Uint8Array([...expected, ...new Uint8Array(8), ...new Uint8Array(16).fill(0x5a)]));
    // a smaller one: only data_len bytes (flags, __reserved, IDR0, IDR1)
    expect(await call(16)).toEqual(new Uint8Array([...expected.subarray(0, 16), ...new Uint8Array(48).fill(0x5a)]));
    // data_len 0: a query, nothing written
    expect(await call(0)).toEqual(new Uint8Array(64).fill(0x5a));
  });
});
