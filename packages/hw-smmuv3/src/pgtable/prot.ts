/**
 * IOMMU protection bits → VMSAv8-64 leaf descriptor attributes, exactly as Linux
 * io-pgtable-arm `arm_lpae_prot_to_pte` writes them (smmuv3.md §7.5). The result excludes the
 * type bits [1:0] and the output address; the low and high 32-bit halves are separate functions
 * so the map path allocates nothing.
 */
import { Prot } from '@iommulab/driver-api';
import {
  PTE_AF,
  PTE_AP_RDONLY,
  PTE_AP_UNPRIV,
  PTE_ATTRINDX_SHIFT,
  PTE_DBM_HI,
  PTE_NG,
  PTE_S2AP_READ,
  PTE_S2AP_WRITE,
  PTE_S2_MEMATTR_DEV,
  PTE_S2_MEMATTR_NC,
  PTE_S2_MEMATTR_OIWB,
  PTE_S2_MEMATTR_SHIFT,
  PTE_SH_IS,
  PTE_SH_OS,
  PTE_SH_SHIFT,
  PTE_XN_HI,
} from '../codec/index.js';
import { LPAE_MAIR_IDX_CACHE, LPAE_MAIR_IDX_DEV, type IoPgtableFmt } from './geometry.js';

/**
 * Whether a leaf mapped with `prot` is writable (and so gets DBM under the HD quirk):
 * stage 1 `!(READ && !WRITE)`, stage 2 `WRITE`.
 */
function dbmApplies(fmt: IoPgtableFmt, prot: number): boolean {
  return fmt === 's1' ? !((prot & Prot.READ) !== 0 && (prot & Prot.WRITE) === 0) : (prot & Prot.WRITE) !== 0;
}

/**
 * Low word (descriptor bits [31:0]) of the attributes for `prot` (smmuv3.md §7.5):
 * stage 1 nG | AF | AP[2] (read-only) | AP[1] (unless PRIV) | AttrIndx | SH;
 * stage 2 AF | S2AP | MemAttr | SH.
 */
export function protToPteLo(fmt: IoPgtableFmt, prot: number): number {
  let pte = PTE_AF;
  if (fmt === 's1') {
    pte |= PTE_NG;
    if ((prot & Prot.WRITE) === 0 && (prot & Prot.READ) !== 0) pte |= PTE_AP_RDONLY;
    if ((prot & Prot.PRIV) === 0) pte |= PTE_AP_UNPRIV;
    if ((prot & Prot.MMIO) !== 0) pte |= LPAE_MAIR_IDX_DEV << PTE_ATTRINDX_SHIFT;
    else if ((prot & Prot.CACHE) !== 0) pte |= LPAE_MAIR_IDX_CACHE << PTE_ATTRINDX_SHIFT;
  } else {
    if ((prot & Prot.READ) !== 0) pte |= PTE_S2AP_READ;
    if ((prot & Prot.WRITE) !== 0) pte |= PTE_S2AP_WRITE;
    const attr = (prot & Prot.MMIO) !== 0 ? PTE_S2_MEMATTR_DEV : (prot & Prot.CACHE) !== 0 ? PTE_S2_MEMATTR_OIWB : PTE_S2_MEMATTR_NC;
    pte |= attr << PTE_S2_MEMATTR_SHIFT;
  }
  pte |= ((prot & Prot.CACHE) !== 0 ? PTE_SH_IS : PTE_SH_OS) << PTE_SH_SHIFT;
  return pte >>> 0;
}

/**
 * High word (descriptor bits [63:32]) of the attributes for `prot`: XN (bits 53 and 54) for
 * NOEXEC, DBM (bit 51) on writable leaves when `dbm` (smmuv3.md §7.5).
 */
export function protToPteHi(fmt: IoPgtableFmt, prot: number, dbm = false): number {
  let hi = 0;
  if ((prot & Prot.NOEXEC) !== 0) hi |= PTE_XN_HI;
  if (dbm && dbmApplies(fmt, prot)) hi |= PTE_DBM_HI;
  return hi >>> 0;
}

/** Both halves of {@link protToPteLo} / {@link protToPteHi} (convenience; allocates). */
export function protToPte(fmt: IoPgtableFmt, prot: number, dbm = false): { lo: number; hi: number } {
  return { lo: protToPteLo(fmt, prot), hi: protToPteHi(fmt, prot, dbm) };
}
