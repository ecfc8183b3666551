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
/** IDR0 (RO): stages, table formats, HTTU, ATS / PRI / MSI, stall model, stream-table levels (§1.2). */
export const SMMU_IDR0 = 0x000;
/** IDR1 (RO): SIDSIZE, SSIDSIZE, queue sizes, PRESET / REL bits. */
export const SMMU_IDR1 = 0x004;
/** IDR2 (RO): VATOS base (0 in this model). */
export const SMMU_IDR2 = 0x008;
/** IDR3 (RO): HAD, XNX, FWB, STT, RIL, BBML. */
export const SMMU_IDR3 = 0x00c;
/** IDR4 (RO): IMPLEMENTATION DEFINED (0 in this model). */
export const SMMU_IDR4 = 0x010;
/** IDR5 (RO): OAS, granules, VAX, STALL_MAX. */
export const SMMU_IDR5 = 0x014;
/** IIDR (RO): implementer, revision, variant, product id. */
export const SMMU_IIDR = 0x018;
/** AIDR (RO): architecture revision (ArchMajorRev [7:4], ArchMinorRev [3:0]). */
export const SMMU_AIDR = 0x01c;
/** CR0: SMMUEN, PRIQEN, EVTQEN, CMDQEN, ATSCHK, VMW (§1.3). */
export const SMMU_CR0 = 0x020;
/** CR0ACK (RO): CR0 as applied by the SMMU. */
export const SMMU_CR0ACK = 0x024;
/** CR1: table and queue cacheability / shareability. */
export const SMMU_CR1 = 0x028;
/** CR2: E2H, RECINVSID, PTM. */
export const SMMU_CR2 = 0x02c;
/** STATUSR (RO): DORMANT. */
export const SMMU_STATUSR = 0x040;
/** GBPA: global bypass attributes used while SMMUEN = 0 (UPDATE, ABORT, ...). */
export const SMMU_GBPA = 0x044;
/** AGBPA: IMPLEMENTATION DEFINED alternative GBPA (RAZ/WI in this model). */
export const SMMU_AGBPA = 0x048;
/** IRQ_CTRL: GERROR / PRIQ / EVTQ interrupt enables. */
export const SMMU_IRQ_CTRL = 0x050;
/** IRQ_CTRLACK (RO): IRQ_CTRL as applied. */
export const SMMU_IRQ_CTRLACK = 0x054;
/** GERROR (RO): global errors, toggled by the SMMU. */
export const SMMU_GERROR = 0x060;
/** GERRORN: global error acknowledgement (software copies GERROR here). */
export const SMMU_GERRORN = 0x064;
/** GERROR_IRQ_CFG0 (64-bit): MSI address [51:2] of the GERROR interrupt. */
export const SMMU_GERROR_IRQ_CFG0 = 0x068;
/** GERROR_IRQ_CFG1: MSI data of the GERROR interrupt. */
export const SMMU_GERROR_IRQ_CFG1 = 0x070;
/** GERROR_IRQ_CFG2: MSI shareability / memory attributes of the GERROR interrupt. */
export const SMMU_GERROR_IRQ_CFG2 = 0x074;
/** STRTAB_BASE (64-bit): stream table base address [51:6] and RA (§1.4). */
export const SMMU_STRTAB_BASE = 0x080;
/** STRTAB_BASE_CFG: LOG2SIZE, SPLIT, FMT of the stream table. */
export const SMMU_STRTAB_BASE_CFG = 0x088;
/** CMDQ_BASE (64-bit): command queue base [51:5], LOG2SIZE [4:0], RA (§1.5). */
export const SMMU_CMDQ_BASE = 0x090;
/** CMDQ_PROD: command queue producer index + wrap (written by software). */
export const SMMU_CMDQ_PROD = 0x098;
/** CMDQ_CONS: command queue consumer index + wrap, ERR [30:24] (written by the SMMU). */
export const SMMU_CMDQ_CONS = 0x09c;
/** EVTQ_BASE (64-bit): event queue base [51:5], LOG2SIZE [4:0], WA. */
export const SMMU_EVTQ_BASE = 0x0a0;
/** EVTQ_PROD lives in page 1 only. */
export const SMMU_EVTQ_PROD = 0x100a8;
/** EVTQ_CONS lives in page 1 only. */
export const SMMU_EVTQ_CONS = 0x100ac;
/** EVTQ_IRQ_CFG0 (64-bit): MSI address [51:2] of the event queue interrupt. */
export const SMMU_EVTQ_IRQ_CFG0 = 0x0b0;
/** EVTQ_IRQ_CFG1: MSI data of the event queue interrupt. */
export const SMMU_EVTQ_IRQ_CFG1 = 0x0b8;
/** EVTQ_IRQ_CFG2: MSI shareability / memory attributes of the event queue interrupt. */
export const SMMU_EVTQ_IRQ_CFG2 = 0x0bc;
/** PRIQ_BASE (64-bit): PRI queue base [51:5], LOG2SIZE [4:0], WA. */
export const SMMU_PRIQ_BASE = 0x0c0;
/** PRIQ_PROD lives in page 1 only. */
export const SMMU_PRIQ_PROD = 0x100c8;
/** PRIQ_CONS lives in page 1 only. */
export const SMMU_PRIQ_CONS = 0x100cc;
/** PRIQ_IRQ_CFG0 (64-bit): MSI address [51:2] of the PRI queue interrupt. */
export const SMMU_PRIQ_IRQ_CFG0 = 0x0d0;
/** PRIQ_IRQ_CFG1: MSI data of the PRI queue interrupt. */
export const SMMU_PRIQ_IRQ_CFG1 = 0x0d8;
/** PRIQ_IRQ_CFG2: MSI shareability / memory attributes of the PRI queue interrupt. */
export const SMMU_PRIQ_IRQ_CFG2 = 0x0dc;
/** PIDR4 (first of the CoreSight ID registers at 0xFD0..0xFFC). */
export const SMMU_PIDR4 = 0xfd0;

