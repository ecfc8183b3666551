/**
 * MockHardware: the mock IOMMU hardware model. Software reaches it only through its register
 * file (writes ring the doorbell and `service()` runs), through structures in PhysMem (device
 * table, PASID tables, page tables, command and fault queues), and devices through `translate`
 * and `pageRequest`. Each architectural function lives in its own file:
 *   regs.ts (register map) · gerror.ts · command-queue.ts · fault-queue.ts · device-context.ts (DTE)
 *   · pasid-context.ts · walk.ts (page-table walk) · iotlb.ts · page-request.ts (PRI responses).
 * Hostile configuration never throws or hangs: it raises the architectural error and carries on.
 */
import { FaultReason, type DevicePageRequest, type IommuHardware, type PageResponse } from '@iommulab/driver-api';
import { NO_PASID, type DmaRequest, type DmaResult, type HardwareContext, type PhysMem, type RegisterFile } from '@iommulab/runtime';
import {
  DTE_DIRTY_EN,
  DTE_PASID_EN,
  DTE_PRI_EN,
  FAULT_TYPE_FAULT,
  FAULT_TYPE_PAGE_REQ,
  MockFaultDetail,
  PASID_DIRTY_EN,
} from './codec.js';
import { CommandQueue, type CommandSink } from './command-queue.js';
import { MOCK_APERTURE_LAST, MOCK_APERTURE_START, MOCK_PAGE_SHIFT, MOCK_PASID_WIDTH } from './constants.js';
import { DeviceContext } from './device-context.js';
import { FaultQueue } from './fault-queue.js';
import { GlobalErrors } from './gerror.js';
import { Iotlb } from './iotlb.js';
import { PageResponseLog } from './page-request.js';
import { PasidContext, pasidSlot } from './pasid-context.js';
import {
  CAP_DIRTY,
  CAP_HUGE,
  CAP_IOTLB_LOG2_SHIFT,
  CAP_PASID,
  CAP_PASID_WIDTH_SHIFT,
  CAP_PRI,
  CTRL_CMDQ_EN,
  CTRL_EN,
  CTRL_FAULTQ_EN,
  CTRL_MASK,
  DT_MAX_LOG2,
  MOCK_IDR,
  MOCK_VERSION,
  REG_APERTURE_PFN_SHIFT,
  REG_CAP,
  REG_CTRL,
  REG_CTRL_ACK,
  REG_DT_BASE,
  REG_DT_LOG2,
  REG_IDR,
  REG_TEST_PRI_ADDR,
  REG_TEST_PRI_CTRL,
  REG_TEST_PRI_PASID,
  REG_TEST_PRI_RID,
  REG_TEST_PRI_STATUS,
  REG_VERSION,
  TEST_PRI_DROPPED,
  TEST_PRI_GO,
  TEST_PRI_GRPID_SHIFT,
  TEST_PRI_LAST,
  TEST_PRI_PASID_VALID,
  TEST_PRI_QUEUED,
} from './regs.js';
import { S, status } from './status.js';
import { Walker } from './walk.js';

/** Options of the mock hardware (all optional; from `InstanceOptions.options`). */
export interface MockHardwareOptions {
  /** IOTLB entries, a power of two (default 4096). */
  readonly iotlbEntries?: number;
  /** CAP.PASID (default true). */
  readonly pasid?: boolean;
  /** CAP.DIRTY (default true). */
  readonly dirty?: boolean;
  /** CAP.PRI (default true). */
  readonly pri?: boolean;
  /** CAP.HUGE (default true). */
  readonly huge?: boolean;
  /** Page responses kept for `takePageResponses` (default 4096). */
  readonly pageResponseLog?: number;
}

const HASH_MUL = -1640531535; // must match iotlb.ts

/** Fills `out` with a successful translation to `pa`. */
function translated(out: DmaResult, pa: number): DmaResult {
  out.ok = true;
  out.pa = pa;
  out.fault = 0;
  out.faultDetail = 0;
  return out;
}
const STATUS_BAD_RID = status(FaultReason.BAD_RID, MockFaultDetail.RID_RANGE);
const STATUS_APERTURE = status(FaultReason.ADDRESS_SIZE, MockFaultDetail.APERTURE);

