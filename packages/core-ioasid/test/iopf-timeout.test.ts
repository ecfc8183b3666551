/**
 * Optional response timeouts through iommufd (vmm-and-faults.md §3.6, §6.4): Linux has no timer —
 * an unanswered group waits forever — so they are off by default. An owner opts in by creating the
 * driver's fault layer with a `LogicalClock` and `responseTimeout` before the first IOPF attach
 * (`IopfQueue.of(driver, options)`); a group not answered within that many ticks is then answered
 * (INVALID by default) and forgotten by its FAULT: a later write of its cookie is EINVAL.
 */
import type { PageResponse } from '@iommulab/driver-api';
import { IopfQueue, LogicalClock, decodePgfaults, encodePageResponses } from '@iommulab/fault-queues';
import { afterEach, describe, expect, it } from 'vitest';
import { ViommuTestOps } from '../src/selftest-viommu.js';
import { IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_FAULT_ID_VALID, IOMMUFD_PAGE_RESP_INVALID, IOMMUFD_PAGE_RESP_SUCCESS } from '../src/uapi/constants.js';
import { expectErrno } from './fixture.js';
import { IOMMU_HWPT_DATA_SELFTEST, openMockSelf, teardownMock, type MockSelf } from './mock-fixture.js';

interface Hw {
  takePageResponses(): PageResponse[];
}

describe('IOPF response timeouts on a logical clock (hw-mock, TRIGGER_IOPF)', () => {
  let self: MockSelf | undefined;
  afterEach(async () => {
    if (self !== undefined) await teardownMock(self);
    self = undefined;
  });

  async function setup(clock?: LogicalClock, responseTimeout?: number) {
    self = await openMockSelf();
    const s = self;
    if (clock !== undefined) IopfQueue.of(s.stack.driver, { clock, responseTimeout });
    const ops = new ViommuTestOps(s.fd);
    const ioasId = (await s.fd.ioasAlloc()).outIoasId;
    const { outStdevId: stdevId, outIdevId: devId } = await s.mock.mockDomain(ioasId);
    const parent = (await s.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).outHwptId;
    const { outFaultId: faultId, file } = await s.fd.faultQueueAlloc();
    const data = new Uint8Array(8);
    const iopf = (await s.fd.hwptAlloc({ devId, ptId: parent, flags: IOMMU_HWPT_FAULT_ID_VALID, faultId, dataType: IOMMU_HWPT_DATA_SELFTEST, data })).outHwptId;
    await s.mock.mockDomainReplace(stdevId, iopf);
    const rid = s.mock.deviceOf(stdevId).dev.rid;
    const hw = s.stack.host.hardware as unknown as Hw;
    return { ops, devId, file, rid, hw };
  }

  it('off by default (as Linux): a read group stays pending however far a clock moves; its own cookie still answers it', async () => {
    const { ops, devId, file, rid, hw } = await setup();
    await ops.triggerIopf(devId, 0, 9, 1, 0x10_0000);
    const [rec] = decodePgfaults(file.read(40));
    new LogicalClock().advance(1_000_000); // an unrelated clock: nothing listens
    await file.fault.flush();
    expect(hw.takePageResponses()).toEqual([]);
    expect(file.write(encodePageResponses([{ cookie: rec!.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS }]))).toBe(8);
    await file.fault.flush();
    expect(hw.takePageResponses()).toEqual([{ rid, pasid: -1, grpid: 9, code: IOMMUFD_PAGE_RESP_SUCCESS }]);
  });

  it('responseTimeout 10: a group unanswered after 10 ticks (read or not) gets INVALID in hardware exactly once; its cookie is then EINVAL; a group answered in time is not touched', async () => {
    const clock = new LogicalClock();
    const { ops, devId, file, rid, hw } = await setup(clock, 10);
    await ops.triggerIopf(devId, 0, 1, 1, 0x10_0000); // reported at t = 0: due at 10
    const [first] = decodePgfaults(file.read(40));
    clock.advance(4);
    await ops.triggerIopf(devId, 0, 2, 1, 0x20_0000); // t = 4: due at 14, left unread
    await ops.triggerIopf(devId, 0, 3, 1, 0x30_0000); // t = 4: answered in time below
    clock.advance(5); // t = 9: nothing due yet
    await file.fault.flush();
    expect(hw.takePageResponses()).toEqual([]);
    const [second, third] = decodePgfaults(file.read(80));
    expect([second!.grpid, third!.grpid]).toEqual([2, 3]);
    expect(file.write(encodePageResponses([{ cookie: third!.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS }]))).toBe(8);
    clock.advance(1); // t = 10: the first group times out
    await file.fault.flush();
    expect(hw.takePageResponses()).toEqual([
      { rid, pasid: -1, grpid: 3, code: IOMMUFD_PAGE_RESP_SUCCESS },
      { rid, pasid: -1, grpid: 1, code: IOMMUFD_PAGE_RESP_INVALID },
    ]);
    await expectErrno('EINVAL', Promise.resolve().then(() => file.write(encodePageResponses([{ cookie: first!.cookie, code: IOMMUFD_PAGE_RESP_SUCCESS }]))));
    clock.advance(10); // t = 20: the second one too; the answered third is left alone
    await file.fault.flush();
    expect(hw.takePageResponses()).toEqual([{ rid, pasid: -1, grpid: 2, code: IOMMUFD_PAGE_RESP_INVALID }]);
    expect(IopfQueue.of(self!.stack.driver).stats.timeouts).toBe(2);
    expect(file.poll().readable).toBe(false);
  });
});
