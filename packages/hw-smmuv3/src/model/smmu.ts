/**
 * SmmuV3Hardware: the Arm SMMUv3 hardware model (smmuv3.md). Software reaches it only through its
 * register file (writes ring the doorbell and `service()` runs), structures in PhysMem (stream
 * table, CD tables, translation tables, command / event / PRI queues); devices through
 * `translate` (transactions), `pageRequest` (PCIe PRI), `atsTranslate` / `atcTranslate` /
 * `translatedAccess` (PCIe ATS).
 *
 * Composition: {@link SmmuControl} (features + ID registers, register behaviour, GERROR,
 * interrupts, command / event / PRI queues) and the {@link TranslationPipeline} (stream table,
 * STE / CD decode, configuration cache, walker, TLB, stall table, ATCs) this class extends, plus
 * the command side ({@link SmmuV3Hardware.execute}: CFGI / TLBI / ATC_INV / PRI_RESP / RESUME /
 * STALL_TERM / PREFETCH) and PRI (page-request.ts).
 *
 * Invalidation scopes (§4.7) — besides which every CFGI_* and TLBI_* empties the micro-TLB:
 * | command | effect |
 * |---|---|
 * | CFGI_STE (SID, Leaf) | cached STE of SID and every CD below it (L1STDs are not cached) |
 * | CFGI_STE_RANGE (SID, Range) | the aligned block of 2^(Range+1) SIDs containing SID; Range = 31: all |
 * | CFGI_CD (SID, SSID, Leaf) | the cached CD of (SID, SSID) (L1CDs are not cached) |
 * | CFGI_CD_ALL (SID) | every cached CD of SID |
 * | TLBI_NH_ALL (VMID) | stage-1 and nested entries of VMID (NS-EL1 world) |
 * | TLBI_NH_ASID (ASID, VMID) | non-global entries of ASID + VMID |
 * | TLBI_NH_VA (ASID, VMID, range) | entries of ASID + VMID, and global entries of VMID, overlapping the range |
 * | TLBI_NH_VAA (VMID, range) | entries of any ASID of VMID overlapping the range |
 * | TLBI_EL2_ALL / _ASID / _VA / _VAA | the same scopes in the EL2 world (STRW = EL2 streams) |
 * | TLBI_S12_VMALL (VMID) | every entry of VMID |
 * | TLBI_S2_IPA (VMID, range) | every entry of VMID whose stage-2 leaf overlaps the IPA range |
 * | TLBI_NSNH_ALL | every NS-EL1 entry |
 * | TLBI_EL3_* | nothing (rejected as CERROR_ILL by the decoder on the Non-secure queue) |
 * | ATC_INV | the devices' ATC entries (ats.ts); a device set to time out makes the next CMD_SYNC fail with CERROR_ATC_INV_SYNC once |
 * | PREFETCH_CONFIG / PREFETCH_ADDR | nothing |
 * Range TLBIs (TG ≠ 0) cover (NUM+1)·2^SCALE granules from Address aligned down to the granule;
 * TG = 0 covers the entries containing Address (any size; Leaf/TTL hints are not needed).
 */
import { type DevicePageRequest, type IommuHardware, type PageResponse } from '@iommulab/driver-api';
import type { HardwareContext, RegisterFile } from '@iommulab/runtime';
import { CERROR_ATC_INV_SYNC, CERROR_NONE, CFGI_RANGE_ALL, CR0_ATSCHK, CR0_SMMUEN, CmdOp } from '../codec/index.js';
import { DRIVER_OPTION_NAMES, MODEL_OPTION_NAMES } from '../option-names.js';
import type { CmdqEntry } from './cmdq-entry.js';
import type { CommandTarget } from './command-queue.js';
import { SmmuControl } from './control.js';
import { resolveFeatures, type SmmuFeatures } from './features.js';
import { PageResponseLog, PriUnit, priRespCode } from './page-request.js';
import type { StallResolution } from './stall.js';
import { TLB_VMID_EL2, newTlbRange, type TlbRange } from './tlb.js';
import { TranslationPipeline } from './translate.js';

