/**
 * The mock-device test ops of the iommufd selftest (drivers/iommu/iommufd/selftest.c,
 * iommufd_test.h), as methods of {@link MockTestOps}: an IommuFd plus one hw-mock BackendStack
 * sharing its PhysMem. Each mock device is a real device of that backend (its own requester id),
 * so its DMA goes through the stack's device port and the hardware's page-table walk and IOTLB.
 *
 * Contracts (op numbers of iommufd_test.h):
 * - MOCK_DOMAIN (2) / MOCK_DOMAIN_FLAGS (12) `mockDomain(ptId)` / `mockDomainFlags(ptId, devFlags)`:
 *   a SELFTEST object owning a new DEVICE attached (RID) to `ptId` (IOAS → auto domain, or a
 *   HWPT). Ids are handed out SELFTEST, DEVICE, then the HWPT, as in the kernel. Unknown device
 *   flags → EINVAL. `DESTROY(stdev)` unplugs the device: detached (auto HWPT may go), unbound.
 * - MOCK_DOMAIN_REPLACE (10) `mockDomainReplace(stdevId, ptId)`: replaces the RID attachment.
 * - MD_CHECK_MAP (3) `mdCheckMap(hwptId, iova, length, uptr)`: every IO page of the domain maps to
 *   exactly the PA the process sees at `uptr` (EINVAL otherwise; alignment to the smallest IO page
 *   size; EFAULT for unmapped user memory). The model also checks it by DMA: a device attached to
 *   the HWPT (RID) translates every IO page through the device port.
 * - MD_CHECK_IOTLB (14) `mdCheckIotlb(hwptId, slot, value)`: mock nested IOTLB slot (EINVAL for a
 *   slot > 3 or a different value; ENOENT unless a HWPT_NESTED).
 * - DIRTY (13) `dirty(hwptId, {iova, length, pageSize, bitmap})`: marks dirty the IOPTE containing
 *   `iova + i * pageSize` for every set bit i; EINVAL for zero / misaligned sizes, a missing bitmap,
 *   or a domain not tracking dirty pages. Returns the number of bits seen (`out_nr_dirty`).
 * - PASID_ATTACH / REPLACE / DETACH / CHECK_HWPT (18-21).
 */
import {
  ACCESS_READ,
  ACCESS_WRITE,
  Prot,
  type BackendStack,
  type DmaResult,
  type IommuDriver,
  type NestedDomain,
  type PagingDomain,
} from '@iommulab/driver-api';
import type { IommufdCtx } from './context.js';
import {
  deviceAttachObject,
  deviceBindObject,
  deviceDetachObject,
  deviceReplaceObject,
  deviceUnbindObject,
  type IommufdDevice,
} from './device.js';
import { fail } from './errors.js';
import { HwPagetable, HwptPaging, IOMMU_NO_PASID } from './hw-pagetable.js';
import type { IommuFd } from './iommufd.js';
import { IommufdObject } from './object-table.js';
import { hex, u32 } from './uapi/u64.js';

/** `MOCK_FLAGS_DEVICE_NO_DIRTY`: the mock device cannot do dirty tracking. */
export const MOCK_FLAGS_DEVICE_NO_DIRTY = 1 << 0;
/** `MOCK_FLAGS_DEVICE_PASID`: the mock device supports PASID (MOCK_PASID_WIDTH bits). */
export const MOCK_FLAGS_DEVICE_PASID = 1 << 2;
/** PASID width of a PASID-capable mock device. */
export const MOCK_PASID_WIDTH = 20;

/** IOMMU_TEST_OP_* numbers of the mock-device ops. */
export const IOMMU_TEST_OP_MOCK_DOMAIN = 2;
export const IOMMU_TEST_OP_MD_CHECK_MAP = 3;
export const IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE = 10;
export const IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS = 12;
export const IOMMU_TEST_OP_DIRTY = 13;
export const IOMMU_TEST_OP_MD_CHECK_IOTLB = 14;
export const IOMMU_TEST_OP_PASID_ATTACH = 18;
export const IOMMU_TEST_OP_PASID_REPLACE = 19;
export const IOMMU_TEST_OP_PASID_DETACH = 20;
export const IOMMU_TEST_OP_PASID_CHECK_HWPT = 21;

