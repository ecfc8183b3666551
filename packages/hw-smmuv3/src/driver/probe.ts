/**
 * Probe and reset, as Linux's `arm_smmu_device_hw_probe` and `arm_smmu_device_reset`
 * (smmuv3.md §1.2, §1.6): the ID registers are read and checked against what Linux refuses, then
 * the SMMU is reset and enabled with the exact register sequence of §1.6.
 */
import { IommuError } from '@iommulab/driver-api';
import { RuntimeError, waitUntil, type RegisterFile } from '@iommulab/runtime';
import {
  CR0_ATSCHK,
  CR0_CMDQEN,
  CR0_EVTQEN,
  CR0_PRIQEN,
  CR0_SMMUEN,
  CR1_LINUX,
  CR2_PTM,
  CR2_RECINVSID,
  CmdOp,
  GBPA_ABORT,
  GBPA_UPDATE,
  IDR0_ASID16,
  IDR0_ATS,
  IDR0_BTM,
  IDR0_CD2L,
  IDR0_COHACC,
  IDR0_HTTU_MASK,
  IDR0_HTTU_SHIFT,
  IDR0_HYP,
  IDR0_MSI,
  IDR0_PRI,
  IDR0_S1P,
  IDR0_S2P,
  IDR0_SEV,
  IDR0_STALL_MODEL_MASK,
  IDR0_STALL_MODEL_SHIFT,
  IDR0_ST_LEVEL_MASK,
  IDR0_ST_LEVEL_SHIFT,
  IDR0_TERM_MODEL,
  IDR0_TTENDIAN_MASK,
  IDR0_TTENDIAN_SHIFT,
  IDR0_TTF_AARCH64,
  IDR0_TTF_BOTH,
  IDR0_TTF_MASK,
  IDR0_TTF_SHIFT,
  IDR0_VMID16,
  IDR1_ATTR_TYPES_OVR,
  IDR1_CMDQS_MASK,
  IDR1_CMDQS_SHIFT,
  IDR1_EVTQS_MASK,
  IDR1_EVTQS_SHIFT,
  IDR1_PRIQS_MASK,
  IDR1_PRIQS_SHIFT,
  IDR1_QUEUES_PRESET,
  IDR1_REL,
  IDR1_SIDSIZE_MASK,
  IDR1_SIDSIZE_SHIFT,
  IDR1_SSIDSIZE_MASK,
  IDR1_SSIDSIZE_SHIFT,
  IDR1_TABLES_PRESET,
  IDR3_BBML_MASK,
  IDR3_BBML_SHIFT,
  IDR3_FWB,
  IDR3_HAD,
  IDR3_RIL,
  IDR3_STT,
  IDR5_GRAN16K,
  IDR5_GRAN4K,
  IDR5_GRAN64K,
  IDR5_OAS_MASK,
  IDR5_OAS_SHIFT,
  IDR5_STALL_MAX_MASK,
  IDR5_STALL_MAX_SHIFT,
  IDR5_VAX_MASK,
  IDR5_VAX_SHIFT,
  IRQ_CTRL_EVTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  IRQ_CTRL_PRIQ_IRQEN,
  OAS_BITS,
  Q_BASE_RWA_HI,
  SMMU_AIDR,
  SMMU_CMDQ_BASE,
  SMMU_CMDQ_CONS,
  SMMU_CMDQ_PROD,
  SMMU_CR0,
  SMMU_CR0ACK,
  SMMU_CR1,
  SMMU_CR2,
  SMMU_EVTQ_BASE,
  SMMU_EVTQ_CONS,
  SMMU_EVTQ_IRQ_CFG0,
  SMMU_EVTQ_PROD,
  SMMU_GBPA,
  SMMU_GERROR_IRQ_CFG0,
  SMMU_IDR0,
  SMMU_IDR1,
  SMMU_IDR2,
  SMMU_IDR3,
  SMMU_IDR4,
  SMMU_IDR5,
  SMMU_IIDR,
  SMMU_IRQ_CTRL,
  SMMU_IRQ_CTRLACK,
  SMMU_PRIQ_BASE,
  SMMU_PRIQ_CONS,
  SMMU_PRIQ_IRQ_CFG0,
  SMMU_PRIQ_PROD,
  SMMU_STRTAB_BASE,
  SMMU_STRTAB_BASE_CFG,
  STALL_MODEL_FORCED,
  STALL_MODEL_STALL_AND_TERM,
  STRTAB_BASE_RA_HI,
  STRTAB_SPLIT_LINUX,
  ST_LEVEL_2LVL,
  TTENDIAN_LE,
  TTENDIAN_MIXED,
} from '../codec/index.js';
import { cmdCfgiAll, cmdOpOnly } from './cmd-build.js';
import type { SmmuCmdq } from './cmdq.js';

