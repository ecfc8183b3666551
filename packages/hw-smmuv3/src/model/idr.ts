/**
 * ID register values (smmuv3.md §1.2) computed from a feature set, bit-exact.
 *
 * Fixed choices (not options):
 * - IDR0.TTF = 2 (AArch64 tables only), TTENDIAN = 2 (little-endian only), DORMHINT/ATOS/VATOS/
 *   VMW/ATSRECERR/RME_IMPL = 0.
 * - IDR0.NS1ATS = 1 when ATS and both stages are supported: split-stage ATS (STE.EATS = 0b10) is
 *   **not** supported (Linux never uses it); RES0 (0) otherwise (IHI 0070 §6.3.1).
 * - IDR1: ATTR_PERMS_OVR = ATTR_TYPES_OVR = 0 (no attribute overrides, so Linux writes SHCFG = 0),
 *   REL = QUEUES_PRESET = TABLES_PRESET = ECMDQ = 0 (Linux refuses the first three).
 *   PRIQS = 0 when PRI is not supported.
 * - IDR2 = 0 (no VATOS), IDR4 = 0 (IMPLEMENTATION DEFINED, nothing).
 * - IDR3: BBML = 2 (Level 2) from SMMUv3.2 (AIDR ≥ 0x02), 0 before (IHI 0070 §6.3.4: "BBML is 0b01 or
 *   0b10 in an implementation of SMMUv3.2 or later"). The model behaves as Level 2 (§3.21.1.3): the nT
 *   bit is ignored, a TLB lookup uses one matching entry, F_TLB_CONFLICT is never raised.
 * - IDR3: PBHA/PPS/MPAM/E0PD/PTWNNC/DPT = 0.
 * - IDR5: VAX = 1 for 52-bit VA, STALL_MAX = `stallMax` when stalls are supported, else 0.
 */
import {
  IDR0_ASID16,
  IDR0_ATS,
  IDR0_BTM,
  IDR0_CD2L,
  IDR0_COHACC,
  IDR0_HTTU_SHIFT,
  IDR0_HYP,
  IDR0_MSI,
  IDR0_NS1ATS,
  IDR0_PRI,
  IDR0_S1P,
  IDR0_S2P,
  IDR0_SEV,
  IDR0_STALL_MODEL_SHIFT,
  IDR0_ST_LEVEL_SHIFT,
  IDR0_TERM_MODEL,
  IDR0_TTENDIAN_SHIFT,
  IDR0_TTF_AARCH64,
  IDR0_TTF_SHIFT,
  IDR0_VMID16,
  IDR1_CMDQS_SHIFT,
  IDR1_EVTQS_SHIFT,
  IDR1_PRIQS_SHIFT,
  IDR1_SIDSIZE_SHIFT,
  IDR1_SSIDSIZE_SHIFT,
  IDR3_FWB,
  IDR3_HAD,
  IDR3_RIL,
  IDR3_STT,
  IDR3_XNX,
  IDR3_BBML_SHIFT,
  IDR5_GRAN16K,
  IDR5_GRAN4K,
  IDR5_GRAN64K,
  IDR5_OAS_SHIFT,
  IDR5_STALL_MAX_SHIFT,
  IDR5_VAX_SHIFT,
  STALL_MODEL_FORCED,
  STALL_MODEL_STALL_AND_TERM,
  STALL_MODEL_TERM_ONLY,
  ST_LEVEL_2LVL,
  ST_LEVEL_LINEAR,
  TTENDIAN_LE,
  oasEncoding,
} from '../codec/index.js';
import { aidrAtLeast, type SmmuFeatures } from './features.js';

/** IDR3.BBML value of Level 2 (IHI 0070 §6.3.4). */
const BBML_LEVEL2 = 0b10;

/** The read-only identification registers of one SMMU (unsigned 32-bit values). */
export interface IdrValues {
  readonly idr0: number;
  readonly idr1: number;
  readonly idr2: number;
  readonly idr3: number;
  readonly idr4: number;
  readonly idr5: number;
  readonly iidr: number;
  readonly aidr: number;
}

