/**
 * SmmuV3Driver: the Linux-style host driver of the SMMUv3 model (implements driver-api
 * `IommuDriver`). It reaches the hardware only through its DriverContext — MMIO registers, the
 * stream table / CD tables / page tables / queues it allocates in PhysMem, and the `regs.irq`
 * doorbell — so the same code runs against an in-thread model and one in a worker.
 *
 * Structure follows Linux `arm-smmu-v3.c`: probe (IDRs, Linux refusals) and reset (§1.6);
 * per-device masters with a StreamID each; STE / CD writes through the hitless / breaking update
 * protocol (§2.6) with CFGI + CMD_SYNC; stage-1 paging domains (ASID, CD) and stage-2 domains
 * (VMID, S2 STE); identity (bypass STE) and blocked (abort STE); PASIDs in the master's CD table
 * with S1DSS giving the RID's behaviour; range TLBIs, ATC invalidation; EVTQ / PRIQ draining
 * into driver-api faults; PRI responses and stall resumes.
 */
import {
  deliverFault,
  isStopMarker,
  HwCap,
  IommuError,
  type AttachTarget,
  type BackendCapabilities,
  type DeviceSpec,
  type DomainAllocFlags,
  type DriverContext,
  type HwInfo,
  type IommuDevice,
  type IommuDriver,
  type IommuFault,
  type IommuViommu,
  type NestedDomain,
  type PageResponse,
  type PagingDomain,
  type PagingUserData,
  type ReservedRegion,
  type ViommuAllocEnv,
} from '@iommulab/driver-api';
import type { PhysMem, RegisterFile } from '@iommulab/runtime';
import { CMDQ_ENT_BYTES, EVTQ_ENT_BYTES, PRIQ_ENT_BYTES, S1Dss } from '../codec/index.js';
import { IoPgtableArm } from '../pgtable/index.js';
import { CD_WORDS, getCdUsed } from './cd-build.js';
import { CdTable } from './cd-table.js';
import {
  cmdAtcInvAll,
  cmdCfgiCd,
  cmdCfgiSte,
  cmdPrefetchConfig,
  cmdPriResp,
  cmdResume,
  priRespOf,
  resumeActionOf,
} from './cmd-build.js';
import { SmmuCmdq } from './cmdq.js';
import { SmmuS1Domain } from './domain-s1.js';
import { SmmuS2Domain } from './domain-s2.js';
import { writeEntry, type EntryWriter } from './entry-update.js';
import { SmmuEventQueues, decodeEvent, decodePriRecord } from './events.js';
import { IOMMU_HW_INFO_TYPE_ARM_SMMUV3, IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_VIOMMU_TYPE_ARM_SMMUV3, buildHwInfoArmSmmuv3 } from './hw-info.js';
import { IdAllocator } from './id-alloc.js';
import { SmmuMaster } from './master.js';
import { SmmuNestedDomain, type NestedHost } from './nested-domain.js';
import type { DomainHost, SmmuPagingDomain } from './paging-domain.js';
import { CTXDESC_LINEAR_CDMAX, disableSmmu, probeIdrs, resetSmmu, type SmmuLayout, type SmmuProbe } from './probe.js';
import { STE_WORDS, getSteUpdateSafe, getSteUsed, makeAbortSte, makeBypassSte, makeCdTableSte } from './ste-build.js';
import { StreamTable } from './strtab.js';
import { SmmuViommu } from './viommu.js';

/** Driver options (from `DriverContext.options`; the hardware model reads its own keys). */
export interface SmmuV3DriverOptions {
  /** log2 of CMDQ entries the driver allocates (default 10; capped at IDR1.CMDQS; ≥ 7). */
  readonly driverCmdqLog2?: number;
  /** log2 of EVTQ entries (default 10; capped at IDR1.EVENTQS). */
  readonly driverEvtqLog2?: number;
  /** log2 of PRIQ entries (default 10; capped at IDR1.PRIQS). */
  readonly driverPriqLog2?: number;
  /** Use MSI-polled CMD_SYNCs when the SMMU allows it (IDR0.MSI && COHACC). Default true. */
  readonly driverMsiPoll?: boolean;
  /** StreamIDs of devices firmware describes as able to stall ("dma-can-stall"). */
  readonly stallRids?: readonly number[];
}

/** Linux `MSI_IOVA_BASE`: start of the software MSI window every device reserves. */
export const MSI_IOVA_BASE = 0x8000000;
/** Linux `MSI_IOVA_LENGTH`: size of the software MSI window. */
export const MSI_IOVA_LENGTH = 0x100000;

/** The most the SMMUv3 backend can do (the plugin's declared capabilities; a probe may report less). */
export const SMMUV3_CAPABILITIES: BackendCapabilities = {
  pageSizes: [4096, 2 ** 21, 2 ** 30],
  aperture: { start: 0, last: 2 ** 48 - 1 },
  ridBits: 16,
  pasidBits: 20,
  nesting: true,
  dirtyTracking: true,
  pri: true,
  stall: true,
  ats: true,
  rangeInvalidation: true,
  hwInfoType: IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  nestedDataTypes: [IOMMU_HWPT_DATA_ARM_SMMUV3],
};

/** Linux stage-1 input size (VA_BITS 48; our choice keeps 48 even with IDR5.VAX). */
const S1_IAS = 48;

type Domain = SmmuS1Domain | SmmuS2Domain | SmmuNestedDomain;
type Master = SmmuMaster<Domain, SmmuS1Domain>;