// §1.2 IDR0
/** IDR0.S2P: stage-2 translation supported. */
export const IDR0_S2P = 1 << 0;
/** IDR0.S1P: stage-1 translation supported. */
export const IDR0_S1P = 1 << 1;
/** IDR0.TTF [3:2]: translation table formats. */
export const IDR0_TTF_SHIFT = 2;
/** IDR0.TTF field mask (after shifting). */
export const IDR0_TTF_MASK = 0x3;
/** IDR0.TTF = 1: AArch32 (LPAE) tables only. */
export const IDR0_TTF_AARCH32 = 1;
/** IDR0.TTF = 2: AArch64 tables only. */
export const IDR0_TTF_AARCH64 = 2;
/** IDR0.TTF = 3: AArch32 and AArch64 tables. */
export const IDR0_TTF_BOTH = 3;
/** IDR0.COHACC: coherent access to tables and queues. */
export const IDR0_COHACC = 1 << 4;
/** IDR0.BTM: broadcast TLB maintenance. */
export const IDR0_BTM = 1 << 5;
/** IDR0.HTTU [7:6]: hardware translation table update. */
export const IDR0_HTTU_SHIFT = 6;
/** IDR0.HTTU field mask (after shifting). */
export const IDR0_HTTU_MASK = 0x3;
/** HTTU encodings: none, access flag, access flag + dirty. */
export const HTTU_NONE = 0;
/** IDR0.HTTU = 1: access flag updates. */
export const HTTU_AF = 1;
/** IDR0.HTTU = 2: access flag and dirty state updates. */
export const HTTU_AF_DIRTY = 2;
/** IDR0.DORMHINT: STATUSR.DORMANT is implemented. */
export const IDR0_DORMHINT = 1 << 8;
/** IDR0.HYP: EL2 streams (STRW = EL2) and TLBI_EL2_* commands. */
export const IDR0_HYP = 1 << 9;
/** IDR0.ATS: PCIe ATS. */
export const IDR0_ATS = 1 << 10;
/** IDR0.NS1ATS: split-stage ATS (STE.EATS = 0b10) is NOT supported. */
export const IDR0_NS1ATS = 1 << 11;
/** IDR0.ASID16: 16-bit ASIDs. */
export const IDR0_ASID16 = 1 << 12;
/** IDR0.MSI: message-signalled interrupts. */
export const IDR0_MSI = 1 << 13;
/** IDR0.SEV: a CMD_SYNC with CS = SEV can wake a waiting PE (send event). */
export const IDR0_SEV = 1 << 14;
/** IDR0.ATOS: address translation operations. */
export const IDR0_ATOS = 1 << 15;
/** IDR0.PRI: PCIe PRI and the PRI queue. */
export const IDR0_PRI = 1 << 16;
/** IDR0.VMW: VMID wildcard matching. */
export const IDR0_VMW = 1 << 17;
/** IDR0.VMID16: 16-bit VMIDs. */
export const IDR0_VMID16 = 1 << 18;
/** IDR0.CD2L: 2-level CD tables. */
export const IDR0_CD2L = 1 << 19;
/** IDR0.VATOS: virtual ATOS page. */
export const IDR0_VATOS = 1 << 20;
/** IDR0.TTENDIAN [22:21]: translation table endianness. */
export const IDR0_TTENDIAN_SHIFT = 21;
/** IDR0.TTENDIAN field mask (after shifting). */
export const IDR0_TTENDIAN_MASK = 0x3;
/** IDR0.TTENDIAN = 0: mixed endian. */
export const TTENDIAN_MIXED = 0;
/** IDR0.TTENDIAN = 2: little-endian only. */
export const TTENDIAN_LE = 2;
/** IDR0.TTENDIAN = 3: big-endian only. */
export const TTENDIAN_BE = 3;
/** IDR0.ATSRECERR: ATS errors are recorded. */
export const IDR0_ATSRECERR = 1 << 23;
/** IDR0.STALL_MODEL [25:24]. */
export const IDR0_STALL_MODEL_SHIFT = 24;
/** IDR0.STALL_MODEL field mask (after shifting). */
export const IDR0_STALL_MODEL_MASK = 0x3;
/** STALL_MODEL encodings. */
export const STALL_MODEL_STALL_AND_TERM = 0;
/** IDR0.STALL_MODEL = 1: terminate only (no stalls). */
export const STALL_MODEL_TERM_ONLY = 1;
/** IDR0.STALL_MODEL = 2: stall forced (every stall-capable fault stalls). */
export const STALL_MODEL_FORCED = 2;
/** IDR0.TERM_MODEL: terminated transactions always abort (CD.A must be 1). */
export const IDR0_TERM_MODEL = 1 << 26;
/** IDR0.ST_LEVEL [28:27]: stream table formats. */
export const IDR0_ST_LEVEL_SHIFT = 27;
/** IDR0.ST_LEVEL field mask (after shifting). */
export const IDR0_ST_LEVEL_MASK = 0x3;
/** IDR0.ST_LEVEL = 0: linear stream tables only. */
export const ST_LEVEL_LINEAR = 0;
/** IDR0.ST_LEVEL = 1: 2-level stream tables supported. */
export const ST_LEVEL_2LVL = 1;

