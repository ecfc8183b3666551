/**
 * MockDriver: the host driver of the mock IOMMU (implements `IommuDriver`). It reaches the
 * hardware only through its DriverContext: registers (CTRL / CTRL_ACK handshake, queue
 * pointers), tables in PhysMem (device table, PASID tables, page tables) and the command and
 * fault queues. Completion is awaited on the CMD_SYNC word with `regs.irq` as the doorbell, so
 * the same code runs against an in-thread model and one in a worker.
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
  type PagingUserData,
  type DriverContext,
  type FaultReasonCode,
  type HwInfo,
  type IommuDevice,
  type IommuDriver,
  type IommuFault,
  type IommuViommu,
  type NestedDomain,
  type PageResponse,
  type PagingDomain,
  type ReservedRegion,
  type ViommuAllocEnv,
} from '@iommulab/driver-api';
import { RuntimeError, qEmpty, qIdx, qInc, waitUntil, type PhysMem, type RegisterFile } from '@iommulab/runtime';
import {
  DTE_BYTES,
  FAULT_LAST,
  FAULT_PASID_VALID,
  FAULT_RECORD_BYTES,
  FAULT_TYPE_PAGE_REQ,
  L1_BYTES,
  writeCmdInvAll,
  writeCmdInvDte,
  writeCmdInvPasid,
  writeCmdPageResp,
  type Dte,
} from './codec.js';
import {
  IOMMU_HW_INFO_SELFTEST_REGVAL,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HWPT_DATA_SELFTEST,
  MOCK_IOMMUPT_DEFAULT,
  MOCK_IOMMUPT_HUGE,
  IOMMU_TEST_PASID_RESERVED,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  MOCK_HUGE_PAGE_SIZE,
  MOCK_PAGE_SIZE,
} from './constants.js';
import { PasidTable, writeDte } from './device-table.js';
import { DriverCommandQueue, type CommandFiller } from './driver-cmdq.js';
import { MockNestedDomain } from './nested-domain.js';
import { MockPageTable } from './page-table.js';
import { MockPagingDomain, type DomainHost } from './paging-domain.js';
import { MockViommu, mockDeviceCache, setNestedViommu, triggerMockVevent, viommuAttachPrepare, type ViommuHost } from './viommu.js';
import {
  CAP_DIRTY,
  CAP_HUGE,
  CAP_PASID,
  CAP_PASID_WIDTH_SHIFT,
  CAP_PRI,
  CTRL_CMDQ_EN,
  CTRL_EN,
  CTRL_FAULTQ_EN,
  DT_MAX_LOG2,
  MOCK_IDR,
  MOCK_VERSION,
  Q_MAX_LOG2,
  REG_CAP,
  REG_CMDQ_BASE,
  REG_CMDQ_CONS,
  REG_CMDQ_PROD,
  REG_CTRL,
  REG_CTRL_ACK,
  REG_DT_BASE,
  REG_DT_LOG2,
  REG_FAULTQ_BASE,
  REG_FAULTQ_CONS,
  REG_FAULTQ_PROD,
  REG_GERROR,
  REG_GERRORN,
  REG_IDR,
  REG_TEST_PRI_ADDR,
  REG_TEST_PRI_CTRL,
  REG_TEST_PRI_PASID,
  REG_TEST_PRI_RID,
  REG_TEST_PRI_STATUS,
  REG_VERSION,
  TEST_PRI_GO,
  TEST_PRI_GRPID_SHIFT,
  TEST_PRI_LAST,
  TEST_PRI_PASID_VALID,
  TEST_PRI_QUEUED,
} from './regs.js';

/** Driver options (from `DriverContext.options`). */
export interface MockDriverOptions {
  /** log2 of device-table entries: RIDs 0..2^ridBits-1 can be probed (default 8, max 16). */
  readonly ridBits?: number;
  /** log2 of command-queue entries (default 8). */
  readonly cmdqLog2?: number;
  /** log2 of fault-queue entries (default 8). */
  readonly faultqLog2?: number;
}

/** The most the mock backend can do (the plugin's declared capabilities). */
export const MOCK_CAPABILITIES: BackendCapabilities = {
  pageSizes: [MOCK_PAGE_SIZE, MOCK_HUGE_PAGE_SIZE],
  aperture: { start: MOCK_APERTURE_START, last: MOCK_APERTURE_LAST },
  ridBits: 16,
  pasidBits: 20,
  nesting: true,
  dirtyTracking: true,
  pri: true,
  stall: false,
  ats: false,
  rangeInvalidation: true,
  hwInfoType: IOMMU_HW_INFO_TYPE_SELFTEST,
  nestedDataTypes: [IOMMU_HWPT_DATA_SELFTEST],
};

type Target = MockPagingDomain | MockNestedDomain | 'blocked';

interface DeviceState {
  readonly dev: IommuDevice;
  target: Target;
  readonly pasids: Map<number, MockPagingDomain | MockNestedDomain>;
  pasidTable: PasidTable | undefined;
  /** The selftest's pasid_1024_fake_error. */
  pasid1024Armed: boolean;
}

function intOpt(o: Readonly<Record<string, unknown>>, k: string, d: number, min: number, max: number, id: string): number {
  const v = o[k] ?? d;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new IommuError('EINVAL', `instance ${id}: option ${k} = ${String(v)} is not an integer in ${min}..${max}`);
  }
  return v;
}