export { MODEL_OPTION_NAMES } from '../option-names.js';

function optInt(o: Readonly<Record<string, unknown>>, k: string, d: number, min: number, max: number): number {
  const v = o[k];
  if (v === undefined) return d;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new TypeError(`hw-smmuv3 option '${k}' = ${String(v)} is invalid: expected an integer in ${min}..${max}`);
  }
  return v;
}

/** The Arm SMMUv3 hardware model (see the module comment). */
export class SmmuV3Hardware extends TranslationPipeline implements IommuHardware, CommandTarget {
  /** Instance name. */
  readonly instanceId: string;
  /** MMIO registers. */
  readonly regs: RegisterFile;
  /** Registers, GERROR, interrupts, command / event / PRI queues. */
  readonly control: SmmuControl;
  /** Page responses delivered to devices (CMD_PRI_RESP and automatic ones). */
  readonly pageResponses: PageResponseLog;
  /** The PRI front end. */
  readonly pri: PriUnit;

  private inService = false;
  private again = false;
  private services = 0;
  private commandsExecuted = 0;
  private atcTimeoutSids = new Set<number>();
  private atcInvFailed = false;
  /** A CFGI / TLBI was executed since the last CMD_SYNC (IHI 0070 §7.2.1 held stall records). */
  private invalidatedSinceSync = false;
  private strtabSeen = { base: -1, log2size: -1, split: -1, fmt: -1 };
  /** The range of the TLBI being executed (reused: the command path allocates nothing). */
  private readonly tlbiRange = newTlbRange();

  constructor(ctx: HardwareContext) {
    const o = ctx.options ?? {};
    // The backend options are shared with the driver: its keys are accepted (and ignored) here.
    const features: SmmuFeatures = resolveFeatures(o, [...MODEL_OPTION_NAMES, ...DRIVER_OPTION_NAMES]);
    super(ctx.mem, features, {
      atcEntries: optInt(o, 'atcEntries', 1024, 1, 1 << 20),
      stallLog: optInt(o, 'stallLog', 4096, 1, 1 << 20),
    });
    this.instanceId = ctx.instanceId;
    this.regs = ctx.regs;
    const responses = (this.pageResponses = new PageResponseLog(optInt(o, 'pageResponseLog', 4096, 1, 1 << 20)));
    this.control = new SmmuControl(ctx.mem, ctx.regs, features, {
      target: this,
      onCr0: (prev, next) => {
        const en = (next & CR0_SMMUEN) !== 0;
        if (en !== this.enabled) this.utlb.flush();
        // IHI 0070 §6.3.9.6: completing SMMUEN 1 → 0 marks every stalled transaction to be
        // terminated with an abort (their STAGs become free); pending stall records are dropped.
        if ((prev & CR0_SMMUEN) !== 0 && !en) this.terminateAllStalls();
        this.enabled = en;
        this.atsChk = (next & CR0_ATSCHK) !== 0;
      },
      onPriAutoResponse: (sid, ssv, ssid, prgi, resp) => responses.add(sid, ssv ? ssid : -1, prgi, priRespCode(resp), true),
    });
    this.evtq = this.control.evtq;
    this.control.evtq.stallLive = (sid, stag) => this.stalls.isStalled(sid, stag);
    this.control.evtq.stallRetry = (sid, stag) => void this.stalls.resume(sid, stag, 1);
    const priq = this.control.priq;
    priq.steppar = (sid) => {
      if (!this.enabled) return null;
      const c = this.resolveStream(sid);
      return c === null ? null : c.ppar;
    };
    this.pri = new PriUnit((rec) => priq.push(rec), responses);
    this.reset();
  }

  // ------------------------------------------------------------------------------ lifecycle

