/**
 * SMMUv3 register map (smmuv3.md §1): offsets in the 128 KiB block (page 0 at 0, page 1 at
 * 0x10000) and register fields. 32-bit fields are `[shift, width]` pairs named `<REG>_<FIELD>`
 * (`_SHIFT` / `_MASK` for multi-bit fields, a bit value for one-bit fields).
 */

/** Size of the register block: two 64 KiB pages. */
export const SMMU_REG_BYTES = 0x20000;
/** Offset of page 1. */
export const SMMU_PAGE1 = 0x10000;

// §1.1 register offsets
export const SMMU_IDR0 = 0x000;
export const SMMU_IDR1 = 0x004;
export const SMMU_IDR2 = 0x008;
export const SMMU_IDR3 = 0x00c;
export const SMMU_IDR4 = 0x010;
export const SMMU_IDR5 = 0x014;
export const SMMU_IIDR = 0x018;
export const SMMU_AIDR = 0x01c;
export const SMMU_CR0 = 0x020;
export const SMMU_CR0ACK = 0x024;
export const SMMU_CR1 = 0x028;
export const SMMU_CR2 = 0x02c;
export const SMMU_STATUSR = 0x040;
export const SMMU_GBPA = 0x044;
export const SMMU_AGBPA = 0x048;
export const SMMU_IRQ_CTRL = 0x050;
export const SMMU_IRQ_CTRLACK = 0x054;
export const SMMU_GERROR = 0x060;
export const SMMU_GERRORN = 0x064;
export const SMMU_GERROR_IRQ_CFG0 = 0x068;
export const SMMU_GERROR_IRQ_CFG1 = 0x070;
export const SMMU_GERROR_IRQ_CFG2 = 0x074;
export const SMMU_STRTAB_BASE = 0x080;
export const SMMU_STRTAB_BASE_CFG = 0x088;
export const SMMU_CMDQ_BASE = 0x090;
export const SMMU_CMDQ_PROD = 0x098;
export const SMMU_CMDQ_CONS = 0x09c;
export const SMMU_EVTQ_BASE = 0x0a0;
/** EVTQ_PROD lives in page 1 only. */
export const SMMU_EVTQ_PROD = 0x100a8;
/** EVTQ_CONS lives in page 1 only. */
export const SMMU_EVTQ_CONS = 0x100ac;
export const SMMU_EVTQ_IRQ_CFG0 = 0x0b0;
export const SMMU_EVTQ_IRQ_CFG1 = 0x0b8;
export const SMMU_EVTQ_IRQ_CFG2 = 0x0bc;
export const SMMU_PRIQ_BASE = 0x0c0;
/** PRIQ_PROD lives in page 1 only. */
export const SMMU_PRIQ_PROD = 0x100c8;
/** PRIQ_CONS lives in page 1 only. */
export const SMMU_PRIQ_CONS = 0x100cc;
export const SMMU_PRIQ_IRQ_CFG0 = 0x0d0;
export const SMMU_PRIQ_IRQ_CFG1 = 0x0d8;
export const SMMU_PRIQ_IRQ_CFG2 = 0x0dc;
/** PIDR4 (first of the CoreSight ID registers at 0xFD0..0xFFC). */
export const SMMU_PIDR4 = 0xfd0;

// §1.2 IDR0
export const IDR0_S2P = 1 << 0;
export const IDR0_S1P = 1 << 1;
export const IDR0_TTF_SHIFT = 2;
export const IDR0_TTF_MASK = 0x3;
export const IDR0_TTF_AARCH32 = 1;
export const IDR0_TTF_AARCH64 = 2;
export const IDR0_TTF_BOTH = 3;
export const IDR0_COHACC = 1 << 4;
export const IDR0_BTM = 1 << 5;
export const IDR0_HTTU_SHIFT = 6;
export const IDR0_HTTU_MASK = 0x3;
/** HTTU encodings: none, access flag, access flag + dirty. */
export const HTTU_NONE = 0;
export const HTTU_AF = 1;
export const HTTU_AF_DIRTY = 2;
export const IDR0_DORMHINT = 1 << 8;
export const IDR0_HYP = 1 << 9;
export const IDR0_ATS = 1 << 10;
export const IDR0_NS1ATS = 1 << 11;
export const IDR0_ASID16 = 1 << 12;
export const IDR0_MSI = 1 << 13;
export const IDR0_SEV = 1 << 14;
export const IDR0_ATOS = 1 << 15;
export const IDR0_PRI = 1 << 16;
export const IDR0_VMW = 1 << 17;
export const IDR0_VMID16 = 1 << 18;
export const IDR0_CD2L = 1 << 19;
export const IDR0_VATOS = 1 << 20;
export const IDR0_TTENDIAN_SHIFT = 21;
export const IDR0_TTENDIAN_MASK = 0x3;
export const TTENDIAN_MIXED = 0;
export const TTENDIAN_LE = 2;
export const TTENDIAN_BE = 3;
export const IDR0_ATSRECERR = 1 << 23;
export const IDR0_STALL_MODEL_SHIFT = 24;
export const IDR0_STALL_MODEL_MASK = 0x3;
/** STALL_MODEL encodings. */
export const STALL_MODEL_STALL_AND_TERM = 0;
export const STALL_MODEL_TERM_ONLY = 1;
export const STALL_MODEL_FORCED = 2;
export const IDR0_TERM_MODEL = 1 << 26;
export const IDR0_ST_LEVEL_SHIFT = 27;
export const IDR0_ST_LEVEL_MASK = 0x3;
export const ST_LEVEL_LINEAR = 0;
export const ST_LEVEL_2LVL = 1;

