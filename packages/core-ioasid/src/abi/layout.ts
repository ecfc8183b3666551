/**
 * Binary layouts of the iommufd uAPI structs (include/uapi/linux/iommufd.h) and the ioctl table of
 * drivers/iommu/iommufd/main.c (`iommufd_ioctl_ops[]`, built with `IOCTL_OP(ioctl, fn, struct, last)`:
 * `size = sizeof(struct)`, `min_size = offsetofend(struct, last)`).
 *
 * Every struct is little-endian with natural alignment (`__aligned_u64` on 8). Offsets are written
 * out by hand from the header and cross-checked by test/abi-layout.test.ts against the C layout rules
 * and the command table of spec §2.2.
 */
import { IOMMUFD_CMD_BASE, IommufdCmd, iommuIoctl } from '../uapi/constants.js';

/** Scalar C types used by the uAPI structs. */
export type FieldType = 'u8' | 'u16' | 'u32' | 's32' | 'u64';

/** Byte width of each {@link FieldType}. */
export const FIELD_BYTES: Readonly<Record<FieldType, number>> = { u8: 1, u16: 2, u32: 4, s32: 4, u64: 8 };

/** One member of a uAPI struct. */
export interface FieldLayout {
  /** The kernel's member name (`out_ioas_id`, `__reserved`, ...). */
  readonly name: string;
  /** Byte offset inside the struct. */
  readonly offset: number;
  readonly type: FieldType;
  /** Element count for array members (`__u8 __reserved[3]`); absent for scalars. */
  readonly count?: number;
  /** True for the second member of an anonymous union (same offset as the previous one). */
  readonly union?: boolean;
}

/** One entry of the ioctl table: request number, struct, sizes, and the typed IommuFd method. */
export interface IoctlLayout {
  /** `IOMMU_DESTROY`, ... */
  readonly name: string;
  /** Command number (`_IOC_NR`), 0x80.. */
  readonly nr: number;
  /** Full request number `_IO(';', nr)`. */
  readonly cmd: number;
  /** The kernel struct name (`iommu_destroy`, ...). */
  readonly struct: string;
  /** `sizeof(struct)` of the newest kernel modelled. */
  readonly size: number;
  /** `offsetofend(struct, last)`: the smallest `size` the kernel accepts. */
  readonly minSize: number;
  /** The last mandatory member (the `_last` argument of `IOCTL_OP`). */
  readonly last: string;
  /** Name of the typed `IommuFd` method the ioctl is routed to. */
  readonly method: string;
  readonly fields: readonly FieldLayout[];
}

function f(name: string, type: FieldType, offset: number, extra?: { count?: number; union?: boolean }): FieldLayout {
  return { name, type, offset, ...extra };
}

function entry(
  name: keyof typeof IommufdCmd,
  struct: string,
  size: number,
  last: string,
  method: string,
  fields: FieldLayout[],
): IoctlLayout {
  const nr = IommufdCmd[name];
  const lastField = fields.find((x) => x.name === last);
  if (!lastField) throw new Error(`layout ${struct}: no member ${last}`);
  const minSize = lastField.offset + FIELD_BYTES[lastField.type] * (lastField.count ?? 1);
  return { name: `IOMMU_${name}`, nr, cmd: iommuIoctl(nr), struct, size, minSize, last, method, fields };
}

const SIZE = f('size', 'u32', 0);

/** `struct iommu_iova_range` (16 bytes): element of the IOVA_RANGES / ALLOW_IOVAS user arrays. */
export const IOMMU_IOVA_RANGE_SIZE = 16;

/**
 * The ioctl table, in command-number order (0x80..0x94). IOMMU_TEST_CMD (0xa0) exists only in
 * CONFIG_IOMMUFD_TEST kernels and is not part of this table (see {@link IOCTL_TABLE_END}).
 */