function intOpt(o: Readonly<Record<string, unknown>>, k: string, d: number, min: number, max: number, id: string): number {
  const v = o[k] ?? d;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new IommuError('EINVAL', `instance ${id}: option ${k} = ${String(v)} is not an integer in ${min}..${max}`);
  }
  return v;
}

function frames(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / 4096));
}

/** The SMMUv3 host driver. Create with {@link SmmuV3Driver.create} / {@link createSmmuV3Driver}. */
export class SmmuV3Driver implements IommuDriver, DomainHost, NestedHost {
  readonly backendId = 'arm-smmuv3';
  readonly capabilities: BackendCapabilities;
  readonly instanceId: string;
  /** What the probe learnt from the ID registers. */
  readonly probe: SmmuProbe;
  /** The command queue producer. */
  readonly cmdq: SmmuCmdq;
  /** The stream table. */
  readonly strtab: StreamTable;
  /** Queue placement (register values written at reset). */
  readonly layout: SmmuLayout;
  /** CR0 after reset. */
  readonly cr0: number;
  /** vIOMMU types {@link SmmuV3Driver.viommuAlloc} takes (with nesting). */
  readonly viommuTypes: readonly number[];
  readonly mem: PhysMem;
  private readonly regs: RegisterFile;
  private readonly timeoutMs: number;
  private readonly queues: SmmuEventQueues;
  private readonly masters = new Map<number, Master>();
  private readonly domains = new Set<Domain>();
  private readonly asids: IdAllocator;
  private readonly vmids: IdAllocator;
  private readonly stallRids: ReadonlySet<number>;
  private readonly viommus = new Set<SmmuViommu>();
  private readonly handlers = new Set<(f: IommuFault) => unknown>();
  /** Stalled transactions reported and not answered yet (`sid:stag`). */
  private readonly pendingStalls = new Set<string>();
  private readonly locks = new Map<number, Promise<unknown>>();
  private readonly offIrq: () => void;
  private nextId = 1;
  private drainScheduled = false;
  private irqLoopRunning = false;
  private closed = false;
  /** Commands the driver sent on its own (auto-responses) that failed. */
  autoResponseErrors = 0;

  /**
   * Probes the SMMU behind `ctx` (IDRs), allocates the stream table and queues, and resets it
   * (smmuv3.md §1.6).
   * @throws IommuError ENODEV (an SMMU Linux would refuse), EINVAL (bad options), ENOMEM, ETIMEDOUT
   */
  static async create(ctx: DriverContext): Promise<SmmuV3Driver> {
    const { regs, instanceId, mem } = ctx;
    const o = ctx.options ?? {};
    const msiOpt = o.driverMsiPoll;
    if (msiOpt !== undefined && typeof msiOpt !== 'boolean') throw new IommuError('EINVAL', `instance ${instanceId}: option driverMsiPoll must be a boolean`);
    const stallRids = o.stallRids ?? [];
    if (!Array.isArray(stallRids) || stallRids.some((r) => !Number.isInteger(r) || r < 0)) {
      throw new IommuError('EINVAL', `instance ${instanceId}: option stallRids must be an array of StreamIDs`);
    }
    const probe = probeIdrs(regs, instanceId, { msiPoll: msiOpt as boolean | undefined });
    const cmdqLog2 = Math.min(probe.cmdqMaxLog2, intOpt(o, 'driverCmdqLog2', 10, 7, 19, instanceId));
    const evtqLog2 = Math.min(probe.evtqMaxLog2, intOpt(o, 'driverEvtqLog2', 10, 0, 19, instanceId));
    const priqLog2 = Math.min(probe.priqMaxLog2, intOpt(o, 'driverPriqLog2', 10, 0, 19, instanceId));
    const allocated: Array<[number, number]> = [];
    const alloc = (bytes: number): number => {
      const n = frames(bytes);
      try {
        const pa = mem.allocFrames(n, n);
        allocated.push([pa, n]);
        return pa;
      } catch (e) {
        throw new IommuError('ENOMEM', `instance ${instanceId}: no memory for the SMMU queues`, { cause: e });
      }
    };
    let strtab: StreamTable | undefined;
    try {
      strtab = StreamTable.create(mem, probe.sidBits, probe.twoLevelStrtab, instanceId);
      const layout: SmmuLayout = {
        strtabPa: strtab.basePa,
        strtabBaseCfg: strtab.baseCfg,
        cmdqPa: alloc(CMDQ_ENT_BYTES << cmdqLog2),
        cmdqLog2,
        evtqPa: alloc(EVTQ_ENT_BYTES << evtqLog2),
        evtqLog2,
        priqPa: probe.pri ? alloc(PRIQ_ENT_BYTES << priqLog2) : 0,
        priqLog2: probe.pri ? priqLog2 : 0,
      };
      const cmdq = new SmmuCmdq({ instanceId, mem, regs, base: layout.cmdqPa, log2: cmdqLog2, timeoutMs: ctx.timeoutMs, msiPoll: probe.msiPoll });
      const cr0 = await resetSmmu({ instanceId, regs, timeoutMs: ctx.timeoutMs }, probe, layout, cmdq);
      return new SmmuV3Driver(ctx, probe, strtab, layout, cmdq, cr0, new Set(stallRids as number[]));
    } catch (e) {
      for (const [pa, n] of allocated) mem.freeFrames(pa, n);
      strtab?.free();
      throw e;
    }
  }

