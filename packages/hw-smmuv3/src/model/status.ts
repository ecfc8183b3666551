/**
 * Packed pipeline status, passed between the model's units without allocation (smmuv3.md §5.2):
 * 0 = ok; otherwise the SMMUv3 event id in bits [7:0] (0 = terminate without an event record) and
 * the backend-neutral driver-api `FaultReason` in bits [15:8].
 */
import { FaultReason } from '@iommulab/driver-api';
import { EvtId } from '../codec/index.js';
import { faultReasonOfEvent } from '../fault-reason.js';

/** Packs an event id and a FaultReason. */
export function status(evt: number, reason: number): number {
  return evt | (reason << 8);
}
/** Event id of a packed status (0: no event). */
export function statusEvt(s: number): number {
  return s & 0xff;
}
/** FaultReason of a packed status. */
export function statusReason(s: number): number {
  return (s >>> 8) & 0xff;
}

/** The status of event `evt` with its usual FaultReason ({@link faultReasonOfEvent}). */
function evtStatus(evt: number): number {
  return status(evt, faultReasonOfEvent(evt));
}

/**
 * The statuses the pipeline raises (§5.2). Each carries its event id's FaultReason (the table in
 * fault-reason.ts, shared with the driver), except STE/CD V = 0 (BLOCKED) and the silent abort.
 */
export const St = {
  OK: 0,
  /** STE.Config = abort, GBPA.ABORT: terminated, no event (§5.2 recording policy). */
  ABORT_NO_EVENT: status(0, FaultReason.BLOCKED),
  BAD_STREAMID: evtStatus(EvtId.C_BAD_STREAMID),
  STE_FETCH: evtStatus(EvtId.F_STE_FETCH),
  /** STE.V = 0: the stream is not configured. */
  STE_INVALID: status(EvtId.C_BAD_STE, FaultReason.BLOCKED),
  /** STE ILLEGAL (§2.5). */
  STE_ILLEGAL: evtStatus(EvtId.C_BAD_STE),
  BAD_ATS_TREQ: evtStatus(EvtId.F_BAD_ATS_TREQ),
  STREAM_DISABLED: evtStatus(EvtId.F_STREAM_DISABLED),
  TRANSL_FORBIDDEN: evtStatus(EvtId.F_TRANSL_FORBIDDEN),
  BAD_SUBSTREAMID: evtStatus(EvtId.C_BAD_SUBSTREAMID),
  CD_FETCH: evtStatus(EvtId.F_CD_FETCH),
  /** CD.V = 0: the substream is not configured. */
  CD_INVALID: status(EvtId.C_BAD_CD, FaultReason.BLOCKED),
  /** CD ILLEGAL (§3.4). */
  CD_ILLEGAL: evtStatus(EvtId.C_BAD_CD),
  UUT: evtStatus(EvtId.F_UUT),
  WALK_EABT: evtStatus(EvtId.F_WALK_EABT),
  TRANSLATION: evtStatus(EvtId.F_TRANSLATION),
  ADDR_SIZE: evtStatus(EvtId.F_ADDR_SIZE),
  ACCESS: evtStatus(EvtId.F_ACCESS),
  PERMISSION: evtStatus(EvtId.F_PERMISSION),
} as const;

/** Whether `evt` is one of the four stallable / record-policy translation faults (0x10–0x13, §5.2). */
export function isTranslationFault(evt: number): boolean {
  return evt >= EvtId.F_TRANSLATION && evt <= EvtId.F_PERMISSION;
}
