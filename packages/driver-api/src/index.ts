/**
 * @packageDocumentation
 * The iommulab backend contract. A backend package implements {@link IommuHardware} (the model
 * that runs in an instance worker) and {@link IommuDriver} (the host driver that programs it), and
 * default-exports a {@link BackendPlugin} made with {@link defineBackend}. The conformance suite
 * that proves a backend lives at `@iommulab/driver-api/conformance`.
 */
export { API_VERSION, SUPPORTED_API_VERSIONS } from './api-version.js';
export { ERRNO, isErrnoName, type ErrnoName } from './errno.js';
export { IommuError, isIommuError } from './iommu-error.js';
export {
  FaultReason,
  faultReasonName,
  isStopMarker,
  deliverFault,
  PgFaultPerm,
  PageResponseCode,
  type FaultReasonCode,
  type PageResponseCodeValue,
  type PageRequest,
  type FaultEvent,
  type FaultQueueOverflow,
  type IommuFault,
  type PageResponse,
} from './fault.js';
export { HwCap, type BackendCapabilities } from './capabilities.js';
export type { DeviceSpec, IommuDevice, HwInfo, ReservedRegion } from './device.js';
export {
  Prot,
  IotlbGather,
  checkPageRange,
  type DomainAllocFlags,
  type PagingUserData,
  type IommuDomain,
  type PagingDomain,
  type NestedDomain,
  type DirtyReadFlags,
  type UserInvalidateResult,
  type AttachTarget,
  type DomainUser,
} from './domain.js';
export type { DriverContext, IommuDriver } from './driver.js';
export type {
  IommuViommu,
  IommuHwQueue,
  ViommuAllocEnv,
  ViommuEvent,
  ViommuEventHandler,
} from './viommu.js';
export type { IommuHardware, DevicePageRequest, HardwareContext } from './hardware.js';
export { defineBackend, loadBackend, type BackendPlugin } from './backend.js';
export { openBackend, type OpenBackendOptions, type BackendStack } from './open-backend.js';
// The device-port wire types come from the runtime; re-exported so backends need one import.
export {
  ACCESS_READ,
  ACCESS_WRITE,
  ACCESS_EXEC,
  NO_PASID,
  dmaRequest,
  dmaResult,
  type DmaRequest,
  type DmaResult,
  type DevicePort,
  type InstanceMode,
} from '@iommulab/runtime';