export const IOCTL_LAYOUTS: readonly IoctlLayout[] = [
  entry('DESTROY', 'iommu_destroy', 8, 'id', 'destroy', [SIZE, f('id', 'u32', 4)]),
  entry('IOAS_ALLOC', 'iommu_ioas_alloc', 12, 'out_ioas_id', 'ioasAlloc', [
    SIZE, f('flags', 'u32', 4), f('out_ioas_id', 'u32', 8),
  ]),
  entry('IOAS_ALLOW_IOVAS', 'iommu_ioas_allow_iovas', 24, 'allowed_iovas', 'ioasAllowIovas', [
    SIZE, f('ioas_id', 'u32', 4), f('num_iovas', 'u32', 8), f('__reserved', 'u32', 12), f('allowed_iovas', 'u64', 16),
  ]),
  entry('IOAS_COPY', 'iommu_ioas_copy', 40, 'src_iova', 'ioasCopy', [
    SIZE, f('flags', 'u32', 4), f('dst_ioas_id', 'u32', 8), f('src_ioas_id', 'u32', 12),
    f('length', 'u64', 16), f('dst_iova', 'u64', 24), f('src_iova', 'u64', 32),
  ]),
  entry('IOAS_IOVA_RANGES', 'iommu_ioas_iova_ranges', 32, 'out_iova_alignment', 'ioasIovaRanges', [
    SIZE, f('ioas_id', 'u32', 4), f('num_iovas', 'u32', 8), f('__reserved', 'u32', 12),
    f('allowed_iovas', 'u64', 16), f('out_iova_alignment', 'u64', 24),
  ]),
  entry('IOAS_MAP', 'iommu_ioas_map', 40, 'iova', 'ioasMap', [
    SIZE, f('flags', 'u32', 4), f('ioas_id', 'u32', 8), f('__reserved', 'u32', 12),
    f('user_va', 'u64', 16), f('length', 'u64', 24), f('iova', 'u64', 32),
  ]),
  entry('IOAS_UNMAP', 'iommu_ioas_unmap', 24, 'length', 'ioasUnmap', [
    SIZE, f('ioas_id', 'u32', 4), f('iova', 'u64', 8), f('length', 'u64', 16),
  ]),
  entry('OPTION', 'iommu_option', 24, 'val64', 'option', [
    SIZE, f('option_id', 'u32', 4), f('op', 'u16', 8), f('__reserved', 'u16', 10), f('object_id', 'u32', 12),
    f('val64', 'u64', 16),
  ]),
  entry('VFIO_IOAS', 'iommu_vfio_ioas', 12, '__reserved', 'vfioIoas', [
    SIZE, f('ioas_id', 'u32', 4), f('op', 'u16', 8), f('__reserved', 'u16', 10),
  ]),
  entry('HWPT_ALLOC', 'iommu_hwpt_alloc', 48, '__reserved', 'hwptAlloc', [
    SIZE, f('flags', 'u32', 4), f('dev_id', 'u32', 8), f('pt_id', 'u32', 12), f('out_hwpt_id', 'u32', 16),
    f('__reserved', 'u32', 20), f('data_type', 'u32', 24), f('data_len', 'u32', 28), f('data_uptr', 'u64', 32),
    f('fault_id', 'u32', 40), f('__reserved2', 'u32', 44),
  ]),
  entry('GET_HW_INFO', 'iommu_hw_info', 40, '__reserved', 'getHwInfo', [
    SIZE, f('flags', 'u32', 4), f('dev_id', 'u32', 8), f('data_len', 'u32', 12), f('data_uptr', 'u64', 16),
    f('in_data_type', 'u32', 24), f('out_data_type', 'u32', 24, { union: true }), f('out_max_pasid_log2', 'u8', 28),
    f('__reserved', 'u8', 29, { count: 3 }), f('out_capabilities', 'u64', 32),
  ]),
  entry('HWPT_SET_DIRTY_TRACKING', 'iommu_hwpt_set_dirty_tracking', 16, '__reserved', 'hwptSetDirtyTracking', [
    SIZE, f('flags', 'u32', 4), f('hwpt_id', 'u32', 8), f('__reserved', 'u32', 12),
  ]),
  entry('HWPT_GET_DIRTY_BITMAP', 'iommu_hwpt_get_dirty_bitmap', 48, 'data', 'hwptGetDirtyBitmap', [
    SIZE, f('hwpt_id', 'u32', 4), f('flags', 'u32', 8), f('__reserved', 'u32', 12), f('iova', 'u64', 16),
    f('length', 'u64', 24), f('page_size', 'u64', 32), f('data', 'u64', 40),
  ]),
  entry('HWPT_INVALIDATE', 'iommu_hwpt_invalidate', 32, '__reserved', 'hwptInvalidate', [
    SIZE, f('hwpt_id', 'u32', 4), f('data_uptr', 'u64', 8), f('data_type', 'u32', 16), f('entry_len', 'u32', 20),
    f('entry_num', 'u32', 24), f('__reserved', 'u32', 28),
  ]),
  entry('FAULT_QUEUE_ALLOC', 'iommu_fault_alloc', 16, 'out_fault_fd', 'faultQueueAlloc', [
    SIZE, f('flags', 'u32', 4), f('out_fault_id', 'u32', 8), f('out_fault_fd', 'u32', 12),
  ]),
  entry('IOAS_MAP_FILE', 'iommu_ioas_map_file', 40, 'iova', 'ioasMapFile', [
    SIZE, f('flags', 'u32', 4), f('ioas_id', 'u32', 8), f('fd', 's32', 12), f('start', 'u64', 16),
    f('length', 'u64', 24), f('iova', 'u64', 32),
  ]),
  entry('VIOMMU_ALLOC', 'iommu_viommu_alloc', 40, 'out_viommu_id', 'viommuAlloc', [
    SIZE, f('flags', 'u32', 4), f('type', 'u32', 8), f('dev_id', 'u32', 12), f('hwpt_id', 'u32', 16),
    f('out_viommu_id', 'u32', 20), f('data_len', 'u32', 24), f('__reserved', 'u32', 28), f('data_uptr', 'u64', 32),
  ]),
  entry('VDEVICE_ALLOC', 'iommu_vdevice_alloc', 24, 'virt_id', 'vdeviceAlloc', [
    SIZE, f('viommu_id', 'u32', 4), f('dev_id', 'u32', 8), f('out_vdevice_id', 'u32', 12), f('virt_id', 'u64', 16),
  ]),
  entry('IOAS_CHANGE_PROCESS', 'iommu_ioas_change_process', 8, '__reserved', 'ioasChangeProcess', [
    SIZE, f('__reserved', 'u32', 4),
  ]),
  entry('VEVENTQ_ALLOC', 'iommu_veventq_alloc', 32, 'out_veventq_fd', 'veventqAlloc', [
    SIZE, f('flags', 'u32', 4), f('viommu_id', 'u32', 8), f('type', 'u32', 12), f('veventq_depth', 'u32', 16),
    f('out_veventq_id', 'u32', 20), f('out_veventq_fd', 'u32', 24), f('__reserved', 'u32', 28),
  ]),
  entry('HW_QUEUE_ALLOC', 'iommu_hw_queue_alloc', 40, 'length', 'hwQueueAlloc', [
    SIZE, f('flags', 'u32', 4), f('viommu_id', 'u32', 8), f('type', 'u32', 12), f('index', 'u32', 16),
    f('out_hw_queue_id', 'u32', 20), f('nesting_parent_iova', 'u64', 24), f('length', 'u64', 32),
  ]),
];

