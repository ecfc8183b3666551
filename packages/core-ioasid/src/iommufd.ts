/**
 * IommuFd: one open /dev/iommu (drivers/iommu/iommufd/main.c). One async method per ioctl, named
 * after it in camelCase with the struct fields in camelCase (`size` and `__reserved*` are
 * ABI-only; `out_*` fields are returned). Methods check the struct-level fields and call the
 * object module, like main.c's ioctl table; every failure is an {@link IommufdError} carrying
 * the kernel's errno and leaves the context unchanged. All methods return Promises (the kernel
 * may sleep in any ioctl; domain invalidations are asynchronous).
 */
import { PhysMem } from '@iommulab/runtime';
import { iommufdIoctl } from './abi/dispatch.js';
import { FdTable } from './abi/fd-table.js';
import { IommufdCtx } from './context.js';
import { fail } from './errors.js';
import {
  ioasAllowIovas,
  ioasAlloc,
  ioasChangeProcess,
  ioasCopy,
  ioasIovaRanges,
  ioasMap,
  ioasMapFile,
  ioasUnmap,
  type IovaRange,
} from './ioas.js';
import { option } from './option.js';
import { u32 } from './uapi/u64.js';
import type { DmaBuf } from './dmabuf.js';
import type { Memfd } from './user-memory/memfd.js';
import { UserProcess } from './user-memory/process.js';
import { vfioIoas } from './vfio-compat.js';
// devices and HWPTs
import {
  deviceAttach,
  deviceBind,
  deviceDetach,
  deviceReplace,
  deviceUnbind,
  getHwInfo,
  type DeviceBindArgs,
  type HwInfoResult,
} from './device.js';
import {
  hwptAlloc,
  hwptGetDirtyBitmap,
  hwptInvalidate,
  hwptSetDirtyTracking,
  type HwptAllocArgs,
  type HwptGetDirtyBitmapArgs,
  type HwptInvalidateArgs,
} from './hw-pagetable.js';
// access
import {
  accessCreate,
  accessDestroy,
  accessPin,
  accessReplace,
  accessRw,
  accessUnpin,
  type AccessCreateArgs,
} from './access.js';
// faults and vIOMMU
import { faultQueueAlloc, type FaultFile } from './fault.js';
import { veventqAlloc, type VeventqAllocArgs, type VeventqFile } from './eventq.js';
import { iommufdMmap, viommuAlloc, type IommufdMapping, type IommufdMmapArgs, type ViommuAllocArgs } from './viommu.js';
import { vdeviceAlloc } from './vdevice.js';
import { hwQueueAlloc, type HwQueueAllocArgs } from './hw-queue.js';
// VFIO type1 compatibility
import {
  vfioCheckExtension,
  vfioGetApiVersion,
  vfioIommuGetInfo,
  vfioIommuMapDma,
  vfioIommuUnmapDma,
  vfioSetIommu,
  vfioType1Ioctl,
  type VfioType1Info,
} from './vfio-type1.js';

/** Options of {@link IommuFd.open}. */
export interface IommuFdOpenOptions {
  /** The opening process (default: a new process over `mem`, memlock unlimited, no CAP_IPC_LOCK). */
  process?: UserProcess;
  /** Physical memory (default: the process's, or a new 256 MiB PhysMem). */
  mem?: PhysMem;
  /** The opener has CAP_SYS_RESOURCE (IOMMU_OPTION_RLIMIT_MODE SET). Default true: selftests run as root. */
  capSysResource?: boolean;
}

/** An open /dev/iommu. */
export class IommuFd {
  /** The context (object table, options); object modules take it. */
  readonly ctx: IommufdCtx;
  /** Descriptor table for the binary ABI's fd fields (MAP_FILE's `fd`, fault / veventq fds). */
  readonly files = new FdTable();
  private isClosed = false;

  private constructor(ctx: IommufdCtx) {
    this.ctx = ctx;
  }

