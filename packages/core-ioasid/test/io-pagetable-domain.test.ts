/**
 * The domain hooks of IoPagetable that HWPT / device code builds on (io_pagetable.c:
 * iopt_table_add_domain / iopt_table_remove_domain / iopt_fill_domain, iommu_pgsize), the
 * pin-on-demand rules of pages.c, reserved-range ownership and alignment requirements.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { getIoas } from '../src/ioas.js';
import { iommuPgsize } from '../src/io-pagetable/domain-map.js';
import type { IoPagetable } from '../src/io-pagetable/io-pagetable.js';
import { testMdCheckRefs } from '../src/selftest.js';
import { U64_MAX } from '../src/uapi/u64.js';
import { BUFFER_SIZE, expectErrno, HUGEPAGE_SIZE, ioasMap, ioasMapFixed, ioasUnmap, openSelf, PAGE_SIZE, RW, teardown, type Self } from './fixture.js';
import { SoftDomain } from './soft-domain.js';

const P = PAGE_SIZE;

describe('iommu_pgsize', () => {
  it('picks the largest size both addresses allow, and stops before a bigger page becomes possible', () => {
    const sizes = [4096, 2 * 1024 * 1024];
    expect(iommuPgsize(sizes, 0, 0, 4 * 1024 * 1024)).toEqual({ pgsize: 2 * 1024 * 1024, count: 2 });
    // Misaligned PA: only 4K pages
    expect(iommuPgsize(sizes, 0, 4096, 4 * 1024 * 1024)).toEqual({ pgsize: 4096, count: 1024 });
    // Same offset in a 2M page: map 4K up to the 2M boundary, then 2M
    expect(iommuPgsize(sizes, 2 * 1024 * 1024 - 8192, 4 * 1024 * 1024 - 8192, 4 * 1024 * 1024)).toEqual({ pgsize: 4096, count: 2 });
    expect(iommuPgsize([2048], 2048, 6144, 8192)).toEqual({ pgsize: 2048, count: 4 });
  });
});

describe('IoPagetable domains', () => {
  let self: Self;
  let ioasId: number;
  let iopt: IoPagetable;
  beforeEach(async () => {
    self = openSelf();
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    iopt = getIoas(self.fd.ctx, ioasId).iopt;
  });
  afterEach(async () => {
    await teardown(self);
  });

  it('MAP without domains pins nothing; adding a domain pins once and maps every area; removing unpins', async () => {
    const iova = await ioasMap(self, ioasId, self.buffer, BUFFER_SIZE);
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: BUFFER_SIZE, refs: 0 });
    const d1 = new SoftDomain();
    const d2 = new SoftDomain([2048, 1 << 20]);
    await iopt.addDomain(d1);
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: BUFFER_SIZE, refs: 1 });
    expect(self.proc.vmPinned).toBe(16);
    await iopt.addDomain(d2);
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: BUFFER_SIZE, refs: 1 });
    // max(min page size of every domain): 4096 from d1
    expect(iopt.iovaAlignment).toBe(4096n);
    for (let off = 0; off < BUFFER_SIZE; off += 1024) {
      const pa = self.proc.translate(self.buffer + off);
      expect(d1.iovaToPhys(Number(iova) + off)).toBe(pa);
      expect(d2.iovaToPhys(Number(iova) + off)).toBe(pa);
      expect(iopt.lookup(iova + BigInt(off))?.pa).toBe(pa);
    }
    // A new map reaches both domains
    const iova2 = await ioasMap(self, ioasId, self.buffer + P, 2 * P);
    expect(d1.iovaToPhys(Number(iova2))).toBe(self.proc.translate(self.buffer + P));
    expect(d2.iovaToPhys(Number(iova2) + P)).toBe(self.proc.translate(self.buffer + 2 * P));
    // A second MAP of the same memory is a second pages object: a second pin (as the kernel)
    testMdCheckRefs(self.proc, { uptr: self.buffer + P, length: 2 * P, refs: 2 });
    // Unmap reaches both domains and syncs them
    const s1 = d1.syncs;
    await ioasUnmap(self, ioasId, iova2, 2 * P);
    expect(d1.iovaToPhys(Number(iova2))).toBe(-1);
    expect(d2.iovaToPhys(Number(iova2))).toBe(-1);
    expect(d1.syncs).toBeGreaterThan(s1);
    await iopt.removeDomain(d1);
    expect(d1.mappedBytes).toBe(0);
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: BUFFER_SIZE, refs: 1 });
    await iopt.removeDomain(d2);
    expect(d2.mappedBytes).toBe(0);
    expect(iopt.iovaAlignment).toBe(1n);
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: BUFFER_SIZE, refs: 0 });
    expect(self.proc.vmPinned).toBe(0);
  });

  it('maps with huge pages when IOVA and PA align, 4K pages when HUGE_PAGES is off', async () => {
    const buf = self.proc.mmap({ length: 2 * HUGEPAGE_SIZE, hugeAlign: HUGEPAGE_SIZE });
    const d = new SoftDomain();
    await iopt.addDomain(d);
    await ioasMapFixed(self, ioasId, buf, HUGEPAGE_SIZE, HUGEPAGE_SIZE);
    // Frames come from a 4K allocator: count leaves by size; contiguous 2M runs (if any) must use 2M leaves.
    const sizes = [...d.leaves.values()].map((e) => e.size);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(HUGEPAGE_SIZE);
    await ioasUnmap(self, ioasId, HUGEPAGE_SIZE, HUGEPAGE_SIZE);
    await iopt.removeDomain(d);
    self.proc.munmap(buf, 2 * HUGEPAGE_SIZE);
  });

  it('addDomain: page size above PAGE_SIZE → EINVAL; misaligned areas → EADDRINUSE; aperture over an area → EADDRINUSE; failure changes nothing', async () => {
    await expectErrno('EINVAL', iopt.addDomain(new SoftDomain([8192])));
    await ioasMapFixed(self, ioasId, self.buffer + 1024, 1024, 1 << 20);
    await expectErrno('EADDRINUSE', iopt.addDomain(new SoftDomain([2048])));
    await ioasUnmap(self, ioasId, 0, U64_MAX);
    await ioasMapFixed(self, ioasId, self.buffer, P, 0);
    await expectErrno('EADDRINUSE', iopt.addDomain(new SoftDomain([4096], { start: 1 << 24, last: 2 ** 31 - 1 })));
    expect(iopt.reservedRanges).toEqual([]);
    // An injected map failure rolls back pins and mappings
    await ioasMapFixed(self, ioasId, self.buffer + P, 4 * P, 1 << 24);
    const bad = new SoftDomain([4096]);
    bad.failAfter = 1;
    await expectErrno('EIO', iopt.addDomain(bad));
    expect(bad.mappedBytes).toBe(0);
    expect(iopt.domains.length).toBe(0);
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: BUFFER_SIZE, refs: 0 });
  });

  it('aperture reservations: IOVA_RANGES reports the aperture; auto IOVAs land inside; removal restores', async () => {
    const d = new SoftDomain([2048], { start: 1 << 24, last: 2 ** 31 - 1 });
    await iopt.addDomain(d);
    const r = await self.fd.ioasIovaRanges({ ioasId, numIovas: 4 });
    expect(r.allowedIovas).toEqual([{ start: 1n << 24n, last: 2n ** 31n - 1n }]);
    expect(r.outIovaAlignment).toBe(2048n);
    const iova = await ioasMap(self, ioasId, self.buffer, P);
    expect(iova >= 1n << 24n).toBe(true);
    await expectErrno('EINVAL', ioasMapFixed(self, ioasId, self.buffer, P, 0));
    await expectErrno('EINVAL', self.fd.ioasMap({ flags: RW, ioasId, userVa: self.buffer, length: 1000 }));
    await ioasUnmap(self, ioasId, iova, P);
    await iopt.removeDomain(d);
    expect((await self.fd.ioasIovaRanges({ ioasId, numIovas: 4 })).allowedIovas).toEqual([{ start: 0n, last: U64_MAX }]);
  });

  it('reserved ranges by owner; alignment requirements of other users', async () => {
    const owner = {};
    iopt.addReservedRange(owner, 100n, 200n);
    iopt.addReservedRange({}, 150n, 300n);
    expect((await self.fd.ioasIovaRanges({ ioasId, numIovas: 4 })).allowedIovas).toEqual([
      { start: 0n, last: 99n },
      { start: 301n, last: U64_MAX },
    ]);
    iopt.removeReservedOwner(owner);
    expect((await self.fd.ioasIovaRanges({ ioasId, numIovas: 4 })).allowedIovas[1]).toEqual({ start: 301n, last: U64_MAX });
    await ioasMapFixed(self, ioasId, self.buffer, P, 8 * P);
    expect(() => iopt.addReservedRange(owner, BigInt(8 * P), BigInt(8 * P))).toThrow(/EADDRINUSE/);
    iopt.setAlignmentRequirement(owner, P);
    expect(iopt.iovaAlignment).toBe(BigInt(P));
    expect(() => iopt.setAlignmentRequirement(owner, 2 * P)).toThrow(/EADDRINUSE/);
    expect(iopt.iovaAlignment).toBe(BigInt(P));
    iopt.setAlignmentRequirement(owner, null);
    expect(iopt.iovaAlignment).toBe(1n);
  });

  it('COPY shares pins: the copy is mapped into the domain without new pins; unmapping both releases them', async () => {
    const d = new SoftDomain();
    await iopt.addDomain(d);
    const src = await ioasMap(self, ioasId, self.buffer, 4 * P);
    const { dstIova } = await self.fd.ioasCopy({ flags: RW, dstIoasId: ioasId, srcIoasId: ioasId, length: 2 * P, srcIova: src + BigInt(P) });
    expect(d.iovaToPhys(Number(dstIova))).toBe(self.proc.translate(self.buffer + P));
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: 4 * P, refs: 1 });
    expect(self.proc.vmPinned).toBe(4);
    await ioasUnmap(self, ioasId, src, 4 * P);
    testMdCheckRefs(self.proc, { uptr: self.buffer + P, length: 2 * P, refs: 1 });
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: P, refs: 0 });
    await ioasUnmap(self, ioasId, dstIova, 2 * P);
    testMdCheckRefs(self.proc, { uptr: self.buffer, length: 4 * P, refs: 0 });
    await iopt.removeDomain(d);
  });

  it('fork_gone (model): a map made by an exited process fails only when a domain needs its pages (EFAULT)', async () => {
    const child = self.proc.fork();
    const cbuf = child.mmap({ length: 4 * P });
    self.fd.setCurrentProcess(child);
    await ioasMapFixed(self, ioasId, cbuf, 4 * P, 1 << 24);
    self.fd.setCurrentProcess(self.proc);
    child.exit();
    await expectErrno('EFAULT', iopt.addDomain(new SoftDomain()));
    expect(iopt.domains.length).toBe(0);
  });

  it('map with a domain: unmapped memory → EFAULT, read-only memory with WRITEABLE → EPERM, nothing left behind', async () => {
    const d = new SoftDomain();
    await iopt.addDomain(d);
    const buf = self.proc.mmap({ length: 8 * P });
    self.proc.munmap(buf + 4 * P, 4 * P);
    await expectErrno('EFAULT', ioasMap(self, ioasId, buf, 8 * P));
    self.proc.munmap(buf, 4 * P);
    await expectErrno('EFAULT', ioasMap(self, ioasId, buf, 8 * P));
    const ro = self.proc.mmap({ length: 2 * P, prot: 'r' });
    await expectErrno('EPERM', ioasMap(self, ioasId, ro, 2 * P));
    expect(iopt.areas.size).toBe(0);
    expect(d.mappedBytes).toBe(0);
    expect(self.proc.vmPinned).toBe(0);
    await iopt.removeDomain(d);
  });

  it('RLIMIT_MEMLOCK: pins over the limit fail with ENOMEM and charge nothing', async () => {
    self.proc.memlockLimit = 4 * P;
    const d = new SoftDomain();
    await iopt.addDomain(d);
    await ioasMap(self, ioasId, self.buffer, 4 * P);
    expect(self.proc.account.lockedVm).toBe(4);
    await expectErrno('ENOMEM', ioasMap(self, ioasId, self.buffer + 4 * P, P));
    // Every MAP is its own pages object: mapping the same memory again is charged again
    await expectErrno('ENOMEM', ioasMap(self, ioasId, self.buffer, 2 * P));
    // COPY shares the pages: no new charge
    const { dstIova } = await self.fd.ioasCopy({ flags: RW, dstIoasId: ioasId, srcIoasId: ioasId, length: 4 * P, srcIova: iopt.areas.toArray()[0].start });
    expect(dstIova > 0n).toBe(true);
    expect(self.proc.account.lockedVm).toBe(4);
    await ioasUnmap(self, ioasId, 0, U64_MAX);
    expect(self.proc.account.lockedVm).toBe(0);
    await iopt.removeDomain(d);
  });
});
