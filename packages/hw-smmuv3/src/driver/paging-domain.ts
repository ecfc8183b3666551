/**
 * What stage-1 and stage-2 paging domains share (Linux `struct arm_smmu_domain` with its
 * io-pgtable): the LPAE table (`IoPgtableArm`), map / unmap on it, and invalidation through the
 * command queue — range TLBIs per §4.3 (the stage decides the opcode and tag), then ATC_INV for
 * every ATS master using the domain, each batch ending with a CMD_SYNC.
 */
import {
  IommuError,
  checkPageRange,
  IotlbGather,
  type DirtyReadFlags,
  type DomainAllocFlags,
  type PagingDomain,
} from '@iommulab/driver-api';
import type { IoPgtableArm } from '../pgtable/index.js';
import { cmdAtcInv } from './cmd-build.js';
import type { SmmuCmdq } from './cmdq.js';
import type { SmmuMaster } from './master.js';
import type { SmmuProbe } from './probe.js';
import { atcInvSpan, planTlbiRange, type TlbiRangeCmd } from './tlb-inv.js';

/** What a paging domain needs from its driver. @internal */
export interface DomainHost {
  readonly instanceId: string;
  readonly probe: SmmuProbe;
  readonly cmdq: SmmuCmdq;
  /** Throws ENODEV after shutdown. */
  checkAlive(): void;
  /** Called once the domain is freed (releases its ASID / VMID bookkeeping). */
  domainFreed(domain: SmmuPagingDomain): void;
}

/** One attachment of a domain: a master's RID (ssid −1 / 0) or one of its PASIDs. */
export interface DomainUser {
  readonly master: SmmuMaster;
  /** −1 for the RID, else the PASID (SSID). */
  readonly ssid: number;
}

/** What a synchronous no-op returns. */
const DONE: Promise<void> = Promise.resolve();

/** A paging domain of the SMMUv3 driver (stage 1 or stage 2). */
export abstract class SmmuPagingDomain implements PagingDomain {
  readonly kind = 'paging' as const;
  /** 's1' (CD with ASID) or 's2' (STE with VMID). */
  abstract readonly stage: 's1' | 's2';
  readonly flags: DomainAllocFlags;
  readonly pageSizes: readonly number[];
  readonly aperture: { readonly start: number; readonly last: number };
  /** Attachments by key (`rid` or `rid:pasid`). @internal */
  readonly users = new Map<string, DomainUser>();
  /** Nested domains over this one (nest parents). @internal */
  nestedChildren = 0;
  /** Whether dirty tracking was last enabled (HA/HD are always on for dirty domains, as Linux). */
  dirtyTracking = false;
  private freed = false;
  private readonly scratchGather = new IotlbGather();
  /** Gathers that collected leaves of more than one size (their TLBIs use TTL = 0). */
  private readonly mixed = new WeakSet<IotlbGather>();
  /** log2 of the smallest page size (the range-TLBI TG). */
  protected readonly tgShift: number;

  protected constructor(
    protected readonly host: DomainHost,
    readonly id: number,
    /** The domain's LPAE table. */
    readonly pgtable: IoPgtableArm,
    flags: DomainAllocFlags,
  ) {
    this.flags = { ...flags };
    this.pageSizes = pgtable.pgsizes;
    this.aperture = { start: 0, last: 2 ** pgtable.ias - 1 };
    this.tgShift = Math.log2(pgtable.pgsizes[0]);
    pgtable.onTlbFlush = (iova, size, granule, leaf) => this.flushWalk(iova, size, granule, leaf);
  }

  /** True once freed. */
  get isFreed(): boolean {
    return this.freed;
  }

  /** ATS may be enabled for masters attached to this domain (always, for paging domains). */
  atsAllowed(): boolean {
    return true;
  }

  protected check(op: string): void {
    this.host.checkAlive();
    if (this.freed) throw new IommuError('ENOENT', `${op}: domain ${this.id} was freed`);
  }

  mapPages(iova: number, pa: number, pageSize: number, count: number, prot: number): number {
    this.check('mapPages');
    checkPageRange('mapPages', this, iova, pageSize, count);
    return this.pgtable.map(iova, pa, pageSize, count, prot);
  }

  unmapPages(iova: number, pageSize: number, count: number, gather: IotlbGather): number {
    this.check('unmapPages');
    checkPageRange('unmapPages', this, iova, pageSize, count);
    const local = this.scratchGather;
    local.reset();
    const n = this.pgtable.unmap(iova, pageSize, count, local);
    if (!local.empty) {
      // Linux syncs a gather before it would mix page sizes; ours cannot, so remember it and
      // drop the TTL hint for it (TTL = 0 is correct for any leaf level).
      if (local.pageSize !== pageSize || (!gather.empty && gather.pageSize !== local.pageSize) || this.mixed.has(gather)) {
        this.mixed.add(gather);
      }
      gather.add(local.start, local.end - local.start + 1, local.pageSize);
    }
    return n;
  }

  iotlbSyncMap(_iova: number, _size: number): Promise<void> {
    // The SMMU does not cache non-present entries (Linux has no iotlb_sync_map for SMMUv3).
    try {
      this.check('iotlbSyncMap');
    } catch (e) {
      return Promise.reject(e);
    }
    return DONE;
  }