  /** Opens /dev/iommu. */
  static open(opts: IommuFdOpenOptions = {}): IommuFd {
    const mem = opts.mem ?? opts.process?.mem ?? PhysMem.create();
    const process = opts.process ?? UserProcess.create({ mem });
    return new IommuFd(new IommufdCtx({ mem, process, capSysResource: opts.capSysResource ?? true }));
  }

  /** The process issuing calls (the opener unless {@link setCurrentProcess} chose another). */
  get process(): UserProcess {
    return this.ctx.current;
  }

  /** Makes `p` the caller of later ioctls (e.g. a forked child using the inherited fd). */
  setCurrentProcess(p: UserProcess): void {
    this.ctx.current = p;
  }

  /** True after {@link close}. */
  get closed(): boolean {
    return this.isClosed;
  }

  private check(what: string): void {
    if (this.isClosed) fail('EBADF', `${what}: the iommufd is closed`);
  }

  /** close(2): destroys every object (leaves first); later calls fail with `EBADF`. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    await this.ctx.objects.close();
    this.ctx.vfioIoas = null;
  }

  /** Binary ioctl: `arg` is the user struct (null = NULL pointer). Resolves to 0 or throws. */
  async ioctl(cmd: number, arg: Uint8Array | null): Promise<number> {
    this.check('ioctl');
    return iommufdIoctl(this, cmd, arg);
  }

  /** IOMMU_DESTROY: `ENOENT` for an unknown id, `EBUSY` while other objects use it. */
  async destroy(a: { id: number }): Promise<void> {
    this.check('IOMMU_DESTROY');
    await this.ctx.objects.remove(u32(a.id, 'id'));
  }

  /** IOMMU_IOAS_ALLOC. */
  async ioasAlloc(a: { flags?: number } = {}): Promise<{ outIoasId: number }> {
    this.check('IOMMU_IOAS_ALLOC');
    return ioasAlloc(this.ctx, a);
  }

  /** IOMMU_IOAS_IOVA_RANGES: `numIovas` in = capacity; `EMSGSIZE` (with `err.out`) when more exist. */
  async ioasIovaRanges(a: { ioasId: number; numIovas: number }): Promise<{ numIovas: number; allowedIovas: IovaRange[]; outIovaAlignment: bigint }> {
    this.check('IOMMU_IOAS_IOVA_RANGES');
    return ioasIovaRanges(this.ctx, a);
  }

  /** IOMMU_IOAS_ALLOW_IOVAS. */
  async ioasAllowIovas(a: { ioasId: number; allowedIovas: readonly { start: bigint | number; last: bigint | number }[] }): Promise<void> {
    this.check('IOMMU_IOAS_ALLOW_IOVAS');
    return ioasAllowIovas(this.ctx, a);
  }

  /** IOMMU_IOAS_MAP. */
  async ioasMap(a: { flags: number; ioasId: number; userVa: bigint | number; length: bigint | number; iova?: bigint | number }): Promise<{ iova: bigint }> {
    this.check('IOMMU_IOAS_MAP');
    return ioasMap(this.ctx, a);
  }

  /** IOMMU_IOAS_MAP_FILE. */
  async ioasMapFile(a: {
    flags: number;
    ioasId: number;
    fd: Memfd | DmaBuf;
    start: bigint | number;
    length: bigint | number;
    iova?: bigint | number;
  }): Promise<{ iova: bigint }> {
    this.check('IOMMU_IOAS_MAP_FILE');
    return ioasMapFile(this.ctx, a);
  }

  /** IOMMU_IOAS_COPY. */
  async ioasCopy(a: {
    flags: number;
    dstIoasId: number;
    srcIoasId: number;
    length: bigint | number;
    dstIova?: bigint | number;
    srcIova: bigint | number;
  }): Promise<{ dstIova: bigint }> {
    this.check('IOMMU_IOAS_COPY');
    return ioasCopy(this.ctx, a);
  }

