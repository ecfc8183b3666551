/**
 * Context Descriptor (64 bytes, 8 dwords) and the level-1 CD descriptor (smmuv3.md §3.1, §3.2).
 */
import { bit, field, type Layout } from './field.js';

/** A CD is 8 dwords. */
export const CD_DWORDS = 8;
/** A CD is 64 bytes. */
export const CD_BYTES = 64;

/** CD fields by spec name (§3.1). */
export const Cd = {
  T0SZ: field(0, 5, 0),
  TG0: field(0, 7, 6),
  IR0: field(0, 9, 8),
  OR0: field(0, 11, 10),
  SH0: field(0, 13, 12),
  EPD0: bit(0, 14),
  ENDI: bit(0, 15),
  T1SZ: field(0, 21, 16),
  TG1: field(0, 23, 22),
  IR1: field(0, 25, 24),
  OR1: field(0, 27, 26),
  SH1: field(0, 29, 28),
  EPD1: bit(0, 30),
  V: bit(0, 31),
  IPS: field(0, 34, 32),
  AFFD: bit(0, 35),
  WXN: bit(0, 36),
  UWXN: bit(0, 37),
  TBI0: bit(0, 38),
  TBI1: bit(0, 39),
  PAN: bit(0, 40),
  AA64: bit(0, 41),
  HD: bit(0, 42),
  HA: bit(0, 43),
  S: bit(0, 44),
  R: bit(0, 45),
  A: bit(0, 46),
  ASET: bit(0, 47),
  ASID: field(0, 63, 48),
  NSCFG0: bit(1, 0),
  HAD0: bit(1, 1),
  /** TTB0 [51:4] (an IPA when nested). */
  TTB0: field(1, 51, 4),
  HWU0: field(1, 62, 59),
  NSCFG1: bit(2, 0),
  HAD1: bit(2, 1),
  TTB1: field(2, 51, 4),
  MAIR0: field(3, 31, 0),
  MAIR1: field(3, 63, 32),
  AMAIR0: field(4, 31, 0),
  AMAIR1: field(4, 63, 32),
  /** PARTID bits [367:352], PMG bits [375:368] (IHI 0070 §5.4): dword 5. */
  PARTID: field(5, 47, 32),
  PMG: field(5, 55, 48),
} as const satisfies Layout;

/** CD.TG1 encodings (different from TG0!). */
export const Tg1 = { G16K: 1, G4K: 2, G64K: 3 } as const;

/** The MAIR Linux writes (§3.3): idx0 0x44 normal NC, idx1 0xFF WB, idx2 0x04 device, idx3 0xF4. */
export const MAIR_LINUX = 0xf404ff44;

/** Level-1 CD descriptor (8 bytes): V [0], L2Ptr [51:12]. */
export const L1Cd = {
  V: bit(0, 0),
  L2PTR: field(0, 51, 12),
} as const satisfies Layout;
/** A level-1 CD descriptor is 8 bytes. */
export const L1CD_BYTES = 8;
/** CDs per L2 table for S1Fmt 1 (4 KiB leaves) and 2 (64 KiB leaves). */
export const CD_L2_ENTRIES_4K = 64;
/** CDs per level-2 table for S1Fmt 2 (64 KiB leaves). */
export const CD_L2_ENTRIES_64K = 1024;
