/**
 * The selftest vIOMMU (drivers/iommu/iommufd/selftest.c: mock_viommu_init / _destroy,
 * mock_viommu_alloc_domain_nested, mock_viommu_cache_invalidate, mock_hw_queue_init_phys,
 * iommufd_test_trigger_vevent), as the mock driver's `IommuViommu`.
 *
 * - Type {@link IOMMU_VIOMMU_TYPE_SELFTEST}; driver data `{u32 in_data; u32 out_data;
 *   u64 out_mmap_offset; u64 out_mmap_length}` (at least 8 bytes): two zeroed pages are
 *   allocated, the first u32 holds `in_data`, `out_data = in_data`, and the pages are offered for
 *   mmap (`out_mmap_offset` / `out_mmap_length` = 2 pages).
 * - Device caches: every mock device has 4 cache slots initialised to
 *   {@link IOMMU_TEST_DEV_CACHE_DEFAULT} (the kernel's `mdev->cache`); vIOMMU invalidation entries
 *   `{u32 flags; u32 vdev_id; u32 cache_id}` of type {@link IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST}
 *   clear slot `cache_id` (or all 4 with IOMMU_TEST_INVALIDATE_FLAG_ALL) of the device whose
 *   virtual id is `vdev_id`: unknown flags EOPNOTSUPP, `cache_id` > 3 EINVAL, unknown `vdev_id`
 *   EINVAL; processing stops at the first bad entry.
 * - A device attached (RID) to a nested domain of a vIOMMU must have a virtual id there (ENOENT
 *   otherwise); the attach records it for {@link triggerMockVevent}.
 * - HW queues of type {@link IOMMU_HW_QUEUE_TYPE_SELFTEST}: index ≥ {@link IOMMU_TEST_HW_QUEUE_MAX}
 *   EINVAL, a used index EEXIST, index i > 0 before i - 1 EIO; queue i depends on queue i - 1.
 */
import {
  IommuError,
  type DomainAllocFlags,
  type IommuDevice,
  type IommuHwQueue,
  type IommuViommu,
  type NestedDomain,
  type UserInvalidateResult,
  type ViommuAllocEnv,
  type ViommuEventHandler,
} from '@iommulab/driver-api';
import type { PhysMem } from '@iommulab/runtime';
import {
  IOMMU_HW_QUEUE_TYPE_SELFTEST,
  IOMMU_TEST_DEV_CACHE_DEFAULT,
  IOMMU_TEST_HW_QUEUE_MAX,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  MOCK_DEV_CACHE_ID_MAX,
  MOCK_DEV_CACHE_NUM,
} from './constants.js';
import type { MockNestedDomain } from './nested-domain.js';
import type { MockPagingDomain } from './paging-domain.js';

/** Bytes of `struct iommu_viommu_selftest`. */
export const VIOMMU_SELFTEST_DATA_BYTES = 24;
/** Mandatory part of it (`offsetofend(out_data)`). */
const VIOMMU_SELFTEST_DATA_MIN = 8;
/** Bytes of one `struct iommu_viommu_invalidate_selftest`. */
export const VIOMMU_INVALIDATE_SELFTEST_ENTRY_BYTES = 12;
const PAGE = 4096;

/** What the vIOMMU needs of its driver. @internal */
export interface ViommuHost {
  checkAlive(): void;
  readonly mem: PhysMem;
  /** `alloc_domain_nested` of the vIOMMU (driver.ts). */
  allocViommuNested(dev: IommuDevice, viommu: MockViommu, dataType: number, data: Uint8Array, flags: DomainAllocFlags): Promise<MockNestedDomain>;
}

// ---------------------------------------------------------------------------- per-device state

/** `mdev->cache`. */
const devCaches = new WeakMap<IommuDevice, Uint32Array>();
/** `mdev->viommu` / `mdev->vdev_id`, set when the RID attaches. */
const devViommu = new WeakMap<IommuDevice, { viommu: MockViommu; virtId: bigint }>();
/** `mock_nested->mock_viommu`. */
const nestedViommu = new WeakMap<NestedDomain, MockViommu>();

/** The 4 cache slots of a mock device (`mdev->cache`), created with the default value. */
export function mockDeviceCache(dev: IommuDevice): Uint32Array {
  let c = devCaches.get(dev);
  if (c === undefined) {
    c = new Uint32Array(MOCK_DEV_CACHE_NUM).fill(IOMMU_TEST_DEV_CACHE_DEFAULT);
    devCaches.set(dev, c);
  }
  return c;
}

