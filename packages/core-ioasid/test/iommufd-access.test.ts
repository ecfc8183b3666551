/**
 * ACCESS objects (tools/testing/selftests/iommu/iommufd.c): FIXTURE iommufd_ioas tests
 * access_domain_destory, access_pin, access_pin_unmap, access_rw, access_rw_unaligned and the
 * check_access_rw part of fork_present (variants no_domain, mock_domain, two_mock_domain); FIXTURE
 * iommufd_mock_domain user_copy (one_domain, two_domains); plus the errno paths of the access test
 * ops, the typed IommuFd access API (unmap notifier, rw, pins), and teardown checks (an ACCESS keeps
 * its IOAS busy; nothing stays pinned once the context is closed).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IOMMUFD_ACCESS_RW_SLOW_PATH, IOMMUFD_ACCESS_RW_WRITE } from '../src/access.js';
import { testMdCheckRefs } from '../src/selftest.js';
import {
  AccessTestOps,
  MOCK_ACCESS_RW_SLOW_PATH,
  MOCK_ACCESS_RW_WRITE,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_FLAGS_ACCESS_SYZ,
  MOCK_FLAGS_ACCESS_WRITE,
} from '../src/selftest-access.js';
import { IOMMU_IOAS_MAP_READABLE } from '../src/uapi/constants.js';
import { U64_MAX, ULONG_MAX } from '../src/uapi/u64.js';
import { BUFFER_SIZE, expectErrno, FIXED, HUGEPAGE_SIZE, ioasMap, ioasMapFixed, ioasUnmap, MOCK_APERTURE_START, MOCK_PAGE_SIZE, PAGE_SIZE, RW } from './fixture.js';
import { openMockSelf, populate, teardownMock, type MockSelf } from './mock-fixture.js';

const P = PAGE_SIZE;

/** A deterministic rand() (xorshift32). */
function makeRand(seed = 0x1234_5678): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function randomBytes(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rand() & 0xff;
  return b;
}

/**
 * check_access_rw: random buffer contents; every (iova, length) with iova within 50 bytes of the
 * second page boundary and 1 <= length < 64 is read back byte-exact through the access, then
 * written with random bytes that must land in the buffer; finally the whole buffer in one read.
 */
async function checkAccessRw(self: MockSelf, ops: AccessTestOps, accessId: number, iova: number, defFlags: number): Promise<void> {
  const proc = self.proc;
  const rand = makeRand(iova ^ defFlags ^ 0x9e37);
  const tmp = proc.mmap({ length: P });
  proc.write(self.buffer, randomBytes(rand, BUFFER_SIZE));
  for (let cur = iova + P - 50; cur < iova + P + 50; cur++) {
    for (let length = 1; length < 64; length++) {
      await ops.accessRw(accessId, cur, length, tmp, defFlags);
      expect(proc.read(tmp, length)).toEqual(proc.read(self.buffer + (cur - iova), length));

      proc.write(tmp, randomBytes(rand, 64));
      await ops.accessRw(accessId, cur, length, tmp, defFlags | MOCK_ACCESS_RW_WRITE);
      expect(proc.read(self.buffer + (cur - iova), length)).toEqual(proc.read(tmp, length));
    }
  }
  // Multi-page test.
  const tmp2 = proc.mmap({ length: BUFFER_SIZE });
  await ops.accessRw(accessId, iova, BUFFER_SIZE, tmp2, defFlags);
  expect(proc.read(tmp2, BUFFER_SIZE)).toEqual(proc.read(self.buffer, BUFFER_SIZE));
  proc.munmap(tmp2, BUFFER_SIZE);
  proc.munmap(tmp, P);
}

interface IoasVariant {
  name: string;
  mockDomains: number;
}

const IOAS_VARIANTS: IoasVariant[] = [
  { name: 'no_domain', mockDomains: 0 },
  { name: 'mock_domain', mockDomains: 1 },
  { name: 'two_mock_domain', mockDomains: 2 },
];

