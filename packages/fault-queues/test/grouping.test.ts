// Group assembly (vmm-and-faults.md §3.2 step 5, §3.3): non-Last requests wait on the device's
// partial list (keyed by PRG index only) until the Last of the same index arrives; the group is
// the partials in arrival order then the Last, delivered once; stop markers are filtered with no
// response; a non-Last request is never answered; the partial list is bounded.
import { PgFaultPerm } from '@iommulab/driver-api';
import { describe, expect, it } from 'vitest';
import { IopfQueue, IOMMU_PGFAULT_FLAGS_LAST_PAGE as LAST, IOMMU_PGFAULT_FLAGS_PASID_VALID as PV, isStopMarker } from '../src/index.js';
import { device, FakeDriver, pageRequest, RecordingSink, routeAllTo, stopMarker } from './fake-driver.js';

function setup(options: ConstructorParameters<typeof IopfQueue>[1] = {}) {
  const fd = new FakeDriver();
  const q = new IopfQueue(fd.driver, options);
  const sink = new RecordingSink();
  const d = q.addDevice(device(0x10), routeAllTo(sink));
  return { fd, q, sink, d };
}

describe('grouping: partial list until the Last of the same PRG index', () => {
  it('holds non-Last requests on the partial list and delivers nothing until the Last', () => {
    const { fd, q, sink, d } = setup();
    expect(fd.push(pageRequest({ rid: 0x10, grpid: 3, addr: 0x1000 }))).toEqual([true]);
    expect(fd.push(pageRequest({ rid: 0x10, grpid: 3, addr: 0x2000 }))).toEqual([true]);
    expect(d.partialCount).toBe(2);
    expect(sink.delivered).toHaveLength(0);
    expect(q.stats.groups).toBe(0);
    expect(fd.sent).toEqual([]);
  });

  it('delivers one group: the partials in arrival order, then the Last', () => {
    const { fd, q, sink, d } = setup();
    fd.push(pageRequest({ rid: 0x10, grpid: 3, addr: 0x3000, perm: PgFaultPerm.WRITE }));
    fd.push(pageRequest({ rid: 0x10, grpid: 3, addr: 0x1000 }));
    fd.push(pageRequest({ rid: 0x10, grpid: 3, addr: 0x2000, last: true, perm: PgFaultPerm.READ | PgFaultPerm.EXEC }));
    expect(sink.delivered).toHaveLength(1);
    const g = sink.delivered[0]!;
    expect(g.faults).toEqual([
      { flags: 0, pasid: 0, grpid: 3, perm: PgFaultPerm.WRITE, addr: 0x3000 },
      { flags: 0, pasid: 0, grpid: 3, perm: PgFaultPerm.READ, addr: 0x1000 },
      { flags: LAST, pasid: 0, grpid: 3, perm: PgFaultPerm.READ | PgFaultPerm.EXEC, addr: 0x2000 },
    ]);
    expect(g.last).toBe(g.faults[2]);
    expect(g.device).toBe(d);
    expect(g.state).toBe('pending');
    expect(d.partialCount).toBe(0);
    expect(d.outstanding).toBe(1);
    expect(q.outstanding).toBe(1);
    expect(q.stats.groups).toBe(1);
    expect(d.stats.groups).toBe(1);
    expect(fd.sent).toEqual([]);
  });

  it('sets PASID_VALID on every fault with a PASID and LAST_PAGE only on the Last', () => {
    const { fd, sink } = setup();
    fd.push(pageRequest({ rid: 0x10, grpid: 1, pasid: 5, addr: 0x1000 }));
    fd.push(pageRequest({ rid: 0x10, grpid: 1, pasid: 5, addr: 0x2000, last: true }));
    expect(sink.delivered[0]!.faults.map((f) => [f.flags, f.pasid])).toEqual([
      [PV, 5],
      [PV | LAST, 5],
    ]);
  });

  it('a lone Last request is a group of one', () => {
    const { fd, sink } = setup();
    fd.push(pageRequest({ rid: 0x10, grpid: 9, addr: 0x9000, last: true }));
    expect(sink.delivered.map((g) => g.faults.length)).toEqual([1]);
    expect(sink.delivered[0]!.faults[0]).toEqual({ flags: LAST, pasid: 0, grpid: 9, perm: PgFaultPerm.READ, addr: 0x9000 });
  });

  it('keeps interleaved PRG indices apart: each Last takes only its own partials', () => {
    const { fd, sink, d } = setup();
    fd.push(pageRequest({ rid: 0x10, grpid: 1, addr: 0x1000 }));
    fd.push(pageRequest({ rid: 0x10, grpid: 2, addr: 0x2000 }));
    fd.push(pageRequest({ rid: 0x10, grpid: 1, addr: 0x1100 }));
    fd.push(pageRequest({ rid: 0x10, grpid: 2, addr: 0x2100 }));
    fd.push(pageRequest({ rid: 0x10, grpid: 2, addr: 0x2200, last: true }));
    expect(d.partialCount).toBe(2);
    fd.push(pageRequest({ rid: 0x10, grpid: 1, addr: 0x1200, last: true }));
    expect(sink.delivered.map((g) => g.faults.map((f) => f.addr))).toEqual([
      [0x2000, 0x2100, 0x2200],
      [0x1000, 0x1100, 0x1200],
    ]);
    expect(d.partialCount).toBe(0);
    // the partials of the other index kept their arrival order after the first Last
    expect(sink.delivered[1]!.faults.map((f) => f.grpid)).toEqual([1, 1, 1]);
  });

  it('keys the partial list by PRG index only, not by PASID (the index space is per function)', () => {
    const { fd, sink } = setup();
    fd.push(pageRequest({ rid: 0x10, grpid: 4, pasid: 1, addr: 0x1000 }));
    fd.push(pageRequest({ rid: 0x10, grpid: 4, addr: 0x2000 }));
    fd.push(pageRequest({ rid: 0x10, grpid: 4, pasid: 2, addr: 0x3000, last: true }));
    expect(sink.delivered).toHaveLength(1);
    expect(sink.delivered[0]!.faults.map((f) => [f.addr, f.flags, f.pasid])).toEqual([
      [0x1000, PV, 1],
      [0x2000, 0, 0],
      [0x3000, PV | LAST, 2],
    ]);
  });

  it('keeps the partial lists of two devices apart', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const sink = new RecordingSink();
    const a = q.addDevice(device(1), routeAllTo(sink));
    const b = q.addDevice(device(2), routeAllTo(sink));
    fd.push(pageRequest({ rid: 1, grpid: 0, addr: 0xa000 }));
    fd.push(pageRequest({ rid: 2, grpid: 0, addr: 0xb000 }));
    fd.push(pageRequest({ rid: 1, grpid: 0, addr: 0xa100, last: true }));
    expect(sink.delivered[0]!.faults.map((f) => f.addr)).toEqual([0xa000, 0xa100]);
    expect(sink.delivered[0]!.device).toBe(a);
    expect(b.partialCount).toBe(1);
    expect(a.partialCount).toBe(0);
  });

  it('delivers each group once: a second Last of the same index starts a new group', () => {
    const { fd, sink } = setup();
    fd.push(pageRequest({ rid: 0x10, grpid: 7, addr: 0x1000 }));
    fd.push(pageRequest({ rid: 0x10, grpid: 7, addr: 0x2000, last: true }));
    fd.push(pageRequest({ rid: 0x10, grpid: 7, addr: 0x3000, last: true }));
    expect(sink.delivered.map((g) => g.faults.map((f) => f.addr))).toEqual([[0x1000, 0x2000], [0x3000]]);
    expect(sink.delivered[1]!.instance).toBeGreaterThan(sink.delivered[0]!.instance);
  });

  it('never answers a non-Last request, whatever happens to it', () => {
    const { fd, q } = setup({ maxPartial: 1 });
    fd.push(pageRequest({ rid: 0x10, grpid: 1 }));
    fd.push(pageRequest({ rid: 0x10, grpid: 2 })); // dropped: the list is full
    q.discardPartial();
    q.removeDevice(device(0x10));
    expect(fd.sent).toEqual([]);
  });
});

