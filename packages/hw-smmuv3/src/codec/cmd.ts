/**
 * Command queue entries: 16 bytes, 2 dwords (smmuv3.md §4). Field positions per command are in
 * {@link CmdField}; the opcode is dword0 [7:0].
 */
import { bit, field, type Layout } from './field.js';

/** A command is 2 dwords (16 bytes). */
export const CMD_DWORDS = 2;

/** Opcodes (§4.1). */
export const CmdOp = {
  PREFETCH_CONFIG: 0x01,
  PREFETCH_ADDR: 0x02,
  CFGI_STE: 0x03,
  CFGI_STE_RANGE: 0x04,
  CFGI_CD: 0x05,
  CFGI_CD_ALL: 0x06,
  TLBI_NH_ALL: 0x10,
  TLBI_NH_ASID: 0x11,
  TLBI_NH_VA: 0x12,
  TLBI_NH_VAA: 0x13,
  TLBI_EL3_ALL: 0x18,
  TLBI_EL3_VA: 0x1a,
  TLBI_EL2_ALL: 0x20,
  TLBI_EL2_ASID: 0x21,
  TLBI_EL2_VA: 0x22,
  TLBI_EL2_VAA: 0x23,
  TLBI_S12_VMALL: 0x28,
  TLBI_S2_IPA: 0x2a,
  TLBI_NSNH_ALL: 0x30,
  ATC_INV: 0x40,
  PRI_RESP: 0x41,
  RESUME: 0x44,
  STALL_TERM: 0x45,
  SYNC: 0x46,
} as const;

/** CMD_CFGI_ALL is CFGI_STE_RANGE with Range = 31. */
export const CFGI_RANGE_ALL = 31;

/** Every field any command uses (§4.2); which ones a given opcode uses is in {@link CMD_FIELDS}. */
export const CmdField = {
  OPCODE: field(0, 7, 0),
  GLOBAL: bit(0, 9),
  SSEC: bit(0, 10),
  SSV: bit(0, 11),
  SSID: field(0, 31, 12),
  SID: field(0, 63, 32),
  NUM: field(0, 16, 12),
  SCALE: field(0, 24, 20),
  VMID: field(0, 47, 32),
  ASID: field(0, 63, 48),
  /** RESUME Action [13:12] and CMD_SYNC CS [13:12]. */
  ACTION: field(0, 13, 12),
  CS: field(0, 13, 12),
  MSH: field(0, 23, 22),
  MSIATTR: field(0, 27, 24),
  MSIDATA: field(0, 63, 32),
  LEAF: bit(1, 0),
  RANGE: field(1, 4, 0),
  TTL: field(1, 9, 8),
  TG: field(1, 11, 10),
  /** TLBI VA [63:12]. */
  ADDR: field(1, 63, 12),
  /** TLBI_S2_IPA IPA [51:12]. */
  IPA: field(1, 51, 12),
  /** ATC_INV Size [5:0]. */
  ATC_SIZE: field(1, 5, 0),
  /** PREFETCH_ADDR Size [4:0], Stride [12:8]. */
  PF_SIZE: field(1, 4, 0),
  PF_STRIDE: field(1, 12, 8),
  PRGI: field(1, 8, 0),
  RESP: field(1, 13, 12),
  STAG: field(1, 15, 0),
  /** CMD_SYNC MSIAddress [51:2]. */
  MSIADDR: field(1, 51, 2),
} as const satisfies Layout;

type CmdFieldName = keyof typeof CmdField;

/**
 * The fields each opcode defines (besides OPCODE); every other bit is RES0 and a strict model
 * reports CERROR_ILL when one is set (§4.6).
 */
export const CMD_FIELDS: Readonly<Record<number, readonly CmdFieldName[]>> = {
  [CmdOp.PREFETCH_CONFIG]: ['SSV', 'SSID', 'SID'],
  [CmdOp.PREFETCH_ADDR]: ['SSV', 'SSID', 'SID', 'PF_SIZE', 'PF_STRIDE', 'ADDR'],
  [CmdOp.CFGI_STE]: ['SSEC', 'SID', 'LEAF'],
  [CmdOp.CFGI_STE_RANGE]: ['SSEC', 'SID', 'RANGE'],
  [CmdOp.CFGI_CD]: ['SSEC', 'SSID', 'SID', 'LEAF'],
  [CmdOp.CFGI_CD_ALL]: ['SSEC', 'SID'],
  [CmdOp.TLBI_NH_ALL]: ['VMID'],
  [CmdOp.TLBI_NH_ASID]: ['VMID', 'ASID'],
  [CmdOp.TLBI_NH_VA]: ['NUM', 'SCALE', 'VMID', 'ASID', 'LEAF', 'TTL', 'TG', 'ADDR'],
  [CmdOp.TLBI_NH_VAA]: ['NUM', 'SCALE', 'VMID', 'LEAF', 'TTL', 'TG', 'ADDR'],
  [CmdOp.TLBI_EL3_ALL]: [],
  [CmdOp.TLBI_EL3_VA]: ['NUM', 'SCALE', 'LEAF', 'TTL', 'TG', 'ADDR'],
  [CmdOp.TLBI_EL2_ALL]: [],
  [CmdOp.TLBI_EL2_ASID]: ['ASID'],
  [CmdOp.TLBI_EL2_VA]: ['NUM', 'SCALE', 'ASID', 'LEAF', 'TTL', 'TG', 'ADDR'],
  [CmdOp.TLBI_EL2_VAA]: ['NUM', 'SCALE', 'LEAF', 'TTL', 'TG', 'ADDR'],
  [CmdOp.TLBI_S12_VMALL]: ['VMID'],
  [CmdOp.TLBI_S2_IPA]: ['NUM', 'SCALE', 'VMID', 'LEAF', 'TTL', 'TG', 'IPA'],
  [CmdOp.TLBI_NSNH_ALL]: [],
  [CmdOp.ATC_INV]: ['GLOBAL', 'SSV', 'SSID', 'SID', 'ATC_SIZE', 'ADDR'],
  [CmdOp.PRI_RESP]: ['SSV', 'SSID', 'SID', 'PRGI', 'RESP'],
  [CmdOp.RESUME]: ['ACTION', 'SID', 'STAG'],
  [CmdOp.STALL_TERM]: ['SID'],
  [CmdOp.SYNC]: ['CS', 'MSH', 'MSIATTR', 'MSIDATA', 'MSIADDR'],
};

/** CMD_SYNC CS encodings (§4.2). */
export const SyncCs = { NONE: 0, IRQ: 1, SEV: 2 } as const;
/**
 * CMD_PRI_RESP Resp encodings (IHI 0070 §4.5.2): 0b00 ResponseFailure (permanent non-paging
 * error, PCIe Response Failure 0b1111), 0b01 InvalidRequest (page-in unsuccessful, PCIe 0b0001),
 * 0b10 Success (PCIe 0b0000), 0b11 Reserved (ILLEGAL). DENY / FAIL are Linux's names for 0 / 1
 * (PRI_RESP_DENY / PRI_RESP_FAIL).
 */
export const PriResp = { DENY: 0, FAIL: 1, SUCC: 2, RESPONSE_FAILURE: 0, INVALID_REQUEST: 1, SUCCESS: 2 } as const;
/** CMD_RESUME Action encodings (Linux). */
export const ResumeAction = { TERM: 0, RETRY: 1, ABORT: 2 } as const;
/** ATC_INV Size meaning "the whole address space". */
export const ATC_INV_SIZE_ALL = 52;
/** Shareability encoding ISH (MSH and others). */
export const SH_ISH = 3;