  iotlbSync(gather: IotlbGather): Promise<void> {
    try {
      this.check('iotlbSync');
      if (gather.empty) return DONE;
      const start = gather.start;
      const size = gather.end - gather.start + 1;
      const granule = gather.pageSize;
      const ttlHint = !this.mixed.has(gather);
      this.mixed.delete(gather);
      gather.reset();
      return this.invalidateRange(start, size, granule, true, ttlHint);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * `arm_smmu_tlb_inv_range_domain`: range TLBIs (or a whole-context flush) + SYNC, then ATC_INV
   * for ATS users + SYNC. @internal
   */
  invalidateRange(iova: number, size: number, granule: number, leaf: boolean, ttlHint = true): Promise<void> {
    const plan = planTlbiRange(iova, size, granule, leaf && ttlHint, this.host.probe.ril, this.tgShift);
    const tlb = plan === null ? this.flushTlb() : this.submitTlbiRange(plan, leaf);
    return this.afterTlb(tlb, iova, size);
  }

  private afterTlb(tlb: Promise<void>, iova: number, size: number): Promise<void> {
    const ats = this.atsUsers();
    if (ats.length === 0) return this.afterInvalidate(tlb);
    return this.afterInvalidate(tlb.then(() => this.atcInv(ats, iova, size)));
  }

  /** Hook for stage 2: nest parents also flush the nested stage-1 entries of the VMID. */
  protected afterInvalidate(p: Promise<void>): Promise<void> {
    return p;
  }

  /** TLBIs of a range plan + CMD_SYNC. */
  protected abstract submitTlbiRange(plan: readonly TlbiRangeCmd[], leaf: boolean): Promise<void>;

  /** Whole-context TLB flush (TLBI_NH_ASID / TLBI_S12_VMALL) + CMD_SYNC. */
  protected abstract flushTlb(): Promise<void>;

  /** (sid, ssid) of every ATS-enabled user; ssid −1 for a RID. */
  private atsUsers(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const u of this.users.values()) if (u.master.atsEnabled) out.push([u.master.sid, u.ssid]);
    return out;
  }

  /** `arm_smmu_atc_inv_domain`: ATC_INV of the span of `[iova, iova + size)` (0 = all) per user + SYNC. */
  private atcInv(users: Array<[number, number]>, iova: number, size: number): Promise<void> {
    const { addr, log2 } = atcInvSpan(iova, size);
    return this.host.cmdq.submit(users.length, (u32, w, k) => {
      const [sid, ssid] = users[k];
      cmdAtcInv(u32, w, sid, ssid, addr, log2, false);
    });
  }

  /** io-pgtable `tlb_flush_walk` (a table is about to be freed): issued at once, as Linux does. */
  private flushWalk(iova: number, size: number, granule: number, leaf: boolean): void {
    this.invalidateRange(iova, size, granule, leaf).catch(() => {
      // A timeout here surfaces on the next synchronous wait; nothing to undo.
    });
  }

  async flushIotlbAll(): Promise<void> {
    this.check('flushIotlbAll');
    await this.afterTlb(this.flushTlb(), 0, 0);
  }

  iovaToPhys(iova: number): number {
    if (this.freed) return -1;
    return this.pgtable.iovaToPhys(iova);
  }

  async setDirtyTracking(enable: boolean): Promise<void> {
    this.check('setDirtyTracking');
    if (!this.flags.dirtyTracking) {
      throw new IommuError('EOPNOTSUPP', `setDirtyTracking: domain ${this.id} was not allocated with dirty tracking`);
    }
    // Linux arm_smmu_set_dirty_tracking: HA/HD stay on for the domain's life; nothing to write.
    this.dirtyTracking = enable;
  }

  async readAndClearDirty(
    iova: number,
    size: number,
    flags: DirtyReadFlags,
    record: (iova: number, length: number) => void,
  ): Promise<void> {
    this.check('readAndClearDirty');
    if (!this.flags.dirtyTracking) {
      throw new IommuError('EOPNOTSUPP', `readAndClearDirty: domain ${this.id} was not allocated with dirty tracking`);
    }
    const g = new IotlbGather();
    const noClear = flags.noClear === true;
    this.pgtable.readAndClearDirty(iova, size, noClear, (i, len) => {
      if (!noClear) g.add(i, len, len);
      record(i, len);
    });
    if (!g.empty) {
      // Clean leaves of mixed sizes may have been cleared: no TTL hint.
      await this.invalidateRange(g.start, g.end - g.start + 1, g.pageSize, true, false);
    }
  }

  /** Releases ids and tables after the TLB flush; the driver forgets the domain. */
  protected abstract releaseIds(): void;

  async free(): Promise<void> {
    this.check('free');
    if (this.users.size > 0 || this.nestedChildren > 0) {
      throw new IommuError('EBUSY', `domain ${this.id} is in use by ${this.users.size} device(s)/PASID(s) and ${this.nestedChildren} nested domain(s)`);
    }
    // free_io_pgtable_ops → tlb_flush_all: drop every cached translation before the id is reused.
    await this.flushTlb();
    this.freed = true;
    this.pgtable.free();
    this.releaseIds();
    this.host.domainFreed(this);
  }
}