// IDR1
/** IDR1.SIDSIZE [5:0]: StreamID bits. */
export const IDR1_SIDSIZE_SHIFT = 0;
/** IDR1.SIDSIZE field mask. */
export const IDR1_SIDSIZE_MASK = 0x3f;
/** IDR1.SSIDSIZE [10:6]: SubstreamID bits. */
export const IDR1_SSIDSIZE_SHIFT = 6;
/** IDR1.SSIDSIZE field mask (after shifting). */
export const IDR1_SSIDSIZE_MASK = 0x1f;
/** IDR1.PRIQS [15:11]: log2 of the largest PRI queue. */
export const IDR1_PRIQS_SHIFT = 11;
/** IDR1.PRIQS field mask (after shifting). */
export const IDR1_PRIQS_MASK = 0x1f;
/** IDR1.EVENTQS [20:16]: log2 of the largest event queue. */
export const IDR1_EVTQS_SHIFT = 16;
/** IDR1.EVENTQS field mask (after shifting). */
export const IDR1_EVTQS_MASK = 0x1f;
/** IDR1.CMDQS [25:21]: log2 of the largest command queue. */
export const IDR1_CMDQS_SHIFT = 21;
/** IDR1.CMDQS field mask (after shifting). */
export const IDR1_CMDQS_MASK = 0x1f;
/** IDR1.ATTR_PERMS_OVR: STE permission overrides (INSTCFG, PRIVCFG, NSCFG). */
export const IDR1_ATTR_PERMS_OVR = 1 << 26;
/** IDR1.ATTR_TYPES_OVR: STE attribute overrides (MTCFG, MemAttr, ALLOCCFG, SHCFG). */
export const IDR1_ATTR_TYPES_OVR = 1 << 27;
/** IDR1.REL: relative base addresses (embedded implementations; Linux refuses it). */
export const IDR1_REL = 1 << 28;
/** IDR1.QUEUES_PRESET: fixed queue bases (Linux refuses it). */
export const IDR1_QUEUES_PRESET = 1 << 29;
/** IDR1.TABLES_PRESET: fixed table bases (Linux refuses it). */
export const IDR1_TABLES_PRESET = 1 << 30;
/** IDR1.ECMDQ: enhanced command queues. */
export const IDR1_ECMDQ = 1 << 31;