/** @internal marks a nested domain as allocated on `viommu`. */
export function setNestedViommu(d: NestedDomain, viommu: MockViommu): void {
  nestedViommu.set(d, viommu);
}

/** The vIOMMU a nested domain was allocated on, if any. */
export function nestedDomainViommu(d: unknown): MockViommu | undefined {
  return typeof d === 'object' && d !== null ? nestedViommu.get(d as NestedDomain) : undefined;
}

/**
 * `mock_domain_nop_attach`'s vIOMMU part: for a nested domain of a vIOMMU the device needs a
 * virtual id there (ENOENT). Returns the commit step that records the device's vIOMMU / id.
 * @internal
 */
export function viommuAttachPrepare(dev: IommuDevice, target: unknown): () => void {
  const v = nestedDomainViommu(target);
  let virtId = 0n;
  if (v !== undefined) {
    const id = v.virtIdOf(dev);
    if (id === undefined) throw new IommuError('ENOENT', `attach: device ${dev.rid} has no virtual device on vIOMMU ${v.id}`);
    virtId = id;
  }
  return () => {
    if (v === undefined) devViommu.delete(dev);
    else devViommu.set(dev, { viommu: v, virtId });
  };
}

/**
 * `iommufd_test_trigger_vevent`: reports a selftest vEVENT `{u32 virt_id}` for the device on the
 * vIOMMU its RID is attached through. ENOENT when it is not attached to a vIOMMU nested domain
 * (or its virtual id is 0); the report's error otherwise (EOPNOTSUPP: no event queue).
 */
export function triggerMockVevent(dev: IommuDevice): void {
  const a = devViommu.get(dev);
  if (a === undefined || a.virtId === 0n) throw new IommuError('ENOENT', `device ${dev.rid} is not attached through a vIOMMU with a virtual id`);
  const data = new Uint8Array(4);
  new DataView(data.buffer).setUint32(0, Number(a.virtId & 0xffff_ffffn), true);
  a.viommu.report(IOMMU_VEVENTQ_TYPE_SELFTEST, dev, data);
}

// ---------------------------------------------------------------------------- the vIOMMU

let nextViommuId = 1;

/** A selftest HW queue (`struct mock_hw_queue`). */
class MockHwQueue implements IommuHwQueue {
  readonly dependsOn?: number;
  constructor(
    private readonly viommu: MockViommu,
    readonly index: number,
    readonly basePa: number,
    readonly length: number,
  ) {
    if (index > 0) this.dependsOn = index - 1;
  }

  /** `mock_hw_queue_destroy`. */
  destroy(): void {
    this.viommu.queueGone(this);
  }
}

/** The mock driver's vIOMMU (`struct mock_viommu`). */
export class MockViommu implements IommuViommu {
  readonly type = IOMMU_VIOMMU_TYPE_SELFTEST;
  readonly hwQueueTypes: readonly number[] = [IOMMU_HW_QUEUE_TYPE_SELFTEST];
  /** Driver-wide id, for messages. */
  readonly id = nextViommuId++;
  outData?: Uint8Array;
  mmapRegion?: { readonly offset: number; readonly length: number };
  /** PA of the two loopback pages (`mock_viommu->page`), or -1. */
  pagePa = -1;
  private readonly vdevs = new Map<bigint, IommuDevice>();
  private readonly queues: (MockHwQueue | undefined)[] = new Array(IOMMU_TEST_HW_QUEUE_MAX).fill(undefined);
  private readonly handlers = new Set<ViommuEventHandler>();
  private destroyed = false;

  /** @internal use `MockDriver.viommuAlloc` */
  constructor(
    private readonly host: ViommuHost,
    /** The nest-parent (stage-2) domain (`s2_parent`). */
    readonly parent: MockPagingDomain,
  ) {}

