/**
 * The mock IOMMU register map (our own layout, 4 KiB block). Offsets are in bytes from the start of
 * the register block of a {@link RegisterFile}. The layout borrows SMMUv3 conventions: CTRL/CTRL_ACK
 * (CR0/CR0ACK), queue bases with log2 sizes in bits [4:0], PROD/CONS with a wrap bit, GERROR/GERRORN.
 */

/** Size of the register block in bytes. */
export const MOCK_REG_BYTES = 4096;

/** RO. Identification: 0x4D4F434B ('MOCK'). */
export const REG_IDR = 0x00;
/** RO. Register interface version (1). */
export const REG_VERSION = 0x04;
/** RO. Capabilities ({@link CAP_PASID} ...). */
export const REG_CAP = 0x08;
/** RO. log2 of the IO page size (11). */
export const REG_APERTURE_PFN_SHIFT = 0x0c;
/** RW. Control ({@link CTRL_EN}, {@link CTRL_CMDQ_EN}, {@link CTRL_FAULTQ_EN}). */
export const REG_CTRL = 0x10;
/** RO. Mirrors CTRL once the hardware has applied it. */
export const REG_CTRL_ACK = 0x14;
/** RW 64. Device table base PA (4 KiB aligned). */
export const REG_DT_BASE = 0x18;
/** RW. log2 of the number of device-table entries (0..16). */
export const REG_DT_LOG2 = 0x20;
/** RW 64. Command queue base: PA (4 KiB aligned) | log2 entries in bits [4:0]. */
export const REG_CMDQ_BASE = 0x28;
/** RW. Command queue producer index (idx + wrap bit). */
export const REG_CMDQ_PROD = 0x30;
/** RO while the CMDQ is enabled. Consumer index; bits [30:24] hold the error code when halted. */
export const REG_CMDQ_CONS = 0x34;
/** RO. Global errors ({@link GERROR_CMDQ_ERR}, {@link GERROR_FAULTQ_ABT}); active while != GERRORN. */
export const REG_GERROR = 0x38;
/** RW. Software toggles bits to match GERROR to acknowledge an error. */
export const REG_GERRORN = 0x3c;
/** RW 64. Fault queue base: PA (4 KiB aligned) | log2 entries in bits [4:0]. */
export const REG_FAULTQ_BASE = 0x40;
/** RO while the fault queue is enabled. Producer index; bit 31 OVFLG. */
export const REG_FAULTQ_PROD = 0x48;
/** RW. Consumer index; bit 31 OVACKFLG. */
export const REG_FAULTQ_CONS = 0x4c;
/** RO. Number of completed CMD_SYNCs (mod 2^32). */
export const REG_SYNC_SEQ = 0x50;

/** Value of {@link REG_IDR}: ASCII 'MOCK'. */
export const MOCK_IDR = 0x4d4f434b;
/** Value of {@link REG_VERSION}. */
export const MOCK_VERSION = 1;

/** CAP bit: PASID tables supported. */
export const CAP_PASID = 1 << 0;
/** CAP bit: hardware dirty-bit update supported. */
export const CAP_DIRTY = 1 << 1;
/** CAP bit: page requests (PRI) supported. */
export const CAP_PRI = 1 << 2;
/** CAP bit: 1 MiB level-1 leaves supported. */
export const CAP_HUGE = 1 << 3;
/** CAP field shift: PASID width in bits [15:8]. */
export const CAP_PASID_WIDTH_SHIFT = 8;
/** CAP field shift: log2 IOTLB entries in bits [23:16]. */
export const CAP_IOTLB_LOG2_SHIFT = 16;

/** CTRL bit: translation enabled (otherwise all DMA is aborted). */
export const CTRL_EN = 1 << 0;
/** CTRL bit: command queue enabled. */
export const CTRL_CMDQ_EN = 1 << 1;
/** CTRL bit: fault queue enabled. */
export const CTRL_FAULTQ_EN = 1 << 2;
/** All defined CTRL bits. */
export const CTRL_MASK = CTRL_EN | CTRL_CMDQ_EN | CTRL_FAULTQ_EN;

/** Queue base: log2 entries field mask (bits [4:0]). */
export const Q_BASE_LOG2_MASK = 0x1f;
/** Largest queue log2 the hardware accepts. */
export const Q_MAX_LOG2 = 16;
/** Largest DT_LOG2 the hardware accepts. */
export const DT_MAX_LOG2 = 16;

/** CMDQ_CONS: error field shift (bits [30:24]). */
export const CMDQ_CONS_ERR_SHIFT = 24;
/** CMDQ_CONS: error field mask (after shifting). */
export const CMDQ_CONS_ERR_MASK = 0x7f;
/** CMDQ error: no error. */
export const CMDQ_ERR_NONE = 0;
/** CMDQ error: illegal (unknown) opcode. */
export const CMDQ_ERR_ILL = 1;
/** CMDQ error: bad field value or reserved bits set. */
export const CMDQ_ERR_BAD = 2;
/** CMDQ error: command fetch aborted (queue outside PhysMem or malformed base). */
export const CMDQ_ERR_ABT = 3;

/** GERROR bit: the command queue halted on an error. */
export const GERROR_CMDQ_ERR = 1 << 0;
/** GERROR bit: the fault queue could not be written (bad base). */
export const GERROR_FAULTQ_ABT = 1 << 1;
/** All defined GERROR bits. */
export const GERROR_MASK = GERROR_CMDQ_ERR | GERROR_FAULTQ_ABT;

/** FAULTQ_PROD bit 31: overflow flag (toggled by hardware). */
export const FAULTQ_PROD_OVFLG = 0x8000_0000;
/** FAULTQ_CONS bit 31: overflow acknowledge flag (software copies OVFLG). */
export const FAULTQ_CONS_OVACKFLG = 0x8000_0000;

// ---------------------------------------------------------------------------------------------
// Test page-request injector (the selftest's IOMMU_TEST_OP_TRIGGER_IOPF). A device-emulation
// block: software fills the fields and sets TEST_PRI_CTRL.GO; the next service() issues the page
// request exactly as `pageRequest()` would (the device port is not reachable from the host thread
// when the model runs in a worker), writes TEST_PRI_STATUS and clears GO.

/** RW. Requester id of the injected page request. */
export const REG_TEST_PRI_RID = 0x100;
/** RW. bit 31: PASID valid; bits [19:0]: PASID. */
export const REG_TEST_PRI_PASID = 0x104;
/** RW 64. Page address requested. */
export const REG_TEST_PRI_ADDR = 0x108;
/** RW. bits [3:0] perm (R=1 W=2 X=4 PRIV=8), bit 4 LAST, bits [24:16] PRG index, bit 31 GO. */
export const REG_TEST_PRI_CTRL = 0x110;
/** RO. Result of the last injection: 1 queued, 2 dropped. */
export const REG_TEST_PRI_STATUS = 0x114;
/** TEST_PRI_CTRL bit: LAST. */
export const TEST_PRI_LAST = 1 << 4;
/** TEST_PRI_CTRL: PRG index shift. */
export const TEST_PRI_GRPID_SHIFT = 16;
/** TEST_PRI_CTRL bit: GO (cleared by the hardware when done). */
export const TEST_PRI_GO = 0x8000_0000;
/** TEST_PRI_PASID bit: PASID valid. */
export const TEST_PRI_PASID_VALID = 0x8000_0000;
/** TEST_PRI_STATUS: the page request was queued. */
export const TEST_PRI_QUEUED = 1;
/** TEST_PRI_STATUS: the page request was dropped. */
export const TEST_PRI_DROPPED = 2;