function optBool(o: Readonly<Record<string, unknown>>, k: string, d: boolean): boolean {
  const v = o[k];
  return typeof v === 'boolean' ? v : d;
}

/** The mock IOMMU hardware model. */
export class MockHardware implements IommuHardware, CommandSink {
  /** Instance name. */
  readonly instanceId: string;
  /** Host RAM. */
  readonly mem: PhysMem;
  /** MMIO registers. */
  readonly regs: RegisterFile;
  /** CAP register value. */
  readonly cap: number;
  /** The IOTLB (exposed for tests and debugging). */
  readonly iotlb: Iotlb;
  /** DTE cache. */
  readonly devices: DeviceContext;
  /** PASID-entry cache. */
  readonly pasids: PasidContext;
  /** Command queue. */
  readonly cmdq: CommandQueue;
  /** Fault queue. */
  readonly faultq: FaultQueue;
  /** Global errors. */
  readonly gerror: GlobalErrors;
  private readonly walker: Walker;
  private readonly responses: PageResponseLog;
  private readonly dteFeatures: number;

  // Hot-path aliases.
  private readonly tlbPage: Int32Array;
  private readonly tlbDom: Int32Array;
  private readonly tlbPa: Float64Array;
  private readonly tlbPerm: Uint8Array;
  private readonly tlbMask: number;
  private readonly hugePage: Int32Array;
  private readonly hugeDom: Int32Array;
  private readonly hugePa: Float64Array;
  private readonly hugePerm: Uint8Array;
  private readonly hugeMask: number;
  private readonly dteCached: Uint8Array;
  private readonly dteW0: Int32Array;

  // Applied state.
  private ctrlAck = 0;
  private en = false;
  private dtBaseLo = 0;
  private dtBaseHi = 0;
  private dtLog2Raw = 0;
  private dtBase = 0;
  private dtEntries = 0;
  private dtBad = false;
  private inService = false;
  private again = false;
  private nextGrpid = 0;

  // Counters.
  private fastHits = 0;
  private slowCalls = 0;
  private slowHits = 0;
  private faultCount = 0;
  private aborted = 0;
  private invalidations = 0;
  private pageRequests = 0;
  private pageRequestsRejected = 0;
  private services = 0;

  constructor(ctx: HardwareContext) {
    const o = ctx.options ?? {};
    this.instanceId = ctx.instanceId;
    this.mem = ctx.mem;
    this.regs = ctx.regs;
    const entries = typeof o.iotlbEntries === 'number' ? o.iotlbEntries : 4096;
    this.iotlb = new Iotlb(entries);
    const pasid = optBool(o, 'pasid', true);
    const dirty = optBool(o, 'dirty', true);
    const pri = optBool(o, 'pri', true);
    const huge = optBool(o, 'huge', true);
    this.cap =
      ((pasid ? CAP_PASID : 0) |
        (dirty ? CAP_DIRTY : 0) |
        (pri ? CAP_PRI : 0) |
        (huge ? CAP_HUGE : 0) |
        ((pasid ? MOCK_PASID_WIDTH : 0) << CAP_PASID_WIDTH_SHIFT) |
        (Math.log2(entries) << CAP_IOTLB_LOG2_SHIFT)) >>>
      0;
    this.dteFeatures = (pasid ? DTE_PASID_EN : 0) | (dirty ? DTE_DIRTY_EN : 0) | (pri ? DTE_PRI_EN : 0);
    this.devices = new DeviceContext(this.mem);
    this.pasids = new PasidContext(this.mem);
    this.walker = new Walker(this.mem, huge);
    this.gerror = new GlobalErrors(this.regs);
    this.cmdq = new CommandQueue(this.mem, this.regs, this.gerror, this);
    this.faultq = new FaultQueue(this.mem, this.regs, this.gerror);
    this.responses = new PageResponseLog(typeof o.pageResponseLog === 'number' ? o.pageResponseLog : 4096);
    this.tlbPage = this.iotlb.page;
    this.tlbDom = this.iotlb.dom;
    this.tlbPa = this.iotlb.pa;
    this.tlbPerm = this.iotlb.perm;
    this.tlbMask = this.iotlb.mask;
    this.hugePage = this.iotlb.hugePage;
    this.hugeDom = this.iotlb.hugeDom;
    this.hugePa = this.iotlb.hugePa;
    this.hugePerm = this.iotlb.hugePerm;
    this.hugeMask = this.iotlb.hugeMask;
    this.dteCached = this.devices.cached;
    this.dteW0 = this.devices.w0;
    this.reset();
  }