describe.each(IOAS_VARIANTS)('FIXTURE iommufd_ioas ($name): access tests', (variant) => {
  let self: MockSelf;
  let ops: AccessTestOps;
  let ioasId: number;
  let stdevId: number;
  let base: number;

  beforeEach(async () => {
    self = await openMockSelf();
    ops = new AccessTestOps(self.fd);
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    stdevId = 0;
    base = 0;
    for (let i = 0; i < variant.mockDomains; i++) {
      stdevId = (await self.mock.mockDomain(ioasId)).outStdevId;
      base = MOCK_APERTURE_START;
    }
  });
  afterEach(async () => {
    await teardownMock(self);
  });

  it('access_domain_destory', async () => {
    const bufSize = 2 * HUGEPAGE_SIZE;
    const buf = self.proc.mmap({ length: bufSize, shared: true, hugeAlign: HUGEPAGE_SIZE });
    populate(self, buf, bufSize);
    await ioasMapFixed(self, ioasId, buf, bufSize, base);
    const { accessId } = await ops.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    const { accessPagesId } = await ops.accessPages(accessId, 0, base + P, P, buf + P);
    // Causes a complicated unpin across a huge page boundary.
    if (stdevId) await self.fd.destroy({ id: stdevId });
    await ops.destroyAccessPages(accessId, accessPagesId);
    await ops.destroyAccess(accessId);
    await ioasUnmap(self, ioasId, base, bufSize);
    self.proc.munmap(buf, bufSize);
  });

  it('access_pin', async () => {
    const { accessId } = await ops.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    for (let npages = 1; npages < BUFFER_SIZE / P; npages++) {
      const length = npages * P;

      // Single map/unmap.
      await ioasMapFixed(self, ioasId, self.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
      let r = await ops.accessPages(accessId, 0, MOCK_APERTURE_START, length, self.buffer);
      testMdCheckRefs(self.proc, { uptr: self.buffer, length, refs: 1 });
      await ops.destroyAccessPages(accessId, r.accessPagesId);

      // Double user.
      r = await ops.accessPages(accessId, 0, MOCK_APERTURE_START, length, self.buffer);
      const accessPagesId = r.accessPagesId;
      r = await ops.accessPages(accessId, 0, MOCK_APERTURE_START, length, self.buffer);
      testMdCheckRefs(self.proc, { uptr: self.buffer, length, refs: 1 });
      await ops.destroyAccessPages(accessId, r.accessPagesId);
      await ops.destroyAccessPages(accessId, accessPagesId);

      // Add/remove a domain with a user.
      r = await ops.accessPages(accessId, 0, MOCK_APERTURE_START, length, self.buffer);
      const dom = await self.mock.mockDomain(ioasId);
      await self.mock.mdCheckMap(dom.outHwptId, MOCK_APERTURE_START, BUFFER_SIZE, self.buffer);
      await self.fd.destroy({ id: dom.outStdevId });
      await ops.destroyAccessPages(accessId, r.accessPagesId);

      await ioasUnmap(self, ioasId, MOCK_APERTURE_START, BUFFER_SIZE);
    }
    await ops.destroyAccess(accessId);
  });

  it('access_pin_unmap', async () => {
    const { accessId } = await ops.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    await ioasMapFixed(self, ioasId, self.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
    const { accessPagesId } = await ops.accessPages(accessId, 0, MOCK_APERTURE_START, BUFFER_SIZE, self.buffer);
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: BUFFER_SIZE, refs: 1 });

    // Trigger the unmap op.
    expect(await ioasUnmap(self, ioasId, MOCK_APERTURE_START, BUFFER_SIZE)).toBe(BigInt(BUFFER_SIZE));
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: BUFFER_SIZE, refs: 0 });

    // The kernel removed the item for us.
    await expectErrno('ENOENT', ops.destroyAccessPages(accessId, accessPagesId));
    await ops.destroyAccess(accessId);
  });

  it('access_rw', async () => {
    const { accessId } = await ops.createAccess(ioasId, 0);
    const iova = Number(await ioasMap(self, ioasId, self.buffer, BUFFER_SIZE));
    await checkAccessRw(self, ops, accessId, iova, 0);
    await checkAccessRw(self, ops, accessId, iova, MOCK_ACCESS_RW_SLOW_PATH);
    await ioasUnmap(self, ioasId, iova, BUFFER_SIZE);
    await ops.destroyAccess(accessId);
  });

  it('access_rw_unaligned', async () => {
    const { accessId } = await ops.createAccess(ioasId, 0);
    // Unaligned pages.
    const iova = base + MOCK_PAGE_SIZE;
    await ioasMapFixed(self, ioasId, self.buffer, BUFFER_SIZE, iova);
    await checkAccessRw(self, ops, accessId, iova, 0);
    await ioasUnmap(self, ioasId, iova, BUFFER_SIZE);
    await ops.destroyAccess(accessId);
  });

  it('fork_present (access_rw through the child\'s mapping)', async () => {
    const { accessId } = await ops.createAccess(ioasId, 0);
    // Create a mapping with a different mm.
    const child = self.proc.fork();
    self.fd.setCurrentProcess(child);
    await ioasMapFixed(self, ioasId, self.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
    self.fd.setCurrentProcess(self.proc);

    // Read pages from the remote process.
    await self.mock.mockDomain(ioasId);
    await checkAccessRw(self, ops, accessId, MOCK_APERTURE_START, 0);

    child.exit();
    await ops.destroyAccess(accessId);
  });

  it('an ACCESS keeps its IOAS busy; DESTROY of the ACCESS id is EBUSY; a pinning access sets the IOAS alignment', async () => {
    const { accessId } = await ops.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    const accessObj = [...self.fd.ctx.objects.objects()].find((o) => o.type === 'access')!;
    expect(accessObj).toBeDefined();
    await expectErrno('EBUSY', self.fd.destroy({ id: ioasId }));
    await expectErrno('EBUSY', self.fd.destroy({ id: accessObj.id }));
    expect((await self.fd.ioasIovaRanges({ ioasId, numIovas: 4 })).outIovaAlignment).toBe(BigInt(P));
    await ops.destroyAccess(accessId);
    expect((await self.fd.ioasIovaRanges({ ioasId, numIovas: 4 })).outIovaAlignment).toBe(variant.mockDomains ? BigInt(MOCK_PAGE_SIZE) : 1n);
    await expectErrno('EBADF', ops.destroyAccess(accessId));
    expect([...self.fd.ctx.objects.objects()].some((o) => o.type === 'access')).toBe(false);
    if (!stdevId) await self.fd.destroy({ id: ioasId });
  });

  it('closing the context with accesses still holding pins leaves nothing pinned', async () => {
    const a = await ops.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    await ops.createAccess(ioasId, 0);
    await ioasMapFixed(self, ioasId, self.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
    await ops.accessPages(a.accessId, 0, MOCK_APERTURE_START, BUFFER_SIZE, self.buffer);
    await ops.accessPages(a.accessId, MOCK_FLAGS_ACCESS_WRITE, MOCK_APERTURE_START + P, 2 * P, self.buffer + P);
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: BUFFER_SIZE, refs: 1 });
    // teardownMock closes the iommufd and checks every page and counter.
  });
});

