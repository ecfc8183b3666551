/**
 * Packed pipeline status, passed between the model's units without allocation (smmuv3.md §5.2):
 * 0 = ok; otherwise the SMMUv3 event id in bits [7:0] (0 = terminate without an event record) and
 * the backend-neutral driver-api `FaultReason` in bits [15:8].
 */
import { FaultReason } from '@iommulab/driver-api';
import { EvtId } from '../codec/index.js';

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

/** The statuses the pipeline raises (§5.2), with the FaultReason each maps to. */
export const St = {
  OK: 0,
  /** STE.Config = abort, GBPA.ABORT: terminated, no event (§5.2 recording policy). */
  ABORT_NO_EVENT: status(0, FaultReason.BLOCKED),
  BAD_STREAMID: status(EvtId.C_BAD_STREAMID, FaultReason.BAD_RID),
  STE_FETCH: status(EvtId.F_STE_FETCH, FaultReason.WALK_ABORT),
  /** STE.V = 0: the stream is not configured. */
  STE_INVALID: status(EvtId.C_BAD_STE, FaultReason.BLOCKED),
  /** STE ILLEGAL (§2.5). */
  STE_ILLEGAL: status(EvtId.C_BAD_STE, FaultReason.BAD_CONFIG),
  BAD_ATS_TREQ: status(EvtId.F_BAD_ATS_TREQ, FaultReason.BLOCKED),
  STREAM_DISABLED: status(EvtId.F_STREAM_DISABLED, FaultReason.BLOCKED),
  TRANSL_FORBIDDEN: status(EvtId.F_TRANSL_FORBIDDEN, FaultReason.BLOCKED),
  BAD_SUBSTREAMID: status(EvtId.C_BAD_SUBSTREAMID, FaultReason.BAD_PASID),
  CD_FETCH: status(EvtId.F_CD_FETCH, FaultReason.WALK_ABORT),
  /** CD.V = 0: the substream is not configured. */
  CD_INVALID: status(EvtId.C_BAD_CD, FaultReason.BLOCKED),
  /** CD ILLEGAL (§3.4). */
  CD_ILLEGAL: status(EvtId.C_BAD_CD, FaultReason.BAD_CONFIG),
  UUT: status(EvtId.F_UUT, FaultReason.BLOCKED),
  WALK_EABT: status(EvtId.F_WALK_EABT, FaultReason.WALK_ABORT),
  TRANSLATION: status(EvtId.F_TRANSLATION, FaultReason.TRANSLATION),
  ADDR_SIZE: status(EvtId.F_ADDR_SIZE, FaultReason.ADDRESS_SIZE),
  ACCESS: status(EvtId.F_ACCESS, FaultReason.ACCESS_FLAG),
  PERMISSION: status(EvtId.F_PERMISSION, FaultReason.PERMISSION),
} as const;

/** FaultReason for a translation-fault event id reported by the walker (F_WALK_EABT, 0x10–0x13). */
export function walkFaultReason(evt: number): number {
  switch (evt) {
    case EvtId.F_TRANSLATION:
      return FaultReason.TRANSLATION;
    case EvtId.F_ADDR_SIZE:
      return FaultReason.ADDRESS_SIZE;
    case EvtId.F_ACCESS:
      return FaultReason.ACCESS_FLAG;
    case EvtId.F_PERMISSION:
      return FaultReason.PERMISSION;
    case EvtId.F_WALK_EABT:
      return FaultReason.WALK_ABORT;
    default:
      return FaultReason.TRANSLATION;
  }
}

/** Whether `evt` is one of the four stallable / record-policy translation faults (0x10–0x13, §5.2). */
export function isTranslationFault(evt: number): boolean {
  return evt >= EvtId.F_TRANSLATION && evt <= EvtId.F_PERMISSION;
}
