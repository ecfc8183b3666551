// Faults per handle (ARCHITECTURE.md "nesting": page faults and responses are per handle, one
// queue for the parent (level-2 faults) and one per child (level-1 faults); vmm-and-faults.md
// §3.2 step 4, §3.8 "driver → domain" / "domain → owner"): the device's lookup is called with
// (pasid, req) for every request, so an owner can send a stage-2 request (`req.stage === 2`, an
// SMMUv3 stall record with S2 = 1) to the parent's fault queue and any other to the child's.
// The group keeps the handle of the sink it went to; each queue answers only its own groups.
import { PageResponseCode, PgFaultPerm, type PageRequest } from '@iommulab/driver-api';
import { describe, expect, it } from 'vitest';
import {
  decodePgfaults,
  encodePageResponses,
  FaultQueue,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
  IopfQueue,
  type FaultHandler,
  type FaultHandlerLookup,
  type IopfGroup,
} from '../src/index.js';
import { device, FakeDriver, pageRequest, RecordingSink } from './fake-driver.js';

const LAST = IOMMU_PGFAULT_FLAGS_LAST_PAGE;
const PV = IOMMU_PGFAULT_FLAGS_PASID_VALID;
const R = PgFaultPerm.READ;
const W = PgFaultPerm.WRITE;

/** A stall page request as the SMMUv3 driver decodes it (Last, stall; `stage: 2` when S2 = 1). */
function stall(rid: number, stag: number, addr: number, o: { pasid?: number; perm?: number; stage?: 1 | 2 } = {}): PageRequest {
  const req = pageRequest({ rid, grpid: stag, addr, last: true, stall: true, pasid: o.pasid ?? -1, perm: o.perm ?? R });
  return o.stage === undefined ? req : { ...req, stage: o.stage };
}

/** The attach handle an owner gives its groups: which queue (level) the group went to. */
interface LevelHandle {
  readonly level: 1 | 2;
}

/** A lookup by stage: stage 2 → `parent` (handle level 2) when set, else → `child` (level 1). */
function byStage(child: FaultHandler['sink'], parent: FaultHandler['sink'] | null, calls?: [number, PageRequest][]): FaultHandlerLookup {
  const h1: LevelHandle = { level: 1 };
  const h2: LevelHandle = { level: 2 };
  return (pasid, req) => {
    calls?.push([pasid, req]);
    if (req.stage === 2 && parent !== null) return { handle: h2, sink: parent };
    return { handle: h1, sink: child };
  };
}

describe('faults per handle: the lookup receives the request', () => {
  it('§3.2 step 4: lookup(pasid, req) is called once per request, partial and Last, with the very request object the driver reported (stage 2, stage absent, PASID -1 / 7)', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const calls: [number, PageRequest][] = [];
    q.addDevice(device(0x40), byStage(new RecordingSink(), new RecordingSink(), calls));
    const s2 = stall(0x40, 3, 0x7f_4020_0000, { stage: 2 });
    const s1 = stall(0x40, 4, 0x7f_4020_1000, { pasid: 7 });
    const partial = pageRequest({ rid: 0x40, grpid: 9, addr: 0x9000 });
    const last = pageRequest({ rid: 0x40, grpid: 9, addr: 0xa000, last: true });
    for (const r of [s2, s1, partial, last]) expect(fd.push(r)).toEqual([true]);
    expect(calls.map(([p]) => p)).toEqual([-1, 7, -1, -1]);
    expect(calls.map(([, r]) => r)).toEqual([s2, s1, partial, last]);
    calls.forEach(([, r], i) => expect(r).toBe([s2, s1, partial, last][i]));
    expect(calls.map(([, r]) => r.stage)).toEqual([2, undefined, undefined, undefined]);
    expect(fd.sent).toEqual([]);
  });

  it('IopfQueue.report (iommu_report_device_fault called directly, no driver drain) hands the lookup the same request: a stage-2 request reported by hand reaches the stage-2 sink', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const child = new RecordingSink();
    const parent = new RecordingSink();
    const calls: [number, PageRequest][] = [];
    q.addDevice(device(0x41), byStage(child, parent, calls));
    const req = stall(0x41, 0x2a, 0x5000, { stage: 2, perm: W });
    expect(q.report(req)).toBe(true);
    expect(calls).toHaveLength(1);
    expect(calls[0]![0]).toBe(-1);
    expect(calls[0]![1]).toBe(req);
    expect(parent.delivered.map((g) => [g.last, (g.handle as LevelHandle).level])).toEqual([[{ flags: LAST, pasid: 0, grpid: 0x2a, perm: W, addr: 0x5000 }, 2]]);
    expect(child.delivered).toEqual([]);
  });
});

