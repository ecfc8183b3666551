/**
 * The option keys of the SMMUv3 backend, in one place: hosts give the hardware and the driver the
 * same options object, so each half must accept (and ignore) the other half's keys.
 */

/** Option keys the host driver reads (queue sizes, MSI polling, stall-capable StreamIDs). */
export const DRIVER_OPTION_NAMES: readonly string[] = Object.freeze(['driverCmdqLog2', 'driverEvtqLog2', 'driverPriqLog2', 'driverMsiPoll', 'stallRids']);

/** Option keys the hardware model reads besides its features (features.ts). */
export const MODEL_OPTION_NAMES: readonly string[] = Object.freeze(['atcEntries', 'pageResponseLog', 'stallLog']);