// IDR3
/** IDR3.HAD: hierarchical attribute disable (CD.HAD0 / HAD1). */
export const IDR3_HAD = 1 << 2;
/** IDR3.PBHA: page-based hardware attributes. */
export const IDR3_PBHA = 1 << 3;
/** IDR3.XNX: stage-2 EL0 / EL1 execute-never split (XN[1:0]). */
export const IDR3_XNX = 1 << 4;
/** IDR3.PPS: PRI responses use the request PASID. */
export const IDR3_PPS = 1 << 5;
/** IDR3.MPAM: memory partitioning and monitoring. */
export const IDR3_MPAM = 1 << 7;
/** IDR3.FWB: stage-2 forced write-back (STE.S2FWB). */
export const IDR3_FWB = 1 << 8;
/** IDR3.STT: small translation tables (TxSZ up to 48). */
export const IDR3_STT = 1 << 9;
/** IDR3.RIL: range invalidation (TLBI TG / NUM / SCALE / TTL). */
export const IDR3_RIL = 1 << 10;
/** IDR3.BBML [12:11]: break-before-make level. */
export const IDR3_BBML_SHIFT = 11;
/** IDR3.BBML field mask (after shifting). */
export const IDR3_BBML_MASK = 0x3;

// IDR5
/** IDR5.OAS [2:0]: output address size (see {@link OAS_BITS}). */
export const IDR5_OAS_SHIFT = 0;
/** IDR5.OAS field mask. */
export const IDR5_OAS_MASK = 0x7;
/** IDR5.GRAN4K: 4 KiB granule. */
export const IDR5_GRAN4K = 1 << 4;
/** IDR5.GRAN16K: 16 KiB granule. */
export const IDR5_GRAN16K = 1 << 5;
/** IDR5.GRAN64K: 64 KiB granule. */
export const IDR5_GRAN64K = 1 << 6;
/** IDR5.VAX [11:10]: virtual address extension (1 = 52-bit VA). */
export const IDR5_VAX_SHIFT = 10;
/** IDR5.VAX field mask (after shifting). */
export const IDR5_VAX_MASK = 0x3;
/** IDR5.STALL_MAX [31:16]: most stalled transactions outstanding. */
export const IDR5_STALL_MAX_SHIFT = 16;
/** IDR5.STALL_MAX field mask (after shifting). */
export const IDR5_STALL_MAX_MASK = 0xffff;

