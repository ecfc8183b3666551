/**
 * Geometry of a VMSAv8-64 LPAE IO page table as Linux io-pgtable-arm sizes it (smmuv3.md §7.1,
 * §7.2): granule, start level, PGD size (with stage-2 concatenation), supported page sizes, and
 * the TCR (CD) / VTCR (STE) field encodings that describe it to the SMMU (smmuv3.md §3.3, §7.5).
 */
import { IommuError } from '@iommulab/driver-api';

/** Page-table format: stage 1 (CD TTB0, ARM_64_LPAE_S1) or stage 2 (STE S2TTB, ARM_64_LPAE_S2). */
export type IoPgtableFmt = 's1' | 's2';

/** Translation granule in bytes. */
export type IoPgtableGranule = 4096 | 16384 | 65536;

/** Configuration of an {@link IoPgtableArm} (`struct io_pgtable_cfg`). */
export interface IoPgtableCfg {
  /** Stage 1 or stage 2 descriptor format. */
  readonly fmt: IoPgtableFmt;
  /** Translation granule (the smallest page size). */
  readonly granule: IoPgtableGranule;
  /** Input address size in bits (25..48; up to 52 with the 64 KiB granule). */
  readonly ias: number;
  /** Output address size in bits: 32, 36, 40, 42, 44, 48 (52 with the 64 KiB granule). */
  readonly oas: number;
  /** The SMMU's table walks are cache coherent (`cfg->coherent_walk`); default true. */
  readonly coherent?: boolean;
  /**
   * HTTU dirty tracking (`IO_PGTABLE_QUIRK_ARM_HD`): writable leaves get DBM (bit 51). Stage 1 as
   * Linux; stage 2 likewise (our choice, Linux has no stage-2 HD quirk). Default false.
   */
  readonly dbm?: boolean;
}

/** Stage-1 TCR fields for the CD (Cd.T0SZ/TG0/IR0/OR0/SH0/IPS encodings, smmuv3.md §3.1, §7.5). */
export interface LpaeTcr {
  /** 64 − ias. */
  readonly t0sz: number;
  /** TG0: 4K → 0, 64K → 1, 16K → 2. */
  readonly tg: number;
  /** IR0: 1 (WBWA) when coherent, else 0 (NC). */
  readonly ir: number;
  /** OR0: 1 (WBWA) when coherent, else 0 (NC). */
  readonly or: number;
  /** SH0: 3 (ISH) when coherent, else 2 (OSH). */
  readonly sh: number;
  /** IPS from oas: 32→0, 36→1, 40→2, 42→3, 44→4, 48→5, 52→6. */
  readonly ips: number;
}

/** Stage-2 VTCR fields for the STE (S2T0SZ/S2SL0/S2IR0/S2OR0/S2SH0/S2TG/S2PS, smmuv3.md §2.1). */
export interface LpaeVtcr {
  /** 64 − ias. */
  readonly t0sz: number;
  /** SL0 = (~sl) & 3 with sl = start level (+1 for 4 KiB), smmuv3.md §7.2. */
  readonly sl0: number;
  /** S2IR0: 1 (WBWA) when coherent, else 0. */
  readonly ir: number;
  /** S2OR0: 1 (WBWA) when coherent, else 0. */
  readonly or: number;
  /** S2SH0: 3 (ISH) when coherent, else 2 (OSH). */
  readonly sh: number;
  /** S2TG: 4K → 0, 64K → 1, 16K → 2. */
  readonly tg: number;
  /** S2PS from oas (same encoding as IPS). */
  readonly ps: number;
}

/** Everything derived from an {@link IoPgtableCfg} (io-pgtable-arm `arm_lpae_alloc_pgtable`). */
export interface LpaeGeometry {
  /** Granule shift G: 12, 14 or 16. */
  readonly granuleShift: number;
  /** Bits resolved per level S = G − 3 (9, 11, 13). */
  readonly bitsPerLevel: number;
  /** Entries in one (granule-sized) table: 2^S. */
  readonly entriesPerTable: number;
  /** Level the walk starts at (0..3), after stage-2 concatenation. */
  readonly startLevel: number;
  /** Levels walked: 4 − startLevel. */
  readonly levels: number;
  /** Index bits resolved at the start level (concatenation included). */
  readonly pgdBits: number;
  /** Entries in the PGD: 2^pgdBits. */
  readonly pgdEntries: number;
  /** PGD size in bytes: 8 · 2^pgdBits (may be less than a granule). */
  readonly pgdBytes: number;
  /** Stage-2 concatenated start-level tables (1 = no concatenation). */
  readonly concatenated: number;
  /** Supported page sizes (leaf sizes at levels ≥ startLevel), ascending. */
  readonly pgsizes: readonly number[];
  /** Stage-1 TCR fields. */
  readonly tcr: LpaeTcr;
  /** Stage-2 VTCR fields. */
  readonly vtcr: LpaeVtcr;
}

/** Maximum number of concatenated stage-2 start-level tables (smmuv3.md §7.2). */
export const LPAE_S2_MAX_CONCAT = 16;

/** Linux's MAIR for stage-1 CDs (smmuv3.md §3.3): index 0 NC, 1 WB, 2 Device-nGnRE, 3 iNC/oWB. */
export const LPAE_MAIR = 0xf404ff44;

