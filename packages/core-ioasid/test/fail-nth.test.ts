/**
 * Port of tools/testing/selftests/iommu/iommufd_fail_nth.c with the model's fail_nth
 * (src/fail-nth.ts): every scenario is run with the n-th allocation point failing, n = 1, 2, 3,
 * ... until a run completes without reaching the armed point. The kernel test only looks for
 * splats; the model checks failure atomicity after every injected failure:
 * - the call threw ENOMEM (or the errno the scenario documents for that call);
 * - the object table is exactly what it was before the call (ids, types, users counts, hidden
 *   reservations);
 * - no page is pinned or charged beyond what the earlier calls pinned (pin references on frames,
 *   VmPin, VmLck, the user's locked_vm);
 * - every IOAS translates exactly as before (areas, alignment, reserved / allowed ranges, iopt
 *   lookups), every domain holds exactly the same IOPTEs (a shadow of the driver's map / unmap
 *   calls), and every attached device's DMA through the device port lands where it did;
 * then the run is torn down and everything must be released (pins, charges, PhysMem frames).
 */
import {
  ACCESS_READ,
  openBackend,
  type BackendStack,
  type PagingDomain,
} from '@iommulab/driver-api';
import { PhysMem } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { type IommufdDevice } from '../src/device.js';
import { IommufdError } from '../src/errors.js';
import { type HwptPaging } from '../src/hw-pagetable.js';
import { type Ioas } from '../src/ioas.js';
import { IommuFd } from '../src/iommufd.js';
import { type IommufdAccess } from '../src/access.js';
import {
  AccessTestOps,
  MOCK_ACCESS_RW_SLOW_PATH,
  MOCK_ACCESS_RW_WRITE,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
} from '../src/selftest-access.js';
import { MockTestOps } from '../src/selftest-mock.js';
import { testSetTempMemoryLimit } from '../src/selftest.js';
import { IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_FAULT_ID_VALID } from '../src/uapi/constants.js';
import { FrameTable } from '../src/user-memory/frames.js';
import { Memfd } from '../src/user-memory/memfd.js';
import { UserProcess } from '../src/user-memory/process.js';
import { FIXED, MOCK_APERTURE_START, PAGE_SIZE, RW } from './fixture.js';
import { HW_MOCK, IOMMU_HWPT_DATA_SELFTEST, IOMMU_TEST_IOTLB_DEFAULT } from './mock-fixture.js';

/** `IOMMU_VIOMMU_TYPE_SELFTEST` (iommufd_test.h). */
const IOMMU_VIOMMU_TYPE_SELFTEST = 0xdeadbeef;

/** iommufd_fail_nth.c's BUFFER_SIZE. */
const BUFFER_SIZE = 2 * 1024 * 1024;

/** One run: a process with the fail_nth buffers, an iommufd, and (for device scenarios) a hw-mock stack. */
interface World {
  mem: PhysMem;
  proc: UserProcess;
  fd: IommuFd;
  /** MAP_SHARED | MAP_ANONYMOUS buffer (not touched, like the selftest's). */
  buffer: number;
  mfd: Memfd;
  /** Shared mapping of `mfd`. */
  mfdBuffer: number;
  stack: BackendStack | null;
  mock: MockTestOps | null;
  acc: AccessTestOps;
  /** Private scratch memory for ACCESS_RW (the test's stack arrays `tmp` / `tmp_big`). */
  tmp: number;
  tmpBig: number;
  /** Shadow of every mock paging domain: IO page iova -> "pa/size/prot". */
  shadows: Map<PagingDomain, Map<number, string>>;
}

