// Routing (vmm-and-faults.md §3.2 step 4, §3.8 "driver → domain", "domain → owner"): the device's
// lookup(pasid) finds the attachment and its fault handler at arrival time; a Last request nobody
// takes is answered INVALID right away (iopf_error_response); a device that never enabled IOPF is
// left to the driver (report returns false, nothing sent); a handler that refuses a group gets it
// answered Response Failure (the abort path).
import { PageResponseCode, PgFaultPerm } from '@iommulab/driver-api';
import { describe, expect, it } from 'vitest';
import { FaultQueue, IopfQueue, type FaultHandler } from '../src/index.js';
import { device, FakeDriver, pageRequest, RecordingSink, routeAllTo } from './fake-driver.js';

describe('routing: lookup(pasid) decides the sink', () => {
  it('routes each request by its PASID (-1 without one) and remembers the attach handle', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const rid = new RecordingSink();
    const p5 = new RecordingSink();
    const hRid = { name: 'rid' };
    const h5 = { name: 'pasid5' };
    const asked: number[] = [];
    q.addDevice(device(0x20), (pasid): FaultHandler | null => {
      asked.push(pasid);
      return pasid === -1 ? { handle: hRid, sink: rid } : pasid === 5 ? { handle: h5, sink: p5 } : null;
    });
    fd.push(pageRequest({ rid: 0x20, grpid: 1, last: true }));
    fd.push(pageRequest({ rid: 0x20, grpid: 2, pasid: 5, last: true }));
    expect(asked).toEqual([-1, 5]);
    expect(rid.delivered.map((g) => [g.last.grpid, g.handle])).toEqual([[1, hRid]]);
    expect(p5.delivered.map((g) => [g.last.grpid, g.handle])).toEqual([[2, h5]]);
    expect(fd.sent).toEqual([]);
  });

  it('looks the handler up when each request arrives (a Last after a re-attach goes to the new sink)', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const a = new RecordingSink();
    const b = new RecordingSink();
    let cur: FaultHandler = { handle: {}, sink: a };
    q.addDevice(device(1), () => cur);
    fd.push(pageRequest({ rid: 1, grpid: 0, last: true }));
    cur = { handle: {}, sink: b };
    fd.push(pageRequest({ rid: 1, grpid: 1, last: true }));
    expect(a.delivered.map((g) => g.last.grpid)).toEqual([0]);
    expect(b.delivered.map((g) => g.last.grpid)).toEqual([1]);
  });
});

describe('routing: no handler → one INVALID response for a Last request', () => {
  it('lookup returns null: exactly one INVALID with rid, pasid and grpid; partials of its index freed unanswered', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const dev = device(0x30);
    let handler: FaultHandler | null = { handle: {}, sink: new RecordingSink() };
    const d = q.addDevice(dev, () => handler);
    fd.push(pageRequest({ rid: 0x30, grpid: 6, pasid: 9 }));
    handler = null;
    expect(fd.push(pageRequest({ rid: 0x30, grpid: 6, pasid: 9, last: true }))).toEqual([true]);
    expect(fd.sent).toHaveLength(1);
    expect(fd.sent[0]!.dev).toBe(dev);
    expect(fd.sent[0]!.response).toEqual({ rid: 0x30, pasid: 9, grpid: 6, code: PageResponseCode.INVALID });
    expect(q.stats.noHandler).toBe(1);
    expect(d.stats.noHandler).toBe(1);
    expect(q.stats.invalid).toBe(1);
    expect(q.stats.groups).toBe(0);
    expect(d.partialCount).toBe(0);
    expect(q.stats.partialDiscarded).toBe(1);
    expect(d.stats.partialDiscarded).toBe(1);
    expect(q.outstanding).toBe(0);
  });

  it('answers with pasid -1 when the request had no PASID', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    q.addDevice(device(0x31), () => null);
    fd.push(pageRequest({ rid: 0x31, grpid: 0x1ff, last: true }));
    expect(fd.responses()).toEqual([{ rid: 0x31, pasid: -1, grpid: 0x1ff, code: PageResponseCode.INVALID }]);
  });

  it('an attachment whose HWPT has no fault handler (sink null) is the same as none', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    q.addDevice(device(0x32), routeAllTo(null));
    fd.push(pageRequest({ rid: 0x32, grpid: 2, pasid: 1, last: true }));
    expect(fd.responses()).toEqual([{ rid: 0x32, pasid: 1, grpid: 2, code: PageResponseCode.INVALID }]);
    expect(q.stats.noHandler).toBe(1);
  });

  it('a lookup that throws is the same as none', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    q.addDevice(device(0x33), () => {
      throw new Error('boom');
    });
    expect(fd.push(pageRequest({ rid: 0x33, grpid: 3, last: true }))).toEqual([true]);
    expect(fd.responses()).toEqual([{ rid: 0x33, pasid: -1, grpid: 3, code: PageResponseCode.INVALID }]);
  });

  it('drops a non-Last request nobody takes, with no response, and counts it', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const d = q.addDevice(device(0x34), () => null);
    expect(fd.push(pageRequest({ rid: 0x34, grpid: 3 }))).toEqual([true]);
    expect(fd.sent).toEqual([]);
    expect(d.partialCount).toBe(0);
    expect(q.stats.partialDropped).toBe(1);
    expect(d.stats.partialDropped).toBe(1);
  });
});

