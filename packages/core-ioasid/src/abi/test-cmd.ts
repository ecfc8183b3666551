/**
 * IOMMU_TEST_CMD (`_IO(';', 0xa0)`) in binary form: the layout of `struct iommu_test_cmd`
 * (drivers/iommu/iommufd/iommufd_test.h) and the handler of `iommufd_test()` (selftest.c) over the
 * model's typed test ops (MockTestOps, AccessTestOps, ViommuTestOps, testAddReserved,
 * testMdCheckRefs, testSetTempMemoryLimit, the dma-buf ops).
 *
 * The command exists only on an IommuFd that called {@link enableSelftest} (the model's
 * CONFIG_IOMMUFD_TEST); elsewhere nr 0xa0 answers as on a kernel without it (`ENOTTY`).
 *
 * `struct iommu_test_cmd` = `{u32 size; u32 op; u32 id; u32 __reserved; union {...}; u32 last;}`:
 * the union starts at 16 (8-byte aligned: it has `__aligned_u64` members) and is 48 bytes (its
 * largest member is `dirty`), `last` sits at 64, so `min_size = offsetofend(last) = 68` and
 * `sizeof = 72`. Size rules as for every iommufd struct: a NULL / unreadable argument → `EFAULT`,
 * a request number other than exactly `_IO(';', 0xa0)` → `ENOTTY`, `size < 68` → `EINVAL`, a
 * non-zero tail beyond 72 → `E2BIG`. `iommufd_test()` does not check `__reserved`; an unknown op
 * is `EOPNOTSUPP`. Ops that produce outputs copy the whole struct back (`iommufd_ucmd_respond`,
 * `min(size, 72)` bytes) on success only; DMABUF_GET returns the new fd as the ioctl's value.
 */
import type { BackendStack } from '@iommulab/driver-api';
import { DmaBuf, dmabufGet, dmabufRevoke, IOMMU_TEST_OP_DMABUF_GET, IOMMU_TEST_OP_DMABUF_REVOKE } from '../dmabuf.js';
import { fail } from '../errors.js';
import type { IommuFd } from '../iommufd.js';
import { testAddReserved, testMdCheckRefs, testSetTempMemoryLimit } from '../selftest.js';
import { AccessTestOps } from '../selftest-access.js';
import { MockTestOps } from '../selftest-mock.js';
import { ViommuTestOps } from '../selftest-viommu.js';
import { iommuIoctl } from '../uapi/constants.js';
import { hex, PAGE_SIZE } from '../uapi/u64.js';
import { copyStructFromUser, readField, readUserSize, respond, writeField } from './codec.js';
import { IOMMU_TEST_CMD_NR, setTestCmdHandler } from './dispatch.js';
import type { FieldLayout, FieldType, IoctlLayout } from './layout.js';

/** `IOMMU_TEST_CMD` = `_IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32)`. */
export const IOMMU_TEST_CMD = iommuIoctl(IOMMU_TEST_CMD_NR);
/** Offset of the op union inside `struct iommu_test_cmd`. */
export const IOMMU_TEST_CMD_UNION_OFFSET = 16;

function f(name: string, type: FieldType, offset: number): FieldLayout {
  return { name, type, offset };
}

/** `struct iommu_test_cmd` as a table entry (header and `last`; the union is per op, {@link TEST_OP_LAYOUTS}). */
export const IOMMU_TEST_CMD_LAYOUT: IoctlLayout = {
  name: 'IOMMU_TEST_CMD',
  nr: IOMMU_TEST_CMD_NR,
  cmd: IOMMU_TEST_CMD,
  struct: 'iommu_test_cmd',
  size: 72,
  minSize: 68,
  last: 'last',
  method: 'testCmd',
  fields: [f('size', 'u32', 0), f('op', 'u32', 4), f('id', 'u32', 8), f('__reserved', 'u32', 12), f('last', 'u32', 64)],
};