describe('ACCESS test ops: errnos', () => {
  let self: MockSelf;
  let ops: AccessTestOps;
  let ioasId: number;

  beforeEach(async () => {
    self = await openMockSelf();
    ops = new AccessTestOps(self.fd);
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
  });
  afterEach(async () => {
    await teardownMock(self);
  });

  it('CREATE_ACCESS: unknown flags EOPNOTSUPP, not an IOAS ENOENT; nothing left behind', async () => {
    await expectErrno('EOPNOTSUPP', ops.createAccess(ioasId, 2));
    await expectErrno('ENOENT', ops.createAccess(ioasId + 1, 0));
    await expectErrno('ENOENT', ops.createAccess(0, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES));
    expect(self.fd.files.size).toBe(0);
    expect([...self.fd.ctx.objects.objects()].map((o) => o.type)).toEqual(['ioas']);
    // The next object gets the next id: the failed ACCESS released its id.
    expect((await self.fd.ioasAlloc()).outIoasId).toBe(ioasId + 1);
  });

  it('CREATE_ACCESS with NEEDS_PIN_PAGES on an IOAS with a sub-page area: EADDRINUSE', async () => {
    await ioasMapFixed(self, ioasId, self.buffer + MOCK_PAGE_SIZE, P, MOCK_APERTURE_START);
    await expectErrno('EADDRINUSE', ops.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES));
    const { accessId } = await ops.createAccess(ioasId, 0);
    await ops.destroyAccess(accessId);
    // And an IOAS with a pinning access refuses sub-page maps.
    await ioasUnmap(self, ioasId, MOCK_APERTURE_START, P);
    const b = await ops.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    await expectErrno('EINVAL', self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: self.buffer + MOCK_PAGE_SIZE, length: P, iova: MOCK_APERTURE_START }));
    await ops.destroyAccess(b.accessId);
  });

  it('ACCESS_PAGES errors', async () => {
    const pin = await ops.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    const noPin = await ops.createAccess(ioasId, 0);
    await ioasMapFixed(self, ioasId, self.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
    const A = MOCK_APERTURE_START;

    await expectErrno('ENOMEM', ops.accessPages(pin.accessId, 0, A, 16 * 1024 * 1024 + 1, self.buffer));
    await expectErrno('EOPNOTSUPP', ops.accessPages(pin.accessId, 2, A, P, self.buffer));
    await expectErrno('EBADFD', ops.accessPages(1234, 0, A, P, self.buffer));
    await expectErrno('EOPNOTSUPP', ops.accessPages(noPin.accessId, 0, A, P, self.buffer));
    await expectErrno('EINVAL', ops.accessPages(pin.accessId, 0, A, 0, self.buffer));
    await expectErrno('EOVERFLOW', ops.accessPages(pin.accessId, 0, U64_MAX, 2, 0));
    // Not page aligned inside its pages.
    await expectErrno('EINVAL', ops.accessPages(pin.accessId, 0, A + 512, P, self.buffer + 512));
    // Running past the mapping / nothing mapped.
    await expectErrno('ENOENT', ops.accessPages(pin.accessId, 0, A + BUFFER_SIZE - P, 2 * P, self.buffer + BUFFER_SIZE - P));
    await expectErrno('ENOENT', ops.accessPages(pin.accessId, 0, A - P, P, self.buffer));
    // The pinned pages are not the pages at uptr.
    await expectErrno('EBADE', ops.accessPages(pin.accessId, 0, A, 2 * P, self.buffer + P));
    // uptr not mapped.
    await expectErrno('EFAULT', ops.accessPages(pin.accessId, 0, A, P, 0x1000));
    // Nothing stayed pinned.
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: BUFFER_SIZE, refs: 0 });
    // uptr 0 skips the check; ids count from 0.
    expect((await ops.accessPages(pin.accessId, 0, A + P, P, 0)).accessPagesId).toBe(0);
    expect((await ops.accessPages(pin.accessId, 0, A, P, self.buffer)).accessPagesId).toBe(1);
    await ops.destroyAccessPages(pin.accessId, 0);
    await expectErrno('ENOENT', ops.destroyAccessPages(pin.accessId, 0));
    await expectErrno('EBADFD', ops.destroyAccessPages(noPin.accessId + 100, 1));
    await ops.destroyAccessPages(pin.accessId, 1);
    await ops.destroyAccess(pin.accessId);
    await ops.destroyAccess(noPin.accessId);
    await expectErrno('EBADFD', ops.accessPages(pin.accessId, 0, A, P, self.buffer));
  });

  it('ACCESS_PAGES across two areas: boundaries must be page aligned; unmapping either area revokes the pin', async () => {
    const { accessId } = await ops.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    const A = MOCK_APERTURE_START;
    await ioasMapFixed(self, ioasId, self.buffer, 2 * P, A);
    await ioasMapFixed(self, ioasId, self.buffer + 2 * P, 2 * P, A + 2 * P);
    const { accessPagesId } = await ops.accessPages(accessId, MOCK_FLAGS_ACCESS_WRITE, A + P, 2 * P, self.buffer + P);
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: P, refs: 0 });
    testMdCheckRefs(self.proc, { uptr: self.buffer + P, length: 2 * P, refs: 1 });
    await ioasUnmap(self, ioasId, A + 2 * P, 2 * P);
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: 4 * P, refs: 0 });
    await expectErrno('ENOENT', ops.destroyAccessPages(accessId, accessPagesId));
    await ops.destroyAccess(accessId);
  });

  it('write pins / writes to a read-only map are EPERM', async () => {
    const pin = await ops.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    const rw = await ops.createAccess(ioasId, 0);
    await self.fd.ioasMap({ flags: IOMMU_IOAS_MAP_READABLE | FIXED, ioasId, userVa: self.buffer, length: BUFFER_SIZE, iova: MOCK_APERTURE_START });
    await expectErrno('EPERM', ops.accessPages(pin.accessId, MOCK_FLAGS_ACCESS_WRITE, MOCK_APERTURE_START, P, self.buffer));
    const tmp = self.proc.mmap({ length: P });
    await expectErrno('EPERM', ops.accessRw(rw.accessId, MOCK_APERTURE_START, 16, tmp, MOCK_ACCESS_RW_WRITE));
    await ops.accessRw(rw.accessId, MOCK_APERTURE_START + 7, 16, tmp, 0);
    expect(self.proc.read(tmp, 16)).toEqual(self.proc.read(self.buffer + 7, 16));
    const r = await ops.accessPages(pin.accessId, 0, MOCK_APERTURE_START, P, self.buffer);
    await ops.destroyAccessPages(pin.accessId, r.accessPagesId);
    await ops.destroyAccess(pin.accessId);
    await ops.destroyAccess(rw.accessId);
    self.proc.munmap(tmp, P);
  });

  it('ACCESS_RW errors', async () => {
    const { accessId } = await ops.createAccess(ioasId, 0);
    await ioasMapFixed(self, ioasId, self.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
    const tmp = self.proc.mmap({ length: P });
    await expectErrno('ENOMEM', ops.accessRw(accessId, MOCK_APERTURE_START, 16 * 1024 * 1024 + 1, tmp, 0));
    await expectErrno('EOPNOTSUPP', ops.accessRw(accessId, MOCK_APERTURE_START, 8, tmp, 2));
    await expectErrno('EBADFD', ops.accessRw(accessId + 1, MOCK_APERTURE_START, 8, tmp, 0));
    await expectErrno('EINVAL', ops.accessRw(accessId, MOCK_APERTURE_START, 0, tmp, 0));
    await expectErrno('EOVERFLOW', ops.accessRw(accessId, ULONG_MAX, 2, tmp, 0));
    await expectErrno('ENOENT', ops.accessRw(accessId, MOCK_APERTURE_START + BUFFER_SIZE - 4, 8, tmp, 0));
    await expectErrno('ENOENT', ops.accessRw(accessId, MOCK_APERTURE_START - 4, 8, tmp, MOCK_ACCESS_RW_SLOW_PATH));
    await expectErrno('EFAULT', ops.accessRw(accessId, MOCK_APERTURE_START, 8, 0x1000, 0));
    await expectErrno('EFAULT', ops.accessRw(accessId, MOCK_APERTURE_START, 8, 0x1000, MOCK_ACCESS_RW_WRITE));
    // SYZ: iova = nth area (low 32 bits) + offset (high 32 bits).
    self.proc.write(self.buffer + 100, new Uint8Array([1, 2, 3, 4]));
    await ops.accessRw(accessId, (100n << 32n) | 0n, 4, tmp, MOCK_FLAGS_ACCESS_SYZ);
    expect([...self.proc.read(tmp, 4)]).toEqual([1, 2, 3, 4]);
    await ops.destroyAccess(accessId);
    self.proc.munmap(tmp, P);
  });

  it('ACCESS_REPLACE_IOAS: ENOENT for a non-IOAS, pins dropped on replace, alignment follows the access', async () => {
    const { accessId } = await ops.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    const ioas2 = (await self.fd.ioasAlloc()).outIoasId;
    await ioasMapFixed(self, ioasId, self.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
    const { accessPagesId } = await ops.accessPages(accessId, 0, MOCK_APERTURE_START, BUFFER_SIZE, self.buffer);
    await expectErrno('ENOENT', ops.accessReplaceIoas(accessId, 9999));
    await expectErrno('ENOENT', ops.accessReplaceIoas(accessId, 0));
    await expectErrno('EBADFD', ops.accessReplaceIoas(accessId + 7, ioas2));
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: BUFFER_SIZE, refs: 1 });
    await ops.accessReplaceIoas(accessId, ioasId); // same IOAS: nothing happens
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: BUFFER_SIZE, refs: 1 });
    await ops.accessReplaceIoas(accessId, ioas2);
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: BUFFER_SIZE, refs: 0 });
    await expectErrno('ENOENT', ops.destroyAccessPages(accessId, accessPagesId));
    expect((await self.fd.ioasIovaRanges({ ioasId, numIovas: 4 })).outIovaAlignment).toBe(1n);
    expect((await self.fd.ioasIovaRanges({ ioasId: ioas2, numIovas: 4 })).outIovaAlignment).toBe(BigInt(P));
    await self.fd.destroy({ id: ioasId });
    await expectErrno('EBUSY', self.fd.destroy({ id: ioas2 }));
    // Pinning now refers to ioas2 (empty).
    await expectErrno('ENOENT', ops.accessPages(accessId, 0, MOCK_APERTURE_START, P, self.buffer));
    await ops.destroyAccess(accessId);
    await self.fd.destroy({ id: ioas2 });
  });
});