  // ------------------------------------------------------------------------------ lifecycle

  /** Power-on reset: every register to its reset value, caches and queues empty, counters kept. */
  reset(): void {
    this.regs.u32.fill(0, 0, Math.min(this.regs.u32.length, 4096 / 4));
    this.writeIdRegs();
    this.gerror.reset();
    this.cmdq.reset();
    this.faultq.reset();
    this.iotlb.invalidateAll();
    this.devices.invalidateAll();
    this.pasids.invalidateAll();
    this.responses.reset();
    this.ctrlAck = 0;
    this.en = false;
    this.dtBaseLo = this.dtBaseHi = this.dtLog2Raw = 0;
    this.latchDt(0, 0, 0);
    this.nextGrpid = 0;
  }

  private writeIdRegs(): void {
    const r = this.regs;
    if (r.hwRead32(REG_IDR) !== MOCK_IDR) r.hwWrite32(REG_IDR, MOCK_IDR);
    if (r.hwRead32(REG_VERSION) !== MOCK_VERSION) r.hwWrite32(REG_VERSION, MOCK_VERSION);
    if (r.hwRead32(REG_CAP) !== this.cap) r.hwWrite32(REG_CAP, this.cap);
    if (r.hwRead32(REG_APERTURE_PFN_SHIFT) !== MOCK_PAGE_SHIFT) r.hwWrite32(REG_APERTURE_PFN_SHIFT, MOCK_PAGE_SHIFT);
    if (r.hwRead32(REG_CTRL_ACK) !== this.ctrlAck) r.hwWrite32(REG_CTRL_ACK, this.ctrlAck);
  }

  private latchDt(lo: number, hi: number, log2: number): void {
    this.dtBaseLo = lo;
    this.dtBaseHi = hi;
    this.dtLog2Raw = log2;
    this.dtBase = (hi & 0xfffff) * 0x1_0000_0000 + lo;
    this.dtBad = log2 > DT_MAX_LOG2 || (lo & 0xfff) !== 0 || (hi & 0xfff0_0000) !== 0;
    this.dtEntries = this.dtBad ? 0 : 1 << log2;
    this.devices.invalidateAll();
    this.pasids.invalidateAll();
  }

  /**
   * Applies whatever software asked for through registers since the last call: restores
   * read-only registers, applies CTRL (→ CTRL_ACK), latches DT_BASE / DT_LOG2, and drains the
   * command queue. Re-entrant calls (from irq listeners in in-thread mode) are folded into the
   * running one. Returns the number of commands executed plus control changes applied.
   */
  service(): number {
    if (this.inService) {
      this.again = true;
      return 0;
    }
    this.inService = true;
    let work = 0;
    try {
      do {
        this.again = false;
        work += this.serviceOnce();
      } while (this.again);
    } finally {
      this.inService = false;
    }
    return work;
  }