  /**
   * `mock_viommu_init`: with driver data, allocates the loopback pages and offers them for mmap.
   * @throws IommuError EINVAL (data shorter than 8 bytes), E2BIG (non-zero bytes past the
   *   struct), ENOMEM
   */
  static create(host: ViommuHost, parent: MockPagingDomain, data: Uint8Array, env?: ViommuAllocEnv): MockViommu {
    const v = new MockViommu(host, parent);
    if (data.length === 0) return v;
    // iommu_copy_struct_from_user(&data, user_data, IOMMU_VIOMMU_TYPE_SELFTEST, out_data)
    if (data.length < VIOMMU_SELFTEST_DATA_MIN) throw new IommuError('EINVAL', `viommu data of ${data.length} bytes is below ${VIOMMU_SELFTEST_DATA_MIN}`);
    for (let i = VIOMMU_SELFTEST_DATA_BYTES; i < data.length; i++) {
      if (data[i] !== 0) throw new IommuError('E2BIG', `viommu data has non-zero bytes past its ${VIOMMU_SELFTEST_DATA_BYTES}-byte struct`);
    }
    const inData = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true);
    const mem = host.mem;
    let pa: number;
    try {
      pa = mem.allocFrames(2);
    } catch (e) {
      throw new IommuError('ENOMEM', 'viommu: no memory for the loopback pages', { cause: e });
    }
    let offset: number;
    try {
      offset = env !== undefined ? env.allocMmap(pa, 2 * PAGE) : PAGE;
    } catch (e) {
      mem.freeFrames(pa, 2);
      throw e;
    }
    v.pagePa = pa;
    mem.write32(pa, inData); // loopback test on the page
    const out = new Uint8Array(VIOMMU_SELFTEST_DATA_BYTES);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, inData, true);
    dv.setUint32(4, inData, true); // out_data = in_data
    dv.setBigUint64(8, BigInt(offset), true);
    dv.setBigUint64(16, BigInt(2 * PAGE), true);
    v.outData = out;
    v.mmapRegion = { offset, length: 2 * PAGE };
    return v;
  }

  private alive(op: string): void {
    this.host.checkAlive();
    if (this.destroyed) throw new IommuError('ENOENT', `${op}: vIOMMU ${this.id} was destroyed`);
  }

  /** The virtual id of `dev` on this vIOMMU, if it has one. */
  virtIdOf(dev: IommuDevice): bigint | undefined {
    for (const [id, d] of this.vdevs) if (d === dev) return id;
    return undefined;
  }

  async vdeviceInit(dev: IommuDevice, virtId: bigint): Promise<void> {
    this.alive('vdeviceInit');
    if (this.vdevs.has(virtId)) throw new IommuError('EEXIST', `virtual id 0x${virtId.toString(16)} is in use on vIOMMU ${this.id}`);
    this.vdevs.set(virtId, dev);
  }

  vdeviceDestroy(dev: IommuDevice): void {
    const id = this.virtIdOf(dev);
    if (id !== undefined) this.vdevs.delete(id);
  }

  async domainAllocNested(dev: IommuDevice, dataType: number, data: Uint8Array, flags: DomainAllocFlags = {}): Promise<NestedDomain> {
    this.alive('domainAllocNested');
    return this.host.allocViommuNested(dev, this, dataType, data, flags);
  }

  /** `mock_viommu_cache_invalidate`. */
  async cacheInvalidate(dataType: number, entryLen: number, entries: Uint8Array, count: number): Promise<UserInvalidateResult> {
    this.alive('cacheInvalidate');
    // A zero-length array is allowed to validate the array type.
    if (count === 0 && dataType === IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST) return { handled: 0 };
    // iommu_copy_struct_from_full_user_array
    if (dataType !== IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST) {
      return { handled: 0, error: new IommuError('EINVAL', `invalidation data type 0x${dataType.toString(16)} is not IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST`) };
    }
    if (!Number.isInteger(count) || count <= 0 || !Number.isInteger(entryLen) || entryLen <= 0) {
      return { handled: 0, error: new IommuError('EINVAL', `entry_num ${count} / entry_len ${entryLen}`) };
    }
    if (entries.length < entryLen * count) {
      return { handled: 0, error: new IommuError('EFAULT', `${entries.length} bytes hold fewer than ${count} entries of ${entryLen}`) };
    }
    const E = VIOMMU_INVALIDATE_SELFTEST_ENTRY_BYTES;
    const cmds = new Uint8Array(E * count);
    for (let i = 0; i < count; i++) {
      const src = entries.subarray(i * entryLen, (i + 1) * entryLen);
      // copy_struct_from_user: a short entry is zero-filled, a longer one needs a zero tail.
      for (let b = E; b < entryLen; b++) {
        if (src[b] !== 0) return { handled: 0, error: new IommuError('E2BIG', `entry ${i} has non-zero bytes past its ${E}-byte struct`) };
      }
      cmds.set(src.subarray(0, Math.min(E, entryLen)), i * E);
    }
    const dv = new DataView(cmds.buffer);
    for (let i = 0; i < count; i++) {
      const flags = dv.getUint32(i * E, true);
      const vdevId = dv.getUint32(i * E + 4, true);
      const cacheId = dv.getUint32(i * E + 8, true);
      if (flags & ~IOMMU_TEST_INVALIDATE_FLAG_ALL) {
        return { handled: i, error: new IommuError('EOPNOTSUPP', `entry ${i}: unknown flags 0x${flags.toString(16)}`) };
      }
      if (cacheId > MOCK_DEV_CACHE_ID_MAX) {
        return { handled: i, error: new IommuError('EINVAL', `entry ${i}: cache_id ${cacheId} > ${MOCK_DEV_CACHE_ID_MAX}`) };
      }
      const dev = this.vdevs.get(BigInt(vdevId));
      if (dev === undefined) return { handled: i, error: new IommuError('EINVAL', `entry ${i}: no device with virtual id 0x${vdevId.toString(16)}`) };
      const cache = mockDeviceCache(dev);
      if (flags & IOMMU_TEST_INVALIDATE_FLAG_ALL) cache.fill(0);
      else cache[cacheId] = 0;
    }
    return { handled: count };
  }

  /** `mock_hw_queue_init_phys`. */
  async hwQueueAlloc(type: number, index: number, basePa: number, length: number, iova?: bigint): Promise<IommuHwQueue> {
    this.alive('hwQueueAlloc');
    if (type !== IOMMU_HW_QUEUE_TYPE_SELFTEST) throw new IommuError('EOPNOTSUPP', `HW queue type 0x${type.toString(16)} is not IOMMU_HW_QUEUE_TYPE_SELFTEST`);
    if (!Number.isInteger(index) || index < 0 || index >= IOMMU_TEST_HW_QUEUE_MAX) {
      throw new IommuError('EINVAL', `HW queue index ${index} is not below ${IOMMU_TEST_HW_QUEUE_MAX}`);
    }
    if (this.queues[index] !== undefined) throw new IommuError('EEXIST', `HW queue index ${index} is in use`);
    if (index > 0 && this.queues[index - 1] === undefined) throw new IommuError('EIO', `HW queue index ${index - 1} must exist before index ${index}`);
    // Catch a core bug converting the address: the parent must map iova to basePa.
    if (iova !== undefined && this.parent.iovaToPhys(Number(iova)) !== basePa) {
      throw new IommuError('EFAULT', `HW queue base PA 0x${basePa.toString(16)} is not what the parent maps at 0x${iova.toString(16)}`);
    }
    const q = new MockHwQueue(this, index, basePa, length);
    this.queues[index] = q;
    return q;
  }

  /** @internal */
  queueGone(q: MockHwQueue): void {
    if (this.queues[q.index] === q) this.queues[q.index] = undefined;
  }

  onViommuEvent(handler: ViommuEventHandler): () => void {
    this.handlers.add(handler);
    return () => {
      this.handlers.delete(handler);
    };
  }

  /**
   * `iommufd_viommu_report_event`: hands the event to the subscribers; their error (EOPNOTSUPP
   * when nobody queues events of that type) is thrown to the reporter.
   */
  report(type: number, dev: IommuDevice, data: Uint8Array): void {
    if (data.length === 0) throw new IommuError('EINVAL', 'viommu event without data');
    if (this.handlers.size === 0) throw new IommuError('EOPNOTSUPP', `vIOMMU ${this.id}: no event queue of type 0x${type.toString(16)}`);
    let err: unknown;
    let queued = false;
    for (const h of this.handlers) {
      try {
        h({ type, dev, data: data.slice() });
        queued = true;
      } catch (e) {
        err ??= e;
      }
    }
    if (!queued && err !== undefined) throw err;
  }

  /** `mock_viommu_destroy`: frees the loopback pages. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.handlers.clear();
    this.vdevs.clear();
    if (this.pagePa >= 0) {
      this.host.mem.freeFrames(this.pagePa, 2);
      this.pagePa = -1;
    }
  }
}