/** The union member one op uses: its members at their absolute offsets in `struct iommu_test_cmd`. */
export interface TestOpLayout {
  /** `IOMMU_TEST_OP_*` value. */
  readonly op: number;
  /** `IOMMU_TEST_OP_ADD_RESERVED`, ... */
  readonly name: string;
  /** The union member (`add_reserved`, ...); empty when the op has no payload. */
  readonly member: string;
  /** What `id` names for this op. */
  readonly id: string;
  readonly fields: readonly FieldLayout[];
}

function op(n: number, name: string, member: string, id: string, fields: [string, FieldType, number][]): TestOpLayout {
  return { op: n, name: `IOMMU_TEST_OP_${name}`, member, id, fields: fields.map(([fn, t, o]) => f(fn, t, IOMMU_TEST_CMD_UNION_OFFSET + o)) };
}

/** Payload layouts of ops 1..23 (iommufd_test.h), offsets relative to the struct start. */
export const TEST_OP_LAYOUTS: readonly TestOpLayout[] = [
  op(1, 'ADD_RESERVED', 'add_reserved', 'ioas', [['start', 'u64', 0], ['length', 'u64', 8]]),
  op(2, 'MOCK_DOMAIN', 'mock_domain', 'ioas or hwpt', [['out_stdev_id', 'u32', 0], ['out_hwpt_id', 'u32', 4], ['out_idev_id', 'u32', 8]]),
  op(3, 'MD_CHECK_MAP', 'check_map', 'hwpt', [['iova', 'u64', 0], ['length', 'u64', 8], ['uptr', 'u64', 16]]),
  op(4, 'MD_CHECK_REFS', 'check_refs', '-', [['length', 'u64', 0], ['uptr', 'u64', 8], ['refs', 'u32', 16]]),
  op(5, 'CREATE_ACCESS', 'create_access', 'ioas', [['out_access_fd', 'u32', 0], ['flags', 'u32', 4]]),
  op(6, 'DESTROY_ACCESS_PAGES', 'destroy_access_pages', 'access fd', [['access_pages_id', 'u32', 0]]),
  op(7, 'ACCESS_PAGES', 'access_pages', 'access fd', [
    ['flags', 'u32', 0], ['out_access_pages_id', 'u32', 4], ['iova', 'u64', 8], ['length', 'u64', 16], ['uptr', 'u64', 24],
  ]),
  op(8, 'ACCESS_RW', 'access_rw', 'access fd', [['iova', 'u64', 0], ['length', 'u64', 8], ['uptr', 'u64', 16], ['flags', 'u32', 24]]),
  op(9, 'SET_TEMP_MEMORY_LIMIT', 'memory_limit', '-', [['limit', 'u32', 0]]),
  op(10, 'MOCK_DOMAIN_REPLACE', 'mock_domain_replace', 'stdev', [['pt_id', 'u32', 0]]),
  op(11, 'ACCESS_REPLACE_IOAS', 'access_replace_ioas', 'access fd', [['ioas_id', 'u32', 0]]),
  op(12, 'MOCK_DOMAIN_FLAGS', 'mock_domain_flags', 'ioas or hwpt', [
    ['out_stdev_id', 'u32', 0], ['out_hwpt_id', 'u32', 4], ['out_idev_id', 'u32', 8], ['dev_flags', 'u32', 12],
  ]),
  op(13, 'DIRTY', 'dirty', 'hwpt', [
    ['flags', 'u32', 0], ['iova', 'u64', 8], ['length', 'u64', 16], ['page_size', 'u64', 24], ['uptr', 'u64', 32], ['out_nr_dirty', 'u64', 40],
  ]),
  op(14, 'MD_CHECK_IOTLB', 'check_iotlb', 'nested hwpt', [['id', 'u32', 0], ['iotlb', 'u32', 4]]),
  op(15, 'TRIGGER_IOPF', 'trigger_iopf', '-', [['dev_id', 'u32', 0], ['pasid', 'u32', 4], ['grpid', 'u32', 8], ['perm', 'u32', 12], ['addr', 'u64', 16]]),
  op(16, 'DEV_CHECK_CACHE', 'check_dev_cache', 'device', [['id', 'u32', 0], ['cache', 'u32', 4]]),
  op(17, 'TRIGGER_VEVENT', 'trigger_vevent', '-', [['dev_id', 'u32', 0]]),
  op(18, 'PASID_ATTACH', 'pasid_attach', 'stdev', [['pasid', 'u32', 0], ['pt_id', 'u32', 4]]),
  op(19, 'PASID_REPLACE', 'pasid_replace', 'stdev', [['pasid', 'u32', 0], ['pt_id', 'u32', 4]]),
  op(20, 'PASID_DETACH', 'pasid_detach', 'stdev', [['pasid', 'u32', 0]]),
  op(21, 'PASID_CHECK_HWPT', 'pasid_check', 'stdev', [['pasid', 'u32', 0], ['hwpt_id', 'u32', 4]]),
  op(IOMMU_TEST_OP_DMABUF_GET, 'DMABUF_GET', 'dmabuf_get', '-', [['length', 'u32', 0], ['open_flags', 'u32', 4]]),
  op(IOMMU_TEST_OP_DMABUF_REVOKE, 'DMABUF_REVOKE', 'dmabuf_revoke', '-', [['dmabuf_fd', 's32', 0], ['revoked', 'u32', 4]]),
];

