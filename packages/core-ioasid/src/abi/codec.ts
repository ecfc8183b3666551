/**
 * Size-extensible struct copy and little-endian field access — the model of
 * `copy_struct_from_user()` (include/linux/uaccess.h) as used by `iommufd_fops_ioctl()` and of
 * `iommufd_ucmd_respond()` (drivers/iommu/iommufd/iommufd_private.h).
 */
import { fail } from '../errors.js';
import { FIELD_BYTES, type FieldLayout } from './layout.js';

/**
 * `get_user(size, (u32 __user *)arg)`: the first u32 of the ioctl argument. A missing argument
 * (`ioctl(fd, cmd, NULL)`) or one shorter than 4 bytes is `EFAULT`.
 */
export function readUserSize(arg: Uint8Array | null | undefined, what: string): number {
  if (!arg || arg.length < 4) fail('EFAULT', `${what}: cannot read the struct size from the ioctl argument`);
  return new DataView(arg.buffer, arg.byteOffset, arg.byteLength).getUint32(0, true);
}

/**
 * `copy_struct_from_user(dst, ksize, src, usize)`: returns a `ksize`-byte copy of the caller's
 * struct. `usize < ksize`: the missing tail is zero; `usize > ksize`: the caller's extra tail must be
 * all zero, else `E2BIG`. Reading past the end of `src` (the user buffer) is `EFAULT`.
 */
export function copyStructFromUser(src: Uint8Array, ksize: number, usize: number, what: string): Uint8Array {
  if (usize > src.length) {
    fail('EFAULT', `${what}: size ${usize} exceeds the ${src.length}-byte argument buffer`);
  }
  if (usize > ksize) {
    for (let i = ksize; i < usize; i++) {
      if (src[i] !== 0) fail('E2BIG', `${what}: non-zero byte at offset ${i} beyond the ${ksize}-byte kernel struct`);
    }
  }
  const dst = new Uint8Array(ksize);
  dst.set(src.subarray(0, Math.min(usize, ksize)));
  return dst;
}

/**
 * The same rule on bytes already read (driver data blobs: `iommu_copy_struct_from_user()` applies
 * `copy_struct_from_user` to `data_uptr/data_len`): zero-extends `data` to `ksize`, or `E2BIG` if
 * its bytes beyond `ksize` are not all zero. For the typed HWPT / vIOMMU implementations.
 */
export function extendStruct(data: Uint8Array, ksize: number, what: string): Uint8Array {
  return copyStructFromUser(data, ksize, data.length, what);
}

/**
 * `iommufd_ucmd_respond()`: copies the kernel's struct image back over the caller's, limited to
 * `min(usize, ksize)` bytes (bytes beyond the kernel struct are never written).
 */
export function respond(arg: Uint8Array, kbuf: Uint8Array, usize: number): void {
  arg.set(kbuf.subarray(0, Math.min(usize, kbuf.length)));
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Reads a scalar member (u64 → bigint, others → number); little-endian. Arrays are not readable. */
export function readField(buf: Uint8Array, fl: FieldLayout): number | bigint {
  const v = view(buf);
  switch (fl.type) {
    case 'u8':
      return v.getUint8(fl.offset);
    case 'u16':
      return v.getUint16(fl.offset, true);
    case 'u32':
      return v.getUint32(fl.offset, true);
    case 's32':
      return v.getInt32(fl.offset, true);
    case 'u64':
      return v.getBigUint64(fl.offset, true);
  }
}

/** True when every byte of the member (all elements for an array) is zero. */
export function fieldIsZero(buf: Uint8Array, fl: FieldLayout): boolean {
  const end = fl.offset + FIELD_BYTES[fl.type] * (fl.count ?? 1);
  for (let i = fl.offset; i < end; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * Writes a scalar member. u64 takes a bigint or a non-negative safe integer; the u8/u16/u32 types
 * take an integer that fits; s32 a signed 32-bit integer. Anything else is a programming error
 * (`RangeError`), never an errno: outputs come from the typed implementation.
 */
export function writeField(buf: Uint8Array, fl: FieldLayout, value: number | bigint): void {
  const v = view(buf);
  if (fl.type === 'u64') {
    const b = typeof value === 'bigint' ? value : BigInt(value);
    if (b < 0n || b > 0xffff_ffff_ffff_ffffn) throw new RangeError(`${fl.name}: ${b} is not a u64`);
    v.setBigUint64(fl.offset, b, true);
    return;
  }
  const n = Number(value);
  const [lo, hi] =
    fl.type === 'u8' ? [0, 0xff] : fl.type === 'u16' ? [0, 0xffff] : fl.type === 'u32' ? [0, 0xffff_ffff] : [-0x8000_0000, 0x7fff_ffff];
  if (!Number.isInteger(n) || n < lo || n > hi) throw new RangeError(`${fl.name}: ${String(value)} does not fit ${fl.type}`);
  if (fl.type === 'u8') v.setUint8(fl.offset, n);
  else if (fl.type === 'u16') v.setUint16(fl.offset, n, true);
  else if (fl.type === 'u32') v.setUint32(fl.offset, n, true);
  else v.setInt32(fl.offset, n, true);
}