  private serviceOnce(): number {
    const r = this.regs;
    this.services++;
    let work = 0;
    this.writeIdRegs();
    this.gerror.restore();
    const ctrl = r.hwRead32(REG_CTRL) & CTRL_MASK;
    if (ctrl !== this.ctrlAck) {
      const changed = ctrl ^ this.ctrlAck;
      if ((changed & CTRL_EN) !== 0) {
        this.en = (ctrl & CTRL_EN) !== 0;
        this.devices.invalidateAll();
        this.pasids.invalidateAll();
        this.iotlb.invalidateAll();
      }
      if ((changed & CTRL_CMDQ_EN) !== 0) {
        if ((ctrl & CTRL_CMDQ_EN) !== 0) this.cmdq.enable();
        else this.cmdq.disable();
      }
      if ((changed & CTRL_FAULTQ_EN) !== 0) {
        if ((ctrl & CTRL_FAULTQ_EN) !== 0) this.faultq.enable();
        else this.faultq.disable();
      }
      this.ctrlAck = ctrl;
      r.hwWrite32(REG_CTRL_ACK, ctrl);
      work++;
    }
    const lo = r.hwRead32(REG_DT_BASE);
    const hi = r.hwRead32(REG_DT_BASE + 4);
    const log2 = r.hwRead32(REG_DT_LOG2);
    if (lo !== this.dtBaseLo || hi !== this.dtBaseHi || log2 !== this.dtLog2Raw) this.latchDt(lo, hi, log2);
    this.cmdq.restore();
    this.faultq.restore();
    work += this.cmdq.process();
    const pri = r.hwRead32(REG_TEST_PRI_CTRL);
    if ((pri & TEST_PRI_GO) !== 0) {
      const pw = r.hwRead32(REG_TEST_PRI_PASID);
      const ok = this.pageRequest({
        rid: r.hwRead32(REG_TEST_PRI_RID),
        pasid: (pw & TEST_PRI_PASID_VALID) !== 0 ? pw & 0xfffff : -1,
        addr: r.hwRead32(REG_TEST_PRI_ADDR) + (r.hwRead32(REG_TEST_PRI_ADDR + 4) & 0xfffff) * 0x1_0000_0000,
        perm: pri & 0xf,
        grpid: (pri >>> TEST_PRI_GRPID_SHIFT) & 0x1ff,
        last: (pri & TEST_PRI_LAST) !== 0,
      });
      r.hwWrite32(REG_TEST_PRI_STATUS, ok ? TEST_PRI_QUEUED : TEST_PRI_DROPPED);
      r.hwWrite32(REG_TEST_PRI_CTRL, (pri & ~TEST_PRI_GO) >>> 0);
      work++;
    }
    return work;
  }

  // ------------------------------------------------------------------------------ device port

  /**
   * Device port: translates one DMA request into `out`. The IOTLB-hit path for requests without
   * a PASID is a handful of typed-array loads; everything else goes through `translateSlow`.
   * Never allocates, never throws.
   */
  translate(req: DmaRequest, out: DmaResult): DmaResult {
    const rid = req.rid;
    if (this.en && rid >>> 0 === rid && rid < this.dtEntries && this.dteCached[rid] === 1 && req.pasid === NO_PASID) {
      const iova = req.iova;
      if (iova >= MOCK_APERTURE_START && iova <= MOCK_APERTURE_LAST) {
        const pa = this.tlbLookup(this.dteW0[rid]! >>> 16, iova, req.access);
        if (pa >= 0) {
          this.fastHits++;
          return translated(out, pa);
        }
      }
    }
    return this.translateSlow(req, out);
  }