/** The mock paging domain's extras the ops use (hw-mock's MockPagingDomain). */
interface MockPagingLike extends PagingDomain {
  readonly dirtyTracking: boolean;
  readonly table: { setDirty(iova: number, size: number): number };
}
/** The mock nested domain's extras (hw-mock's MockNestedDomain). */
interface MockNestedLike extends NestedDomain {
  readonly iotlb: Uint32Array;
}
/** The mock driver's extras (hw-mock's MockDriver). */
interface MockDriverLike extends IommuDriver {
  pasidDomain(dev: IommufdDevice['dev'], pasid: number): PagingDomain | NestedDomain | undefined;
  attachedDomain(dev: IommufdDevice['dev']): PagingDomain | NestedDomain | 'blocked';
}

/** The SELFTEST object (`struct selftest_obj`, TYPE_IDEV): owns one mock device. */
export class SelftestObj extends IommufdObject {
  readonly type = 'selftest' as const;
  /** @internal */
  idev: IommufdDevice | null = null;

  constructor(
    private readonly ctx: IommufdCtx,
    private readonly ops: MockTestOps,
  ) {
    super();
  }

  /** The mock device's DEVICE object. */
  get device(): IommufdDevice {
    return this.idev!;
  }

  /**
   * `iommufd_selftest_destroy`: detach the RID, unbind, unplug. (The model also detaches PASIDs
   * still attached; the kernel expects the test to have done so.)
   */
  async destroy(): Promise<void> {
    const idev = this.idev;
    if (idev === null) return;
    this.idev = null;
    const rid = idev.dev.rid;
    try {
      for (const p of [...idev.attached.keys()].sort((x, y) => y - x)) {
        if (p !== IOMMU_NO_PASID) await deviceDetachObject(this.ctx, idev, p);
      }
      await deviceDetachObject(this.ctx, idev, IOMMU_NO_PASID);
      await deviceUnbindObject(this.ctx, idev);
    } finally {
      this.ops.releaseRid(rid);
    }
  }
}

/** Options of a DIRTY op. */
export interface MockDirtyArgs {
  iova: bigint | number;
  length: bigint | number;
  pageSize: bigint | number;
  /** The bitmap (`uptr`): bytes, or a user VA in the calling process. */
  bitmap: Uint8Array | bigint | number | null;
}

/** The mock-device test ops bound to one IommuFd and one hw-mock backend stack. */
export class MockTestOps {
  readonly fd: IommuFd;
  readonly stack: BackendStack;
  private readonly freeRids: number[] = [];
  private nextRid = 1;

  /** `stack` must be a hw-mock backend over the IommuFd's PhysMem (EINVAL otherwise). */
  constructor(fd: IommuFd, stack: BackendStack) {
    if (stack.mem !== fd.ctx.mem) fail('EINVAL', `MockTestOps: backend ${stack.id} does not share the iommufd's PhysMem`);
    if (stack.driver.backendId !== 'mock') fail('EINVAL', `MockTestOps: backend ${stack.id} is ${stack.driver.backendId}, not the mock`);
    this.fd = fd;
    this.stack = stack;
  }

  private get ctx(): IommufdCtx {
    return this.fd.ctx;
  }

  private allocRid(): number {
    return this.freeRids.length > 0 ? this.freeRids.shift()! : this.nextRid++;
  }

  /** @internal */
  releaseRid(rid: number): void {
    this.freeRids.push(rid);
    this.freeRids.sort((a, b) => a - b);
  }

  private selftest(id: number): SelftestObj {
    const o = this.ctx.objects.get<SelftestObj>(u32(id, 'id'), 'selftest', 'SELFTEST');
    if (o.idev === null) fail('EINVAL', `SELFTEST ${id} has no device`);
    return o;
  }