/** Keeps a record of every IOPTE the driver maps / unmaps in `d`. */
function shadowDomain(w: World, d: PagingDomain): PagingDomain {
  const m = new Map<number, string>();
  w.shadows.set(d, m);
  const map = d.mapPages.bind(d);
  const unmap = d.unmapPages.bind(d);
  d.mapPages = (iova, pa, pageSize, count, prot) => {
    const n = map(iova, pa, pageSize, count, prot);
    for (let off = 0; off < n; off += pageSize) m.set(iova + off, `${pa + off}/${pageSize}/${prot}`);
    return n;
  };
  d.unmapPages = (iova, pageSize, count, gather) => {
    const n = unmap(iova, pageSize, count, gather);
    for (const k of [...m.keys()]) if (k >= iova && k < iova + n) m.delete(k);
    return n;
  };
  return d;
}

async function openWorld(withStack: boolean): Promise<World> {
  const mem = PhysMem.create(64 * 1024 * 1024);
  const proc = UserProcess.create({ mem });
  const buffer = proc.mmap({ length: BUFFER_SIZE, shared: true });
  const mfd = Memfd.create(mem, BUFFER_SIZE);
  const mfdBuffer = proc.mmap({ length: BUFFER_SIZE, shared: true, file: mfd });
  const tmp = proc.mmap({ length: PAGE_SIZE });
  const tmpBig = proc.mmap({ length: 8 * PAGE_SIZE });
  proc.write(tmp, new Uint8Array(PAGE_SIZE).fill(1));
  proc.write(tmpBig, new Uint8Array(8 * PAGE_SIZE).fill(2));
  const fd = IommuFd.open({ process: proc });
  const w: World = { mem, proc, fd, buffer, mfd, mfdBuffer, stack: null, mock: null, acc: new AccessTestOps(fd), tmp, tmpBig, shadows: new Map() };
  if (withStack) {
    const stack = await openBackend(HW_MOCK, { mode: 'in-thread', mem, timeoutMs: 10_000 });
    const drv = stack.driver;
    const alloc = drv.domainAllocPaging.bind(drv);
    drv.domainAllocPaging = async (...args) => shadowDomain(w, await alloc(...args));
    w.stack = stack;
    w.mock = new MockTestOps(fd, stack);
  }
  return w;
}

function totalPins(mem: PhysMem): number {
  const pins = FrameTable.of(mem).pins;
  let n = 0;
  for (let i = 0; i < pins.length; i++) n += pins[i];
  return n;
}

/** Everything a failed call must leave as it was. */
async function snapshot(w: World): Promise<Record<string, unknown>> {
  const objects = w.fd.ctx.objects;
  const objs: string[] = [];
  const ioas: Record<string, unknown>[] = [];
  const domains: Record<string, unknown>[] = [];
  const devices: Record<string, unknown>[] = [];
  const accesses: Record<string, unknown>[] = [];
  const probes = new Set<number>([0, MOCK_APERTURE_START, MOCK_APERTURE_START + 0x10_0000]);
  for (const o of objects.objects()) {
    objs.push(`${o.id}:${o.type}:${o.users}`);
    if (o.type === 'ioas') {
      const iopt = (o as Ioas).iopt;
      const areas = [];
      for (const a of iopt.areas) {
        const first = iopt.lookup(a.start);
        const last = iopt.lookup(a.last);
        areas.push({
          range: [a.start, a.last],
          offset: a.pageOffset,
          address: first?.address,
          pa: [first?.pa, last?.pa],
          filled: a.filled,
          accesses: a.numAccesses,
          pinned: first?.pages.npinned,
          refs: first?.pages.refs,
        });
        for (let x = a.start; x <= a.last && x < a.start + 64n * 4096n; x += 4096n) probes.add(Number(x));
        probes.add(Number(a.last & ~2047n));
        probes.add(Number(a.last + 1n));
      }
      ioas.push({
        id: o.id,
        areas,
        align: iopt.iovaAlignment,
        reserved: iopt.reservedRanges.map((r) => [r.start, r.last]),
        allowed: iopt.allowedRanges,
        domains: iopt.domains.length,
        hwpts: (o as Ioas).hwptList.map((h) => h.id),
      });
    } else if (o.type === 'hwpt_paging') {
      const d = (o as HwptPaging).domain;
      const sh = d === null ? undefined : w.shadows.get(d);
      domains.push({ id: o.id, iotes: sh === undefined ? null : [...sh.entries()].sort((x, y) => x[0] - y[0]) });
    } else if (o.type === 'device') {
      const dev = o as IommufdDevice;
      devices.push({ id: o.id, attached: [...dev.attached.entries()].map(([p, h]) => `${p}->${h.id}`) });
    } else if (o.type === 'access') {
      const a = o as IommufdAccess;
      accesses.push({ id: o.id, ioas: a.ioas?.id, pins: a.pins.map((p) => [p.iova, p.length]) });
    }
  }
  // DMA by every attached device of the stack at the probe IOVAs.
  const dma: string[] = [];
  if (w.stack !== null) {
    for (const o of objects.objects()) {
      if (o.type !== 'device') continue;
      const dev = o as IommufdDevice;
      if (dev.stack !== w.stack || !dev.attached.has(0)) continue;
      const iovas = [...probes].sort((x, y) => x - y);
      const res = await w.stack.port.translateMany(iovas.map((iova) => ({ rid: dev.dev.rid, iova, access: ACCESS_READ })));
      for (let i = 0; i < iovas.length; i++) dma.push(`${dev.id}@${iovas[i]}:${res[i].ok ? res[i].pa : 'fault'}`);
    }
  }
  return {
    objs,
    slots: objects.size,
    ioas,
    domains,
    devices,
    accesses,
    dma,
    pins: totalPins(w.mem),
    vmPinned: w.proc.vmPinned,
    vmLocked: w.proc.vmLocked,
    lockedVm: w.proc.account.lockedVm,
  };
}

