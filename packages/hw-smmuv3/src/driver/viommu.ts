/**
 * The ARM SMMUv3 vIOMMU (Linux `arm_vsmmu`, smmuv3.md §9.4, §9.5): a VM's slice of the SMMU over
 * a nest-parent stage-2 domain, sharing its VMID. It maps virtual StreamIDs (vDEVICEs) to
 * physical ones, allocates nested domains, executes guest invalidation commands
 * (`struct iommu_viommu_arm_smmuv3_invalidate { __le64 cmd[2]; }`) after rewriting VMID / SID as
 * the kernel does, and forwards a device's events to the vEVENTQ with its virtual SID.
 */
import {
  IommuError,
  type DomainAllocFlags,
  type IommuDevice,
  type IommuViommu,
  type NestedDomain,
  type UserInvalidateResult,
  type ViommuEventHandler,
} from '@iommulab/driver-api';
import { CmdOp, EvtId } from '../codec/index.js';
import type { SmmuS2Domain } from './domain-s2.js';
import { IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, IOMMU_VIOMMU_TYPE_ARM_SMMUV3 } from './hw-info.js';
import type { SmmuMaster } from './master.js';
import { SmmuNestedDomain, type NestedHost } from './nested-domain.js';

/** sizeof(struct iommu_viommu_arm_smmuv3_invalidate). */
export const VIOMMU_INVALIDATE_ARM_SMMUV3_BYTES = 16;
/** Linux CMDQ_BATCH_ENTRIES − 1: guest commands per host batch (each followed by a CMD_SYNC). */
const GUEST_BATCH = 63;
/** Event ids forwarded to the vEVENTQ (§9.5). */
const FORWARDED = new Set<number>([EvtId.C_BAD_STE, EvtId.F_STREAM_DISABLED, EvtId.C_BAD_SUBSTREAMID, EvtId.C_BAD_CD, EvtId.F_TRANSLATION, EvtId.F_ADDR_SIZE, EvtId.F_ACCESS, EvtId.F_PERMISSION]);

/** What a vIOMMU needs from its driver. @internal */
export interface ViommuHost extends NestedHost {
  masterOf(dev: IommuDevice): SmmuMaster;
  allocDomainId(): number;
  addNestedDomain(d: SmmuNestedDomain): void;
  viommuDestroyed(v: SmmuViommu): void;
}

let nextViommuId = 1;

/** One vIOMMU. */
export class SmmuViommu implements IommuViommu {
  readonly type = IOMMU_VIOMMU_TYPE_ARM_SMMUV3;
  /** For messages. */
  readonly id = nextViommuId++;
  /** vSID → master, and master → vSID. */
  private readonly bySid = new Map<number, SmmuMaster>();
  private readonly vsids = new Map<SmmuMaster, number>();
  private readonly handlers = new Set<ViommuEventHandler>();
  private destroyed = false;

  /** @internal use `SmmuV3Driver.viommuAlloc` */
  constructor(
    private readonly host: ViommuHost,
    /** The nest parent (its VMID tags the guest's stage-1 entries). */
    readonly parent: SmmuS2Domain,
  ) {
    parent.nestedChildren++;
  }

  /** The VMID of the VM (the parent's, as Linux `vsmmu->vmid`). */
  get vmid(): number {
    return this.parent.vmid;
  }

  private alive(op: string): void {
    this.host.checkAlive();
    if (this.destroyed) throw new IommuError('ENOENT', `${op}: vIOMMU ${this.id} was destroyed`);
  }

  /** The virtual SID of a master, if it has a vDEVICE here. */
  vsidOf(m: SmmuMaster): number | undefined {
    return this.vsids.get(m);
  }

  async vdeviceInit(dev: IommuDevice, virtId: bigint): Promise<void> {
    this.alive('vdeviceInit');
    const m = this.host.masterOf(dev);
    if (virtId < 0n || virtId > 0xffffffffn) throw new IommuError('EINVAL', `vdeviceInit: virtual SID 0x${virtId.toString(16)} does not fit 32 bits`);
    const vsid = Number(virtId);
    if (this.bySid.has(vsid)) throw new IommuError('EEXIST', `vdeviceInit: virtual SID 0x${vsid.toString(16)} is in use on vIOMMU ${this.id}`);
    this.bySid.set(vsid, m);
    this.vsids.set(m, vsid);
  }

  vdeviceDestroy(dev: IommuDevice): void {
    for (const [m, vsid] of this.vsids) {
      if (m.dev === dev) {
        this.vsids.delete(m);
        this.bySid.delete(vsid);
      }
    }
  }

  async domainAllocNested(dev: IommuDevice, dataType: number, data: Uint8Array, flags: DomainAllocFlags = {}): Promise<NestedDomain> {
    this.alive('domainAllocNested');
    this.host.masterOf(dev);
    const d = SmmuNestedDomain.fromUser(this.host, this.host.allocDomainId(), this.parent, dataType, data, flags, this);
    this.host.addNestedDomain(d);
    return d;
  }

