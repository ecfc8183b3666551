/**
 * Stage-2 paging domain (Linux ARM_SMMU_DOMAIN_S2, the nest parent): an `IoPgtableArm` 's2'
 * table described by an STE (§2.3 "S2") tagged with a VMID; invalidation by TLBI_S2_IPA (range)
 * / TLBI_S12_VMALL, and for a nest parent a TLBI_NH_ALL of the VMID afterwards (the nested
 * stage-1 entries were built over the old stage 2).
 */
import type { DomainAllocFlags } from '@iommulab/driver-api';
import type { IoPgtableArm } from '../pgtable/index.js';
import { cmdTlbiNhAll, cmdTlbiS12Vmall, cmdTlbiS2Ipa } from './cmd-build.js';
import type { IdAllocator } from './id-alloc.js';
import type { SmmuMaster } from './master.js';
import { SmmuPagingDomain, type DomainHost } from './paging-domain.js';
import { makeS2Ste } from './ste-build.js';
import type { TlbiRangeCmd } from './tlb-inv.js';

/** A stage-2 paging domain. */
export class SmmuS2Domain extends SmmuPagingDomain {
  readonly stage = 's2' as const;
  /** VMIDs of vIOMMUs built over this parent (their entries are flushed with the parent's). @internal */
  readonly extraVmids = new Set<number>();

  /** @internal use `SmmuV3Driver.domainAllocPaging` */
  constructor(
    host: DomainHost,
    id: number,
    pgtable: IoPgtableArm,
    flags: DomainAllocFlags,
    /** The domain's VMID. */
    readonly vmid: number,
    private readonly vmids: IdAllocator,
  ) {
    super(host, id, pgtable, flags);
  }

  /** STE.S2FWB for this domain: a nest parent on an SMMU with IDR3.FWB (Linux). */
  get fwb(): boolean {
    return this.flags.nestParent === true && this.host.probe.fwb;
  }

  /** The STE of a master attached to this domain (`arm_smmu_make_s2_domain_ste`). */
  makeSte(master: SmmuMaster, ats: boolean, out: Uint32Array, vmid = this.vmid): Uint32Array {
    return makeS2Ste(out, {
      vmid,
      vtcr: this.pgtable.vtcrValue(),
      s2ttb: this.pgtable.pgdPa,
      ats,
      stallEnabled: master.stallEnabled,
      fwb: this.fwb,
      attrTypesOvr: this.host.probe.attrTypesOvr,
    });
  }

  private allVmids(): number[] {
    return [this.vmid, ...this.extraVmids];
  }

  protected submitTlbiRange(plan: readonly TlbiRangeCmd[], leaf: boolean): Promise<void> {
    const vmids = this.allVmids();
    const n = plan.length;
    return this.host.cmdq.submit(n * vmids.length, (u32, w, k) => {
      const c = plan[k % n];
      cmdTlbiS2Ipa(u32, w, vmids[Math.floor(k / n)], c.addr, leaf, c.tg, c.ttl, c.num, c.scale);
    });
  }

  protected flushTlb(): Promise<void> {
    const vmids = this.allVmids();
    return this.host.cmdq.submit(vmids.length, (u32, w, k) => cmdTlbiS12Vmall(u32, w, vmids[k]));
  }

  protected override afterInvalidate(p: Promise<void>): Promise<void> {
    if (this.flags.nestParent !== true) return p;
    const vmids = this.allVmids();
    return p.then(() => this.host.cmdq.submit(vmids.length, (u32, w, k) => cmdTlbiNhAll(u32, w, vmids[k])));
  }

  protected releaseIds(): void {
    this.vmids.free(this.vmid);
  }
}
