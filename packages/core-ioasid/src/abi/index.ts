/**
 * Binary ABI of /dev/iommu: ioctl request numbers, the exact uAPI struct layouts, the size-extensible
 * copy rules, and {@link iommufdIoctl} which runs a raw ioctl through the typed IommuFd methods.
 */
export { iommufdIoctl, type IoctlTarget } from './dispatch.js';
export { FdTable, FIRST_FD, type FdObject } from './fd-table.js';
export {
  IOCTL_LAYOUTS,
  IOCTL_TABLE_END,
  IOMMU_IOVA_RANGE_SIZE,
  FIELD_BYTES,
  camelName,
  fieldOf,
  ioctlLayout,
  ioctlLayoutByNr,
  type FieldLayout,
  type FieldType,
  type IoctlLayout,
} from './layout.js';
export { copyStructFromUser, extendStruct, readField, readUserSize, respond, writeField, fieldIsZero } from './codec.js';
export {
  USER_ADDR_LIMIT,
  clearUser,
  defineLazyUserBytes,
  encodeIovaRanges,
  lazyIovaRanges,
  readUser,
  writeUser,
  type IovaRangeValue,
  type UserMemory,
} from './user-ptr.js';