  private constructor(
    ctx: DriverContext,
    probe: SmmuProbe,
    strtab: StreamTable,
    layout: SmmuLayout,
    cmdq: SmmuCmdq,
    cr0: number,
    stallRids: ReadonlySet<number>,
  ) {
    this.instanceId = ctx.instanceId;
    this.mem = ctx.mem;
    this.regs = ctx.regs;
    this.timeoutMs = ctx.timeoutMs;
    this.probe = probe;
    this.strtab = strtab;
    this.layout = layout;
    this.cmdq = cmdq;
    this.cr0 = cr0;
    this.stallRids = stallRids;
    this.asids = new IdAllocator(probe.asidBits, 'ASID');
    this.vmids = new IdAllocator(probe.vmidBits, 'VMID');
    this.queues = new SmmuEventQueues({
      mem: this.mem,
      regs: this.regs,
      evtqPa: layout.evtqPa,
      evtqLog2: layout.evtqLog2,
      priqPa: layout.priqPa,
      priqLog2: layout.priqLog2,
      pri: probe.pri,
    });
    const s1Aperture = probe.s1 ? S1_IAS : probe.ias;
    this.capabilities = {
      pageSizes: probe.pageSizes,
      aperture: { start: 0, last: 2 ** s1Aperture - 1 },
      ridBits: Math.min(probe.sidBits, strtab.log2Size),
      pasidBits: this.maxSsidBits(),
      nesting: probe.nesting,
      dirtyTracking: this.dirtyCapable,
      pri: probe.pri,
      stall: probe.stalls,
      ats: probe.ats,
      rangeInvalidation: probe.ril,
      hwInfoType: IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
      nestedDataTypes: probe.nesting ? [IOMMU_HWPT_DATA_ARM_SMMUV3] : [],
    };
    // `arm_smmu_get_viommu_size`: FEAT_NESTING, and S2FWB (this model's devices are never CANWBS)
    this.viommuTypes = probe.nesting && probe.fwb ? [IOMMU_VIOMMU_TYPE_ARM_SMMUV3] : [];
    // Same-thread interrupt (in-thread model): drain soon, outside the model's service().
    this.offIrq = this.regs.onIrq(() => this.scheduleDrain());
  }

  /** PASID bits a master may use: SSIDSIZE, capped at 10 without CD2L (Linux); 0 without S1P. */
  private maxSsidBits(): number {
    if (!this.probe.s1) return 0;
    return this.probe.twoLevelCd ? this.probe.ssidBits : Math.min(this.probe.ssidBits, CTXDESC_LINEAR_CDMAX);
  }

  /** `arm_smmu_dbm_capable`: HTTU with dirty (HD) and coherent table walks, and stage 1. */
  get dirtyCapable(): boolean {
    return this.probe.s1 && this.probe.httu === 2 && this.probe.coherent;
  }

  // ------------------------------------------------------------------------------ host hooks

  /** @internal */
  checkAlive(): void {
    if (this.closed) throw new IommuError('ENODEV', `instance ${this.instanceId}: the SMMUv3 driver was shut down`);
  }

  /** @internal */
  domainFreed(domain: SmmuPagingDomain | SmmuNestedDomain): void {
    this.domains.delete(domain as Domain);
  }

  /** Runs `fn` after every earlier per-device operation of `rid` (the iommu group mutex). */
  private serial<T>(rid: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(rid) ?? Promise.resolve();
    const p = prev.then(fn, fn);
    const tail = p.catch(() => undefined);
    this.locks.set(rid, tail);
    void tail.then(() => {
      if (this.locks.get(rid) === tail) this.locks.delete(rid);
    });
    return p;
  }

  private master(dev: IommuDevice, op: string): Master {
    this.checkAlive();
    const m = this.masters.get(dev?.rid);
    if (m === undefined || m.dev !== dev) throw new IommuError('ENODEV', `${op}: device ${String(dev?.rid)} is not probed on instance ${this.instanceId}`);
    return m;
  }

  /** The master of `dev` (tests, vIOMMU). @internal */
  masterOf(dev: IommuDevice): Master {
    return this.master(dev, 'masterOf');
  }

  // ------------------------------------------------------------------------------ STE / CD writes

  private steWriter(m: Master): EntryWriter {
    const sid = m.sid;
    return {
      getUsed: getSteUsed,
      getUpdateSafe: getSteUpdateSafe,
      sync: () => this.cmdq.submit(1, (u32, w) => cmdCfgiSte(u32, w, sid, true)),
    };
  }

  private cdWriter(m: Master, ssid: number): EntryWriter {
    const sid = m.sid;
    return {
      getUsed: getCdUsed,
      sync: () => this.cmdq.submit(1, (u32, w) => cmdCfgiCd(u32, w, sid, ssid, true)),
    };
  }

  /** `arm_smmu_install_ste_for_dev`: the §2.6 protocol, then CMD_PREFETCH_CONFIG. @internal */
  async installSte(m: Master, target: Uint32Array): Promise<void> {
    const w = this.strtab.ensureSte(m.sid);
    await writeEntry(this.mem, w, target, this.steWriter(m));
    m.ste.set(target.subarray(0, STE_WORDS));
    const sid = m.sid;
    await this.cmdq.issue(1, (u32, w2) => cmdPrefetchConfig(u32, w2, sid));
  }