describe('routing: unknown device → left to the driver', () => {
  it('report() returns false for a Last or non-Last request of a requester id with no device, and sends nothing', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    q.addDevice(device(1), routeAllTo(new RecordingSink()));
    expect(fd.push(pageRequest({ rid: 2, grpid: 1, last: true }))).toEqual([false]);
    expect(q.report(pageRequest({ rid: 2, grpid: 1 }))).toBe(false);
    expect(fd.sent).toEqual([]);
    expect(q.stats.unknownDevice).toBe(2);
    expect(q.stats.partialDropped).toBe(1);
    expect(q.stats.requests).toBe(2);
    expect(q.stats.noHandler).toBe(0);
  });

  it('a closed queue takes nothing (report returns false)', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    q.addDevice(device(1), routeAllTo(new RecordingSink()));
    q.close();
    expect(q.report(pageRequest({ rid: 1, grpid: 1, last: true }))).toBe(false);
    expect(fd.sent).toEqual([]);
    expect(q.stats.requests).toBe(0);
  });
});

describe('routing: a refusing sink → Response Failure', () => {
  it('a FaultQueue at capacity refuses the group: FAILURE addressed like any response, stats.refused', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const fq = new FaultQueue({ capacity: 1 });
    const d = q.addDevice(device(0x40), routeAllTo(fq));
    fd.push(pageRequest({ rid: 0x40, grpid: 1, pasid: 2, last: true }));
    fd.push(pageRequest({ rid: 0x40, grpid: 8, pasid: 4 }));
    fd.push(pageRequest({ rid: 0x40, grpid: 8, pasid: 3, last: true }));
    expect(fd.responses()).toEqual([{ rid: 0x40, pasid: 3, grpid: 8, code: PageResponseCode.FAILURE }]);
    expect(q.stats.refused).toBe(1);
    expect(q.stats.failure).toBe(1);
    expect(q.stats.groups).toBe(2);
    expect(fq.stats.refused).toBe(1);
    expect(fq.stats.delivered).toBe(1);
    expect(fq.pendingRead).toBe(1);
    expect(d.outstanding).toBe(1);
  });

  it('a closed FaultQueue refuses: FAILURE with pasid -1 for a request without PASID', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const fq = new FaultQueue();
    fq.close();
    q.addDevice(device(0x41), routeAllTo(fq));
    fd.push(pageRequest({ rid: 0x41, grpid: 0, perm: PgFaultPerm.WRITE, last: true }));
    expect(fd.responses()).toEqual([{ rid: 0x41, pasid: -1, grpid: 0, code: PageResponseCode.FAILURE }]);
    expect(q.stats.refused).toBe(1);
    expect(fq.stats.refused).toBe(1);
    expect(q.outstanding).toBe(0);
  });

  it('a sink that throws refuses too', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    q.addDevice(device(0x42), () => ({
      handle: {},
      sink: {
        deliver() {
          throw new Error('handler bug');
        },
        withdraw() {},
      },
    }));
    fd.push(pageRequest({ rid: 0x42, grpid: 4, last: true }));
    expect(fd.responses()).toEqual([{ rid: 0x42, pasid: -1, grpid: 4, code: PageResponseCode.FAILURE }]);
    expect(q.stats.refused).toBe(1);
  });

  it('a refused group is answered once: a later respond() is a no-op', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const sink = new RecordingSink();
    let seen: import('../src/index.js').IopfGroup | undefined;
    q.addDevice(device(0x43), () => ({
      handle: {},
      sink: {
        deliver(g) {
          seen = g;
          return false;
        },
        withdraw: (g) => sink.withdraw(g),
      },
    }));
    fd.push(pageRequest({ rid: 0x43, grpid: 4, last: true }));
    expect(seen!.state).toBe('answered');
    expect(seen!.code).toBe(PageResponseCode.FAILURE);
    expect(seen!.respond(PageResponseCode.SUCCESS)).toBe(false);
    expect(fd.sent).toHaveLength(1);
    expect(q.stats.lateResponses).toBe(1);
  });
});