  /** Power-on reset: registers to reset values, queues disabled, every cache, stall and ATC entry dropped. */
  reset(): void {
    this.control.reset();
    this.resetPipeline();
    this.pageResponses.reset();
    this.atcInvFailed = false;
    this.invalidatedSinceSync = false;
    this.strtabSeen = { base: -1, log2size: -1, split: -1, fmt: -1 };
    this.syncRegisterState();
  }

  /** Copies what translation needs from the register side (after a sync). */
  private syncRegisterState(): void {
    const r = this.control.registers;
    if (this.enabled !== r.smmuEn) this.utlb.flush();
    this.enabled = r.smmuEn;
    this.atsChk = r.atsChk;
    this.gbpaAbort = r.gbpaAbort;
    this.recInvSid = r.recInvSid;
    const s = r.strtab;
    const seen = this.strtabSeen;
    if (s.base !== seen.base || s.log2size !== seen.log2size || s.split !== seen.split || s.fmt !== seen.fmt) {
      seen.base = s.base;
      seen.log2size = s.log2size;
      seen.split = s.split;
      seen.fmt = s.fmt;
      this.streamTable.configure(s.base, s.log2size, s.split, s.fmt);
      // A new stream table: nothing cached from the old one may be used.
      this.configCache.invalidateAll();
      this.utlb.flush();
    }
  }

  /**
   * Processes register writes and the command queue (the doorbell handler). Re-entrant calls
   * (an irq listener calling back in in-thread mode) are folded into the running one.
   * @returns commands consumed + register changes applied
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
        this.services++;
        work += this.control.service();
        this.syncRegisterState();
      } while (this.again);
    } finally {
      this.inService = false;
    }
    return work;
  }

  /** Nothing to release (all state is in shared memory or plain objects). */
  dispose(): void {
    this.pageResponses.listener = undefined;
  }

  // ------------------------------------------------------------------------------ CommandTarget

  /** Executes one decoded, legal command other than CMD_SYNC (§4, §4.7). Never fails. */
  execute(e: CmdqEntry): number {
    this.commandsExecuted++;
    const tlb = this.tlb;
    const op = e.op;
    // Any configuration or TLB invalidation empties the micro-TLB (a superset of its scope).
    if ((op >= CmdOp.CFGI_STE && op <= CmdOp.CFGI_CD_ALL) || (op >= CmdOp.TLBI_NH_ALL && op <= CmdOp.TLBI_NSNH_ALL)) {
      this.utlb.flush();
      this.invalidatedSinceSync = true;
    }
    switch (op) {
      case CmdOp.CFGI_STE:
        this.configCache.invalidateSid(e.sid);
        break;
      case CmdOp.CFGI_STE_RANGE: {
        if (e.range >= CFGI_RANGE_ALL) this.configCache.invalidateAll();
        else {
          const n = 2 ** (e.range + 1);
          this.configCache.invalidateRange(e.sid - (e.sid % n), n);
        }
        break;
      }
      case CmdOp.CFGI_CD:
        this.configCache.invalidateCd(e.sid, e.ssid);
        break;
      case CmdOp.CFGI_CD_ALL:
        this.configCache.invalidateAllCds(e.sid);
        break;
      case CmdOp.TLBI_NH_ALL:
        tlb.invalidateNhAll(e.vmid);
        break;
      case CmdOp.TLBI_NH_ASID:
        tlb.invalidateAsid(e.asid, e.vmid);
        break;
      case CmdOp.TLBI_NH_VA:
        tlb.invalidateVaRange(e.asid, e.vmid, this.rangeOf(e));
        break;
      case CmdOp.TLBI_NH_VAA:
        tlb.invalidateVaRange(-1, e.vmid, this.rangeOf(e));
        break;
      case CmdOp.TLBI_EL2_ALL:
        tlb.invalidateEl2All();
        break;
      case CmdOp.TLBI_EL2_ASID:
        tlb.invalidateAsid(e.asid, TLB_VMID_EL2);
        break;
      case CmdOp.TLBI_EL2_VA:
        tlb.invalidateVaRange(e.asid, TLB_VMID_EL2, this.rangeOf(e));
        break;
      case CmdOp.TLBI_EL2_VAA:
        tlb.invalidateVaRange(-1, TLB_VMID_EL2, this.rangeOf(e));
        break;
      case CmdOp.TLBI_S12_VMALL:
        tlb.invalidateVmid(e.vmid);
        break;
      case CmdOp.TLBI_S2_IPA:
        tlb.invalidateIpa(e.vmid, SmmuV3Hardware.rangeStart(e), e.rangeBytes());
        break;
      case CmdOp.TLBI_NSNH_ALL:
        tlb.invalidateNsnhAll();
        break;
      case CmdOp.ATC_INV:
        // IHI 0070 §4.5.1 / §6.3.9.6: IGNORED while SMMUEN = 0 (the ATS interface is not operational).
        if (!this.enabled) break;
        this.atc.invalidate(e.sid, e.ssv, e.ssid, e.global, e.addr, e.atcSize);
        if (this.atcTimeoutSids.has(e.sid)) this.atcInvFailed = true;
        break;
      case CmdOp.PRI_RESP:
        // IHI 0070 §4.5.2 / §6.3.9.6: IGNORED while SMMUEN = 0.
        if (!this.enabled) break;
        this.pageResponses.add(e.sid, e.ssv ? e.ssid : -1, e.prgi, priRespCode(e.resp), false);
        break;
      case CmdOp.RESUME:
        // IHI 0070 §4.7.1: Ac = bit 12 (1 retry, Ab IGNORED), Ab = bit 13 (terminate: 0 RAZ/WI,
        // 1 abort); with IDR0.TERM_MODEL = 1 Ab is IGNORED and a terminate always aborts.
        this.stalls.resume(e.sid, e.stag, this.features.termModel === 1 && (e.action & 1) === 0 ? 2 : e.action);
        break;
      case CmdOp.STALL_TERM:
        this.stalls.terminateSid(e.sid);
        break;
      default:
        // PREFETCH_CONFIG / PREFETCH_ADDR: no prefetching is modelled; EL3 TLBIs never get here.
        break;
    }
    return CERROR_NONE;
  }