  /** IOMMU_IOAS_UNMAP: returns the bytes unmapped. */
  async ioasUnmap(a: { ioasId: number; iova: bigint | number; length: bigint | number }): Promise<{ length: bigint }> {
    this.check('IOMMU_IOAS_UNMAP');
    return ioasUnmap(this.ctx, a);
  }

  /** IOMMU_IOAS_CHANGE_PROCESS: moves pinned-page accounting to the current process. */
  async ioasChangeProcess(_a: Record<string, never> = {}): Promise<void> {
    this.check('IOMMU_IOAS_CHANGE_PROCESS');
    return ioasChangeProcess(this.ctx);
  }

  /** IOMMU_OPTION. */
  async option(a: { optionId: number; op: number; objectId: number; val64?: bigint | number }): Promise<{ val64: bigint }> {
    this.check('IOMMU_OPTION');
    return option(this.ctx, a);
  }

  /** IOMMU_VFIO_IOAS. */
  async vfioIoas(a: { ioasId: number; op: number }): Promise<{ ioasId: number }> {
    this.check('IOMMU_VFIO_IOAS');
    return vfioIoas(this.ctx, a);
  }

  // devices and HWPTs

  /** IOMMU_HWPT_ALLOC: a HWPT_PAGING on an IOAS, or a HWPT_NESTED on a nest-parent HWPT_PAGING. */
  async hwptAlloc(a: HwptAllocArgs): Promise<{ outHwptId: number }> {
    this.check('IOMMU_HWPT_ALLOC');
    return hwptAlloc(this.ctx, a);
  }

  /** IOMMU_GET_HW_INFO. */
  async getHwInfo(a: { flags?: number; devId: number; dataLen?: number; inDataType?: number }): Promise<HwInfoResult> {
    this.check('IOMMU_GET_HW_INFO');
    return getHwInfo(this.ctx, a);
  }

  /** IOMMU_HWPT_SET_DIRTY_TRACKING. */
  async hwptSetDirtyTracking(a: { flags: number; hwptId: number }): Promise<void> {
    this.check('IOMMU_HWPT_SET_DIRTY_TRACKING');
    return hwptSetDirtyTracking(this.ctx, a);
  }

  /** IOMMU_HWPT_GET_DIRTY_BITMAP: returns the bitmap (and ORs it into `data` when given). */
  async hwptGetDirtyBitmap(a: HwptGetDirtyBitmapArgs): Promise<{ bitmap: Uint8Array }> {
    this.check('IOMMU_HWPT_GET_DIRTY_BITMAP');
    return hwptGetDirtyBitmap(this.ctx, a);
  }

  /** IOMMU_HWPT_INVALIDATE: `entryNum` handled (also in `err.out.entryNum` on failure). */
  async hwptInvalidate(a: HwptInvalidateArgs): Promise<{ entryNum: number }> {
    this.check('IOMMU_HWPT_INVALIDATE');
    return hwptInvalidate(this.ctx, a);
  }

  /** VFIO_DEVICE_BIND_IOMMUFD: binds a device of a backend; returns its DEVICE id. */
  async deviceBind(a: DeviceBindArgs): Promise<{ outDevId: number }> {
    this.check('VFIO_DEVICE_BIND_IOMMUFD');
    return deviceBind(this.ctx, a);
  }

  /** Unbind (closing the VFIO device fd): detaches everything and destroys the DEVICE. */
  async deviceUnbind(a: { devId: number }): Promise<void> {
    this.check('VFIO device close');
    return deviceUnbind(this.ctx, a);
  }

  /** VFIO_DEVICE_ATTACH_IOMMUFD_PT on an unattached RID / PASID: returns the HWPT used. */
  async deviceAttach(a: { devId: number; ptId: number; pasid?: number }): Promise<{ ptId: number }> {
    this.check('VFIO_DEVICE_ATTACH_IOMMUFD_PT');
    return deviceAttach(this.ctx, a);
  }