function parentOf(t: Target): MockPagingDomain | undefined {
  return t === 'blocked' ? undefined : t.kind === 'nested' ? t.parent : t;
}

/** The mock IOMMU host driver. Create with {@link MockDriver.create}. */
export class MockDriver implements IommuDriver, DomainHost {
  readonly backendId = 'mock';
  /** vIOMMU types {@link MockDriver.viommuAlloc} takes (viommu.ts). */
  readonly viommuTypes: readonly number[] = [IOMMU_VIOMMU_TYPE_SELFTEST];
  readonly capabilities: BackendCapabilities;
  readonly instanceId: string;
  private readonly mem: PhysMem;
  private readonly regs: RegisterFile;
  private readonly timeoutMs: number;
  private readonly cap: number;
  private readonly ridBits: number;
  private readonly dt: number;
  private readonly cmdqPa: number;
  private readonly cmdqLog2: number;
  private readonly faultqPa: number;
  private readonly faultqLog2: number;
  private readonly syncPa: number;
  private readonly blockRoot: number;
  private readonly cmdq: DriverCommandQueue;
  private readonly devices = new Map<number, DeviceState>();
  private readonly domains = new Set<MockPagingDomain | MockNestedDomain>();
  private readonly domainIds = new Set<number>();
  /** vIOMMUs not destroyed yet (viommu.ts). */
  private readonly viommus = new Set<MockViommu>();
  private nextDomainId = 1;
  private nextObjectId = 1;
  private readonly handlers = new Set<(f: IommuFault) => unknown>();
  private irqLoopRunning = false;
  private fcons = 0;
  private ovack = 0;
  private closed = false;
  private injectChain: Promise<unknown> = Promise.resolve();
  /** Fault-queue overflows seen (records were lost). */
  faultOverflows = 0;

  /**
   * Probes the hardware behind `ctx` and brings it up: checks IDR / VERSION, allocates the device
   * table, command queue and fault queue, enables them (CTRL → CTRL_ACK handshake), invalidates
   * everything, then enables translation.
   * @throws IommuError ENODEV (not a mock IOMMU), EINVAL (bad options), ENOMEM, ETIMEDOUT
   */
  static async create(ctx: DriverContext): Promise<MockDriver> {
    const { regs, instanceId } = ctx;
    const idr = regs.read32(REG_IDR);
    const version = regs.read32(REG_VERSION);
    if (idr !== MOCK_IDR || version !== MOCK_VERSION) {
      throw new IommuError('ENODEV', `instance ${instanceId}: IDR 0x${idr.toString(16)} / VERSION ${version} is not a mock IOMMU v${MOCK_VERSION}`);
    }
    const o = ctx.options ?? {};
    const ridBits = intOpt(o, 'ridBits', 8, 0, DT_MAX_LOG2, instanceId);
    const cmdqLog2 = intOpt(o, 'cmdqLog2', 8, 1, Q_MAX_LOG2, instanceId);
    const faultqLog2 = intOpt(o, 'faultqLog2', 8, 1, Q_MAX_LOG2, instanceId);
    const mem = ctx.mem;
    const allocated: Array<[number, number]> = [];
    const alloc = (bytes: number, align = 1): number => {
      const frames = Math.max(1, Math.ceil(bytes / 4096));
      try {
        const pa = mem.allocFrames(frames, align);
        allocated.push([pa, frames]);
        return pa;
      } catch (e) {
        for (const [pa, n] of allocated) mem.freeFrames(pa, n);
        throw new IommuError('ENOMEM', `instance ${instanceId}: no memory for the driver's tables and queues`, { cause: e });
      }
    };
    const dt = alloc(DTE_BYTES << ridBits);
    const cmdq = alloc(16 << cmdqLog2);
    const faultq = alloc(FAULT_RECORD_BYTES << faultqLog2);
    const sync = alloc(4096);
    const blockRoot = alloc(L1_BYTES, L1_BYTES / 4096);
    const drv = new MockDriver(ctx, ridBits, dt, cmdq, cmdqLog2, faultq, faultqLog2, sync, blockRoot);
    try {
      await drv.bringUp();
    } catch (e) {
      for (const [pa, n] of allocated) mem.freeFrames(pa, n);
      throw e;
    }
    return drv;
  }

  private constructor(
    ctx: DriverContext,
    ridBits: number,
    dt: number,
    cmdqPa: number,
    cmdqLog2: number,
    faultqPa: number,
    faultqLog2: number,
    syncPa: number,
    blockRoot: number,
  ) {
    this.instanceId = ctx.instanceId;
    this.mem = ctx.mem;
    this.regs = ctx.regs;
    this.timeoutMs = ctx.timeoutMs;
    this.cap = ctx.regs.read32(REG_CAP);
    this.ridBits = ridBits;
    this.dt = dt;
    this.cmdqPa = cmdqPa;
    this.cmdqLog2 = cmdqLog2;
    this.faultqPa = faultqPa;
    this.faultqLog2 = faultqLog2;
    this.syncPa = syncPa;
    this.blockRoot = blockRoot;
    this.cmdq = new DriverCommandQueue(this.instanceId, this.mem, this.regs, cmdqPa, cmdqLog2, syncPa, this.timeoutMs);
    const cap = this.cap;
    this.capabilities = {
      ...MOCK_CAPABILITIES,
      pageSizes: cap & CAP_HUGE ? [MOCK_PAGE_SIZE, MOCK_HUGE_PAGE_SIZE] : [MOCK_PAGE_SIZE],
      ridBits,
      pasidBits: cap & CAP_PASID ? (cap >>> CAP_PASID_WIDTH_SHIFT) & 0xff : 0,
      dirtyTracking: (cap & CAP_DIRTY) !== 0,
      pri: (cap & CAP_PRI) !== 0,
    };
  }