  private ensureCdTable(m: Master): CdTable {
    if (m.cdTable === undefined) m.cdTable = CdTable.create(this.mem, m.ssidBits, this.probe.twoLevelCd);
    return m.cdTable;
  }

  /** `arm_smmu_write_cd_entry` at `ssid` (allocating the leaf; a new L1CD is synced with Leaf = 0). */
  private async writeCd(m: Master, ssid: number, target: Uint32Array): Promise<void> {
    const t = this.ensureCdTable(m);
    const { w, newL1 } = t.ensureCd(ssid);
    const sid = m.sid;
    if (newL1) await this.cmdq.submit(1, (u32, w2) => cmdCfgiCd(u32, w2, sid, ssid, false));
    await writeEntry(this.mem, w, target, this.cdWriter(m, ssid));
  }

  /** `arm_smmu_clear_cd`. */
  private async clearCd(m: Master, ssid: number): Promise<void> {
    const w = m.cdTable?.cdWord(ssid) ?? -1;
    if (w < 0) return;
    await writeEntry(this.mem, w, new Uint32Array(CD_WORDS), this.cdWriter(m, ssid));
  }

  /** The cdtable STE of `m` with the given S1DSS. */
  private cdTableSte(m: Master, s1dss: number, ats: boolean): Uint32Array {
    const t = this.ensureCdTable(m);
    return makeCdTableSte(new Uint32Array(STE_WORDS), {
      cdPtr: t.basePa,
      s1fmt: t.s1fmt,
      s1cdmax: t.s1cdmax,
      s1dss,
      ats,
      smmuStalls: this.probe.stalls,
      stallEnabled: m.stallEnabled,
      attrTypesOvr: this.probe.attrTypesOvr,
    });
  }

  /** ATC_INV of everything the device cached (SSV = 0, or one SSID) + CMD_SYNC. */
  private atcInvMaster(m: Master, ssid: number): Promise<void> {
    const sid = m.sid;
    return this.cmdq.submit(1, (u32, w) => cmdAtcInvAll(u32, w, sid, ssid));
  }

  // ------------------------------------------------------------------------------ devices

  async probeDevice(spec: DeviceSpec): Promise<IommuDevice> {
    this.checkAlive();
    const rid = spec?.rid;
    if (typeof rid !== 'number' || !this.strtab.covers(rid) || rid >= 2 ** this.probe.sidBits) {
      throw new IommuError('ENODEV', `probeDevice: StreamID ${String(rid)} is outside the ${this.capabilities.ridBits}-bit stream table of instance ${this.instanceId}`);
    }
    if (this.masters.has(rid)) throw new IommuError('EBUSY', `probeDevice: StreamID ${rid} is already probed`);
    const want = spec.pasidBits ?? 0;
    if (!Number.isInteger(want) || want < 0) throw new IommuError('EINVAL', `probeDevice: pasidBits ${String(want)}`);
    const ssidBits = Math.min(want, this.maxSsidBits());
    const dev: IommuDevice = { rid, spec: { ...spec }, maxPasidLog2: ssidBits };
    const m: Master = new SmmuMaster(dev, {
      ssidBits,
      atsCapable: this.probe.ats && (spec.ats === true || spec.pri === true),
      priCapable: this.probe.pri && spec.pri === true,
      stallEnabled: this.probe.stallForce || (this.probe.stalls && this.stallRids.has(rid)),
    });
    // `arm_smmu_init_sid_strtab`: the L2 table of this SID (abort STEs) exists from now on.
    this.strtab.ensureSte(rid);
    makeAbortSte(m.ste);
    this.masters.set(rid, m);
    return dev;
  }

  async releaseDevice(dev: IommuDevice): Promise<void> {
    const m = this.master(dev, 'releaseDevice');
    return this.serial(m.sid, async () => {
      this.dropUsers(m);
      m.ridTarget = 'blocked';
      const wasAts = m.atsEnabled;
      m.atsEnabled = false;
      await this.installSte(m, makeAbortSte(new Uint32Array(STE_WORDS)));
      if (wasAts) await this.atcInvMaster(m, -1);
      m.pasids.clear();
      m.cdTable?.free();
      m.cdTable = undefined;
      this.masters.delete(m.sid);
    });
  }

  private userKey(m: Master, ssid: number): string {
    return ssid < 0 ? `${m.sid}` : `${m.sid}:${ssid}`;
  }

  private usersOf(t: Domain | 'blocked' | 'identity'): Map<string, { master: SmmuMaster; ssid: number }> | undefined {
    return typeof t === 'string' ? undefined : t.users;
  }

  private dropUsers(m: Master): void {
    this.usersOf(m.ridTarget)?.delete(this.userKey(m, -1));
    for (const [pasid, d] of m.pasids) d.users.delete(this.userKey(m, pasid));
  }

  hwInfo(dev: IommuDevice): HwInfo {
    const m = this.master(dev, 'hwInfo');
    return {
      type: IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
      data: buildHwInfoArmSmmuv3(this.probe.idr, this.probe.iidr, this.probe.aidr),
      capabilities: this.dirtyCapable && !m.dev.spec.noDirty ? HwCap.DIRTY_TRACKING : 0,
      maxPasidLog2: m.ssidBits,
    };
  }

  reservedRegions(dev: IommuDevice): readonly ReservedRegion[] {
    this.master(dev, 'reservedRegions');
    return [{ start: MSI_IOVA_BASE, last: MSI_IOVA_BASE + MSI_IOVA_LENGTH - 1, type: 'msi' }];
  }

