/**
 * Command decoding (smmuv3.md §4): one reusable {@link CmdqEntry} scratch object filled by
 * {@link CmdDecoder.decode} from the two dwords of a command, with the CERROR_ILL checks of §4.6
 * and decision #8 of §12. No allocation per command.
 *
 * CERROR_ILL when (reason string in `entry.ill`):
 * - the opcode is not an architected Non-secure command (including 0x07 and the EL3 TLBIs, which
 *   are not accepted on the Non-secure queue ⚠) — 'opcode';
 * - the command needs a feature the SMMU lacks: TLBI_NH_* / CFGI_CD / CFGI_CD_ALL without stage 1
 *   (IHI 0070 §4.3.3, §4.3.4, §4.4.2), TLBI_S12_VMALL /
 *   TLBI_S2_IPA without stage 2, TLBI_EL2_* without HYP, ATC_INV without ATS, PRI_RESP without
 *   PRI, RESUME / STALL_TERM with stall model 'none' — 'feature';
 * - SSec = 1 (dword0 bit 10) on this (Non-secure) queue — 'ssec';
 * - any bit outside the command's fields (CMD_FIELDS) is set (RES0), including ASID [63:56] with
 *   8-bit ASIDs and VMID [47:40] with 8-bit VMIDs — 'res0';
 * - TLBI range fields: without IDR3.RIL any of TG/NUM/SCALE/TTL non-zero (they are RES0); with RIL
 *   TG = 0 with NUM/SCALE/TTL ≠ 0 (RES0), TG ≠ 0 with NUM = SCALE = 0 and effective TTL = 0 (the
 *   Reserved combination of IHI 0070 §4.4.1.1; TTL = 1 with TG = 16 KB is Reserved without
 *   IDR5.DS and treated as TTL = 0, so it is ILL only with NUM = SCALE = 0 and otherwise decodes
 *   with ttl = 0). TTL = 1 with TG = 64 KB is legal (level-1 hint) — 'range';
 * - CMD_SYNC CS = 3 — 'cs';
 * - ATC_INV Size > 52 — 'atc-size';
 * - PRI_RESP Resp = 3 (reserved) — 'resp'.
 * Out-of-range StreamID / SSID / ASID / VMID values are not ILL (§4.6).
 */
import {
  ATC_INV_SIZE_ALL,
  CERROR_ILL,
  CERROR_NONE,
  CMD_FIELDS,
  CmdField,
  CmdOp,
  setField,
} from '../codec/index.js';
import type { SmmuFeatures } from './features.js';

const TWO_32 = 4294967296;