/** IDR0.STALL_MODEL encoding of a stall model name. */
export function stallModelEncoding(stall: SmmuFeatures['stall']): number {
  return stall === 'stall' ? STALL_MODEL_STALL_AND_TERM : stall === 'none' ? STALL_MODEL_TERM_ONLY : STALL_MODEL_FORCED;
}

/** Computes IDR0..IDR5, IIDR and AIDR for `f` (§1.2), bit-exact. */
export function idrRegisters(f: SmmuFeatures): IdrValues {
  let idr0 = 0;
  if (f.stage2) idr0 |= IDR0_S2P;
  if (f.stage1) idr0 |= IDR0_S1P;
  idr0 |= IDR0_TTF_AARCH64 << IDR0_TTF_SHIFT;
  if (f.coherent) idr0 |= IDR0_COHACC;
  if (f.btm) idr0 |= IDR0_BTM;
  idr0 |= f.httu << IDR0_HTTU_SHIFT;
  if (f.hyp) idr0 |= IDR0_HYP;
  if (f.ats) idr0 |= IDR0_ATS;
  // IHI 0070 §6.3.1: NS1ATS is RES0 when ATS == 0 or S1P == 0 or S2P == 0.
  if (f.ats && f.stage1 && f.stage2) idr0 |= IDR0_NS1ATS;
  if (f.asid16) idr0 |= IDR0_ASID16;
  if (f.msi) idr0 |= IDR0_MSI;
  if (f.sev) idr0 |= IDR0_SEV;
  if (f.pri) idr0 |= IDR0_PRI;
  if (f.vmid16) idr0 |= IDR0_VMID16;
  if (f.cd2l) idr0 |= IDR0_CD2L;
  idr0 |= TTENDIAN_LE << IDR0_TTENDIAN_SHIFT;
  idr0 |= stallModelEncoding(f.stall) << IDR0_STALL_MODEL_SHIFT;
  if (f.termModel === 1) idr0 |= IDR0_TERM_MODEL;
  idr0 |= (f.st2lvl ? ST_LEVEL_2LVL : ST_LEVEL_LINEAR) << IDR0_ST_LEVEL_SHIFT;

  const idr1 =
    (f.sidBits << IDR1_SIDSIZE_SHIFT) |
    (f.ssidBits << IDR1_SSIDSIZE_SHIFT) |
    ((f.pri ? f.priqLog2 : 0) << IDR1_PRIQS_SHIFT) |
    (f.evtqLog2 << IDR1_EVTQS_SHIFT) |
    (f.cmdqLog2 << IDR1_CMDQS_SHIFT);

  let idr3 = 0;
  if (f.had) idr3 |= IDR3_HAD;
  if (f.xnx) idr3 |= IDR3_XNX;
  if (aidrAtLeast(f.aidr, 2)) idr3 |= BBML_LEVEL2 << IDR3_BBML_SHIFT;
  if (f.fwb) idr3 |= IDR3_FWB;
  if (f.stt) idr3 |= IDR3_STT;
  if (f.ril) idr3 |= IDR3_RIL;

  let idr5 = oasEncoding(f.oas) << IDR5_OAS_SHIFT;
  if (f.granules['4k']) idr5 |= IDR5_GRAN4K;
  if (f.granules['16k']) idr5 |= IDR5_GRAN16K;
  if (f.granules['64k']) idr5 |= IDR5_GRAN64K;
  if (f.vax) idr5 |= 1 << IDR5_VAX_SHIFT;
  if (f.stall !== 'none') idr5 |= f.stallMax << IDR5_STALL_MAX_SHIFT;

  return Object.freeze({
    idr0: idr0 >>> 0,
    idr1: idr1 >>> 0,
    idr2: 0,
    idr3: idr3 >>> 0,
    idr4: 0,
    idr5: idr5 >>> 0,
    iidr: f.iidr >>> 0,
    aidr: f.aidr >>> 0,
  });
}
