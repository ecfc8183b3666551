/**
 * The translation pipeline (smmuv3.md §2–§8): device-port transaction → PA or fault, with the
 * event records of §5 and the stall model. {@link SmmuV3Hardware} extends it with registers,
 * queues and commands.
 *
 * Order of checks for a transaction (SID, SSV/SSID, input address, access, PnU):
 * 1. SMMUEN = 0: GBPA.ABORT → terminated, no event; else bypass (PA = input address).
 * 2. Malformed request (access bits not in 1..7, input address not an integer in [0, 2^53)):
 *    F_UUT (recorded), terminated.
 * 3. StreamID lookup (stream-table.ts): C_BAD_STREAMID (recorded only when CR2.RECINVSID, §12 #2),
 *    F_STE_FETCH; STE decode (ste-decode.ts): C_BAD_STE.
 * 4. Config: abort → terminated, no event; bypass → PA = input; S2-only → stage 2;
 *    a SubstreamID with stage 1 disabled (bypass / S2) → C_BAD_SUBSTREAMID (model choice).
 * 5. Stage 1 (§3.2): S1CDMax = 0 with SSV → C_BAD_SUBSTREAMID; no SSV with S1CDMax > 0 → S1DSS
 *    (terminate → F_STREAM_DISABLED, bypass → stage 1 bypassed, SSID0 → CD 0); SSID ≥ 2^S1CDMax,
 *    or SSID 0 with S1DSS = SSID0 (§12 #10) → C_BAD_SUBSTREAMID; CD fetch (context-desc.ts, through
 *    stage 2 when nested: stage-2 faults CLASS = CD), F_CD_FETCH, C_BAD_CD.
 * 6. TLB (tags VMID/ASID, hit only when the cached permissions allow the access), else a walk
 *    (walker) and a TLB insert.
 * 7. Stage 1 bypassed (Config bypass / S2-only, S1DSS bypass): an input ≥ 2^IAS (IAS = OAS) is a
 *    stage-1 F_ADDR_SIZE (S2 = 0, CLASS = IN, always recorded: IHI 0070 §3.4), else the stage-2 walk
 *    or the bypass. SMMUEN = 0 bypass with an input ≥ 2^OAS: terminated, no event (§3.4).
 *
 * Recording policy (§5.2): configuration errors, fetch aborts (F_STE_FETCH, F_CD_FETCH,
 * F_WALK_EABT) and F_UUT always; F_TRANSLATION / F_ADDR_SIZE / F_ACCESS / F_PERMISSION of stage 1
 * when CD.R, of stage 2 when STE.S2R. Stall (§5.2): on an SMMU with stall support, a stage-1
 * translation fault with CD.S = 1 (STE.S1STALLD = 0) or a stage-2 one with STE.S2S = 1 (with
 * STALL_MODEL = forced: every such fault, model choice) is recorded with Stall = 1 and a fresh
 * STAG whatever R / S2R say, and parked (stall.ts): the device gets FaultReason.PAGE_REQUEST and
 * retries after CMD_RESUME(RETRY). If the stall table is full the fault is not stalled but
 * terminated (recorded per R / S2R). A stall record that finds the event queue not writable
 * (disabled, full, EVENTQ_ABT_ERR active) is held and written when the queue next is; the
 * transaction stays stalled (IHI 0070 §3.5.3, §7.2.1, §7.4).
 * Stage-2 faults while fetching a CD are never stalled. ATS translation requests never stall and
 * do not record translation faults (the ATS completion reports the failure).
 *
 * Fault → out: `ok = false`, `fault` = driver-api FaultReason (status.ts), `faultDetail` = the
 * EvtId (0 for the no-event aborts).
 *
 * Hot path (`translate`): StreamID < 2^16, no SubstreamID: the micro-TLB (micro-tlb.ts: one
 * direct-mapped probe tagged by StreamID, flushed by every TLBI / CFGI), then the cached STE whose
 * CD (or stage-2-only configuration) gives the TLB tags: a typed-array slot lookup (StreamID →
 * cached STE), one main-TLB probe per entry size present and a permission check (a hit refills the
 * micro-TLB). On a miss the walk starts without a second TLB probe; bypass / abort streams are
 * answered right after. Larger StreamIDs (a Map), SubstreamIDs (a Map per stream) and everything
 * else take the full path. No allocation on the device port, table walks included (the TLB insert
 * reads every address from the WalkResult: no heap-number arguments).
 */
