/**
 * iommufdIoctl() against a stand-in IommuFd (a fake typed API recording its calls) and a fake user
 * address space: the ioctl calling convention, struct decoding/encoding and write-back rules, ported
 * from the kernel selftests cmd_fail / cmd_length / cmd_ex_fail, plus round trips.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { IommuError } from '@iommulab/driver-api';
import { IommufdError, fail } from '../src/errors.js';
import { PhysMem } from '@iommulab/runtime';
import {
  FdTable,
  USER_ADDR_LIMIT,
  fieldOf,
  ioctlLayout,
  iommufdIoctl,
  readField,
  writeField,
  type UserMemory,
} from '../src/abi/index.js';
import { TASK_SIZE, UserProcess } from '../src/user-memory/index.js';

const PAGE = 4096;

/** A sparse user address space: only mmap()ed pages are accessible. */
class FakeMemory implements UserMemory {
  readonly pages = new Map<number, Uint8Array>();
  mmap(addr: number, length: number): number {
    for (let p = Math.floor(addr / PAGE); p < Math.ceil((addr + length) / PAGE); p++) this.pages.set(p, new Uint8Array(PAGE));
    return addr;
  }
  #page(addr: number): Uint8Array {
    const p = this.pages.get(Math.floor(addr / PAGE));
    if (!p) fail('EFAULT', `unmapped user address 0x${addr.toString(16)}`);
    return p;
  }
  read(addr: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.#page(addr + i)[(addr + i) % PAGE];
    return out;
  }
  write(addr: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) this.#page(addr + i);
    for (let i = 0; i < data.length; i++) this.#page(addr + i)[(addr + i) % PAGE] = data[i];
  }
}

interface Range {
  start: bigint;
  last: bigint;
}

/** A minimal typed IommuFd: IOAS objects with areas, options; HWPT & co. only where a test adds them. */
class FakeIommuFd {
  readonly process = new FakeMemory();
  readonly files = new FdTable();
  readonly calls: [string, Record<string, unknown>][] = [];
  nextId = 1;
  ioas = new Map<number, { areas: Map<bigint, bigint>; allowed: Range[] }>();
  ranges: Range[] = [{ start: 0n, last: (1n << 64n) - 1n }];
  alignment = 1n;
  rlimitMode = 0n;

  #log(name: string, a: Record<string, unknown>): void {
    this.calls.push([name, { ...a }]);
  }
  #get(id: number) {
    return this.ioas.get(id) ?? fail('ENOENT', `no IOAS ${id}`);
  }
  async destroy(a: { id: number }): Promise<void> {
    this.#log('destroy', a);
    if (!this.ioas.delete(a.id)) fail('ENOENT', `no object ${a.id}`);
  }
  async ioasAlloc(a: { flags: number }): Promise<{ outIoasId: number }> {
    this.#log('ioasAlloc', a);
    if (a.flags) fail('EOPNOTSUPP', 'flags');
    const id = this.nextId++;
    this.ioas.set(id, { areas: new Map(), allowed: [] });
    return { outIoasId: id };
  }
  async ioasMap(a: { flags: number; ioasId: number; userVa: bigint; length: bigint; iova: bigint }): Promise<{ iova: bigint }> {
    this.#log('ioasMap', a);
    if (a.flags & ~7) fail('EOPNOTSUPP', 'flags');
    if (!(a.flags & 6)) fail('EINVAL', 'no prot');
    const ioas = this.#get(a.ioasId);
    if (a.length === 0n) fail('EINVAL', 'length 0');
    const iova = a.flags & 1 ? a.iova : 0x10_0000n * BigInt(ioas.areas.size + 1);
    ioas.areas.set(iova, a.length);
    return { iova };
  }
  async ioasUnmap(a: { ioasId: number; iova: bigint; length: bigint }): Promise<{ length: bigint }> {
    this.#log('ioasUnmap', a);
    const ioas = this.#get(a.ioasId);
    const len = ioas.areas.get(a.iova);
    if (len === undefined || len > a.length) fail('ENOENT', 'no area');
    ioas.areas.delete(a.iova);
    return { length: len };
  }
  async ioasIovaRanges(a: { ioasId: number; numIovas: number }) {
    this.#log('ioasIovaRanges', a);
    this.#get(a.ioasId);
    const out = { numIovas: this.ranges.length, outIovaAlignment: this.alignment };
    if (this.ranges.length > a.numIovas) throw new IommufdError('EMSGSIZE', 'too many ranges', out);
    return { ...out, allowedIovas: this.ranges.map((r) => ({ ...r })) };
  }
  async ioasAllowIovas(a: { ioasId: number; allowedIovas: readonly Range[] }): Promise<void> {
    this.#log('ioasAllowIovas', { ioasId: a.ioasId });
    const ioas = this.#get(a.ioasId);
    const list: Range[] = [];
    for (const r of a.allowedIovas) {
      if (r.start >= r.last) fail('EINVAL', 'start >= last');
      list.push({ start: r.start, last: r.last });
    }
    ioas.allowed = list;
  }
  async ioasMapFile(a: { flags: number; ioasId: number; fd: object; start: bigint; length: bigint; iova: bigint }) {
    this.#log('ioasMapFile', { flags: a.flags, ioasId: a.ioasId });
    if (!(a.flags & 6)) fail('EINVAL', 'no prot');
    const ioas = this.#get(a.ioasId);
    const file = a.fd; // fget after the IOAS lookup, as ioas.c
    if (!(file instanceof FakeMemfd)) fail('EINVAL', 'not a memfd');
    ioas.areas.set(a.iova, a.length);
    return { iova: a.iova };
  }
  async option(a: { optionId: number; op: number; objectId: number; val64: bigint }): Promise<{ val64: bigint }> {
    this.#log('option', a);
    if (a.optionId !== 0) fail('EOPNOTSUPP', 'option');
    if (a.op === 1) return { val64: this.rlimitMode };
    if (a.val64 > 1n) fail('EINVAL', 'mode');
    this.rlimitMode = a.val64;
    return { val64: a.val64 };
  }
  async ioasChangeProcess(a: object): Promise<void> {
    this.#log('ioasChangeProcess', a as Record<string, unknown>);
  }
}