  /**
   * `arm_vsmmu_cache_invalidate`: the whole array is copied first
   * (`iommu_copy_struct_from_full_user_array`: another data type → EINVAL, `entry_num` 0 → EINVAL,
   * a shorter `entry_len` is zero-extended, a longer one must have a zero tail → E2BIG), then every
   * entry is converted (`arm_vsmmu_convert_user_cmd`: TLBI_NSNH_ALL → TLBI_NH_ALL(VMID);
   * TLBI_NH_VA / VAA / ALL / ASID get the VM's VMID; ATC_INV, CFGI_CD, CFGI_CD_ALL get the
   * physical SID of the vSID; anything else → EIO) and issued in batches of 63 with a CMD_SYNC
   * each. A refused entry stops the call before its batch is issued: the converted entries of
   * that batch are not sent (smmuv3.md §9.4, "no partial issue within a batch"), yet `handled`
   * (the uAPI's `entry_num`) is the index of the refused entry, as the kernel's `cur - cmds`.
   */
  async cacheInvalidate(dataType: number, entryLen: number, entries: Uint8Array, count: number): Promise<UserInvalidateResult> {
    this.alive('cacheInvalidate');
    if (dataType !== IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3) {
      return { handled: 0, error: new IommuError('EINVAL', `invalidation data type ${dataType} is not IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3`) };
    }
    if (count === 0) return { handled: 0, error: new IommuError('EINVAL', 'entry_num is 0 (iommu_copy_struct_from_full_user_array)') };
    if (!Number.isInteger(count) || count < 0 || !Number.isInteger(entryLen) || entryLen <= 0) {
      return { handled: 0, error: new IommuError('EINVAL', `entry_num ${count} / entry_len ${entryLen}`) };
    }
    if (entries.length < entryLen * count) {
      return { handled: 0, error: new IommuError('EFAULT', `${entries.length} bytes hold fewer than ${count} entries of ${entryLen}`) };
    }
    const E = VIOMMU_INVALIDATE_ARM_SMMUV3_BYTES;
    const cmds = new Uint32Array(4 * count);
    const dv = new DataView(entries.buffer, entries.byteOffset, entries.byteLength);
    for (let i = 0; i < count; i++) {
      for (let b = E; b < entryLen; b++) {
        if (entries[i * entryLen + b] !== 0) return { handled: 0, error: new IommuError('E2BIG', `entry ${i} has non-zero bytes past its ${E}-byte struct`) };
      }
      for (let k = 0; k < 4; k++) cmds[4 * i + k] = 4 * k + 4 <= entryLen ? dv.getUint32(i * entryLen + 4 * k, true) : 0;
    }
    let last = 0;
    for (let cur = 0; cur < count; ) {
      const err = this.convert(cmds, 4 * cur);
      // `goto out`: the converted commands of this batch ([last, cur)) are not issued.
      if (err !== undefined) return { handled: cur, error: err };
      cur++;
      if (cur !== count && cur - last !== GUEST_BATCH) continue;
      await this.issue(cmds, last, cur);
      last = cur;
    }
    return { handled: count };
  }

  private issue(cmds: Uint32Array, from: number, to: number): Promise<void> {
    if (to <= from) return Promise.resolve();
    return this.host.cmdq.submit(to - from, (u32, w, k) => {
      u32.set(cmds.subarray(4 * (from + k), 4 * (from + k) + 4), w);
    });
  }

  /** `arm_vsmmu_convert_user_cmd` in place; returns an EIO error for a refused command. */
  private convert(c: Uint32Array, i: number): IommuError | undefined {
    const op = c[i] & 0xff;
    const vmid = this.vmid & 0xffff;
    switch (op) {
      case CmdOp.TLBI_NSNH_ALL:
        c[i] = CmdOp.TLBI_NH_ALL;
        c[i + 1] = vmid;
        c[i + 2] = 0;
        c[i + 3] = 0;
        return undefined;
      case CmdOp.TLBI_NH_VA:
      case CmdOp.TLBI_NH_VAA:
      case CmdOp.TLBI_NH_ALL:
      case CmdOp.TLBI_NH_ASID:
        c[i + 1] = ((c[i + 1] & 0xffff0000) | vmid) >>> 0;
        return undefined;
      case CmdOp.ATC_INV:
      case CmdOp.CFGI_CD:
      case CmdOp.CFGI_CD_ALL: {
        const m = this.bySid.get(c[i + 1]);
        if (m === undefined) return new IommuError('EIO', `command ${i / 4}: virtual SID 0x${c[i + 1].toString(16)} has no vDEVICE`);
        c[i + 1] = m.sid >>> 0;
        return undefined;
      }
      default:
        return new IommuError('EIO', `command ${i / 4}: opcode 0x${op.toString(16)} is not allowed from a guest`);
    }
  }

  onViommuEvent(handler: ViommuEventHandler): () => void {
    this.handlers.add(handler);
    return () => {
      this.handlers.delete(handler);
    };
  }

  /**
   * `arm_vmaster_report_event`: forwards an event of `m` (attached to a nested domain of this
   * vIOMMU, with a vDEVICE) to the vEVENTQ with the virtual SID; stalled and stage-2 faults and
   * other ids are not forwarded. Returns true when a handler took it. @internal
   */
  reportEvent(m: SmmuMaster, raw: Uint32Array): boolean {
    if (this.destroyed || this.handlers.size === 0) return false;
    const t = m.ridTarget;
    if (!(t instanceof SmmuNestedDomain) || t.viommu !== this) return false;
    const vsid = this.vsids.get(m);
    if (vsid === undefined) return false;
    const id = raw[0] & 0xff;
    if (!FORWARDED.has(id)) return false;
    const xlat = id >= EvtId.F_TRANSLATION && id <= EvtId.F_PERMISSION;
    if (xlat && ((raw[2] & 0x80000000) !== 0 || (raw[3] & (1 << 7)) !== 0)) return false; // Stall / S2
    const rec = raw.slice(0, 8);
    rec[1] = vsid >>> 0;
    const data = new Uint8Array(rec.buffer.slice(0));
    let taken = false;
    for (const h of this.handlers) {
      try {
        h({ type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, dev: m.dev, data });
        taken = true;
      } catch {
        // No vEVENTQ of that type: not taken.
      }
    }
    return taken;
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.parent.nestedChildren--;
    this.bySid.clear();
    this.vsids.clear();
    this.handlers.clear();
    this.host.viommuDestroyed(this);
  }
}