/** The decoded fields of one command (reused scratch: every decode rewrites every field). */
export class CmdqEntry {
  /** Opcode, dword0 [7:0]. */
  op = 0;
  /** Raw words: dword0 low/high, dword1 low/high. */
  w0 = 0;
  w1 = 0;
  w2 = 0;
  w3 = 0;
  /** Queue index (idx | wrap) of the command, set by the command queue (-1 outside a queue). */
  index = -1;
  /** Why the last decode returned CERROR_ILL ('' when legal); see the module comment. */
  ill = '';
  /** SubstreamID valid (PREFETCH_*, ATC_INV, PRI_RESP). */
  ssv = false;
  /** SubstreamID (PREFETCH_*, CFGI_CD, ATC_INV, PRI_RESP). */
  ssid = 0;
  /** StreamID (PREFETCH_*, CFGI_*, ATC_INV, PRI_RESP, RESUME, STALL_TERM). */
  sid = 0;
  /** VMID (TLBI_NH_*, TLBI_S12_VMALL, TLBI_S2_IPA). */
  vmid = 0;
  /** ASID (TLBI_NH_ASID, TLBI_NH_VA, TLBI_EL2_ASID, TLBI_EL2_VA). */
  asid = 0;
  /** Leaf (CFGI_STE, CFGI_CD: only the leaf structure; TLBI_*VA/IPA: only leaf entries). */
  leaf = false;
  /** TLBI TTL [9:8]: level hint (0 = any). */
  ttl = 0;
  /** TLBI TG [11:10]: 0 = not a range; 1 4 KB, 2 16 KB, 3 64 KB. */
  tg = 0;
  /** TLBI NUM [16:12]. */
  num = 0;
  /** TLBI SCALE [24:20]. */
  scale = 0;
  /** CFGI_STE_RANGE Range [4:0] (31 = CFGI_ALL). */
  range = 0;
  /** Address [63:12] low word (bits [31:12], low 12 bits zero). */
  addrLo = 0;
  /** Address high word (bits [63:32]). */
  addrHi = 0;
  /** Address as a number (exact below 2^53; TLBI VA, S2 IPA, ATC_INV, PREFETCH_ADDR). */
  addr = 0;
  /** TLBI_S2_IPA: IPA [51:12] (also in `addr`). */
  ipa = 0;
  /** ATC_INV Size [5:0]: log2 of 4 KB pages (52 = all). */
  atcSize = 0;
  /** ATC_INV Global [9]. */
  global = false;
  /** PRI_RESP PRGI [8:0]. */
  prgi = 0;
  /** PRI_RESP Resp [13:12]: 0 deny, 1 fail, 2 success. */
  resp = 0;
  /** RESUME Action [13:12] (Linux: 0 TERM, 1 RETRY, 2 ABORT; 3 passed through). */
  action = 0;
  /** RESUME STAG [15:0]. */
  stag = 0;
  /** CMD_SYNC CS [13:12]: 0 none, 1 SIG_IRQ (MSI write), 2 SIG_SEV. */
  cs = 0;
  /** CMD_SYNC MSH [23:22]. */
  msh = 0;
  /** CMD_SYNC MSIAttr [27:24]. */
  msiAttr = 0;
  /** CMD_SYNC MSIData [63:32]. */
  msiData = 0;
  /** CMD_SYNC MSIAddress [51:2] (in place). */
  msiAddr = 0;
  /** PREFETCH_ADDR Size [4:0]. */
  pfSize = 0;
  /** PREFETCH_ADDR Stride [12:8]. */
  pfStride = 0;
  /**
   * Decoder bookkeeping: the opcode whose fields the last decode into this entry wrote (the only
   * fields that may be non-zero besides op / w0..w3 / index), or -1 when every field is clear. A
   * decode of the same opcode rewrites exactly those fields, so only a change of opcode (or an
   * ILL command) clears the entry. Not for use outside the decoder.
   */
  dirtyOp = -1;

  /** Log2 of the TLBI range granule (12, 14, 16), or 0 when TG = 0. */
  granuleShift(): number {
    const tg = this.tg;
    return tg === 0 ? 0 : 10 + 2 * tg;
  }

  /** Pages in a TLBI range: (NUM + 1) × 2^SCALE (1 when TG = 0). */
  rangePages(): number {
    return this.tg === 0 ? 1 : (this.num + 1) * 2 ** this.scale;
  }

  /** Bytes covered by a TLBI range (TG ≠ 0); 0 when TG = 0 (= "the entries covering `addr`, any size"). */
  rangeBytes(): number {
    return this.tg === 0 ? 0 : (this.num + 1) * 2 ** (this.scale + 10 + 2 * this.tg);
  }
}

/** Clears every decoded field (not op, w0..w3, index, ill) and marks the entry clear. */
function clearFields(e: CmdqEntry): void {
  e.dirtyOp = -1;
  e.ssv = false;
  e.ssid = 0;
  e.sid = 0;
  e.vmid = 0;
  e.asid = 0;
  e.leaf = false;
  e.ttl = 0;
  e.tg = 0;
  e.num = 0;
  e.scale = 0;
  e.range = 0;
  e.addrLo = 0;
  e.addrHi = 0;
  e.addr = 0;
  e.ipa = 0;
  e.atcSize = 0;
  e.global = false;
  e.prgi = 0;
  e.resp = 0;
  e.action = 0;
  e.stag = 0;
  e.cs = 0;
  e.msh = 0;
  e.msiAttr = 0;
  e.msiData = 0;
  e.msiAddr = 0;
  e.pfSize = 0;
  e.pfStride = 0;
}

