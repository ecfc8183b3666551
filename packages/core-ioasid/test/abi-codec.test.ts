import { describe, expect, it } from 'vitest';
import { IommuError } from '@iommulab/driver-api';
import {
  FIELD_BYTES,
  FdTable,
  IOCTL_LAYOUTS,
  IOCTL_TABLE_END,
  camelName,
  copyStructFromUser,
  extendStruct,
  fieldOf,
  ioctlLayout,
  readField,
  readUserSize,
  respond,
  writeField,
  type FieldLayout,
} from '../src/abi/index.js';

function errnoOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof IommuError) return e.errno;
    throw e;
  }
  return 'ok';
}

// spec §2.2 command table: nr, struct, sizeof, min_size (offsetofend of the IOCTL_OP `_last` member)
const TABLE: [number, string, string, number, number][] = [
  [0x80, 'IOMMU_DESTROY', 'iommu_destroy', 8, 8],
  [0x81, 'IOMMU_IOAS_ALLOC', 'iommu_ioas_alloc', 12, 12],
  [0x82, 'IOMMU_IOAS_ALLOW_IOVAS', 'iommu_ioas_allow_iovas', 24, 24],
  [0x83, 'IOMMU_IOAS_COPY', 'iommu_ioas_copy', 40, 40],
  [0x84, 'IOMMU_IOAS_IOVA_RANGES', 'iommu_ioas_iova_ranges', 32, 32],
  [0x85, 'IOMMU_IOAS_MAP', 'iommu_ioas_map', 40, 40],
  [0x86, 'IOMMU_IOAS_UNMAP', 'iommu_ioas_unmap', 24, 24],
  [0x87, 'IOMMU_OPTION', 'iommu_option', 24, 24],
  [0x88, 'IOMMU_VFIO_IOAS', 'iommu_vfio_ioas', 12, 12],
  [0x89, 'IOMMU_HWPT_ALLOC', 'iommu_hwpt_alloc', 48, 24],
  [0x8a, 'IOMMU_GET_HW_INFO', 'iommu_hw_info', 40, 32],
  [0x8b, 'IOMMU_HWPT_SET_DIRTY_TRACKING', 'iommu_hwpt_set_dirty_tracking', 16, 16],
  [0x8c, 'IOMMU_HWPT_GET_DIRTY_BITMAP', 'iommu_hwpt_get_dirty_bitmap', 48, 48],
  [0x8d, 'IOMMU_HWPT_INVALIDATE', 'iommu_hwpt_invalidate', 32, 32],
  [0x8e, 'IOMMU_FAULT_QUEUE_ALLOC', 'iommu_fault_alloc', 16, 16],
  [0x8f, 'IOMMU_IOAS_MAP_FILE', 'iommu_ioas_map_file', 40, 40],
  [0x90, 'IOMMU_VIOMMU_ALLOC', 'iommu_viommu_alloc', 40, 24],
  [0x91, 'IOMMU_VDEVICE_ALLOC', 'iommu_vdevice_alloc', 24, 24],
  [0x92, 'IOMMU_IOAS_CHANGE_PROCESS', 'iommu_ioas_change_process', 8, 8],
  [0x93, 'IOMMU_VEVENTQ_ALLOC', 'iommu_veventq_alloc', 32, 28],
  [0x94, 'IOMMU_HW_QUEUE_ALLOC', 'iommu_hw_queue_alloc', 40, 40],
];

describe('abi layout table', () => {
  it('matches the §2.2 command table (nr, request, sizeof, min_size)', () => {
    expect(IOCTL_LAYOUTS.map((l) => [l.nr, l.name, l.struct, l.size, l.minSize])).toEqual(TABLE);
    for (const l of IOCTL_LAYOUTS) expect(l.cmd).toBe(0x3b00 | l.nr);
    expect(IOCTL_TABLE_END).toBe(0x95);
    expect(ioctlLayout('IOMMU_IOAS_MAP').cmd).toBe(0x3b85);
  });

  it('lays out every struct by the C rules (natural alignment, __aligned_u64, size rounded to the largest member)', () => {
    for (const l of IOCTL_LAYOUTS) {
      let end = 0;
      let maxAlign = 1;
      const seen = new Set<number>();
      for (const fl of l.fields) {
        const w = FIELD_BYTES[fl.type];
        if (fl.union) {
          expect(seen.has(fl.offset), `${l.struct}.${fl.name} union`).toBe(true);
          continue;
        }
        const aligned = Math.ceil(end / w) * w;
        expect(fl.offset, `${l.struct}.${fl.name}`).toBe(aligned);
        seen.add(fl.offset);
        end = fl.offset + w * (fl.count ?? 1);
        maxAlign = Math.max(maxAlign, w);
      }
      expect(Math.ceil(end / maxAlign) * maxAlign, l.struct).toBe(l.size);
      expect(l.fields[0]).toEqual({ name: 'size', type: 'u32', offset: 0 });
    }
  });

  it('names members in camelCase for the typed API', () => {
    expect(camelName('out_ioas_id')).toBe('outIoasId');
    expect(camelName('out_max_pasid_log2')).toBe('outMaxPasidLog2');
    expect(camelName('nesting_parent_iova')).toBe('nestingParentIova');
    expect(fieldOf(ioctlLayout('IOMMU_GET_HW_INFO'), 'out_data_type').offset).toBe(24);
  });
});

