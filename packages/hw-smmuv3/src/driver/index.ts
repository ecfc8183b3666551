/**
 * The SMMUv3 host driver (Linux arm-smmu-v3 equivalent): {@link SmmuV3Driver} and its building
 * blocks — probe / reset, the command-queue producer, command encoders, stream and CD tables, the
 * STE / CD builders (also the table-building library tests use), the §2.6 update protocol,
 * paging / nested domains, the vIOMMU, event decoding and hw_info.
 */
export {
  SmmuV3Driver,
  createSmmuV3Driver,
  SMMUV3_CAPABILITIES,
  DRIVER_OPTION_NAMES,
  MSI_IOVA_BASE,
  MSI_IOVA_LENGTH,
  type SmmuV3DriverOptions,
} from './driver.js';
export { probeIdrs, resetSmmu, disableSmmu, writeRegSync, updateGbpa, granulePageSizes, CMDQ_BATCH_ENTRIES, STRTAB_MAX_L1_ENTRIES, CTXDESC_LINEAR_CDMAX, type SmmuProbe, type SmmuLayout, type ResetEnv } from './probe.js';
export { SmmuCmdq, queueConsumed, type CmdFiller, type CmdqConfig, type CmdqStats } from './cmdq.js';
export * from './cmd-build.js';
export { StreamTable, STRTAB_L2_STES, STRTAB_L1_SPAN } from './strtab.js';
export { CdTable, CTXDESC_L2_ENTRIES } from './cd-table.js';
export * from './ste-build.js';
export * from './cd-build.js';
export { writeEntry, entryQwordDiff, ENTRY_DWORDS, type EntryWriter } from './entry-update.js';
export { planTlbiRange, atcInvSpan, CMDQ_MAX_TLBI_OPS, type TlbiRangeCmd } from './tlb-inv.js';
export { IdAllocator } from './id-alloc.js';
export { SmmuMaster, type RidTarget } from './master.js';
export { SmmuPagingDomain, type DomainHost, type DomainUser } from './paging-domain.js';
export { SmmuS1Domain } from './domain-s1.js';
export { SmmuS2Domain } from './domain-s2.js';
export { SmmuNestedDomain, validateVste, HWPT_ARM_SMMUV3_BYTES, type NestedHost } from './nested-domain.js';
export { SmmuViommu, VIOMMU_INVALIDATE_ARM_SMMUV3_BYTES, type ViommuHost } from './viommu.js';
export { SmmuEventQueues, decodeEvent, decodePriRecord, faultReasonOfEvent, isTranslationFaultEvent, type EventQueuesConfig } from './events.js';
export * from './hw-info.js';
