/**
 * Dirty tracking of SMMUv3 devices through /dev/iommu (iommufd.md §2.7; smmuv3.md §3.3, §7.3,
 * §12 #16): IOMMU_HWPT_ALLOC_DIRTY_TRACKING makes a stage-1 domain whose CD has HA + HD and whose
 * leaves carry DBM (Linux IO_PGTABLE_QUIRK_ARM_HD), so a device write through the SMMU sets the
 * leaf's dirty state in hardware (HTTU); IOMMU_HWPT_SET_DIRTY_TRACKING (enable clears what was
 * recorded before); IOMMU_HWPT_GET_DIRTY_BITMAP reports (and by default clears, then invalidates)
 * exactly the IO pages the device wrote. Needs IDR0.HTTU = 2 and COHACC (`arm_smmu_dbm_capable`).
 */
import { ACCESS_READ, ACCESS_WRITE } from '@iommulab/driver-api';
import { afterEach, describe, expect, it } from 'vitest';
import {
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_SET,
} from '../src/uapi/constants.js';
import { expectErrno, FIXED, HUGEPAGE_SIZE, PAGE_SIZE, RW } from './fixture.js';
import { populate } from './mock-fixture.js';
import { bindSmmuDevice, dmaRead, dmaWrite, openSmmuSelf, smmuDma, teardownSmmu, type SmmuSelf } from './smmuv3-fixture.js';

const IOVA = 0x100_0000;
const RID = 0x20;

/** The set bits of a dirty bitmap. */
function bits(bm: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < bm.length * 8; i++) if (bm[i >>> 3] & (1 << (i & 7))) out.push(i);
  return out;
}

