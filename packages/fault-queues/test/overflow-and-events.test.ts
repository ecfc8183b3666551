// Queue overflow and non-recoverable events (vmm-and-faults.md §3.2 step 3 "after draining",
// §3.5, §3.7): a page-request queue overflow discards every partial request
// (iopf_queue_discard_partial), so a Last whose partials were lost makes a group of itself; an
// event-queue overflow is counted; non-recoverable events go to a bounded log and to onEvent.
import { PageResponseCode, type IommuFault } from '@iommulab/driver-api';
import { describe, expect, it } from 'vitest';
import { IopfQueue, type FaultDevice } from '../src/index.js';
import { device, FakeDriver, faultEvent, pageRequest, RecordingSink, routeAllTo } from './fake-driver.js';

describe('page-request queue overflow', () => {
  it('{kind: overflow, queue: page-request} discards every partial; a later Last of that index is a group of one', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const sink = new RecordingSink();
    const a = q.addDevice(device(1), routeAllTo(sink));
    const b = q.addDevice(device(2), routeAllTo(sink));
    fd.push(pageRequest({ rid: 1, grpid: 4, addr: 0x1000 }));
    fd.push(pageRequest({ rid: 1, grpid: 5, addr: 0x2000 }));
    fd.push(pageRequest({ rid: 2, grpid: 4, addr: 0x3000 }));
    expect(fd.push({ kind: 'overflow', queue: 'page-request' })).toEqual([true]);
    expect(q.stats.pageRequestOverflows).toBe(1);
    expect(q.stats.partialDiscarded).toBe(3);
    expect(a.stats.partialDiscarded).toBe(2);
    expect(b.stats.partialDiscarded).toBe(1);
    expect([a.partialCount, b.partialCount]).toEqual([0, 0]);
    fd.push(pageRequest({ rid: 1, grpid: 4, addr: 0x4000, last: true }));
    expect(sink.delivered.map((g) => g.faults.map((f) => f.addr))).toEqual([[0x4000]]);
    expect(fd.sent).toEqual([]);
  });

  it('keeps the pending groups (they still get their one response)', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const sink = new RecordingSink();
    q.addDevice(device(1), routeAllTo(sink));
    fd.push(pageRequest({ rid: 1, grpid: 4, last: true }));
    fd.push({ kind: 'overflow', queue: 'page-request' });
    expect(q.outstanding).toBe(1);
    expect(sink.delivered[0]!.respond(PageResponseCode.SUCCESS)).toBe(true);
    expect(fd.responses()).toEqual([{ rid: 1, pasid: -1, grpid: 4, code: PageResponseCode.SUCCESS }]);
  });

  it('discardPartial() returns how many it dropped', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    q.addDevice(device(1), routeAllTo(new RecordingSink()));
    fd.push(pageRequest({ rid: 1, grpid: 1 }));
    fd.push(pageRequest({ rid: 1, grpid: 1 }));
    expect(q.discardPartial()).toBe(2);
    expect(q.discardPartial()).toBe(0);
  });
});

describe('event queue overflow', () => {
  it('is counted and leaves partial requests alone', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const d = q.addDevice(device(1), routeAllTo(new RecordingSink()));
    fd.push(pageRequest({ rid: 1, grpid: 1 }));
    expect(fd.push({ kind: 'overflow', queue: 'event' })).toEqual([true]);
    expect(fd.push({ kind: 'overflow', queue: 'event' })).toEqual([true]);
    expect(q.stats.eventOverflows).toBe(2);
    expect(q.stats.pageRequestOverflows).toBe(0);
    expect(d.partialCount).toBe(1);
  });

  it('an unknown fault kind is not taken', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    q.hold();
    expect(fd.push({ kind: 'bogus' } as unknown as IommuFault)).toEqual([false]);
  });
});

describe('non-recoverable events', () => {
  it('are logged oldest first, bounded by eventLog with eventsDropped, and passed to onEvent with their device', () => {
    const fd = new FakeDriver();
    const seen: [number, FaultDevice | undefined][] = [];
    const q = new IopfQueue(fd.driver, { eventLog: 2, onEvent: (ev, dev) => seen.push([ev.detail, dev]) });
    const d = q.addDevice(device(1), () => null);
    const e1 = faultEvent(1, 0x10);
    const e2 = faultEvent(7, 0x11);
    const e3 = faultEvent(1, 0x12);
    for (const e of [e1, e2, e3]) expect(fd.push(e)).toEqual([true]);
    expect(q.events()).toEqual([e2, e3]);
    expect(q.stats.events).toBe(3);
    expect(q.stats.eventsDropped).toBe(1);
    expect(d.stats.events).toBe(2);
    expect(seen).toEqual([
      [0x10, d],
      [0x11, undefined],
      [0x12, d],
    ]);
    expect(fd.sent).toEqual([]);
  });

  it('the default log keeps 256 events', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    q.hold();
    for (let i = 0; i < 300; i++) fd.push(faultEvent(1, i));
    expect(q.events().length).toBe(256);
    expect(q.events()[0]!.detail).toBe(44);
    expect(q.stats.eventsDropped).toBe(44);
  });

  it('eventLog 0 keeps none (every event counted as dropped) but still calls onEvent', () => {
    const fd = new FakeDriver();
    let calls = 0;
    const q = new IopfQueue(fd.driver, { eventLog: 0, onEvent: () => calls++ });
    q.hold();
    fd.push(faultEvent(1));
    fd.push(faultEvent(1));
    expect(q.events()).toEqual([]);
    expect(q.stats.eventsDropped).toBe(2);
    expect(calls).toBe(2);
  });

  it('a throwing onEvent does not break the drain', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver, {
      onEvent: () => {
        throw new Error('listener bug');
      },
    });
    q.hold();
    expect(fd.push(faultEvent(1))).toEqual([true]);
    expect(q.events()).toHaveLength(1);
  });

  it('rejects an eventLog that is not a non-negative integer', () => {
    const fd = new FakeDriver();
    expect(() => new IopfQueue(fd.driver, { eventLog: -1 })).toThrow(RangeError);
  });
});