describe('IommuFd access API (in-kernel owners)', () => {
  let self: MockSelf;
  let ioasId: number;

  beforeEach(async () => {
    self = await openMockSelf();
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    await ioasMapFixed(self, ioasId, self.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
  });
  afterEach(async () => {
    await teardownMock(self);
  });

  it('pin returns the PAs of the pages; the unmap notifier gets the area and must unpin; then the unmap proceeds', async () => {
    const calls: [bigint, bigint][] = [];
    let pinned: { iova: number; length: number } | null = null;
    const { accessId } = await self.fd.accessCreate({
      ioasId,
      ops: {
        needsPinPages: true,
        unmap: async (iova, length) => {
          calls.push([iova, length]);
          if (pinned !== null) {
            await self.fd.accessUnpin({ accessId, ...pinned });
            pinned = null;
          }
        },
      },
    });
    const { pages } = await self.fd.accessPin({ accessId, iova: MOCK_APERTURE_START + P, length: 3 * P, flags: IOMMUFD_ACCESS_RW_WRITE });
    pinned = { iova: MOCK_APERTURE_START + P, length: 3 * P };
    expect(pages.length).toBe(3);
    for (let i = 0; i < 3; i++) expect(pages[i]).toBe(self.proc.translate(self.buffer + (i + 1) * P));
    // The PAs are usable for device emulation: writing one is visible to the process.
    self.mem.u8.set([0xde, 0xad], pages[1] + 10);
    expect([...self.proc.read(self.buffer + 2 * P + 10, 2)]).toEqual([0xde, 0xad]);
    // Unpin of a range that was not pinned (model: EINVAL).
    await expectErrno('EINVAL', self.fd.accessUnpin({ accessId, iova: MOCK_APERTURE_START, length: P }));

    expect(await ioasUnmap(self, ioasId, MOCK_APERTURE_START, BUFFER_SIZE)).toBe(BigInt(BUFFER_SIZE));
    expect(calls).toEqual([[BigInt(MOCK_APERTURE_START), BigInt(BUFFER_SIZE)]]);
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: BUFFER_SIZE, refs: 0 });
    await self.fd.accessDestroy({ accessId });
    // Detaching calls unmap(0, ULONG_MAX).
    expect(calls[1]).toEqual([0n, ULONG_MAX]);
    await expectErrno('ENOENT', self.fd.accessDestroy({ accessId }));
  });

  it('an owner that does not unpin makes IOAS_UNMAP fail EBUSY; pins and rw on that area are then EINVAL', async () => {
    const { accessId } = await self.fd.accessCreate({ ioasId, ops: { needsPinPages: true, unmap: () => {} } });
    await self.fd.accessPin({ accessId, iova: MOCK_APERTURE_START, length: P });
    await expectErrno('EBUSY', self.fd.ioasUnmap({ ioasId, iova: MOCK_APERTURE_START, length: BUFFER_SIZE }));
    await expectErrno('EINVAL', self.fd.accessPin({ accessId, iova: MOCK_APERTURE_START, length: P }));
    await expectErrno('EINVAL', self.fd.accessRw({ accessId, iova: MOCK_APERTURE_START, data: new Uint8Array(4) }));
    // The context closing releases the access (its pins go) and then unmaps everything.
  });

  it('pin needs an owner created for pinning (EINVAL); rw works without one; a detached owner gets ENOENT', async () => {
    const { accessId } = await self.fd.accessCreate({ ioasId });
    await expectErrno('EINVAL', self.fd.accessPin({ accessId, iova: MOCK_APERTURE_START, length: P }));
    for (const flags of [0, IOMMUFD_ACCESS_RW_SLOW_PATH]) {
      self.proc.write(self.buffer + P - 3, new Uint8Array([9, 8, 7, 6, 5, 4]));
      const data = new Uint8Array(6);
      await self.fd.accessRw({ accessId, iova: MOCK_APERTURE_START + P - 3, data, flags });
      expect([...data]).toEqual([9, 8, 7, 6, 5, 4]);
      await self.fd.accessRw({ accessId, iova: MOCK_APERTURE_START + P - 2, data: new Uint8Array([flags + 1, flags + 2]), flags: flags | IOMMUFD_ACCESS_RW_WRITE });
      expect([...self.proc.read(self.buffer + P - 2, 2)]).toEqual([flags + 1, flags + 2]);
    }
    await expectErrno('ENOENT', self.fd.accessPin({ accessId: ioasId, iova: MOCK_APERTURE_START, length: P }));
    await self.fd.accessDestroy({ accessId });
  });

  it('rw from another process reads the source process\'s memory (private pages after fork)', async () => {
    const { accessId } = await self.fd.accessCreate({ ioasId });
    const priv = self.proc.mmap({ length: 2 * P });
    self.proc.write(priv, new Uint8Array(2 * P).fill(0xaa));
    const child = self.proc.fork();
    child.write(priv + P - 1, new Uint8Array([0xbb, 0xcc]));
    self.fd.setCurrentProcess(child);
    await ioasMapFixed(self, ioasId, priv, 2 * P, MOCK_APERTURE_START + BUFFER_SIZE);
    self.fd.setCurrentProcess(self.proc);
    for (const flags of [0, IOMMUFD_ACCESS_RW_SLOW_PATH]) {
      const one = new Uint8Array(1);
      await self.fd.accessRw({ accessId, iova: MOCK_APERTURE_START + BUFFER_SIZE + P - 1, data: one, flags });
      expect([...one]).toEqual([0xbb]);
      const two = new Uint8Array(2);
      await self.fd.accessRw({ accessId, iova: MOCK_APERTURE_START + BUFFER_SIZE + P - 1, data: two, flags });
      expect([...two]).toEqual([0xbb, 0xcc]);
    }
    // The caller's own copy is untouched.
    expect([...self.proc.read(priv + P - 1, 2)]).toEqual([0xaa, 0xaa]);
    await ioasUnmap(self, ioasId, MOCK_APERTURE_START + BUFFER_SIZE, 2 * P);
    await self.fd.accessDestroy({ accessId });
    child.exit();
    self.proc.munmap(priv, 2 * P);
  });

  it('rw slow path on memfd pages and across two areas', async () => {
    const { accessId } = await self.fd.accessCreate({ ioasId });
    const f = self.memfds[self.memfds.push((await import('../src/user-memory/memfd.js')).Memfd.create(self.mem, 4 * P)) - 1];
    f.write(P - 1, new Uint8Array([0x11, 0x22]));
    await self.fd.ioasMapFile({ flags: RW | FIXED, ioasId, fd: f, start: 0, length: 2 * P, iova: MOCK_APERTURE_START + BUFFER_SIZE });
    const data = new Uint8Array(2);
    await self.fd.accessRw({ accessId, iova: MOCK_APERTURE_START + BUFFER_SIZE + P - 1, data });
    expect([...data]).toEqual([0x11, 0x22]);
    await self.fd.accessRw({ accessId, iova: MOCK_APERTURE_START + BUFFER_SIZE + P, data: new Uint8Array([0x33]), flags: IOMMUFD_ACCESS_RW_WRITE });
    expect([...f.read(P, 1)]).toEqual([0x33]);
    // Across the end of the user map into the file map.
    self.proc.write(self.buffer + BUFFER_SIZE - 1, new Uint8Array([0x44]));
    const x = new Uint8Array(2);
    await self.fd.accessRw({ accessId, iova: MOCK_APERTURE_START + BUFFER_SIZE - 1, data: x });
    expect([...x]).toEqual([0x44, 0]);
    await self.fd.accessDestroy({ accessId });
  });
});

