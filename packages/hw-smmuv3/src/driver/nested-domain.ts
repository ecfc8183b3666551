/**
 * Nested domain (Linux `arm_smmu_nested_domain`, smmuv3.md §9.3): the guest's STE dwords 0–1
 * (`struct iommu_hwpt_arm_smmuv3 { __le64 ste[2]; }`) over a nest-parent stage-2 domain. The
 * physical STE is the parent's S2 STE turned nested (Config = 0b111) with the guest's CD-table
 * fields and MEV; a guest abort / bypass vSTE becomes an abort STE / the parent's plain S2 STE.
 */
import { IommuError, type DomainAllocFlags, type NestedDomain, type UserInvalidateResult } from '@iommulab/driver-api';
import { Ste, SteConfig, getField, setField } from '../codec/index.js';
import type { SmmuCmdq } from './cmdq.js';
import type { SmmuS2Domain } from './domain-s2.js';
import { IOMMU_HWPT_DATA_ARM_SMMUV3 } from './hw-info.js';
import type { SmmuMaster } from './master.js';
import type { SmmuProbe } from './probe.js';
import { NESTED_STE0_FIELDS, NESTED_STE1_FIELDS, STE_WORDS, makeAbortSte, makeNestedSte } from './ste-build.js';
import type { SmmuViommu } from './viommu.js';

/** sizeof(struct iommu_hwpt_arm_smmuv3). */
export const HWPT_ARM_SMMUV3_BYTES = 16;

/** What a nested domain needs from its driver. @internal */
export interface NestedHost {
  readonly instanceId: string;
  readonly probe: SmmuProbe;
  readonly cmdq: SmmuCmdq;
  checkAlive(): void;
  domainFreed(domain: SmmuNestedDomain): void;
}

/** Mask of the fields of `fields` in a 4-word (2-dword) buffer. */
function allowedMask(fields: readonly typeof Ste.V[]): Uint32Array {
  const m = new Uint32Array(4);
  for (const f of fields) setField(m, 0, f, 2 ** f.width - 1);
  return m;
}
const ALLOWED = (() => {
  const a = allowedMask(NESTED_STE0_FIELDS);
  const b = allowedMask(NESTED_STE1_FIELDS);
  return new Uint32Array([a[0], a[1], b[2], b[3]]);
})();

/**
 * `arm_smmu_validate_vste`: V = 0 → the whole vSTE is zeroed (an abort); otherwise only the
 * allowed fields may be set (EIO), Config must be abort / bypass / S1 (EIO), EATS 0 or 1 (EIO);
 * EATS is stripped and returned as "enable ATS" (S1 Config only).
 * @throws IommuError EIO
 */
export function validateVste(ste: Uint32Array): { ste: Uint32Array; enableAts: boolean } {
  const out = ste.slice(0, 4);
  if ((out[0] & 1) === 0) return { ste: new Uint32Array(4), enableAts: false };
  for (let i = 0; i < 4; i++) {
    if ((out[i] & ~ALLOWED[i]) !== 0) throw new IommuError('EIO', `vSTE word ${i} = 0x${out[i].toString(16)} sets bits a guest may not set`);
  }
  const cfg = getField(out, 0, Ste.CONFIG);
  if (cfg !== SteConfig.ABORT && cfg !== SteConfig.BYPASS && cfg !== SteConfig.S1_TRANS) {
    throw new IommuError('EIO', `vSTE Config ${cfg} is not abort, bypass or S1`);
  }
  const eats = getField(out, 0, Ste.EATS);
  setField(out, 0, Ste.EATS, 0);
  if (eats !== 0 && eats !== 1) throw new IommuError('EIO', `vSTE EATS ${eats} is not 0 or 1`);
  return { ste: out, enableAts: cfg === SteConfig.S1_TRANS && eats === 1 };
}

/** A nested domain over a nest-parent stage-2 domain. */
export class SmmuNestedDomain implements NestedDomain {
  readonly kind = 'nested' as const;
  readonly dataType = IOMMU_HWPT_DATA_ARM_SMMUV3;
  /** Attachments (RIDs only). @internal */
  readonly users = new Map<string, { master: SmmuMaster; ssid: number }>();
  private freed = false;

  private constructor(
    private readonly host: NestedHost,
    readonly id: number,
    readonly parent: SmmuS2Domain,
    /** The validated guest STE dwords 0–1 (EATS stripped). */
    readonly vste: Uint32Array,
    /** Guest asked for ATS (EATS = 1 with Config = S1). */
    readonly enableAts: boolean,
    /** The vIOMMU it was allocated on, if any. */
    readonly viommu: SmmuViommu | undefined,
  ) {
    parent.nestedChildren++;
  }

