/**
 * The binary ABI of the HWPT / hw-info ioctls against the real IommuFd with a hw-mock device:
 * IOMMU_HWPT_ALLOC (paging + nested, lazy data pointer: EFAULT only where the driver copies),
 * IOMMU_GET_HW_INFO (copy / zero tail / data_len), IOMMU_HWPT_INVALIDATE (entry_num written back
 * on error), IOMMU_HWPT_SET_DIRTY_TRACKING and IOMMU_HWPT_GET_DIRTY_BITMAP (bits OR-ed into the
 * user bitmap).
 */
import { IommuError } from '@iommulab/driver-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fieldOf, ioctlLayout, readField, writeField } from '../src/abi/index.js';
import { IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_HWPT_ALLOC_NEST_PARENT } from '../src/uapi/constants.js';
import { FIXED, MOCK_APERTURE_START, MOCK_PAGE_SIZE, PAGE_SIZE, RW } from './fixture.js';
import {
  IOMMU_HW_INFO_SELFTEST_REGVAL,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_TEST_IOTLB_DEFAULT,
  openMockSelf,
  teardownMock,
  type MockSelf,
} from './mock-fixture.js';

function struct(name: string, values: Record<string, number | bigint> = {}) {
  const l = ioctlLayout(name);
  const buf = new Uint8Array(l.size);
  writeField(buf, fieldOf(l, 'size'), l.size);
  for (const [k, v] of Object.entries(values)) writeField(buf, fieldOf(l, k), v);
  return { buf, cmd: l.cmd, get: (k: string) => readField(buf, fieldOf(l, k)) };
}

describe('binary ABI: HWPT and hw-info ioctls over a mock device', () => {
  let self: MockSelf;
  let ioasId: number;
  let devId: number;
  let stdevId: number;
  beforeEach(async () => {
    self = await openMockSelf();
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    const r = await self.mock.mockDomain(ioasId);
    devId = r.outIdevId;
    stdevId = r.outStdevId;
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

  it('HWPT_ALLOC paging + nested, INVALIDATE, GET_HW_INFO', async () => {
    const parent = struct('IOMMU_HWPT_ALLOC', { dev_id: devId, pt_id: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT });
    expect(await io(parent)).toBe(0);
    const parentId = Number(parent.get('out_hwpt_id'));
    const data = self.proc.mmap({ length: PAGE_SIZE });
    const dv = new DataView(new ArrayBuffer(8));
    dv.setUint32(0, IOMMU_TEST_IOTLB_DEFAULT, true);
    self.proc.write(data, new Uint8Array(dv.buffer));
    // unknown data type with an unmapped pointer: the driver's EOPNOTSUPP comes before any copy
    expect(await io(struct('IOMMU_HWPT_ALLOC', { dev_id: devId, pt_id: parentId, data_type: 0x1234, data_len: 8, data_uptr: 0x1000 }))).toBe('EOPNOTSUPP');
    expect(await io(struct('IOMMU_HWPT_ALLOC', { dev_id: devId, pt_id: parentId, data_type: IOMMU_HWPT_DATA_SELFTEST, data_len: 8, data_uptr: 0 }))).toBe('EFAULT');
    const nested = struct('IOMMU_HWPT_ALLOC', { dev_id: devId, pt_id: parentId, data_type: IOMMU_HWPT_DATA_SELFTEST, data_len: 8, data_uptr: data });
    expect(await io(nested)).toBe(0);
    const nestedId = Number(nested.get('out_hwpt_id'));
    await self.mock.mdCheckIotlb(nestedId, 3, IOMMU_TEST_IOTLB_DEFAULT);

    // INVALIDATE: second entry bad → EOPNOTSUPP with entry_num 1 written back
    const inv = new Uint8Array(16);
    new DataView(inv.buffer).setUint32(8, 0xffff_ffff, true);
    self.proc.write(data, inv);
    const s = struct('IOMMU_HWPT_INVALIDATE', { hwpt_id: nestedId, data_uptr: data, data_type: IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, entry_len: 8, entry_num: 2 });
    expect(await io(s)).toBe('EOPNOTSUPP');
    expect(s.get('entry_num')).toBe(1);
    await self.mock.mdCheckIotlb(nestedId, 0, 0);
    // a bad pointer on the parent: EINVAL (wrong object type) before any copy
    const p = struct('IOMMU_HWPT_INVALIDATE', { hwpt_id: parentId, data_uptr: 0x1000, data_type: IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, entry_len: 8, entry_num: 1 });
    expect(await io(p)).toBe('EINVAL');
    expect(p.get('entry_num')).toBe(0);

    // GET_HW_INFO: 16-byte user buffer: 8 bytes copied, tail zeroed, data_len = 8
    const hw = self.proc.mmap({ length: PAGE_SIZE });
    self.proc.write(hw, new Uint8Array(16).fill(0xee));
    const h = struct('IOMMU_GET_HW_INFO', { dev_id: devId, data_len: 16, data_uptr: hw });
    expect(await io(h)).toBe(0);
    expect(h.get('data_len')).toBe(8);
    expect(h.get('out_data_type')).toBe(IOMMU_HW_INFO_TYPE_SELFTEST);
    const got = new DataView(self.proc.read(hw, 16).buffer);
    expect(got.getUint32(0, true)).toBe(0);
    expect(got.getUint32(4, true)).toBe(IOMMU_HW_INFO_SELFTEST_REGVAL);
    expect(got.getBigUint64(8, true)).toBe(0n);

    await self.fd.destroy({ id: nestedId });
    await self.fd.destroy({ id: parentId });
  });

  it('SET_DIRTY_TRACKING + GET_DIRTY_BITMAP', async () => {
    const a = struct('IOMMU_HWPT_ALLOC', { dev_id: devId, pt_id: ioasId, flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING });
    expect(await io(a)).toBe(0);
    const hwptId = Number(a.get('out_hwpt_id'));
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer, length: 8 * PAGE_SIZE, iova: MOCK_APERTURE_START });
    expect(await io(struct('IOMMU_HWPT_SET_DIRTY_TRACKING', { hwpt_id: hwptId, flags: 1 }))).toBe(0);
    await self.mock.dirty(hwptId, { iova: MOCK_APERTURE_START, length: 8 * PAGE_SIZE, pageSize: MOCK_PAGE_SIZE, bitmap: new Uint8Array([0b0000_0101, 0x80]) });
    const bm = self.proc.mmap({ length: PAGE_SIZE });
    self.proc.write(bm, new Uint8Array([0b0001_0000])); // an existing bit is kept (OR)
    const g = struct('IOMMU_HWPT_GET_DIRTY_BITMAP', { hwpt_id: hwptId, iova: MOCK_APERTURE_START, length: 8 * PAGE_SIZE, page_size: MOCK_PAGE_SIZE, data: bm });
    expect(await io(g)).toBe(0);
    expect([...self.proc.read(bm, 2)]).toEqual([0b0001_0101, 0x80]);
    await self.mock.mockDomainReplace(stdevId, ioasId);
    await self.fd.destroy({ id: hwptId });
  });
});