describe('grouping: stop markers', () => {
  it('isStopMarker: Last, a PASID, neither READ nor WRITE', () => {
    expect(isStopMarker({ last: true, pasid: 0, perm: 0 })).toBe(true);
    expect(isStopMarker({ last: true, pasid: 7, perm: PgFaultPerm.EXEC | PgFaultPerm.PRIV })).toBe(true);
    expect(isStopMarker({ last: false, pasid: 7, perm: 0 })).toBe(false);
    expect(isStopMarker({ last: true, pasid: -1, perm: 0 })).toBe(false);
    expect(isStopMarker({ last: true, pasid: 7, perm: PgFaultPerm.READ })).toBe(false);
    expect(isStopMarker({ last: true, pasid: 7, perm: PgFaultPerm.WRITE })).toBe(false);
  });

  it('filters a stop marker: no group, no response, partials of its index left alone, counted', () => {
    const { fd, q, sink, d } = setup();
    fd.push(pageRequest({ rid: 0x10, grpid: 0, pasid: 3, addr: 0x1000 }));
    expect(fd.push(stopMarker(0x10, 3, 0))).toEqual([true]);
    expect(sink.delivered).toEqual([]);
    expect(fd.sent).toEqual([]);
    expect(d.partialCount).toBe(1);
    expect(q.stats.stopMarkers).toBe(1);
    expect(d.stats.stopMarkers).toBe(1);
    expect(q.stats.requests).toBe(2);
    expect(d.stats.requests).toBe(2);
  });

  it('filters a stop marker even when no attachment takes its PASID (no INVALID response)', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    q.addDevice(device(0x10), () => null);
    expect(fd.push(stopMarker(0x10, 3))).toEqual([true]);
    expect(fd.sent).toEqual([]);
    expect(q.stats.noHandler).toBe(0);
  });

  it('filters a stop marker of an unknown device and tells the driver it was taken (so it does not answer it)', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const release = q.hold();
    expect(q.report(stopMarker(0x99, 1))).toBe(true);
    expect(q.stats.stopMarkers).toBe(1);
    expect(q.stats.unknownDevice).toBe(0);
    expect(fd.sent).toEqual([]);
    release();
  });

  it('a Last request without PASID and without READ/WRITE is a page request, not a stop marker', () => {
    const { fd, sink } = setup();
    fd.push(pageRequest({ rid: 0x10, grpid: 2, perm: PgFaultPerm.EXEC, last: true }));
    expect(sink.delivered).toHaveLength(1);
  });
});

