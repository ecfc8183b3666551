/**
 * DEVICE objects bound through the typed VFIO-cdev path (deviceBind / deviceAttach / deviceReplace
 * / deviceDetach / deviceUnbind) on a hw-mock backend, in-thread and with the hardware in a worker:
 * mappings reach the backend's page tables (checked by DMA through the device port) and unmaps
 * invalidate its IOTLB.
 */
import { ACCESS_READ, ACCESS_WRITE, NO_PASID } from '@iommulab/driver-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IOMMU_HWPT_ALLOC_PASID } from '../src/uapi/constants.js';
import { BUFFER_SIZE, expectErrno, FIXED, MOCK_APERTURE_START, MOCK_PAGE_SIZE, PAGE_SIZE, RW } from './fixture.js';
import { dma, IOMMU_HW_INFO_TYPE_SELFTEST, openMockSelf, teardownMock, type MockSelf } from './mock-fixture.js';

describe.each(['in-thread', 'worker'] as const)('DEVICE bound by deviceBind (%s hardware)', (mode) => {
  let self: MockSelf;
  let ioasId: number;

  beforeEach(async () => {
    self = await openMockSelf({ mode });
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
  });
  afterEach(async () => {
    await teardownMock(self);
  });

  it('bind, auto attach, DMA, unmap invalidates, replace, detach, unbind', async () => {
    const rid = 0x42;
    const { outDevId: devId } = await self.fd.deviceBind({ stack: self.stack, spec: { rid, pasidBits: 8 } });
    // probing the same RID twice: EBUSY from the driver
    await expectErrno('EBUSY', self.fd.deviceBind({ stack: self.stack, spec: { rid } }));
    // a bound device cannot be destroyed through IOMMU_DESTROY
    await expectErrno('EBUSY', self.fd.destroy({ id: devId }));
    const info = await self.fd.getHwInfo({ devId });
    expect(info.outDataType).toBe(IOMMU_HW_INFO_TYPE_SELFTEST);
    expect(info.outMaxPasidLog2).toBe(8);

    // before any attach the device's DMA is blocked
    expect((await dma(self, rid, MOCK_APERTURE_START)).ok).toBe(false);
    const { ptId: hwpt } = await self.fd.deviceAttach({ devId, ptId: ioasId });
    expect(self.fd.ctx.objects.find(hwpt, 'hwpt_paging')).toBeDefined();
    await expectErrno('EBUSY', self.fd.deviceAttach({ devId, ptId: ioasId }));
    // the IOAS now has the mock aperture and alignment
    const r = await self.fd.ioasIovaRanges({ ioasId, numIovas: 4 });
    expect(r.outIovaAlignment).toBe(BigInt(MOCK_PAGE_SIZE));
    expect(r.allowedIovas[0].start).toBe(BigInt(MOCK_APERTURE_START));

    const iova = MOCK_APERTURE_START + 0x10_0000;
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer, length: BUFFER_SIZE, iova });
    for (let off = 0; off < BUFFER_SIZE; off += MOCK_PAGE_SIZE) {
      const t = await dma(self, rid, iova + off, ACCESS_WRITE);
      expect(t.ok).toBe(true);
      expect(t.pa).toBe(self.proc.translate(self.buffer + off));
    }
    // the CPU sees what the device writes at the translated address
    const t0 = await dma(self, rid, iova + 5, ACCESS_WRITE);
    self.mem.u8[t0.pa] = 0x77;
    expect(self.proc.read(self.buffer + 5, 1)[0]).toBe(0x77);
    await self.fd.ioasUnmap({ ioasId, iova, length: BUFFER_SIZE });
    for (let off = 0; off < BUFFER_SIZE; off += MOCK_PAGE_SIZE) expect((await dma(self, rid, iova + off, ACCESS_READ)).ok).toBe(false);

    // replace onto a manual PASID-capable HWPT: the auto HWPT goes with its last device
    const { outHwptId: manual } = await self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_PASID });
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer, length: PAGE_SIZE, iova });
    expect((await self.fd.deviceReplace({ devId, ptId: manual })).ptId).toBe(manual);
    expect(self.fd.ctx.objects.find(hwpt)).toBeUndefined();
    expect((await dma(self, rid, iova)).pa).toBe(self.proc.translate(self.buffer));
    // a PASID on the same HWPT
    await self.fd.deviceAttach({ devId, ptId: manual, pasid: 3 });
    expect((await dma(self, rid, iova, ACCESS_READ, 3)).pa).toBe(self.proc.translate(self.buffer));
    await expectErrno('EBUSY', self.fd.destroy({ id: manual }));
    await self.fd.deviceDetach({ devId, pasid: 3 });
    expect((await dma(self, rid, iova, ACCESS_READ, 3)).ok).toBe(false);
    // detach the RID: blocked again; detaching twice is fine
    await self.fd.deviceDetach({ devId });
    await self.fd.deviceDetach({ devId });
    expect((await dma(self, rid, iova, ACCESS_READ, NO_PASID)).ok).toBe(false);
    await self.fd.destroy({ id: manual });
    await self.fd.deviceUnbind({ devId });
    await expectErrno('ENOENT', self.fd.getHwInfo({ devId }));
    // the RID can be bound again
    const again = await self.fd.deviceBind({ stack: self.stack, spec: { rid } });
    await self.fd.deviceUnbind({ devId: again.outDevId });
  });

  it('close unbinds devices still bound and attached', async () => {
    const { outDevId: devId } = await self.fd.deviceBind({ stack: self.stack, spec: { rid: 9 } });
    await self.fd.deviceAttach({ devId, ptId: ioasId });
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer, length: BUFFER_SIZE, iova: MOCK_APERTURE_START });
    // teardownMock closes the fd: everything must go, pins included
  });

  it('attach errors: unknown pt_id ENOENT, wrong type EINVAL, reserved conflict EADDRINUSE', async () => {
    const { outDevId: devId } = await self.fd.deviceBind({ stack: self.stack, spec: { rid: 10 } });
    await expectErrno('ENOENT', self.fd.deviceAttach({ devId, ptId: 999 }));
    await expectErrno('EINVAL', self.fd.deviceAttach({ devId, ptId: devId }));
    await expectErrno('EINVAL', self.fd.deviceReplace({ devId, ptId: ioasId })); // not attached
    // an area below the mock aperture makes the domain's reservation fail: nothing is left behind
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer, length: PAGE_SIZE, iova: PAGE_SIZE });
    const before = self.fd.ctx.objects.size;
    await expectErrno('EADDRINUSE', self.fd.deviceAttach({ devId, ptId: ioasId }));
    expect(self.fd.ctx.objects.size).toBe(before);
    expect((await dma(self, 10, MOCK_APERTURE_START)).ok).toBe(false);
    await self.fd.ioasUnmap({ ioasId, iova: PAGE_SIZE, length: PAGE_SIZE });
    await self.fd.deviceAttach({ devId, ptId: ioasId });
    await self.fd.deviceUnbind({ devId });
  });
});