// IDR1
export const IDR1_SIDSIZE_SHIFT = 0;
export const IDR1_SIDSIZE_MASK = 0x3f;
export const IDR1_SSIDSIZE_SHIFT = 6;
export const IDR1_SSIDSIZE_MASK = 0x1f;
export const IDR1_PRIQS_SHIFT = 11;
export const IDR1_PRIQS_MASK = 0x1f;
export const IDR1_EVTQS_SHIFT = 16;
export const IDR1_EVTQS_MASK = 0x1f;
export const IDR1_CMDQS_SHIFT = 21;
export const IDR1_CMDQS_MASK = 0x1f;
export const IDR1_ATTR_PERMS_OVR = 1 << 26;
export const IDR1_ATTR_TYPES_OVR = 1 << 27;
export const IDR1_REL = 1 << 28;
export const IDR1_QUEUES_PRESET = 1 << 29;
export const IDR1_TABLES_PRESET = 1 << 30;
export const IDR1_ECMDQ = 1 << 31;

// IDR3
export const IDR3_HAD = 1 << 2;
export const IDR3_PBHA = 1 << 3;
export const IDR3_XNX = 1 << 4;
export const IDR3_PPS = 1 << 5;
export const IDR3_MPAM = 1 << 7;
export const IDR3_FWB = 1 << 8;
export const IDR3_STT = 1 << 9;
export const IDR3_RIL = 1 << 10;
export const IDR3_BBML_SHIFT = 11;
export const IDR3_BBML_MASK = 0x3;

// IDR5
export const IDR5_OAS_SHIFT = 0;
export const IDR5_OAS_MASK = 0x7;
export const IDR5_GRAN4K = 1 << 4;
export const IDR5_GRAN16K = 1 << 5;
export const IDR5_GRAN64K = 1 << 6;
export const IDR5_VAX_SHIFT = 10;
export const IDR5_VAX_MASK = 0x3;
export const IDR5_STALL_MAX_SHIFT = 16;
export const IDR5_STALL_MAX_MASK = 0xffff;

/** OAS / IPS / S2PS encoding → address bits (§1.2 IDR5.OAS); index 7 is reserved. */
export const OAS_BITS: readonly number[] = [32, 36, 40, 42, 44, 48, 52];
/** Address bits → OAS encoding (-1 when not encodable). */
export function oasEncoding(bits: number): number {
  return OAS_BITS.indexOf(bits);
}

// IIDR / AIDR
export const IIDR_IMPLEMENTER_SHIFT = 0;
export const IIDR_REVISION_SHIFT = 12;
export const IIDR_VARIANT_SHIFT = 16;
export const IIDR_PRODUCTID_SHIFT = 20;
export const AIDR_MINOR_SHIFT = 0;
export const AIDR_MAJOR_SHIFT = 4;

// §1.3 CR0 / CR0ACK
export const CR0_SMMUEN = 1 << 0;
export const CR0_PRIQEN = 1 << 1;
export const CR0_EVTQEN = 1 << 2;
export const CR0_CMDQEN = 1 << 3;
export const CR0_ATSCHK = 1 << 4;
export const CR0_VMW_SHIFT = 6;
export const CR0_VMW_MASK = 0x7;
/** Writable CR0 bits; the rest are RES0. */
export const CR0_WRITABLE = 0x1df;

// CR1
export const CR1_QUEUE_IC_SHIFT = 0;
export const CR1_QUEUE_OC_SHIFT = 2;
export const CR1_QUEUE_SH_SHIFT = 4;
export const CR1_TABLE_IC_SHIFT = 6;
export const CR1_TABLE_OC_SHIFT = 8;
export const CR1_TABLE_SH_SHIFT = 10;
/** What Linux writes: all ISH / WB / WB. */
export const CR1_LINUX = 0xd75;