  // ------------------------------------------------------------------------------ domains

  async domainAllocPaging(dev: IommuDevice | null, flags: DomainAllocFlags = {}, userData?: PagingUserData): Promise<PagingDomain> {
    this.checkAlive();
    const m = dev === null || dev === undefined ? undefined : this.master(dev, 'domainAllocPaging');
    if (userData !== undefined) throw new IommuError('EOPNOTSUPP', 'domainAllocPaging: the SMMUv3 driver takes no paging-domain data');
    const nest = flags.nestParent === true;
    const dirty = flags.dirtyTracking === true;
    const pasid = flags.pasid === true;
    let stage: 's1' | 's2';
    if (nest) {
      if (dirty || pasid) throw new IommuError('EOPNOTSUPP', 'domainAllocPaging: a nest parent cannot also have dirty tracking or PASID');
      if (!this.probe.nesting) throw new IommuError('EOPNOTSUPP', 'domainAllocPaging: the SMMU has no nesting (needs S1P and S2P)');
      stage = 's2';
    } else if (dirty || pasid) {
      if (!this.probe.s1) throw new IommuError('EOPNOTSUPP', 'domainAllocPaging: dirty tracking / PASID need stage 1');
      stage = 's1';
    } else {
      stage = this.probe.s1 ? 's1' : 's2';
    }
    if (dirty && (!this.dirtyCapable || m?.dev.spec.noDirty)) {
      throw new IommuError('EOPNOTSUPP', `domainAllocPaging: dirty tracking is not supported${m?.dev.spec.noDirty ? ` by device ${m.sid}` : ' (needs HTTU = 2 and COHACC)'}`);
    }
    const p = this.probe;
    const id = this.nextId++;
    if (stage === 's1') {
      const asid = this.asids.alloc();
      let pt: IoPgtableArm;
      try {
        pt = new IoPgtableArm(this.mem, { fmt: 's1', granule: p.granule, ias: S1_IAS, oas: p.ias, coherent: p.coherent, dbm: dirty });
      } catch (e) {
        this.asids.free(asid);
        throw e;
      }
      const d = new SmmuS1Domain(this, id, pt, flags, asid, this.asids);
      this.domains.add(d);
      return d;
    }
    const vmid = this.vmids.alloc();
    let pt: IoPgtableArm;
    try {
      pt = new IoPgtableArm(this.mem, { fmt: 's2', granule: p.granule, ias: p.ias, oas: p.oas, coherent: p.coherent });
    } catch (e) {
      this.vmids.free(vmid);
      throw e;
    }
    const d = new SmmuS2Domain(this, id, pt, flags, vmid, this.vmids);
    this.domains.add(d);
    return d;
  }

  /**
   * Nested domains straight over a nest parent: Linux's arm_smmu_ops has no `domain_alloc_nested`
   * (since 6.13 an SMMUv3 nested domain is made only on a vIOMMU, `arm_vsmmu_alloc_domain_nested`),
   * so IOMMU_HWPT_ALLOC with `pt_id` = a nest-parent HWPT answers EOPNOTSUPP.
   */
  async domainAllocNested(dev: IommuDevice, _parent: PagingDomain, dataType: number, _data: Uint8Array, _flags: DomainAllocFlags = {}): Promise<NestedDomain> {
    this.master(dev, 'domainAllocNested');
    throw new IommuError('EOPNOTSUPP', `domainAllocNested: SMMUv3 nested domains (data type ${dataType}) are allocated on a vIOMMU (IOMMU_VIOMMU_TYPE_ARM_SMMUV3), not on a nest-parent HWPT`);
  }

  /** The nest-parent S2 domain `parent` of this driver, or EINVAL. @internal */
  nestParent(parent: PagingDomain, op: string): SmmuS2Domain {
    if (!(parent instanceof SmmuS2Domain) || !this.domains.has(parent)) {
      throw new IommuError('EINVAL', `${op}: the parent is not a paging domain of instance ${this.instanceId}`);
    }
    if (!parent.flags.nestParent) throw new IommuError('EINVAL', `${op}: domain ${parent.id} was not allocated as a nest parent`);
    return parent;
  }

  /** Registers a nested domain made by a vIOMMU. @internal */
  addNestedDomain(d: SmmuNestedDomain): void {
    this.domains.add(d);
  }

  /** A fresh domain id. @internal */
  allocDomainId(): number {
    return this.nextId++;
  }

  private resolve(target: AttachTarget, op: string): Domain | 'blocked' | 'identity' {
    if (target === 'blocked' || target === 'identity') return target;
    if (target instanceof SmmuS1Domain || target instanceof SmmuS2Domain || target instanceof SmmuNestedDomain) {
      if (target.isFreed) throw new IommuError('ENOENT', `${op}: domain ${target.id} was freed`);
      if (this.domains.has(target)) return target;
    }
    throw new IommuError('EINVAL', `${op}: domain ${String((target as { id?: unknown })?.id)} does not belong to instance ${this.instanceId}`);
  }

  // ------------------------------------------------------------------------------ attach

  async attachDevice(dev: IommuDevice, target: AttachTarget): Promise<void> {
    const m = this.master(dev, 'attachDevice');
    const t = this.resolve(target, 'attachDevice');
    return this.serial(m.sid, () => this.attachRid(m, t));
  }

