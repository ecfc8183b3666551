/**
 * Stage-1 paging domain (Linux ARM_SMMU_DOMAIN_S1): an `IoPgtableArm` 's1' table described by a
 * CD (§3.3) tagged with an ASID; invalidation by TLBI_NH_VA (range) / TLBI_NH_ASID with VMID 0.
 */
import { CmdOp } from '../codec/index.js';
import type { DomainAllocFlags } from '@iommulab/driver-api';
import type { IoPgtableArm } from '../pgtable/index.js';
import { makeS1Cd } from './cd-build.js';
import { cmdTlbiNhAsid, cmdTlbiVa } from './cmd-build.js';
import type { IdAllocator } from './id-alloc.js';
import type { SmmuMaster } from './master.js';
import { SmmuPagingDomain, type DomainHost } from './paging-domain.js';
import type { TlbiRangeCmd } from './tlb-inv.js';

/** A stage-1 paging domain. */
export class SmmuS1Domain extends SmmuPagingDomain {
  readonly stage = 's1' as const;

  /** @internal use `SmmuV3Driver.domainAllocPaging` */
  constructor(
    host: DomainHost,
    id: number,
    pgtable: IoPgtableArm,
    flags: DomainAllocFlags,
    /** The domain's ASID. */
    readonly asid: number,
    private readonly asids: IdAllocator,
  ) {
    super(host, id, pgtable, flags);
  }

  /** The CD this domain needs in a master's CD table (`arm_smmu_make_s1_cd`). */
  makeCd(master: SmmuMaster, out: Uint32Array): Uint32Array {
    return makeS1Cd(out, {
      tcr: this.pgtable.tcr,
      ttb0: this.pgtable.pgdPa,
      asid: this.asid,
      stall: master.stallEnabled,
      dirty: this.flags.dirtyTracking === true,
      mair: this.pgtable.mair,
    });
  }

  protected submitTlbiRange(plan: readonly TlbiRangeCmd[], leaf: boolean): Promise<void> {
    const asid = this.asid;
    return this.host.cmdq.submit(plan.length, (u32, w, k) => {
      const c = plan[k];
      cmdTlbiVa(u32, w, CmdOp.TLBI_NH_VA, asid, 0, c.addr, leaf, c.tg, c.ttl, c.num, c.scale);
    });
  }

  protected flushTlb(): Promise<void> {
    const asid = this.asid;
    return this.host.cmdq.submit(1, (u32, w) => cmdTlbiNhAsid(u32, w, asid, 0));
  }

  protected releaseIds(): void {
    this.asids.free(this.asid);
  }
}