/** teardown_iommufd, then every pin, charge and frame must be gone. */
async function teardown(w: World): Promise<void> {
  w.fd.ctx.failNth.disarm();
  await w.fd.close();
  expect(totalPins(w.mem)).toBe(0);
  expect(w.proc.vmPinned).toBe(0);
  expect(w.proc.vmLocked).toBe(0);
  expect(w.proc.account.lockedVm).toBe(0);
  if (w.stack !== null) await w.stack.close();
  w.mfd.close();
  w.proc.exit();
  expect(w.mem.allocatedFrameCount).toBe(0);
}

/** Ids and values the steps of one run share. */
type Vars = Record<string, number | bigint>;

interface Step {
  name: string;
  run(w: World, v: Vars): Promise<unknown>;
  /** Errno the call fails with even without injection (the scenario's "failure path"). */
  errno?: string;
  /** Errnos an injected failure may surface as besides ENOMEM (e.g. EFAULT from a user copy). */
  injected?: string[];
}

interface Scenario {
  name: string;
  stack: boolean;
  /** Runs before fail_nth_enable(). */
  setup?(w: World, v: Vars): Promise<void>;
  steps: Step[];
}

interface SweepResult {
  /** Allocation points the whole scenario reaches (= failing runs). */
  points: number;
  /** Failing runs per step name. */
  perStep: Record<string, number>;
  /** Sites that failed, with counts. */
  sites: Record<string, number>;
  /** Injected failures the call absorbed (it still succeeded). */
  absorbed: string[];
}

const MAX_N = 2000;