  private async waitAck(value: number): Promise<void> {
    try {
      await waitUntil(() => this.regs.read32(REG_CTRL_ACK) === value, {
        timeoutMs: this.timeoutMs,
        what: `CTRL_ACK = 0x${value.toString(16)}`,
      });
    } catch (e) {
      if (e instanceof RuntimeError && e.code === 'TIMEOUT') {
        throw new IommuError('ETIMEDOUT', `instance ${this.instanceId}: CTRL_ACK did not reach 0x${value.toString(16)} within ${this.timeoutMs} ms (CTRL_ACK = 0x${this.regs.read32(REG_CTRL_ACK).toString(16)})`, { cause: e });
      }
      throw e;
    }
  }

  private async bringUp(): Promise<void> {
    const r = this.regs;
    r.write32(REG_CTRL, 0);
    await this.waitAck(0);
    r.write64(REG_DT_BASE, this.dt);
    r.write32(REG_DT_LOG2, this.ridBits);
    r.write64(REG_CMDQ_BASE, this.cmdqPa + this.cmdqLog2);
    r.write32(REG_CMDQ_PROD, 0);
    r.write32(REG_CMDQ_CONS, 0);
    r.write64(REG_FAULTQ_BASE, this.faultqPa + this.faultqLog2);
    r.write32(REG_FAULTQ_PROD, 0);
    r.write32(REG_FAULTQ_CONS, 0);
    r.write32(REG_GERRORN, r.read32(REG_GERROR)); // forget stale errors
    r.write32(REG_CTRL, CTRL_CMDQ_EN | CTRL_FAULTQ_EN);
    await this.waitAck(CTRL_CMDQ_EN | CTRL_FAULTQ_EN);
    await this.cmdq.submit(1, (u32, w) => writeCmdInvAll(u32, w));
    r.write32(REG_CTRL, CTRL_EN | CTRL_CMDQ_EN | CTRL_FAULTQ_EN);
    await this.waitAck(CTRL_EN | CTRL_CMDQ_EN | CTRL_FAULTQ_EN);
  }

  // ------------------------------------------------------------------------------ DomainHost

  /** @internal */
  checkAlive(): void {
    if (this.closed) throw new IommuError('ENODEV', `instance ${this.instanceId}: the mock driver was shut down`);
  }

  /** @internal */
  submit(count: number, fill: CommandFiller): Promise<void> {
    return this.cmdq.submit(count, fill);
  }

  /** @internal */
  async refreshUsers(domain: MockPagingDomain): Promise<void> {
    const cmds: Array<[number, number]> = []; // [rid, pasid | -1]
    for (const st of this.devices.values()) {
      if (parentOf(st.target) === domain) {
        this.writeDeviceDte(st);
        cmds.push([st.dev.rid, -1]);
      }
      for (const [pasid, d] of st.pasids) {
        if (parentOf(d) === domain) {
          this.writePasidEntry(st, pasid, d);
          cmds.push([st.dev.rid, pasid]);
        }
      }
    }
    await this.submit(cmds.length, (u32, w, k) => {
      const [rid, pasid] = cmds[k]!;
      if (pasid < 0) writeCmdInvDte(u32, w, rid);
      else writeCmdInvPasid(u32, w, rid, pasid);
    });
  }

  /** @internal */
  domainFreed(domain: MockPagingDomain | MockNestedDomain): void {
    this.domains.delete(domain);
    if (domain instanceof MockNestedDomain) return;
    this.domainIds.delete(domain.domainId);
  }

  // ------------------------------------------------------------------------------ tables

  private dteOf(st: DeviceState): Dte {
    const pasidOn = st.pasidTable !== undefined && st.pasids.size > 0;
    const pd = parentOf(st.target);
    const spec = st.dev.spec;
    if (pd === undefined && !pasidOn) {
      return { valid: false, pasidEnable: false, dirtyEnable: false, priEnable: false, domainId: 0, root: 0, pasidDir: 0 };
    }
    return {
      valid: true,
      pasidEnable: pasidOn,
      dirtyEnable: pd !== undefined && pd.dirtyTracking && !spec.noDirty && (this.cap & CAP_DIRTY) !== 0,
      priEnable: spec.pri === true && (this.cap & CAP_PRI) !== 0,
      domainId: pd?.domainId ?? 0,
      root: pd?.table.root ?? this.blockRoot,
      pasidDir: pasidOn ? st.pasidTable!.dir : 0,
    };
  }

  private writeDeviceDte(st: DeviceState): void {
    writeDte(this.mem, this.dt, st.dev.rid, this.dteOf(st));
  }

  private writePasidEntry(st: DeviceState, pasid: number, d: MockPagingDomain | MockNestedDomain): void {
    const pd = parentOf(d)!;
    st.pasidTable!.setEntry(pasid, {
      valid: true,
      dirtyEnable: pd.dirtyTracking && !st.dev.spec.noDirty && (this.cap & CAP_DIRTY) !== 0,
      domainId: pd.domainId,
      root: pd.table.root,
    });
  }

