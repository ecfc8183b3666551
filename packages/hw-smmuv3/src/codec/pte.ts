/**
 * VMSAv8-64 translation table descriptors (smmuv3.md §7.3, §7.5). Bits are given in the 64-bit
 * descriptor; `_LO` constants are masks of the low word, `_HI` of the high word (bit n ≥ 32 is
 * `1 << (n - 32)` in the high word).
 */

/** Descriptor type bits [1:0]. */
export const PTE_VALID = 1 << 0;
/** Descriptor type field [1:0]. */
export const PTE_TYPE_MASK = 0x3;
/** Type 0b01: block descriptor (levels 0–2). */
export const PTE_TYPE_BLOCK = 0x1;
/** Table (levels 0–2) or page (level 3). */
export const PTE_TYPE_TABLE = 0x3;
/** Type 0b11 at level 3: page descriptor. */
export const PTE_TYPE_PAGE = 0x3;

// Low word, stage 1
/** Stage-1 AttrIndx [4:2]: MAIR index. */
export const PTE_ATTRINDX_SHIFT = 2;
/** AttrIndx field mask (after shifting). */
export const PTE_ATTRINDX_MASK = 0x7;
/** Stage-1 NS, bit 5. */
export const PTE_NS = 1 << 5;
/** AP[1]: unprivileged access allowed. */
export const PTE_AP_UNPRIV = 1 << 6;
/** AP[2]: read only. */
export const PTE_AP_RDONLY = 1 << 7;
/** SH [9:8]: shareability. */
export const PTE_SH_SHIFT = 8;
/** SH = 0: non-shareable. */
export const PTE_SH_NS = 0;
/** SH = 2: outer shareable. */
export const PTE_SH_OS = 2;
/** SH = 3: inner shareable. */
export const PTE_SH_IS = 3;
/** AF, bit 10: access flag. */
export const PTE_AF = 1 << 10;
/** Stage-1 nG, bit 11: not global (ASID-tagged). */
export const PTE_NG = 1 << 11;
// Low word, stage 2
/** Stage-2 MemAttr [5:2]. */
export const PTE_S2_MEMATTR_SHIFT = 2;
/** Stage-2 MemAttr field mask (after shifting). */
export const PTE_S2_MEMATTR_MASK = 0xf;
/** Stage-2 MemAttr 0b0001: Device-nGnRE. */
export const PTE_S2_MEMATTR_DEV = 0x1;
/** Stage-2 MemAttr 0b0101: Normal non-cacheable. */
export const PTE_S2_MEMATTR_NC = 0x5;
/** Stage-2 MemAttr 0b1111: Normal inner / outer write-back. */
export const PTE_S2_MEMATTR_OIWB = 0xf;
/** S2AP[0]: reads allowed. */
export const PTE_S2AP_READ = 1 << 6;
/** S2AP[1]: writes allowed. */
export const PTE_S2AP_WRITE = 1 << 7;

// High word
/** DBM, bit 51. */
export const PTE_DBM_HI = 1 << (51 - 32);
/** Contiguous hint, bit 52. */
export const PTE_CONT_HI = 1 << (52 - 32);
/** PXN (stage 1) / XN[0] (stage 2 with XNX), bit 53. */
export const PTE_PXN_HI = 1 << (53 - 32);
/** UXN / XN (stage 1) / XN[1] (stage 2), bit 54. */
export const PTE_UXN_HI = 1 << (54 - 32);
/** Linux's no-exec: bits 53 and 54. */
export const PTE_XN_HI = PTE_PXN_HI | PTE_UXN_HI;
/** Software bits [58:55]. */
export const PTE_SW_SHIFT_HI = 55 - 32;
// Table descriptor hierarchical attributes
/** PXNTable, bit 59 (table descriptors): no privileged execution below. */
export const PTE_PXNTABLE_HI = 1 << (59 - 32);
/** XNTable / UXNTable, bit 60 (table descriptors): no (unprivileged) execution below. */
export const PTE_XNTABLE_HI = 1 << (60 - 32);
/** APTable[0] (bit 61): no unprivileged access below. */
export const PTE_APTABLE_NOUNPRIV_HI = 1 << (61 - 32);
/** APTable[1] (bit 62): no writes below. */
export const PTE_APTABLE_RDONLY_HI = 1 << (62 - 32);
/** NSTable, bit 63 (table descriptors). */
export const PTE_NSTABLE_HI = 0x80000000;

/** Output address bits [47:12] of the high word: bits [47:32] → high-word mask 0xffff. */
export const PTE_ADDR_MASK_HI_48 = 0x0000ffff;

/** Granule shifts. */
export const GRANULE_4K = 12;
/** 16 KiB granule: shift 14. */
export const GRANULE_16K = 14;
/** 64 KiB granule: shift 16. */
export const GRANULE_64K = 16;

/** Level-l input shift for granule shift g: g + (3 − l)(g − 3). */
export function levelShift(g: number, level: number): number {
  return g + (3 - level) * (g - 3);
}