// Opcode classes for the switch.
const K_ILL = 0;
const K_OK = 1;

/** Opcodes whose TLBI range fields (TG/NUM/SCALE/TTL) are checked. */
const RANGE_OPS: readonly number[] = [CmdOp.TLBI_NH_VA, CmdOp.TLBI_NH_VAA, CmdOp.TLBI_EL2_VA, CmdOp.TLBI_EL2_VAA, CmdOp.TLBI_S2_IPA];

/**
 * A command decoder for one feature set: precomputed tables of legal opcodes and of the bits
 * each opcode defines, so decoding a command is a table lookup, four masks and a switch.
 */
export class CmdDecoder {
  /** 1 when the opcode is legal on this SMMU. */
  private readonly kind = new Uint8Array(256);
  /** Per opcode, 4 words: the bits the command defines (others are RES0). */
  private readonly allowed = new Uint32Array(256 * 4);
  /** Per opcode, the ILL reason when it is not legal. */
  private readonly illReason: string[] = new Array<string>(256).fill('opcode');
  private readonly ril: boolean;

  constructor(f: SmmuFeatures) {
    this.ril = f.ril;
    const enabled: Record<number, boolean> = {
      [CmdOp.PREFETCH_CONFIG]: true,
      [CmdOp.PREFETCH_ADDR]: true,
      [CmdOp.CFGI_STE]: true,
      [CmdOp.CFGI_STE_RANGE]: true,
      // IHI 0070 §4.3.3 / §4.3.4: CERROR_ILL when stage 1 is not implemented.
      [CmdOp.CFGI_CD]: f.stage1,
      [CmdOp.CFGI_CD_ALL]: f.stage1,
      [CmdOp.TLBI_NH_ALL]: f.stage1,
      [CmdOp.TLBI_NH_ASID]: f.stage1,
      [CmdOp.TLBI_NH_VA]: f.stage1,
      [CmdOp.TLBI_NH_VAA]: f.stage1,
      [CmdOp.TLBI_EL3_ALL]: false,
      [CmdOp.TLBI_EL3_VA]: false,
      [CmdOp.TLBI_EL2_ALL]: f.hyp,
      [CmdOp.TLBI_EL2_ASID]: f.hyp,
      [CmdOp.TLBI_EL2_VA]: f.hyp,
      [CmdOp.TLBI_EL2_VAA]: f.hyp,
      [CmdOp.TLBI_S12_VMALL]: f.stage2,
      [CmdOp.TLBI_S2_IPA]: f.stage2,
      [CmdOp.TLBI_NSNH_ALL]: true,
      [CmdOp.ATC_INV]: f.ats,
      [CmdOp.PRI_RESP]: f.pri,
      [CmdOp.RESUME]: f.stall !== 'none',
      [CmdOp.STALL_TERM]: f.stall !== 'none',
      [CmdOp.SYNC]: true,
    };
    const scratch = new Uint32Array(4);
    for (const [opStr, names] of Object.entries(CMD_FIELDS)) {
      const op = Number(opStr);
      scratch.fill(0);
      setField(scratch, 0, CmdField.OPCODE, 0xff);
      for (const n of names) {
        if (n === 'SSEC') continue; // SSec = 1 is ILL on the Non-secure queue: not an allowed bit
        const fd = CmdField[n];
        setField(scratch, 0, fd, 2 ** fd.width - 1);
      }
      // 8-bit ASIDs / VMIDs: the upper byte is RES0.
      if (!f.asid16 && names.includes('ASID')) scratch[1] &= ~0xff000000;
      if (!f.vmid16 && names.includes('VMID')) scratch[1] &= ~0x0000ff00;
      this.allowed.set(scratch, op * 4);
      this.kind[op] = enabled[op] === true ? K_OK : K_ILL;
      if (enabled[op] !== true) this.illReason[op] = op === CmdOp.TLBI_EL3_ALL || op === CmdOp.TLBI_EL3_VA ? 'opcode' : 'feature';
    }
  }

