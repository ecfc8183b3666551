/**
 * IOMMU_VFIO_IOAS (drivers/iommu/iommufd/vfio_compat.c: iommufd_vfio_ioas): which IOAS the VFIO
 * type1 compatibility ioctls use. The setting is a plain pointer, not a users reference:
 * destroying that IOAS clears it (see IommufdCtx), CLEAR never destroys it.
 */
import type { IommufdCtx } from './context.js';
import { fail } from './errors.js';
import { getIoas, type Ioas } from './ioas.js';
import { IOMMU_VFIO_IOAS_CLEAR, IOMMU_VFIO_IOAS_GET, IOMMU_VFIO_IOAS_SET } from './uapi/constants.js';
import { u32 } from './uapi/u64.js';

/** `get_compat_ioas`: `ENODEV` when none is set. */
export function getCompatIoas(ctx: IommufdCtx): Ioas {
  const ioas = ctx.vfioIoas;
  if (ioas === null) return fail('ENODEV', 'no VFIO compatibility IOAS is set');
  return ioas as Ioas;
}

/** IOMMU_VFIO_IOAS: GET returns the compat IOAS id (`ENODEV` if none); SET (`ENOENT` unless an IOAS); CLEAR. */
export async function vfioIoas(ctx: IommufdCtx, a: { ioasId: number; op: number }): Promise<{ ioasId: number }> {
  const op = u32(a.op, 'op');
  const ioasId = u32(a.ioasId, 'ioas_id');
  switch (op) {
    case IOMMU_VFIO_IOAS_GET:
      return { ioasId: getCompatIoas(ctx).id };
    case IOMMU_VFIO_IOAS_SET:
      ctx.vfioIoas = getIoas(ctx, ioasId);
      return { ioasId };
    case IOMMU_VFIO_IOAS_CLEAR:
      ctx.vfioIoas = null;
      return { ioasId };
    default:
      return fail('EOPNOTSUPP', `IOMMU_VFIO_IOAS: unknown op ${op}`);
  }
}
