// Response timeouts (vmm-and-faults.md §3.6, §6.4): off by default (Linux and iommufd have no
// timer: an unanswered group waits forever); opted in with responseTimeout on a LogicalClock, a
// group unanswered after N ticks is answered timeoutCode (default INVALID) once and withdrawn
// from its fault queue.
import { isIommuError, PageResponseCode } from '@iommulab/driver-api';
import { describe, expect, it } from 'vitest';
import { encodePageResponses, FaultQueue, IopfQueue, LogicalClock, type IopfQueueOptions } from '../src/index.js';
import { device, FakeDriver, pageRequest, RecordingSink, routeAllTo } from './fake-driver.js';

function setup(options: IopfQueueOptions) {
  const fd = new FakeDriver();
  const q = new IopfQueue(fd.driver, options);
  const fq = new FaultQueue();
  q.addDevice(device(0xa0), routeAllTo(fq));
  const group = (grpid: number) => fd.push(pageRequest({ rid: 0xa0, grpid, last: true }));
  return { fd, q, fq, group };
}

describe('timeouts: off by default', () => {
  it('without responseTimeout nothing is ever answered, however far the clock moves', () => {
    const clock = new LogicalClock();
    const { fd, q, fq, group } = setup({ clock });
    group(1);
    fq.read(40);
    group(2);
    clock.advance(1_000_000_000);
    clock.advance(Number.MAX_SAFE_INTEGER - 1_000_000_000);
    expect(fd.sent).toEqual([]);
    expect(q.stats.timeouts).toBe(0);
    expect(q.outstanding).toBe(2);
  });
});

describe('timeouts: responseTimeout on a LogicalClock', () => {
  it('answers a group unanswered after N ticks with INVALID, once; the group records its deadline', () => {
    const clock = new LogicalClock();
    clock.advance(5);
    const sink = new RecordingSink();
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver, { clock, responseTimeout: 10 });
    q.addDevice(device(0xa0), routeAllTo(sink));
    fd.push(pageRequest({ rid: 0xa0, grpid: 3, pasid: 2, last: true }));
    const g = sink.delivered[0]!;
    expect([g.reportedAt, g.deadline]).toEqual([5, 15]);
    clock.advance(9);
    expect(fd.sent).toEqual([]);
    clock.advance(1);
    expect(fd.responses()).toEqual([{ rid: 0xa0, pasid: 2, grpid: 3, code: PageResponseCode.INVALID }]);
    expect(sink.withdrawn).toEqual([g]);
    expect(q.stats.timeouts).toBe(1);
    expect(g.state).toBe('answered');
    clock.advance(100);
    expect(fd.sent).toHaveLength(1);
    expect(q.stats.timeouts).toBe(1);
  });

  it('withdraws timed-out groups from the FaultQueue: queued ones vanish, a read one’s cookie is EINVAL', () => {
    const clock = new LogicalClock();
    const { fd, fq, group } = setup({ clock, responseTimeout: 3 });
    group(1);
    fq.read(40);
    group(2);
    clock.advance(3);
    expect(fd.responses().map((r) => [r.grpid, r.code])).toEqual([
      [1, PageResponseCode.INVALID],
      [2, PageResponseCode.INVALID],
    ]);
    expect(fq.pendingRead).toBe(0);
    expect(fq.awaitingResponse).toBe(0);
    expect(fq.stats.withdrawn).toBe(2);
    let errno: string | undefined;
    try {
      fq.write(encodePageResponses([{ cookie: 1, code: 0 }]));
    } catch (e) {
      if (isIommuError(e)) errno = e.errno;
    }
    expect(errno).toBe('EINVAL');
    expect(fd.sent).toHaveLength(2);
  });

  it('does not answer again a group answered before its deadline', () => {
    const clock = new LogicalClock();
    const { fd, q, fq, group } = setup({ clock, responseTimeout: 4 });
    group(1);
    fq.read(40);
    fq.write(encodePageResponses([{ cookie: 1, code: 0 }]));
    clock.advance(10);
    expect(fd.responses()).toEqual([{ rid: 0xa0, pasid: -1, grpid: 1, code: PageResponseCode.SUCCESS }]);
    expect(q.stats.timeouts).toBe(0);
    expect(q.stats.lateResponses).toBe(0);
  });

  it('expires groups in deadline order, each when its own deadline passes', () => {
    const clock = new LogicalClock();
    const { fd, q, group } = setup({ clock, responseTimeout: 5 });
    group(1); // deadline 5
    clock.advance(2);
    group(2); // deadline 7
    clock.advance(3);
    expect(fd.responses().map((r) => r.grpid)).toEqual([1]);
    clock.advance(1);
    expect(fd.responses().map((r) => r.grpid)).toEqual([1]);
    clock.advance(1);
    expect(fd.responses().map((r) => r.grpid)).toEqual([1, 2]);
    expect(q.stats.timeouts).toBe(2);
  });

  it('timeoutCode chooses the answer (SUCCESS here)', () => {
    const clock = new LogicalClock();
    const { fd, q, group } = setup({ clock, responseTimeout: 1, timeoutCode: PageResponseCode.SUCCESS });
    group(1);
    clock.advance();
    expect(fd.responses()).toEqual([{ rid: 0xa0, pasid: -1, grpid: 1, code: PageResponseCode.SUCCESS }]);
    expect(q.stats.success).toBe(1);
  });

  it('a group answered by removeDevice is not answered again at its deadline', () => {
    const clock = new LogicalClock();
    const { fd, q, group } = setup({ clock, responseTimeout: 2 });
    group(1);
    q.removeDevice(device(0xa0));
    clock.advance(5);
    expect(fd.sent).toHaveLength(1);
    expect(q.stats.timeouts).toBe(0);
  });

  it('handles many groups across the deadline list’s compaction (every group answered exactly once)', () => {
    const clock = new LogicalClock();
    const { fd, q, group } = setup({ clock, responseTimeout: 1 });
    for (let i = 0; i < 3000; i++) {
      group(i & 0x1ff);
      if (i % 7 === 0) clock.advance();
    }
    clock.advance();
    expect(fd.sent).toHaveLength(3000);
    expect(q.stats.timeouts).toBe(3000);
    expect(q.outstanding).toBe(0);
  });
});

