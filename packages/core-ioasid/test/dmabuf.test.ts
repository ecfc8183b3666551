/**
 * dma-buf MAP_FILE (selftest iommufd.c: dmabuf_simple, dmabuf_revoke) replayed through
 * IommuFd.ioctl() with IOMMU_TEST_CMD DMABUF_GET / DMABUF_REVOKE, in the no_domain and
 * mock_domain variants of FIXTURE iommufd_ioas, plus what the revoke does to the hardware: the
 * IOPTEs are zapped (device DMA faults), a domain added later does not map the revoked area, and
 * an un-revoke does not bring the old mapping back.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ACCESS_READ, IommuError, type PagingDomain } from '@iommulab/driver-api';
import { fieldOf, ioctlLayout, readField, writeField } from '../src/abi/index.js';
import { IOMMU_TEST_CMD, IOMMU_TEST_CMD_LAYOUT, dmabufOf, enableSelftest, testOpLayout, type Selftest } from '../src/abi/test-cmd.js';
import { DmaBuf, IOMMU_TEST_OP_DMABUF_GET, IOMMU_TEST_OP_DMABUF_REVOKE } from '../src/dmabuf.js';
import type { HwPagetable } from '../src/hw-pagetable.js';
import { IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE } from '../src/uapi/constants.js';
import { PAGE_SIZE } from './fixture.js';
import { dma, openMockSelf, teardownMock, type MockSelf } from './mock-fixture.js';

const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
const O_CLOEXEC = 0o2000000;

function struct(name: string, values: Record<string, number | bigint> = {}) {
  const l = ioctlLayout(name);
  const buf = new Uint8Array(l.size);
  writeField(buf, fieldOf(l, 'size'), l.size);
  for (const [k, v] of Object.entries(values)) writeField(buf, fieldOf(l, k), v);
  return { buf, cmd: l.cmd, get: (k: string) => readField(buf, fieldOf(l, k)) };
}

function testCmd(op: number, values: Record<string, number | bigint>) {
  const hdr = IOMMU_TEST_CMD_LAYOUT.fields;
  const buf = new Uint8Array(IOMMU_TEST_CMD_LAYOUT.size);
  writeField(buf, hdr[0]!, IOMMU_TEST_CMD_LAYOUT.size);
  writeField(buf, hdr[1]!, op);
  const l = testOpLayout(op)!;
  for (const [k, v] of Object.entries(values)) writeField(buf, l.fields.find((x) => x.name === k)!, v);
  return buf;
}

async function outcome(p: Promise<number>): Promise<number | string> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof IommuError) return e.errno;
    throw e;
  }
}

for (const variant of [{ name: 'no_domain', mockDomains: 0 }, { name: 'mock_domain', mockDomains: 1 }]) {
  describe(`FIXTURE iommufd_ioas (${variant.name}): dma-buf`, () => {
    let self: MockSelf;
    let st: Selftest;
    let ioasId: number;
    let deviceId = 0;
    let hwptId = 0;
    let rid = 0;
    const run = (s: { cmd: number; buf: Uint8Array }) => outcome(self.fd.ioctl(s.cmd, s.buf));
    const tc = (buf: Uint8Array) => outcome(self.fd.ioctl(IOMMU_TEST_CMD, buf));

    /** _test_cmd_get_dmabuf: the fd is the ioctl's return value. */
    async function getDmabuf(len: number): Promise<number> {
      const r = await tc(testCmd(IOMMU_TEST_OP_DMABUF_GET, { length: len, open_flags: O_CLOEXEC }));
      expect(typeof r).toBe('number');
      return r as number;
    }
    const revoke = (dfd: number, revoked: boolean) => tc(testCmd(IOMMU_TEST_OP_DMABUF_REVOKE, { dmabuf_fd: dfd, revoked: revoked ? 1 : 0 }));
    /** _test_ioctl_ioas_map_file: errno or the IOVA. */
    async function mapFile(dfd: number, start: number, length: number, iova?: bigint): Promise<bigint | string> {
      const s = struct('IOMMU_IOAS_MAP_FILE', {
        flags: RW | (iova === undefined ? 0 : IOMMU_IOAS_MAP_FIXED_IOVA), ioas_id: ioasId, fd: dfd, start, length, iova: iova ?? 0n,
      });
      const r = await run(s);
      return r === 0 ? (s.get('iova') as bigint) : (r as string);
    }
    async function unmap(iova: bigint, length: number): Promise<number | string> {
      return run(struct('IOMMU_IOAS_UNMAP', { ioas_id: ioasId, iova, length }));
    }
    function domainOf(id: number): PagingDomain {
      return (self.fd.ctx.objects.get(id) as HwPagetable).domain as PagingDomain;
    }
    /** Every page of `[iova, +length)` is / is not mapped in the device's HWPT, and DMA agrees. */
    async function expectMapped(iova: bigint, length: number, mapped: boolean, buf?: DmaBuf): Promise<void> {
      if (!variant.mockDomains) return;
      for (let off = 0; off < length; off += PAGE_SIZE) {
        const r = await dma(self, rid, iova + BigInt(off), ACCESS_READ);
        expect(r.ok).toBe(mapped);
        expect(domainOf(hwptId).iovaToPhys(Number(iova) + off) >= 0).toBe(mapped);
        if (mapped && buf && r.ok) {
          // the device reaches the exporter's bytes
          expect(self.mem.u8[r.pa]).toBe(buf.read(off, 1)[0]);
        }
      }
    }

    beforeEach(async () => {
      self = await openMockSelf();
      st = enableSelftest(self.fd, { mock: self.stack });
      const a = struct('IOMMU_IOAS_ALLOC');
      expect(await run(a)).toBe(0);
      ioasId = a.get('out_ioas_id') as number;
      if (variant.mockDomains) {
        const r = await st.mock!.mockDomain(ioasId);
        deviceId = r.outIdevId;
        hwptId = r.outHwptId;
        rid = st.mock!.deviceOf(r.outStdevId).dev.rid;
      }
    });
    afterEach(async () => {
      await teardownMock(self);
    });

    it('dmabuf_simple', async () => {
      const bufSize = PAGE_SIZE * 4;
      const dfd = await getDmabuf(bufSize);
      expect(dfd).toBeGreaterThanOrEqual(3);
      const buf = dmabufOf(self.fd, dfd);
      expect(buf.size).toBe(bufSize);
      expect(buf.openFlags).toBe(O_CLOEXEC);
      buf.write(0, Uint8Array.from({ length: bufSize }, (_, i) => (i * 13 + 5) & 0xff));
      expect(await mapFile(dfd, 0, 0)).toBe('EINVAL');
      expect(await mapFile(dfd, bufSize, bufSize)).toBe('EINVAL');
      expect(await mapFile(dfd, 0, bufSize + 1)).toBe('EINVAL');
      const iova = await mapFile(dfd, 0, bufSize);
      expect(typeof iova).toBe('bigint');
      await expectMapped(iova as bigint, bufSize, true, buf);
      // no pinned-page accounting for dma-buf maps
      expect(self.proc.vmPinned).toBe(0);
      self.fd.files.close(dfd); // close(dfd): the IOAS map keeps the buffer
      expect(buf.isOpen).toBe(false);
      expect(buf.importCount).toBe(1);
      await expectMapped(iova as bigint, bufSize, true, buf);
    });

    it('dmabuf_revoke', async () => {
      const bufSize = PAGE_SIZE * 4;
      const dfd = await getDmabuf(bufSize);
      const iova = (await mapFile(dfd, 0, bufSize)) as bigint;
      await expectMapped(iova, bufSize, true);
      expect(await revoke(dfd, true)).toBe(0);
      // the kernel zaps the IOPTEs: the device's DMA faults, the area stays
      await expectMapped(iova, bufSize, false);
      expect(self.fd.ctx.objects.get(ioasId)).toBeDefined();

      let hwpt2 = 0;
      if (variant.mockDomains) {
        const h = struct('IOMMU_HWPT_ALLOC', { flags: 0, dev_id: deviceId, pt_id: ioasId });
        expect(await run(h)).toBe(0);
        hwpt2 = h.get('out_hwpt_id') as number;
        // the new domain maps nothing for the revoked area
        expect(domainOf(hwpt2).iovaToPhys(Number(iova))).toBeLessThan(0);
      }

      expect(await mapFile(dfd, 0, bufSize)).toBe('ENODEV');

      expect(await revoke(dfd, false)).toBe(0);
      const iova2 = (await mapFile(dfd, 0, bufSize)) as bigint;
      expect(typeof iova2).toBe('bigint');
      await expectMapped(iova2, bufSize, true);
      // un-revoking does not restore the old mapping
      await expectMapped(iova, bufSize, false);
      if (hwpt2) expect(domainOf(hwpt2).iovaToPhys(Number(iova2))).toBeGreaterThanOrEqual(0);

      // Restore the iova back
      expect(await unmap(iova, bufSize)).toBe(0);
      expect(await mapFile(dfd, 0, bufSize, iova)).toBe(iova);
      await expectMapped(iova, bufSize, true);
      if (hwpt2) expect(await run(struct('IOMMU_DESTROY', { id: hwpt2 }))).toBe(0);

      self.fd.files.close(dfd);
    });

    it('any move notification revokes existing imports (even revoked = 0)', async () => {
      const dfd = await getDmabuf(PAGE_SIZE);
      const iova = (await mapFile(dfd, 0, PAGE_SIZE)) as bigint;
      expect(await revoke(dfd, false)).toBe(0);
      await expectMapped(iova, PAGE_SIZE, false);
      expect(await mapFile(dfd, 0, PAGE_SIZE)).not.toBe('ENODEV');
      self.fd.files.close(dfd);
    });

    it('DMABUF_GET / DMABUF_REVOKE errors', async () => {
      expect(await tc(testCmd(IOMMU_TEST_OP_DMABUF_GET, { length: 0, open_flags: 0 }))).toBe('EINVAL');
      expect(await tc(testCmd(IOMMU_TEST_OP_DMABUF_GET, { length: 512 * PAGE_SIZE + 1, open_flags: 0 }))).toBe('EINVAL');
      const big = await getDmabuf(512 * PAGE_SIZE);
      const one = await getDmabuf(1);
      expect(dmabufOf(self.fd, one).size).toBe(PAGE_SIZE);
      expect(await revoke(12345, true)).toBe('EBADF');
      const fq = struct('IOMMU_FAULT_QUEUE_ALLOC');
      expect(await run(fq)).toBe(0);
      expect(await revoke(fq.get('out_fault_fd') as number, true)).toBe('EINVAL');
      expect(await mapFile(12345, 0, PAGE_SIZE)).toBe('EBADF');
      self.fd.files.close(big);
      self.fd.files.close(one);
    });

    it('revoke with the area copied into a second IOAS zaps both', async () => {
      const dfd = await getDmabuf(2 * PAGE_SIZE);
      const iova = (await mapFile(dfd, 0, 2 * PAGE_SIZE)) as bigint;
      const a2 = struct('IOMMU_IOAS_ALLOC');
      expect(await run(a2)).toBe(0);
      const ioas2 = a2.get('out_ioas_id') as number;
      let stdev2 = 0;
      let hwpt2 = 0;
      if (variant.mockDomains) {
        const r = await st.mock!.mockDomain(ioas2);
        stdev2 = r.outStdevId;
        hwpt2 = r.outHwptId;
      }
      const copy = struct('IOMMU_IOAS_COPY', {
        flags: RW | IOMMU_IOAS_MAP_FIXED_IOVA, dst_ioas_id: ioas2, src_ioas_id: ioasId, length: 2 * PAGE_SIZE, dst_iova: iova, src_iova: iova,
      });
      expect(await run(copy)).toBe(0);
      if (hwpt2) expect(domainOf(hwpt2).iovaToPhys(Number(iova))).toBeGreaterThanOrEqual(0);
      expect(await revoke(dfd, true)).toBe(0);
      if (hwpt2) expect(domainOf(hwpt2).iovaToPhys(Number(iova))).toBeLessThan(0);
      await expectMapped(iova, 2 * PAGE_SIZE, false);
      if (stdev2) expect(await run(struct('IOMMU_DESTROY', { id: stdev2 }))).toBe(0);
      self.fd.files.close(dfd);
    });
  });
}
