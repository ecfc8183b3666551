/** Shared helpers of the pgtable tests (H-A). */
import { isIommuError } from '@iommulab/driver-api';
import type { PhysMem } from '@iommulab/runtime';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

/** The errno a call throws, or 'OK'. */
export function errno(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isIommuError(e)) return e.errno;
    throw e;
  }
  return 'OK';
}

/** The 64-bit descriptor at `pa` as [lo, hi] words. */
export function pte(mem: PhysMem, pa: number): [number, number] {
  return [mem.read32(pa), mem.read32(pa + 4)];
}

/** The table address held by the table descriptor at `pa` (type 0b11, below 2^32). */
export function tableAt(mem: PhysMem, pa: number, granule: number): number {
  const lo = mem.read32(pa);
  if ((lo & 3) !== 3) throw new Error(`not a table descriptor at 0x${pa.toString(16)}: 0x${lo.toString(16)}`);
  return (lo & ~(granule - 1)) >>> 0;
}

/** A copy of every allocated frame's bytes, keyed by PA (to prove "nothing changed"). */
export function snapshot(mem: PhysMem): Map<number, string> {
  const out = new Map<number, string>();
  for (let pa = 4096; pa < mem.size; pa += 4096) {
    if (mem.isAllocated(pa)) out.set(pa, Buffer.from(mem.readBytes(pa, 4096)).toString('base64'));
  }
  return out;
}
