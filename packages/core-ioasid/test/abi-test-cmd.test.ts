/**
 * IOMMU_TEST_CMD through IommuFd.ioctl() only: short selftest ioctl traces (iommufd.c /
 * iommufd_utils.h) replayed byte for byte against the model with the selftest "kernel config" on
 * (enableSelftest), plus the size rules of `struct iommu_test_cmd` (72 bytes, min 68).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IommuError } from '@iommulab/driver-api';
import { fieldOf, ioctlLayout, readField, writeField } from '../src/abi/index.js';
import {
  IOMMU_TEST_CMD,
  IOMMU_TEST_CMD_LAYOUT,
  TEST_OP_LAYOUTS,
  disableSelftest,
  enableSelftest,
  testOpLayout,
  type Selftest,
} from '../src/abi/test-cmd.js';
import type { FaultFile } from '../src/fault.js';
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMUFD_PAGE_RESP_SUCCESS,
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
} from '../src/uapi/constants.js';
import { BUFFER_SIZE, MOCK_APERTURE_START, PAGE_SIZE } from './fixture.js';
import { IOMMU_HWPT_DATA_SELFTEST, IOMMU_TEST_IOTLB_DEFAULT, openMockSelf, teardownMock, type MockSelf } from './mock-fixture.js';

const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
const OP = Object.fromEntries(TEST_OP_LAYOUTS.map((l) => [l.name.replace('IOMMU_TEST_OP_', ''), l.op])) as Record<string, number>;

/** A uAPI struct buffer for `name` with `size` set and the given members. */
function struct(name: string, values: Record<string, number | bigint> = {}) {
  const l = ioctlLayout(name);
  const buf = new Uint8Array(l.size);
  writeField(buf, fieldOf(l, 'size'), l.size);
  for (const [k, v] of Object.entries(values)) writeField(buf, fieldOf(l, k), v);
  return { buf, cmd: l.cmd, get: (k: string) => readField(buf, fieldOf(l, k)) };
}

/** `struct iommu_test_cmd cmd = { .size = sizeof(cmd), .op = op, .id = id, .<member> = {...} }`. */
function testCmd(op: number, id = 0, values: Record<string, number | bigint> = {}, o: { size?: number; bufLen?: number } = {}) {
  const hdr = IOMMU_TEST_CMD_LAYOUT.fields;
  const buf = new Uint8Array(o.bufLen ?? IOMMU_TEST_CMD_LAYOUT.size);
  writeField(buf, hdr[0], o.size ?? IOMMU_TEST_CMD_LAYOUT.size);
  writeField(buf, hdr[1], op);
  writeField(buf, hdr[2], id);
  const l = testOpLayout(op);
  const fl = (k: string) => {
    const x = l?.fields.find((m) => m.name === k);
    if (!x) throw new Error(`op ${op} has no ${k}`);
    return x;
  };
  for (const [k, v] of Object.entries(values)) writeField(buf, fl(k), v);
  return { buf, get: (k: string) => readField(buf, fl(k)) };
}

/** The ioctl's return value, or its errno name. */
async function outcome(p: Promise<number>): Promise<number | string> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof IommuError) return e.errno;
    throw e;
  }
}

describe('IOMMU_TEST_CMD layout', () => {
  it('struct iommu_test_cmd: union at 16, 48 bytes, last at 64, sizeof 72', () => {
    expect(IOMMU_TEST_CMD).toBe(0x3ba0);
    expect(IOMMU_TEST_CMD_LAYOUT.size).toBe(72);
    expect(IOMMU_TEST_CMD_LAYOUT.minSize).toBe(68);
    expect(TEST_OP_LAYOUTS.map((l) => l.op)).toEqual(Array.from({ length: 23 }, (_, i) => i + 1));
    for (const l of TEST_OP_LAYOUTS) {
      for (const f of l.fields) {
        const w = f.type === 'u64' ? 8 : 4;
        expect(f.offset % w).toBe(0);
        expect(f.offset).toBeGreaterThanOrEqual(16);
        expect(f.offset + w).toBeLessThanOrEqual(64);
      }
    }
    // dirty is the biggest member: out_nr_dirty ends at the union's end.
    const dirty = testOpLayout(OP.DIRTY!)!;
    expect(dirty.fields.at(-1)).toMatchObject({ name: 'out_nr_dirty', offset: 56 });
  });
});