/** Linux `CMDQ_BATCH_ENTRIES` (BITS_PER_LONG): the CMDQ must hold more than this (CMDQS ≥ 7). */
export const CMDQ_BATCH_ENTRIES = 64;
/** Linux `STRTAB_MAX_L1_ENTRIES`: the 2-level stream table covers at most 2^17 L1 entries. */
export const STRTAB_MAX_L1_ENTRIES = 1 << 17;
/** Linux `CTXDESC_LINEAR_CDMAX`: without CD2L the CD table is linear, at most 2^10 CDs. */
export const CTXDESC_LINEAR_CDMAX = 10;

/** What the driver learnt from the ID registers (Linux `smmu->features` and sizes). */
export interface SmmuProbe {
  /** Raw IDR0..IDR5. */
  readonly idr: readonly number[];
  readonly iidr: number;
  readonly aidr: number;
  /** ARM_SMMU_FEAT_TRANS_S1 / _S2 / _NESTING. */
  readonly s1: boolean;
  readonly s2: boolean;
  readonly nesting: boolean;
  /** ARM_SMMU_FEAT_2_LVL_STRTAB (ST_LEVEL = 1 and SIDSIZE > 8). */
  readonly twoLevelStrtab: boolean;
  /** ARM_SMMU_FEAT_2_LVL_CDTAB. */
  readonly twoLevelCd: boolean;
  /** ARM_SMMU_FEAT_COHERENCY (IDR0.COHACC). */
  readonly coherent: boolean;
  readonly btm: boolean;
  /** IDR0.HTTU: 0 none, 1 HA, 2 HA + HD. */
  readonly httu: number;
  readonly hyp: boolean;
  readonly ats: boolean;
  readonly pri: boolean;
  readonly msi: boolean;
  readonly sev: boolean;
  /** ARM_SMMU_OPT_MSIPOLL: MSI && COHACC (and not disabled by the driver option). */
  readonly msiPoll: boolean;
  readonly asidBits: 8 | 16;
  readonly vmidBits: 8 | 16;
  /** ARM_SMMU_FEAT_STALLS (STALL_MODEL 0 or 2) and _STALL_FORCE (2). */
  readonly stalls: boolean;
  readonly stallForce: boolean;
  readonly termModel: boolean;
  readonly attrTypesOvr: boolean;
  readonly sidBits: number;
  readonly ssidBits: number;
  readonly cmdqMaxLog2: number;
  readonly evtqMaxLog2: number;
  readonly priqMaxLog2: number;
  /** ARM_SMMU_FEAT_RANGE_INV. */
  readonly ril: boolean;
  readonly fwb: boolean;
  readonly had: boolean;
  readonly stt: boolean;
  readonly bbml: number;
  /** Output address size in bits (IDR5.OAS; unknown encodings → 48, as Linux). */
  readonly oas: number;
  /** Linux `smmu->ias` = max(40 if TTF = both else 0, oas): the stage-2 input size. */
  readonly ias: number;
  readonly vax: boolean;
  readonly gran4k: boolean;
  readonly gran16k: boolean;
  readonly gran64k: boolean;
  /** The translation granule domains use: the smallest supported (a 4 KiB-page host, as Linux). */
  readonly granule: 4096 | 16384 | 65536;
  /** Page sizes of that granule (Linux pgsize_bitmap restricted to it), ascending. */
  readonly pageSizes: readonly number[];
  readonly stallMax: number;
}

function refuse(instanceId: string, why: string): never {
  throw new IommuError('ENODEV', `instance ${instanceId}: ${why}`);
}

/** Page sizes of a granule (§7.1 Linux pgsize bitmaps). */
export function granulePageSizes(granule: number): number[] {
  if (granule === 4096) return [4096, 2 ** 21, 2 ** 30];
  if (granule === 16384) return [16384, 2 ** 25];
  return [65536, 2 ** 29];
}

/**
 * Reads IDR0..5, IIDR and AIDR and decodes them as Linux does; refuses (ENODEV, with the reason)
 * what Linux refuses: no S1P/S2P, no AArch64 table format, big-endian-only or reserved
 * TTENDIAN, REL / QUEUES_PRESET / TABLES_PRESET, CMDQS < 7; and (a model of no use to Linux)
 * no translation granule.
 * @throws IommuError ENODEV
 */