  private async attachRid(m: Master, t: Domain | 'blocked' | 'identity'): Promise<void> {
    this.checkAlive();
    if (typeof t !== 'string') {
      const pd = t instanceof SmmuNestedDomain ? t.parent : t;
      if (pd.flags.dirtyTracking && m.dev.spec.noDirty) {
        throw new IommuError('EINVAL', `attachDevice: device ${m.sid} cannot use dirty-tracking domain ${pd.id}`);
      }
      if (!(t instanceof SmmuS1Domain) && m.ssidsInUse) {
        throw new IommuError('EBUSY', `attachDevice: device ${m.sid} has PASIDs attached; a stage-2 or nested domain cannot share its STE`);
      }
      if (t instanceof SmmuNestedDomain) t.checkAttach(m);
    }
    const ats = m.atsCapable && (typeof t !== 'string' ? t.atsAllowed() : m.ssidsInUse);
    let ste: Uint32Array;
    if (t instanceof SmmuS1Domain) {
      await this.writeCd(m, 0, t.makeCd(m, new Uint32Array(CD_WORDS)));
      ste = this.cdTableSte(m, S1Dss.SSID0, ats);
    } else if (t instanceof SmmuS2Domain) {
      ste = t.makeSte(m, ats, new Uint32Array(STE_WORDS));
    } else if (t instanceof SmmuNestedDomain) {
      ste = t.makeSte(m, ats, new Uint32Array(STE_WORDS));
    } else if (t === 'identity') {
      ste = m.ssidsInUse ? this.cdTableSte(m, S1Dss.BYPASS, ats) : makeBypassSte(new Uint32Array(STE_WORDS), this.probe.attrTypesOvr);
    } else {
      ste = m.ssidsInUse ? this.cdTableSte(m, S1Dss.TERMINATE, ats) : makeAbortSte(new Uint32Array(STE_WORDS));
    }
    const old = m.ridTarget;
    const key = this.userKey(m, -1);
    this.usersOf(old)?.delete(key);
    m.ridTarget = t;
    this.usersOf(t)?.set(key, { master: m, ssid: -1 });
    const wasAts = m.atsEnabled;
    if (wasAts && !ats) m.atsEnabled = false; // ATS off at the device before the STE changes
    await this.installSte(m, ste);
    m.atsEnabled = ats;
    if (old instanceof SmmuS1Domain && !(t instanceof SmmuS1Domain)) await this.clearCd(m, 0);
    if (t instanceof SmmuNestedDomain) t.attached(m);
    if (old instanceof SmmuNestedDomain && old !== t) old.detached(m);
    // The translation changed: flush what the device's ATC holds (SSV = 0: every PASID).
    if (wasAts || ats) await this.atcInvMaster(m, -1);
  }

  async attachPasid(dev: IommuDevice, pasid: number, target: AttachTarget): Promise<void> {
    const m = this.master(dev, 'attachPasid');
    this.checkPasid(m, pasid, 'attachPasid');
    const t = this.resolve(target, 'attachPasid');
    if (t === 'blocked') return this.detachPasid(dev, pasid);
    if (t === 'identity') throw new IommuError('EOPNOTSUPP', 'attachPasid: a PASID cannot be attached to the identity domain');
    if (!(t instanceof SmmuS1Domain)) throw new IommuError('EINVAL', `attachPasid: domain ${t.id} is not a stage-1 paging domain`);
    if (!t.flags.pasid) throw new IommuError('EINVAL', `attachPasid: domain ${t.id} was not allocated with the pasid flag`);
    if (t.flags.dirtyTracking && m.dev.spec.noDirty) throw new IommuError('EINVAL', `attachPasid: device ${m.sid} cannot use dirty-tracking domain ${t.id}`);
    return this.serial(m.sid, async () => {
      this.checkAlive();
      const rid = m.ridTarget;
      if (!(rid === 'blocked' || rid === 'identity' || rid instanceof SmmuS1Domain)) {
        throw new IommuError('EINVAL', `attachPasid: the RID of device ${m.sid} is attached to a stage-2 / nested domain`);
      }
      await this.writeCd(m, pasid, t.makeCd(m, new Uint32Array(CD_WORDS)));
      const key = this.userKey(m, pasid);
      m.pasids.get(pasid)?.users.delete(key);
      const first = !m.ssidsInUse;
      m.pasids.set(pasid, t);
      t.users.set(key, { master: m, ssid: pasid });
      if (first && typeof rid === 'string') {
        // `arm_smmu_update_ste`: the RID's blocked / identity behaviour moves into S1DSS.
        const ats = m.atsCapable;
        await this.installSte(m, this.cdTableSte(m, rid === 'identity' ? S1Dss.BYPASS : S1Dss.TERMINATE, ats));
        m.atsEnabled = ats;
      }
      if (m.atsEnabled) await this.atcInvMaster(m, pasid);
    });
  }

  private checkPasid(m: Master, pasid: number, op: string): void {
    if (m.ssidBits === 0) throw new IommuError('EINVAL', `${op}: device ${m.sid} has no PASID support`);
    if (!Number.isInteger(pasid) || pasid < 1 || pasid >= 2 ** m.ssidBits) {
      throw new IommuError('EINVAL', `${op}: PASID ${pasid} is outside 1..${2 ** m.ssidBits - 1} (PASID 0 is the RID's CD)`);
    }
  }