/** OAS / IPS / S2PS encoding → address bits (§1.2 IDR5.OAS); index 7 is reserved. */
export const OAS_BITS: readonly number[] = [32, 36, 40, 42, 44, 48, 52];
/** Address bits → OAS encoding (-1 when not encodable). */
export function oasEncoding(bits: number): number {
  return OAS_BITS.indexOf(bits);
}

// IIDR / AIDR
/** IIDR.Implementer [11:0] (JEP106). */
export const IIDR_IMPLEMENTER_SHIFT = 0;
/** IIDR.Revision [15:12]. */
export const IIDR_REVISION_SHIFT = 12;
/** IIDR.Variant [19:16]. */
export const IIDR_VARIANT_SHIFT = 16;
/** IIDR.ProductID [31:20]. */
export const IIDR_PRODUCTID_SHIFT = 20;
/** AIDR.ArchMinorRev [3:0]. */
export const AIDR_MINOR_SHIFT = 0;
/** AIDR.ArchMajorRev [7:4]. */
export const AIDR_MAJOR_SHIFT = 4;

// §1.3 CR0 / CR0ACK
/** CR0.SMMUEN: translation enabled (else GBPA applies). */
export const CR0_SMMUEN = 1 << 0;
/** CR0.PRIQEN: PRI queue enabled. */
export const CR0_PRIQEN = 1 << 1;
/** CR0.EVTQEN: event queue enabled. */
export const CR0_EVTQEN = 1 << 2;
/** CR0.CMDQEN: command queue enabled. */
export const CR0_CMDQEN = 1 << 3;
/** CR0.ATSCHK: ATS-translated transactions are checked against the STE. */
export const CR0_ATSCHK = 1 << 4;
/** CR0.VMW [8:6]: VMID wildcard. */
export const CR0_VMW_SHIFT = 6;
/** CR0.VMW field mask (after shifting). */
export const CR0_VMW_MASK = 0x7;
/** Writable CR0 bits; the rest are RES0. */
export const CR0_WRITABLE = 0x1df;

// CR1
/** CR1.QUEUE_IC [1:0]: queue inner cacheability. */
export const CR1_QUEUE_IC_SHIFT = 0;
/** CR1.QUEUE_OC [3:2]: queue outer cacheability. */
export const CR1_QUEUE_OC_SHIFT = 2;
/** CR1.QUEUE_SH [5:4]: queue shareability. */
export const CR1_QUEUE_SH_SHIFT = 4;
/** CR1.TABLE_IC [7:6]: table inner cacheability. */
export const CR1_TABLE_IC_SHIFT = 6;
/** CR1.TABLE_OC [9:8]: table outer cacheability. */
export const CR1_TABLE_OC_SHIFT = 8;
/** CR1.TABLE_SH [11:10]: table shareability. */
export const CR1_TABLE_SH_SHIFT = 10;
/** What Linux writes: all ISH / WB / WB. */
export const CR1_LINUX = 0xd75;

// CR2
/** CR2.E2H: EL2 streams use the EL2&0 (VHE) regime. */
export const CR2_E2H = 1 << 0;
/** CR2.RECINVSID: record C_BAD_STREAMID events. */
export const CR2_RECINVSID = 1 << 1;
/** CR2.PTM: private TLB maintenance (broadcast TLBIs ignored). */
export const CR2_PTM = 1 << 2;