async function sweep(sc: Scenario): Promise<SweepResult> {
  const res: SweepResult = { points: 0, perStep: {}, sites: {}, absorbed: [] };
  for (let n = 1; n <= MAX_N; n++) {
    const w = await openWorld(sc.stack);
    const v: Vars = {};
    const inj = w.fd.ctx.failNth;
    try {
      if (sc.setup) await sc.setup(w, v);
      inj.arm(n);
      let failed = false;
      for (const step of sc.steps) {
        const before = await snapshot(w);
        const hitBefore = inj.failedSite !== null;
        let err: unknown = null;
        try {
          await step.run(w, v);
        } catch (e) {
          err = e;
        }
        const hitHere = !hitBefore && inj.failedSite !== null;
        if (hitHere && err !== null) {
          const site = inj.failedSite!;
          inj.disarm();
          const ctxMsg = `${sc.name} n=${n} step ${step.name} site ${site}`;
          expect(err, ctxMsg).toBeInstanceOf(IommufdError);
          expect(['ENOMEM', ...(step.injected ?? [])], `${ctxMsg}: ${(err as Error).message}`).toContain((err as IommufdError).errno);
          expect(await snapshot(w), ctxMsg).toEqual(before);
          res.perStep[step.name] = (res.perStep[step.name] ?? 0) + 1;
          res.sites[site] = (res.sites[site] ?? 0) + 1;
          failed = true;
          break;
        }
        if (hitHere) res.absorbed.push(`n=${n} ${step.name} at ${inj.failedSite}`);
        if (step.errno !== undefined) {
          expect(err, `${sc.name} n=${n} step ${step.name}`).toMatchObject({ errno: step.errno });
        } else if (err !== null) {
          throw err;
        }
      }
      const reached = inj.disarm();
      await teardown(w);
      if (!failed && inj.failedSite === null) {
        // The run completed without reaching the armed point: every point was swept.
        expect(reached).toBe(n - 1);
        res.points = reached;
        return res;
      }
    } catch (e) {
      // Report the first failure, not a teardown error it causes.
      await teardown(w).catch(() => undefined);
      throw e;
    }
  }
  throw new Error(`${sc.name}: more than ${MAX_N} allocation points`);
}

const MAP_FLAGS = RW;

