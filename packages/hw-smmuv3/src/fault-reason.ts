/**
 * The backend-neutral driver-api `FaultReason` of each SMMUv3 event id, in one place: the model
 * packs it into its pipeline statuses (model/status.ts) and reports it on the device port; the
 * driver gives it to the faults it decodes from event records (driver/events.ts). Like
 * option-names.ts, this module belongs to neither half.
 */
import { FaultReason, type FaultReasonCode } from '@iommulab/driver-api';
import { EvtId } from './codec/index.js';

/**
 * The backend-neutral reason of an SMMUv3 event id (our mapping; the model's DmaResult uses the
 * same): F_TRANSLATION → TRANSLATION, F_PERMISSION → PERMISSION, F_ACCESS → ACCESS_FLAG,
 * F_ADDR_SIZE → ADDRESS_SIZE, fetch aborts → WALK_ABORT, C_BAD_STREAMID → BAD_RID,
 * C_BAD_SUBSTREAMID → BAD_PASID, F_STREAM_DISABLED / F_BAD_ATS_TREQ / F_TRANSL_FORBIDDEN / F_UUT
 * → BLOCKED, E_PAGE_REQUEST → PAGE_REQUEST, other C_BAD_* / conflicts → BAD_CONFIG.
 *
 * C_BAD_STE / C_BAD_CD map to BAD_CONFIG (an ILLEGAL entry). The model reports a V = 0 entry with
 * the same event id as BLOCKED (St.STE_INVALID / St.CD_INVALID); the driver, which sees only the
 * record, cannot tell the two apart and reports BAD_CONFIG.
 */
export function faultReasonOfEvent(id: number): FaultReasonCode {
  switch (id) {
    case EvtId.F_TRANSLATION:
      return FaultReason.TRANSLATION;
    case EvtId.F_PERMISSION:
      return FaultReason.PERMISSION;
    case EvtId.F_ACCESS:
      return FaultReason.ACCESS_FLAG;
    case EvtId.F_ADDR_SIZE:
      return FaultReason.ADDRESS_SIZE;
    case EvtId.F_WALK_EABT:
    case EvtId.F_STE_FETCH:
    case EvtId.F_CD_FETCH:
    case EvtId.F_VMS_FETCH:
      return FaultReason.WALK_ABORT;
    case EvtId.C_BAD_STREAMID:
      return FaultReason.BAD_RID;
    case EvtId.C_BAD_SUBSTREAMID:
      return FaultReason.BAD_PASID;
    // The stream refuses the transaction.
    case EvtId.F_STREAM_DISABLED:
    case EvtId.F_BAD_ATS_TREQ:
    case EvtId.F_TRANSL_FORBIDDEN:
    case EvtId.F_UUT:
      return FaultReason.BLOCKED;
    case EvtId.E_PAGE_REQUEST:
      return FaultReason.PAGE_REQUEST;
    default:
      return FaultReason.BAD_CONFIG;
  }
}