export function probeIdrs(regs: RegisterFile, instanceId: string, opts: { msiPoll?: boolean } = {}): SmmuProbe {
  const idr = [SMMU_IDR0, SMMU_IDR1, SMMU_IDR2, SMMU_IDR3, SMMU_IDR4, SMMU_IDR5].map((o) => regs.read32(o));
  const [idr0, idr1, , idr3, , idr5] = idr as [number, number, number, number, number, number];
  const iidr = regs.read32(SMMU_IIDR);
  const aidr = regs.read32(SMMU_AIDR);
  const s1 = (idr0 & IDR0_S1P) !== 0;
  const s2 = (idr0 & IDR0_S2P) !== 0;
  if (!s1 && !s2) refuse(instanceId, 'no translation support! (IDR0.S1P = S2P = 0)');
  const ttf = (idr0 >>> IDR0_TTF_SHIFT) & IDR0_TTF_MASK;
  let ias = 0;
  if (ttf === IDR0_TTF_BOTH) ias = 40;
  else if (ttf !== IDR0_TTF_AARCH64) refuse(instanceId, `AArch64 table format not supported! (IDR0.TTF = ${ttf})`);
  const endian = (idr0 >>> IDR0_TTENDIAN_SHIFT) & IDR0_TTENDIAN_MASK;
  if (endian !== TTENDIAN_MIXED && endian !== TTENDIAN_LE) {
    refuse(instanceId, `unknown/unsupported TT endianness! (IDR0.TTENDIAN = ${endian})`);
  }
  if (idr1 & (IDR1_TABLES_PRESET | IDR1_QUEUES_PRESET | IDR1_REL)) {
    refuse(instanceId, `embedded implementation not supported (IDR1 = 0x${(idr1 >>> 0).toString(16)}: REL / QUEUES_PRESET / TABLES_PRESET)`);
  }
  const cmdqMaxLog2 = (idr1 >>> IDR1_CMDQS_SHIFT) & IDR1_CMDQS_MASK;
  if (cmdqMaxLog2 <= Math.log2(CMDQ_BATCH_ENTRIES)) {
    refuse(instanceId, `command queue size <= ${CMDQ_BATCH_ENTRIES} entries not supported (IDR1.CMDQS = ${cmdqMaxLog2})`);
  }
  const gran4k = (idr5 & IDR5_GRAN4K) !== 0;
  const gran16k = (idr5 & IDR5_GRAN16K) !== 0;
  const gran64k = (idr5 & IDR5_GRAN64K) !== 0;
  if (!gran4k && !gran16k && !gran64k) refuse(instanceId, 'no translation granule (IDR5.GRAN4K/16K/64K = 0)');
  const granule = gran4k ? 4096 : gran16k ? 16384 : 65536;
  const oasEnc = (idr5 >>> IDR5_OAS_SHIFT) & IDR5_OAS_MASK;
  const oas = oasEnc < OAS_BITS.length ? OAS_BITS[oasEnc] : 48;
  ias = Math.max(ias, oas);
  const stallModel = (idr0 >>> IDR0_STALL_MODEL_SHIFT) & IDR0_STALL_MODEL_MASK;
  const sidBits = (idr1 >>> IDR1_SIDSIZE_SHIFT) & IDR1_SIDSIZE_MASK;
  const stLevel = (idr0 >>> IDR0_ST_LEVEL_SHIFT) & IDR0_ST_LEVEL_MASK;
  const msi = (idr0 & IDR0_MSI) !== 0;
  const coherent = (idr0 & IDR0_COHACC) !== 0;
  return {
    idr,
    iidr,
    aidr,
    s1,
    s2,
    nesting: s1 && s2,
    twoLevelStrtab: stLevel === ST_LEVEL_2LVL && sidBits > STRTAB_SPLIT_LINUX,
    twoLevelCd: (idr0 & IDR0_CD2L) !== 0,
    coherent,
    btm: (idr0 & IDR0_BTM) !== 0,
    httu: (idr0 >>> IDR0_HTTU_SHIFT) & IDR0_HTTU_MASK,
    hyp: (idr0 & IDR0_HYP) !== 0,
    ats: (idr0 & IDR0_ATS) !== 0,
    pri: (idr0 & IDR0_PRI) !== 0,
    msi,
    sev: (idr0 & IDR0_SEV) !== 0,
    msiPoll: msi && coherent && opts.msiPoll !== false,
    asidBits: idr0 & IDR0_ASID16 ? 16 : 8,
    vmidBits: idr0 & IDR0_VMID16 ? 16 : 8,
    stalls: stallModel === STALL_MODEL_STALL_AND_TERM || stallModel === STALL_MODEL_FORCED,
    stallForce: stallModel === STALL_MODEL_FORCED,
    termModel: (idr0 & IDR0_TERM_MODEL) !== 0,
    attrTypesOvr: (idr1 & IDR1_ATTR_TYPES_OVR) !== 0,
    sidBits,
    ssidBits: (idr1 >>> IDR1_SSIDSIZE_SHIFT) & IDR1_SSIDSIZE_MASK,
    cmdqMaxLog2,
    evtqMaxLog2: (idr1 >>> IDR1_EVTQS_SHIFT) & IDR1_EVTQS_MASK,
    priqMaxLog2: (idr1 >>> IDR1_PRIQS_SHIFT) & IDR1_PRIQS_MASK,
    ril: (idr3 & IDR3_RIL) !== 0,
    fwb: (idr3 & IDR3_FWB) !== 0,
    had: (idr3 & IDR3_HAD) !== 0,
    stt: (idr3 & IDR3_STT) !== 0,
    bbml: (idr3 >>> IDR3_BBML_SHIFT) & IDR3_BBML_MASK,
    oas,
    ias,
    vax: ((idr5 >>> IDR5_VAX_SHIFT) & IDR5_VAX_MASK) === 1,
    gran4k,
    gran16k,
    gran64k,
    granule,
    pageSizes: granulePageSizes(granule),
    stallMax: (idr5 >>> IDR5_STALL_MAX_SHIFT) & IDR5_STALL_MAX_MASK,
  };
}