  /** The DEVICE of a SELFTEST object (for DMA tests). */
  deviceOf(stdevId: number): IommufdDevice {
    return this.selftest(stdevId).device;
  }

  /** IOMMU_TEST_OP_MOCK_DOMAIN. */
  mockDomain(ptId: number): Promise<{ outStdevId: number; outHwptId: number; outIdevId: number }> {
    return this.mockDomainFlags(ptId, 0);
  }

  /** IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS (`iommufd_test_mock_domain`). */
  async mockDomainFlags(ptId: number, devFlags: number): Promise<{ outStdevId: number; outHwptId: number; outIdevId: number }> {
    if (this.fd.closed) fail('EBADF', 'IOMMU_TEST_CMD: the iommufd is closed');
    const flags = u32(devFlags, 'dev_flags');
    const objects = this.ctx.objects;
    const sobj = objects.alloc(new SelftestObj(this.ctx, this));
    const valid = MOCK_FLAGS_DEVICE_NO_DIRTY | MOCK_FLAGS_DEVICE_PASID;
    let idev: IommufdDevice | null = null;
    let rid = -1;
    try {
      if (flags & ~valid) fail('EINVAL', `MOCK_DOMAIN_FLAGS: unknown device flags ${hex(flags & ~valid)}`);
      rid = this.allocRid();
      idev = await deviceBindObject(this.ctx, {
        stack: this.stack,
        spec: {
          rid,
          pasidBits: flags & MOCK_FLAGS_DEVICE_PASID ? MOCK_PASID_WIDTH : 0,
          noDirty: (flags & MOCK_FLAGS_DEVICE_NO_DIRTY) !== 0,
          name: `iommufd_mock${rid}`,
        },
      });
      const hwptId = await deviceAttachObject(this.ctx, idev, IOMMU_NO_PASID, u32(ptId, 'id'));
      sobj.idev = idev;
      objects.finalize(sobj);
      return { outStdevId: sobj.id, outHwptId: hwptId, outIdevId: idev.id };
    } catch (e) {
      if (idev !== null) await deviceUnbindObject(this.ctx, idev);
      if (rid >= 0) this.releaseRid(rid);
      objects.abort(sobj);
      throw e;
    }
  }

  /** IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: returns the HWPT used. */
  async mockDomainReplace(stdevId: number, ptId: number): Promise<{ ptId: number }> {
    const sobj = this.selftest(stdevId);
    return { ptId: await deviceReplaceObject(this.ctx, sobj.device, IOMMU_NO_PASID, u32(ptId, 'pt_id')) };
  }

  /** IOMMU_TEST_OP_PASID_ATTACH: returns the HWPT used. */
  async pasidAttach(stdevId: number, pasid: number, ptId: number): Promise<{ ptId: number }> {
    const sobj = this.selftest(stdevId);
    return { ptId: await deviceAttachObject(this.ctx, sobj.device, u32(pasid, 'pasid'), u32(ptId, 'pt_id')) };
  }

  /** IOMMU_TEST_OP_PASID_REPLACE: returns the HWPT used. */
  async pasidReplace(stdevId: number, pasid: number, ptId: number): Promise<{ ptId: number }> {
    const sobj = this.selftest(stdevId);
    return { ptId: await deviceReplaceObject(this.ctx, sobj.device, u32(pasid, 'pasid'), u32(ptId, 'pt_id')) };
  }

  /** IOMMU_TEST_OP_PASID_DETACH (an unattached PASID is fine). */
  async pasidDetach(stdevId: number, pasid: number): Promise<void> {
    const sobj = this.selftest(stdevId);
    await deviceDetachObject(this.ctx, sobj.device, u32(pasid, 'pasid'));
  }