  async detachPasid(dev: IommuDevice, pasid: number): Promise<void> {
    const m = this.master(dev, 'detachPasid');
    this.checkPasid(m, pasid, 'detachPasid');
    return this.serial(m.sid, async () => {
      const d = m.pasids.get(pasid);
      if (d === undefined) return;
      d.users.delete(this.userKey(m, pasid));
      m.pasids.delete(pasid);
      await this.clearCd(m, pasid);
      const rid = m.ridTarget;
      if (!m.ssidsInUse && typeof rid === 'string') {
        // The last PASID is gone: back to the plain bypass / abort STE, without ATS.
        const wasAts = m.atsEnabled;
        m.atsEnabled = false;
        await this.installSte(m, rid === 'identity' ? makeBypassSte(new Uint32Array(STE_WORDS), this.probe.attrTypesOvr) : makeAbortSte(new Uint32Array(STE_WORDS)));
        if (wasAts) await this.atcInvMaster(m, -1);
      } else if (m.atsEnabled) {
        await this.atcInvMaster(m, pasid);
      }
    });
  }

  /** What the RID of `dev` is attached to (tests, core). */
  attachedDomain(dev: IommuDevice): PagingDomain | NestedDomain | 'blocked' | 'identity' {
    return this.master(dev, 'attachedDomain').ridTarget;
  }

  /** The domain a PASID of `dev` is attached to, or undefined. */
  pasidDomain(dev: IommuDevice, pasid: number): PagingDomain | undefined {
    return this.master(dev, 'pasidDomain').pasids.get(pasid);
  }

  // ------------------------------------------------------------------------------ faults

  /**
   * `arm_smmu_master_iopf_supported`: a stall-capable master, or (unlike Linux, which has no PRI
   * handling) a PRI-capable one on an SMMU with IDR0.PRI.
   */
  iopfCapable(dev: IommuDevice): boolean {
    const m = this.master(dev, 'iopfCapable');
    return m.stallEnabled || m.priCapable;
  }

  async pageResponse(dev: IommuDevice, response: PageResponse): Promise<void> {
    const m = this.master(dev, 'pageResponse');
    const { pasid, grpid, code } = response;
    if (code !== 0 && code !== 1 && code !== 2) throw new IommuError('EINVAL', `pageResponse: code ${String(code)} is not SUCCESS / INVALID / FAILURE`);
    if (pasid !== -1 && (!Number.isInteger(pasid) || pasid < 0 || pasid > 0xfffff)) throw new IommuError('EINVAL', `pageResponse: PASID ${pasid}`);
    const key = `${m.sid}:${grpid}`;
    const sid = m.sid;
    if (this.pendingStalls.has(key) || (m.stallEnabled && !m.priCapable)) {
      if (!Number.isInteger(grpid) || grpid < 0 || grpid > 0xffff) throw new IommuError('EINVAL', `pageResponse: STAG ${grpid} is not 0..65535`);
      this.pendingStalls.delete(key);
      // CMD_RESUME, no CMD_SYNC (Linux): resolved once the SMMU has consumed it.
      await this.cmdq.issue(1, (u32, w) => cmdResume(u32, w, sid, grpid, resumeActionOf(code)));
      return;
    }
    if (!m.priCapable) throw new IommuError('EINVAL', `pageResponse: device ${m.sid} has neither PRI nor stall`);
    if (!Number.isInteger(grpid) || grpid < 0 || grpid > 0x1ff) throw new IommuError('EINVAL', `pageResponse: group index ${grpid} is not 0..511`);
    // CMD_PRI_RESP is fire and forget (no CMD_SYNC).
    await this.cmdq.issue(1, (u32, w) => cmdPriResp(u32, w, sid, pasid, grpid, priRespOf(code)));
  }

  onFault(handler: (fault: IommuFault) => unknown): () => void {
    this.checkAlive();
    this.handlers.add(handler);
    void this.irqLoop();
    return () => {
      this.handlers.delete(handler);
    };
  }

  private scheduleDrain(): void {
    if (this.drainScheduled || this.closed) return;
    this.drainScheduled = true;
    queueMicrotask(() => {
      this.drainScheduled = false;
      if (!this.closed) this.drainNow();
    });
  }

  /** Drains the queues while anyone listens, woken by the irq doorbell (a worker-hosted model). */
  private async irqLoop(): Promise<void> {
    if (this.irqLoopRunning) return;
    this.irqLoopRunning = true;
    try {
      while (!this.closed && this.handlers.size > 0) {
        const seen = this.regs.irq.value;
        this.drainNow();
        if (this.closed || this.handlers.size === 0) break;
        await this.regs.irq.waitAsync(seen, 50);
      }
    } finally {
      this.irqLoopRunning = false;
    }
  }

  async drainFaults(): Promise<number> {
    this.checkAlive();
    return this.drainNow();
  }

  /**
   * GERROR, then EVTQ, then PRIQ (the three interrupt handlers); an overflow seen by a drain is
   * reported after its records (the fault layer then discards partial page requests).
   */
  private drainNow(): number {
    this.cmdq.handleGerror();
    const q = this.queues;
    const evtqOverflows = q.evtqOverflows;
    const priqOverflows = q.priqOverflows;
    let n = q.drainEvents((raw) => this.handleEvent(raw));
    n += q.drainPageRequests((raw) => this.handlePri(raw));
    if (q.evtqOverflows !== evtqOverflows) this.deliver({ kind: 'overflow', queue: 'event' });
    if (q.priqOverflows !== priqOverflows) this.deliver({ kind: 'overflow', queue: 'page-request' });
    return n;
  }

