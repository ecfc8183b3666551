/**
 * Which devices may be attached to a HWPT with a FAULT (`iommufd_fault_iopf_enable`,
 * drivers/iommu/iommufd/eventq.c; vmm-and-faults.md §3.4 "VF with PRI"): a PCIe VF with PRI is
 * refused with EINVAL (PRI is shared with its PF: a Response Failure could not be forwarded), and
 * so is a device its IOMMU cannot take recoverable faults from (`IOMMU_DEV_FEAT_IOPF`; on SMMUv3
 * a master with neither PRI nor stall, `arm_smmu_master_iopf_supported`). The refusal leaves the
 * old attachment in place (attach and replace), and a HWPT without FAULT still takes the device.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { IOMMU_HWPT_FAULT_ID_VALID } from '../src/uapi/constants.js';
import { expectErrno } from './fixture.js';
import { bindSmmuDevice, openSmmuSelf, teardownSmmu, type SmmuSelf } from './smmuv3-fixture.js';

describe('iommufd_fault_iopf_enable refusals on SMMUv3', () => {
  let self: SmmuSelf | undefined;
  afterEach(async () => {
    if (self !== undefined) await teardownSmmu(self);
    self = undefined;
  });

  async function setup(options: Record<string, unknown> = {}) {
    self = await openSmmuSelf({ options });
    const fd = self.fd;
    const ioasId = (await fd.ioasAlloc()).outIoasId;
    const { outFaultId: faultId } = await fd.faultQueueAlloc();
    return { fd, ioasId, faultId };
  }

  it('a master with neither PRI nor stall: attach to a FAULT HWPT is EINVAL; to the IOAS (no FAULT) it attaches', async () => {
    const { fd, ioasId, faultId } = await setup();
    const devId = await bindSmmuDevice(self!, { rid: 0x21 });
    const iopf = (await fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId })).outHwptId;
    await expectErrno('EINVAL', fd.deviceAttach({ devId, ptId: iopf }));
    await fd.deviceAttach({ devId, ptId: ioasId });
    // Replace onto the FAULT HWPT is refused too, and the IOAS attachment stays.
    await expectErrno('EINVAL', fd.deviceReplace({ devId, ptId: iopf }));
    await fd.deviceReplace({ devId, ptId: ioasId });
    await fd.deviceDetach({ devId });
    await fd.destroy({ id: iopf });
  });

  it('a PRI-capable function and a stall-capable master (stallRids) both attach to a FAULT HWPT', async () => {
    const { fd, ioasId, faultId } = await setup({ stallRids: [0x23] });
    const pri = await bindSmmuDevice(self!, { rid: 0x22, ats: true, pri: true });
    const stall = await bindSmmuDevice(self!, { rid: 0x23 });
    const iopf = (await fd.hwptAlloc({ devId: pri, ptId: ioasId, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId })).outHwptId;
    await fd.deviceAttach({ devId: pri, ptId: iopf });
    await fd.deviceAttach({ devId: stall, ptId: iopf });
    await fd.deviceDetach({ devId: pri });
    await fd.deviceDetach({ devId: stall });
    await fd.destroy({ id: iopf });
  });

  it('a VF with PRI is EINVAL on a FAULT HWPT (attach and replace) even though its IOMMU could take its page requests; a stall-capable VF (no PRI to share) is allowed', async () => {
    const { fd, ioasId, faultId } = await setup({ stallRids: [0x25] });
    const vfPri = await bindSmmuDevice(self!, { rid: 0x24, ats: true, pri: true, vf: true });
    const vfStall = await bindSmmuDevice(self!, { rid: 0x25, vf: true });
    const iopf = (await fd.hwptAlloc({ devId: vfPri, ptId: ioasId, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId })).outHwptId;
    await expectErrno('EINVAL', fd.deviceAttach({ devId: vfPri, ptId: iopf }));
    // The same VF works without a FAULT.
    await fd.deviceAttach({ devId: vfPri, ptId: ioasId });
    await expectErrno('EINVAL', fd.deviceReplace({ devId: vfPri, ptId: iopf }));
    // A stall-capable VF has no PRI to share: allowed.
    await fd.deviceAttach({ devId: vfStall, ptId: iopf });
    await fd.deviceDetach({ devId: vfStall });
    await fd.deviceDetach({ devId: vfPri });
    await fd.destroy({ id: iopf });
  });
});