/** MAIR index used for IOMMU_CACHE mappings. */
export const LPAE_MAIR_IDX_CACHE = 1;
/** MAIR index used for IOMMU_MMIO mappings. */
export const LPAE_MAIR_IDX_DEV = 2;

/** The IPS / PS encoding of an output size in bits, or -1 when it has none (smmuv3.md §7.5). */
export function lpaeIpsEncoding(oas: number): number {
  switch (oas) {
    case 32:
      return 0;
    case 36:
      return 1;
    case 40:
      return 2;
    case 42:
      return 3;
    case 44:
      return 4;
    case 48:
      return 5;
    case 52:
      return 6;
    default:
      return -1;
  }
}

/** TG0 / S2TG encoding of a granule size: 4K → 0, 64K → 1, 16K → 2 (smmuv3.md §3.1). */
export function lpaeTgEncoding(granule: number): number {
  return granule === 4096 ? 0 : granule === 65536 ? 1 : 2;
}

/**
 * Packs {@link LpaeVtcr} the way Linux does (T0SZ [5:0], SL0 [7:6], IR0 [9:8], OR0 [11:10],
 * SH0 [13:12], TG [15:14], PS [18:16]); it goes to STE dword 2 bits [50:32] (smmuv3.md §2.1).
 */
export function packVtcr(v: LpaeVtcr): number {
  return (
    (v.t0sz & 0x3f) |
    ((v.sl0 & 3) << 6) |
    ((v.ir & 3) << 8) |
    ((v.or & 3) << 10) |
    ((v.sh & 3) << 12) |
    ((v.tg & 3) << 14) |
    ((v.ps & 7) << 16)
  );
}

/**
 * Computes the geometry Linux io-pgtable-arm gives `cfg` (smmuv3.md §7.1, §7.2):
 * `va_bits = ias − G; levels = ceil(va_bits / S); start = 4 − levels;
 * pgd_bits = va_bits − S·(levels − 1)`; stage 2 starting at level 0 with ≤ 16 PGD entries starts
 * at level 1 instead, with that many concatenated tables.
 * @throws IommuError EINVAL for an unsupported format, granule, ias or oas.
 */
export function lpaeGeometry(cfg: IoPgtableCfg): LpaeGeometry {
  const { fmt, granule, ias, oas } = cfg;
  if (fmt !== 's1' && fmt !== 's2') throw new IommuError('EINVAL', `io-pgtable: unknown format ${String(fmt)}`);
  if (granule !== 4096 && granule !== 16384 && granule !== 65536) {
    throw new IommuError('EINVAL', `io-pgtable: unsupported granule ${String(granule)}`);
  }
  // 52-bit addresses need FEAT_LPA (64 KiB only); 4K/16K would need LPA2 descriptors (not modelled).
  const maxBits = granule === 65536 ? 52 : 48;
  if (!Number.isInteger(ias) || ias < 25 || ias > maxBits) {
    throw new IommuError('EINVAL', `io-pgtable: ias ${String(ias)} is not in 25..${maxBits} for a ${granule}-byte granule`);
  }
  const ips = lpaeIpsEncoding(oas);
  if (ips < 0 || oas > maxBits) {
    throw new IommuError('EINVAL', `io-pgtable: oas ${String(oas)} is not one of 32, 36, 40, 42, 44, 48${maxBits === 52 ? ', 52' : ''}`);
  }
  const g = granule === 4096 ? 12 : granule === 16384 ? 14 : 16;
  const s = g - 3;
  const vaBits = ias - g;
  const levels0 = Math.ceil(vaBits / s);
  let start = 4 - levels0;
  let pgdBits = vaBits - s * (levels0 - 1);
  let concatenated = 1;
  if (fmt === 's2' && start === 0 && 2 ** pgdBits <= LPAE_S2_MAX_CONCAT) {
    // §7.2: concatenate 2^pgdBits level-1 tables instead of a tiny level-0 table.
    concatenated = 2 ** pgdBits;
    pgdBits += s;
    start = 1;
  }
  const shiftOf = (l: number) => g + (3 - l) * s;
  // Linux bitmaps (§7.1): 4K {4K,2M,1G}, 16K {16K,32M}, 64K {64K,512M} (+4T with 52-bit OA);
  // keep the sizes whose leaf level is walked.
  const pgsizes: number[] = [];
  const leafLevels = granule === 4096 ? [3, 2, 1] : granule === 16384 ? [3, 2] : oas > 48 ? [3, 2, 1] : [3, 2];
  for (const l of leafLevels) if (l >= start) pgsizes.push(2 ** shiftOf(l));
  pgsizes.sort((a, b) => a - b);

  const coherent = cfg.coherent ?? true;
  const tg = lpaeTgEncoding(granule);
  const ir = coherent ? 1 : 0;
  const sh = coherent ? 3 : 2;
  const sl = start + (granule === 4096 ? 1 : 0);
  return {
    granuleShift: g,
    bitsPerLevel: s,
    entriesPerTable: 2 ** s,
    startLevel: start,
    levels: 4 - start,
    pgdBits,
    pgdEntries: 2 ** pgdBits,
    pgdBytes: 8 * 2 ** pgdBits,
    concatenated,
    pgsizes,
    tcr: { t0sz: 64 - ias, tg, ir, or: ir, sh, ips },
    vtcr: { t0sz: 64 - ias, sl0: ~sl & 3, ir, or: ir, sh, tg, ps: ips },
  };
}