  private translateSlow(req: DmaRequest, out: DmaResult): DmaResult {
    this.slowCalls++;
    if (!this.en) {
      this.aborted++;
      out.ok = false;
      out.pa = 0;
      out.fault = FaultReason.BLOCKED;
      out.faultDetail = MockFaultDetail.DISABLED;
      return out;
    }
    if (this.dtBad) return this.fault(req, out, S.DT_CONFIG, false);
    const rid = req.rid;
    if (rid >>> 0 !== rid || rid >= this.dtEntries) return this.fault(req, out, STATUS_BAD_RID, false);
    if (this.dteCached[rid] !== 1) {
      const st = this.devices.load(this.dtBase, rid, this.dteFeatures);
      if (st !== 0) return this.fault(req, out, st, false);
    }
    const w0 = this.dteW0[rid]!;
    const priEn = (w0 & DTE_PRI_EN) !== 0;
    const pasid = req.pasid;
    let dom: number;
    let root: number;
    let dirtyEn: boolean;
    if (pasid === NO_PASID) {
      dom = w0 >>> 16;
      root = this.devices.root[rid]!;
      dirtyEn = (w0 & DTE_DIRTY_EN) !== 0;
    } else {
      if ((w0 & DTE_PASID_EN) === 0 || pasid >>> 0 !== pasid || pasid > 0xfffff) return this.fault(req, out, S.PASID_DISABLED, false);
      const pc = this.pasids;
      const s = pasidSlot(rid, pasid);
      if (pc.rid[s] !== rid || pc.pasid[s] !== pasid) {
        const st = pc.load(this.devices.pasidDir[rid]!, rid, pasid, (this.cap & CAP_DIRTY) !== 0);
        if (st !== 0) return this.fault(req, out, st, false);
      }
      const pw0 = pc.w0[s]!;
      dom = pw0 >>> 16;
      root = pc.root[s]!;
      dirtyEn = (pw0 & PASID_DIRTY_EN) !== 0;
    }
    const iova = req.iova;
    if (!(iova >= MOCK_APERTURE_START && iova <= MOCK_APERTURE_LAST)) return this.fault(req, out, STATUS_APERTURE, false);
    const access = req.access;
    const hit = this.tlbLookup(dom, iova, access);
    if (hit >= 0) {
      this.slowHits++;
      return translated(out, hit);
    }
    const walker = this.walker;
    const st = walker.walk(root, iova, access, dirtyEn);
    if (st !== 0) return this.fault(req, out, st, priEn);
    if (walker.level === 1) {
      // A 1 MiB leaf: cache it whole (walker.pagePa is the 2 KiB page inside it).
      const huge = iova >>> 20;
      const h = (huge ^ Math.imul(dom, HASH_MUL)) & this.hugeMask;
      this.hugePage[h] = huge;
      this.hugeDom[h] = dom;
      this.hugePa[h] = walker.pagePa - (iova & 0x000f_f800);
      this.hugePerm[h] = walker.perm;
    } else {
      const page = iova >>> 11;
      const i = (page ^ Math.imul(dom, HASH_MUL)) & this.tlbMask;
      this.tlbPage[i] = page;
      this.tlbDom[i] = dom;
      this.tlbPa[i] = walker.pagePa;
      this.tlbPerm[i] = walker.perm;
    }
    return translated(out, walker.pagePa + (iova & 0x7ff));
  }

  /**
   * IOTLB lookup: the 2 KiB-page array, then the 1 MiB-leaf array, tagged by DOMAIN_ID. Returns the
   * PA of `iova`, or -1 on a miss or when the cached permissions do not cover `access`.
   */
  private tlbLookup(dom: number, iova: number, access: number): number {
    const page = iova >>> 11;
    const i = (page ^ Math.imul(dom, HASH_MUL)) & this.tlbMask;
    if (this.tlbPage[i] === page && this.tlbDom[i] === dom && (this.tlbPerm[i]! & access) === access) {
      return this.tlbPa[i]! + (iova & 0x7ff);
    }
    const huge = iova >>> 20;
    const h = (huge ^ Math.imul(dom, HASH_MUL)) & this.hugeMask;
    if (this.hugePage[h] === huge && this.hugeDom[h] === dom && (this.hugePerm[h]! & access) === access) {
      return this.hugePa[h]! + (iova & 0xfffff);
    }
    return -1;
  }

  /** Records a fault (or, with PRI_EN, a page request) and fills `out`. */
  private fault(req: DmaRequest, out: DmaResult, st: number, priEn: boolean): DmaResult {
    const reason = st & 0xff;
    const detail = st >>> 8;
    this.faultCount++;
    const p = req.pasid;
    const pasid = p >>> 0 === p && p <= 0xfffff ? p : -1;
    const perm = (req.access & 7) | (req.privileged ? 8 : 0);
    const rid = req.rid >>> 0;
    out.ok = false;
    out.pa = 0;
    if (priEn && (reason === FaultReason.TRANSLATION || reason === FaultReason.PERMISSION)) {
      const grpid = this.nextGrpid;
      this.nextGrpid = (grpid + 1) & 0x1ff;
      this.pageRequests++;
      if (this.faultq.push(FAULT_TYPE_PAGE_REQ, reason, pasid, true, perm, rid, grpid, req.iova, detail)) this.regs.raiseIrq();
      out.fault = FaultReason.PAGE_REQUEST;
      out.faultDetail = grpid;
      return out;
    }
    if (this.faultq.push(FAULT_TYPE_FAULT, reason, pasid, false, perm, rid, 0, req.iova, detail)) this.regs.raiseIrq();
    out.fault = reason;
    out.faultDetail = detail;
    return out;
  }