const OP_BY_NUM = new Map(TEST_OP_LAYOUTS.map((l) => [l.op, l]));

/** The payload layout of op `n`; undefined for an unknown op. */
export function testOpLayout(n: number): TestOpLayout | undefined {
  return OP_BY_NUM.get(n);
}

/** Options of {@link enableSelftest}. */
export interface SelftestConfig {
  /**
   * The hw-mock backend the mock devices live on (MockTestOps: same PhysMem as the IommuFd). Without
   * one, the mock-device ops (MOCK_DOMAIN*, MD_CHECK_MAP / IOTLB, DIRTY, PASID_*) answer EOPNOTSUPP.
   */
  mock?: BackendStack;
}

/** The test-op state of one IommuFd with IOMMU_TEST_CMD enabled. */
export class Selftest {
  readonly mock: MockTestOps | null;
  readonly access: AccessTestOps;
  readonly viommu: ViommuTestOps;

  constructor(
    readonly fd: IommuFd,
    config: SelftestConfig = {},
  ) {
    this.mock = config.mock ? new MockTestOps(fd, config.mock) : null;
    this.access = new AccessTestOps(fd);
    this.viommu = new ViommuTestOps(fd);
  }

  /** The mock ops; EOPNOTSUPP when no mock backend was given. */
  mockOps(what: string): MockTestOps {
    if (this.mock === null) fail('EOPNOTSUPP', `${what}: no mock backend (enableSelftest(fd, { mock }))`);
    return this.mock;
  }

  /** Runs one IOMMU_TEST_CMD (see the module comment). */
  ioctl(cmd: number, arg: Uint8Array | null): Promise<number> {
    return testCmdIoctl(this, cmd, arg);
  }
}

const selftests = new WeakMap<IommuFd, Selftest>();

/**
 * Turns on IOMMU_TEST_CMD for `fd` (the model's CONFIG_IOMMUFD_TEST), replacing an earlier
 * configuration. Returns the typed ops the binary handler calls (the same objects, so typed and
 * binary test calls can be mixed).
 */
export function enableSelftest(fd: IommuFd, config: SelftestConfig = {}): Selftest {
  const st = new Selftest(fd, config);
  selftests.set(fd, st);
  setTestCmdHandler(fd, (cmd, arg) => testCmdIoctl(st, cmd, arg));
  return st;
}

/** Turns IOMMU_TEST_CMD off again (nr 0xa0 → ENOTTY). */
export function disableSelftest(fd: IommuFd): void {
  selftests.delete(fd);
  setTestCmdHandler(fd, null);
}

/** The configuration {@link enableSelftest} installed on `fd`, if any. */
export function selftestOf(fd: IommuFd): Selftest | undefined {
  return selftests.get(fd);
}

