/**
 * Encoders and decoders for every in-memory structure of the mock IOMMU: device-table entries,
 * PASID directory / leaf entries, page-table entries, commands and fault records.
 *
 * All structures are little-endian arrays of 32-bit words; 64-bit fields are two words (lo, hi)
 * and physical addresses are 52-bit JS numbers. The hot paths (hardware model, driver) use the
 * bit constants directly; the object forms are for tests, debugging and slow paths.
 */

const TWO_32 = 0x1_0000_0000;

/** Splits a PA (< 2^52) into its low 32 bits. */
export function lo32(v: number): number {
  return v >>> 0;
}
/** Splits a PA (< 2^52) into its high 32 bits. */
export function hi32(v: number): number {
  return Math.floor(v / TWO_32) >>> 0;
}
/** Joins two 32-bit words into a number (hi masked to 20 bits: a 52-bit PA). */
export function join52(lo: number, hi: number): number {
  return (hi & 0xfffff) * TWO_32 + (lo >>> 0);
}

// ---------------------------------------------------------------------------------------------
// Device table entry (32 bytes)

/** Size of a device-table entry in bytes. */
export const DTE_BYTES = 32;
/** Size of a device-table entry in 32-bit words. */
export const DTE_WORDS = 8;
/** DTE word0 bit: valid. */
export const DTE_V = 1 << 0;
/** DTE word0 bit: PASID table enabled. */
export const DTE_PASID_EN = 1 << 1;
/** DTE word0 bit: hardware dirty-bit update enabled. */
export const DTE_DIRTY_EN = 1 << 2;
/** DTE word0 bit: translation faults become page requests. */
export const DTE_PRI_EN = 1 << 3;
/** DTE word0: DOMAIN_ID shift (bits [31:16]). */
export const DTE_DOMAIN_SHIFT = 16;
/** DTE word0 reserved bits ([15:4]). */
export const DTE_W0_RES = 0x0000_fff0;
/** Page-table root alignment (the L1 table is 16 KiB). */
export const ROOT_ALIGN = 16384;

/** A decoded device-table entry. */
export interface Dte {
  /** V: the device may DMA. */
  valid: boolean;
  /** PASID_EN: requests with a PASID go through the PASID table. */
  pasidEnable: boolean;
  /** DIRTY_EN: the hardware sets D on writes. */
  dirtyEnable: boolean;
  /** PRI_EN: translation faults become page requests. */
  priEnable: boolean;
  /** DOMAIN_ID: tags the IOTLB (16 bits). */
  domainId: number;
  /** Page-table root PA (L1 table, 16 KiB aligned). */
  root: number;
  /** PASID directory PA (4 KiB aligned) when PASID_EN. */
  pasidDir: number;
}

/** Encodes a DTE into 8 words at `out[off..off+7]`. Reserved words are written as zero. */
export function encodeDte(d: Dte, out: Uint32Array = new Uint32Array(DTE_WORDS), off = 0): Uint32Array {
  out[off] =
    (d.valid ? DTE_V : 0) |
    (d.pasidEnable ? DTE_PASID_EN : 0) |
    (d.dirtyEnable ? DTE_DIRTY_EN : 0) |
    (d.priEnable ? DTE_PRI_EN : 0) |
    ((d.domainId & 0xffff) << DTE_DOMAIN_SHIFT);
  out[off + 1] = 0;
  out[off + 2] = lo32(d.root);
  out[off + 3] = hi32(d.root);
  out[off + 4] = lo32(d.pasidDir);
  out[off + 5] = hi32(d.pasidDir);
  out[off + 6] = 0;
  out[off + 7] = 0;
  return out;
}

/** Decodes a DTE from 8 words (reserved bits are ignored here; see {@link dteReservedBitsSet}). */
export function decodeDte(w: ArrayLike<number>, off = 0): Dte {
  const w0 = w[off]! >>> 0;
  return {
    valid: (w0 & DTE_V) !== 0,
    pasidEnable: (w0 & DTE_PASID_EN) !== 0,
    dirtyEnable: (w0 & DTE_DIRTY_EN) !== 0,
    priEnable: (w0 & DTE_PRI_EN) !== 0,
    domainId: w0 >>> DTE_DOMAIN_SHIFT,
    root: join52(w[off + 2]!, w[off + 3]!),
    pasidDir: join52(w[off + 4]!, w[off + 5]!),
  };
}