  private state(dev: IommuDevice, op: string): DeviceState {
    this.checkAlive();
    const st = this.devices.get(dev?.rid);
    if (st === undefined || st.dev !== dev) throw new IommuError('ENODEV', `${op}: device ${dev?.rid} is not probed on instance ${this.instanceId}`);
    return st;
  }

  private resolve(target: AttachTarget, op: string): Target {
    if (target === 'blocked') return 'blocked';
    if (target === 'identity') throw new IommuError('EOPNOTSUPP', `${op}: the mock IOMMU has no identity (bypass) mode`);
    if (!(target instanceof MockPagingDomain || target instanceof MockNestedDomain) || !this.domains.has(target)) {
      if ((target instanceof MockPagingDomain || target instanceof MockNestedDomain) && target.isFreed) {
        throw new IommuError('ENOENT', `${op}: domain ${target.id} was freed`);
      }
      throw new IommuError('EINVAL', `${op}: domain ${String((target as { id?: unknown })?.id)} does not belong to instance ${this.instanceId}`);
    }
    return target;
  }

  private static key(rid: number, pasid: number): string {
    return pasid < 0 ? `${rid}` : `${rid}:${pasid}`;
  }

  // ------------------------------------------------------------------------------ devices

  async probeDevice(spec: DeviceSpec): Promise<IommuDevice> {
    this.checkAlive();
    const rid = spec?.rid;
    if (typeof rid !== 'number' || !Number.isInteger(rid) || rid < 0 || rid >= 1 << this.ridBits) {
      throw new IommuError('ENODEV', `probeDevice: requester id ${String(rid)} is outside the ${1 << this.ridBits}-entry device table of instance ${this.instanceId}`);
    }
    if (this.devices.has(rid)) throw new IommuError('EBUSY', `probeDevice: requester id ${rid} is already probed`);
    const hwPasid = this.capabilities.pasidBits;
    const want = spec.pasidBits ?? 0;
    if (!Number.isInteger(want) || want < 0) throw new IommuError('EINVAL', `probeDevice: pasidBits ${String(want)}`);
    const dev: IommuDevice = { rid, spec: { ...spec }, maxPasidLog2: Math.min(want, hwPasid) };
    const st: DeviceState = { dev, target: 'blocked', pasids: new Map(), pasidTable: undefined, pasid1024Armed: false };
    this.devices.set(rid, st);
    this.writeDeviceDte(st);
    await this.submit(1, (u32, w) => writeCmdInvDte(u32, w, rid));
    return dev;
  }

  async releaseDevice(dev: IommuDevice): Promise<void> {
    const st = this.state(dev, 'releaseDevice');
    const rid = dev.rid;
    usersOf(st.target)?.delete(MockDriver.key(rid, -1));
    for (const [pasid, d] of st.pasids) d.users.delete(MockDriver.key(rid, pasid));
    st.target = 'blocked';
    st.pasids.clear();
    this.writeDeviceDte(st);
    this.devices.delete(rid);
    await this.submit(1, (u32, w) => writeCmdInvDte(u32, w, rid));
    st.pasidTable?.free();
    st.pasidTable = undefined;
  }

  hwInfo(dev: IommuDevice): HwInfo {
    const st = this.state(dev, 'hwInfo');
    const data = new Uint8Array(8);
    new DataView(data.buffer).setUint32(0, 0, true);
    new DataView(data.buffer).setUint32(4, IOMMU_HW_INFO_SELFTEST_REGVAL, true);
    return {
      type: IOMMU_HW_INFO_TYPE_SELFTEST,
      data,
      capabilities: (this.cap & CAP_DIRTY) !== 0 && !st.dev.spec.noDirty ? HwCap.DIRTY_TRACKING : 0,
      maxPasidLog2: st.dev.maxPasidLog2,
    };
  }

  reservedRegions(dev: IommuDevice): readonly ReservedRegion[] {
    this.state(dev, 'reservedRegions');
    return [];
  }

  // ------------------------------------------------------------------------------ domains

  async domainAllocPaging(
    dev: IommuDevice | null,
    flags: DomainAllocFlags = {},
    userData?: PagingUserData,
  ): Promise<PagingDomain> {
    this.checkAlive();
    if (dev !== null && dev !== undefined) this.state(dev, 'domainAllocPaging');
    if (userData !== undefined) checkPagingUserData(userData);
    if (flags.dirtyTracking && ((this.cap & CAP_DIRTY) === 0 || dev?.spec.noDirty)) {
      throw new IommuError('EOPNOTSUPP', `domainAllocPaging: dirty tracking is not supported${dev?.spec.noDirty ? ` by device ${dev.rid}` : ''}`);
    }
    if (flags.pasid && (this.cap & CAP_PASID) === 0) throw new IommuError('EOPNOTSUPP', 'domainAllocPaging: the IOMMU has no PASID support');
    const domainId = this.allocDomainId();
    let table: MockPageTable;
    try {
      table = MockPageTable.create(this.mem, { huge: (this.cap & CAP_HUGE) !== 0 });
    } catch (e) {
      this.domainIds.delete(domainId);
      throw e;
    }
    const d = new MockPagingDomain(this, this.nextObjectId++, domainId, table, flags);
    this.domains.add(d);
    return d;
  }