/** One IOMMU_TEST_CMD in flight. */
class TestUcmd {
  constructor(
    readonly layout: TestOpLayout,
    readonly arg: Uint8Array,
    readonly usize: number,
    readonly kbuf: Uint8Array,
  ) {}

  get what(): string {
    return this.layout.name;
  }

  private field(name: string): FieldLayout {
    const fl = this.layout.fields.find((x) => x.name === name);
    if (!fl) throw new Error(`${this.layout.member} has no member ${name}`);
    return fl;
  }

  /** `cmd->id`. */
  get id(): number {
    return Number(readField(this.kbuf, IOMMU_TEST_CMD_LAYOUT.fields[2]));
  }

  num(name: string): number {
    return Number(readField(this.kbuf, this.field(name)));
  }

  big(name: string): bigint {
    return BigInt(readField(this.kbuf, this.field(name)));
  }

  set(name: string, value: number | bigint): void {
    writeField(this.kbuf, this.field(name), value);
  }

  /** `iommufd_ucmd_respond(ucmd, sizeof(*cmd))`. */
  respond(): void {
    respond(this.arg, this.kbuf, this.usize);
  }
}

type OpImpl = (c: TestUcmd, st: Selftest) => Promise<number | void>;

const PAGE_N = BigInt(PAGE_SIZE);

/** `iommufd_test()`: op number → implementation. */
const OPS: Readonly<Record<number, OpImpl>> = {
  1: async (c, st) => {
    await testAddReserved(st.fd.ctx, { ioasId: c.id, start: c.big('start'), length: c.big('length') });
  },
  2: async (c, st) => {
    const r = await st.mockOps(c.what).mockDomain(c.id);
    c.set('out_stdev_id', r.outStdevId);
    c.set('out_hwpt_id', r.outHwptId);
    c.set('out_idev_id', r.outIdevId);
    c.respond();
  },
  3: async (c, st) => {
    await st.mockOps(c.what).mdCheckMap(c.id, c.big('iova'), c.big('length'), c.big('uptr'));
  },
  4: async (c, st) => {
    const length = c.big('length');
    const uptr = c.big('uptr');
    if (length % PAGE_N !== 0n || uptr % PAGE_N !== 0n) fail('EINVAL', `${c.what}: uptr ${hex(uptr)} / length ${hex(length)} not page aligned`);
    if (uptr + length > BigInt(Number.MAX_SAFE_INTEGER)) fail('EFAULT', `${c.what}: [${hex(uptr)}, +${hex(length)}) is not user memory`);
    testMdCheckRefs(st.fd.process, { uptr: Number(uptr), length: Number(length), refs: c.num('refs') });
  },
  5: async (c, st) => {
    const r = await st.access.createAccess(c.id, c.num('flags'));
    c.set('out_access_fd', r.accessId);
    c.respond();
  },
  6: async (c, st) => {
    await st.access.destroyAccessPages(c.id, c.num('access_pages_id'));
  },
  7: async (c, st) => {
    const r = await st.access.accessPages(c.id, c.num('flags'), c.big('iova'), c.big('length'), c.big('uptr'));
    c.set('out_access_pages_id', r.accessPagesId);
    c.respond();
  },
  8: async (c, st) => {
    await st.access.accessRw(c.id, c.big('iova'), c.big('length'), c.big('uptr'), c.num('flags'));
  },
  9: async (c, st) => {
    // "Protect _batch_init(), can not be less than elmsz": sizeof(unsigned long) + sizeof(u32).
    const limit = c.num('limit');
    if (limit < 12) fail('EINVAL', `${c.what}: limit ${limit} is below 12`);
    await testSetTempMemoryLimit(st.fd.ctx, { limit });
  },
  10: async (c, st) => {
    const r = await st.mockOps(c.what).mockDomainReplace(c.id, c.num('pt_id'));
    c.set('pt_id', r.ptId);
    c.respond();
  },
  11: async (c, st) => {
    await st.access.accessReplaceIoas(c.id, c.num('ioas_id'));
  },
  12: async (c, st) => {
    const r = await st.mockOps(c.what).mockDomainFlags(c.id, c.num('dev_flags'));
    c.set('out_stdev_id', r.outStdevId);
    c.set('out_hwpt_id', r.outHwptId);
    c.set('out_idev_id', r.outIdevId);
    c.respond();
  },
  13: async (c, st) => {
    const r = await st.mockOps(c.what).dirty(c.id, {
      iova: c.big('iova'),
      length: c.big('length'),
      pageSize: c.big('page_size'),
      bitmap: c.big('uptr'),
    });
    c.set('out_nr_dirty', r.outNrDirty);
    c.respond();
  },
  14: async (c, st) => {
    await st.mockOps(c.what).mdCheckIotlb(c.id, c.num('id'), c.num('iotlb'));
  },
  15: async (c, st) => {
    await st.viommu.triggerIopf(c.num('dev_id'), c.num('pasid'), c.num('grpid'), c.num('perm'), c.big('addr'));
  },
  16: async (c, st) => {
    await st.viommu.devCheckCache(c.id, c.num('id'), c.num('cache'));
  },
  17: async (c, st) => {
    await st.viommu.triggerVevent(c.num('dev_id'));
  },
  18: async (c, st) => {
    const r = await st.mockOps(c.what).pasidAttach(c.id, c.num('pasid'), c.num('pt_id'));
    c.set('pt_id', r.ptId);
    c.respond();
  },
  19: async (c, st) => {
    const r = await st.mockOps(c.what).pasidReplace(c.id, c.num('pasid'), c.num('pt_id'));
    c.set('pt_id', r.ptId);
    c.respond();
  },
  20: async (c, st) => {
    await st.mockOps(c.what).pasidDetach(c.id, c.num('pasid'));
  },
  21: async (c, st) => {
    await st.mockOps(c.what).pasidCheckHwpt(c.id, c.num('pasid'), c.num('hwpt_id'));
  },
  [IOMMU_TEST_OP_DMABUF_GET]: async (c, st) => {
    return dmabufGet(st.fd, { length: c.num('length'), openFlags: c.num('open_flags') }).outDmabufFd;
  },
  [IOMMU_TEST_OP_DMABUF_REVOKE]: async (c, st) => {
    await dmabufRevoke(st.fd, { dmabufFd: c.num('dmabuf_fd'), revoked: c.num('revoked') });
  },
};