describe('grouping: maxPartial bound', () => {
  it('drops and counts non-Last requests beyond maxPartial; the Last still builds a group of what was kept', () => {
    const { fd, q, sink, d } = setup({ maxPartial: 2 });
    for (const addr of [0x1000, 0x2000, 0x3000, 0x4000]) fd.push(pageRequest({ rid: 0x10, grpid: 5, addr }));
    expect(d.partialCount).toBe(2);
    expect(q.stats.partialDropped).toBe(2);
    expect(d.stats.partialDropped).toBe(2);
    fd.push(pageRequest({ rid: 0x10, grpid: 5, addr: 0x5000, last: true }));
    expect(sink.delivered[0]!.faults.map((f) => f.addr)).toEqual([0x1000, 0x2000, 0x5000]);
    expect(fd.sent).toEqual([]);
  });

  it('maxPartial 0 keeps no partial at all', () => {
    const { fd, q, d } = setup({ maxPartial: 0 });
    fd.push(pageRequest({ rid: 0x10, grpid: 5 }));
    expect(d.partialCount).toBe(0);
    expect(q.stats.partialDropped).toBe(1);
  });

  it('rejects a maxPartial that is not a non-negative integer', () => {
    const fd = new FakeDriver();
    expect(() => new IopfQueue(fd.driver, { maxPartial: -1 })).toThrow(RangeError);
    expect(() => new IopfQueue(fd.driver, { maxPartial: 1.5 })).toThrow(RangeError);
  });
});