describe('abi codec', () => {
  it('reads the size with get_user semantics', () => {
    expect(errnoOf(() => readUserSize(null, 'x'))).toBe('EFAULT');
    expect(errnoOf(() => readUserSize(new Uint8Array(3), 'x'))).toBe('EFAULT');
    expect(readUserSize(Uint8Array.from([0x28, 0, 0, 0]), 'x')).toBe(40);
  });

  it('copy_struct_from_user: zero-fills a short struct, checks the tail of a long one', () => {
    const src = Uint8Array.from([12, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0]);
    expect([...copyStructFromUser(src, 16, 12, 'x')]).toEqual([12, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect([...copyStructFromUser(src, 8, 13, 'x')]).toEqual([12, 0, 0, 0, 1, 2, 3, 4]);
    src[12] = 1;
    expect(errnoOf(() => copyStructFromUser(src, 8, 13, 'x'))).toBe('E2BIG');
    expect(errnoOf(() => copyStructFromUser(src, 8, 14, 'x'))).toBe('EFAULT');
    expect(errnoOf(() => extendStruct(Uint8Array.from([1, 2, 0, 5]), 2, 'x'))).toBe('E2BIG');
    expect([...extendStruct(Uint8Array.from([1, 2, 0, 0]), 6, 'x')]).toEqual([1, 2, 0, 0, 0, 0]);
  });

  it('reads and writes little-endian members at their exact offsets', () => {
    const map = ioctlLayout('IOMMU_IOAS_MAP');
    const buf = new Uint8Array(40);
    const dv = new DataView(buf.buffer);
    dv.setUint32(0, 40, true);
    dv.setUint32(4, 6, true);
    dv.setUint32(8, 7, true);
    dv.setBigUint64(16, 0x7f00_1234_5000n, true);
    dv.setBigUint64(24, 0x2000n, true);
    dv.setBigUint64(32, 0xffff_ffff_ffff_f000n, true);
    const get = (n: string): number | bigint => readField(buf, fieldOf(map, n));
    expect([get('size'), get('flags'), get('ioas_id'), get('__reserved')]).toEqual([40, 6, 7, 0]);
    expect([get('user_va'), get('length'), get('iova')]).toEqual([0x7f00_1234_5000n, 0x2000n, 0xffff_ffff_ffff_f000n]);
    writeField(buf, fieldOf(map, 'iova'), 0x1_0000_0000n);
    expect([...buf.subarray(32, 40)]).toEqual([0, 0, 0, 0, 1, 0, 0, 0]);

    const opt = ioctlLayout('IOMMU_OPTION');
    const ob = new Uint8Array(24);
    writeField(ob, fieldOf(opt, 'op'), 0xbeef);
    writeField(ob, fieldOf(opt, '__reserved'), 0x1234);
    expect([...ob.subarray(8, 12)]).toEqual([0xef, 0xbe, 0x34, 0x12]);

    const mf = ioctlLayout('IOMMU_IOAS_MAP_FILE');
    const mb = new Uint8Array(40);
    writeField(mb, fieldOf(mf, 'fd'), -1);
    expect(readField(mb, fieldOf(mf, 'fd'))).toBe(-1);
    expect([...mb.subarray(12, 16)]).toEqual([0xff, 0xff, 0xff, 0xff]);

    const bad: FieldLayout = { name: 'x', type: 'u16', offset: 0 };
    expect(() => writeField(new Uint8Array(2), bad, 0x10000)).toThrow(RangeError);
  });

  it('respond() writes back min(size, sizeof) bytes', () => {
    const arg = new Uint8Array(10).fill(0xaa);
    respond(arg, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 10);
    expect([...arg]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 0xaa, 0xaa]);
    const arg2 = new Uint8Array(8).fill(0xaa);
    respond(arg2, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 6);
    expect([...arg2]).toEqual([1, 2, 3, 4, 5, 6, 0xaa, 0xaa]);
  });
});

describe('FdTable', () => {
  it('hands out the lowest free number from 3, EBADF for unknown numbers, close() on last close', () => {
    const t = new FdTable();
    let closed = 0;
    const a = { close: () => closed++ };
    const b = {};
    expect(t.install(a)).toBe(3);
    expect(t.install(b)).toBe(4);
    expect(t.get(3)).toBe(a);
    expect(errnoOf(() => t.get(-1))).toBe('EBADF');
    expect(errnoOf(() => t.get(5))).toBe('EBADF');
    expect(errnoOf(() => t.get(3.5))).toBe('EBADF');
    expect(t.install(a)).toBe(5);
    t.close(3);
    expect(closed).toBe(0);
    expect(t.install(b)).toBe(3);
    t.close(5);
    expect(closed).toBe(1);
    expect(errnoOf(() => t.close(5))).toBe('EBADF');
    expect(t.size).toBe(2);
  });
});