  /** The TLBI range of `e` in {@link SmmuV3Hardware.tlbiRange}: start (see rangeStart) and bytes. */
  private rangeOf(e: CmdqEntry): TlbRange {
    const r = this.tlbiRange;
    r.start = SmmuV3Hardware.rangeStart(e);
    r.bytes = e.rangeBytes();
    return r;
  }

  /** Start of a TLBI range: Address, aligned down to the range granule when TG ≠ 0 (§4.3). */
  private static rangeStart(e: CmdqEntry): number {
    const g = e.granuleShift();
    if (g === 0) return e.addr;
    const span = 2 ** g;
    return e.addr - (e.addr % span);
  }

  /** CMD_SYNC completion check: fails once (CERROR_ATC_INV_SYNC) after an ATC_INV to a device set to time out. */
  syncPending(): number {
    if (this.invalidatedSinceSync) {
      // IHI 0070 §7.2.1: held stall records of transactions affected by invalidation + CMD_SYNC are
      // replaced by a retry once the event queue is writable (EventQueue.invalidationSynced).
      this.invalidatedSinceSync = false;
      this.control.evtq.invalidationSynced();
    }
    if (this.atcInvFailed) {
      this.atcInvFailed = false;
      return CERROR_ATC_INV_SYNC;
    }
    return CERROR_NONE;
  }

  // ------------------------------------------------------------------------------ PRI

  /**
   * Device port for PCIe PRI (IHI 0070 chapter 8): records a page request in the PRI queue,
   * whatever the stream's STE (§8.2). Returns false when it was not recorded (no PRI; SMMUEN = 0,
   * queue disabled / full / in overflow / aborting — then a Last request is answered
   * automatically, §8.1 / §8.2). Never throws.
   */
  pageRequest(req: DevicePageRequest): boolean {
    if (!this.features.pri || req === null || typeof req !== 'object') return false;
    const sid = req.rid;
    if (typeof sid !== 'number' || sid >>> 0 !== sid) return false;
    // IHI 0070 §8.2: not affected by ATSCHK / STE.EATS; SMMUEN = 0 makes the effective PRIQEN 0.
    return this.pri.request(req, this.enabled);
  }

