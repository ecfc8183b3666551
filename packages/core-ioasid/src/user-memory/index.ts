/**
 * The user-memory model: processes (address spaces), memfds and RLIMIT_MEMLOCK accounting —
 * the memory iommufd pins from.
 */
export {
  UserProcess,
  TASK_SIZE,
  MMAP_BASE,
  MMAP_MIN_ADDR,
  type Prot,
  type UserProcessOptions,
  type MmapOptions,
} from './process.js';
export { Memfd } from './memfd.js';
export {
  MemlockAccount,
  chargeMemlock,
  unchargeMemlock,
  pagesAccountMode,
  memlockLimitPages,
  type RlimitMode,
} from './accounting.js';
export { FrameTable } from './frames.js';
