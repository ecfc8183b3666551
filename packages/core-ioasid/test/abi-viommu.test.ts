/**
 * The binary ABI of the fault / vIOMMU ioctls against the real IommuFd with a hw-mock device:
 * IOMMU_FAULT_QUEUE_ALLOC (out_fault_fd names the file in the fd table), IOMMU_VIOMMU_ALLOC
 * (driver data copied in from and back to data_uptr), IOMMU_VDEVICE_ALLOC, IOMMU_VEVENTQ_ALLOC
 * (out_veventq_fd, __reserved), IOMMU_HW_QUEUE_ALLOC, IOMMU_HWPT_ALLOC with pt_id = VIOMMU and
 * IOMMU_HWPT_INVALIDATE on a VIOMMU (entry_num written back on error).
 */
import { IommuError } from '@iommulab/driver-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fieldOf, ioctlLayout, readField, writeField } from '../src/abi/index.js';
import { FaultFile } from '../src/fault.js';
import { VeventqFile } from '../src/eventq.js';
import { ViommuTestOps } from '../src/selftest-viommu.js';
import { IOMMU_HWPT_ALLOC_NEST_PARENT } from '../src/uapi/constants.js';
import { ioasMap, PAGE_SIZE } from './fixture.js';
import { IOMMU_HWPT_DATA_SELFTEST, openMockSelf, teardownMock, type MockSelf } from './mock-fixture.js';

const IOMMU_VIOMMU_TYPE_SELFTEST = 0xdeadbeef;
const IOMMU_VEVENTQ_TYPE_SELFTEST = 0xbeefbeef;
const IOMMU_HW_QUEUE_TYPE_SELFTEST = 0xdeadbeef;

function struct(name: string, values: Record<string, number | bigint> = {}) {
  const l = ioctlLayout(name);
  const buf = new Uint8Array(l.size);
  writeField(buf, fieldOf(l, 'size'), l.size);
  for (const [k, v] of Object.entries(values)) writeField(buf, fieldOf(l, k), v);
  return { buf, cmd: l.cmd, get: (k: string) => Number(readField(buf, fieldOf(l, k))) };
}

