/**
 * The binary ABI against the real typed IommuFd (src/iommufd.ts): ioctl() results must match the
 * typed API, and IommuFd.ioctl() (wired to iommufdIoctl) behaves like the kernel's entry point.
 */
import { describe, expect, it } from 'vitest';
import { IommuError } from '@iommulab/driver-api';
import { fieldOf, ioctlLayout, iommufdIoctl, readField, writeField } from '../src/abi/index.js';
import { IommuFd } from '../src/iommufd.js';
import { Memfd } from '../src/user-memory/index.js';

const PAGE = 4096;

async function openFd(): Promise<IommuFd> {
  return IommuFd.open();
}

function struct(name: string, values: Record<string, number | bigint> = {}, opts: { size?: number; bufLen?: number } = {}) {
  const l = ioctlLayout(name);
  const buf = new Uint8Array(opts.bufLen ?? l.size);
  writeField(buf, fieldOf(l, 'size'), opts.size ?? l.size);
  for (const [k, v] of Object.entries(values)) writeField(buf, fieldOf(l, k), v);
  return { buf, cmd: l.cmd, get: (k: string) => readField(buf, fieldOf(l, k)) };
}

async function outcome(p: Promise<unknown>): Promise<unknown> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof IommuError) return e.errno;
    throw e;
  }
}

