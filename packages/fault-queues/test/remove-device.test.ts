// iopf_queue_remove_device (vmm-and-faults.md §3.4 "iopf_queue_remove_device" row): the device's
// partial requests are freed with no response; every pending group is answered INVALID and
// unlinked (withdrawn from its fault queue), so a later answer, e.g. a write of its cookie, is a
// no-op (EINVAL). Also addDevice's EBUSY and IopfQueue.close (every device removed).
import { isIommuError, PageResponseCode } from '@iommulab/driver-api';
import { describe, expect, it } from 'vitest';
import { decodePgfaults, encodePageResponses, FaultQueue, IopfQueue } from '../src/index.js';
import { device, FakeDriver, pageRequest, RecordingSink, routeAllTo } from './fake-driver.js';

function errnoOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isIommuError(e) ? e.errno : `not an IommuError: ${String(e)}`;
  }
  return undefined;
}

describe('IopfQueue.removeDevice', () => {
  it('frees partials without a response and counts them', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const dev = device(0x90);
    const d = q.addDevice(dev, routeAllTo(new RecordingSink()));
    fd.push(pageRequest({ rid: 0x90, grpid: 1 }));
    fd.push(pageRequest({ rid: 0x90, grpid: 2 }));
    q.removeDevice(dev);
    expect(fd.sent).toEqual([]);
    expect(q.stats.partialDiscarded).toBe(2);
    expect(d.stats.partialDiscarded).toBe(2);
    expect(d.partialCount).toBe(0);
    expect(q.device(0x90)).toBeUndefined();
    expect(q.devices.size).toBe(0);
  });

  it('answers INVALID every pending group (queued and read), withdrawn from the FaultQueue; a later write of their cookie is EINVAL', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const fq = new FaultQueue();
    const dev = device(0x91);
    const d = q.addDevice(dev, routeAllTo(fq), 5);
    const other = device(0x92);
    q.addDevice(other, routeAllTo(fq), 6);
    fd.push(pageRequest({ rid: 0x91, grpid: 1, pasid: 4, last: true }));
    fd.push(pageRequest({ rid: 0x92, grpid: 1, last: true }));
    expect(decodePgfaults(fq.read(80)).map((r) => [r.devId, r.cookie])).toEqual([
      [5, 1],
      [6, 2],
    ]);
    fd.push(pageRequest({ rid: 0x91, grpid: 2, last: true })); // queued, not read
    fd.push(pageRequest({ rid: 0x91, grpid: 3 })); // partial
    q.removeDevice(dev);
    expect(fd.sent.map((s) => [s.dev, s.response])).toEqual([
      [dev, { rid: 0x91, pasid: 4, grpid: 1, code: PageResponseCode.INVALID }],
      [dev, { rid: 0x91, pasid: -1, grpid: 2, code: PageResponseCode.INVALID }],
    ]);
    expect(fq.stats.withdrawn).toBe(2);
    expect(fq.pendingRead).toBe(0);
    expect(fq.awaitingResponse).toBe(1);
    expect(d.stats.answered).toBe(2);
    expect(d.outstanding).toBe(0);
    expect(q.outstanding).toBe(1); // the other device's group
    // the removed device's cookie is gone; the other device's group still answers
    expect(errnoOf(() => fq.write(encodePageResponses([{ cookie: 1, code: 0 }])))).toBe('EINVAL');
    expect(fq.write(encodePageResponses([{ cookie: 2, code: 0 }]))).toBe(8);
    expect(fd.responses()[2]).toEqual({ rid: 0x92, pasid: -1, grpid: 1, code: PageResponseCode.SUCCESS });
  });

  it('does not answer again a group already answered', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const sink = new RecordingSink();
    const dev = device(0x93);
    q.addDevice(dev, routeAllTo(sink));
    fd.push(pageRequest({ rid: 0x93, grpid: 1, last: true }));
    fd.push(pageRequest({ rid: 0x93, grpid: 2, last: true }));
    sink.delivered[0]!.respond(PageResponseCode.SUCCESS);
    q.removeDevice(dev);
    expect(fd.responses().map((r) => [r.grpid, r.code])).toEqual([
      [1, PageResponseCode.SUCCESS],
      [2, PageResponseCode.INVALID],
    ]);
    // each group is withdrawn from its sink once, when it is answered
    expect(sink.withdrawn).toEqual([sink.delivered[0], sink.delivered[1]]);
    expect(q.stats.lateResponses).toBe(0);
  });

  it('a removed device’s later requests are left to the driver', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const release = q.hold();
    const dev = device(0x94);
    q.addDevice(dev, routeAllTo(new RecordingSink()));
    q.removeDevice(dev);
    expect(q.report(pageRequest({ rid: 0x94, grpid: 1, last: true }))).toBe(false);
    expect(q.stats.unknownDevice).toBe(1);
    release();
  });

  it('removing a device that is not added, or a stale FaultDevice of the same requester id, does nothing', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const sink = new RecordingSink();
    const dev = device(0x95);
    const stale = q.addDevice(dev, routeAllTo(sink));
    q.removeDevice(dev);
    const cur = q.addDevice(dev, routeAllTo(sink));
    fd.push(pageRequest({ rid: 0x95, grpid: 1, last: true }));
    q.removeDevice(stale);
    q.removeDevice(device(0x96));
    expect(q.device(0x95)).toBe(cur);
    expect(cur.outstanding).toBe(1);
    expect(fd.sent).toEqual([]);
    q.removeDevice(cur);
    expect(fd.sent).toHaveLength(1);
  });

  it('addDevice of a requester id already added throws (EBUSY)', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    q.addDevice(device(0x97), () => null);
    expect(() => q.addDevice(device(0x97), () => null)).toThrow(/EBUSY/);
    expect(q.devices.size).toBe(1);
  });
});

describe('IopfQueue.close', () => {
  it('removes every device (pending groups answered INVALID), then refuses addDevice and hold', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const fq = new FaultQueue();
    q.addDevice(device(1), routeAllTo(fq));
    q.addDevice(device(2), routeAllTo(fq));
    fd.push(pageRequest({ rid: 1, grpid: 1, last: true }));
    fd.push(pageRequest({ rid: 2, grpid: 2, last: true }));
    fd.push(pageRequest({ rid: 2, grpid: 3 }));
    q.close();
    expect(fd.responses()).toEqual([
      { rid: 1, pasid: -1, grpid: 1, code: PageResponseCode.INVALID },
      { rid: 2, pasid: -1, grpid: 2, code: PageResponseCode.INVALID },
    ]);
    expect(q.devices.size).toBe(0);
    expect(q.outstanding).toBe(0);
    expect(fq.pendingRead).toBe(0);
    expect(q.stats.partialDiscarded).toBe(1);
    expect(() => q.addDevice(device(3), () => null)).toThrow(/closed/);
    expect(() => q.hold()).toThrow(/closed/);
    q.close(); // twice: nothing more
    expect(fd.sent).toHaveLength(2);
  });
});