describe('timeouts: options', () => {
  it('responseTimeout without a clock is a RangeError', () => {
    const fd = new FakeDriver();
    expect(() => new IopfQueue(fd.driver, { responseTimeout: 5 })).toThrow(RangeError);
  });

  it('responseTimeout must be a positive integer and timeoutCode 0, 1 or 2', () => {
    const fd = new FakeDriver();
    const clock = new LogicalClock();
    for (const responseTimeout of [0, -1, 1.5, Infinity]) expect(() => new IopfQueue(fd.driver, { clock, responseTimeout })).toThrow(RangeError);
    expect(() => new IopfQueue(fd.driver, { clock, responseTimeout: 1, timeoutCode: 3 as never })).toThrow(RangeError);
  });
});

describe('LogicalClock', () => {
  it('starts at 0, advances by whole ticks (1 by default) and tells its listeners until they unsubscribe', () => {
    const clock = new LogicalClock();
    const seen: number[] = [];
    const off = clock.onAdvance((now) => seen.push(now));
    expect(clock.now).toBe(0);
    expect(clock.advance()).toBe(1);
    expect(clock.advance(4)).toBe(5);
    expect(clock.advance(0)).toBe(5);
    off();
    clock.advance(2);
    expect(seen).toEqual([1, 5, 5]);
    expect(clock.now).toBe(7);
  });

  it('rejects a negative or fractional advance', () => {
    const clock = new LogicalClock();
    expect(() => clock.advance(-1)).toThrow(RangeError);
    expect(() => clock.advance(0.5)).toThrow(RangeError);
    expect(clock.now).toBe(0);
  });
});
