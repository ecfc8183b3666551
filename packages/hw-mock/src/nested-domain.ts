/**
 * MockNestedDomain: the selftest's nested domain (IOMMU_HWPT_DATA_SELFTEST). As in the kernel
 * mock, stage 1 is not walked by hardware: a device attached to it translates through the
 * parent's page table, and the "stage-1 IOTLB" is four software slots that user invalidations
 * (IOMMU_HWPT_INVALIDATE_DATA_SELFTEST entries) clear.
 */
import { IommuError, type NestedDomain, type UserInvalidateResult } from '@iommulab/driver-api';
import {
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  MOCK_NESTED_DOMAIN_IOTLB_ID_MAX,
  MOCK_NESTED_DOMAIN_IOTLB_NUM,
} from './constants.js';
import type { MockPagingDomain } from './paging-domain.js';

/** Bytes of one selftest invalidation entry `{u32 flags; u32 iotlb_id}`. */
export const SELFTEST_INVALIDATE_ENTRY_BYTES = 8;

/** A nested domain of the mock IOMMU. */
export class MockNestedDomain implements NestedDomain {
  readonly kind = 'nested' as const;
  /** The mock stage-1 IOTLB: 4 slots. */
  readonly iotlb = new Uint32Array(MOCK_NESTED_DOMAIN_IOTLB_NUM);
  /** Devices / PASIDs attached. @internal */
  readonly users = new Set<string>();
  private freed = false;

  /** @internal use `MockDriver.domainAllocNested` */
  constructor(
    private readonly host: { checkAlive(): void; domainFreed(d: MockNestedDomain): void },
    readonly id: number,
    readonly parent: MockPagingDomain,
    readonly dataType: number,
    iotlbInit: number,
  ) {
    this.iotlb.fill(iotlbInit >>> 0);
    parent.nestedChildren++;
  }

  /** True once freed. */
  get isFreed(): boolean {
    return this.freed;
  }

  /** The value of mock IOTLB slot `id` (the selftest's MD_CHECK_IOTLB). @throws IommuError EINVAL for id > 3 */
  iotlbValue(id: number): number {
    if (!Number.isInteger(id) || id < 0 || id > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX) throw new IommuError('EINVAL', `iotlb id ${id} is not 0..3`);
    return this.iotlb[id]!;
  }

  async cacheInvalidateUser(dataType: number, entryLen: number, entries: Uint8Array, count: number): Promise<UserInvalidateResult> {
    this.host.checkAlive();
    if (this.freed) throw new IommuError('ENOENT', `nested domain ${this.id} was freed`);
    if (dataType !== IOMMU_HWPT_INVALIDATE_DATA_SELFTEST) {
      return { handled: 0, error: new IommuError('EINVAL', `invalidation data type 0x${dataType.toString(16)} is not IOMMU_HWPT_INVALIDATE_DATA_SELFTEST`) };
    }
    if (!Number.isInteger(count) || count < 0) return { handled: 0, error: new IommuError('EINVAL', `entry count ${count}`) };
    if (count === 0) return { handled: 0 };
    // iommu_copy_struct_from_user_array: an entry must be at least the mandatory part and at most
    // the driver's struct (a longer entry_len is EINVAL, whatever its tail holds).
    if (!Number.isInteger(entryLen) || entryLen < SELFTEST_INVALIDATE_ENTRY_BYTES || entryLen > SELFTEST_INVALIDATE_ENTRY_BYTES) {
      return { handled: 0, error: new IommuError('EINVAL', `entry length ${entryLen} is not the ${SELFTEST_INVALIDATE_ENTRY_BYTES}-byte selftest entry`) };
    }
    if (entries.length < entryLen * count) {
      return { handled: 0, error: new IommuError('EINVAL', `${entries.length} bytes hold fewer than ${count} entries of ${entryLen}`) };
    }
    const dv = new DataView(entries.buffer, entries.byteOffset, entries.byteLength);
    for (let i = 0; i < count; i++) {
      const at = i * entryLen;
      const flags = dv.getUint32(at, true);
      const id = dv.getUint32(at + 4, true);
      if ((flags & ~IOMMU_TEST_INVALIDATE_FLAG_ALL) !== 0) {
        return { handled: i, error: new IommuError('EOPNOTSUPP', `entry ${i}: unknown flags 0x${flags.toString(16)}`) };
      }
      if ((flags & IOMMU_TEST_INVALIDATE_FLAG_ALL) !== 0) {
        this.iotlb.fill(0);
      } else if (id > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX) {
        return { handled: i, error: new IommuError('EINVAL', `entry ${i}: iotlb_id ${id} > ${MOCK_NESTED_DOMAIN_IOTLB_ID_MAX}`) };
      } else {
        this.iotlb[id] = 0;
      }
    }
    return { handled: count };
  }

  async free(): Promise<void> {
    this.host.checkAlive();
    if (this.freed) throw new IommuError('ENOENT', `nested domain ${this.id} was freed`);
    if (this.users.size > 0) throw new IommuError('EBUSY', `nested domain ${this.id} is attached to ${this.users.size} device(s)/PASID(s)`);
    this.freed = true;
    this.parent.nestedChildren--;
    this.host.domainFreed(this);
  }
}