import { FaultReason } from '@iommulab/driver-api';
import { ACCESS_EXEC, ACCESS_READ, ACCESS_WRITE, NO_PASID, type DmaRequest, type DmaResult, type PhysMem } from '@iommulab/runtime';
import { EvtClass, EvtId, SteConfig } from '../codec/index.js';
import { faultReasonOfEvent } from '../fault-reason.js';
import { Atc } from './ats.js';
import { ConfigCache } from './config-cache.js';
import { CdFetcher, type CdIpaTranslator } from './context-desc.js';
import { EventRecord } from './event-record.js';
import type { SmmuFeatures } from './features.js';
import { MicroTlb, UTLB_ENTRIES } from './micro-tlb.js';
import { StallTable } from './stall.js';
import { St, isTranslationFault, status, statusEvt, statusReason } from './status.js';
import { decodeSte } from './ste-decode.js';
import { CdConfig, FastMode, type StreamConfig } from './stream-config.js';
import { StreamTable } from './stream-table.js';
import { TLB_NO_ASID, Tlb, newTlbHit } from './tlb.js';
import { Walker } from './walk/walker.js';
import { newWalkResult, permFor } from './walk/walk-context.js';

/** Largest input address the device port accepts (2^53 − 1). */
const MAX_IOVA = 9007199254740991;
/** 2^−12. */
const INV_4K = 1 / 4096;
const UTLB_MASK = UTLB_ENTRIES - 1;

/** Where event records go (the event queue). */
export interface EventSink {
  /** Writes one 8-word record; false when it was dropped (queue disabled, full or aborted). */
  push(rec: Uint32Array): boolean;
  /**
   * Writes a stall record (Stall = 1), holding it until the queue is writable when it is not
   * (IHI 0070 §7.2.1); false when not written now. Without it, stall records go through `push`.
   */
  pushStall?(rec: Uint32Array): boolean;
  /** Forgets held-back stall records. */
  dropPendingStalls?(): void;
}

/** Options of the pipeline beyond the features. */
export interface PipelineOptions {
  /** ATC entries (all devices together; default 1024). */
  readonly atcEntries?: number;
  /** Stall resolutions kept for `takeStallResolutions()` (default 4096). */
  readonly stallLog?: number;
}

/** Pipeline counters. */
export interface PipelineStats {
  /** Transactions that faulted (terminated or stalled). */
  faults: number;
  /** Transactions aborted without an event (GBPA.ABORT, STE.Config = abort). */
  aborts: number;
  /** Transactions bypassed (SMMUEN = 0 with GBPA bypass, or a bypass configuration). */
  bypasses: number;
  /** Table walks started by the pipeline (stage-1 / nested / stage-2-only). */
  walks: number;
  /** Event records the pipeline tried to record, and how many the queue dropped. */
  events: number;
  eventsDropped: number;
  /** STE fetches and decodes (config-cache misses), CD fetches and decodes. */
  steFetches: number;
  cdFetches: number;
  /** ATS translation requests, and translated (ATS) transactions checked. */
  atsRequests: number;
  translatedChecked: number;
}

/** The translation half of the SMMU model. */
export class TranslationPipeline implements CdIpaTranslator {
  /** Feature set. */
  readonly features: SmmuFeatures;
  /** Host memory. */
  readonly mem: PhysMem;
  /** StreamID → STE. */
  readonly streamTable: StreamTable;
  /** Cached STEs and CDs. */
  readonly configCache: ConfigCache;
  /** CD-table walker. */
  readonly cdFetcher: CdFetcher;
  /** Translation-table walker. */
  readonly walker: Walker;
  /** The TLB. */
  readonly tlb: Tlb;
  /** Stalled transactions. */
  readonly stalls: StallTable;
  /** The devices' ATCs. */
  readonly atc: Atc;
  /** The micro-TLB in front of the main TLB (flushed by every TLBI / CFGI). */
  readonly utlb: MicroTlb;
  /** Pipeline counters. */
  readonly pstats: PipelineStats = {
    faults: 0,
    aborts: 0,
    bypasses: 0,
    walks: 0,
    events: 0,
    eventsDropped: 0,
    steFetches: 0,
    cdFetches: 0,
    atsRequests: 0,
    translatedChecked: 0,
  };
  /** {@link CdIpaTranslator} status of the last failed stage-2 CD-table translation. */
  status = 0;
  /** Device-port translations (`translate` calls). */
  protected nTranslations = 0;
  /** Translations answered by the micro-TLB. */
  protected utlbHits = 0;

  /** CR0ACK.SMMUEN (set by the register side). */
  protected enabled = false;
  /** GBPA.ABORT (read when SMMUEN = 0). */
  protected gbpaAbort = false;
  /** CR2.RECINVSID. */
  protected recInvSid = true;
  /** CR0.ATSCHK. */
  protected atsChk = false;
  /** Where event records go. */
  protected evtq: EventSink = { push: () => false };

  // Hot-path aliases.
  private readonly uTag: Int32Array;
  private readonly uPage: Float64Array;
  private readonly uPa: Float64Array;
  private readonly uPerm: Uint8Array;
  private readonly slotOfSid: Int32Array;
  private readonly slots: StreamConfig[];
  private readonly hit = newTlbHit();
  private readonly wr = newWalkResult();
  private readonly wrCd = newWalkResult();
  private readonly rec = new EventRecord();
  /** 2^IAS (= 2^OAS): the first input address a stage-1-bypassed transaction cannot carry (§3.4). */
  private readonly iasLimit: number;
  private readonly stallOk: boolean;
  private readonly stallForced: boolean;