const SCENARIOS: Scenario[] = [
  {
    // Cover ioas.c
    name: 'basic',
    stack: false,
    steps: [
      { name: 'IOAS_ALLOC', run: async (w, v) => (v.ioas = (await w.fd.ioasAlloc()).outIoasId) },
      { name: 'IOVA_RANGES', run: (w, v) => w.fd.ioasIovaRanges({ ioasId: Number(v.ioas), numIovas: 10 }) },
      {
        name: 'ALLOW_IOVAS',
        run: (w, v) => w.fd.ioasAllowIovas({ ioasId: Number(v.ioas), allowedIovas: [{ start: 16 * 1024, last: BUFFER_SIZE + 16 * 1024 * 600 - 1 }] }),
      },
      { name: 'MAP', run: async (w, v) => (v.iova = (await w.fd.ioasMap({ flags: MAP_FLAGS, ioasId: Number(v.ioas), userVa: w.buffer, length: BUFFER_SIZE })).iova) },
      {
        name: 'COPY',
        // length = sizeof(struct iommu_iova_range[10])
        run: (w, v) => w.fd.ioasCopy({ flags: MAP_FLAGS, dstIoasId: Number(v.ioas), srcIoasId: Number(v.ioas), srcIova: v.iova, length: 160 }),
      },
      { name: 'UNMAP', run: (w, v) => w.fd.ioasUnmap({ ioasId: Number(v.ioas), iova: v.iova, length: BUFFER_SIZE }) },
      // Failure path of no IOVA to unmap
      { name: 'UNMAP again', errno: 'ENOENT', run: (w, v) => w.fd.ioasUnmap({ ioasId: Number(v.ioas), iova: v.iova, length: BUFFER_SIZE }) },
    ],
  },
  {
    // iopt_area_fill_domains() and iopt_area_fill_domain()
    name: 'map_domain',
    stack: true,
    setup: async (w, v) => {
      v.ioas = (await w.fd.ioasAlloc()).outIoasId;
      await testSetTempMemoryLimit(w.fd.ctx, { limit: 32 });
    },
    steps: [
      { name: 'MOCK_DOMAIN', run: async (w, v) => (v.stdev = (await w.mock!.mockDomain(Number(v.ioas))).outStdevId) },
      { name: 'MAP', run: (w, v) => w.fd.ioasMap({ flags: MAP_FLAGS, ioasId: Number(v.ioas), userVa: w.buffer, length: 262144 }) },
      { name: 'DESTROY stdev', run: (w, v) => w.fd.destroy({ id: Number(v.stdev) }) },
      { name: 'MOCK_DOMAIN again', run: (w, v) => w.mock!.mockDomain(Number(v.ioas)) },
    ],
  },
  {
    name: 'map_file_domain',
    stack: true,
    setup: async (w, v) => {
      v.ioas = (await w.fd.ioasAlloc()).outIoasId;
      await testSetTempMemoryLimit(w.fd.ctx, { limit: 32 });
    },
    steps: [
      { name: 'MOCK_DOMAIN', run: async (w, v) => (v.stdev = (await w.mock!.mockDomain(Number(v.ioas))).outStdevId) },
      { name: 'MAP_FILE', run: (w, v) => w.fd.ioasMapFile({ flags: MAP_FLAGS, ioasId: Number(v.ioas), fd: w.mfd, start: 0, length: 262144 }) },
      { name: 'DESTROY stdev', run: (w, v) => w.fd.destroy({ id: Number(v.stdev) }) },
      { name: 'MOCK_DOMAIN again', run: (w, v) => w.mock!.mockDomain(Number(v.ioas)) },
    ],
  },
  {
    name: 'map_two_domains',
    stack: true,
    setup: async (w, v) => {
      v.ioas = (await w.fd.ioasAlloc()).outIoasId;
      await testSetTempMemoryLimit(w.fd.ctx, { limit: 32 });
      v.stdev = (await w.mock!.mockDomain(Number(v.ioas))).outStdevId;
    },
    steps: [
      { name: 'MOCK_DOMAIN 2', run: async (w, v) => (v.stdev2 = (await w.mock!.mockDomain(Number(v.ioas))).outStdevId) },
      { name: 'MAP', run: (w, v) => w.fd.ioasMap({ flags: MAP_FLAGS, ioasId: Number(v.ioas), userVa: w.buffer, length: 262144 }) },
      { name: 'DESTROY stdev', run: (w, v) => w.fd.destroy({ id: Number(v.stdev) }) },
      { name: 'DESTROY stdev2', run: (w, v) => w.fd.destroy({ id: Number(v.stdev2) }) },
      { name: 'MOCK_DOMAIN', run: (w, v) => w.mock!.mockDomain(Number(v.ioas)) },
      { name: 'MOCK_DOMAIN 2 again', run: (w, v) => w.mock!.mockDomain(Number(v.ioas)) },
    ],
  },
  {
    name: 'access_rw',
    stack: false,
    setup: async (w, v) => {
      v.ioas = (await w.fd.ioasAlloc()).outIoasId;
      await testSetTempMemoryLimit(w.fd.ctx, { limit: 32 });
      v.iova = (await w.fd.ioasMap({ flags: MAP_FLAGS, ioasId: Number(v.ioas), userVa: w.buffer, length: 262144 })).iova;
    },
    steps: [
      { name: 'CREATE_ACCESS', run: async (w, v) => (v.access = (await w.acc.createAccess(Number(v.ioas), 0)).accessId) },
      // A user copy that fails (page allocation) is EFAULT, as copy_to_user / copy_from_user.
      { name: 'ACCESS_RW read', injected: ['EFAULT'], run: (w, v) => w.acc.accessRw(Number(v.access), v.iova, 64, w.tmp, 0) },
      { name: 'ACCESS_RW write', injected: ['EFAULT'], run: (w, v) => w.acc.accessRw(Number(v.access), v.iova, 64, w.tmp, MOCK_ACCESS_RW_WRITE) },
      { name: 'ACCESS_RW slow read', injected: ['EFAULT'], run: (w, v) => w.acc.accessRw(Number(v.access), v.iova, 64, w.tmp, MOCK_ACCESS_RW_SLOW_PATH) },
      {
        name: 'ACCESS_RW slow write',
        injected: ['EFAULT'],
        run: (w, v) => w.acc.accessRw(Number(v.access), v.iova, 64, w.tmp, MOCK_ACCESS_RW_SLOW_PATH | MOCK_ACCESS_RW_WRITE),
      },
      {
        name: 'ACCESS_RW slow big',
        injected: ['EFAULT'],
        run: (w, v) => w.acc.accessRw(Number(v.access), v.iova, 8 * 4096, w.tmpBig, MOCK_ACCESS_RW_SLOW_PATH),
      },
      { name: 'destroy access', run: (w, v) => w.acc.destroyAccess(Number(v.access)) },
    ],
  },
  {
    // pages.c access functions
    name: 'access_pin',
    stack: false,
    setup: async (w, v) => {
      v.ioas = (await w.fd.ioasAlloc()).outIoasId;
      await testSetTempMemoryLimit(w.fd.ctx, { limit: 32 });
      v.iova = (await w.fd.ioasMap({ flags: MAP_FLAGS, ioasId: Number(v.ioas), userVa: w.buffer, length: BUFFER_SIZE })).iova;
      v.access = (await w.acc.createAccess(Number(v.ioas), MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES)).accessId;
    },
    steps: [
      { name: 'ACCESS_PAGES', run: async (w, v) => (v.pagesId = (await w.acc.accessPages(Number(v.access), 0, v.iova, BUFFER_SIZE, w.buffer)).accessPagesId) },
      { name: 'DESTROY_ACCESS_PAGES', run: (w, v) => w.acc.destroyAccessPages(Number(v.access), Number(v.pagesId)) },
      { name: 'destroy access', run: (w, v) => w.acc.destroyAccess(Number(v.access)) },
    ],
  },
  {
    // iopt_pages_fill_xarray()
    name: 'access_pin_domain',
    stack: true,
    setup: async (w, v) => {
      v.ioas = (await w.fd.ioasAlloc()).outIoasId;
      await testSetTempMemoryLimit(w.fd.ctx, { limit: 32 });
      v.stdev = (await w.mock!.mockDomain(Number(v.ioas))).outStdevId;
      v.iova = (await w.fd.ioasMap({ flags: MAP_FLAGS, ioasId: Number(v.ioas), userVa: w.buffer, length: BUFFER_SIZE })).iova;
      v.access = (await w.acc.createAccess(Number(v.ioas), MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES)).accessId;
    },
    steps: [
      { name: 'ACCESS_PAGES', run: async (w, v) => (v.pagesId = (await w.acc.accessPages(Number(v.access), 0, v.iova, BUFFER_SIZE, w.buffer)).accessPagesId) },
      { name: 'DESTROY_ACCESS_PAGES', run: (w, v) => w.acc.destroyAccessPages(Number(v.access), Number(v.pagesId)) },
      { name: 'destroy access', run: (w, v) => w.acc.destroyAccess(Number(v.access)) },
      { name: 'DESTROY stdev', run: (w, v) => w.fd.destroy({ id: Number(v.stdev) }) },
    ],
  },
  {
    // device.c
    name: 'device',
    stack: true,
    setup: async (w, v) => {
      v.ioas = (await w.fd.ioasAlloc()).outIoasId;
      v.ioas2 = (await w.fd.ioasAlloc()).outIoasId;
      const map = { flags: FIXED | MAP_FLAGS, userVa: w.buffer, length: PAGE_SIZE, iova: MOCK_APERTURE_START };
      await w.fd.ioasMap({ ...map, ioasId: Number(v.ioas) });
      await w.fd.ioasMap({ ...map, ioasId: Number(v.ioas2) });
    },
    steps: [
      {
        name: 'MOCK_DOMAIN',
        run: async (w, v) => {
          const r = await w.mock!.mockDomain(Number(v.ioas));
          v.stdev = r.outStdevId;
          v.idev = r.outIdevId;
        },
      },
      { name: 'GET_HW_INFO', run: (w, v) => w.fd.getHwInfo({ devId: Number(v.idev) }) },
      { name: 'HWPT_ALLOC', run: async (w, v) => (v.hwpt = (await w.fd.hwptAlloc({ flags: 0, devId: Number(v.idev), ptId: Number(v.ioas) })).outHwptId) },
      { name: 'MOCK_DOMAIN_REPLACE ioas2', run: (w, v) => w.mock!.mockDomainReplace(Number(v.stdev), Number(v.ioas2)) },
      { name: 'MOCK_DOMAIN_REPLACE hwpt', run: (w, v) => w.mock!.mockDomainReplace(Number(v.stdev), Number(v.hwpt)) },
      {
        name: 'HWPT_ALLOC NEST_PARENT',
        run: async (w, v) => (v.hwpt = (await w.fd.hwptAlloc({ flags: IOMMU_HWPT_ALLOC_NEST_PARENT, devId: Number(v.idev), ptId: Number(v.ioas) })).outHwptId),
      },
    ],
  },
  {
    // device.c, newer kernels: vIOMMU, vDEVICE, FAULT queue, IOPF-capable nested HWPT
    name: 'device_viommu',
    stack: true,
    setup: async (w, v) => {
      v.ioas = (await w.fd.ioasAlloc()).outIoasId;
      await w.fd.ioasMap({ flags: FIXED | MAP_FLAGS, ioasId: Number(v.ioas), userVa: w.buffer, length: PAGE_SIZE, iova: MOCK_APERTURE_START });
      const r = await w.mock!.mockDomain(Number(v.ioas));
      v.stdev = r.outStdevId;
      v.idev = r.outIdevId;
    },
    steps: [
      {
        name: 'HWPT_ALLOC NEST_PARENT',
        run: async (w, v) => (v.hwpt = (await w.fd.hwptAlloc({ flags: IOMMU_HWPT_ALLOC_NEST_PARENT, devId: Number(v.idev), ptId: Number(v.ioas) })).outHwptId),
      },
      {
        name: 'VIOMMU_ALLOC',
        run: async (w, v) => (v.viommu = (await w.fd.viommuAlloc({ type: IOMMU_VIOMMU_TYPE_SELFTEST, devId: Number(v.idev), hwptId: Number(v.hwpt) })).outViommuId),
      },
      { name: 'VDEVICE_ALLOC', run: (w, v) => w.fd.vdeviceAlloc({ viommuId: Number(v.viommu), devId: Number(v.idev), virtId: 0 }) },
      {
        name: 'FAULT_QUEUE_ALLOC',
        run: async (w, v) => {
          const r = await w.fd.faultQueueAlloc();
          v.fault = r.outFaultId;
          w.fd.files.close(r.outFaultFd);
        },
      },
      {
        name: 'HWPT_ALLOC nested IOPF',
        run: (w, v) =>
          w.fd.hwptAlloc({
            flags: IOMMU_HWPT_FAULT_ID_VALID,
            devId: Number(v.idev),
            ptId: Number(v.hwpt),
            faultId: Number(v.fault),
            dataType: IOMMU_HWPT_DATA_SELFTEST,
            data: selftestData(IOMMU_TEST_IOTLB_DEFAULT),
          }),
      },
    ],
  },
  {
    // Model extra: filling a domain with several areas (user and file pages), COPY of several
    // areas into a domain-backed IOAS, moving a device between IOASes (auto domain reuse, then a
    // new auto domain filled from scratch), unmap of everything.
    name: 'domains_many_areas',
    stack: true,
    setup: async (w, v) => {
      v.ioas = (await w.fd.ioasAlloc()).outIoasId;
      v.ioas2 = (await w.fd.ioasAlloc()).outIoasId;
      v.stdev2 = (await w.mock!.mockDomain(Number(v.ioas2))).outStdevId;
      const ioasId = Number(v.ioas);
      const fixed = FIXED | MAP_FLAGS;
      await w.fd.ioasMap({ flags: fixed, ioasId, userVa: w.buffer, length: 4 * PAGE_SIZE, iova: MOCK_APERTURE_START });
      await w.fd.ioasMap({ flags: fixed, ioasId, userVa: w.buffer + 8 * PAGE_SIZE, length: 4 * PAGE_SIZE, iova: MOCK_APERTURE_START + 4 * PAGE_SIZE });
      await w.fd.ioasMapFile({ flags: fixed, ioasId, fd: w.mfd, start: 0, length: 4 * PAGE_SIZE, iova: MOCK_APERTURE_START + 8 * PAGE_SIZE });
    },
    steps: [
      { name: 'MOCK_DOMAIN (fill 3 areas)', run: async (w, v) => (v.stdev = (await w.mock!.mockDomain(Number(v.ioas))).outStdevId) },
      {
        name: 'COPY 3 areas into ioas2',
        run: (w, v) => w.fd.ioasCopy({ flags: MAP_FLAGS, dstIoasId: Number(v.ioas2), srcIoasId: Number(v.ioas), srcIova: MOCK_APERTURE_START, length: 12 * PAGE_SIZE }),
      },
      { name: 'REPLACE stdev2 -> ioas', run: (w, v) => w.mock!.mockDomainReplace(Number(v.stdev2), Number(v.ioas)) },
      { name: 'REPLACE stdev2 -> ioas2 (new auto domain)', run: (w, v) => w.mock!.mockDomainReplace(Number(v.stdev2), Number(v.ioas2)) },
      { name: 'UNMAP all', run: (w, v) => w.fd.ioasUnmap({ ioasId: Number(v.ioas), iova: 0, length: (1n << 64n) - 1n }) },
    ],
  },
];