  private allocDomainId(): number {
    for (let n = 0; n < 0xffff; n++) {
      const id = this.nextDomainId;
      this.nextDomainId = id >= 0xffff ? 1 : id + 1;
      if (!this.domainIds.has(id)) {
        this.domainIds.add(id);
        return id;
      }
    }
    throw new IommuError('ENOSPC', `instance ${this.instanceId}: all 65535 DOMAIN_IDs are in use`);
  }

  async domainAllocNested(
    dev: IommuDevice,
    parent: PagingDomain,
    dataType: number,
    data: Uint8Array,
    flags: DomainAllocFlags = {},
  ): Promise<NestedDomain> {
    this.state(dev, 'domainAllocNested');
    if (!(parent instanceof MockPagingDomain) || !this.domains.has(parent)) {
      throw new IommuError('EINVAL', 'domainAllocNested: the parent is not a paging domain of this instance');
    }
    if (!parent.flags.nestParent) throw new IommuError('EINVAL', `domainAllocNested: domain ${parent.id} was not allocated as a nest parent`);
    if (flags.nestParent || flags.dirtyTracking || flags.pasid) {
      throw new IommuError('EOPNOTSUPP', 'domainAllocNested: nestParent / dirtyTracking / pasid flags are not supported on nested domains');
    }
    if (dataType !== IOMMU_HWPT_DATA_SELFTEST) {
      throw new IommuError('EOPNOTSUPP', `domainAllocNested: data type 0x${dataType.toString(16)} is not IOMMU_HWPT_DATA_SELFTEST`);
    }
    if (!(data instanceof Uint8Array) || data.length < 4) throw new IommuError('EINVAL', `domainAllocNested: selftest data needs at least 4 bytes, got ${data?.length}`);
    const iotlb = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true);
    const d = new MockNestedDomain(this, this.nextObjectId++, parent, dataType, iotlb);
    this.domains.add(d);
    return d;
  }

  // ------------------------------------------------------------------------------ vIOMMU

  /**
   * `viommu_init` of the selftest vIOMMU (viommu.ts): type IOMMU_VIOMMU_TYPE_SELFTEST only
   * (EOPNOTSUPP), over a nest-parent paging domain of this instance (EINVAL).
   */
  async viommuAlloc(dev: IommuDevice, parent: PagingDomain, type: number, data: Uint8Array, env?: ViommuAllocEnv): Promise<IommuViommu> {
    this.state(dev, 'viommuAlloc');
    if (type !== IOMMU_VIOMMU_TYPE_SELFTEST) throw new IommuError('EOPNOTSUPP', `viommuAlloc: type 0x${(type >>> 0).toString(16)} is not IOMMU_VIOMMU_TYPE_SELFTEST`);
    if (!(parent instanceof MockPagingDomain) || !this.domains.has(parent) || !parent.flags.nestParent) {
      throw new IommuError('EINVAL', 'viommuAlloc: the parent is not a nest-parent paging domain of this instance');
    }
    const host: ViommuHost = {
      checkAlive: () => this.checkAlive(),
      mem: this.mem,
      allocViommuNested: (d, v, dataType, bytes, flags) => this.allocViommuNested(d, v, dataType, bytes, flags),
    };
    const v = MockViommu.create(host, parent, data ?? new Uint8Array(0), env);
    this.viommus.add(v);
    const destroy = v.destroy.bind(v);
    v.destroy = async () => {
      this.viommus.delete(v);
      await destroy();
    };
    return v;
  }

  /** `mock_viommu_alloc_domain_nested`: only the pasid flag; IOMMU_HWPT_DATA_SELFTEST data (≥ 4 bytes). */
  private async allocViommuNested(dev: IommuDevice, viommu: MockViommu, dataType: number, data: Uint8Array, flags: DomainAllocFlags): Promise<MockNestedDomain> {
    this.state(dev, 'viommu domainAllocNested');
    if (flags.nestParent || flags.dirtyTracking) throw new IommuError('EOPNOTSUPP', 'viommu domainAllocNested: only the pasid flag is supported');
    if (dataType !== IOMMU_HWPT_DATA_SELFTEST) {
      throw new IommuError('EOPNOTSUPP', `viommu domainAllocNested: data type 0x${dataType.toString(16)} is not IOMMU_HWPT_DATA_SELFTEST`);
    }
    if (!(data instanceof Uint8Array) || data.length < 4) throw new IommuError('EINVAL', `viommu domainAllocNested: selftest data needs at least 4 bytes, got ${data?.length}`);
    const iotlb = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true);
    const d = new MockNestedDomain(this, this.nextObjectId++, viommu.parent, dataType, iotlb);
    setNestedViommu(d, viommu);
    this.domains.add(d);
    return d;
  }

  /**
   * The selftest's IOMMU_TEST_OP_TRIGGER_VEVENT: reports a vEVENT `{u32 virt_id}` for `dev` on the
   * vIOMMU its RID is attached through (ENOENT if none; EOPNOTSUPP when no queue takes it).
   */
  triggerViommuEvent(dev: IommuDevice): void {
    this.state(dev, 'triggerViommuEvent');
    triggerMockVevent(dev);
  }

  /** The selftest's IOMMU_TEST_OP_DEV_CHECK_CACHE: mock device cache slot `id` (EINVAL for id > 3). */
  deviceCacheValue(dev: IommuDevice, id: number): number {
    this.state(dev, 'deviceCacheValue');
    const c = mockDeviceCache(dev);
    if (!Number.isInteger(id) || id < 0 || id >= c.length) throw new IommuError('EINVAL', `device cache id ${id} is not 0..${c.length - 1}`);
    return c[id]!;
  }

  // ------------------------------------------------------------------------------ attach

  async attachDevice(dev: IommuDevice, target: AttachTarget): Promise<void> {
    const st = this.state(dev, 'attachDevice');
    const t = this.resolve(target, 'attachDevice');
    const pd = parentOf(t);
    if (pd?.flags.dirtyTracking && dev.spec.noDirty) {
      throw new IommuError('EINVAL', `attachDevice: device ${dev.rid} cannot use dirty-tracking domain ${pd.id}`);
    }
    // A nested domain of a vIOMMU needs the device's virtual id there (ENOENT): viommu.ts.
    const viommuCommit = viommuAttachPrepare(dev, t);
    const key = MockDriver.key(dev.rid, -1);
    usersOf(st.target)?.delete(key);
    st.target = t;
    usersOf(t)?.add(key);
    viommuCommit();
    this.writeDeviceDte(st);
    await this.submit(1, (u32, w) => writeCmdInvDte(u32, w, dev.rid));
  }

  async attachPasid(dev: IommuDevice, pasid: number, target: AttachTarget): Promise<void> {
    const st = this.state(dev, 'attachPasid');
    this.checkPasid(st, pasid, 'attachPasid');
    const t = this.resolve(target, 'attachPasid');
    if (t === 'blocked') return this.detachPasid(dev, pasid);
    const pd = parentOf(t)!;
    if (t.kind === 'paging' && !t.flags.pasid) {
      throw new IommuError('EINVAL', `attachPasid: domain ${t.id} was not allocated with the pasid flag`);
    }
    if (pd.flags.dirtyTracking && dev.spec.noDirty) {
      throw new IommuError('EINVAL', `attachPasid: device ${dev.rid} cannot use dirty-tracking domain ${pd.id}`);
    }
    if (pasid === IOMMU_TEST_PASID_RESERVED) {
      // The selftest's rigged PASID: the attach after a successful one fails, once.
      if (st.pasid1024Armed) {
        st.pasid1024Armed = false;
        throw new IommuError('ENOMEM', `attachPasid: PASID ${IOMMU_TEST_PASID_RESERVED} replacement is rigged to fail`);
      }
    }
    let created: PasidTable | undefined;
    if (st.pasidTable === undefined) created = st.pasidTable = PasidTable.create(this.mem);
    try {
      st.pasidTable.ensureLeaf(pasid);
    } catch (e) {
      if (created !== undefined) {
        created.free();
        st.pasidTable = undefined;
      }
      throw e;
    }
    if (pasid === IOMMU_TEST_PASID_RESERVED) st.pasid1024Armed = true;
    const key = MockDriver.key(dev.rid, pasid);
    const old = st.pasids.get(pasid);
    old?.users.delete(key);
    const hadPasids = st.pasids.size > 0;
    st.pasids.set(pasid, t);
    t.users.add(key);
    this.writePasidEntry(st, pasid, t);
    const dteChanged = !hadPasids;
    if (dteChanged) this.writeDeviceDte(st);
    await this.submit(dteChanged ? 2 : 1, (u32, w, k) => {
      if (k === 0) writeCmdInvPasid(u32, w, dev.rid, pasid);
      else writeCmdInvDte(u32, w, dev.rid);
    });
  }

  private checkPasid(st: DeviceState, pasid: number, op: string): void {
    const bits = st.dev.maxPasidLog2;
    if (bits === 0) throw new IommuError('EINVAL', `${op}: device ${st.dev.rid} has no PASID support`);
    if (!Number.isInteger(pasid) || pasid < 0 || pasid >= 2 ** bits) {
      throw new IommuError('EINVAL', `${op}: PASID ${pasid} is outside the device's ${bits}-bit PASID space`);
    }
  }

  async detachPasid(dev: IommuDevice, pasid: number): Promise<void> {
    const st = this.state(dev, 'detachPasid');
    this.checkPasid(st, pasid, 'detachPasid');
    if (pasid === IOMMU_TEST_PASID_RESERVED) st.pasid1024Armed = false;
    const d = st.pasids.get(pasid);
    if (d === undefined) return;
    d.users.delete(MockDriver.key(dev.rid, pasid));
    st.pasids.delete(pasid);
    st.pasidTable!.clearEntry(pasid);
    const dteChanged = st.pasids.size === 0;
    if (dteChanged) this.writeDeviceDte(st);
    await this.submit(dteChanged ? 2 : 1, (u32, w, k) => {
      if (k === 0) writeCmdInvPasid(u32, w, dev.rid, pasid);
      else writeCmdInvDte(u32, w, dev.rid);
    });
  }

  /** The domain the device's RID is attached to ('blocked' when none). For tests and core-ioasid. */
  attachedDomain(dev: IommuDevice): PagingDomain | NestedDomain | 'blocked' {
    return this.state(dev, 'attachedDomain').target;
  }

  /** The domain a PASID of the device is attached to, or undefined. */
  pasidDomain(dev: IommuDevice, pasid: number): PagingDomain | NestedDomain | undefined {
    return this.state(dev, 'pasidDomain').pasids.get(pasid);
  }

  // ------------------------------------------------------------------------------ faults

  async pageResponse(dev: IommuDevice, response: PageResponse): Promise<void> {
    this.state(dev, 'pageResponse');
    const { pasid, grpid, code } = response;
    if (code !== 0 && code !== 1 && code !== 2) throw new IommuError('EINVAL', `pageResponse: code ${String(code)} is not SUCCESS / INVALID / FAILURE`);
    if (!Number.isInteger(grpid) || grpid < 0 || grpid > 0x1ff) throw new IommuError('EINVAL', `pageResponse: group index ${grpid} is not 0..511`);
    if (pasid !== -1 && (!Number.isInteger(pasid) || pasid < 0 || pasid > 0xfffff)) throw new IommuError('EINVAL', `pageResponse: PASID ${pasid}`);
    await this.submit(1, (u32, w) => writeCmdPageResp(u32, w, code, dev.rid, pasid, grpid));
  }

  onFault(handler: (fault: IommuFault) => unknown): () => void {
    this.checkAlive();
    this.handlers.add(handler);
    void this.irqLoop();
    return () => {
      this.handlers.delete(handler);
    };
  }

  /** Drains the fault queue while anyone listens, woken by the irq doorbell. */
  private async irqLoop(): Promise<void> {
    if (this.irqLoopRunning) return;
    this.irqLoopRunning = true;
    try {
      while (!this.closed && this.handlers.size > 0) {
        const seen = this.regs.irq.value;
        await this.drainFaults();
        if (this.closed || this.handlers.size === 0) break;
        await this.regs.irq.waitAsync(seen, 50);
      }
    } catch {
      // drainFaults never throws while open; a shutdown race just ends the loop.
    } finally {
      this.irqLoopRunning = false;
    }
  }

  async drainFaults(): Promise<number> {
    this.checkAlive();
    const log2 = this.faultqLog2;
    const prodReg = this.regs.read32(REG_FAULTQ_PROD);
    let cons = this.fcons;
    let n = 0;
    const u32 = this.mem.u32;
    while (!qEmpty(prodReg, cons, log2)) {
      const w = (this.faultqPa + qIdx(cons, log2) * FAULT_RECORD_BYTES) >>> 2;
      const raw = u32.slice(w, w + 8);
      cons = qInc(cons, log2);
      n++;
      this.deliver(raw);
    }
    const ovflg = prodReg >>> 31;
    const overflowed = ovflg !== this.ovack;
    if (n > 0 || overflowed) {
      if (overflowed) this.faultOverflows++;
      this.fcons = cons;
      this.ovack = ovflg;
      this.regs.write32(REG_FAULTQ_CONS, (cons | (ovflg << 31)) >>> 0);
    }
    // One queue carries both page requests and events: its overflow lost page requests, so the
    // fault layer discards the partial ones.
    if (overflowed) deliverFault(this.handlers, { kind: 'overflow', queue: 'page-request' });
    return n;
  }

  private deliver(raw: Uint32Array): void {
    const w0 = raw[0]!;
    const pasid = (w0 & FAULT_PASID_VALID) !== 0 ? raw[2]! : -1;
    const perm = (w0 >>> 18) & 0xf;
    const addr = raw[5]! * 0x1_0000_0000 + raw[4]!;
    const f: IommuFault =
      (w0 & 0xff) === FAULT_TYPE_PAGE_REQ
        ? { kind: 'page-request', rid: raw[1]!, pasid, grpid: raw[3]! & 0x1ff, perm, addr, last: (w0 & FAULT_LAST) !== 0 }
        : { kind: 'event', rid: raw[1]!, pasid, addr, reason: ((w0 >>> 8) & 0xff) as FaultReasonCode, detail: raw[6]!, access: perm & 7, raw };
    const taken = deliverFault(this.handlers, f);
    // A Last page request nobody took is answered INVALID here (stop markers need no answer).
    if (!taken && f.kind === 'page-request' && f.last && !isStopMarker(f)) {
      const { rid, pasid: p, grpid } = f;
      this.submit(1, (u32, w) => writeCmdPageResp(u32, w, 1, rid, p, grpid)).catch(() => undefined);
    }
  }


  /**
   * Makes the hardware issue a page request as if `dev` had sent one (the selftest's
   * IOMMU_TEST_OP_TRIGGER_IOPF), through the model's test injector registers, so it works when
   * the model runs in a worker. Resolves true when the request was queued, false when the
   * hardware dropped it (fault queue full / overflowing, no PRI).
   * @throws IommuError ENODEV (unknown device), EINVAL (bad fields), ETIMEDOUT
   */
  triggerPageRequest(
    dev: IommuDevice,
    req: { readonly pasid: number; readonly grpid: number; readonly perm: number; readonly addr: number; readonly last?: boolean },
  ): Promise<boolean> {
    this.state(dev, 'triggerPageRequest');
    const { pasid, grpid, perm, addr } = req;
    if (pasid !== -1 && (!Number.isInteger(pasid) || pasid < 0 || pasid > 0xfffff)) throw new IommuError('EINVAL', `triggerPageRequest: PASID ${pasid}`);
    if (!Number.isInteger(grpid) || grpid < 0 || grpid > 0x1ff) throw new IommuError('EINVAL', `triggerPageRequest: group index ${grpid} is not 0..511`);
    if (!Number.isInteger(perm) || perm < 0 || perm > 0xf) throw new IommuError('EINVAL', `triggerPageRequest: perm 0x${perm.toString(16)}`);
    if (!Number.isSafeInteger(addr) || addr < 0 || addr >= 2 ** 52) throw new IommuError('EINVAL', `triggerPageRequest: address ${addr}`);
    const run = async (): Promise<boolean> => {
      const r = this.regs;
      r.write32(REG_TEST_PRI_RID, dev.rid);
      r.write32(REG_TEST_PRI_PASID, pasid < 0 ? 0 : (pasid | TEST_PRI_PASID_VALID) >>> 0);
      r.write64(REG_TEST_PRI_ADDR, addr);
      r.write32(REG_TEST_PRI_CTRL, (perm | (req.last === false ? 0 : TEST_PRI_LAST) | (grpid << TEST_PRI_GRPID_SHIFT) | TEST_PRI_GO) >>> 0);
      try {
        await waitUntil(() => (r.read32(REG_TEST_PRI_CTRL) & TEST_PRI_GO) === 0, { timeoutMs: this.timeoutMs, what: 'TEST_PRI injection' });
      } catch (e) {
        if (e instanceof RuntimeError && e.code === 'TIMEOUT') {
          throw new IommuError('ETIMEDOUT', `instance ${this.instanceId}: the page-request injector did not answer within ${this.timeoutMs} ms`, { cause: e });
        }
        throw e;
      }
      return r.read32(REG_TEST_PRI_STATUS) === TEST_PRI_QUEUED;
    };
    const p = this.injectChain.then(run, run);
    this.injectChain = p.catch(() => undefined);
    return p;
  }

  // ------------------------------------------------------------------------------ shutdown

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handlers.clear();
    let err: unknown;
    try {
      this.regs.write32(REG_CTRL, 0);
      await this.waitAck(0);
    } catch (e) {
      err = e;
    }
    for (const st of this.devices.values()) st.pasidTable?.free();
    this.devices.clear();
    for (const v of [...this.viommus]) await v.destroy();
    for (const d of this.domains) if (d instanceof MockPagingDomain && !d.isFreed) d.table.free();
    this.domains.clear();
    const mem = this.mem;
    mem.freeFrames(this.dt, Math.max(1, (DTE_BYTES << this.ridBits) / 4096));
    mem.freeFrames(this.cmdqPa, Math.max(1, (16 << this.cmdqLog2) / 4096));
    mem.freeFrames(this.faultqPa, Math.max(1, (FAULT_RECORD_BYTES << this.faultqLog2) / 4096));
    mem.freeFrames(this.syncPa, 1);
    mem.freeFrames(this.blockRoot, L1_BYTES / 4096);
    if (err !== undefined) throw err;
  }

  /** Driver counters (for reports). */
  stats(): Record<string, number> {
    return {
      devices: this.devices.size,
      domains: this.domains.size,
      cmdqBatches: this.cmdq.batches,
      cmdqErrorsRecovered: this.cmdq.errorsRecovered,
      faultOverflows: this.faultOverflows,
    };
  }

  /** REG_CMDQ_CONS, for debugging. @internal */
  get cmdqCons(): number {
    return this.regs.read32(REG_CMDQ_CONS);
  }
}