  // Scratch of the transaction being processed (for CD-fetch stage-2 faults and records).
  private curSid = 0;
  private curSsid = -1;
  private curIova = 0;
  private curAccess = 0;
  private curPriv = false;
  private curStream: StreamConfig | null = null;
  private lastStatus = 0;
  private spareCd: CdConfig | null = null;
  private atcFilled = false;
  /** True while an ATS Translation Request is translated: no event is recorded (IHI 0070 §3.9.1.2). */
  private quiet = false;
  /** Set by the fast path when the TLB missed for this stream (cleared by the slow path). */
  private fastMissed: StreamConfig | null = null;

  constructor(mem: PhysMem, features: SmmuFeatures, opts: PipelineOptions = {}) {
    this.mem = mem;
    this.features = features;
    this.streamTable = new StreamTable(mem, features.sidBits, features.st2lvl);
    this.configCache = new ConfigCache();
    this.cdFetcher = new CdFetcher(mem, features);
    this.walker = new Walker(mem, { httu: features.httu, xnx: features.xnx });
    let cap = 1;
    while (cap < features.tlbEntries) cap *= 2;
    this.tlb = new Tlb(cap, features.tlbPolicy);
    this.stalls = new StallTable(features.stall === 'none' ? 1 : features.stallMax, opts.stallLog ?? 4096);
    this.atc = new Atc(opts.atcEntries ?? 1024);
    this.utlb = new MicroTlb();
    this.uTag = this.utlb.tag;
    this.uPage = this.utlb.page;
    this.uPa = this.utlb.pa;
    this.uPerm = this.utlb.perm;
    this.slotOfSid = this.configCache.slotOfSid;
    this.slots = this.configCache.slots;
    this.iasLimit = 2 ** features.oas;
    this.stallOk = features.stall !== 'none';
    this.stallForced = features.stall === 'forced';
  }

  // ------------------------------------------------------------------------------ device port

  /**
   * Device port: translates one DMA request into `out` (see the module comment). Never throws,
   * never allocates.
   */
  translate(req: DmaRequest, out: DmaResult): DmaResult {
    this.nTranslations++;
    const sid = req.rid;
    if (this.enabled && (sid & 0xffff) === sid && req.pasid === NO_PASID) {
      const iova = req.iova;
      const acc = req.access;
      if (iova >= 0 && iova <= MAX_IOVA && Math.floor(iova) === iova && acc >= 1 && acc <= 7) {
        // 1. micro-TLB (4 KiB pages, StreamID-tagged)
        const page = Math.floor(iova * INV_4K);
        const off = iova - page * 4096;
        const u = ((page | 0) + sid * 0x9e5) & UTLB_MASK;
        if (this.uTag[u] === (sid | this.utlb.genBits) && this.uPage[u] === page) {
          const p = this.uPerm[u];
          if (((req.privileged ? p : p >>> 3) & acc) === acc) {
            this.utlbHits++;
            out.ok = true;
            out.pa = this.uPa[u] + off;
            out.fault = 0;
            out.faultDetail = 0;
            return out;
          }
        }
        // 2. cached STE → main TLB with the stream's tags
        const slot = this.slotOfSid[sid];
        if (slot >= 0) {
          const c = this.slots[slot];
          if (c.fastMode === FastMode.TLB) {
            const hit = this.hit;
            if (this.tlb.lookup(c.vmid, c.fastAsid, iova, hit) && ((req.privileged ? hit.perm : hit.perm >>> 3) & acc) === acc) {
              // refill the micro-TLB slot in place (no call: no boxed arguments)
              this.uPage[u] = page;
              this.uTag[u] = sid | this.utlb.genBits;
              this.uPa[u] = hit.pa - off;
              this.uPerm[u] = hit.perm;
              out.ok = true;
              out.pa = hit.pa;
              out.fault = 0;
              out.faultDetail = 0;
              return out;
            }
            this.fastMissed = c; // the slow path walks without a second lookup
          }
        }
      }
    }
    return this.translateSlow(req, out, false);
  }

