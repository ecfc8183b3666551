// Responses (vmm-and-faults.md §3.2 step 13, §3.3, §6.6): one driver pageResponse per group,
// built from the group's Last request (device, PASID or -1 when PASID_VALID is clear, PRG index);
// a second answer is a no-op; groups are told apart by instance, so an answer to an old group
// never reaches a newer group that reused the PRG index.
import { PageResponseCode } from '@iommulab/driver-api';
import { describe, expect, it } from 'vitest';
import { decodePgfaults, FaultQueue, IopfQueue, type IopfGroup } from '../src/index.js';
import { device, FakeDriver, pageRequest, RecordingSink, routeAllTo } from './fake-driver.js';

function setup() {
  const fd = new FakeDriver();
  const q = new IopfQueue(fd.driver);
  const sink = new RecordingSink();
  const dev = device(0x50);
  const d = q.addDevice(dev, routeAllTo(sink));
  return { fd, q, sink, dev, d };
}

describe('response: one pageResponse per group', () => {
  it('sends exactly one response addressed with the device, the Last request’s PASID and PRG index', () => {
    const { fd, q, sink, dev, d } = setup();
    fd.push(pageRequest({ rid: 0x50, grpid: 12, pasid: 1 }));
    fd.push(pageRequest({ rid: 0x50, grpid: 12, pasid: 2, last: true }));
    const g = sink.delivered[0]!;
    expect(q.respond(g, PageResponseCode.SUCCESS)).toBe(true);
    expect(fd.sent).toHaveLength(1);
    expect(fd.sent[0]!.dev).toBe(dev);
    expect(fd.sent[0]!.response).toEqual({ rid: 0x50, pasid: 2, grpid: 12, code: PageResponseCode.SUCCESS });
    expect(g.state).toBe('answered');
    expect(g.code).toBe(PageResponseCode.SUCCESS);
    expect(d.outstanding).toBe(0);
    expect(d.stats.answered).toBe(1);
    expect(q.stats.success).toBe(1);
  });

  it('uses pasid -1 when the Last request has no PASID (PASID_VALID clear), even if a partial had one', () => {
    const { fd, sink } = setup();
    fd.push(pageRequest({ rid: 0x50, grpid: 3, pasid: 8 }));
    fd.push(pageRequest({ rid: 0x50, grpid: 3, last: true }));
    expect(sink.delivered[0]!.respond(PageResponseCode.INVALID)).toBe(true);
    expect(fd.responses()).toEqual([{ rid: 0x50, pasid: -1, grpid: 3, code: PageResponseCode.INVALID }]);
  });

  it('a second answer returns false, sends nothing and counts a late response', () => {
    const { fd, q, sink } = setup();
    fd.push(pageRequest({ rid: 0x50, grpid: 1, last: true }));
    const g = sink.delivered[0]!;
    expect(g.respond(PageResponseCode.INVALID)).toBe(true);
    expect(g.respond(PageResponseCode.SUCCESS)).toBe(false);
    expect(q.respond(g, PageResponseCode.FAILURE)).toBe(false);
    expect(fd.responses()).toEqual([{ rid: 0x50, pasid: -1, grpid: 1, code: PageResponseCode.INVALID }]);
    expect(g.code).toBe(PageResponseCode.INVALID);
    expect(q.stats.lateResponses).toBe(2);
    expect(q.stats.invalid).toBe(1);
    expect(q.stats.success).toBe(0);
    expect(q.stats.failure).toBe(0);
  });

  it('counts responses by code', () => {
    const { fd, q, sink } = setup();
    for (let i = 0; i < 3; i++) fd.push(pageRequest({ rid: 0x50, grpid: i, last: true }));
    sink.delivered[0]!.respond(PageResponseCode.SUCCESS);
    sink.delivered[1]!.respond(PageResponseCode.INVALID);
    sink.delivered[2]!.respond(PageResponseCode.FAILURE);
    expect([q.stats.success, q.stats.invalid, q.stats.failure]).toEqual([1, 1, 1]);
    expect(fd.responses().map((r) => [r.grpid, r.code])).toEqual([
      [0, 0],
      [1, 1],
      [2, 2],
    ]);
  });

  it('rejects a code that is not SUCCESS / INVALID / FAILURE and leaves the group pending', () => {
    const { fd, sink } = setup();
    fd.push(pageRequest({ rid: 0x50, grpid: 1, last: true }));
    const g = sink.delivered[0]!;
    expect(() => g.respond(3 as never)).toThrow(RangeError);
    expect(g.state).toBe('pending');
    expect(fd.sent).toEqual([]);
  });

  it('another queue cannot answer a group', () => {
    const { fd, sink } = setup();
    const other = new IopfQueue(new FakeDriver().driver);
    fd.push(pageRequest({ rid: 0x50, grpid: 1, last: true }));
    expect(other.respond(sink.delivered[0]!, PageResponseCode.SUCCESS)).toBe(false);
    expect(sink.delivered[0]!.state).toBe('pending');
    expect(fd.sent).toEqual([]);
  });
});