/** struct iommu_hwpt_selftest { u32 iotlb; u32 pagetable_type; } */
function selftestData(iotlb: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(0, iotlb, true);
  return b;
}

describe('iommufd_fail_nth (failure atomicity at every allocation point)', () => {
  for (const sc of SCENARIOS) {
    it(sc.name, async () => {
      const r = await sweep(sc);
      // Every scenario reaches allocation points, and each one was failed once.
      expect(r.points).toBeGreaterThan(0);
      expect(Object.values(r.perStep).reduce((a, b) => a + b, 0)).toBe(r.points - r.absorbed.length);
      console.log(`fail_nth ${sc.name}: ${r.points} points`, JSON.stringify(r.perStep), JSON.stringify(r.sites), r.absorbed.length ? `absorbed: ${r.absorbed.join('; ')}` : '');
    }, 120_000);
  }
});

describe('FailNth', () => {
  it('fails the n-th point once, counts points, and is per task (one armed injector)', async () => {
    const fd = IommuFd.open();
    const other = IommuFd.open();
    const inj = fd.ctx.failNth;
    expect(() => inj.arm(0)).toThrow(RangeError);
    inj.arm(2);
    expect(inj.isArmed).toBe(true);
    expect(() => other.ctx.failNth.arm(1)).toThrow(/another injector/);
    // Points reached through another context count too (fail_nth belongs to the task).
    // object.alloc (1), then object.id_alloc (2) fails: no id was taken.
    await expect(other.ioasAlloc()).rejects.toMatchObject({ errno: 'ENOMEM' });
    expect(inj.failedSite).toBe('object.id_alloc');
    expect(other.ctx.objects.size).toBe(0);
    await expect(fd.ioasAlloc()).resolves.toBeDefined();
    expect(inj.disarm()).toBe(4);
    expect(inj.isArmed).toBe(false);
    expect(inj.sites).toEqual(['object.alloc', 'object.id_alloc', 'object.alloc', 'object.id_alloc']);
    await fd.close();
    await other.close();
  });
});