  /**
   * The fast path's other outcomes for a cached STE and a well-formed request without
   * SubstreamID: a TLB miss (walk without a second lookup), bypass, abort; null: none of these.
   */
  private fastOther(req: DmaRequest, out: DmaResult): DmaResult | null {
    const missed = this.fastMissed;
    if (missed !== null) {
      this.fastMissed = null;
      this.curSid = req.rid;
      this.curSsid = -1;
      this.curIova = req.iova;
      this.curAccess = req.access;
      this.curPriv = req.privileged === true;
      const cd = missed.fastCd;
      return cd !== null ? this.stage1(req, out, missed, cd, false, false) : this.stage2Only(req, out, missed, false, false);
    }
    const sid = req.rid;
    if (!this.enabled || (sid & 0xffff) !== sid || req.pasid !== NO_PASID || !TranslationPipeline.wellFormed(req)) return null;
    const slot = this.slotOfSid[sid];
    if (slot < 0) return null;
    const mode = this.slots[slot].fastMode;
    if (mode === FastMode.BYPASS) {
      if (req.iova >= this.iasLimit) return null; // F_ADDR_SIZE on the full path (§3.4)
      this.pstats.bypasses++;
      return this.success(out, req.iova);
    }
    if (mode === FastMode.ABORT) {
      this.pstats.aborts++;
      return this.terminate(out, St.ABORT_NO_EVENT);
    }
    return null;
  }

  /** Fills `out` with a fault (no record). */
  private terminate(out: DmaResult, st: number): DmaResult {
    out.ok = false;
    out.pa = 0;
    out.fault = statusReason(st);
    out.faultDetail = statusEvt(st);
    return out;
  }

  private success(out: DmaResult, pa: number): DmaResult {
    out.ok = true;
    out.pa = pa;
    out.fault = 0;
    out.faultDetail = 0;
    return out;
  }

  /** Whether `req` is well formed (access bits 1..7, integer input address below 2^53). */
  private static wellFormed(req: DmaRequest): boolean {
    const iova = req.iova;
    const acc = req.access;
    return typeof iova === 'number' && iova >= 0 && iova <= MAX_IOVA && Math.floor(iova) === iova && (acc & 7) === acc && acc !== 0;
  }

  /** Whether `iova` is an integer in [0, 2^53). */
  private static addrOk(iova: number): boolean {
    return typeof iova === 'number' && iova >= 0 && iova <= MAX_IOVA && Math.floor(iova) === iova;
  }

  /** SubstreamID of a request for records: the PASID, or −1 when it had none (SSV = 0). */
  private static recSsid(req: DmaRequest): number {
    const p = req.pasid;
    return p === NO_PASID || typeof p !== 'number' || !(p >= 0) ? -1 : Math.floor(p) % 0x100000;
  }

  /**
   * The full path: everything the fast path does not handle.
   * @param ats - an ATS Translation Request (no stall, no translation-fault records)
   */
  protected translateSlow(req: DmaRequest, out: DmaResult, ats: boolean): DmaResult {
    if (!ats) {
      const f = this.fastOther(req, out);
      if (f !== null) return f;
    }
    if (!this.enabled) {
      if (this.gbpaAbort) {
        this.pstats.aborts++;
        return this.terminate(out, St.ABORT_NO_EVENT);
      }
      if (!TranslationPipeline.wellFormed(req)) return this.terminate(out, St.ABORT_NO_EVENT);
      // IHI 0070 §3.4: SMMUEN = 0 bypass with an input address beyond the OAS → abort, no event.
      if (req.iova >= this.iasLimit) {
        this.pstats.aborts++;
        return this.terminate(out, St.ABORT_NO_EVENT);
      }
      this.pstats.bypasses++;
      return this.success(out, req.iova);
    }
    const sid = req.rid;
    const ssidRec = TranslationPipeline.recSsid(req);
    this.curSid = typeof sid === 'number' ? sid >>> 0 : 0;
    this.curSsid = ssidRec;
    this.curIova = TranslationPipeline.addrOk(req.iova) ? req.iova : 0;
    this.curAccess = req.access;
    this.curPriv = req.privileged === true;
    if (!TranslationPipeline.wellFormed(req)) return this.recordConfigFault(out, St.UUT, true);
    if (!(typeof sid === 'number' && sid >>> 0 === sid)) return this.recordConfigFault(out, St.BAD_STREAMID, false);
    const c = this.resolveStream(sid);
    if (c === null) return this.streamFault(out);
    const pasid = req.pasid;
    const ssv = pasid !== NO_PASID;
    const ssidValid = ssv && typeof pasid === 'number' && pasid >>> 0 === pasid && pasid <= 0xfffff;
    switch (c.config) {
      case SteConfig.ABORT:
        this.pstats.aborts++;
        return this.terminate(out, St.ABORT_NO_EVENT);
      case SteConfig.BYPASS:
        if (ssv) return this.recordConfigFault(out, St.BAD_SUBSTREAMID, false);
        if (req.iova >= this.iasLimit) return this.bypassAddrSize(req, out, ats);
        this.pstats.bypasses++;
        return this.success(out, req.iova);
      case SteConfig.S2_TRANS:
        if (ssv) return this.recordConfigFault(out, St.BAD_SUBSTREAMID, false);
        return this.stage2Only(req, out, c, ats, true);
      default:
        break;
    }
    // Stage 1 enabled (S1 translate or nested): choose the CD (§3.2).
    let ssid: number;
    if (c.s1CdMax === 0) {
      if (ssv) return this.recordConfigFault(out, St.BAD_SUBSTREAMID, false);
      ssid = 0;
    } else if (!ssv) {
      const dss = c.s1dss;
      if (dss === 0) return this.recordConfigFault(out, St.STREAM_DISABLED, false);
      if (dss === 1) {
        if (c.s2) return this.stage2Only(req, out, c, ats, true);
        if (req.iova >= this.iasLimit) return this.bypassAddrSize(req, out, ats);
        this.pstats.bypasses++;
        return this.success(out, req.iova);
      }
      ssid = 0;
    } else {
      if (!ssidValid || pasid >= 2 ** c.s1CdMax) return this.recordConfigFault(out, St.BAD_SUBSTREAMID, false);
      // §5.2 STE.S1DSS = 0b10, §7.3.7: SubstreamID 0 is reserved for non-substream traffic → F_STREAM_DISABLED.
      if (pasid === 0 && c.s1dss === 2) return this.recordConfigFault(out, St.STREAM_DISABLED, false);
      ssid = pasid;
    }
    let cd = c.cds.get(ssid);
    if (cd === undefined) {
      const fetched = this.fetchCd(c, ssid);
      if (fetched === null) return this.cdFault(out);
      cd = fetched;
    }
    if (!ssv && c.fastMode === FastMode.SLOW) {
      c.fastMode = FastMode.TLB;
      c.fastAsid = cd.asid;
      c.fastCd = cd;
    }
    return this.stage1(req, out, c, cd, ats, true);
  }