  /**
   * IOMMU_TEST_OP_PASID_CHECK_HWPT: the domain the IOMMU driver has for `pasid` of the device is
   * `hwptId`'s (0: none). EINVAL otherwise; a `hwptId` that is not a HWPT → ENOENT / EINVAL.
   */
  async pasidCheckHwpt(stdevId: number, pasid: number, hwptId: number): Promise<void> {
    const sobj = this.selftest(stdevId);
    const idev = sobj.device;
    const p = u32(pasid, 'pasid');
    const drv = idev.driver as MockDriverLike;
    const attached = p === IOMMU_NO_PASID ? drv.attachedDomain(idev.dev) : drv.pasidDomain(idev.dev, p);
    const domain = attached === 'blocked' ? undefined : attached;
    if (hwptId === 0) {
      if (domain !== undefined) fail('EINVAL', `PASID_CHECK_HWPT: PASID ${p} of device ${idev.id} is attached`);
      return;
    }
    const obj = this.ctx.objects.get(u32(hwptId, 'hwpt_id'), undefined, 'HWPT');
    if (!(obj instanceof HwPagetable)) fail('EINVAL', `PASID_CHECK_HWPT: ${hwptId} is a ${obj.type}, not a HWPT`);
    if (domain !== obj.domain) fail('EINVAL', `PASID_CHECK_HWPT: PASID ${p} of device ${idev.id} is not attached to HWPT ${hwptId}`);
  }

  /** A mock HWPT_PAGING (`get_md_pagetable`): ENOENT unless a HWPT_PAGING, EINVAL if not this mock's. */
  private mockPaging(hwptId: number): { hwpt: HwptPaging; domain: MockPagingLike } {
    const hwpt = this.ctx.objects.get<HwptPaging>(u32(hwptId, 'id'), 'hwpt_paging', 'HWPT_PAGING');
    const d = hwpt.domain as MockPagingLike | null;
    if (d === null || hwpt.driver !== this.stack.driver || typeof d.table?.setDirty !== 'function') {
      fail('EINVAL', `HWPT ${hwptId} is not a mock paging domain of ${this.stack.id}`);
    }
    return { hwpt, domain: d };
  }

  /**
   * IOMMU_TEST_OP_MD_CHECK_MAP (`iommufd_test_md_check_pa`), plus a DMA check through the device
   * port of a device attached to the HWPT.
   */
  async mdCheckMap(hwptId: number, iova: bigint | number, length: bigint | number, uptr: bigint | number): Promise<void> {
    const what = 'MD_CHECK_MAP';
    const { hwpt, domain } = this.mockPaging(hwptId);
    const ps = Math.min(...domain.pageSizes);
    const i0 = Number(iova);
    const len = Number(length);
    const u0 = Number(uptr);
    if (!Number.isSafeInteger(i0) || !Number.isSafeInteger(len) || !Number.isSafeInteger(u0) || i0 % ps || len % ps || u0 % ps) {
      fail('EINVAL', `${what}: iova ${hex(i0)} / length ${hex(len)} / uptr ${hex(u0)} not aligned to ${ps}`);
    }
    const proc = this.ctx.current;
    const expect: number[] = [];
    for (let off = 0; off < len; off += ps) {
      let pa: number;
      try {
        pa = proc.translate(u0 + off);
      } catch (e) {
        return fail('EFAULT', `${what}: uptr ${hex(u0 + off)}: ${(e as Error).message}`);
      }
      const io = domain.iovaToPhys(i0 + off);
      if (io !== pa) fail('EINVAL', `${what}: iova ${hex(i0 + off)} maps to ${io < 0 ? 'nothing' : hex(io)}, the process sees ${hex(pa)}`);
      expect.push(pa);
    }
    // The same through the hardware: DMA from a device whose RID is attached to this HWPT.
    const idev = this.attachedDevice(hwpt);
    if (idev === null || len === 0) return;
    const reqs = [];
    for (let off = 0; off < len; off += ps) {
      const area = hwpt.ioas.iopt.lookup(i0 + off)?.area;
      const access = area === undefined || area.prot & Prot.READ ? ACCESS_READ : ACCESS_WRITE;
      reqs.push({ rid: idev.dev.rid, iova: i0 + off, access });
    }
    const res: DmaResult[] = await this.stack.port.translateMany(reqs);
    for (let k = 0; k < res.length; k++) {
      const r = res[k];
      if (!r.ok || r.pa !== expect[k]) {
        fail('EINVAL', `${what}: DMA by device ${idev.id} at iova ${hex(reqs[k].iova)} ${r.ok ? `reached ${hex(r.pa)}` : `faulted (${r.fault})`}, expected ${hex(expect[k])}`);
      }
    }
  }

