/**
 * Command encoders of the host driver (smmuv3.md §4.2): each writes one 16-byte command (four
 * 32-bit words, dword0 low/high then dword1 low/high) at word `w` of `u32`, exactly as Linux's
 * `arm_smmu_cmdq_build_cmd` encodes it (the §4.8 worked encodings). Every bit a command does not
 * set is written 0. Hot-path safe: no allocation, numbers only.
 */
import {
  ATC_INV_SIZE_ALL,
  CFGI_RANGE_ALL,
  CmdOp,
  PriResp,
  ResumeAction,
  SH_ISH,
  SyncCs,
} from '../codec/index.js';

const TWO_32 = 4294967296;

/** MSIAttr Linux puts in every CMD_SYNC: Normal inner/outer write-back (ARM_SMMU_MEMATTR_OIWB). */
export const SYNC_MSIATTR_OIWB = 0xf;

/** Low word of an address field held in place at bits [31:12] (bits below 12 cleared). */
function addrLo(addr: number): number {
  return (addr % TWO_32) & 0xfffff000;
}

/** High word of a 64-bit address. */
function addrHi(addr: number): number {
  return Math.floor(addr / TWO_32) >>> 0;
}

/** CMD_PREFETCH_CONFIG(SID) (Linux issues it after an STE write, §2.6). */
export function cmdPrefetchConfig(u32: Uint32Array, w: number, sid: number): void {
  u32[w] = CmdOp.PREFETCH_CONFIG;
  u32[w + 1] = sid >>> 0;
  u32[w + 2] = 0;
  u32[w + 3] = 0;
}

/** CMD_CFGI_STE(SID, Leaf): Leaf = 1 drops only the STE, 0 also the L1STD (§4.7). */
export function cmdCfgiSte(u32: Uint32Array, w: number, sid: number, leaf: boolean): void {
  u32[w] = CmdOp.CFGI_STE;
  u32[w + 1] = sid >>> 0;
  u32[w + 2] = leaf ? 1 : 0;
  u32[w + 3] = 0;
}

/** CMD_CFGI_ALL = CMD_CFGI_STE_RANGE with Range = 31 (§4.8: dword1 = 0x1F). */
export function cmdCfgiAll(u32: Uint32Array, w: number): void {
  u32[w] = CmdOp.CFGI_STE_RANGE;
  u32[w + 1] = 0;
  u32[w + 2] = CFGI_RANGE_ALL;
  u32[w + 3] = 0;
}

/** CMD_CFGI_CD(SID, SSID, Leaf): SSID [31:12] (no SSV field), Leaf 0 also drops the L1CD. */
export function cmdCfgiCd(u32: Uint32Array, w: number, sid: number, ssid: number, leaf: boolean): void {
  u32[w] = (CmdOp.CFGI_CD | ((ssid & 0xfffff) << 12)) >>> 0;
  u32[w + 1] = sid >>> 0;
  u32[w + 2] = leaf ? 1 : 0;
  u32[w + 3] = 0;
}

/** CMD_CFGI_CD_ALL(SID). */
export function cmdCfgiCdAll(u32: Uint32Array, w: number, sid: number): void {
  u32[w] = CmdOp.CFGI_CD_ALL;
  u32[w + 1] = sid >>> 0;
  u32[w + 2] = 0;
  u32[w + 3] = 0;
}

/** CMD_TLBI_NH_ALL(VMID): every stage-1 entry of the VMID. */
export function cmdTlbiNhAll(u32: Uint32Array, w: number, vmid: number): void {
  u32[w] = CmdOp.TLBI_NH_ALL;
  u32[w + 1] = vmid & 0xffff;
  u32[w + 2] = 0;
  u32[w + 3] = 0;
}

/** CMD_TLBI_NH_ASID(ASID, VMID) (§4.8: ASID 1 → dword0 0x0001_0000_0000_0011). */
export function cmdTlbiNhAsid(u32: Uint32Array, w: number, asid: number, vmid: number): void {
  u32[w] = CmdOp.TLBI_NH_ASID;
  u32[w + 1] = ((vmid & 0xffff) | ((asid & 0xffff) << 16)) >>> 0;
  u32[w + 2] = 0;
  u32[w + 3] = 0;
}

/**
 * CMD_TLBI_NH_VA (or another VA-form TLBI given by `op`, e.g. TLBI_NH_VAA / TLBI_EL2_VA): ASID,
 * VMID, VA [63:12], Leaf, and the range fields TG/TTL/NUM/SCALE (all 0 for a non-range
 * command, §4.3).
 */
export function cmdTlbiVa(
  u32: Uint32Array,
  w: number,
  op: number,
  asid: number,
  vmid: number,
  addr: number,
  leaf: boolean,
  tg: number,
  ttl: number,
  num: number,
  scale: number,
): void {
  u32[w] = (op | ((num & 0x1f) << 12) | ((scale & 0x1f) << 20)) >>> 0;
  u32[w + 1] = ((vmid & 0xffff) | ((asid & 0xffff) << 16)) >>> 0;
  u32[w + 2] = (addrLo(addr) | (leaf ? 1 : 0) | ((ttl & 3) << 8) | ((tg & 3) << 10)) >>> 0;
  u32[w + 3] = addrHi(addr);
}