  /**
   * `arm_vsmmu_alloc_domain_nested`, in the kernel's order: flags (only none: EOPNOTSUPP), then
   * `iommu_copy_struct_from_user` — another data type (EINVAL), a struct shorter than
   * `iommu_hwpt_arm_smmuv3` (EINVAL), a non-zero tail beyond it (E2BIG) — then the vSTE (EIO).
   */
  static fromUser(host: NestedHost, id: number, parent: SmmuS2Domain, dataType: number, data: Uint8Array, flags: DomainAllocFlags, viommu: SmmuViommu | undefined): SmmuNestedDomain {
    host.checkAlive();
    if (flags.nestParent || flags.dirtyTracking || flags.pasid) {
      throw new IommuError('EOPNOTSUPP', 'domainAllocNested: nestParent / dirtyTracking / pasid flags are not supported on nested domains');
    }
    if (dataType !== IOMMU_HWPT_DATA_ARM_SMMUV3) {
      throw new IommuError('EINVAL', `domainAllocNested: data type ${dataType} is not IOMMU_HWPT_DATA_ARM_SMMUV3 (iommu_copy_struct_from_user)`);
    }
    if (!(data instanceof Uint8Array) || data.length < HWPT_ARM_SMMUV3_BYTES) {
      throw new IommuError('EINVAL', `domainAllocNested: iommu_hwpt_arm_smmuv3 needs ${HWPT_ARM_SMMUV3_BYTES} bytes, got ${data?.length}`);
    }
    for (let i = HWPT_ARM_SMMUV3_BYTES; i < data.length; i++) {
      if (data[i] !== 0) throw new IommuError('E2BIG', `domainAllocNested: non-zero byte ${i} beyond iommu_hwpt_arm_smmuv3`);
    }
    const words = new Uint32Array(4);
    const dv = new DataView(data.buffer, data.byteOffset, HWPT_ARM_SMMUV3_BYTES);
    for (let i = 0; i < 4; i++) words[i] = dv.getUint32(4 * i, true);
    const { ste, enableAts } = validateVste(words);
    return new SmmuNestedDomain(host, id, parent, ste, enableAts, viommu);
  }

  /** True once freed. */
  get isFreed(): boolean {
    return this.freed;
  }

  /** The guest STE Config (abort, bypass or S1). */
  get config(): number {
    return getField(this.vste, 0, Ste.CONFIG);
  }

  /** ATS for the attached master (the guest's EATS). */
  atsAllowed(): boolean {
    return this.enableAts;
  }

  /** Attaching a translating nested domain of a vIOMMU needs the device's vDEVICE (ENOENT). @internal */
  checkAttach(m: SmmuMaster): void {
    if (this.freed) throw new IommuError('ENOENT', `attachDevice: domain ${this.id} was freed`);
    if (this.viommu !== undefined && this.config === SteConfig.S1_TRANS && this.viommu.vsidOf(m) === undefined) {
      throw new IommuError('ENOENT', `attachDevice: device ${m.sid} has no virtual device on vIOMMU ${this.viommu.id}`);
    }
  }

  /** Bookkeeping hooks of attach / detach. @internal */
  attached(_m: SmmuMaster): void {}
  /** @internal */
  detached(_m: SmmuMaster): void {}

  /** `arm_smmu_make_nested_domain_ste`. */
  makeSte(m: SmmuMaster, ats: boolean, out: Uint32Array): Uint32Array {
    const cfg = this.config;
    if (cfg === SteConfig.S1_TRANS) {
      const s2 = this.parent.makeSte(m, ats, new Uint32Array(STE_WORDS));
      return makeNestedSte(out, s2, this.vste, ats);
    }
    if (cfg === SteConfig.BYPASS) return this.parent.makeSte(m, ats, out);
    return makeAbortSte(out);
  }

  /**
   * Nested domains of SMMUv3 take guest invalidations through their vIOMMU
   * (`IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3`); a nested domain has none of its own (Linux).
   */
  async cacheInvalidateUser(dataType: number, _entryLen: number, _entries: Uint8Array, _count: number): Promise<UserInvalidateResult> {
    this.host.checkAlive();
    return { handled: 0, error: new IommuError('EOPNOTSUPP', `cacheInvalidateUser: SMMUv3 nested domains are invalidated through their vIOMMU (data type ${dataType})`) };
  }

  async free(): Promise<void> {
    this.host.checkAlive();
    if (this.freed) throw new IommuError('ENOENT', `domain ${this.id} was freed`);
    if (this.users.size > 0) throw new IommuError('EBUSY', `nested domain ${this.id} is attached to ${this.users.size} device(s)`);
    this.freed = true;
    this.parent.nestedChildren--;
    this.host.domainFreed(this);
  }
}
