/**
 * PRI queue records: 16 bytes, 2 dwords (smmuv3.md §6.1).
 */
import { bit, field, type Layout } from './field.js';

/** A PRI queue record is 2 dwords (16 bytes). */
export const PRIQ_DWORDS = 2;

/** PRI record fields. */
export const Priq = {
  SID: field(0, 31, 0),
  SSID: field(0, 51, 32),
  PRIV: bit(0, 58),
  EXEC: bit(0, 59),
  READ: bit(0, 60),
  WRITE: bit(0, 61),
  LAST: bit(0, 62),
  PV: bit(0, 63),
  PRGI: field(1, 8, 0),
  /** Page address [63:12] (in place). */
  ADDR: field(1, 63, 12),
} as const satisfies Layout;
