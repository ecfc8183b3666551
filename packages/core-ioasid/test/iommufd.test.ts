/** FIXTURE iommufd (tools/testing/selftests/iommu/iommufd.c): the typed-API parts. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
} from '../src/uapi/constants.js';
import { expectErrno, openSelf, teardown, type Self } from './fixture.js';

describe('FIXTURE iommufd', () => {
  let self: Self;
  beforeEach(() => {
    self = openSelf();
  });
  afterEach(async () => {
    await teardown(self);
  });

  it('simple_close', async () => {
    // open + close (teardown) works
    expect(self.fd.closed).toBe(false);
  });

  it('cmd_fail', async () => {
    // object id is invalid
    await expectErrno('ENOENT', self.fd.destroy({ id: 0 }));
    // (NULL arg → EFAULT and nr 0x7f → ENOTTY are binary-ABI tests: abi helper)
  });

  it('global_options', async () => {
    const fd = self.fd;
    const base = { optionId: IOMMU_OPTION_RLIMIT_MODE, objectId: 0 };
    expect((await fd.option({ ...base, op: IOMMU_OPTION_OP_GET, val64: 1 })).val64).toBe(0n);
    // This requires root (CAP_SYS_RESOURCE)
    await fd.option({ ...base, op: IOMMU_OPTION_OP_SET, val64: 1 });
    await expectErrno('EINVAL', fd.option({ ...base, op: IOMMU_OPTION_OP_SET, val64: 2 }));
    expect((await fd.option({ ...base, op: IOMMU_OPTION_OP_GET, val64: 2 })).val64).toBe(1n);
    await fd.option({ ...base, op: IOMMU_OPTION_OP_SET, val64: 0 });
    await expectErrno('ENOENT', fd.option({ optionId: IOMMU_OPTION_HUGE_PAGES, objectId: 0, op: IOMMU_OPTION_OP_GET, val64: 0 }));
    await expectErrno('ENOENT', fd.option({ optionId: IOMMU_OPTION_HUGE_PAGES, objectId: 0, op: IOMMU_OPTION_OP_SET, val64: 0 }));
  });

  it('global_options: RLIMIT_MODE SET without CAP_SYS_RESOURCE → EPERM, with objects → EBUSY, object_id → EOPNOTSUPP', async () => {
    const fd = self.fd;
    await expectErrno('EOPNOTSUPP', fd.option({ optionId: IOMMU_OPTION_RLIMIT_MODE, objectId: 1, op: IOMMU_OPTION_OP_GET }));
    await fd.ioasAlloc();
    await expectErrno('EBUSY', fd.option({ optionId: IOMMU_OPTION_RLIMIT_MODE, objectId: 0, op: IOMMU_OPTION_OP_SET, val64: 1 }));
    fd.ctx.capSysResource = false;
    await expectErrno('EPERM', fd.option({ optionId: IOMMU_OPTION_RLIMIT_MODE, objectId: 0, op: IOMMU_OPTION_OP_SET, val64: 1 }));
    await expectErrno('EOPNOTSUPP', fd.option({ optionId: 7, objectId: 0, op: IOMMU_OPTION_OP_GET }));
  });

  it('calls after close fail with EBADF', async () => {
    await self.fd.close();
    await expectErrno('EBADF', self.fd.ioasAlloc());
  });
});

describe('FIXTURE iommufd: vfio_ioas', () => {
  let self: Self;
  beforeEach(() => {
    self = openSelf();
  });
  afterEach(async () => {
    await teardown(self);
  });

  it('vfio_ioas', async () => {
    const fd = self.fd;
    // ENODEV if there is no compat ioas
    await expectErrno('ENODEV', fd.vfioIoas({ ioasId: 0, op: IOMMU_VFIO_IOAS_GET }));
    // Invalid id for set
    await expectErrno('ENOENT', fd.vfioIoas({ ioasId: 0, op: IOMMU_VFIO_IOAS_SET }));
    // Valid id for set
    const { outIoasId } = await fd.ioasAlloc();
    await fd.vfioIoas({ ioasId: outIoasId, op: IOMMU_VFIO_IOAS_SET });
    // Same id comes back from get
    expect((await fd.vfioIoas({ ioasId: 0, op: IOMMU_VFIO_IOAS_GET })).ioasId).toBe(outIoasId);
    // Clear works
    await fd.vfioIoas({ ioasId: 0, op: IOMMU_VFIO_IOAS_CLEAR });
    await expectErrno('ENODEV', fd.vfioIoas({ ioasId: 0, op: IOMMU_VFIO_IOAS_GET }));
  });

  it('vfio_ioas: destroying the compat IOAS clears it; CLEAR never destroys', async () => {
    const fd = self.fd;
    const { outIoasId } = await fd.ioasAlloc();
    await fd.vfioIoas({ ioasId: outIoasId, op: IOMMU_VFIO_IOAS_SET });
    await fd.vfioIoas({ ioasId: 0, op: IOMMU_VFIO_IOAS_CLEAR });
    await fd.vfioIoas({ ioasId: outIoasId, op: IOMMU_VFIO_IOAS_SET });
    await fd.destroy({ id: outIoasId });
    await expectErrno('ENODEV', fd.vfioIoas({ ioasId: 0, op: IOMMU_VFIO_IOAS_GET }));
    await expectErrno('EOPNOTSUPP', fd.vfioIoas({ ioasId: 0, op: 3 }));
  });
});