function usersOf(t: Target): Set<string> | undefined {
  return t === 'blocked' ? undefined : t.users;
}

/** Backend hook: builds and probes the driver (`BackendPlugin.createDriver`). */
export function createMockDriver(ctx: DriverContext): Promise<MockDriver> {
  return MockDriver.create(ctx);
}

/** Bytes of `struct iommu_hwpt_selftest` ({u32 iotlb; u32 pagetable_type}) and its minimum (`iotlb`). */
const HWPT_SELFTEST_BYTES = 8;
const HWPT_SELFTEST_MIN = 4;

/**
 * The selftest mock's paging-domain data (selftest.c `mock_domain_alloc_paging_flags`): type
 * IOMMU_HWPT_DATA_SELFTEST or NONE, else EOPNOTSUPP; copied as a size-extensible struct (EINVAL
 * below `iotlb`, E2BIG for a non-zero tail); `pagetable_type` MOCK_IOMMUPT_DEFAULT or
 * MOCK_IOMMUPT_HUGE, else EOPNOTSUPP. Both formats map the same way here: the kernel's HUGE format
 * (2 MiB-only leaves, aperture from 0) has no equivalent in this hardware's fixed table format.
 */
function checkPagingUserData(u: PagingUserData): void {
  if (u.type !== IOMMU_HWPT_DATA_SELFTEST && u.type !== 0) {
    throw new IommuError('EOPNOTSUPP', `domainAllocPaging: data type 0x${u.type.toString(16)} is not supported`);
  }
  if (u.type === 0) return;
  const d = u.data;
  if (d.length < HWPT_SELFTEST_MIN) throw new IommuError('EINVAL', `domainAllocPaging: ${d.length} bytes of iommu_hwpt_selftest, need ${HWPT_SELFTEST_MIN}`);
  for (let i = HWPT_SELFTEST_BYTES; i < d.length; i++) {
    if (d[i] !== 0) throw new IommuError('E2BIG', `domainAllocPaging: non-zero byte ${i} beyond iommu_hwpt_selftest`);
  }
  const type = d.length >= HWPT_SELFTEST_BYTES ? new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(4, true) : 0;
  if (type !== MOCK_IOMMUPT_DEFAULT && type !== MOCK_IOMMUPT_HUGE) {
    throw new IommuError('EOPNOTSUPP', `domainAllocPaging: pagetable_type ${type} is not a mock format`);
  }
}
