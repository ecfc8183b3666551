// primitives
export { RuntimeError, InstanceError, type RuntimeErrorCode } from './errors.js';
export { PhysMem, FRAME_SIZE, FRAME_SHIFT, DEFAULT_PHYS_MEM_BYTES, type PhysMemHandle } from './phys-mem.js';
export { qIdx, qWrap, qEmpty, qFull, qCount, qSpace, qInc, qValid } from './queue-index.js';
export {
  RecordRing,
  type RecordRingHandle,
  type RecordRingOptions,
  type RingWaitResult,
} from './record-ring.js';
export { Doorbell, waitUntil, type WaitResult, type WaitUntilOptions } from './doorbell.js';
export { RegisterFile, type RegisterFileHandle } from './register-file.js';
export {
  ACCESS_READ,
  ACCESS_WRITE,
  ACCESS_EXEC,
  NO_PASID,
  dmaRequest,
  dmaResult,
  toDmaRequest,
  type AccessName,
  type DmaRequest,
  type DmaRequestInit,
  type DmaResult,
  type PageRequestInit,
} from './dma.js';
// threads
export {
  loadHostedBackend,
  DEFAULT_REGISTER_FILE_BYTES,
  type HostedHardware,
  type HardwareContext,
  type HostedBackend,
} from './hosted.js';
export {
  runWorkload,
  runWorkloadSync,
  WORKLOAD_CHUNK,
  type WorkloadSpec,
  type WorkloadResult,
} from './workload.js';
export { DEVICE_PORT_ENTRIES, DEVICE_PORT_RECORD_BYTES, type DevicePort } from './device-port.js';
export { type ControlApi } from './control-api.js';
export { InstanceHost, type InstanceMode, type InstanceOptions } from './instance-host.js';
export { InstanceGroup } from './instance-group.js';
export { createJobPool, type JobPool, type JobPoolOptions } from './job-pool.js';
export { resolveBackendSpecifier, resolvePackageEsm, activeConditions } from './resolve-specifier.js';