/** Where the driver put its stream table and queues (register values of §1.4, §1.5). */
export interface SmmuLayout {
  /** Stream table PA and STRTAB_BASE_CFG value. */
  readonly strtabPa: number;
  readonly strtabBaseCfg: number;
  readonly cmdqPa: number;
  readonly cmdqLog2: number;
  readonly evtqPa: number;
  readonly evtqLog2: number;
  /** PRI queue (present when IDR0.PRI). */
  readonly priqPa: number;
  readonly priqLog2: number;
}

/** What the reset sequence needs besides the layout. */
export interface ResetEnv {
  readonly instanceId: string;
  readonly regs: RegisterFile;
  readonly timeoutMs: number;
}

async function pollReg(env: ResetEnv, pred: () => boolean, what: string): Promise<void> {
  try {
    await waitUntil(pred, { timeoutMs: env.timeoutMs, what });
  } catch (e) {
    if (e instanceof RuntimeError && e.code === 'TIMEOUT') {
      throw new IommuError('ETIMEDOUT', `instance ${env.instanceId}: ${what} (no answer within ${env.timeoutMs} ms)`, { cause: e });
    }
    throw e;
  }
}

/**
 * Linux `arm_smmu_write_reg_sync`: writes `val` to `reg` and polls `ackReg` until it reads `val`.
 * @throws IommuError ETIMEDOUT
 */
export async function writeRegSync(env: ResetEnv, reg: number, ackReg: number, val: number): Promise<void> {
  env.regs.write32(reg, val);
  const regs = env.regs;
  if (regs.read32(ackReg) === val >>> 0) return;
  await pollReg(env, () => regs.read32(ackReg) === val >>> 0, `register 0x${ackReg.toString(16)} acknowledging 0x${(val >>> 0).toString(16)}`);
}

/**
 * Linux `arm_smmu_update_gbpa`: waits for GBPA.UPDATE = 0, writes `(GBPA & ~clr | set) | UPDATE`,
 * waits for UPDATE = 0 again.
 * @throws IommuError ETIMEDOUT
 */
export async function updateGbpa(env: ResetEnv, set: number, clr: number): Promise<void> {
  const regs = env.regs;
  const idle = (): boolean => (regs.read32(SMMU_GBPA) & GBPA_UPDATE) === 0;
  if (!idle()) await pollReg(env, idle, 'GBPA.UPDATE clear');
  const reg = ((regs.read32(SMMU_GBPA) & ~clr) | set) >>> 0;
  regs.write32(SMMU_GBPA, (reg | GBPA_UPDATE) >>> 0);
  if (!idle()) await pollReg(env, idle, 'GBPA not responding to update');
}

/**
 * `arm_smmu_device_reset` (§1.6): GBPA.ABORT if enabled, CR0 = 0, CR1, CR2, stream table, CMDQ
 * (enable, CFGI_ALL + SYNC, TLBI_EL2_ALL + SYNC if HYP, TLBI_NSNH_ALL + SYNC), EVTQ, PRIQ, ATSCHK,
 * IRQ_CTRL (off, wired interrupts: IRQ_CFG0 = 0, on), SMMUEN. Each CR0 / IRQ_CTRL write waits for
 * its ACK, bounded by `timeoutMs`. Returns the final CR0 value.
 * @throws IommuError ETIMEDOUT
 */