class FakeMemfd {}

/** A struct of `layout` in a buffer of `bufLen` bytes (default sizeof), `size` = sizeof unless given. */
function struct(name: string, values: Record<string, number | bigint> = {}, opts: { size?: number; bufLen?: number } = {}) {
  const l = ioctlLayout(name);
  const buf = new Uint8Array(opts.bufLen ?? l.size);
  writeField(buf, fieldOf(l, 'size'), opts.size ?? l.size);
  for (const [k, v] of Object.entries(values)) writeField(buf, fieldOf(l, k), v);
  return {
    buf,
    cmd: l.cmd,
    get: (k: string) => readField(buf, fieldOf(l, k)),
  };
}

async function outcome(p: Promise<number>): Promise<number | string> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof IommuError) return e.errno;
    throw e;
  }
}

let fd: FakeIommuFd;
const io = (cmd: number, arg: Uint8Array | null) => outcome(iommufdIoctl(fd, cmd, arg));

beforeEach(() => {
  fd = new FakeIommuFd();
});

describe('FIXTURE iommufd (binary ABI)', () => {
  it('cmd_fail', async () => {
    // object id is invalid
    expect(await io(0x3b80, struct('IOMMU_DESTROY', { id: 0 }).buf)).toBe('ENOENT');
    // bad pointer
    expect(await io(0x3b80, null)).toBe('EFAULT');
    // unknown ioctl: _IO(';', IOMMUFD_CMD_BASE - 1)
    expect(await io(0x3b7f, struct('IOMMU_DESTROY').buf)).toBe('ENOTTY');
    expect(await io(0x3b7f, null)).toBe('ENOTTY');
    // past the table (0x95..; IOMMU_TEST_CMD 0xa0 is not modelled) → vfio compat → ENOTTY
    expect(await io(0x3b95, struct('IOMMU_DESTROY').buf)).toBe('ENOTTY');
    expect(await io(0x3ba0, struct('IOMMU_DESTROY').buf)).toBe('ENOTTY');
    // right nr, wrong request (_IOW-style size/dir bits or another type): size read first, then ENOTTY
    expect(await io(0x40083b80, null)).toBe('EFAULT');
    expect(await io(0x40083b80, struct('IOMMU_DESTROY').buf)).toBe('ENOTTY');
    expect(await io(0x4180, struct('IOMMU_DESTROY').buf)).toBe('ENOTTY');
  });

  it('routes numbers outside the table to vfioCompatIoctl when the target has one', async () => {
    const seen: number[] = [];
    const t = Object.assign(fd, { vfioCompatIoctl: (cmd: number) => (seen.push(cmd), 0) });
    expect(await outcome(iommufdIoctl(t, 0x3b64, null))).toBe(0);
    expect(seen).toEqual([0x3b64]);
  });

  // TEST_LENGTH(_struct, _ioctl, _last) for the 16 structs of the selftest
  const CMD_LENGTH = [
    'IOMMU_DESTROY', 'IOMMU_GET_HW_INFO', 'IOMMU_HWPT_ALLOC', 'IOMMU_HWPT_INVALIDATE', 'IOMMU_IOAS_ALLOC',
    'IOMMU_IOAS_IOVA_RANGES', 'IOMMU_IOAS_ALLOW_IOVAS', 'IOMMU_IOAS_MAP', 'IOMMU_IOAS_COPY', 'IOMMU_IOAS_UNMAP',
    'IOMMU_OPTION', 'IOMMU_VFIO_IOAS', 'IOMMU_IOAS_MAP_FILE', 'IOMMU_VIOMMU_ALLOC', 'IOMMU_VDEVICE_ALLOC',
    'IOMMU_IOAS_CHANGE_PROCESS',
  ];
  it.each(CMD_LENGTH)('cmd_length %s', async (name) => {
    const l = ioctlLayout(name);
    // struct { struct _struct cmd; uint8_t extra; } cmd = { .cmd = { .size = min_size - 1 }, .extra = UINT8_MAX };
    const s = struct(name, {}, { size: l.minSize - 1, bufLen: l.size + 1 });
    s.buf[l.size] = 0xff;
    expect(await io(s.cmd, s.buf)).toBe('EINVAL');
    writeField(s.buf, fieldOf(l, 'size'), l.size + 1);
    expect(await io(s.cmd, s.buf)).toBe('E2BIG');
    expect(fd.calls).toEqual([]);
    writeField(s.buf, fieldOf(l, 'size'), l.size);
    const exact = await io(s.cmd, s.buf);
    const exactCalls = fd.calls.splice(0);
    writeField(s.buf, fieldOf(l, 'size'), l.size + 1);
    s.buf[l.size] = 0;
    expect(await io(s.cmd, s.buf)).toBe(exact);
    // the typed side saw the same arguments (modulo the outputs the exact call wrote back, e.g. a new IOAS id)
    expect(fd.calls.map(([m]) => m)).toEqual(exactCalls.map(([m]) => m));
  });

  it('cmd_ex_fail', async () => {
    // struct { struct iommu_destroy cmd; __u64 future; } cmd = { .cmd = { .size = sizeof(cmd), .id = 0 } };
    const s = struct('IOMMU_DESTROY', { id: 0 }, { size: 16, bufLen: 16 });
    expect(await io(s.cmd, s.buf)).toBe('ENOENT');
    s.buf[8] = 1; // future = 1
    expect(await io(s.cmd, s.buf)).toBe('E2BIG');
    writeField(s.buf, fieldOf(ioctlLayout('IOMMU_DESTROY'), 'size'), 8);
    expect(await io(s.cmd, s.buf)).toBe('ENOENT');
    writeField(s.buf, fieldOf(ioctlLayout('IOMMU_DESTROY'), 'size'), 7);
    expect(await io(s.cmd, s.buf)).toBe('EINVAL');
  });

  it('a size larger than the argument buffer faults', async () => {
    const s = struct('IOMMU_DESTROY', { id: 0 }, { size: 12 });
    expect(await io(s.cmd, s.buf)).toBe('EFAULT');
  });

  it('answers EOPNOTSUPP for an ioctl whose typed method does not exist yet (after the size checks)', async () => {
    const s = struct('IOMMU_HWPT_ALLOC', { dev_id: 1, pt_id: 2 });
    expect(await io(s.cmd, s.buf)).toBe('EOPNOTSUPP');
    const short = struct('IOMMU_HWPT_ALLOC', {}, { size: 23 });
    expect(await io(short.cmd, short.buf)).toBe('EINVAL');
    // min_size 24 < sizeof 48: a 24-byte struct is accepted and zero-extended
    const small = struct('IOMMU_HWPT_ALLOC', {}, { size: 24, bufLen: 24 });
    expect(await io(small.cmd, small.buf)).toBe('EOPNOTSUPP');
  });
});