/** True when a DTE has reserved bits set or misaligned table pointers (the hardware's C_BAD_DTE check). */
export function dteReservedBitsSet(w: ArrayLike<number>, off = 0): boolean {
  const w0 = w[off]!;
  if ((w0 & DTE_W0_RES) !== 0 || w[off + 1] !== 0 || w[off + 6] !== 0 || w[off + 7] !== 0) return true;
  if ((w[off + 2]! & (ROOT_ALIGN - 1)) !== 0 || (w[off + 3]! & 0xfff0_0000) !== 0) return true;
  if ((w[off + 4]! & 0xfff) !== 0 || (w[off + 5]! & 0xfff0_0000) !== 0) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// PASID tables: directory (4096 x 8 B) -> leaf (256 x 16 B)

/** Entries in the PASID directory (indexed by pasid >> 8). */
export const PASID_DIR_ENTRIES = 4096;
/** Bytes of the PASID directory (8 frames). */
export const PASID_DIR_BYTES = PASID_DIR_ENTRIES * 8;
/** Entries in a PASID leaf table (indexed by pasid & 0xff). */
export const PASID_LEAF_ENTRIES = 256;
/** Bytes of a PASID leaf table (one frame). */
export const PASID_LEAF_BYTES = PASID_LEAF_ENTRIES * 16;
/** Bytes of a PASID leaf entry. */
export const PASID_ENTRY_BYTES = 16;
/** PASID directory entry bit: valid. */
export const PASID_DIR_V = 1 << 0;
/** PASID directory entry word0 reserved bits ([11:1]). */
export const PASID_DIR_RES = 0x0000_0ffe;
/** PASID leaf entry word0 bit: valid. */
export const PASID_V = 1 << 0;
/** PASID leaf entry word0 bit: hardware dirty-bit update enabled. */
export const PASID_DIRTY_EN = 1 << 2;
/** PASID leaf entry word0: DOMAIN_ID shift. */
export const PASID_DOMAIN_SHIFT = 16;
/** PASID leaf entry word0 reserved bits. */
export const PASID_W0_RES = 0x0000_fffa;

/** A decoded PASID directory entry. */
export interface PasidDirEntry {
  /** V: the leaf table is present. */
  valid: boolean;
  /** PA of the leaf table (4 KiB aligned). */
  leaf: number;
}

/** Encodes a PASID directory entry into 2 words. */
export function encodePasidDirEntry(e: PasidDirEntry, out: Uint32Array = new Uint32Array(2), off = 0): Uint32Array {
  out[off] = ((lo32(e.leaf) & 0xffff_f000) | (e.valid ? PASID_DIR_V : 0)) >>> 0;
  out[off + 1] = hi32(e.leaf) & 0xfffff;
  return out;
}

/** Decodes a PASID directory entry from 2 words. */
export function decodePasidDirEntry(w: ArrayLike<number>, off = 0): PasidDirEntry {
  return { valid: (w[off]! & PASID_DIR_V) !== 0, leaf: join52(w[off]! & 0xffff_f000, w[off + 1]!) };
}

/** A decoded PASID leaf entry. */
export interface PasidEntry {
  /** V: the PASID is attached. */
  valid: boolean;
  /** DIRTY_EN for this address space. */
  dirtyEnable: boolean;
  /** DOMAIN_ID (tags the IOTLB). */
  domainId: number;
  /** Page-table root PA (16 KiB aligned). */
  root: number;
}

/** Encodes a PASID leaf entry into 4 words. */
export function encodePasidEntry(e: PasidEntry, out: Uint32Array = new Uint32Array(4), off = 0): Uint32Array {
  out[off] = ((e.valid ? PASID_V : 0) | (e.dirtyEnable ? PASID_DIRTY_EN : 0) | ((e.domainId & 0xffff) << PASID_DOMAIN_SHIFT)) >>> 0;
  out[off + 1] = 0;
  out[off + 2] = lo32(e.root);
  out[off + 3] = hi32(e.root);
  return out;
}

/** Decodes a PASID leaf entry from 4 words. */
export function decodePasidEntry(w: ArrayLike<number>, off = 0): PasidEntry {
  const w0 = w[off]! >>> 0;
  return {
    valid: (w0 & PASID_V) !== 0,
    dirtyEnable: (w0 & PASID_DIRTY_EN) !== 0,
    domainId: w0 >>> PASID_DOMAIN_SHIFT,
    root: join52(w[off + 2]!, w[off + 3]!),
  };
}

/** True when a PASID leaf entry has reserved bits set or a misaligned root. */
export function pasidEntryReservedBitsSet(w: ArrayLike<number>, off = 0): boolean {
  return (
    (w[off]! & PASID_W0_RES) !== 0 ||
    w[off + 1] !== 0 ||
    (w[off + 2]! & (ROOT_ALIGN - 1)) !== 0 ||
    (w[off + 3]! & 0xfff0_0000) !== 0
  );
}

// ---------------------------------------------------------------------------------------------
// Page-table entries (8 bytes)

/** PTE bit: valid. */
export const PTE_V = 1 << 0;
/** PTE bit: read permitted. */
export const PTE_R = 1 << 1;
/** PTE bit: write permitted. */
export const PTE_W = 1 << 2;
/** PTE bit: leaf (in L1: a 1 MiB huge page; always set in L2 leaves). */
export const PTE_LEAF = 1 << 3;
/** PTE bit: dirty (set by hardware on write when DIRTY_EN). */
export const PTE_D = 1 << 4;
/** PTE bit: accessed (set by hardware on first use). */
export const PTE_A = 1 << 5;
/** PTE word0 PA mask of an L2 leaf (PA bits [31:11]). */
export const PTE_PA_MASK_PAGE = 0xffff_f800;
/** PTE word0 PA mask of an L1 huge leaf (PA bits [31:20]). */
export const PTE_PA_MASK_HUGE = 0xfff0_0000;
/** PTE word0 PA mask of an L1 table pointer (PA bits [31:12]). */
export const PTE_PA_MASK_TABLE = 0xffff_f000;
/** PTE word1 PA mask (PA bits [51:32]). */
export const PTE_HI_PA_MASK = 0x000f_ffff;
/** PTE word0 reserved bits common to all entries ([10:6]). */
export const PTE_W0_RES = 0x0000_07c0;
/** L1 entries (index = iova bits [30:20]). */
export const L1_ENTRIES = 2048;
/** L1 table bytes (16 KiB). */
export const L1_BYTES = L1_ENTRIES * 8;
/** L2 entries (index = iova bits [19:11]). */
export const L2_ENTRIES = 512;
/** L2 table bytes (one 4 KiB frame). */
export const L2_BYTES = L2_ENTRIES * 8;

/** A decoded page-table entry. */
export interface Pte {
  /** V */
  valid: boolean;
  /** R */
  read: boolean;
  /** W */
  write: boolean;
  /** LEAF (a huge page when in L1; set on every L2 leaf) */
  leaf: boolean;
  /** D */
  dirty: boolean;
  /** A */
  accessed: boolean;
  /** Output PA (page / huge page / next table). */
  pa: number;
}

/** Encodes a PTE into 2 words (the PA is masked to 2048-byte granularity; callers align it). */
export function encodePte(p: Pte, out: Uint32Array = new Uint32Array(2), off = 0): Uint32Array {
  out[off] =
    ((lo32(p.pa) & PTE_PA_MASK_PAGE) |
      (p.valid ? PTE_V : 0) |
      (p.read ? PTE_R : 0) |
      (p.write ? PTE_W : 0) |
      (p.leaf ? PTE_LEAF : 0) |
      (p.dirty ? PTE_D : 0) |
      (p.accessed ? PTE_A : 0)) >>>
    0;
  out[off + 1] = hi32(p.pa) & PTE_HI_PA_MASK;
  return out;
}

/** Decodes a PTE from 2 words (the PA keeps bits [51:11]). */
export function decodePte(w: ArrayLike<number>, off = 0): Pte {
  const w0 = w[off]! >>> 0;
  return {
    valid: (w0 & PTE_V) !== 0,
    read: (w0 & PTE_R) !== 0,
    write: (w0 & PTE_W) !== 0,
    leaf: (w0 & PTE_LEAF) !== 0,
    dirty: (w0 & PTE_D) !== 0,
    accessed: (w0 & PTE_A) !== 0,
    pa: join52(w0 & PTE_PA_MASK_PAGE, w[off + 1]!),
  };
}

// ---------------------------------------------------------------------------------------------
// Commands (16 bytes)

/** Bytes of a command. */
export const CMD_BYTES = 16;
/** Invalidate all IOTLB entries and config caches. */
export const CMD_INV_ALL = 0x01;
/** Invalidate all IOTLB entries of a DOMAIN_ID. */
export const CMD_INV_DOMAIN = 0x02;
/** Invalidate IOTLB entries of a DOMAIN_ID in an IOVA range. */
export const CMD_INV_RANGE = 0x03;
/** Invalidate the cached DTE (and PASID entries) of a RID. */
export const CMD_INV_DTE = 0x04;
/** Invalidate one cached PASID entry. */
export const CMD_INV_PASID = 0x05;
/** Complete all earlier commands, then write a value, bump SYNC_SEQ and raise the irq. */
export const CMD_SYNC = 0x06;
/** Respond to a page request group. */
export const CMD_PAGE_RESP = 0x07;

/** Page response code: success. */
export const PAGE_RESP_SUCCESS = 0;
/** Page response code: invalid request. */
export const PAGE_RESP_INVALID = 1;
/** Page response code: failure (stop the device's requests). */
export const PAGE_RESP_FAILURE = 2;
/** CMD_PAGE_RESP word2 bit 31: PASID valid. */
export const PAGE_RESP_PASID_VALID = 0x8000_0000;

/** A decoded command. */
export type CmdqEntry =
  | { op: typeof CMD_INV_ALL }
  | { op: typeof CMD_INV_DOMAIN; domainId: number }
  | { op: typeof CMD_INV_RANGE; domainId: number; pages: number; iova: number }
  | { op: typeof CMD_INV_DTE; rid: number }
  | { op: typeof CMD_INV_PASID; rid: number; pasid: number }
  | { op: typeof CMD_SYNC; value: number; addr: number }
  | { op: typeof CMD_PAGE_RESP; code: number; rid: number; pasid: number; pasidValid: boolean; prgIndex: number }
  | { op: number; raw: readonly number[] };

/** Writes CMD_INV_ALL at word index `i` of `u32`. */
export function writeCmdInvAll(u32: Uint32Array, i: number): void {
  u32[i] = CMD_INV_ALL;
  u32[i + 1] = 0;
  u32[i + 2] = 0;
  u32[i + 3] = 0;
}
/** Writes CMD_INV_DOMAIN at word index `i` of `u32`. */
export function writeCmdInvDomain(u32: Uint32Array, i: number, domainId: number): void {
  u32[i] = (CMD_INV_DOMAIN | ((domainId & 0xffff) << 16)) >>> 0;
  u32[i + 1] = 0;
  u32[i + 2] = 0;
  u32[i + 3] = 0;
}
/** Writes CMD_INV_RANGE (iova 2048 aligned, pages >= 1) at word index `i` of `u32`. */
export function writeCmdInvRange(u32: Uint32Array, i: number, domainId: number, iova: number, pages: number): void {
  u32[i] = (CMD_INV_RANGE | ((domainId & 0xffff) << 16)) >>> 0;
  u32[i + 1] = pages >>> 0;
  u32[i + 2] = lo32(iova);
  u32[i + 3] = hi32(iova);
}
/** Writes CMD_INV_DTE at word index `i` of `u32`. */
export function writeCmdInvDte(u32: Uint32Array, i: number, rid: number): void {
  u32[i] = CMD_INV_DTE;
  u32[i + 1] = rid >>> 0;
  u32[i + 2] = 0;
  u32[i + 3] = 0;
}
/** Writes CMD_INV_PASID at word index `i` of `u32`. */
export function writeCmdInvPasid(u32: Uint32Array, i: number, rid: number, pasid: number): void {
  u32[i] = CMD_INV_PASID;
  u32[i + 1] = rid >>> 0;
  u32[i + 2] = pasid >>> 0;
  u32[i + 3] = 0;
}
/** Writes CMD_SYNC (addr 0 = no completion write) at word index `i` of `u32`. */
export function writeCmdSync(u32: Uint32Array, i: number, value: number, addr: number): void {
  u32[i] = CMD_SYNC;
  u32[i + 1] = value >>> 0;
  u32[i + 2] = lo32(addr);
  u32[i + 3] = hi32(addr);
}
/** Writes CMD_PAGE_RESP at word index `i` of `u32` (`pasid` < 0 means no PASID). */
export function writeCmdPageResp(u32: Uint32Array, i: number, code: number, rid: number, pasid: number, prgIndex: number): void {
  u32[i] = (CMD_PAGE_RESP | ((code & 0xffff) << 16)) >>> 0;
  u32[i + 1] = rid >>> 0;
  u32[i + 2] = pasid < 0 ? 0 : ((pasid & 0xfffff) | PAGE_RESP_PASID_VALID) >>> 0;
  u32[i + 3] = prgIndex & 0x1ff;
}

/** Encodes a command object into 4 words (unknown ops: `raw` is copied). */
export function encodeCmd(c: CmdqEntry, out: Uint32Array = new Uint32Array(4), off = 0): Uint32Array {
  const x = c as Record<string, unknown> & { op: number };
  switch (x.op) {
    case CMD_INV_ALL: writeCmdInvAll(out, off); break;
    case CMD_INV_DOMAIN: writeCmdInvDomain(out, off, x.domainId as number); break;
    case CMD_INV_RANGE: writeCmdInvRange(out, off, x.domainId as number, x.iova as number, x.pages as number); break;
    case CMD_INV_DTE: writeCmdInvDte(out, off, x.rid as number); break;
    case CMD_INV_PASID: writeCmdInvPasid(out, off, x.rid as number, x.pasid as number); break;
    case CMD_SYNC: writeCmdSync(out, off, x.value as number, x.addr as number); break;
    case CMD_PAGE_RESP:
      writeCmdPageResp(out, off, x.code as number, x.rid as number, x.pasidValid ? (x.pasid as number) : -1, x.prgIndex as number);
      break;
    default: {
      const raw = (x.raw as readonly number[] | undefined) ?? [x.op];
      for (let k = 0; k < 4; k++) out[off + k] = (raw[k] ?? 0) >>> 0;
    }
  }
  return out;
}

/** Decodes a command from 4 words (field values only; the hardware does the reserved-bit checks). */
export function decodeCmd(w: ArrayLike<number>, off = 0): CmdqEntry {
  const w0 = w[off]! >>> 0;
  const op = w0 & 0xff;
  switch (op) {
    case CMD_INV_ALL: return { op };
    case CMD_INV_DOMAIN: return { op, domainId: w0 >>> 16 };
    case CMD_INV_RANGE: return { op, domainId: w0 >>> 16, pages: w[off + 1]! >>> 0, iova: join52(w[off + 2]!, w[off + 3]!) };
    case CMD_INV_DTE: return { op, rid: w[off + 1]! >>> 0 };
    case CMD_INV_PASID: return { op, rid: w[off + 1]! >>> 0, pasid: w[off + 2]! >>> 0 };
    case CMD_SYNC: return { op, value: w[off + 1]! >>> 0, addr: join52(w[off + 2]!, w[off + 3]!) };
    case CMD_PAGE_RESP: {
      const w2 = w[off + 2]! >>> 0;
      return {
        op, code: w0 >>> 16, rid: w[off + 1]! >>> 0, pasid: w2 & 0xfffff,
        pasidValid: (w2 & PAGE_RESP_PASID_VALID) !== 0, prgIndex: w[off + 3]! & 0x1ff,
      };
    }
    default: return { op, raw: [w0, w[off + 1]! >>> 0, w[off + 2]! >>> 0, w[off + 3]! >>> 0] };
  }
}

// ---------------------------------------------------------------------------------------------
// Fault records (32 bytes)

/** Bytes of a fault record. */
export const FAULT_RECORD_BYTES = 32;
/** Words of a fault record. */
export const FAULT_RECORD_WORDS = 8;
/** Fault record type: non-recoverable fault. */
export const FAULT_TYPE_FAULT = 1;
/** Fault record type: page request. */
export const FAULT_TYPE_PAGE_REQ = 2;
/** Record word0 bit: PASID valid. */
export const FAULT_PASID_VALID = 1 << 16;
/** Record word0 bit: last request of the group (page requests). */
export const FAULT_LAST = 1 << 17;
/** Record word0: perm shift (bits [21:18]). */
export const FAULT_PERM_SHIFT = 18;
/** Perm bit: read. */
export const PERM_READ = 1;
/** Perm bit: write. */
export const PERM_WRITE = 2;
/** Perm bit: execute. */
export const PERM_EXEC = 4;
/** Perm bit: privileged. */
export const PERM_PRIV = 8;

/** A decoded fault record. */
export interface FaultRecord {
  /** {@link FAULT_TYPE_FAULT} or {@link FAULT_TYPE_PAGE_REQ}. */
  type: number;
  /** FaultReason code. */
  reason: number;
  /** The PASID field is meaningful. */
  pasidValid: boolean;
  /** Last request of its page request group. */
  last: boolean;
  /** PERM_* bits of the access. */
  perm: number;
  /** Requester id. */
  rid: number;
  /** PASID (when pasidValid). */
  pasid: number;
  /** Page request group index (page requests). */
  prgIndex: number;
  /** Faulting IOVA. */
  addr: number;
}

/** Encodes a fault record into 8 words. */
export function encodeFaultRecord(r: FaultRecord, out: Uint32Array = new Uint32Array(FAULT_RECORD_WORDS), off = 0): Uint32Array {
  writeFaultRecord(out, off, r.type, r.reason, r.pasidValid ? r.pasid : -1, r.last, r.perm, r.rid, r.prgIndex, r.addr);
  return out;
}

/** Writes a fault record at word index `i` without allocating (`pasid` < 0 = none). */
export function writeFaultRecord(
  u32: Uint32Array, i: number, type: number, reason: number, pasid: number, last: boolean,
  perm: number, rid: number, prgIndex: number, addr: number,
): void {
  u32[i] =
    ((type & 0xff) | ((reason & 0xff) << 8) | (pasid >= 0 ? FAULT_PASID_VALID : 0) | (last ? FAULT_LAST : 0) |
      ((perm & 0xf) << FAULT_PERM_SHIFT)) >>> 0;
  u32[i + 1] = rid >>> 0;
  u32[i + 2] = pasid >= 0 ? pasid >>> 0 : 0;
  u32[i + 3] = prgIndex >>> 0;
  u32[i + 4] = lo32(addr);
  u32[i + 5] = hi32(addr);
  u32[i + 6] = 0;
  u32[i + 7] = 0;
}

/** Decodes a fault record from 8 words. */
export function decodeFaultRecord(w: ArrayLike<number>, off = 0): FaultRecord {
  const w0 = w[off]! >>> 0;
  return {
    type: w0 & 0xff,
    reason: (w0 >>> 8) & 0xff,
    pasidValid: (w0 & FAULT_PASID_VALID) !== 0,
    last: (w0 & FAULT_LAST) !== 0,
    perm: (w0 >>> FAULT_PERM_SHIFT) & 0xf,
    rid: w[off + 1]! >>> 0,
    pasid: w[off + 2]! >>> 0,
    prgIndex: w[off + 3]! >>> 0,
    addr: (w[off + 5]! >>> 0) * TWO_32 + (w[off + 4]! >>> 0),
  };
}

/**
 * The mock's own fault detail codes: where exactly a translation failed. Reported in
 * `DmaResult.faultDetail` and in fault-record word 6 (for PAGE_REQUEST results `faultDetail`
 * is the page request group index instead).
 */
export const MockFaultDetail = {
  NONE: 0,
  /** CTRL.EN is clear: all DMA aborts (no record). */
  DISABLED: 1,
  /** RID >= 2^DT_LOG2. */
  RID_RANGE: 2,
  /** DT_BASE / DT_LOG2 malformed (misaligned base, log2 > 16, bits above PA). */
  DT_CONFIG: 3,
  /** The DTE lies outside PhysMem. */
  DTE_FETCH: 4,
  /** DTE V = 0. */
  DTE_INVALID: 5,
  /** DTE reserved bits set or misaligned pointers. */
  DTE_RESERVED: 6,
  /** DTE enables a feature the hardware lacks (PASID / DIRTY / PRI). */
  DTE_FEATURE: 7,
  /** A PASID request to a device without PASID_EN, or a PASID >= 2^20. */
  PASID_DISABLED: 8,
  /** The PASID directory or leaf entry lies outside PhysMem. */
  PASID_FETCH: 9,
  /** PASID directory entry V = 0. */
  PASID_DIR_INVALID: 10,
  /** PASID leaf entry V = 0. */
  PASID_INVALID: 11,
  /** PASID directory / leaf entry reserved bits set. */
  PASID_RESERVED: 12,
  /** IOVA outside [MOCK_APERTURE_START, MOCK_APERTURE_LAST]. */
  APERTURE: 13,
  /** An L1 / L2 fetch outside PhysMem. */
  PTE_FETCH: 14,
  /** L1 entry V = 0. */
  L1_INVALID: 15,
  /** L2 entry V = 0. */
  L2_INVALID: 16,
  /** PTE reserved bits set (or a huge leaf without CAP.HUGE, or an L2 entry without LEAF). */
  PTE_RESERVED: 17,
  /** Read (or exec) without R. */
  NO_READ: 18,
  /** Write without W. */
  NO_WRITE: 19,
} as const;