export async function resetSmmu(env: ResetEnv, f: SmmuProbe, layout: SmmuLayout, cmdq: SmmuCmdq): Promise<number> {
  const regs = env.regs;
  // 3. Clear CR0 (first abort incoming transactions if the SMMU is live).
  if (regs.read32(SMMU_CR0) & CR0_SMMUEN) await updateGbpa(env, GBPA_ABORT, 0);
  await writeRegSync(env, SMMU_CR0, SMMU_CR0ACK, 0);
  // 4. CR1 (table and queue attributes: ISH / WB / WB) and CR2 (PTM | RECINVSID; no E2H).
  regs.write32(SMMU_CR1, CR1_LINUX);
  regs.write32(SMMU_CR2, CR2_PTM | CR2_RECINVSID);
  // 5. Stream table.
  regs.write64Parts(SMMU_STRTAB_BASE, layout.strtabPa & 0xffffffc0, STRTAB_BASE_RA_HI);
  regs.write32(SMMU_STRTAB_BASE_CFG, layout.strtabBaseCfg);
  // 6. Command queue.
  regs.write64Parts(SMMU_CMDQ_BASE, ((layout.cmdqPa & 0xffffffe0) | layout.cmdqLog2) >>> 0, Q_BASE_RWA_HI);
  regs.write32(SMMU_CMDQ_PROD, 0);
  regs.write32(SMMU_CMDQ_CONS, 0);
  let enables = CR0_CMDQEN;
  await writeRegSync(env, SMMU_CR0, SMMU_CR0ACK, enables);
  // 7. Invalidate cached configuration and stale TLB entries.
  await cmdq.submit(1, (u32, w) => cmdCfgiAll(u32, w));
  if (f.hyp) await cmdq.submit(1, (u32, w) => cmdOpOnly(u32, w, CmdOp.TLBI_EL2_ALL));
  await cmdq.submit(1, (u32, w) => cmdOpOnly(u32, w, CmdOp.TLBI_NSNH_ALL));
  // 8. Event queue (PROD / CONS in page 1).
  regs.write64Parts(SMMU_EVTQ_BASE, ((layout.evtqPa & 0xffffffe0) | layout.evtqLog2) >>> 0, Q_BASE_RWA_HI);
  regs.write32(SMMU_EVTQ_PROD, 0);
  regs.write32(SMMU_EVTQ_CONS, 0);
  enables |= CR0_EVTQEN;
  await writeRegSync(env, SMMU_CR0, SMMU_CR0ACK, enables);
  // 9. PRI queue, ATS check.
  if (f.pri) {
    regs.write64Parts(SMMU_PRIQ_BASE, ((layout.priqPa & 0xffffffe0) | layout.priqLog2) >>> 0, Q_BASE_RWA_HI);
    regs.write32(SMMU_PRIQ_PROD, 0);
    regs.write32(SMMU_PRIQ_CONS, 0);
    enables |= CR0_PRIQEN;
    await writeRegSync(env, SMMU_CR0, SMMU_CR0ACK, enables);
  }
  if (f.ats) {
    enables |= CR0_ATSCHK;
    await writeRegSync(env, SMMU_CR0, SMMU_CR0ACK, enables);
  }
  // 10. Interrupts: off, wired lines (no MSI doorbells: IRQ_CFG0 = 0), on.
  await writeRegSync(env, SMMU_IRQ_CTRL, SMMU_IRQ_CTRLACK, 0);
  regs.write64Parts(SMMU_GERROR_IRQ_CFG0, 0, 0);
  regs.write64Parts(SMMU_EVTQ_IRQ_CFG0, 0, 0);
  if (f.pri) regs.write64Parts(SMMU_PRIQ_IRQ_CFG0, 0, 0);
  const irqen = IRQ_CTRL_EVTQ_IRQEN | IRQ_CTRL_GERROR_IRQEN | (f.pri ? IRQ_CTRL_PRIQ_IRQEN : 0);
  await writeRegSync(env, SMMU_IRQ_CTRL, SMMU_IRQ_CTRLACK, irqen);
  // 11. Enable translation.
  enables |= CR0_SMMUEN;
  await writeRegSync(env, SMMU_CR0, SMMU_CR0ACK, enables);
  return enables;
}

/**
 * Linux `arm_smmu_device_disable` (shutdown): CR0 = 0 and wait for the ACK.
 * @throws IommuError ETIMEDOUT
 */
export async function disableSmmu(env: ResetEnv): Promise<void> {
  await writeRegSync(env, SMMU_CR0, SMMU_CR0ACK, 0);
}