describe('round trips through ioctl()', () => {
  it('IOAS_ALLOC writes out_ioas_id; a short size truncates the write-back', async () => {
    const a = struct('IOMMU_IOAS_ALLOC');
    expect(await io(a.cmd, a.buf)).toBe(0);
    expect(a.get('out_ioas_id')).toBe(1);
    expect(fd.calls).toEqual([['ioasAlloc', { flags: 0 }]]);
    const bad = struct('IOMMU_IOAS_ALLOC', { flags: 1 });
    expect(await io(bad.cmd, bad.buf)).toBe('EOPNOTSUPP');
    expect(bad.get('out_ioas_id')).toBe(0);
    // a 16-byte caller struct (newer userspace) with zero tail: 12 bytes written back, tail untouched
    const big = struct('IOMMU_IOAS_ALLOC', {}, { size: 16, bufLen: 16 });
    expect(await io(big.cmd, big.buf)).toBe(0);
    expect(big.get('out_ioas_id')).toBe(2);
    expect([...big.buf.subarray(12)]).toEqual([0, 0, 0, 0]);
  });

  it('IOAS_MAP: u64 fields as bigints, iova written back, __reserved → EOPNOTSUPP before the typed call', async () => {
    await io(0x3b81, struct('IOMMU_IOAS_ALLOC').buf);
    // hand-built struct iommu_ioas_map
    const buf = new Uint8Array(40);
    const dv = new DataView(buf.buffer);
    dv.setUint32(0, 40, true);
    dv.setUint32(4, 6, true); // READABLE | WRITEABLE, automatic IOVA
    dv.setUint32(8, 1, true);
    dv.setBigUint64(16, 0x7fff_0000_1000n, true);
    dv.setBigUint64(24, 0x4000n, true);
    dv.setBigUint64(32, 0xdeadn, true); // ignored input without FIXED_IOVA
    expect(await io(0x3b85, buf)).toBe(0);
    expect(fd.calls.at(-1)).toEqual(['ioasMap', { flags: 6, ioasId: 1, userVa: 0x7fff_0000_1000n, length: 0x4000n, iova: 0xdeadn }]);
    expect(dv.getBigUint64(32, true)).toBe(0x10_0000n);
    expect(dv.getUint32(0, true)).toBe(40);

    dv.setUint32(12, 1, true);
    const n = fd.calls.length;
    expect(await io(0x3b85, buf)).toBe('EOPNOTSUPP');
    expect(fd.calls.length).toBe(n);

    // errors leave the struct untouched
    const fixed = struct('IOMMU_IOAS_MAP', { flags: 7, ioas_id: 9, user_va: 0x1000, length: 0x1000, iova: 0x5000 });
    const before = fixed.buf.slice();
    expect(await io(fixed.cmd, fixed.buf)).toBe('ENOENT');
    expect(fixed.buf).toEqual(before);
  });

  it('IOAS_UNMAP writes back the unmapped length; IOAS_COPY is EOPNOTSUPP until typed', async () => {
    await io(0x3b81, struct('IOMMU_IOAS_ALLOC').buf);
    const m = struct('IOMMU_IOAS_MAP', { flags: 7, ioas_id: 1, user_va: 0x1000, length: 0x3000, iova: 0x40_0000 });
    expect(await io(m.cmd, m.buf)).toBe(0);
    const u = struct('IOMMU_IOAS_UNMAP', { ioas_id: 1, iova: 0x40_0000, length: 0x1_0000 });
    expect(await io(u.cmd, u.buf)).toBe(0);
    expect(u.get('length')).toBe(0x3000n);
    const again = struct('IOMMU_IOAS_UNMAP', { ioas_id: 1, iova: 0x40_0000, length: 0x1_0000 });
    expect(await io(again.cmd, again.buf)).toBe('ENOENT');
    expect(again.get('length')).toBe(0x1_0000n);
    const c = struct('IOMMU_IOAS_COPY', { flags: 7, dst_ioas_id: 1, src_ioas_id: 1, length: 0x1000 });
    expect(await io(c.cmd, c.buf)).toBe('EOPNOTSUPP');
  });

  it('IOAS_IOVA_RANGES fills the user array; EMSGSIZE writes num_iovas, alignment and the entries that fit', async () => {
    await io(0x3b81, struct('IOMMU_IOAS_ALLOC').buf);
    const arr = fd.process.mmap(0x10_0000, PAGE);
    // one range, capacity 1
    const r = struct('IOMMU_IOAS_IOVA_RANGES', { ioas_id: 1, num_iovas: 1, allowed_iovas: arr });
    expect(await io(r.cmd, r.buf)).toBe(0);
    expect(r.get('num_iovas')).toBe(1);
    expect(r.get('out_iova_alignment')).toBe(1n);
    const dv = new DataView(fd.process.read(arr, 32).buffer);
    expect([dv.getBigUint64(0, true), dv.getBigUint64(8, true)]).toEqual([0n, (1n << 64n) - 1n]);

    // capacity 0, NULL array → EMSGSIZE with the count written back
    const z = struct('IOMMU_IOAS_IOVA_RANGES', { ioas_id: 1, num_iovas: 0, allowed_iovas: 0 });
    expect(await io(z.cmd, z.buf)).toBe('EMSGSIZE');
    expect(z.get('num_iovas')).toBe(1);

    // three ranges, capacity 2: the first two are written, the third slot is untouched
    fd.ranges = [
      { start: 0x1000n, last: 0x1fffn },
      { start: 0x3000n, last: 0x3fffn },
      { start: 0x5000n, last: 0xffff_ffffn },
    ];
    fd.alignment = 2048n;
    fd.process.write(arr, new Uint8Array(48).fill(0xee));
    const two = struct('IOMMU_IOAS_IOVA_RANGES', { ioas_id: 1, num_iovas: 2, allowed_iovas: arr });
    expect(await io(two.cmd, two.buf)).toBe('EMSGSIZE');
    expect(two.get('num_iovas')).toBe(3);
    expect(two.get('out_iova_alignment')).toBe(2048n);
    const d2 = new DataView(fd.process.read(arr, 48).buffer);
    expect([d2.getBigUint64(0, true), d2.getBigUint64(8, true), d2.getBigUint64(16, true), d2.getBigUint64(24, true)]).toEqual([
      0x1000n, 0x1fffn, 0x3000n, 0x3fffn,
    ]);
    expect(d2.getBigUint64(32, true)).toBe(0xeeee_eeee_eeee_eeeen);

    // unmapped array → EFAULT and no write-back
    const f = struct('IOMMU_IOAS_IOVA_RANGES', { ioas_id: 1, num_iovas: 3, allowed_iovas: 0x90_0000 });
    expect(await io(f.cmd, f.buf)).toBe('EFAULT');
    expect(f.get('num_iovas')).toBe(3);
    expect(f.get('out_iova_alignment')).toBe(0n);
    // __reserved
    const res = struct('IOMMU_IOAS_IOVA_RANGES', { ioas_id: 1, __reserved: 1 });
    expect(await io(res.cmd, res.buf)).toBe('EOPNOTSUPP');
  });

  it('IOAS_ALLOW_IOVAS reads the user array lazily, in the kernel order', async () => {
    await io(0x3b81, struct('IOMMU_IOAS_ALLOC').buf);
    const arr = fd.process.mmap(0x20_0000, PAGE);
    const ranges = new Uint8Array(32);
    const dv = new DataView(ranges.buffer);
    dv.setBigUint64(0, 0x1000n, true);
    dv.setBigUint64(8, 0x1fffn, true);
    dv.setBigUint64(16, 0x8000n, true);
    dv.setBigUint64(24, 0x8000n, true); // start == last → EINVAL
    fd.process.write(arr, ranges);
    const ok = struct('IOMMU_IOAS_ALLOW_IOVAS', { ioas_id: 1, num_iovas: 1, allowed_iovas: arr });
    expect(await io(ok.cmd, ok.buf)).toBe(0);
    expect(fd.ioas.get(1)?.allowed).toEqual([{ start: 0x1000n, last: 0x1fffn }]);
    const bad = struct('IOMMU_IOAS_ALLOW_IOVAS', { ioas_id: 1, num_iovas: 2, allowed_iovas: arr });
    expect(await io(bad.cmd, bad.buf)).toBe('EINVAL');
    // unknown IOAS beats a bad pointer (lookup comes before copy_from_user)
    const noIoas = struct('IOMMU_IOAS_ALLOW_IOVAS', { ioas_id: 7, num_iovas: 1, allowed_iovas: 0 });
    expect(await io(noIoas.cmd, noIoas.buf)).toBe('ENOENT');
    const nul = struct('IOMMU_IOAS_ALLOW_IOVAS', { ioas_id: 1, num_iovas: 1, allowed_iovas: 0 });
    expect(await io(nul.cmd, nul.buf)).toBe('EFAULT');
    // the array runs off the mapped page: the first entry is EINVAL-free, the fault comes at entry 1
    const edge = struct('IOMMU_IOAS_ALLOW_IOVAS', { ioas_id: 1, num_iovas: 2, allowed_iovas: arr + PAGE - 16 });
    fd.process.write(arr + PAGE - 16, ranges.subarray(0, 16));
    expect(await io(edge.cmd, edge.buf)).toBe('EFAULT');
    // num_iovas 0 clears, the pointer is never read
    const clear = struct('IOMMU_IOAS_ALLOW_IOVAS', { ioas_id: 1, num_iovas: 0, allowed_iovas: 0 });
    expect(await io(clear.cmd, clear.buf)).toBe(0);
    expect(fd.ioas.get(1)?.allowed).toEqual([]);
  });

  it('OPTION: GET writes val64 only; SET range error leaves the struct alone', async () => {
    const g = struct('IOMMU_OPTION', { option_id: 0, op: 1, val64: 1 });
    expect(await io(g.cmd, g.buf)).toBe(0);
    expect(g.get('val64')).toBe(0n);
    const s = struct('IOMMU_OPTION', { option_id: 0, op: 0, val64: 1 });
    expect(await io(s.cmd, s.buf)).toBe(0);
    const s2 = struct('IOMMU_OPTION', { option_id: 0, op: 0, val64: 2 });
    expect(await io(s2.cmd, s2.buf)).toBe('EINVAL');
    expect(s2.get('val64')).toBe(2n);
    const g2 = struct('IOMMU_OPTION', { option_id: 0, op: 1 });
    expect(await io(g2.cmd, g2.buf)).toBe(0);
    expect(g2.get('val64')).toBe(1n);
    expect(fd.calls.at(-1)).toEqual(['option', { optionId: 0, op: 1, objectId: 0, val64: 0n }]);
    const r = struct('IOMMU_OPTION', { option_id: 0, op: 1, __reserved: 1 });
    expect(await io(r.cmd, r.buf)).toBe('EOPNOTSUPP');
  });

  it('IOAS_MAP_FILE maps the fd number through the fd table, after the IOAS lookup', async () => {
    await io(0x3b81, struct('IOMMU_IOAS_ALLOC').buf);
    const memfd = new FakeMemfd();
    const n = fd.files.install(memfd);
    const ok = struct('IOMMU_IOAS_MAP_FILE', { flags: 7, ioas_id: 1, fd: n, start: 0, length: 0x1000, iova: 0x8000 });
    expect(await io(ok.cmd, ok.buf)).toBe(0);
    expect(ok.get('iova')).toBe(0x8000n);
    const badFd = struct('IOMMU_IOAS_MAP_FILE', { flags: 7, ioas_id: 1, fd: -1, length: 0x1000, iova: 0x9000 });
    expect(await io(badFd.cmd, badFd.buf)).toBe('EBADF');
    const badIoas = struct('IOMMU_IOAS_MAP_FILE', { flags: 7, ioas_id: 5, fd: -1, length: 0x1000 });
    expect(await io(badIoas.cmd, badIoas.buf)).toBe('ENOENT');
  });

  it('IOAS_CHANGE_PROCESS checks __reserved; DESTROY reaches the typed destroy', async () => {
    const c = struct('IOMMU_IOAS_CHANGE_PROCESS', { __reserved: 1 });
    expect(await io(c.cmd, c.buf)).toBe('EOPNOTSUPP');
    expect(await io(c.cmd, struct('IOMMU_IOAS_CHANGE_PROCESS').buf)).toBe(0);
    await io(0x3b81, struct('IOMMU_IOAS_ALLOC').buf);
    expect(await io(0x3b80, struct('IOMMU_DESTROY', { id: 1 }).buf)).toBe(0);
    expect(await io(0x3b80, struct('IOMMU_DESTROY', { id: 1 }).buf)).toBe('ENOENT');
  });
});