describe('binary ABI: fault and vIOMMU ioctls over a mock device', () => {
  let self: MockSelf;
  let ioasId: number;
  let devId: number;
  let stdevId: number;
  let hwptId: number;

  beforeEach(async () => {
    self = await openMockSelf();
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    ({ outIdevId: devId, outStdevId: stdevId } = await self.mock.mockDomain(ioasId));
    hwptId = (await self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).outHwptId;
  });
  afterEach(async () => {
    await teardownMock(self);
  });

  async function io(s: { buf: Uint8Array; cmd: number }): Promise<number | string> {
    try {
      return await self.fd.ioctl(s.cmd, s.buf);
    } catch (e) {
      if (e instanceof IommuError) return e.errno;
      throw e;
    }
  }

  it('FAULT_QUEUE_ALLOC / VIOMMU_ALLOC with data / VDEVICE / VEVENTQ / HWPT on a VIOMMU / invalidate / HW_QUEUE', async () => {
    const fa = struct('IOMMU_FAULT_QUEUE_ALLOC');
    expect(await io(fa)).toBe(0);
    expect(self.fd.files.get(fa.get('out_fault_fd'))).toBeInstanceOf(FaultFile);
    expect(await io(struct('IOMMU_FAULT_QUEUE_ALLOC', { flags: 1 }))).toBe('EOPNOTSUPP');

    // Driver data in the caller's memory: in_data in, out_data / mmap offset / length back.
    const uptr = self.proc.mmap({ length: PAGE_SIZE });
    const d = new Uint8Array(24);
    new DataView(d.buffer).setUint32(0, 0xbeef, true);
    self.proc.write(uptr, d);
    const va = struct('IOMMU_VIOMMU_ALLOC', { type: IOMMU_VIOMMU_TYPE_SELFTEST, dev_id: devId, hwpt_id: hwptId, data_len: 24, data_uptr: BigInt(uptr) });
    expect(await io(va)).toBe(0);
    const viommuId = va.get('out_viommu_id');
    const back = new DataView(self.proc.read(uptr, 24).buffer);
    expect(back.getUint32(4, true)).toBe(0xbeef);
    expect(back.getBigUint64(16, true)).toBe(BigInt(2 * PAGE_SIZE));
    const m = self.fd.mmap({ offset: back.getBigUint64(8, true), length: 2 * PAGE_SIZE });
    expect(new DataView(m.data.buffer, m.data.byteOffset, 4).getUint32(0, true)).toBe(0xbeef);
    m.munmap();
    // A bad data pointer faults where the driver copies it.
    expect(await io(struct('IOMMU_VIOMMU_ALLOC', { type: IOMMU_VIOMMU_TYPE_SELFTEST, dev_id: devId, hwpt_id: hwptId, data_len: 24, data_uptr: 8n }))).toBe(
      'EFAULT',
    );
    // data shorter than out_data
    self.proc.write(uptr, new Uint8Array(24));
    expect(await io(struct('IOMMU_VIOMMU_ALLOC', { type: IOMMU_VIOMMU_TYPE_SELFTEST, dev_id: devId, hwpt_id: hwptId, data_len: 4, data_uptr: BigInt(uptr) }))).toBe(
      'EINVAL',
    );

    const vd = struct('IOMMU_VDEVICE_ALLOC', { viommu_id: viommuId, dev_id: devId, virt_id: 0x99n });
    expect(await io(vd)).toBe(0);
    expect(await io(struct('IOMMU_VDEVICE_ALLOC', { viommu_id: viommuId, dev_id: devId, virt_id: 0x98n }))).toBe('EEXIST');

    const vq = struct('IOMMU_VEVENTQ_ALLOC', { viommu_id: viommuId, type: IOMMU_VEVENTQ_TYPE_SELFTEST, veventq_depth: 4 });
    expect(await io(vq)).toBe(0);
    const qfile = self.fd.files.get(vq.get('out_veventq_fd'));
    expect(qfile).toBeInstanceOf(VeventqFile);
    expect(await io(struct('IOMMU_VEVENTQ_ALLOC', { viommu_id: viommuId, type: 5, veventq_depth: 4, __reserved: 1 }))).toBe('EOPNOTSUPP');
    expect(await io(struct('IOMMU_VEVENTQ_ALLOC', { viommu_id: viommuId, type: 5, veventq_depth: 0 }))).toBe('EINVAL');

    // A nested HWPT on the vIOMMU, the device on it, one event.
    const sel = new Uint8Array(8);
    self.proc.write(uptr, sel);
    const nh = struct('IOMMU_HWPT_ALLOC', { dev_id: devId, pt_id: viommuId, data_type: IOMMU_HWPT_DATA_SELFTEST, data_len: 8, data_uptr: BigInt(uptr) });
    expect(await io(nh)).toBe(0);
    await self.mock.mockDomainReplace(stdevId, nh.get('out_hwpt_id'));
    await new ViommuTestOps(self.fd).triggerVevent(devId);
    const ev = (qfile as VeventqFile).read(64);
    expect(Array.from(ev)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0x99, 0, 0, 0]);

    // vIOMMU invalidation: entry_num written back with the count handled.
    const inv = new Uint8Array(24);
    const idv = new DataView(inv.buffer);
    idv.setUint32(4, 0x99, true);
    idv.setUint32(12 + 0, 0xffff_ffff, true);
    self.proc.write(uptr, inv);
    const iv = struct('IOMMU_HWPT_INVALIDATE', { hwpt_id: viommuId, data_uptr: BigInt(uptr), data_type: 0xdeadbeef, entry_len: 12, entry_num: 2 });
    expect(await io(iv)).toBe('EOPNOTSUPP');
    expect(iv.get('entry_num')).toBe(1);

    // HW queue over mapped memory; the pinned page cannot be unmapped.
    const iova = await ioasMap(self, ioasId, self.buffer, PAGE_SIZE);
    const hq = struct('IOMMU_HW_QUEUE_ALLOC', { viommu_id: viommuId, type: IOMMU_HW_QUEUE_TYPE_SELFTEST, index: 0, nesting_parent_iova: iova, length: BigInt(PAGE_SIZE) });
    expect(await io(hq)).toBe(0);
    expect(hq.get('out_hw_queue_id')).toBeGreaterThan(0);
    expect(await io(struct('IOMMU_IOAS_UNMAP', { ioas_id: ioasId, iova, length: BigInt(PAGE_SIZE) }))).toBe('EBUSY');
    // The queue memory is pinned once more (the domains' pin + the queue's internal access).
    expect(self.proc.pinCount(self.buffer)).toBeGreaterThan(0);
    await self.fd.destroy({ id: hq.get('out_hw_queue_id') });
    expect(await io(struct('IOMMU_IOAS_UNMAP', { ioas_id: ioasId, iova, length: BigInt(PAGE_SIZE) }))).toBe(0);
  });
});