// GBPA
/** GBPA.UPDATE [31]: set with a write; cleared by the SMMU once applied. */
export const GBPA_UPDATE = 0x80000000;
/** GBPA.ABORT [20]: abort transactions while SMMUEN = 0 (else bypass). */
export const GBPA_ABORT = 1 << 20;
/** GBPA.MemAttr [3:0]. */
export const GBPA_MEMATTR_SHIFT = 0;
/** GBPA.MTCFG [4]: use MemAttr. */
export const GBPA_MTCFG = 1 << 4;
/** GBPA.ALLOCCFG [11:8]. */
export const GBPA_ALLOCCFG_SHIFT = 8;
/** GBPA.SHCFG [13:12]. */
export const GBPA_SHCFG_SHIFT = 12;
/** GBPA.NSCFG [15:14]. */
export const GBPA_NSCFG_SHIFT = 14;
/** GBPA.PRIVCFG [17:16]. */
export const GBPA_PRIVCFG_SHIFT = 16;
/** GBPA.INSTCFG [19:18]. */
export const GBPA_INSTCFG_SHIFT = 18;
/** Reset value: SHCFG = use incoming. */
export const GBPA_RESET = 0x00001000;

// IRQ_CTRL / IRQ_CTRLACK
/** IRQ_CTRL.GERROR_IRQEN. */
export const IRQ_CTRL_GERROR_IRQEN = 1 << 0;
/** IRQ_CTRL.PRIQ_IRQEN. */
export const IRQ_CTRL_PRIQ_IRQEN = 1 << 1;
/** IRQ_CTRL.EVENTQ_IRQEN. */
export const IRQ_CTRL_EVTQ_IRQEN = 1 << 2;

// GERROR / GERRORN
/** GERROR.CMDQ_ERR: the command queue halted on an error (CMDQ_CONS.ERR). */
export const GERROR_CMDQ_ERR = 1 << 0;
/** GERROR.EVTQ_ABT_ERR: an event queue write aborted. */
export const GERROR_EVTQ_ABT_ERR = 1 << 2;
/** GERROR.PRIQ_ABT_ERR: a PRI queue write aborted. */
export const GERROR_PRIQ_ABT_ERR = 1 << 3;
/** GERROR.MSI_CMDQ_ABT_ERR: a CMD_SYNC MSI write aborted. */
export const GERROR_MSI_CMDQ_ABT_ERR = 1 << 4;
/** GERROR.MSI_EVTQ_ABT_ERR: an event queue MSI write aborted. */
export const GERROR_MSI_EVTQ_ABT_ERR = 1 << 5;
/** GERROR.MSI_PRIQ_ABT_ERR: a PRI queue MSI write aborted. */
export const GERROR_MSI_PRIQ_ABT_ERR = 1 << 6;
/** GERROR.MSI_GERROR_ABT_ERR: a GERROR MSI write aborted. */
export const GERROR_MSI_GERROR_ABT_ERR = 1 << 7;
/** GERROR.SFM_ERR: the SMMU entered service failure mode. */
export const GERROR_SFM_ERR = 1 << 8;
/** Every defined GERROR bit (Linux's error mask). */
export const GERROR_ERR_MASK = 0x1fd;

// MSI config (IRQ_CFG0 address [51:2], CFG2 SH [5:4] MemAttr [3:0])
/** *_IRQ_CFG0 low word: address bits [31:2]. */
export const IRQ_CFG0_ADDR_MASK_LO = 0xfffffffc;
/** *_IRQ_CFG0 high word: address bits [51:32]. */
export const IRQ_CFG0_ADDR_MASK_HI = 0x000fffff;
/** *_IRQ_CFG2.SH [5:4]. */
export const IRQ_CFG2_SH_SHIFT = 4;
/** *_IRQ_CFG2.MemAttr [3:0]. */
export const IRQ_CFG2_MEMATTR_SHIFT = 0;