  /** Returns (and forgets) the page responses delivered to devices, oldest first. */
  takePageResponses(): PageResponse[] {
    return this.pageResponses.take();
  }

  /** Sets the host-bridge callback for page responses (undefined to clear). */
  onPageResponse(listener: ((r: PageResponse) => void) | undefined): void {
    this.pageResponses.listener = listener;
  }

  // ------------------------------------------------------------------------------ stall / ATS test hooks

  /** Returns (and forgets) how stalled transactions were resolved (CMD_RESUME / CMD_STALL_TERM). */
  takeStallResolutions(): StallResolution[] {
    return this.stalls.take();
  }

  /** The stalled transactions still waiting for software. */
  pendingStalls(): { sid: number; stag: number; ssid: number; iova: number }[] {
    return this.stalls.outstanding();
  }

  /**
   * Makes the ATS invalidations of `sid` time out (or not): the CMD_SYNC after an ATC_INV for it
   * fails once with CERROR_ATC_INV_SYNC (§4.4), as when a device does not answer.
   */
  setAtcInvalidationTimeout(sid: number, on: boolean): void {
    if (on) this.atcTimeoutSids.add(sid >>> 0);
    else this.atcTimeoutSids.delete(sid >>> 0);
  }

  /** Valid ATC entries of a device (tests). */
  atcEntries(sid: number): number {
    return this.atc.entries(sid >>> 0);
  }

  // ------------------------------------------------------------------------------ stats

  /** Counters (plain numbers) for reports. */
  stats(): Record<string, number> {
    const p = this.pstats;
    const t = this.tlb.stats;
    const w = this.walker.stats;
    const c = this.control.cmdq.stats;
    const e = this.control.evtq.stats;
    const out: Record<string, number> = {
      translations: this.nTranslations,
      tlbHits: t.hits + this.utlbHits,
      tlbMisses: t.misses,
      mainTlbHits: t.hits,
      utlbHits: this.utlbHits,
      utlbFlushes: this.utlb.flushes,
      tlbInserts: t.inserts,
      tlbEvictions: t.evictions,
      tlbInvalidations: t.invalidations,
      tlbInvalidatedEntries: t.invalidatedEntries,
      walks: p.walks,
      walkSteps: w.steps,
      s1Walks: w.s1Walks,
      s2Walks: w.s2Walks,
      afUpdates: w.afUpdates,
      dirtyUpdates: w.dirtyUpdates,
      faults: p.faults,
      aborts: p.aborts,
      bypasses: p.bypasses,
      commands: c.commands,
      commandsExecuted: this.commandsExecuted,
      syncs: c.syncs,
      cmdqErrors: c.errors,
      events: e.written,
      eventsDropped: e.overflowDrops + e.abortDrops + e.disabledDrops,
      eventsAttempted: p.events,
      steFetches: p.steFetches,
      cdFetches: p.cdFetches,
      configCacheStes: this.configCache.size,
      priRequests: this.pri.requests,
      priQueued: this.pri.queued,
      priDropped: this.pri.dropped,
      priRejected: this.pri.rejected,
      pageResponses: this.pageResponses.received,
      pageResponsesAutomatic: this.pageResponses.automatic,
      stalls: this.stalls.stalled,
      stallsPending: this.stalls.count,
      stallsRetried: this.stalls.retried,
      stallsTerminated: this.stalls.terminated,
      stallsRefused: this.stalls.refused,
      atsRequests: p.atsRequests,
      atcHits: this.atc.hits,
      atcMisses: this.atc.misses,
      atcInvalidations: this.atc.invalidations,
      atcEntriesInvalidated: this.atc.invalidated,
      translatedChecked: p.translatedChecked,
      services: this.services,
    };
    this.control.stats(out);
    return out;
  }
}