describe('dirty tracking through HTTU (IOMMU_HWPT_ALLOC_DIRTY_TRACKING)', () => {
  let self: SmmuSelf;
  afterEach(async () => {
    await teardownSmmu(self);
  });

  /** IOAS (4 KiB IO pages) with `pages` pages of a fresh buffer at IOVA, a device on a dirty-tracking HWPT. */
  async function setup(pages: number): Promise<{ ioasId: number; devId: number; hwptId: number; buf: number }> {
    self = await openSmmuSelf();
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    await self.fd.option({ optionId: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_SET, objectId: ioasId, val64: 0 });
    const buf = self.proc.mmap({ length: pages * PAGE_SIZE, shared: true });
    self.proc.write(buf, new Uint8Array(pages * PAGE_SIZE).fill(0x11));
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: buf, length: pages * PAGE_SIZE, iova: IOVA });
    const devId = await bindSmmuDevice(self, { rid: RID });
    const hwptId = (await self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING })).outHwptId;
    await self.fd.deviceAttach({ devId, ptId: hwptId });
    return { ioasId, devId, hwptId, buf };
  }

  it('a device DMA write makes exactly its page dirty; reading clears (and invalidates), NO_CLEAR keeps; enabling drops older state', async () => {
    const { hwptId, buf } = await setup(32);
    const get = (o: { pageSize?: number; flags?: number; length?: number } = {}) =>
      self.fd.hwptGetDirtyBitmap({ hwptId, iova: IOVA, length: o.length ?? 32 * PAGE_SIZE, pageSize: o.pageSize ?? PAGE_SIZE, flags: o.flags ?? 0 });
    // a write before tracking is enabled: discarded by SET_DIRTY_TRACKING(enable) (iopt_clear_dirty_data)
    expect(await dmaWrite(self, RID, IOVA + 3 * PAGE_SIZE, new Uint8Array([1]))).toBe(true);
    await self.fd.hwptSetDirtyTracking({ hwptId, flags: IOMMU_HWPT_DIRTY_TRACKING_ENABLE });
    expect(bits((await get()).bitmap)).toEqual([]);
    // writes to pages 5 and 17 (the bytes land in the process's buffer), a read of page 9
    expect(await dmaWrite(self, RID, IOVA + 5 * PAGE_SIZE + 0x10, new Uint8Array([0xaa, 0xbb]))).toBe(true);
    expect(await dmaWrite(self, RID, IOVA + 17 * PAGE_SIZE + PAGE_SIZE - 1, new Uint8Array([0xcc]))).toBe(true);
    expect(await dmaRead(self, RID, IOVA + 9 * PAGE_SIZE, 4)).toEqual(new Uint8Array(4).fill(0x11));
    expect([...self.proc.read(buf + 5 * PAGE_SIZE + 0x10, 2), ...self.proc.read(buf + 18 * PAGE_SIZE - 1, 1)]).toEqual([0xaa, 0xbb, 0xcc]);
    // NO_CLEAR: the same bits twice; a coarser page_size covers them (16 KiB: bits 1 and 4)
    expect(bits((await get({ flags: IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR })).bitmap)).toEqual([5, 17]);
    expect(bits((await get({ pageSize: 4 * PAGE_SIZE, flags: IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR })).bitmap)).toEqual([1, 4]);
    // a sub-range: bits relative to its iova
    const sub = await self.fd.hwptGetDirtyBitmap({ hwptId, iova: IOVA + 16 * PAGE_SIZE, length: 16 * PAGE_SIZE, pageSize: PAGE_SIZE, flags: IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR });
    expect(bits(sub.bitmap)).toEqual([1]);
    // the default read reports and clears
    expect(bits((await get()).bitmap)).toEqual([5, 17]);
    expect(bits((await get()).bitmap)).toEqual([]);
    // the clear invalidated the IOTLB: a new write to page 5 is seen again (a stale writable
    // TLB entry would let it through without a hardware dirty update)
    expect((await smmuDma(self, RID, IOVA + 5 * PAGE_SIZE, ACCESS_WRITE)).ok).toBe(true);
    expect((await smmuDma(self, RID, IOVA + 6 * PAGE_SIZE, ACCESS_READ)).ok).toBe(true);
    // the bitmap OR-ed into the caller's memory (data = a user VA)
    const ubm = self.proc.mmap({ length: PAGE_SIZE });
    self.proc.write(ubm, new Uint8Array([0x01, 0, 0, 0]));
    await self.fd.hwptGetDirtyBitmap({ hwptId, iova: IOVA, length: 32 * PAGE_SIZE, pageSize: PAGE_SIZE, data: ubm });
    expect([...self.proc.read(ubm, 4)]).toEqual([0x21, 0, 0, 0]); // bit 0 was there, bit 5 is new
    // disabling: SMMUv3 keeps DBM in the tables (arm_smmu_set_dirty_tracking is a no-op)
    await self.fd.hwptSetDirtyTracking({ hwptId, flags: 0 });
  });

  it('a 2 MiB block IOPTE: one write marks the whole block (512 bits of 4 KiB)', async () => {
    self = await openSmmuSelf({ memBytes: 64 * 1024 * 1024 });
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const buf = self.proc.mmap({ length: HUGEPAGE_SIZE, shared: true, hugeAlign: HUGEPAGE_SIZE });
    populate(self, buf, HUGEPAGE_SIZE); // physically contiguous and 2 MiB aligned: one block
    const iova = 0x4000_0000;
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: buf, length: HUGEPAGE_SIZE, iova });
    const devId = await bindSmmuDevice(self, { rid: RID });
    const hwptId = (await self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING })).outHwptId;
    await self.fd.deviceAttach({ devId, ptId: hwptId });
    await self.fd.hwptSetDirtyTracking({ hwptId, flags: IOMMU_HWPT_DIRTY_TRACKING_ENABLE });
    expect((await smmuDma(self, RID, iova + 0x3456, ACCESS_WRITE)).pa).toBe(self.proc.translate(buf) + 0x3456);
    const { bitmap } = await self.fd.hwptGetDirtyBitmap({ hwptId, iova, length: HUGEPAGE_SIZE, pageSize: PAGE_SIZE });
    expect(bits(bitmap)).toEqual(Array.from({ length: 512 }, (_, i) => i));
    expect(bits((await self.fd.hwptGetDirtyBitmap({ hwptId, iova, length: HUGEPAGE_SIZE, pageSize: PAGE_SIZE })).bitmap)).toEqual([]);
  });

  it('who can: IOMMU_HW_CAP_DIRTY_TRACKING; a no-dirty device (EOPNOTSUPP / EINVAL); HWPTs without tracking (EOPNOTSUPP)', async () => {
    const { ioasId, hwptId } = await setup(4);
    const noDirty = await bindSmmuDevice(self, { rid: 0x21, noDirty: true });
    expect((await self.fd.getHwInfo({ devId: noDirty })).outCapabilities & BigInt(IOMMU_HW_CAP_DIRTY_TRACKING)).toBe(0n);
    await expectErrno('EOPNOTSUPP', self.fd.hwptAlloc({ devId: noDirty, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING }));
    await expectErrno('EINVAL', self.fd.deviceAttach({ devId: noDirty, ptId: hwptId }));
    // DIRTY_TRACKING | PASID is a stage-1 domain too; NEST_PARENT | DIRTY_TRACKING is not possible
    const withPasid = await bindSmmuDevice(self, { rid: 0x22, pasidBits: 8 });
    const dp = (await self.fd.hwptAlloc({ devId: withPasid, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID })).outHwptId;
    await self.fd.hwptSetDirtyTracking({ hwptId: dp, flags: IOMMU_HWPT_DIRTY_TRACKING_ENABLE });
    await expectErrno('EOPNOTSUPP', self.fd.hwptAlloc({ devId: withPasid, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_NEST_PARENT }));
    // a HWPT allocated without the flag has no dirty ops
    const plain = (await self.fd.hwptAlloc({ devId: withPasid, ptId: ioasId })).outHwptId;
    const parent = (await self.fd.hwptAlloc({ devId: withPasid, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).outHwptId;
    for (const id of [plain, parent]) {
      await expectErrno('EOPNOTSUPP', self.fd.hwptSetDirtyTracking({ hwptId: id, flags: IOMMU_HWPT_DIRTY_TRACKING_ENABLE }));
      await expectErrno('EOPNOTSUPP', self.fd.hwptGetDirtyBitmap({ hwptId: id, iova: IOVA, length: 4 * PAGE_SIZE, pageSize: PAGE_SIZE }));
    }
    // range checks come first (iommufd_check_iova_range)
    await expectErrno('EINVAL', self.fd.hwptGetDirtyBitmap({ hwptId, iova: IOVA + 1, length: 4 * PAGE_SIZE, pageSize: PAGE_SIZE }));
    await expectErrno('EINVAL', self.fd.hwptGetDirtyBitmap({ hwptId, iova: IOVA, length: 4 * PAGE_SIZE, pageSize: 0 }));
    await expectErrno('EOVERFLOW', self.fd.hwptGetDirtyBitmap({ hwptId, iova: (1n << 64n) - 4096n, length: 8192, pageSize: PAGE_SIZE }));
    await expectErrno('EOPNOTSUPP', self.fd.hwptGetDirtyBitmap({ hwptId, iova: IOVA, length: 4 * PAGE_SIZE, pageSize: PAGE_SIZE, flags: 2 }));
    await expectErrno('EOPNOTSUPP', self.fd.hwptSetDirtyTracking({ hwptId, flags: 2 }));
  });

  for (const httu of [0, 1] as const) {
    it(`an SMMU with IDR0.HTTU = ${httu}: no IOMMU_HW_CAP_DIRTY_TRACKING, DIRTY_TRACKING allocation is EOPNOTSUPP`, async () => {
      self = await openSmmuSelf({ options: { httu } });
      const ioasId = (await self.fd.ioasAlloc()).outIoasId;
      const devId = await bindSmmuDevice(self, { rid: RID });
      expect((await self.fd.getHwInfo({ devId })).outCapabilities & BigInt(IOMMU_HW_CAP_DIRTY_TRACKING)).toBe(0n);
      await expectErrno('EOPNOTSUPP', self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING }));
    });
  }
});