describe('IOMMU_TEST_CMD through IommuFd.ioctl()', () => {
  let self: MockSelf;
  let st: Selftest;
  const io = (arg: Uint8Array | null, cmd = IOMMU_TEST_CMD) => outcome(self.fd.ioctl(cmd, arg));
  const run = async (s: { cmd: number; buf: Uint8Array }) => outcome(self.fd.ioctl(s.cmd, s.buf));

  async function ioasAlloc(): Promise<number> {
    const a = struct('IOMMU_IOAS_ALLOC');
    expect(await run(a)).toBe(0);
    return a.get('out_ioas_id') as number;
  }

  beforeEach(async () => {
    self = await openMockSelf();
    st = enableSelftest(self.fd, { mock: self.stack });
  });
  afterEach(async () => {
    await teardownMock(self);
  });

  it('is ENOTTY without the selftest config (a kernel without CONFIG_IOMMUFD_TEST)', async () => {
    disableSelftest(self.fd);
    expect(await io(testCmd(OP.SET_TEMP_MEMORY_LIMIT!, 0, { limit: 65536 }).buf)).toBe('ENOTTY');
    enableSelftest(self.fd, { mock: self.stack });
    expect(await io(testCmd(OP.SET_TEMP_MEMORY_LIMIT!, 0, { limit: 65536 }).buf)).toBe(0);
  });

  it('size rules: EFAULT, ENOTTY, EINVAL below 68, E2BIG for a non-zero tail, EOPNOTSUPP for an unknown op', async () => {
    const limit = (o: { size?: number; bufLen?: number } = {}) => testCmd(OP.SET_TEMP_MEMORY_LIMIT!, 0, { limit: 65536 }, o);
    expect(await io(null)).toBe('EFAULT');
    expect(await io(new Uint8Array(2))).toBe('EFAULT');
    expect(await io(limit().buf, 0xc0483ba0)).toBe('ENOTTY'); // _IOWR-style number with the same nr
    expect(await io(limit({ size: 67 }).buf)).toBe('EINVAL');
    expect(await io(limit({ size: 68 }).buf)).toBe(0);
    const big = limit({ size: 80, bufLen: 80 });
    big.buf[72] = 1;
    expect(await io(big.buf)).toBe('E2BIG');
    big.buf[72] = 0;
    expect(await io(big.buf)).toBe(0);
    expect(await io(limit({ size: 80 }).buf)).toBe('EFAULT'); // size beyond the user buffer
    expect(await io(testCmd(0).buf)).toBe('EOPNOTSUPP');
    expect(await io(testCmd(24).buf)).toBe('EOPNOTSUPP');
    expect(await io(testCmd(OP.SET_TEMP_MEMORY_LIMIT!, 0, { limit: 11 }).buf)).toBe('EINVAL');
    // __reserved is not checked by iommufd_test()
    const r = limit();
    writeField(r.buf, IOMMU_TEST_CMD_LAYOUT.fields[3]!, 7);
    expect(await io(r.buf)).toBe(0);
  });

  it('MOCK_DOMAIN + IOAS_MAP + MD_CHECK_MAP + MD_CHECK_REFS', async () => {
    const ioasId = await ioasAlloc();
    const md = testCmd(OP.MOCK_DOMAIN!, ioasId);
    expect(await io(md.buf)).toBe(0);
    const stdevId = md.get('out_stdev_id') as number;
    const hwptId = md.get('out_hwpt_id') as number;
    const idevId = md.get('out_idev_id') as number;
    // SELFTEST, DEVICE, then the auto HWPT (ids after the IOAS)
    expect([stdevId, idevId, hwptId]).toEqual([ioasId + 1, ioasId + 2, ioasId + 3]);
    expect(st.mock!.deviceOf(stdevId).id).toBe(idevId);

    const map = struct('IOMMU_IOAS_MAP', { flags: RW, ioas_id: ioasId, user_va: self.buffer, length: 4 * PAGE_SIZE });
    expect(await run(map)).toBe(0);
    const iova = map.get('iova') as bigint;
    expect(iova).toBeGreaterThanOrEqual(BigInt(MOCK_APERTURE_START));

    const check = (uptr: number, length = 4 * PAGE_SIZE) => io(testCmd(OP.MD_CHECK_MAP!, hwptId, { iova, length, uptr }).buf);
    expect(await check(self.buffer)).toBe(0);
    expect(await check(self.buffer + PAGE_SIZE)).toBe('EINVAL');
    expect(await io(testCmd(OP.MD_CHECK_MAP!, ioasId, { iova, length: PAGE_SIZE, uptr: self.buffer }).buf)).toBe('ENOENT');

    const refs = (n: number, length = BUFFER_SIZE) => io(testCmd(OP.MD_CHECK_REFS!, 0, { uptr: self.buffer, length, refs: n }).buf);
    expect(await refs(1, 4 * PAGE_SIZE)).toBe(0);
    expect(await refs(0, 4 * PAGE_SIZE)).toBe('EIO');
    expect(await io(testCmd(OP.MD_CHECK_REFS!, 0, { uptr: self.buffer + 1, length: PAGE_SIZE, refs: 1 }).buf)).toBe('EINVAL');

    const unmap = struct('IOMMU_IOAS_UNMAP', { ioas_id: ioasId, iova, length: 4 * PAGE_SIZE });
    expect(await run(unmap)).toBe(0);
    expect(unmap.get('length')).toBe(BigInt(4 * PAGE_SIZE));
    expect(await refs(0)).toBe(0);

    // MOCK_DOMAIN_REPLACE writes pt_id back; DESTROY(stdev) unplugs the device.
    const ioas2 = await ioasAlloc();
    const rep = testCmd(OP.MOCK_DOMAIN_REPLACE!, stdevId, { pt_id: ioas2 });
    expect(await io(rep.buf)).toBe(0);
    expect(rep.get('pt_id')).not.toBe(ioas2); // the auto HWPT of ioas2
    expect(await run(struct('IOMMU_DESTROY', { id: stdevId }))).toBe(0);
    expect(await io(testCmd(OP.MOCK_DOMAIN_REPLACE!, stdevId, { pt_id: ioasId }).buf)).toBe('ENOENT');
  });

  it('ADD_RESERVED: EADDRINUSE over an area, then maps into the reserved range fail', async () => {
    const ioasId = await ioasAlloc();
    const base = 0x10_0000n;
    const map = struct('IOMMU_IOAS_MAP', {
      flags: RW | IOMMU_IOAS_MAP_FIXED_IOVA, ioas_id: ioasId, user_va: self.buffer, length: PAGE_SIZE, iova: base,
    });
    expect(await run(map)).toBe(0);
    const reserve = (start: bigint, length: bigint, id = ioasId) => io(testCmd(OP.ADD_RESERVED!, id, { start, length }).buf);
    expect(await reserve(base, BigInt(PAGE_SIZE))).toBe('EADDRINUSE');
    expect(await reserve(base - BigInt(PAGE_SIZE), 2n * BigInt(PAGE_SIZE))).toBe('EADDRINUSE');
    expect(await reserve(base + BigInt(PAGE_SIZE), 4n * BigInt(PAGE_SIZE))).toBe(0);
    expect(await reserve(0n, 1n, 9999)).toBe('ENOENT');
    const into = struct('IOMMU_IOAS_MAP', {
      flags: RW | IOMMU_IOAS_MAP_FIXED_IOVA, ioas_id: ioasId, user_va: self.buffer, length: PAGE_SIZE, iova: base + 2n * BigInt(PAGE_SIZE),
    });
    expect(await run(into)).toBe('EINVAL');
    // the reserved range shows in IOVA_RANGES: [0, base+P-1] and [base+5P, max]
    const ranges = struct('IOMMU_IOAS_IOVA_RANGES', { ioas_id: ioasId, num_iovas: 0 });
    expect(await run(ranges)).toBe('EMSGSIZE');
    expect(ranges.get('num_iovas')).toBe(2);
  });

  it('CREATE_ACCESS + ACCESS_RW + ACCESS_PAGES + DESTROY_ACCESS_PAGES', async () => {
    const ioasId = await ioasAlloc();
    const iova = 0x20_0000n;
    expect(
      await run(struct('IOMMU_IOAS_MAP', { flags: RW | IOMMU_IOAS_MAP_FIXED_IOVA, ioas_id: ioasId, user_va: self.buffer, length: BUFFER_SIZE, iova })),
    ).toBe(0);
    const ca = testCmd(OP.CREATE_ACCESS!, ioasId, { flags: 1 /* NEEDS_PIN_PAGES */ });
    expect(await io(ca.buf)).toBe(0);
    const accessFd = ca.get('out_access_fd') as number;
    expect(accessFd).toBeGreaterThanOrEqual(3);
    expect(self.fd.files.has(accessFd)).toBe(true);
    expect(await io(testCmd(OP.CREATE_ACCESS!, ioasId, { flags: 2 }).buf)).toBe('EOPNOTSUPP');

    // ACCESS_RW write: bytes from a scratch page of the process land in the buffer at iova + 100
    const scratch = self.proc.mmap({ length: PAGE_SIZE });
    const data = Uint8Array.from({ length: 300 }, (_, i) => (i * 7 + 1) & 0xff);
    self.proc.write(scratch, data);
    const rw = (flags: number, uptr: number, at: bigint, length = data.length) =>
      io(testCmd(OP.ACCESS_RW!, accessFd, { iova: at, length, uptr, flags }).buf);
    expect(await rw(1 /* MOCK_ACCESS_RW_WRITE */, scratch, iova + 4000n)).toBe(0);
    expect(self.proc.read(self.buffer + 4000, data.length)).toEqual(data);
    // ACCESS_RW read (slow path) back into the scratch page at offset 2048
    expect(await rw(1 << 2, scratch + 2048, iova + 4000n)).toBe(0);
    expect(self.proc.read(scratch + 2048, data.length)).toEqual(data);
    expect(await rw(0, scratch, iova + BigInt(BUFFER_SIZE))).toBe('ENOENT');

    // ACCESS_PAGES pins (refs 1), DESTROY_ACCESS_PAGES unpins; a second destroy is ENOENT
    const ap = testCmd(OP.ACCESS_PAGES!, accessFd, { flags: 0, iova, length: 2 * PAGE_SIZE, uptr: self.buffer });
    expect(await io(ap.buf)).toBe(0);
    const pagesId = ap.get('out_access_pages_id') as number;
    expect(await io(testCmd(OP.MD_CHECK_REFS!, 0, { uptr: self.buffer, length: 2 * PAGE_SIZE, refs: 1 }).buf)).toBe(0);
    expect(await io(testCmd(OP.DESTROY_ACCESS_PAGES!, accessFd, { access_pages_id: pagesId }).buf)).toBe(0);
    expect(await io(testCmd(OP.DESTROY_ACCESS_PAGES!, accessFd, { access_pages_id: pagesId }).buf)).toBe('ENOENT');
    expect(await io(testCmd(OP.MD_CHECK_REFS!, 0, { uptr: self.buffer, length: 2 * PAGE_SIZE, refs: 0 }).buf)).toBe(0);

    // ACCESS_REPLACE_IOAS, then close(access fd): later ops on the number fail
    const ioas2 = await ioasAlloc();
    expect(await io(testCmd(OP.ACCESS_REPLACE_IOAS!, accessFd, { ioas_id: ioas2 }).buf)).toBe(0);
    expect(await rw(0, scratch, iova)).toBe('ENOENT'); // nothing mapped in ioas2
    await st.access.destroyAccess(accessFd);
    expect(self.fd.files.has(accessFd)).toBe(false);
    expect(await rw(0, scratch, iova)).toBe('EBADFD');
  });

  it('TRIGGER_IOPF: fault queue + IOPF-capable nested HWPT, all through ioctl()', async () => {
    const ioasId = await ioasAlloc();
    const md = testCmd(OP.MOCK_DOMAIN!, ioasId);
    expect(await io(md.buf)).toBe(0);
    const stdevId = md.get('out_stdev_id') as number;
    const devId = md.get('out_idev_id') as number;

    const parent = struct('IOMMU_HWPT_ALLOC', { flags: IOMMU_HWPT_ALLOC_NEST_PARENT, dev_id: devId, pt_id: ioasId });
    expect(await run(parent)).toBe(0);
    const parentId = parent.get('out_hwpt_id') as number;
    const fq = struct('IOMMU_FAULT_QUEUE_ALLOC');
    expect(await run(fq)).toBe(0);
    const faultId = fq.get('out_fault_id') as number;
    const file = self.fd.files.get(fq.get('out_fault_fd') as number) as FaultFile;

    const data = self.proc.mmap({ length: PAGE_SIZE });
    const sel = new Uint8Array(8);
    new DataView(sel.buffer).setUint32(0, IOMMU_TEST_IOTLB_DEFAULT, true);
    self.proc.write(data, sel);
    const nested = struct('IOMMU_HWPT_ALLOC', {
      flags: IOMMU_HWPT_FAULT_ID_VALID, dev_id: devId, pt_id: parentId, data_type: IOMMU_HWPT_DATA_SELFTEST, data_len: 8, data_uptr: data, fault_id: faultId,
    });
    expect(await run(nested)).toBe(0);
    const iopfHwpt = nested.get('out_hwpt_id') as number;
    // MD_CHECK_IOTLB on the nested HWPT: every slot holds the default
    expect(await io(testCmd(OP.MD_CHECK_IOTLB!, iopfHwpt, { id: 3, iotlb: IOMMU_TEST_IOTLB_DEFAULT }).buf)).toBe(0);
    expect(await io(testCmd(OP.MD_CHECK_IOTLB!, iopfHwpt, { id: 4, iotlb: IOMMU_TEST_IOTLB_DEFAULT }).buf)).toBe('EINVAL');

    const rep = testCmd(OP.MOCK_DOMAIN_REPLACE!, stdevId, { pt_id: iopfHwpt });
    expect(await io(rep.buf)).toBe(0);
    expect(rep.get('pt_id')).toBe(iopfHwpt);

    const perm = IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE;
    expect(await io(testCmd(OP.TRIGGER_IOPF!, 0, { dev_id: devId, pasid: 1, grpid: 2, perm, addr: 0xdeadbeafn }).buf)).toBe(0);
    const rec = file.read(40);
    expect(rec.length).toBe(40);
    const dv = new DataView(rec.buffer, rec.byteOffset, 40);
    expect(dv.getUint32(4, true)).toBe(devId);
    expect(dv.getUint32(12, true)).toBe(2);
    expect(dv.getUint32(16, true)).toBe(perm);
    expect(dv.getBigUint64(24, true)).toBe(0xdeadbeafn);
    const resp = new Uint8Array(8);
    new DataView(resp.buffer).setUint32(0, dv.getUint32(36, true), true);
    new DataView(resp.buffer).setUint32(4, IOMMUFD_PAGE_RESP_SUCCESS, true);
    expect(file.write(resp)).toBe(8);
    expect(await io(testCmd(OP.TRIGGER_IOPF!, 0, { dev_id: 9999, pasid: 1, grpid: 2, perm, addr: 0n }).buf)).toBe('ENOENT');

    expect(await io(testCmd(OP.MOCK_DOMAIN_REPLACE!, stdevId, { pt_id: ioasId }).buf)).toBe(0);
    expect(await run(struct('IOMMU_DESTROY', { id: iopfHwpt }))).toBe(0);
    expect(await run(struct('IOMMU_DESTROY', { id: parentId }))).toBe(0);
  });

  it('mock-device ops without a mock backend answer EOPNOTSUPP; the others still work', async () => {
    enableSelftest(self.fd);
    const ioasId = await ioasAlloc();
    expect(await io(testCmd(OP.MOCK_DOMAIN!, ioasId).buf)).toBe('EOPNOTSUPP');
    expect(await io(testCmd(OP.ADD_RESERVED!, ioasId, { start: 0n, length: BigInt(PAGE_SIZE) }).buf)).toBe(0);
  });
});