/**
 * `iommufd_fops_ioctl()` for IOMMU_TEST_CMD followed by `iommufd_test()`: resolves to the ioctl's
 * return value (0, or the fd of DMABUF_GET) or rejects with the op's errno.
 */
export async function testCmdIoctl(st: Selftest, cmd: number, arg: Uint8Array | null): Promise<number> {
  const request = cmd >>> 0;
  const what = 'IOMMU_TEST_CMD';
  if (st.fd.closed) fail('EBADF', `${what}: the iommufd is closed`);
  const usize = readUserSize(arg, what);
  if (request !== IOMMU_TEST_CMD || !arg) fail('ENOTTY', `ioctl ${hex(request)} is not ${what} (${hex(IOMMU_TEST_CMD)})`);
  const L = IOMMU_TEST_CMD_LAYOUT;
  if (usize < L.minSize) fail('EINVAL', `${what}: size ${usize} is below the minimum ${L.minSize}`);
  const kbuf = copyStructFromUser(arg, L.size, usize, what);
  const opNum = Number(readField(kbuf, L.fields[1]));
  const layout = testOpLayout(opNum);
  const impl = layout ? OPS[opNum] : undefined;
  if (!layout || !impl) fail('EOPNOTSUPP', `${what}: unknown op ${opNum}`);
  const r = await impl(new TestUcmd(layout, arg, usize, kbuf), st);
  return typeof r === 'number' ? r : 0;
}

/** The dma-buf open at `fd` in the IommuFd's table (tests: the exporter's CPU view). */
export function dmabufOf(fd: IommuFd, dmabufFd: number): DmaBuf {
  const f = fd.files.get(dmabufFd);
  if (!(f instanceof DmaBuf)) fail('EINVAL', `fd ${dmabufFd} is not a dma-buf`);
  return f;
}