  /** True when `op` is a legal opcode on this SMMU. */
  legal(op: number): boolean {
    return this.kind[op & 0xff] === K_OK;
  }

  /**
   * Decodes the command whose dword0 low word is `u32[w]` into `e`.
   * @returns CERROR_NONE, or CERROR_ILL with the reason in `e.ill`
   */
  decode(u32: Uint32Array, w: number, e: CmdqEntry): number {
    const w0 = u32[w];
    const w1 = u32[w + 1];
    const w2 = u32[w + 2];
    const w3 = u32[w + 3];
    const op = w0 & 0xff;
    e.op = op;
    e.w0 = w0;
    e.w1 = w1;
    e.w2 = w2;
    e.w3 = w3;
    e.ill = '';
    if (this.kind[op] !== K_OK) {
      clearFields(e);
      e.ill = this.illReason[op];
      return CERROR_ILL;
    }
    if ((w0 & 0x400) !== 0) {
      clearFields(e);
      e.ill = 'ssec';
      return CERROR_ILL;
    }
    const a = this.allowed;
    const m = op * 4;
    if (((w0 & ~a[m]) | (w1 & ~a[m + 1]) | (w2 & ~a[m + 2]) | (w3 & ~a[m + 3])) !== 0) {
      clearFields(e);
      e.ill = 'res0';
      return CERROR_ILL;
    }
    // Every case below writes all the fields of its opcode (before any ILL return): the other
    // fields must be zero, which they already are when the entry is clear or last held `op`.
    const dirty = e.dirtyOp;
    if (dirty !== op) {
      if (dirty !== -1) clearFields(e);
      e.dirtyOp = op;
    }
    switch (op) {
      case CmdOp.TLBI_NH_VA:
      case CmdOp.TLBI_EL2_VA:
      case CmdOp.TLBI_NH_VAA:
      case CmdOp.TLBI_EL2_VAA:
      case CmdOp.TLBI_S2_IPA: {
        // ASID / VMID bits are RES0 (checked above, so 0 here) for the opcodes without them.
        e.asid = w1 >>> 16;
        e.vmid = w1 & 0xffff;
        const num = (w0 >>> 12) & 0x1f;
        const scale = (w0 >>> 20) & 0x1f;
        const ttl = (w2 >>> 8) & 3;
        const tg = (w2 >>> 10) & 3;
        e.num = num;
        e.scale = scale;
        e.ttl = ttl;
        e.tg = tg;
        e.leaf = (w2 & 1) !== 0;
        const lo = (w2 & 0xfffff000) >>> 0;
        e.addrLo = lo;
        e.addrHi = w3;
        e.addr = lo + w3 * TWO_32;
        if (op === CmdOp.TLBI_S2_IPA) e.ipa = e.addr;
        if (!this.ril) {
          if ((tg | num | scale | ttl) !== 0) {
            e.ill = 'range';
            return CERROR_ILL;
          }
        } else if (tg === 0) {
          if ((num | scale | ttl) !== 0) {
            e.ill = 'range';
            return CERROR_ILL;
          }
        } else {
          // IHI 0070 §4.4.1.1: TTL = 0b01 with TG = 16 KB is Reserved without IDR5.DS and is
          // treated as TTL = 0b00; NUM = SCALE = 0 with (effective) TTL = 0b00 is the Reserved
          // combination (CERROR_ILL). TTL = 0b01 with TG = 64 KB is a level-1 hint (legal).
          const effTtl = ttl === 1 && tg === 2 ? 0 : ttl;
          if (ttl === 1 && tg === 2) e.ttl = 0;
          if ((num | scale | effTtl) === 0) {
            e.ill = 'range';
            return CERROR_ILL;
          }
        }
        return CERROR_NONE;
      }
      case CmdOp.SYNC: {
        const cs = (w0 >>> 12) & 3;
        e.cs = cs;
        e.msh = (w0 >>> 22) & 3;
        e.msiAttr = (w0 >>> 24) & 0xf;
        e.msiData = w1;
        e.msiAddr = ((w2 & 0xfffffffc) >>> 0) + (w3 & 0xfffff) * TWO_32;
        if (cs === 3) {
          e.ill = 'cs';
          return CERROR_ILL;
        }
        return CERROR_NONE;
      }
      case CmdOp.TLBI_NH_ASID:
      case CmdOp.TLBI_EL2_ASID:
        e.asid = w1 >>> 16;
        e.vmid = w1 & 0xffff;
        return CERROR_NONE;
      case CmdOp.TLBI_NH_ALL:
      case CmdOp.TLBI_S12_VMALL:
        e.vmid = w1 & 0xffff;
        return CERROR_NONE;
      case CmdOp.TLBI_EL2_ALL:
      case CmdOp.TLBI_NSNH_ALL:
        return CERROR_NONE;
      case CmdOp.CFGI_STE:
        e.sid = w1;
        e.leaf = (w2 & 1) !== 0;
        return CERROR_NONE;
      case CmdOp.CFGI_STE_RANGE:
        e.sid = w1;
        e.range = w2 & 0x1f;
        return CERROR_NONE;
      case CmdOp.CFGI_CD:
        e.sid = w1;
        e.ssid = w0 >>> 12;
        e.leaf = (w2 & 1) !== 0;
        return CERROR_NONE;
      case CmdOp.CFGI_CD_ALL:
      case CmdOp.STALL_TERM:
        e.sid = w1;
        return CERROR_NONE;
      case CmdOp.PREFETCH_CONFIG:
      case CmdOp.PREFETCH_ADDR: {
        e.sid = w1;
        e.ssv = (w0 & 0x800) !== 0;
        e.ssid = w0 >>> 12;
        if (op === CmdOp.PREFETCH_ADDR) {
          e.pfSize = w2 & 0x1f;
          e.pfStride = (w2 >>> 8) & 0x1f;
          const lo = (w2 & 0xfffff000) >>> 0;
          e.addrLo = lo;
          e.addrHi = w3;
          e.addr = lo + w3 * TWO_32;
        }
        return CERROR_NONE;
      }
      case CmdOp.ATC_INV: {
        e.sid = w1;
        e.ssv = (w0 & 0x800) !== 0;
        e.ssid = w0 >>> 12;
        e.global = (w0 & 0x200) !== 0;
        const size = w2 & 0x3f;
        e.atcSize = size;
        const lo = (w2 & 0xfffff000) >>> 0;
        e.addrLo = lo;
        e.addrHi = w3;
        e.addr = lo + w3 * TWO_32;
        if (size > ATC_INV_SIZE_ALL) {
          e.ill = 'atc-size';
          return CERROR_ILL;
        }
        return CERROR_NONE;
      }
      case CmdOp.PRI_RESP: {
        e.sid = w1;
        e.ssv = (w0 & 0x800) !== 0;
        e.ssid = w0 >>> 12;
        e.prgi = w2 & 0x1ff;
        const resp = (w2 >>> 12) & 3;
        e.resp = resp;
        if (resp === 3) {
          e.ill = 'resp';
          return CERROR_ILL;
        }
        return CERROR_NONE;
      }
      case CmdOp.RESUME:
        e.sid = w1;
        e.action = (w0 >>> 12) & 3;
        e.stag = w2 & 0xffff;
        return CERROR_NONE;
      default:
        // Unreachable: every legal opcode has a case above.
        e.ill = 'opcode';
        return CERROR_ILL;
    }
  }
}

/** Opcodes that carry TLBI range fields (exported for tests and the pipeline). */
export const TLBI_RANGE_OPS: readonly number[] = RANGE_OPS;

/**
 * Decodes the command at word `w` of `u32` into the scratch entry `e` with `decoder`'s feature
 * tables (same as `decoder.decode(u32, w, e)`).
 * @returns CERROR_NONE or CERROR_ILL (reason in `e.ill`)
 */
export function decodeCmd(u32: Uint32Array, w: number, e: CmdqEntry, decoder: CmdDecoder): number {
  return decoder.decode(u32, w, e);
}