// §1.4 STRTAB_BASE (RA [62], ADDR [51:6]) and STRTAB_BASE_CFG
/** STRTAB_BASE.RA (bit 62) in the high word. */
export const STRTAB_BASE_RA_HI = 1 << 30;
/** STRTAB_BASE low word: address bits [31:6]. */
export const STRTAB_BASE_ADDR_MASK_LO = 0xffffffc0;
/** STRTAB_BASE high word: address bits [51:32]. */
export const STRTAB_BASE_ADDR_MASK_HI = 0x000fffff;
/** STRTAB_BASE_CFG.LOG2SIZE [5:0]: log2 of the StreamIDs covered. */
export const STRTAB_BASE_CFG_LOG2SIZE_SHIFT = 0;
/** STRTAB_BASE_CFG.LOG2SIZE field mask. */
export const STRTAB_BASE_CFG_LOG2SIZE_MASK = 0x3f;
/** STRTAB_BASE_CFG.SPLIT [10:6]: StreamID bits resolved by a level-2 table. */
export const STRTAB_BASE_CFG_SPLIT_SHIFT = 6;
/** STRTAB_BASE_CFG.SPLIT field mask (after shifting). */
export const STRTAB_BASE_CFG_SPLIT_MASK = 0x1f;
/** STRTAB_BASE_CFG.FMT [17:16]: stream table format. */
export const STRTAB_BASE_CFG_FMT_SHIFT = 16;
/** STRTAB_BASE_CFG.FMT field mask (after shifting). */
export const STRTAB_BASE_CFG_FMT_MASK = 0x3;
/** STRTAB_BASE_CFG.FMT = 0: linear stream table. */
export const STRTAB_FMT_LINEAR = 0;
/** STRTAB_BASE_CFG.FMT = 1: 2-level stream table. */
export const STRTAB_FMT_2LVL = 1;
/** The SPLIT Linux uses (256 STEs per L2 table). */
export const STRTAB_SPLIT_LINUX = 8;

// §1.5 queue BASE (RA/WA [62], ADDR [51:5], LOG2SIZE [4:0]), PROD / CONS
/** *Q_BASE.RA / WA (bit 62) in the high word. */
export const Q_BASE_RWA_HI = 1 << 30;
/** *Q_BASE low word: address bits [31:5]. */
export const Q_BASE_ADDR_MASK_LO = 0xffffffe0;
/** *Q_BASE high word: address bits [51:32]. */
export const Q_BASE_ADDR_MASK_HI = 0x000fffff;
/** *Q_BASE.LOG2SIZE [4:0]: log2 of the number of entries. */
export const Q_BASE_LOG2SIZE_MASK = 0x1f;
/** EVTQ_PROD / PRIQ_PROD.OVFLG and EVTQ_CONS / PRIQ_CONS.OVACKFLG. */
export const Q_OVF = 0x80000000;
/** CMDQ_CONS.ERR [30:24]: the CERROR_* code of a halted queue. */
export const CMDQ_CONS_ERR_SHIFT = 24;
/** CMDQ_CONS.ERR field mask (after shifting). */
export const CMDQ_CONS_ERR_MASK = 0x7f;
/** CMDQ_CONS.ERR codes. */
export const CERROR_NONE = 0;
/** CERROR_ILL: illegal command (unknown opcode, RES0 bit set, feature absent, ...). */
export const CERROR_ILL = 1;
/** CERROR_ABT: the command fetch aborted. */
export const CERROR_ABT = 2;
/** CERROR_ATC_INV_SYNC: a CMD_SYNC found an ATC invalidation that did not complete. */
export const CERROR_ATC_INV_SYNC = 3;

/** Entry sizes in bytes. */
export const CMDQ_ENT_BYTES = 16;
/** Event queue entry: 32 bytes. */
export const EVTQ_ENT_BYTES = 32;
/** PRI queue entry: 16 bytes. */
export const PRIQ_ENT_BYTES = 16;

/** Identity bytes of PIDR4..7, PIDR0..3, CIDR0..3 (an MMU-600-like identity). */
export const SMMU_ID_REGS: readonly number[] = [0x04, 0x00, 0x00, 0x00, 0x84, 0xb4, 0xf0, 0x10, 0x0d, 0xf0, 0x05, 0xb1];