  /** Hands `f` to every handler; true when one took it (driver-api `deliverFault`). */
  private deliver(f: IommuFault): boolean {
    return deliverFault(this.handlers, f);
  }

  private autoIssue(fill: (u32: Uint32Array, w: number) => void): void {
    this.cmdq.issue(1, fill).catch(() => {
      this.autoResponseErrors++;
    });
  }

  private handleEvent(raw: Uint32Array): void {
    const f = decodeEvent(raw);
    const m = this.masters.get(f.rid);
    if (f.kind === 'page-request') {
      // A stalled transaction: reported as an I/O page fault, answered with CMD_RESUME.
      const sid = f.rid;
      const stag = f.grpid;
      this.pendingStalls.add(`${sid}:${stag}`);
      if (m === undefined || !this.deliver(f)) {
        this.pendingStalls.delete(`${sid}:${stag}`);
        this.autoIssue((u32, w) => cmdResume(u32, w, sid, stag, resumeActionOf(1)));
      }
      return;
    }
    // Events of a device behind a vIOMMU go to its vEVENTQ (handled, as Linux).
    if (m !== undefined) for (const v of this.viommus) if (v.reportEvent(m, raw)) return;
    this.deliver(f);
  }

  private handlePri(raw: Uint32Array): void {
    const f = decodePriRecord(raw);
    const m = this.masters.get(f.rid);
    const delivered = m !== undefined && this.deliver(f);
    // Nobody to answer: as Linux, deny a group once its last request arrived (not stop markers).
    if (!delivered && f.last && !isStopMarker(f)) {
      const { rid, pasid, grpid } = f;
      this.autoIssue((u32, w) => cmdPriResp(u32, w, rid, pasid, grpid, priRespOf(1)));
    }
  }

  // ------------------------------------------------------------------------------ vIOMMU

  async viommuAlloc(dev: IommuDevice, parent: PagingDomain, type: number, data: Uint8Array, _env?: ViommuAllocEnv): Promise<IommuViommu> {
    this.master(dev, 'viommuAlloc');
    if (type !== IOMMU_VIOMMU_TYPE_ARM_SMMUV3 || !this.probe.nesting) {
      throw new IommuError('EOPNOTSUPP', `viommuAlloc: type ${type} is not IOMMU_VIOMMU_TYPE_ARM_SMMUV3 (or the SMMU has no nesting)`);
    }
    // Linux: the VM must not be able to bypass the cache (VFIO does no cache maintenance): S2FWB,
    // or a device behind a CANWBS root complex (not modelled: DeviceSpec has no such property).
    if (!this.probe.fwb) throw new IommuError('EOPNOTSUPP', 'viommuAlloc: the SMMU has no S2FWB (IDR3.FWB) and the device is not CANWBS');
    const s2 = this.nestParent(parent, 'viommuAlloc');
    if (data !== undefined && data.length > 0 && data.some((b) => b !== 0)) {
      throw new IommuError('EOPNOTSUPP', 'viommuAlloc: the ARM SMMUv3 vIOMMU takes no driver data');
    }
    const v = new SmmuViommu(this, s2);
    this.viommus.add(v);
    return v;
  }

  /** @internal */
  viommuDestroyed(v: SmmuViommu): void {
    this.viommus.delete(v);
  }

  /** Masters by StreamID (vIOMMU). @internal */
  masterBySid(sid: number): Master | undefined {
    return this.masters.get(sid);
  }

  // ------------------------------------------------------------------------------ shutdown

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handlers.clear();
    this.offIrq();
    let err: unknown;
    try {
      await disableSmmu({ instanceId: this.instanceId, regs: this.regs, timeoutMs: this.timeoutMs });
    } catch (e) {
      err = e;
    }
    for (const m of this.masters.values()) m.cdTable?.free();
    this.masters.clear();
    for (const d of this.domains) if (d.kind === 'paging' && !d.isFreed) d.pgtable.free();
    this.domains.clear();
    this.viommus.clear();
    const mem = this.mem;
    const l = this.layout;
    mem.freeFrames(l.cmdqPa, frames(CMDQ_ENT_BYTES << l.cmdqLog2));
    mem.freeFrames(l.evtqPa, frames(EVTQ_ENT_BYTES << l.evtqLog2));
    if (this.probe.pri) mem.freeFrames(l.priqPa, frames(PRIQ_ENT_BYTES << l.priqLog2));
    this.strtab.free();
    if (err !== undefined) throw err;
  }

  /** Driver counters (for reports). */
  stats(): Record<string, number> {
    return {
      devices: this.masters.size,
      domains: this.domains.size,
      asids: this.asids.inUse,
      vmids: this.vmids.inUse,
      cmdqBatches: this.cmdq.stats.batches,
      cmdqCommands: this.cmdq.stats.commands,
      cmdqSyncs: this.cmdq.stats.syncs,
      cmdqIllegal: this.cmdq.stats.illegal,
      gerrorAcks: this.cmdq.stats.gerrorAcks,
      pendingStalls: this.pendingStalls.size,
      autoResponseErrors: this.autoResponseErrors,
      ...this.queues.stats(),
    };
  }
}

/** Backend hook: builds and probes the driver (`BackendPlugin.createDriver`). */
export function createSmmuV3Driver(ctx: DriverContext): Promise<SmmuV3Driver> {
  return SmmuV3Driver.create(ctx);
}

export { DRIVER_OPTION_NAMES } from '../option-names.js';