  /** The cached STE of `sid`, fetched and decoded on a miss; null with `lastStatus` on failure. */
  protected resolveStream(sid: number): StreamConfig | null {
    const cache = this.configCache;
    const hitC = cache.get(sid);
    if (hitC !== undefined) return hitC;
    const st = this.streamTable.lookup(sid);
    if (st !== St.OK) {
      this.lastStatus = st;
      return null;
    }
    this.pstats.steFetches++;
    const c = cache.acquire();
    const d = decodeSte(this.mem.u32, this.streamTable.steAddr >>> 2, sid, this.features, c);
    if (d !== St.OK) {
      cache.release(c);
      this.lastStatus = d;
      return null;
    }
    cache.insert(sid, c);
    return c;
  }

  /** Fetches, decodes and caches the CD of `ssid` below `c`; null with `lastStatus` on failure. */
  private fetchCd(c: StreamConfig, ssid: number): CdConfig | null {
    this.pstats.cdFetches++;
    const cd = this.spareCd ?? new CdConfig();
    this.spareCd = null;
    this.curStream = c;
    const st = this.cdFetcher.fetch(c, ssid, c.s2 ? this : null, cd);
    this.curStream = null;
    if (st !== St.OK) {
      this.spareCd = cd;
      this.lastStatus = st;
      return null;
    }
    this.configCache.insertCd(c, ssid, cd);
    return cd;
  }

  /**
   * {@link CdIpaTranslator}: stage-2 translation of a CD-table IPA (§8 step 3). A fault is recorded
   * here (S2 = 1, CLASS = CD, IPA = the CD-table address; F_WALK_EABT always, translation faults
   * when STE.S2R) and never stalls.
   */
  cdIpaToPa(ipa: number): number {
    const c = this.curStream;
    if (c === null) return -1;
    const r = this.wrCd;
    this.pstats.walks++;
    if (this.walker.s2(ipa, ACCESS_READ, this.curPriv, c.s2ctx, r)) return r.pa;
    const evt = r.fault;
    if (evt === EvtId.F_WALK_EABT || c.s2r) {
      this.rec.begin(evt, this.curSid, this.curSsid).translation(0, false, this.curPriv, (this.curAccess & ACCESS_EXEC) !== 0, (this.curAccess & ACCESS_WRITE) === 0, true, EvtClass.CD, false, this.curIova);
      if (evt === EvtId.F_WALK_EABT) this.rec.fetchAddr(r.fetchAddr);
      else this.rec.ipa(ipa);
      this.pushEvent();
    }
    this.status = status(evt, faultReasonOfEvent(evt));
    return -1;
  }

  private pushEvent(): void {
    if (this.quiet) return; // an ATS Translation Request records nothing but F_BAD_ATS_TREQ (§7.3.22)
    this.pstats.events++;
    if (!this.evtq.push(this.rec.w)) this.pstats.eventsDropped++;
  }