/** CMD_TLBI_S2_IPA(VMID, IPA [51:12], Leaf, TG/TTL/NUM/SCALE). */
export function cmdTlbiS2Ipa(
  u32: Uint32Array,
  w: number,
  vmid: number,
  ipa: number,
  leaf: boolean,
  tg: number,
  ttl: number,
  num: number,
  scale: number,
): void {
  u32[w] = (CmdOp.TLBI_S2_IPA | ((num & 0x1f) << 12) | ((scale & 0x1f) << 20)) >>> 0;
  u32[w + 1] = vmid & 0xffff;
  u32[w + 2] = (addrLo(ipa) | (leaf ? 1 : 0) | ((ttl & 3) << 8) | ((tg & 3) << 10)) >>> 0;
  u32[w + 3] = addrHi(ipa) & 0xfffff;
}

/** CMD_TLBI_S12_VMALL(VMID): every stage-1, stage-2 and combined entry of the VMID. */
export function cmdTlbiS12Vmall(u32: Uint32Array, w: number, vmid: number): void {
  u32[w] = CmdOp.TLBI_S12_VMALL;
  u32[w + 1] = vmid & 0xffff;
  u32[w + 2] = 0;
  u32[w + 3] = 0;
}

/** A command made of its opcode alone (TLBI_NSNH_ALL, TLBI_EL2_ALL). */
export function cmdOpOnly(u32: Uint32Array, w: number, op: number): void {
  u32[w] = op;
  u32[w + 1] = 0;
  u32[w + 2] = 0;
  u32[w + 3] = 0;
}

/**
 * CMD_ATC_INV(SID, SSID or -1 for none, Address, Size, Global) (§4.4). `size` is log2 of the
 * number of 4 KiB pages; {@link ATC_INV_SIZE_ALL} (52) with address 0 is "everything".
 */
export function cmdAtcInv(u32: Uint32Array, w: number, sid: number, ssid: number, addr: number, size: number, global: boolean): void {
  const ssv = ssid >= 0;
  u32[w] = (CmdOp.ATC_INV | (global ? 1 << 9 : 0) | (ssv ? (1 << 11) | ((ssid & 0xfffff) << 12) : 0)) >>> 0;
  u32[w + 1] = sid >>> 0;
  u32[w + 2] = (addrLo(addr) | (size & 0x3f)) >>> 0;
  u32[w + 3] = addrHi(addr);
}

/** ATC_INV of every translation the device cached (Size = 52, §4.8 `ATC_INV SID 2, all`). */
export function cmdAtcInvAll(u32: Uint32Array, w: number, sid: number, ssid: number): void {
  cmdAtcInv(u32, w, sid, ssid, 0, ATC_INV_SIZE_ALL, false);
}

/** CMD_PRI_RESP(SID, SSID or -1, PRGI, Resp) (IHI 0070 §4.5.2: Resp 0 ResponseFailure, 1 InvalidRequest, 2 Success). */
export function cmdPriResp(u32: Uint32Array, w: number, sid: number, ssid: number, prgi: number, resp: number): void {
  const ssv = ssid >= 0;
  u32[w] = (CmdOp.PRI_RESP | (ssv ? (1 << 11) | ((ssid & 0xfffff) << 12) : 0)) >>> 0;
  u32[w + 1] = sid >>> 0;
  u32[w + 2] = ((prgi & 0x1ff) | ((resp & 3) << 12)) >>> 0;
  u32[w + 3] = 0;
}

/** CMD_RESUME(SID, STAG, Action) (Linux actions: 0 TERM, 1 RETRY, 2 ABORT). */
export function cmdResume(u32: Uint32Array, w: number, sid: number, stag: number, action: number): void {
  u32[w] = (CmdOp.RESUME | ((action & 3) << 12)) >>> 0;
  u32[w + 1] = sid >>> 0;
  u32[w + 2] = stag & 0xffff;
  u32[w + 3] = 0;
}

/**
 * CMD_SYNC as Linux builds it (§4.5, §4.8): with `msiAddr` != 0, CS = SIG_IRQ, MSIData 0 and
 * MSIAddress = `msiAddr` (MSI-poll: the sync's own address, completion writes 0 over word 0);
 * otherwise CS = SIG_SEV. MSH = ISH and MSIAttr = 0xF in both.
 */
export function cmdSync(u32: Uint32Array, w: number, msiAddr: number): void {
  const cs = msiAddr !== 0 ? SyncCs.IRQ : SyncCs.SEV;
  u32[w] = (CmdOp.SYNC | (cs << 12) | (SH_ISH << 22) | (SYNC_MSIATTR_OIWB << 24)) >>> 0;
  u32[w + 1] = 0;
  u32[w + 2] = (msiAddr % TWO_32) & 0xfffffffc;
  u32[w + 3] = addrHi(msiAddr) & 0xfffff;
}

/**
 * PRI_RESP code for a driver-api PageResponseCode, per IHI 0070 §4.5.2 (Resp 0b00
 * ResponseFailure, 0b01 InvalidRequest, 0b10 Success): SUCCESS → 2, INVALID → 1, FAILURE → 0.
 * (Linux sends PRI_RESP_DENY = 0 for IOMMU_PAGE_RESP_INVALID, which the architecture defines as
 * ResponseFailure; this driver follows the architecture.)
 */
export function priRespOf(code: number): number {
  return code === 0 ? PriResp.SUCCESS : code === 1 ? PriResp.INVALID_REQUEST : PriResp.RESPONSE_FAILURE;
}

/** RESUME action for a driver-api PageResponseCode (SUCCESS → RETRY, else ABORT; §5.4). */
export function resumeActionOf(code: number): number {
  return code === 0 ? ResumeAction.RETRY : ResumeAction.ABORT;
}
