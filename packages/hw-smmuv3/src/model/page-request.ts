/**
 * PCIe PRI (smmuv3.md §6, decisions §12 #5–#7): page requests from devices become PRI-queue
 * records; PRG responses (CMD_PRI_RESP, or the SMMU's automatic ones) are delivered to the
 * device side through a response log (the model's "host bridge").
 *
 * - Requests are recorded whatever the stream's STE says (IHI 0070 §8.2: "Incoming PRI Page
 *   Requests are not affected by SMMU_CR0.ATSCHK or STE.EATS configuration"; §8: the SMMU "freely
 *   accepts incoming PRI messages and puts them in the PRI queue, if space is free and the queue
 *   is enabled and not in an error condition"). With SMMUEN = 0 the effective PRIQEN is 0: the
 *   request is discarded and a Last one gets Response Failure without PASID (§6.3.9.5, §8.2).
 *   (This replaces smmuv3.md §12 #6.)
 * - A stop marker (Last = 1, no Read / Write, with a PASID) is recorded like a request; no
 *   response is sent for it automatically (§8.1, §8.2).
 * - A request dropped by the PRI queue (overflow, disabled, write abort) is answered by the queue
 *   itself (PriQueue's automatic responses), which the pipeline routes to the same log.
 * - CMD_PRI_RESP Resp (§4.5.2): 2 (Success) → SUCCESS, 1 (InvalidRequest) → INVALID,
 *   0 (ResponseFailure) → FAILURE.
 */
import { isStopMarker, PageResponseCode, PgFaultPerm, type DevicePageRequest, type PageResponse, type PageResponseCodeValue } from '@iommulab/driver-api';
import { PriResp } from '../codec/index.js';

const TWO_32 = 4294967296;

/** Outcome of a PRI-queue write, as the PRI queue reports it. */
export type PriPushResult = 'queued' | 'overflow' | 'disabled' | 'aborted';

/** driver-api PageResponse code of a CMD_PRI_RESP Resp field. */
export function priRespCode(resp: number): PageResponseCodeValue {
  // IHI 0070 §4.5.2: 0b00 ResponseFailure, 0b01 InvalidRequest, 0b10 Success.
  return resp === PriResp.SUCCESS ? PageResponseCode.SUCCESS : resp === PriResp.INVALID_REQUEST ? PageResponseCode.INVALID : PageResponseCode.FAILURE;
}


/**
 * Fills the 4-word PRI record for `req` (§6.1): SID [31:0], SSID [51:32], Priv [58], Exec [59],
 * Read [60], Write [61], Last [62], PV [63]; PRGI [8:0] and page address [63:12] in dword 1.
 */
export function buildPriRecord(rec: Uint32Array, req: DevicePageRequest): void {
  const pv = req.pasid >= 0;
  const perm = req.perm;
  rec[0] = req.rid >>> 0;
  rec[1] =
    ((pv ? req.pasid & 0xfffff : 0) |
      ((perm & PgFaultPerm.PRIV) !== 0 ? 1 << 26 : 0) |
      ((perm & PgFaultPerm.EXEC) !== 0 ? 1 << 27 : 0) |
      ((perm & PgFaultPerm.READ) !== 0 ? 1 << 28 : 0) |
      ((perm & PgFaultPerm.WRITE) !== 0 ? 1 << 29 : 0) |
      (req.last ? 1 << 30 : 0) |
      (pv ? 1 << 31 : 0)) >>>
    0;
  const addr = req.addr;
  rec[2] = (((addr >>> 0) & 0xfffff000) | (req.grpid & 0x1ff)) >>> 0;
  rec[3] = Math.floor(addr / TWO_32) >>> 0;
}

/** Bounded log of PRG responses delivered to devices (oldest dropped beyond the capacity). */
export class PageResponseLog {
  private log: PageResponse[] = [];
  /** Responses delivered (software's and automatic ones). */
  received = 0;
  /** Automatic responses among them. */
  automatic = 0;
  /** Responses dropped from the log because it was full. */
  dropped = 0;
  /** Optional host-bridge callback, called for every response. */
  listener: ((r: PageResponse) => void) | undefined;

  /** @param capacity - responses kept for {@link PageResponseLog.take} */
  constructor(private readonly capacity = 4096) {}

  /** Delivers a response to the device. */
  add(rid: number, pasid: number, grpid: number, code: PageResponseCodeValue, automatic: boolean): void {
    const r: PageResponse = { rid, pasid, grpid, code };
    this.received++;
    if (automatic) this.automatic++;
    if (this.log.length >= this.capacity) {
      this.log.shift();
      this.dropped++;
    }
    this.log.push(r);
    const l = this.listener;
    if (l !== undefined) {
      try {
        l(r);
      } catch {
        // A broken listener must not break command processing.
      }
    }
  }

  /** Returns and forgets every logged response, oldest first. */
  take(): PageResponse[] {
    const l = this.log;
    this.log = [];
    return l;
  }

  /** Forgets everything. */
  reset(): void {
    this.log = [];
  }
}

/** The PRI front end: request → record (or automatic response). */
export class PriUnit {
  private readonly rec = new Uint32Array(4);
  /** Requests received. */
  requests = 0;
  /** Requests recorded in the PRI queue. */
  queued = 0;
  /** Requests not recorded (bad stream, queue full, disabled or aborted). */
  dropped = 0;
  /** Requests discarded because SMMUEN = 0 (effective PRIQEN = 0). */
  rejected = 0;

  /**
   * @param push - writes a 4-word record to the PRI queue (which answers dropped Last requests itself)
   * @param responses - the device-side response log
   */
  constructor(
    private readonly push: (rec: Uint32Array) => PriPushResult,
    private readonly responses: PageResponseLog,
  ) {}

  /**
   * Handles one page request.
   * @param priqEnabled - false when SMMUEN = 0 (the effective PRIQEN is then 0)
   * @returns true when the request was recorded in the PRI queue
   */
  request(req: DevicePageRequest, priqEnabled: boolean): boolean {
    this.requests++;
    if (!priqEnabled) {
      // Effective PRIQEN = 0 (SMMUEN = 0): discarded, Response Failure without PASID (§8.2).
      this.rejected++;
      this.dropped++;
      if (req.last && !isStopMarker(req)) this.responses.add(req.rid >>> 0, -1, req.grpid & 0x1ff, PageResponseCode.FAILURE, true);
      return false;
    }
    buildPriRecord(this.rec, req);
    const r = this.push(this.rec);
    if (r === 'queued') {
      this.queued++;
      return true;
    }
    this.dropped++;
    return false;
  }
}