  /** Records a configuration / request error (always, except C_BAD_STREAMID without RECINVSID) and terminates. */
  private recordConfigFault(out: DmaResult, st: number, withAccess: boolean): DmaResult {
    const evt = statusEvt(st);
    this.pstats.faults++;
    if (evt !== 0 && (evt !== EvtId.C_BAD_STREAMID || this.recInvSid)) {
      const rec = this.rec.begin(evt, this.curSid, this.curSsid);
      if (withAccess) {
        // §7.3.8: F_TRANSL_FORBIDDEN carries RnW and InputAddr only (no PnU / InD).
        if (evt === EvtId.F_TRANSL_FORBIDDEN) rec.rnw((this.curAccess & ACCESS_WRITE) === 0);
        else rec.access(this.curPriv, (this.curAccess & ACCESS_EXEC) !== 0, (this.curAccess & ACCESS_WRITE) === 0);
        rec.inputAddr(this.curIova);
      }
      this.pushEvent();
    }
    return this.terminate(out, st);
  }

  /** Terminates after a failed {@link TranslationPipeline.resolveStream}. */
  private streamFault(out: DmaResult): DmaResult {
    const st = this.lastStatus;
    if (st === St.STE_FETCH) {
      this.pstats.faults++;
      this.rec.begin(EvtId.F_STE_FETCH, this.curSid, this.curSsid).fetchAddr(this.streamTable.fetchAddr);
      this.pushEvent();
      return this.terminate(out, st);
    }
    return this.recordConfigFault(out, st, false);
  }

  /** Terminates after a failed {@link TranslationPipeline.fetchCd} (stage-2 faults are already recorded). */
  private cdFault(out: DmaResult): DmaResult {
    const st = this.lastStatus;
    const evt = statusEvt(st);
    if (evt === EvtId.F_CD_FETCH) {
      this.pstats.faults++;
      this.rec.begin(evt, this.curSid, this.curSsid).fetchAddr(this.cdFetcher.fetchAddr);
      this.pushEvent();
      return this.terminate(out, st);
    }
    if (isTranslationFault(evt) || evt === EvtId.F_WALK_EABT) {
      this.pstats.faults++;
      return this.terminate(out, st);
    }
    return this.recordConfigFault(out, st, false);
  }

  /**
   * Stage-1 (or nested) translation through the TLB and the walker.
   * @param lookup - probe the TLB first (false: the caller just missed with the same tags)
   */
  private stage1(req: DmaRequest, out: DmaResult, c: StreamConfig, cd: CdConfig, ats: boolean, lookup: boolean): DmaResult {
    const iova = req.iova;
    const access = req.access;
    const priv = req.privileged === true;
    const hit = this.hit;
    if (lookup && this.tlb.lookup(c.vmid, cd.asid, iova, hit) && ((priv ? hit.perm : hit.perm >>> 3) & access) === access) {
      if (ats) this.atcFill(req, hit.pa, hit.sizeLog2, hit.perm, hit.global);
      return this.success(out, hit.pa);
    }
    const r = this.wr;
    this.pstats.walks++;
    if (this.walker.s1(iova, 0, access, priv, cd.s1, c.s2 ? c.s2ctx : null, r)) {
      this.tlb.insertWalk(c.vmid, cd.asid, r);
      if (ats) this.atcFill(req, r.pa, r.sizeLog2, r.permAll, r.global);
      return this.success(out, r.pa);
    }
    return this.walkFault(req, out, c, cd, ats);
  }

  /**
   * IHI 0070 §3.4: with stage 1 bypassed (Config 0b100 / 0b110, S1DSS = 0b01) an input address beyond
   * the IAS (= OAS here: AArch64 tables only) is a stage-1 Address Size fault, "the transaction is
   * terminated with an abort and F_ADDR_SIZE is recorded" (no CD, so no CD.R to consult; not gated
   * by STE.S2R). Record: S2 = 0, CLASS = IN (§7.3.14). ATS requests record nothing (the completion
   * reports the failure).
   */
  private bypassAddrSize(req: DmaRequest, out: DmaResult, ats: boolean): DmaResult {
    const access = req.access;
    this.pstats.faults++;
    if (!ats) {
      this.rec.begin(EvtId.F_ADDR_SIZE, this.curSid, this.curSsid).translation(0, false, req.privileged === true, (access & ACCESS_EXEC) !== 0, (access & ACCESS_WRITE) === 0, false, EvtClass.IN, false, req.iova);
      this.pushEvent();
    }
    return this.terminate(out, St.ADDR_SIZE);
  }

  /**
   * Stage-2-only translation (Config S2, or stage 1 bypassed by S1DSS with stage 2 enabled).
   * @param lookup - probe the TLB first (false: the caller just missed with the same tags)
   */
  private stage2Only(req: DmaRequest, out: DmaResult, c: StreamConfig, ats: boolean, lookup: boolean): DmaResult {
    const ipa = req.iova;
    const access = req.access;
    const priv = req.privileged === true;
    if (ipa >= this.iasLimit) return this.bypassAddrSize(req, out, ats);
    const hit = this.hit;
    if (lookup && this.tlb.lookup(c.vmid, TLB_NO_ASID, ipa, hit) && ((priv ? hit.perm : hit.perm >>> 3) & access) === access) {
      if (ats) this.atcFill(req, hit.pa, hit.sizeLog2, hit.perm, false);
      return this.success(out, hit.pa);
    }
    const r = this.wr;
    this.pstats.walks++;
    if (this.walker.s2(ipa, access, priv, c.s2ctx, r)) {
      this.tlb.insertWalk(c.vmid, TLB_NO_ASID, r);
      if (ats) this.atcFill(req, r.pa, r.sizeLog2, r.permAll, false);
      return this.success(out, r.pa);
    }
    return this.walkFault(req, out, c, null, ats);
  }