  /** A device of this stack whose RID is attached to `hwpt`, if any. */
  attachedDevice(hwpt: HwPagetable): IommufdDevice | null {
    for (const o of this.ctx.objects.objects()) {
      if (o.type !== 'device') continue;
      const d = o as IommufdDevice;
      if (d.stack === this.stack && d.attached.get(IOMMU_NO_PASID) === hwpt) return d;
    }
    return null;
  }

  /** IOMMU_TEST_OP_MD_CHECK_IOTLB (`iommufd_test_md_check_iotlb`). */
  async mdCheckIotlb(hwptId: number, slot: number, value: number): Promise<void> {
    const hwpt = this.ctx.objects.get<HwPagetable>(u32(hwptId, 'id'), 'hwpt_nested', 'HWPT_NESTED');
    const d = hwpt.domain as MockNestedLike | null;
    if (d === null || !(d.iotlb instanceof Uint32Array) || hwpt.driver !== this.stack.driver) {
      fail('EINVAL', `HWPT ${hwptId} is not a mock nested domain`);
    }
    const id = u32(slot, 'iotlb id');
    if (id >= d.iotlb.length) fail('EINVAL', `MD_CHECK_IOTLB: iotlb id ${id} > ${d.iotlb.length - 1}`);
    if (d.iotlb[id] !== u32(value, 'iotlb') >>> 0) fail('EINVAL', `MD_CHECK_IOTLB: slot ${id} is ${hex(d.iotlb[id])}, expected ${hex(value)}`);
  }

  /** IOMMU_TEST_OP_DIRTY (`iommufd_test_dirty`): returns `outNrDirty`. */
  async dirty(hwptId: number, a: MockDirtyArgs): Promise<{ outNrDirty: number }> {
    const what = 'IOMMU_TEST_OP_DIRTY';
    const iova = Number(a.iova);
    const length = Number(a.length);
    const ps = Number(a.pageSize);
    const noBitmap = a.bitmap === null || a.bitmap === undefined || a.bitmap === 0 || a.bitmap === 0n;
    if (!ps || !length || iova % ps || length % ps || noBitmap) {
      fail('EINVAL', `${what}: page_size ${ps} / length ${length} / iova ${hex(iova)} / bitmap`);
    }
    const { domain } = this.mockPaging(hwptId);
    if (!domain.dirtyTracking) fail('EINVAL', `${what}: HWPT ${hwptId} is not tracking dirty pages`);
    const max = length / ps;
    const nbytes = Math.ceil(max / 8);
    let bits: Uint8Array;
    if (a.bitmap instanceof Uint8Array) {
      if (a.bitmap.length < nbytes) fail('EFAULT', `${what}: bitmap holds ${a.bitmap.length} of ${nbytes} bytes`);
      bits = a.bitmap;
    } else {
      try {
        bits = this.ctx.current.read(Number(a.bitmap), nbytes);
      } catch (e) {
        return fail('EFAULT', `${what}: bitmap: ${(e as Error).message}`);
      }
    }
    const io = Math.min(...domain.pageSizes);
    let count = 0;
    for (let i = 0; i < max; i++) {
      if (!(bits[i >>> 3] & (1 << (i & 7)))) continue;
      const x = iova + i * ps;
      // set_dirty(iova): the IOPTE holding x gets its D bit.
      domain.table.setDirty(x - (x % io), io);
      count++;
    }
    return { outNrDirty: count };
  }
}