describe('faults per handle: a sink chosen by stage gets the group', () => {
  it('level-2 faults to the parent\'s queue, level-1 to the child\'s: stage-2 stalls (STAG 0, 2) reach only the parent sink, stage-1 stalls (STAG 1, PASID 5) only the child sink, each group with the handle of its level and its exact fault', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const child = new RecordingSink();
    const parent = new RecordingSink();
    const dev = q.addDevice(device(0x42), byStage(child, parent));
    fd.push(stall(0x42, 0, 0x7f_4020_0010, { stage: 2 }));
    fd.push(stall(0x42, 1, 0x7f_4020_1008, { pasid: 5, perm: W }));
    fd.push(stall(0x42, 2, 0x7f_4020_2000, { stage: 2, perm: R | W }));
    const view = (g: IopfGroup) => ({ level: (g.handle as LevelHandle).level, faults: g.faults, device: g.device, sink: g.sink });
    expect(parent.delivered.map(view)).toEqual([
      { level: 2, faults: [{ flags: LAST, pasid: 0, grpid: 0, perm: R, addr: 0x7f_4020_0010 }], device: dev, sink: parent },
      { level: 2, faults: [{ flags: LAST, pasid: 0, grpid: 2, perm: R | W, addr: 0x7f_4020_2000 }], device: dev, sink: parent },
    ]);
    expect(child.delivered.map(view)).toEqual([{ level: 1, faults: [{ flags: PV | LAST, pasid: 5, grpid: 1, perm: W, addr: 0x7f_4020_1008 }], device: dev, sink: child }]);
    expect(q.stats).toMatchObject({ requests: 3, groups: 3, noHandler: 0, refused: 0 });
    expect(q.outstanding).toBe(3);
    expect(fd.sent).toEqual([]);
  });

  it('no parent queue (the lookup returns the child for every stage): a stage-2 stall goes to the child\'s sink with the level-1 handle', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const child = new RecordingSink();
    q.addDevice(device(0x43), byStage(child, null));
    fd.push(stall(0x43, 6, 0x6000, { stage: 2 }));
    expect(child.delivered.map((g) => [(g.handle as LevelHandle).level, g.last])).toEqual([[1, { flags: LAST, pasid: 0, grpid: 6, perm: R, addr: 0x6000 }]]);
    expect(fd.sent).toEqual([]);
  });

  it('§3.2 step 4 no handler by stage: a lookup that returns null for stage 2 gets that Last answered INVALID at once (rid, pasid -1, grpid = STAG), while a stage-1 stall of the same device is delivered', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const child = new RecordingSink();
    q.addDevice(device(0x44), (_pasid, req) => (req.stage === 2 ? null : { handle: { level: 1 }, sink: child }));
    fd.push(stall(0x44, 8, 0x8000, { stage: 2 }));
    fd.push(stall(0x44, 9, 0x9000));
    expect(fd.responses()).toEqual([{ rid: 0x44, pasid: -1, grpid: 8, code: PageResponseCode.INVALID }]);
    expect(child.delivered.map((g) => g.last.grpid)).toEqual([9]);
    expect(q.stats).toMatchObject({ noHandler: 1, groups: 1, invalid: 1 });
  });

  it('§3.2 steps 7–13, §3.4 per queue: with two FaultQueues (parent, child) each read gives only its own level\'s 40-byte records; SUCCESS written to the parent\'s queue answers the stage-2 group (rid, pasid -1, grpid = STAG); the parent\'s autoRespond(level 2) answers only its own group INVALID and leaves the child\'s group pending', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const child = new FaultQueue();
    const parent = new FaultQueue();
    q.addDevice(device(0x45), byStage(child, parent), 77);
    fd.push(stall(0x45, 0, 0x7f_4020_0010, { stage: 2 }));
    fd.push(stall(0x45, 1, 0x7f_4030_0000, { perm: W }));
    fd.push(stall(0x45, 2, 0x7f_4020_3000, { stage: 2, pasid: 3 }));
    expect([parent.pendingRead, child.pendingRead]).toEqual([2, 1]);

    const p = decodePgfaults(parent.read(4 * 40));
    expect(p.map(({ cookie: _c, ...r }) => r)).toEqual([
      { flags: LAST, devId: 77, pasid: 0, grpid: 0, perm: R, addr: 0x7f_4020_0010, length: 0 },
      { flags: PV | LAST, devId: 77, pasid: 3, grpid: 2, perm: R, addr: 0x7f_4020_3000, length: 0 },
    ]);
    const c = decodePgfaults(child.read(4 * 40));
    expect(c.map(({ cookie: _c, ...r }) => r)).toEqual([{ flags: LAST, devId: 77, pasid: 0, grpid: 1, perm: W, addr: 0x7f_4030_0000, length: 0 }]);
    expect([parent.pendingRead, child.pendingRead, parent.awaitingResponse, child.awaitingResponse]).toEqual([0, 0, 2, 1]);

    // The parent's owner answers its first stage-2 group (cookie as read from its record).
    expect(parent.write(encodePageResponses([{ cookie: p[0]!.cookie, code: PageResponseCode.SUCCESS }]))).toBe(8);
    expect(fd.responses()).toEqual([{ rid: 0x45, pasid: -1, grpid: 0, code: PageResponseCode.SUCCESS }]);
    // Detaching the nested attachment answers the parent's level-2 groups of it: only STAG 2 is left there.
    expect(parent.autoRespond((g) => (g.handle as LevelHandle).level === 2)).toBe(1);
    expect(fd.responses()[1]).toEqual({ rid: 0x45, pasid: 3, grpid: 2, code: PageResponseCode.INVALID });
    expect(parent.awaitingResponse).toBe(0);
    expect(child.awaitingResponse).toBe(1);
    expect(q.outstanding).toBe(1);
    // Its cookie is gone from the parent's queue; the child's group still answers through the child's queue.
    expect(parent.respond(p[1]!.cookie, PageResponseCode.SUCCESS)).toMatch(/cookie/);
    expect(child.write(encodePageResponses([{ cookie: c[0]!.cookie, code: PageResponseCode.INVALID }]))).toBe(8);
    expect(fd.responses()).toEqual([
      { rid: 0x45, pasid: -1, grpid: 0, code: PageResponseCode.SUCCESS },
      { rid: 0x45, pasid: 3, grpid: 2, code: PageResponseCode.INVALID },
      { rid: 0x45, pasid: -1, grpid: 1, code: PageResponseCode.INVALID },
    ]);
    expect(q.outstanding).toBe(0);
  });
});