  /** Records / stalls a walk fault (in `this.wr`) per §5.2 and fills `out`. */
  private walkFault(req: DmaRequest, out: DmaResult, c: StreamConfig, cd: CdConfig | null, ats: boolean): DmaResult {
    const r = this.wr;
    const evt = r.fault;
    const access = req.access;
    const priv = req.privileged === true;
    const ind = (access & ACCESS_EXEC) !== 0;
    const rnw = (access & ACCESS_WRITE) === 0;
    const reason = faultReasonOfEvent(evt);
    this.pstats.faults++;
    const rec = this.rec;
    if (evt === EvtId.F_WALK_EABT) {
      // §7.3.12: F_WALK_EABT carries S2 / CLASS / InputAddr / FetchAddr; TTRnW is not part of it (RES0).
      rec.begin(evt, this.curSid, this.curSsid).translation(0, false, priv, ind, rnw, r.s2, r.cls, false, req.iova).fetchAddr(r.fetchAddr);
      this.pushEvent();
      return this.terminate(out, status(evt, reason));
    }
    if (!ats && this.stallOk) {
      const stall = r.s2 ? this.stallForced || c.s2s : (this.stallForced || (cd !== null && cd.s)) && !c.s1stalld;
      if (stall) {
        const stag = this.stalls.park(this.curSid, this.curSsid, req.iova, access, evt);
        if (stag >= 0) {
          rec.begin(evt, this.curSid, this.curSsid).translation(stag, true, priv, ind, rnw, r.s2, r.cls, r.ttrnw, req.iova);
          if (r.s2) rec.ipa(r.ipa);
          this.pstats.events++;
          const q = this.evtq;
          if (q.pushStall !== undefined) {
            // IHI 0070 §7.2.1 / §7.4: a stall record is not discarded when the queue is not
            // writable; it is written when the queue next is, and the transaction stays stalled.
            q.pushStall(rec.w);
          } else if (!q.push(rec.w)) {
            // A sink without stall support: software cannot see this stall, terminate instead.
            this.pstats.eventsDropped++;
            this.stalls.cancel(this.curSid, stag);
            return this.terminate(out, status(evt, reason));
          }
          out.ok = false;
          out.pa = 0;
          out.fault = FaultReason.PAGE_REQUEST;
          out.faultDetail = evt;
          return out;
        }
      }
    }
    if (!ats && (r.s2 ? c.s2r : cd !== null && cd.r)) {
      rec.begin(evt, this.curSid, this.curSsid).translation(0, false, priv, ind, rnw, r.s2, r.cls, r.ttrnw, req.iova);
      if (r.s2) rec.ipa(r.ipa);
      this.pushEvent();
    }
    return this.terminate(out, status(evt, reason));
  }

  // ------------------------------------------------------------------------------ ATS

  /** Caches a successful ATS translation of `req` (`pa` of req.iova inside a 2^sizeLog2 region). */
  private atcFill(req: DmaRequest, pa: number, sizeLog2: number, permAll: number, global: boolean): void {
    const s = sizeLog2 < 12 ? 12 : sizeLog2;
    const span = 2 ** s;
    const base = req.iova - (req.iova % span);
    const ssid = req.pasid === NO_PASID ? -1 : req.pasid;
    this.atc.insert(req.rid >>> 0, ssid, base, span, pa - (req.iova - base), permFor(permAll, req.privileged === true), global);
    this.atcFilled = true;
  }

