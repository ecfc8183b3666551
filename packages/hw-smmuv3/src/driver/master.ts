/**
 * Per-device driver state (Linux `struct arm_smmu_master`): the device's single StreamID (its
 * requester id), its SSID width, what it can do (ATS, PRI, stall), its CD table, what its RID and
 * each PASID are attached to, and the STE currently installed.
 */
import type { IommuDevice } from '@iommulab/driver-api';
import type { CdTable } from './cd-table.js';
import { STE_WORDS } from './ste-build.js';

/** What a RID can be attached to (a paging or nested domain, or the static domains). */
export type RidTarget<D> = D | 'blocked' | 'identity';

/** One probed device. */
export class SmmuMaster<D = unknown, P = unknown> {
  /** StreamID (= requester id). */
  readonly sid: number;
  /** SSID bits the driver uses for this master (Linux `master->ssid_bits`). */
  readonly ssidBits: number;
  /** The device's ATC may be used (device ATS (or PRI, which requires ATS) and IDR0.ATS). */
  readonly atsCapable: boolean;
  /** The device sends PCIe page requests and the SMMU has a PRI queue. */
  readonly priCapable: boolean;
  /** `master->stall_enabled`: firmware says the device can stall (or the SMMU forces stalls). */
  readonly stallEnabled: boolean;
  /** CD table (allocated on the first attach that needs one). */
  cdTable: CdTable | undefined;
  /** What the RID is attached to. */
  ridTarget: RidTarget<D> = 'blocked';
  /** Stage-1 domains attached to PASIDs (SSID ≥ 1). */
  readonly pasids = new Map<number, P>();
  /** ATS enabled in the installed STE (EATS = 1). */
  atsEnabled = false;
  /** The STE currently installed (16 words), as the driver last wrote it. */
  readonly ste = new Uint32Array(STE_WORDS);

  constructor(
    readonly dev: IommuDevice,
    opts: { ssidBits: number; atsCapable: boolean; priCapable: boolean; stallEnabled: boolean },
  ) {
    this.sid = dev.rid;
    this.ssidBits = opts.ssidBits;
    this.atsCapable = opts.atsCapable;
    this.priCapable = opts.priCapable;
    this.stallEnabled = opts.stallEnabled;
  }

  /** `arm_smmu_ssids_in_use`: any PASID attached. */
  get ssidsInUse(): boolean {
    return this.pasids.size > 0;
  }
}