interface MockDomainVariant {
  name: string;
  mockDomains: number;
}

describe.each<MockDomainVariant>([
  { name: 'one_domain', mockDomains: 1 },
  { name: 'two_domains', mockDomains: 2 },
])('FIXTURE iommufd_mock_domain ($name)', (variant) => {
  let self: MockSelf;
  let ops: AccessTestOps;
  let ioasId: number;
  let hwptIds: number[];

  beforeEach(async () => {
    self = await openMockSelf();
    ops = new AccessTestOps(self.fd);
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    hwptIds = [];
    for (let i = 0; i < variant.mockDomains; i++) hwptIds.push((await self.mock.mockDomain(ioasId)).outHwptId);
  });
  afterEach(async () => {
    await teardownMock(self);
  });

  async function checkMockIova(uptr: number, iova: number, length: number): Promise<void> {
    for (const h of new Set(hwptIds)) await self.mock.mdCheckMap(h, iova, length, uptr);
  }

  it('user_copy', async () => {
    // Pin the pages in an IOAS with no domains then copy to an IOAS with domains.
    const srcIoas = (await self.fd.ioasAlloc()).outIoasId;
    let srcIova = await ioasMap(self, srcIoas, self.buffer, BUFFER_SIZE);
    const { accessId } = await ops.createAccess(srcIoas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    const first = await ops.accessPages(accessId, 0, srcIova, BUFFER_SIZE, self.buffer);
    await self.fd.ioasCopy({ flags: FIXED | RW, dstIoasId: ioasId, srcIoasId: srcIoas, length: BUFFER_SIZE, dstIova: MOCK_APERTURE_START, srcIova });
    await checkMockIova(self.buffer, MOCK_APERTURE_START, BUFFER_SIZE);
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: BUFFER_SIZE, refs: 1 });

    // Now replace the IOAS with a new one.
    const newIoas = (await self.fd.ioasAlloc()).outIoasId;
    srcIova = await ioasMap(self, newIoas, self.buffer, BUFFER_SIZE);
    await ops.accessReplaceIoas(accessId, newIoas);
    // The replace dropped the old pin.
    await expectErrno('ENOENT', ops.destroyAccessPages(accessId, first.accessPagesId));

    // Destroy the old IOAS and clean up the copied mapping.
    expect(await ioasUnmap(self, ioasId, MOCK_APERTURE_START, BUFFER_SIZE)).toBe(BigInt(BUFFER_SIZE));
    await self.fd.destroy({ id: srcIoas });

    // Then run the same test again with the new IOAS.
    const second = await ops.accessPages(accessId, 0, srcIova, BUFFER_SIZE, self.buffer);
    expect(second.accessPagesId).toBe(1);
    await self.fd.ioasCopy({ flags: FIXED | RW, dstIoasId: ioasId, srcIoasId: newIoas, length: BUFFER_SIZE, dstIova: MOCK_APERTURE_START, srcIova });
    await checkMockIova(self.buffer, MOCK_APERTURE_START, BUFFER_SIZE);

    await ops.destroyAccessPages(accessId, second.accessPagesId);
    await ops.destroyAccess(accessId);
    await self.fd.destroy({ id: newIoas });
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: BUFFER_SIZE, refs: 1 }); // still mapped in the domain IOAS
  });
});