  /**
   * Device port for PRI: queues a PAGE_REQ record (reason PAGE_REQUEST). Returns false when it
   * was dropped: no CAP.PRI, fault queue disabled or overflowing, RID outside the device table.
   */
  pageRequest(req: DevicePageRequest): boolean {
    const rid = req.rid;
    if ((this.cap & CAP_PRI) === 0 || !this.faultq.enabled || this.dtBad || rid >>> 0 !== rid || rid >= this.dtEntries) {
      this.pageRequestsRejected++;
      return false;
    }
    const p = req.pasid;
    const pasid = p >>> 0 === p && p <= 0xfffff ? p : -1;
    this.pageRequests++;
    const ok = this.faultq.push(FAULT_TYPE_PAGE_REQ, FaultReason.PAGE_REQUEST, pasid, req.last, req.perm & 0xf, rid, req.grpid & 0x1ff, req.addr, 0);
    if (ok) this.regs.raiseIrq();
    return ok;
  }

  /** Returns (and forgets) the page responses software sent with CMD_PAGE_RESP. For tests. */
  takePageResponses(): PageResponse[] {
    return this.responses.take();
  }

  /** Sets the host-bridge callback for page responses (undefined to clear). */
  onPageResponse(listener: ((r: PageResponse) => void) | undefined): void {
    this.responses.listener = listener;
  }

  // ------------------------------------------------------------------------------ CommandSink

  /** @internal CMD_INV_ALL */
  invAll(): void {
    this.invalidations++;
    this.iotlb.invalidateAll();
    this.devices.invalidateAll();
    this.pasids.invalidateAll();
  }
  /** @internal CMD_INV_DOMAIN */
  invDomain(domainId: number): void {
    this.invalidations++;
    this.iotlb.invalidateDomain(domainId);
  }
  /** @internal CMD_INV_RANGE */
  invRange(domainId: number, firstPage: number, pages: number): void {
    this.invalidations++;
    this.iotlb.invalidateRange(domainId, firstPage, pages);
  }
  /** @internal CMD_INV_DTE */
  invDte(rid: number): void {
    this.invalidations++;
    this.devices.invalidate(rid);
    this.pasids.invalidateRid(rid);
  }
  /** @internal CMD_INV_PASID */
  invPasid(rid: number, pasid: number): void {
    this.invalidations++;
    this.pasids.invalidate(rid, pasid);
  }
  /** @internal CMD_PAGE_RESP */
  pageResponse(rid: number, pasid: number, grpid: number, code: number): void {
    this.responses.add(rid, pasid, grpid, code);
  }

  // ------------------------------------------------------------------------------ stats

  /** Counters for reports. */
  stats(): Record<string, number> {
    const w = this.walker;
    return {
      translations: this.fastHits + this.slowCalls,
      hits: this.fastHits + this.slowHits,
      misses: w.walks,
      walks: w.walks,
      walkReads: w.walkReads,
      adUpdates: w.adUpdates,
      faults: this.faultCount,
      aborted: this.aborted,
      invalidations: this.invalidations,
      iotlbEntriesInvalidated: this.iotlb.invalidatedEntries,
      commands: this.cmdq.commands,
      syncs: this.cmdq.syncs,
      cmdqErrors: this.cmdq.errors,
      gerrors: this.gerror.raised,
      faultRecords: this.faultq.written,
      faultRecordsDropped: this.faultq.dropped,
      faultqOverflows: this.faultq.overflows,
      pageRequests: this.pageRequests,
      pageRequestsRejected: this.pageRequestsRejected,
      pageResponses: this.responses.received,
      dteFetches: this.devices.fetches,
      pasidFetches: this.pasids.fetches,
      services: this.services,
    };
  }
}