  /** VFIO_DEVICE_ATTACH_IOMMUFD_PT on an attached RID / PASID (replace): returns the HWPT used. */
  async deviceReplace(a: { devId: number; ptId: number; pasid?: number }): Promise<{ ptId: number }> {
    this.check('VFIO_DEVICE_ATTACH_IOMMUFD_PT');
    return deviceReplace(this.ctx, a);
  }

  /** VFIO_DEVICE_DETACH_IOMMUFD_PT. */
  async deviceDetach(a: { devId: number; pasid?: number }): Promise<void> {
    this.check('VFIO_DEVICE_DETACH_IOMMUFD_PT');
    return deviceDetach(this.ctx, a);
  }

  // access

  /**
   * `iommufd_access_create` + `iommufd_access_attach` (in-kernel API; no ioctl): an ACCESS on the
   * IOAS for an emulated device. Returns its id; the caller owns it until {@link accessDestroy}.
   */
  async accessCreate(a: AccessCreateArgs): Promise<{ accessId: number }> {
    this.check('iommufd_access_create');
    return accessCreate(this.ctx, a);
  }

  /** `iommufd_access_destroy`: drops the owner's reference; the ACCESS leaves its IOAS. */
  async accessDestroy(a: { accessId: number }): Promise<void> {
    this.check('iommufd_access_destroy');
    return accessDestroy(this.ctx, a);
  }

  /** `iommufd_access_replace`: moves the ACCESS to another IOAS (its pins are dropped first). */
  async accessReplace(a: { accessId: number; ioasId: number }): Promise<void> {
    this.check('iommufd_access_replace');
    return accessReplace(this.ctx, a);
  }

  /** `iommufd_access_pin_pages`: pins `[iova, iova + length)`; the PA of each CPU page. */
  async accessPin(a: { accessId: number; iova: bigint | number; length: bigint | number; flags?: number }): Promise<{ pages: number[] }> {
    this.check('iommufd_access_pin_pages');
    return accessPin(this.ctx, a);
  }

  /** `iommufd_access_unpin_pages`: undoes an {@link accessPin} of the same range. */
  async accessUnpin(a: { accessId: number; iova: bigint | number; length: bigint | number }): Promise<void> {
    this.check('iommufd_access_unpin_pages');
    return accessUnpin(this.ctx, a);
  }

  /** `iommufd_access_rw`: CPU copy of `data` to (IOMMUFD_ACCESS_RW_WRITE) or from the IOAS at `iova`. */
  async accessRw(a: { accessId: number; iova: bigint | number; data: Uint8Array; flags?: number }): Promise<void> {
    this.check('iommufd_access_rw');
    return accessRw(this.ctx, a);
  }

  // faults and vIOMMU

  /**
   * IOMMU_FAULT_QUEUE_ALLOC: a FAULT object and its file, installed in {@link files}
   * (`outFaultFd`; `file` is the same object: `read(count)` / `write(bytes)` as read(2) / write(2)).
   */
  async faultQueueAlloc(a: { flags?: number } = {}): Promise<{ outFaultId: number; outFaultFd: number; file: FaultFile }> {
    this.check('IOMMU_FAULT_QUEUE_ALLOC');
    return faultQueueAlloc(this.ctx, this.files, a);
  }

  /** IOMMU_VIOMMU_ALLOC: returns the id and the driver's out data (`data`, written back to `data_uptr`). */
  async viommuAlloc(a: ViommuAllocArgs): Promise<{ outViommuId: number; data?: Uint8Array }> {
    this.check('IOMMU_VIOMMU_ALLOC');
    return viommuAlloc(this.ctx, a);
  }

  /** IOMMU_VDEVICE_ALLOC. */
  async vdeviceAlloc(a: { viommuId: number; devId: number; virtId: bigint | number }): Promise<{ outVdeviceId: number }> {
    this.check('IOMMU_VDEVICE_ALLOC');
    return vdeviceAlloc(this.ctx, a);
  }