describe('ioctls routed to later typed methods (contract of the args the ABI passes)', () => {
  it('HWPT_INVALIDATE writes entry_num back on success and on every error', async () => {
    const seen: Record<string, unknown>[] = [];
    const t = Object.assign(fd, {
      hwptInvalidate: async (a: Record<string, unknown>) => {
        seen.push({ ...a });
        const data = a.data as Uint8Array;
        if (data[8] === 0xff) throw new IommufdError('EOPNOTSUPP', 'bad entry', { entryNum: 1 });
        return { entryNum: a.entryNum };
      },
    });
    const arr = fd.process.mmap(0x30_0000, PAGE);
    const call = (v: Record<string, number | bigint>) => {
      const s = struct('IOMMU_HWPT_INVALIDATE', v);
      return outcome(iommufdIoctl(t, s.cmd, s.buf)).then((r) => [r, s.get('entry_num')]);
    };
    expect(await call({ hwpt_id: 3, data_uptr: arr, data_type: 0xdeadbeef, entry_len: 8, entry_num: 2 })).toEqual([0, 2]);
    expect(seen[0]).toEqual({ hwptId: 3, dataType: 0xdeadbeef, entryLen: 8, entryNum: 2, data: new Uint8Array(16) });
    fd.process.write(arr + 8, Uint8Array.of(0xff));
    expect(await call({ hwpt_id: 3, data_uptr: arr, data_type: 1, entry_len: 8, entry_num: 2 })).toEqual(['EOPNOTSUPP', 1]);
    expect(await call({ hwpt_id: 3, data_uptr: 0, entry_len: 8, entry_num: 1 })).toEqual(['EINVAL', 0]);
    expect(await call({ hwpt_id: 3, data_uptr: arr, entry_len: 0, entry_num: 1 })).toEqual(['EINVAL', 0]);
    expect(await call({ hwpt_id: 3, __reserved: 1, entry_num: 1 })).toEqual(['EOPNOTSUPP', 0]);
    expect(await call({ hwpt_id: 3, data_uptr: 0x90_0000, entry_len: 8, entry_num: 1 })).toEqual(['EFAULT', 0]);
    expect(seen.length).toBe(2);
  });

  it('HWPT_ALLOC passes dataLen and a lazy data blob; out_hwpt_id written back', async () => {
    let got: Record<string, unknown> = {};
    const t = Object.assign(fd, {
      hwptAlloc: async (a: Record<string, unknown>) => {
        // check first: spreading `a` reads the lazy `data` getter (copy_from_user) and could fault
        if ((a.dataType as number) === 0 && (a.dataLen as number) !== 0) fail('EINVAL', 'data with NONE');
        got = { ...a };
        return { outHwptId: 42 };
      },
    });
    const p = fd.process.mmap(0x40_0000, PAGE);
    fd.process.write(p, Uint8Array.of(1, 2, 3, 4));
    const s = struct('IOMMU_HWPT_ALLOC', { flags: 1, dev_id: 2, pt_id: 3, data_type: 0xdead, data_len: 4, data_uptr: p, fault_id: 9 });
    expect(await outcome(iommufdIoctl(t, s.cmd, s.buf))).toBe(0);
    expect(s.get('out_hwpt_id')).toBe(42);
    expect(got).toEqual({ flags: 1, devId: 2, ptId: 3, dataType: 0xdead, dataLen: 4, faultId: 9, data: Uint8Array.of(1, 2, 3, 4) });
    // NONE with a length and a NULL pointer: the typed EINVAL wins, the pointer is never read
    const n = struct('IOMMU_HWPT_ALLOC', { data_type: 0, data_len: 8, data_uptr: 0 });
    expect(await outcome(iommufdIoctl(t, n.cmd, n.buf))).toBe('EINVAL');
    const r = struct('IOMMU_HWPT_ALLOC', { __reserved: 1 });
    expect(await outcome(iommufdIoctl(t, r.cmd, r.buf))).toBe('EOPNOTSUPP');
  });

  it('GET_HW_INFO copies min(data_len, kernel len), zeroes the rest, reports the kernel length', async () => {
    const t = Object.assign(fd, {
      getHwInfo: async () => ({ data: Uint8Array.of(0, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde), outDataType: 0xfeedbeef, outMaxPasidLog2: 20, outCapabilities: 1n }),
    });
    const p = fd.process.mmap(0x50_0000, PAGE);
    fd.process.write(p, new Uint8Array(16).fill(0x55));
    const s = struct('IOMMU_GET_HW_INFO', { dev_id: 1, data_len: 16, data_uptr: p });
    expect(await outcome(iommufdIoctl(t, s.cmd, s.buf))).toBe(0);
    expect([...fd.process.read(p, 16)]).toEqual([0, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect([s.get('data_len'), s.get('out_data_type'), s.get('out_max_pasid_log2'), s.get('out_capabilities')]).toEqual([8, 0xfeedbeef, 20, 1n]);
    fd.process.write(p, new Uint8Array(16).fill(0x55));
    const small = struct('IOMMU_GET_HW_INFO', { dev_id: 1, data_len: 4, data_uptr: p });
    expect(await outcome(iommufdIoctl(t, small.cmd, small.buf))).toBe(0);
    expect([...fd.process.read(p, 6)]).toEqual([0, 0, 0, 0, 0x55, 0x55]);
    const zero = struct('IOMMU_GET_HW_INFO', { dev_id: 1, data_len: 0, data_uptr: 0 });
    expect(await outcome(iommufdIoctl(t, zero.cmd, zero.buf))).toBe(0);
    const res = struct('IOMMU_GET_HW_INFO', { dev_id: 1 });
    res.buf[30] = 1; // __reserved[1]
    expect(await outcome(iommufdIoctl(t, res.cmd, res.buf))).toBe('EOPNOTSUPP');
  });

  it('FAULT_QUEUE_ALLOC / VEVENTQ_ALLOC install returned file objects in the fd table', async () => {
    const fault = { kind: 'fault' };
    const t = Object.assign(fd, {
      faultQueueAlloc: async () => ({ outFaultId: 5, outFaultFd: fault }),
      veventqAlloc: async () => ({ outVeventqId: 6, outVeventqFd: 17 }),
    });
    const s = struct('IOMMU_FAULT_QUEUE_ALLOC');
    expect(await outcome(iommufdIoctl(t, s.cmd, s.buf))).toBe(0);
    expect(s.get('out_fault_id')).toBe(5);
    expect(fd.files.get(s.get('out_fault_fd') as number)).toBe(fault);
    const v = struct('IOMMU_VEVENTQ_ALLOC', { viommu_id: 1, type: 1, veventq_depth: 2 });
    expect(await outcome(iommufdIoctl(t, v.cmd, v.buf))).toBe(0);
    expect([v.get('out_veventq_id'), v.get('out_veventq_fd')]).toEqual([6, 17]);
    // veventq's min_size is 28 (out_veventq_fd): a 28-byte struct works, 27 does not
    const v28 = struct('IOMMU_VEVENTQ_ALLOC', { type: 1 }, { size: 28, bufLen: 28 });
    expect(await outcome(iommufdIoctl(t, v28.cmd, v28.buf))).toBe(0);
    const v27 = struct('IOMMU_VEVENTQ_ALLOC', {}, { size: 27, bufLen: 28 });
    expect(await outcome(iommufdIoctl(t, v27.cmd, v27.buf))).toBe('EINVAL');
  });

  it('HWPT_GET_DIRTY_BITMAP ORs the returned bits into the user bitmap', async () => {
    const t = Object.assign(fd, { hwptGetDirtyBitmap: async () => ({ bitmap: Uint8Array.of(0b0101, 0, 0, 0, 0, 0, 0, 0x80) }) });
    const p = fd.process.mmap(0x60_0000, PAGE);
    fd.process.write(p, Uint8Array.of(0b1000));
    const s = struct('IOMMU_HWPT_GET_DIRTY_BITMAP', { hwpt_id: 1, iova: 0, length: 0x1_0000, page_size: 2048, data: p });
    expect(await outcome(iommufdIoctl(t, s.cmd, s.buf))).toBe(0);
    expect([...fd.process.read(p, 8)]).toEqual([0b1101, 0, 0, 0, 0, 0, 0, 0x80]);
  });
});

describe('user pointers in a real UserProcess', () => {
  it('IOVA_RANGES / ALLOW_IOVAS go through UserProcess.read/write; EFAULT outside the mappings or user space', async () => {
    expect(USER_ADDR_LIMIT).toBe(BigInt(TASK_SIZE));
    const proc = UserProcess.create({ mem: PhysMem.create(4 * 1024 * 1024) });
    const target = Object.assign(new FakeIommuFd(), { process: proc });
    const run = (s: { cmd: number; buf: Uint8Array }) => outcome(iommufdIoctl(target, s.cmd, s.buf));
    expect(await run(struct('IOMMU_IOAS_ALLOC'))).toBe(0);
    const buf = proc.mmap({ length: PAGE });
    const r = struct('IOMMU_IOAS_IOVA_RANGES', { ioas_id: 1, num_iovas: 4, allowed_iovas: buf });
    expect(await run(r)).toBe(0);
    const dv = new DataView(proc.read(buf, 16).buffer);
    expect(dv.getBigUint64(8, true)).toBe((1n << 64n) - 1n);
    const ro = proc.mmap({ length: PAGE, prot: 'r' });
    expect(await run(struct('IOMMU_IOAS_IOVA_RANGES', { ioas_id: 1, num_iovas: 1, allowed_iovas: ro }))).toBe('EFAULT');
    expect(await run(struct('IOMMU_IOAS_IOVA_RANGES', { ioas_id: 1, num_iovas: 1, allowed_iovas: 1n << 63n }))).toBe('EFAULT');
    proc.write(buf, Uint8Array.of(0, 0x10, 0, 0, 0, 0, 0, 0, 0xff, 0x1f, 0, 0, 0, 0, 0, 0));
    expect(await run(struct('IOMMU_IOAS_ALLOW_IOVAS', { ioas_id: 1, num_iovas: 1, allowed_iovas: buf }))).toBe(0);
    expect(target.ioas.get(1)?.allowed).toEqual([{ start: 0x1000n, last: 0x1fffn }]);
    proc.munmap(buf, PAGE);
    expect(await run(struct('IOMMU_IOAS_ALLOW_IOVAS', { ioas_id: 1, num_iovas: 1, allowed_iovas: buf }))).toBe('EFAULT');
  });

  it('uses currentProcess (the caller) over the opener when the target has one', async () => {
    const caller = new FakeMemory();
    const target = Object.assign(new FakeIommuFd(), { currentProcess: caller });
    const run = (st: { cmd: number; buf: Uint8Array }) => outcome(iommufdIoctl(target, st.cmd, st.buf));
    expect(await run(struct('IOMMU_IOAS_ALLOC'))).toBe(0);
    caller.mmap(0x70_0000, PAGE);
    expect(await run(struct('IOMMU_IOAS_IOVA_RANGES', { ioas_id: 1, num_iovas: 1, allowed_iovas: 0x70_0000 }))).toBe(0);
    expect(caller.read(0x70_0008, 1)[0]).toBe(0xff);
    expect(target.process.pages.size).toBe(0);
  });
});
