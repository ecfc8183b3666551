/**
 * IOMMU_OPTION (drivers/iommu/iommufd/main.c: iommufd_option, iommufd_option_rlimit_mode; ioas.c:
 * iommufd_ioas_option). RLIMIT_MODE is global (object_id 0); HUGE_PAGES is per IOAS.
 */
import type { IommufdCtx } from './context.js';
import { fail } from './errors.js';
import { getIoas, ioasOptionHugePages } from './ioas.js';
import { IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, IOMMU_OPTION_OP_SET, IOMMU_OPTION_RLIMIT_MODE } from './uapi/constants.js';
import { u32, u64 } from './uapi/u64.js';

/** `iommufd_option_rlimit_mode`. */
function rlimitMode(ctx: IommufdCtx, op: number, objectId: number, val64: bigint): bigint {
  if (objectId !== 0) fail('EOPNOTSUPP', `IOMMU_OPTION_RLIMIT_MODE: object_id ${objectId} must be 0`);
  if (op === IOMMU_OPTION_OP_GET) return ctx.accountMode === 'mm' ? 1n : 0n;
  if (op === IOMMU_OPTION_OP_SET) {
    if (!ctx.capSysResource) fail('EPERM', 'IOMMU_OPTION_RLIMIT_MODE: SET needs CAP_SYS_RESOURCE');
    if (!ctx.objects.empty) fail('EBUSY', 'IOMMU_OPTION_RLIMIT_MODE: objects already exist');
    if (val64 === 0n) ctx.accountMode = 'user';
    else if (val64 === 1n) ctx.accountMode = 'mm';
    else fail('EINVAL', `IOMMU_OPTION_RLIMIT_MODE: value ${val64} is not 0 or 1`);
    return val64;
  }
  return fail('EOPNOTSUPP', `IOMMU_OPTION: unknown op ${op}`);
}

/** IOMMU_OPTION: returns `val64` (the value read by GET; the value given for SET). */
export async function option(
  ctx: IommufdCtx,
  a: { optionId: number; op: number; objectId: number; val64?: bigint | number },
): Promise<{ val64: bigint }> {
  const optionId = u32(a.optionId, 'option_id');
  const op = u32(a.op, 'op');
  const objectId = u32(a.objectId, 'object_id');
  const val64 = u64(a.val64, 'val64');
  switch (optionId) {
    case IOMMU_OPTION_RLIMIT_MODE:
      return { val64: rlimitMode(ctx, op, objectId, val64) };
    case IOMMU_OPTION_HUGE_PAGES:
      return { val64: await ioasOptionHugePages(getIoas(ctx, objectId), op, val64) };
    default:
      return fail('EOPNOTSUPP', `IOMMU_OPTION: unknown option_id ${optionId}`);
  }
}