  /** IOMMU_VEVENTQ_ALLOC: a VEVENTQ and its (read-only) file, installed in {@link files}. */
  async veventqAlloc(a: VeventqAllocArgs): Promise<{ outVeventqId: number; outVeventqFd: number; file: VeventqFile }> {
    this.check('IOMMU_VEVENTQ_ALLOC');
    return veventqAlloc(this.ctx, this.files, a);
  }

  /** IOMMU_HW_QUEUE_ALLOC. */
  async hwQueueAlloc(a: HwQueueAllocArgs): Promise<{ outHwQueueId: number }> {
    this.check('IOMMU_HW_QUEUE_ALLOC');
    return hwQueueAlloc(this.ctx, a);
  }

  /**
   * mmap(2) of the iommufd (`iommufd_fops_mmap`): maps a driver region (e.g. a vIOMMU's page at
   * its `out_mmap_offset`); the view stays valid until `munmap()`. EINVAL (length not page aligned,
   * private), EPERM (exec), ENXIO (not exactly a region).
   */
  mmap(a: IommufdMmapArgs): IommufdMapping {
    this.check('mmap');
    return iommufdMmap(this.ctx, a);
  }

  // VFIO type1 compatibility

  /**
   * The VFIO type1 container ioctls on /dev/iommu, for request numbers outside iommufd's table
   * (abi/dispatch.ts routes them here; vfio-type1.ts). Resolves to the ioctl's return value;
   * `ENOTTY` for unknown requests. VFIO_CHECK_EXTENSION / VFIO_SET_IOMMU take a value, passed as
   * up to 8 little-endian bytes in `arg` (`vfioIoctlArg`).
   */
  async vfioCompatIoctl(cmd: number, arg: Uint8Array | null): Promise<number> {
    this.check('ioctl');
    return vfioType1Ioctl(this.ctx, cmd, arg);
  }

  /** VFIO_GET_API_VERSION: VFIO_API_VERSION (0). */
  async vfioGetApiVersion(): Promise<number> {
    this.check('VFIO_GET_API_VERSION');
    return vfioGetApiVersion(this.ctx);
  }

  /** VFIO_CHECK_EXTENSION: 1 if supported, else 0 (VFIO_DMA_CC_IOMMU needs the compat IOAS). */
  async vfioCheckExtension(a: { extension: bigint | number }): Promise<number> {
    this.check('VFIO_CHECK_EXTENSION');
    return vfioCheckExtension(this.ctx, a.extension);
  }

  /** VFIO_SET_IOMMU (VFIO_TYPE1_IOMMU turns the compat IOAS's huge pages off). */
  async vfioSetIommu(a: { type: bigint | number }): Promise<void> {
    this.check('VFIO_SET_IOMMU');
    return vfioSetIommu(this.ctx, a.type);
  }

  /** VFIO_IOMMU_GET_INFO as values (the binary call lays out the capability chain). */
  async vfioIommuGetInfo(): Promise<VfioType1Info> {
    this.check('VFIO_IOMMU_GET_INFO');
    return vfioIommuGetInfo(this.ctx);
  }

  /** VFIO_IOMMU_MAP_DMA: maps at exactly `iova`. */
  async vfioIommuMapDma(a: { flags: number; vaddr: bigint | number; iova: bigint | number; size: bigint | number }): Promise<void> {
    this.check('VFIO_IOMMU_MAP_DMA');
    return vfioIommuMapDma(this.ctx, a);
  }

  /** VFIO_IOMMU_UNMAP_DMA: returns the bytes unmapped (0 for an empty range). */
  async vfioIommuUnmapDma(a: { flags: number; iova: bigint | number; size: bigint | number }): Promise<{ size: bigint }> {
    this.check('VFIO_IOMMU_UNMAP_DMA');
    return vfioIommuUnmapDma(this.ctx, a);
  }
}
