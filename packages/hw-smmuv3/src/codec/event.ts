/**
 * Event queue records: 32 bytes, 4 dwords (smmuv3.md §5).
 */
import { bit, field, type Layout } from './field.js';

/** An event record is 4 dwords (32 bytes). */
export const EVT_DWORDS = 4;

/** Event IDs (§5.2). */
export const EvtId = {
  F_UUT: 0x01,
  C_BAD_STREAMID: 0x02,
  F_STE_FETCH: 0x03,
  C_BAD_STE: 0x04,
  F_BAD_ATS_TREQ: 0x05,
  F_STREAM_DISABLED: 0x06,
  F_TRANSL_FORBIDDEN: 0x07,
  C_BAD_SUBSTREAMID: 0x08,
  F_CD_FETCH: 0x09,
  C_BAD_CD: 0x0a,
  F_WALK_EABT: 0x0b,
  F_TRANSLATION: 0x10,
  F_ADDR_SIZE: 0x11,
  F_ACCESS: 0x12,
  F_PERMISSION: 0x13,
  F_TLB_CONFLICT: 0x20,
  F_CFG_CONFLICT: 0x21,
  E_PAGE_REQUEST: 0x24,
  F_VMS_FETCH: 0x25,
} as const;

/** Event record fields (§5.1). */
export const Evt = {
  ID: field(0, 7, 0),
  SSV: bit(0, 11),
  SSID: field(0, 31, 12),
  SID: field(0, 63, 32),
  STAG: field(1, 15, 0),
  STALL: bit(1, 31),
  PNU: bit(1, 33),
  IND: bit(1, 34),
  RNW: bit(1, 35),
  S2: bit(1, 39),
  CLASS: field(1, 41, 40),
  TTRNW: bit(1, 44),
  /** InputAddr: the whole dword 2 (read as two words; may exceed 2^53 in theory). */
  INPUT_ADDR_LO: field(2, 31, 0),
  INPUT_ADDR_HI: field(2, 63, 32),
  /** IPA [51:12] (in place). */
  IPA: field(3, 51, 12),
  /** FetchAddr [51:3] (in place). */
  FETCH_ADDR: field(3, 51, 3),
} as const satisfies Layout;

/** Event CLASS values (meaningful when S2 = 1). */
export const EvtClass = { CD: 0, TT: 1, IN: 2 } as const;

/** Name of an event id, for messages. */
export function evtName(id: number): string {
  for (const [k, v] of Object.entries(EvtId)) if (v === id) return k;
  return `EVT_0x${id.toString(16)}`;
}