describe('binary ABI over the typed IommuFd', () => {
  it('cmd_fail / cmd_ex_fail', async () => {
    const fd = await openFd();
    const io = (cmd: number, arg: Uint8Array | null) => outcome(iommufdIoctl(fd, cmd, arg));
    expect(await io(0x3b80, struct('IOMMU_DESTROY').buf)).toBe('ENOENT');
    expect(await io(0x3b80, null)).toBe('EFAULT');
    expect(await io(0x3b7f, struct('IOMMU_DESTROY').buf)).toBe('ENOTTY');
    const ex = struct('IOMMU_DESTROY', {}, { size: 16, bufLen: 16 });
    expect(await io(ex.cmd, ex.buf)).toBe('ENOENT');
    ex.buf[8] = 1;
    expect(await io(ex.cmd, ex.buf)).toBe('E2BIG');
    await fd.close();
  });

  it.each([
    'IOMMU_DESTROY', 'IOMMU_GET_HW_INFO', 'IOMMU_HWPT_ALLOC', 'IOMMU_HWPT_INVALIDATE', 'IOMMU_IOAS_ALLOC',
    'IOMMU_IOAS_IOVA_RANGES', 'IOMMU_IOAS_ALLOW_IOVAS', 'IOMMU_IOAS_MAP', 'IOMMU_IOAS_COPY', 'IOMMU_IOAS_UNMAP',
    'IOMMU_OPTION', 'IOMMU_VFIO_IOAS', 'IOMMU_IOAS_MAP_FILE', 'IOMMU_VIOMMU_ALLOC', 'IOMMU_VDEVICE_ALLOC',
    'IOMMU_IOAS_CHANGE_PROCESS',
  ])('cmd_length %s', async (name) => {
    const fd = await openFd();
    const l = ioctlLayout(name);
    const s = struct(name, {}, { size: l.minSize - 1, bufLen: l.size + 1 });
    s.buf[l.size] = 0xff;
    const io = () => outcome(iommufdIoctl(fd, s.cmd, s.buf));
    expect(await io()).toBe('EINVAL');
    writeField(s.buf, fieldOf(l, 'size'), l.size + 1);
    expect(await io()).toBe('E2BIG');
    writeField(s.buf, fieldOf(l, 'size'), l.size);
    const exact = await io();
    writeField(s.buf, fieldOf(l, 'size'), l.size + 1);
    s.buf[l.size] = 0;
    expect(await io()).toBe(exact);
    await fd.close();
  });

  it('IOAS_ALLOC / MAP / IOVA_RANGES / UNMAP / OPTION round trips match the typed API', async () => {
    const fd = await openFd();
    const io = (s: { cmd: number; buf: Uint8Array }) => outcome(iommufdIoctl(fd, s.cmd, s.buf));

    const alloc = struct('IOMMU_IOAS_ALLOC');
    expect(await io(alloc)).toBe(0);
    const ioasId = alloc.get('out_ioas_id') as number;
    const typed = await fd.ioasAlloc({ flags: 0 });
    expect(typed.outIoasId).toBe(ioasId + 1);

    const proc = fd.process;
    const va = proc.mmap({ length: 4 * PAGE });
    const map = struct('IOMMU_IOAS_MAP', { flags: 6, ioas_id: ioasId, user_va: va, length: 4 * PAGE });
    expect(await io(map)).toBe(0);
    const iova = map.get('iova') as bigint;
    const typedMap = await fd.ioasMap({ flags: 6, ioasId: typed.outIoasId, userVa: va, length: 4 * PAGE });
    expect(typedMap.iova).toBe(iova);

    const arr = proc.mmap({ length: PAGE });
    const ranges = struct('IOMMU_IOAS_IOVA_RANGES', { ioas_id: ioasId, num_iovas: 8, allowed_iovas: arr });
    expect(await io(ranges)).toBe(0);
    const t = await fd.ioasIovaRanges({ ioasId, numIovas: 8 });
    expect(ranges.get('num_iovas')).toBe(t.numIovas);
    expect(ranges.get('out_iova_alignment')).toBe(BigInt(t.outIovaAlignment));
    const dv = new DataView(proc.read(arr, 16 * t.numIovas).buffer);
    t.allowedIovas.forEach((r, i) => {
      expect([dv.getBigUint64(16 * i, true), dv.getBigUint64(16 * i + 8, true)]).toEqual([r.start, r.last]);
    });
    const none = struct('IOMMU_IOAS_IOVA_RANGES', { ioas_id: ioasId, num_iovas: 0 });
    expect(await io(none)).toBe('EMSGSIZE');
    expect(none.get('num_iovas')).toBe(t.numIovas);

    const unmap = struct('IOMMU_IOAS_UNMAP', { ioas_id: ioasId, iova, length: 4 * PAGE });
    expect(await io(unmap)).toBe(0);
    expect(unmap.get('length')).toBe(BigInt(4 * PAGE));
    const again = struct('IOMMU_IOAS_UNMAP', { ioas_id: ioasId, iova, length: 4 * PAGE });
    expect(await io(again)).toBe('ENOENT');

    const rl = struct('IOMMU_OPTION', { option_id: 0, op: 1, val64: 7 });
    expect(await io(rl)).toBe(0);
    expect(rl.get('val64')).toBe(BigInt((await fd.option({ optionId: 0, op: 1, objectId: 0 })).val64));
    const hp = struct('IOMMU_OPTION', { option_id: 1, op: 1, object_id: ioasId });
    expect(await io(hp)).toBe(0);
    expect(hp.get('val64')).toBe(1n);
    const hp0 = struct('IOMMU_OPTION', { option_id: 1, op: 1, object_id: 0 });
    expect(await io(hp0)).toBe('ENOENT');

    expect(await io(struct('IOMMU_DESTROY', { id: ioasId }))).toBe(0);
    expect(await io(struct('IOMMU_DESTROY', { id: ioasId }))).toBe('ENOENT');
    await fd.close();
  });

  it('IommuFd.ioctl(): MAP_FILE through the fd table, EBADF after close', async () => {
    const fd = await openFd();
    const alloc = struct('IOMMU_IOAS_ALLOC');
    expect(await outcome(fd.ioctl(alloc.cmd, alloc.buf))).toBe(0);
    const ioasId = alloc.get('out_ioas_id') as number;
    const memfd = Memfd.create(fd.process.mem, 4 * PAGE);
    const n = fd.files.install(memfd);
    const mf = struct('IOMMU_IOAS_MAP_FILE', { flags: 7, ioas_id: ioasId, fd: n, start: 0, length: 2 * PAGE, iova: 0x10_0000 });
    expect(await outcome(fd.ioctl(mf.cmd, mf.buf))).toBe(0);
    expect(mf.get('iova')).toBe(0x10_0000n);
    const bad = struct('IOMMU_IOAS_MAP_FILE', { flags: 7, ioas_id: ioasId, fd: n + 1, length: 2 * PAGE, iova: 0x20_0000 });
    expect(await outcome(fd.ioctl(bad.cmd, bad.buf))).toBe('EBADF');
    const auto = struct('IOMMU_IOAS_MAP_FILE', { flags: 6, ioas_id: ioasId, fd: n, start: 2 * PAGE, length: 2 * PAGE });
    expect(await outcome(fd.ioctl(auto.cmd, auto.buf))).toBe(0);
    const typed = await fd.ioasIovaRanges({ ioasId, numIovas: 4 });
    expect(typed.numIovas).toBe(1);
    await fd.close();
    expect(await outcome(fd.ioctl(alloc.cmd, alloc.buf))).toBe('EBADF');
  });
});