  /**
   * Device side of PCIe ATS: an ATS Translation Request for `req` (IHI 0070 §3.9.1.2, §7.3.6).
   * Without ATS: terminated, no record. SMMUEN = 0, STE.Config = bypass or effective STE.EATS =
   * 0b00: UR and F_BAD_ATS_TREQ (recorded); STE.Config = abort: UR, no event. Configuration errors
   * (C_BAD_STREAMID, F_STE_FETCH, C_BAD_STE, C_BAD_SUBSTREAMID, F_STREAM_DISABLED, F_CD_FETCH,
   * C_BAD_CD, F_WALK_EABT) end the request with CA and record nothing (SMMU_CR2.REC_CFG_ATS is not
   * implemented); translation faults are not recorded and never stall. A successful translation is
   * cached in the device's ATC.
   */
  atsTranslate(req: DmaRequest, out: DmaResult): DmaResult {
    this.pstats.atsRequests++;
    if (!this.features.ats) return this.terminate(out, St.ABORT_NO_EVENT);
    const sid = req.rid;
    if (!(typeof sid === 'number' && sid >>> 0 === sid && TranslationPipeline.wellFormed(req))) return this.terminate(out, St.ABORT_NO_EVENT);
    this.curSid = sid;
    this.curSsid = TranslationPipeline.recSsid(req);
    this.curIova = req.iova;
    this.curAccess = req.access;
    this.curPriv = req.privileged === true;
    if (!this.enabled) return this.recordConfigFault(out, St.BAD_ATS_TREQ, true);
    const c = this.resolveStream(sid);
    if (c === null) {
      this.pstats.faults++;
      return this.terminate(out, this.lastStatus);
    }
    if (c.config === SteConfig.ABORT) return this.terminate(out, St.ABORT_NO_EVENT);
    if (c.eats === 0) return this.recordConfigFault(out, St.BAD_ATS_TREQ, true); // incl. Config = bypass (effective EATS 0)
    this.atcFilled = false;
    this.quiet = true;
    let r: DmaResult;
    try {
      r = this.translateSlow(req, out, true);
    } finally {
      this.quiet = false;
    }
    if (r.ok && !this.atcFilled) this.atcFillIdentity(req, r.pa);
    return r;
  }

  /** ATC fill for a bypassed ATS translation: one 4 KiB page, R/W/X. */
  private atcFillIdentity(req: DmaRequest, pa: number): void {
    const base = req.iova - (req.iova % 4096);
    this.atc.insert(req.rid >>> 0, req.pasid === NO_PASID ? -1 : req.pasid, base, 4096, pa - (req.iova - base), 7, false);
  }

  /**
   * Device side: a transaction of a device with an ATC — an ATC hit gives the PA directly,
   * a miss sends an ATS Translation Request ({@link TranslationPipeline.atsTranslate}).
   */
  atcTranslate(req: DmaRequest, out: DmaResult): DmaResult {
    const pa = this.atc.lookup(req.rid >>> 0, req.pasid === NO_PASID ? -1 : req.pasid, req.iova, req.access);
    if (pa >= 0) return this.success(out, pa);
    return this.atsTranslate(req, out);
  }

  /**
   * An ATS-translated transaction (the address is already a PA), IHI 0070 §3.9.1.3 / §7.3.8.
   * SMMUEN = 0: F_TRANSL_FORBIDDEN, aborted. ATSCHK = 0: passes unchecked. ATSCHK = 1: STE.Config =
   * bypass or effective STE.EATS = 0b00 → F_TRANSL_FORBIDDEN (recorded: StreamID, RnW, InputAddr),
   * aborted; STE.Config = abort, malformed requests (F_UUT) and configuration errors (C_BAD_*,
   * F_STE_FETCH) → aborted without an event (SMMU_CR2.REC_CFG_ATS is not implemented).
   */
  translatedAccess(req: DmaRequest, out: DmaResult): DmaResult {
    this.pstats.translatedChecked++;
    const sid = req.rid;
    this.curSid = typeof sid === 'number' ? sid >>> 0 : 0;
    this.curSsid = -1; // §3.9.1.3: without PASIDTT a Translated transaction is SSV = 0, PnU = 0, InD = 0
    this.curIova = TranslationPipeline.addrOk(req.iova) ? req.iova : 0;
    this.curAccess = req.access;
    this.curPriv = false;
    if (!TranslationPipeline.wellFormed(req)) return this.terminate(out, St.ABORT_NO_EVENT);
    if (!this.enabled) return this.recordConfigFault(out, St.TRANSL_FORBIDDEN, true);
    if (!this.atsChk) return this.success(out, req.iova);
    if (!(typeof sid === 'number' && sid >>> 0 === sid)) return this.terminate(out, St.ABORT_NO_EVENT);
    const c = this.resolveStream(sid);
    if (c === null || c.config === SteConfig.ABORT) return this.terminate(out, St.ABORT_NO_EVENT);
    if (c.eats === 0) return this.recordConfigFault(out, St.TRANSL_FORBIDDEN, true);
    return this.success(out, req.iova);
  }

  // ------------------------------------------------------------------------------ state

  /**
   * SMMUEN 1 → 0 (IHI 0070 §6.3.9.6): every stalled transaction is terminated with an abort and
   * held-back stall records are dropped. @returns how many stalls were terminated
   */
  protected terminateAllStalls(): number {
    this.evtq.dropPendingStalls?.();
    return this.stalls.abortAll();
  }

  /** Drops every cached structure, translation, stall and ATC entry (reset). */
  protected resetPipeline(): void {
    this.configCache.invalidateAll();
    this.tlb.invalidateAll();
    this.utlb.flush();
    this.stalls.reset();
    this.atc.reset();
    this.enabled = false;
    this.gbpaAbort = false;
    this.atsChk = false;
    this.streamTable.configure(0, 0, 0, 0);
  }
}
