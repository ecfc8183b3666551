/**
 * Stream Table Entry (64 bytes, 8 dwords) and the level-1 stream table descriptor
 * (smmuv3.md §2.1, §2.4). Address fields are "in place": read them with `getAddr`.
 */
import { bit, field, type Layout } from './field.js';

/** An STE is 8 dwords. */
export const STE_DWORDS = 8;
/** An STE is 64 bytes. */
export const STE_BYTES = 64;

/** STE fields by spec name (§2.1). */
export const Ste = {
  V: bit(0, 0),
  CONFIG: field(0, 3, 1),
  S1FMT: field(0, 5, 4),
  /** CD table address [51:6] (an IPA when stage 2 is enabled). */
  S1_CONTEXT_PTR: field(0, 51, 6),
  S1_CD_MAX: field(0, 63, 59),
  S1DSS: field(1, 1, 0),
  S1CIR: field(1, 3, 2),
  S1COR: field(1, 5, 4),
  S1CSH: field(1, 7, 6),
  PPAR: bit(1, 18),
  MEV: bit(1, 19),
  S2FWB: bit(1, 25),
  S1MPAM: bit(1, 26),
  S1STALLD: bit(1, 27),
  EATS: field(1, 29, 28),
  STRW: field(1, 31, 30),
  MEMATTR: field(1, 35, 32),
  MTCFG: bit(1, 36),
  ALLOCCFG: field(1, 40, 37),
  SHCFG: field(1, 45, 44),
  NSCFG: field(1, 47, 46),
  PRIVCFG: field(1, 49, 48),
  INSTCFG: field(1, 51, 50),
  S2VMID: field(2, 15, 0),
  S2T0SZ: field(2, 37, 32),
  S2SL0: field(2, 39, 38),
  S2IR0: field(2, 41, 40),
  S2OR0: field(2, 43, 42),
  S2SH0: field(2, 45, 44),
  S2TG: field(2, 47, 46),
  S2PS: field(2, 50, 48),
  S2AA64: bit(2, 51),
  S2ENDI: bit(2, 52),
  S2AFFD: bit(2, 53),
  S2PTW: bit(2, 54),
  S2HD: bit(2, 55),
  S2HA: bit(2, 56),
  S2S: bit(2, 57),
  S2R: bit(2, 58),
  /** Stage-2 table base [51:4]. */
  S2TTB: field(3, 51, 4),
} as const satisfies Layout;

/** STE.Config encodings (§2.2): bit 0 stage 1, bit 1 stage 2, bit 2 not-abort. */
export const SteConfig = {
  ABORT: 0b000,
  BYPASS: 0b100,
  S1_TRANS: 0b101,
  S2_TRANS: 0b110,
  NESTED: 0b111,
} as const;

/** STE.S1Fmt encodings. */
export const S1Fmt = { LINEAR: 0, L2_4K: 1, L2_64K: 2 } as const;
/** STE.S1DSS encodings. */
export const S1Dss = { TERMINATE: 0, BYPASS: 1, SSID0: 2 } as const;
/** STE.EATS encodings. */
export const Eats = { ABT: 0, TRANS: 1, S1CHK: 2 } as const;
/** STE.STRW encodings. */
export const Strw = { NSEL1: 0, EL2: 2 } as const;
/** STE.SHCFG: use incoming shareability. */
export const SHCFG_INCOMING = 1;
/** STE.S2TG / CD.TG0 granule encodings (TG1 differs, see cd.ts). */
export const Tg = { G4K: 0, G64K: 1, G16K: 2 } as const;

/**
 * Linux's VTCR packing (§2.1 note): T0SZ [5:0], SL0 [7:6], IR0 [9:8], OR0 [11:10], SH0 [13:12],
 * TG [15:14], PS [18:16], placed at STE dword 2 bits [50:32].
 */
export const VTCR_SHIFT_IN_DW2 = 32;

/** Level-1 stream table descriptor (8 bytes, §2.4). */
export const L1Std = {
  SPAN: field(0, 4, 0),
  /** L2 table address [51:6]. */
  L2PTR: field(0, 51, 6),
} as const satisfies Layout;
/** A level-1 stream table descriptor is 8 bytes. */
export const L1STD_BYTES = 8;