// CR2
export const CR2_E2H = 1 << 0;
export const CR2_RECINVSID = 1 << 1;
export const CR2_PTM = 1 << 2;

// GBPA
export const GBPA_UPDATE = 0x80000000;
export const GBPA_ABORT = 1 << 20;
export const GBPA_MEMATTR_SHIFT = 0;
export const GBPA_MTCFG = 1 << 4;
export const GBPA_ALLOCCFG_SHIFT = 8;
export const GBPA_SHCFG_SHIFT = 12;
export const GBPA_NSCFG_SHIFT = 14;
export const GBPA_PRIVCFG_SHIFT = 16;
export const GBPA_INSTCFG_SHIFT = 18;
/** Reset value: SHCFG = use incoming. */
export const GBPA_RESET = 0x00001000;

// IRQ_CTRL / IRQ_CTRLACK
export const IRQ_CTRL_GERROR_IRQEN = 1 << 0;
export const IRQ_CTRL_PRIQ_IRQEN = 1 << 1;
export const IRQ_CTRL_EVTQ_IRQEN = 1 << 2;

// GERROR / GERRORN
export const GERROR_CMDQ_ERR = 1 << 0;
export const GERROR_EVTQ_ABT_ERR = 1 << 2;
export const GERROR_PRIQ_ABT_ERR = 1 << 3;
export const GERROR_MSI_CMDQ_ABT_ERR = 1 << 4;
export const GERROR_MSI_EVTQ_ABT_ERR = 1 << 5;
export const GERROR_MSI_PRIQ_ABT_ERR = 1 << 6;
export const GERROR_MSI_GERROR_ABT_ERR = 1 << 7;
export const GERROR_SFM_ERR = 1 << 8;
/** Every defined GERROR bit (Linux's error mask). */
export const GERROR_ERR_MASK = 0x1fd;

// MSI config (IRQ_CFG0 address [51:2], CFG2 SH [5:4] MemAttr [3:0])
export const IRQ_CFG0_ADDR_MASK_LO = 0xfffffffc;
export const IRQ_CFG0_ADDR_MASK_HI = 0x000fffff;
export const IRQ_CFG2_SH_SHIFT = 4;
export const IRQ_CFG2_MEMATTR_SHIFT = 0;

// §1.4 STRTAB_BASE (RA [62], ADDR [51:6]) and STRTAB_BASE_CFG
export const STRTAB_BASE_RA_HI = 1 << 30;
export const STRTAB_BASE_ADDR_MASK_LO = 0xffffffc0;
export const STRTAB_BASE_ADDR_MASK_HI = 0x000fffff;
export const STRTAB_BASE_CFG_LOG2SIZE_SHIFT = 0;
export const STRTAB_BASE_CFG_LOG2SIZE_MASK = 0x3f;
export const STRTAB_BASE_CFG_SPLIT_SHIFT = 6;
export const STRTAB_BASE_CFG_SPLIT_MASK = 0x1f;
export const STRTAB_BASE_CFG_FMT_SHIFT = 16;
export const STRTAB_BASE_CFG_FMT_MASK = 0x3;
export const STRTAB_FMT_LINEAR = 0;
export const STRTAB_FMT_2LVL = 1;
/** The SPLIT Linux uses (256 STEs per L2 table). */
export const STRTAB_SPLIT_LINUX = 8;

// §1.5 queue BASE (RA/WA [62], ADDR [51:5], LOG2SIZE [4:0]), PROD / CONS
export const Q_BASE_RWA_HI = 1 << 30;
export const Q_BASE_ADDR_MASK_LO = 0xffffffe0;
export const Q_BASE_ADDR_MASK_HI = 0x000fffff;
export const Q_BASE_LOG2SIZE_MASK = 0x1f;
/** EVTQ_PROD / PRIQ_PROD.OVFLG and EVTQ_CONS / PRIQ_CONS.OVACKFLG. */
export const Q_OVF = 0x80000000;
export const CMDQ_CONS_ERR_SHIFT = 24;
export const CMDQ_CONS_ERR_MASK = 0x7f;
/** CMDQ_CONS.ERR codes. */
export const CERROR_NONE = 0;
export const CERROR_ILL = 1;
export const CERROR_ABT = 2;
export const CERROR_ATC_INV_SYNC = 3;

/** Entry sizes in bytes. */
export const CMDQ_ENT_BYTES = 16;
export const EVTQ_ENT_BYTES = 32;
export const PRIQ_ENT_BYTES = 16;

/** Identity bytes of PIDR4..7, PIDR0..3, CIDR0..3 (an MMU-600-like identity). */
export const SMMU_ID_REGS: readonly number[] = [0x04, 0x00, 0x00, 0x00, 0x84, 0xb4, 0xf0, 0x10, 0x0d, 0xf0, 0x05, 0xb1];
