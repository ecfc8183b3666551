/**
 * Packed translation status used between the model's units without allocation:
 * 0 = ok, else FaultReason in bits [7:0] and a {@link MockFaultDetail} code in bits [15:8].
 */
import { FaultReason } from '@iommulab/driver-api';
import { MockFaultDetail } from './codec.js';

/** Packs a fault reason and a detail code. */
export function status(reason: number, detail: number): number {
  return reason | (detail << 8);
}
/** Reason part of a packed status. */
export function statusReason(s: number): number {
  return s & 0xff;
}
/** Detail part of a packed status. */
export function statusDetail(s: number): number {
  return s >>> 8;
}

/** Frequently used statuses. */
export const S = {
  OK: 0,
  DT_CONFIG: status(FaultReason.BAD_CONFIG, MockFaultDetail.DT_CONFIG),
  DTE_FETCH: status(FaultReason.WALK_ABORT, MockFaultDetail.DTE_FETCH),
  DTE_INVALID: status(FaultReason.BLOCKED, MockFaultDetail.DTE_INVALID),
  DTE_RESERVED: status(FaultReason.BAD_CONFIG, MockFaultDetail.DTE_RESERVED),
  DTE_FEATURE: status(FaultReason.BAD_CONFIG, MockFaultDetail.DTE_FEATURE),
  PASID_DISABLED: status(FaultReason.BAD_PASID, MockFaultDetail.PASID_DISABLED),
  PASID_FETCH: status(FaultReason.WALK_ABORT, MockFaultDetail.PASID_FETCH),
  PASID_DIR_INVALID: status(FaultReason.BLOCKED, MockFaultDetail.PASID_DIR_INVALID),
  PASID_INVALID: status(FaultReason.BLOCKED, MockFaultDetail.PASID_INVALID),
  PASID_RESERVED: status(FaultReason.BAD_CONFIG, MockFaultDetail.PASID_RESERVED),
  PTE_FETCH: status(FaultReason.WALK_ABORT, MockFaultDetail.PTE_FETCH),
  L1_INVALID: status(FaultReason.TRANSLATION, MockFaultDetail.L1_INVALID),
  L2_INVALID: status(FaultReason.TRANSLATION, MockFaultDetail.L2_INVALID),
  PTE_RESERVED: status(FaultReason.TRANSLATION, MockFaultDetail.PTE_RESERVED),
  NO_READ: status(FaultReason.PERMISSION, MockFaultDetail.NO_READ),
  NO_WRITE: status(FaultReason.PERMISSION, MockFaultDetail.NO_WRITE),
} as const;