/**
 * One past the last command number handled by the iommufd table (main.c dispatches
 * `nr - IOMMUFD_CMD_BASE < ARRAY_SIZE(iommufd_ioctl_ops)`); anything outside
 * `[IOMMUFD_CMD_BASE, IOCTL_TABLE_END)` goes to the VFIO compatibility handler. The model is a
 * non-CONFIG_IOMMUFD_TEST kernel, so the table ends after IOMMU_HW_QUEUE_ALLOC (0x94).
 */
export const IOCTL_TABLE_END = IOMMUFD_CMD_BASE + IOCTL_LAYOUTS.length;

const BY_NR = new Map(IOCTL_LAYOUTS.map((l) => [l.nr, l]));
const BY_NAME = new Map(IOCTL_LAYOUTS.map((l) => [l.name, l]));

/** The table entry of command number `nr`, or undefined. */
export function ioctlLayoutByNr(nr: number): IoctlLayout | undefined {
  return BY_NR.get(nr);
}

/** The table entry named `name` (`'IOMMU_IOAS_MAP'`); throws on an unknown name. */
export function ioctlLayout(name: string): IoctlLayout {
  const l = BY_NAME.get(name);
  if (!l) throw new Error(`unknown iommufd ioctl ${name}`);
  return l;
}

/** The member `name` of `layout` (the first one for a union); throws if absent. */
export function fieldOf(layout: IoctlLayout, name: string): FieldLayout {
  const fl = layout.fields.find((x) => x.name === name);
  if (!fl) throw new Error(`${layout.struct} has no member ${name}`);
  return fl;
}

/** `out_ioas_id` → `outIoasId`: the typed API's name for a struct member. */
export function camelName(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}