describe('response: the sink forgets an answered group', () => {
  it('a group answered directly while queued in a FaultQueue is withdrawn: never read, its room freed', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const fq = new FaultQueue({ capacity: 1 });
    const groups: IopfGroup[] = [];
    q.addDevice(device(0x51), () => ({
      handle: {},
      sink: {
        deliver: (g) => (groups.push(g), fq.deliver(g)),
        withdraw: (g) => fq.withdraw(g),
      },
    }));
    fd.push(pageRequest({ rid: 0x51, grpid: 1, last: true }));
    expect(groups[0]!.respond(PageResponseCode.SUCCESS)).toBe(true);
    expect(fq.pendingRead).toBe(0);
    expect(fq.stats.withdrawn).toBe(1);
    expect(fq.read(40).length).toBe(0);
    fd.push(pageRequest({ rid: 0x51, grpid: 2, last: true })); // fits: the capacity was freed
    expect(decodePgfaults(fq.read(40)).map((r) => [r.grpid, r.cookie])).toEqual([[2, 1]]);
    expect(fd.responses()).toEqual([{ rid: 0x51, pasid: -1, grpid: 1, code: PageResponseCode.SUCCESS }]);
  });

  it('a group answered directly after it was read: its cookie is no longer accepted', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const fq = new FaultQueue();
    const groups: IopfGroup[] = [];
    q.addDevice(device(0x52), () => ({
      handle: {},
      sink: {
        deliver: (g) => (groups.push(g), fq.deliver(g)),
        withdraw: (g) => fq.withdraw(g),
      },
    }));
    fd.push(pageRequest({ rid: 0x52, grpid: 1, last: true }));
    fq.read(40);
    groups[0]!.respond(PageResponseCode.INVALID);
    expect(fq.awaitingResponse).toBe(0);
    expect(fq.respond(1, 0)).toMatch(/cookie 1/);
    expect(fd.sent).toHaveLength(1);
  });

  it('the sink is told once per answered group, and not for a group it refused', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const sink = new RecordingSink();
    q.addDevice(device(0x53), routeAllTo(sink));
    fd.push(pageRequest({ rid: 0x53, grpid: 1, last: true }));
    const g = sink.delivered[0]!;
    g.respond(PageResponseCode.SUCCESS);
    g.respond(PageResponseCode.SUCCESS);
    sink.refuse = true;
    fd.push(pageRequest({ rid: 0x53, grpid: 2, last: true }));
    expect(sink.withdrawn).toEqual([g]);
  });
});

