// One fault layer per IOMMU instance (the kernel's per-IOMMU iopf_queue; vmm-and-faults.md §3.8
// "HW → host driver"): IopfQueue.of(driver) shares one queue per driver; the queue listens to
// driver.onFault while a device is added or a hold() is active, and unsubscribes when that count
// drops to 0.
import { describe, expect, it } from 'vitest';
import { IopfQueue } from '../src/index.js';
import { device, FakeDriver, pageRequest, RecordingSink, routeAllTo } from './fake-driver.js';

describe('IopfQueue.of', () => {
  it('returns the same queue for a driver, another for another driver', () => {
    const a = new FakeDriver();
    const b = new FakeDriver();
    const qa = IopfQueue.of(a.driver);
    expect(IopfQueue.of(a.driver)).toBe(qa);
    expect(IopfQueue.of(b.driver)).not.toBe(qa);
    expect(qa.driver).toBe(a.driver);
  });

  it('creates a new queue once the shared one is closed', () => {
    const a = new FakeDriver();
    const q1 = IopfQueue.of(a.driver);
    q1.close();
    const q2 = IopfQueue.of(a.driver);
    expect(q2).not.toBe(q1);
    expect(IopfQueue.of(a.driver)).toBe(q2);
  });

  it('uses the options of the first call only', () => {
    const a = new FakeDriver();
    const q = IopfQueue.of(a.driver, { maxPartial: 0 });
    expect(IopfQueue.of(a.driver, { maxPartial: 10 })).toBe(q);
    const d = q.addDevice(device(1), routeAllTo(new RecordingSink()));
    a.push(pageRequest({ rid: 1, grpid: 1 }));
    expect(d.partialCount).toBe(0);
    q.close();
  });
});

describe('IopfQueue: driver subscription', () => {
  it('does not subscribe until a device is added; unsubscribes when the last one is removed', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    expect(fd.subscribes).toBe(0);
    q.addDevice(device(1), () => null);
    q.addDevice(device(2), () => null);
    expect([fd.subscribes, fd.handlers.size]).toEqual([1, 1]);
    q.removeDevice(device(1));
    expect([fd.unsubscribes, fd.handlers.size]).toEqual([0, 1]);
    q.removeDevice(device(2));
    expect([fd.unsubscribes, fd.handlers.size]).toEqual([1, 0]);
    q.addDevice(device(3), () => null);
    expect([fd.subscribes, fd.handlers.size]).toEqual([2, 1]);
  });

  it('hold() subscribes without devices; its release works once', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const release = q.hold();
    expect(fd.handlers.size).toBe(1);
    q.addDevice(device(1), () => null);
    release();
    release();
    expect(fd.handlers.size).toBe(1);
    q.removeDevice(device(1));
    expect(fd.handlers.size).toBe(0);
    expect([fd.subscribes, fd.unsubscribes]).toEqual([1, 1]);
  });

  it('faults reach the queue only while subscribed', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const release = q.hold();
    fd.push(pageRequest({ rid: 9, grpid: 1, last: true }));
    release();
    expect(fd.push(pageRequest({ rid: 9, grpid: 1, last: true }))).toEqual([]);
    expect(q.stats.requests).toBe(1);
  });

  it('close() unsubscribes even while holds are active', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const release = q.hold();
    q.addDevice(device(1), () => null);
    q.close();
    expect(fd.handlers.size).toBe(0);
    release();
    expect([fd.subscribes, fd.unsubscribes]).toEqual([1, 1]);
  });

  it('a driver whose onFault throws (already shut down) still lets devices be added', () => {
    const fd = new FakeDriver();
    fd.failSubscribe = new Error('driver closed');
    const q = new IopfQueue(fd.driver);
    expect(() => q.addDevice(device(1), () => null)).not.toThrow();
    expect(q.devices.size).toBe(1);
    expect(fd.handlers.size).toBe(0);
    q.removeDevice(device(1));
  });

  it('two queues on one driver each subscribe', () => {
    const fd = new FakeDriver();
    const q1 = new IopfQueue(fd.driver);
    const q2 = new IopfQueue(fd.driver);
    const s1 = new RecordingSink();
    q1.addDevice(device(1), routeAllTo(s1));
    q2.hold();
    expect(fd.push(pageRequest({ rid: 1, grpid: 1, last: true }))).toEqual([true, false]);
    expect(s1.delivered).toHaveLength(1);
  });
});