describe('response: PRG index reuse', () => {
  it('group.instance increases, so a reused PRG index is a different group', () => {
    const { fd, sink } = setup();
    fd.push(pageRequest({ rid: 0x50, grpid: 5, last: true }));
    sink.delivered[0]!.respond(PageResponseCode.SUCCESS);
    fd.push(pageRequest({ rid: 0x50, grpid: 5, last: true }));
    const [a, b] = sink.delivered;
    expect(a).not.toBe(b);
    expect(b!.instance).toBe(a!.instance + 1);
    expect(b!.state).toBe('pending');
  });

  it('an answer to the old group after a new group reused its index never answers the new one', () => {
    const { fd, q, sink } = setup();
    fd.push(pageRequest({ rid: 0x50, grpid: 5, pasid: 1, last: true }));
    const old = sink.delivered[0]!;
    old.respond(PageResponseCode.INVALID);
    fd.push(pageRequest({ rid: 0x50, grpid: 5, pasid: 1, last: true }));
    const fresh = sink.delivered[1]!;
    expect(old.respond(PageResponseCode.SUCCESS)).toBe(false);
    expect(fresh.state).toBe('pending');
    expect(fd.responses()).toEqual([{ rid: 0x50, pasid: 1, grpid: 5, code: PageResponseCode.INVALID }]);
    expect(fresh.respond(PageResponseCode.SUCCESS)).toBe(true);
    expect(fd.responses()).toEqual([
      { rid: 0x50, pasid: 1, grpid: 5, code: PageResponseCode.INVALID },
      { rid: 0x50, pasid: 1, grpid: 5, code: PageResponseCode.SUCCESS },
    ]);
    expect(q.stats.lateResponses).toBe(1);
  });

  it('a device removed and added again: the old device’s groups cannot answer the new one’s', () => {
    const { fd, q, sink, dev } = setup();
    fd.push(pageRequest({ rid: 0x50, grpid: 2, last: true }));
    const old = sink.delivered[0]!;
    q.removeDevice(dev);
    q.addDevice(dev, routeAllTo(sink));
    fd.push(pageRequest({ rid: 0x50, grpid: 2, last: true }));
    expect(old.respond(PageResponseCode.SUCCESS)).toBe(false);
    expect(sink.delivered[1]!.state).toBe('pending');
    expect(fd.responses()).toEqual([{ rid: 0x50, pasid: -1, grpid: 2, code: PageResponseCode.INVALID }]);
  });
});

describe('response: driver errors', () => {
  it('a pageResponse the driver rejects is counted and kept as lastResponseError; the group stays answered', async () => {
    const { fd, q, sink } = setup();
    const err = new Error('queue full');
    fd.failResponses = err;
    fd.push(pageRequest({ rid: 0x50, grpid: 1, last: true }));
    expect(sink.delivered[0]!.respond(PageResponseCode.SUCCESS)).toBe(true);
    await q.flush();
    expect(q.stats.responseErrors).toBe(1);
    expect(q.lastResponseError).toBe(err);
    expect(sink.delivered[0]!.state).toBe('answered');
  });

  it('a pageResponse that throws synchronously is counted the same way and does not break the caller', async () => {
    const fd = new FakeDriver();
    const err = new Error('sync failure');
    const driver = { ...fd.driver, pageResponse: () => { throw err; } } as typeof fd.driver;
    const q = new IopfQueue(driver);
    const sink = new RecordingSink();
    q.addDevice(device(0x50), routeAllTo(sink));
    fd.push(pageRequest({ rid: 0x50, grpid: 1, last: true }));
    expect(sink.delivered[0]!.respond(PageResponseCode.INVALID)).toBe(true);
    await q.flush();
    expect(q.stats.responseErrors).toBe(1);
    expect(q.stats.invalid).toBe(1);
    expect(q.lastResponseError).toBe(err);
  });

  it('flush() resolves once the driver handled every response', async () => {
    const { fd, q, sink } = setup();
    fd.push(pageRequest({ rid: 0x50, grpid: 1, last: true }));
    sink.delivered[0]!.respond(PageResponseCode.SUCCESS);
    await q.flush();
    expect(q.stats.responseErrors).toBe(0);
    expect(q.lastResponseError).toBeUndefined();
  });
});
