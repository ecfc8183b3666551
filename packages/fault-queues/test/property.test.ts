// Property test of the whole fault path against a reference model (vmm-and-faults.md §3.3, §3.4,
// §4.2, §6.4, §6.6): random interleavings of page requests (several devices, PASIDs, PRG indices,
// Last / non-Last, stop markers, an unknown device), fault-fd reads (good and bad counts) and
// writes (valid, stale and made-up cookies, bad codes), direct answers, detaches and replaces
// (autoRespond of the attachment), device removal and re-adding, fault-object destruction,
// page-request and event overflows, and clock advances with a response timeout. Checked after
// every step:
// - every group built gets exactly one driver pageResponse, naming the (rid, pasid or -1, grpid)
//   of its group's Last request; the only other response is the single INVALID for a Last request
//   no handler takes; no response at all for non-Last requests and stop markers;
// - groups are exactly the model's partials of the PRG index (arrival order) then the Last;
// - reads return exactly the model's FIFO of unread groups that fit, with cyclic cookies (the first
//   not in use after the fault object's last one: 1, 2, 3... never a cookie read before from it);
//   writes accept exactly the entries the model accepts and stop with EINVAL / a short count;
// - an attachment that goes away, a removed device, a destroyed fault object leave no group of
//   theirs unanswered; nothing stays pending past its deadline;
// and at the end, after removing every device and destroying every fault object, no group is left
// unanswered.
import { isIommuError, PageResponseCode, type PageRequest, type PageResponse } from '@iommulab/driver-api';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodePgfaults, encodePageResponses, FaultQueue, IopfQueue, isStopMarker, LogicalClock, type FaultHandler, type FaultSink, type IopfGroup } from '../src/index.js';
import { device, FakeDriver } from './fake-driver.js';

const DEVS = [1, 2, 3];
const UNKNOWN_DEV = 9;
const TIMEOUT = 6;
const MAX_PARTIAL = 6;

type Op =
  | { t: 'req'; dev: number; pasid: number; grpid: number; last: boolean; perm: number; addr: number }
  | { t: 'read'; fq: number; n: number; bad: boolean }
  | { t: 'write'; fq: number; entries: { pick: number; code: number }[] }
  | { t: 'respond'; pick: number; code: 0 | 1 | 2 }
  | { t: 'detach'; dev: number; pasid: number }
  | { t: 'attach'; dev: number; pasid: number; fq: number | null }
  | { t: 'remove'; dev: number }
  | { t: 'add'; dev: number }
  | { t: 'overflow'; queue: 'page-request' | 'event' }
  | { t: 'advance'; ticks: number }
  | { t: 'closeFq'; fq: number };
// closeFq destroys a fault object; its HWPTs then get a new one (a fresh FaultQueue in that slot).

const devArb = fc.constantFrom(...DEVS);
// PASID -1 and 0 are attached to HWPTs with fault queues at first; 1 to one without; 2 to nothing.
const pasidArb = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(-1, 0) }, { weight: 1, arbitrary: fc.constantFrom(1, 2) });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 20,
    arbitrary: fc.record({
      t: fc.constant('req' as const),
      dev: fc.oneof({ weight: 12, arbitrary: devArb }, { weight: 1, arbitrary: fc.constant(UNKNOWN_DEV) }),
      pasid: pasidArb,
      grpid: fc.nat(2),
      last: fc.nat(2).map((n) => n === 0),
      perm: fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 1, max: 15 }) }, { weight: 1, arbitrary: fc.constant(0) }),
      addr: fc.nat(0xff).map((p) => p * 0x1000),
    }),
  },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('read' as const), fq: fc.nat(1), n: fc.nat(6), bad: fc.nat(4).map((n) => n === 0) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('write' as const),
      fq: fc.nat(1),
      entries: fc.array(fc.record({ pick: fc.nat(50), code: fc.oneof({ weight: 6, arbitrary: fc.nat(1) }, { weight: 1, arbitrary: fc.constantFrom(2, 0xf) }) }), { maxLength: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('respond' as const), pick: fc.nat(100), code: fc.constantFrom(0 as const, 1 as const, 2 as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('detach' as const), dev: devArb, pasid: pasidArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('attach' as const), dev: devArb, pasid: pasidArb, fq: fc.oneof({ weight: 4, arbitrary: fc.nat(1) }, { weight: 1, arbitrary: fc.constant(null) }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('remove' as const), dev: devArb }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('add' as const), dev: devArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('overflow' as const), queue: fc.constantFrom('page-request' as const, 'event' as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('advance' as const), ticks: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('closeFq' as const), fq: fc.nat(1) }) },
);

interface Attachment {
  readonly handle: object;
  /** The fault queue of its HWPT; null: a HWPT without a fault object. */
  readonly fq: number | null;
}

interface Built {
  readonly g: IopfGroup;
  /** The fault queue (fault object) it was delivered to. */
  readonly fqObj: FaultQueue;
  /** The Last request that completed it. */
  readonly req: PageRequest;
  readonly accepted: boolean;
}

function expectedResponse(req: PageRequest, code: number): PageResponse {
  return { rid: req.rid, pasid: req.pasid, grpid: req.grpid, code: code as PageResponse['code'] };
}

function run(ops: Op[]): { sent: PageResponse[]; built: number } {
  const fd = new FakeDriver();
  const clock = new LogicalClock();
  const q = new IopfQueue(fd.driver, { clock, responseTimeout: TIMEOUT, maxPartial: MAX_PARTIAL });
  q.hold(); // keep listening while no device is added: unknown devices are then reported to us
  const newFq = (i: number) => (i === 0 ? new FaultQueue() : new FaultQueue({ capacity: 6 }));
  const fqs = [newFq(0), newFq(1)];
  const built: Built[] = [];
  const byGroup = new Map<IopfGroup, Built>();
  const unanswered = new Set<IopfGroup>();
  const violations: string[] = [];
  const knownCookies = [new Set<number>(), new Set<number>()];
  /** Model: the last cookie each fault object handed out (0: none yet). */
  const lastCookie = [0, 0];
  let currentReq: PageRequest | undefined;
  let errorResponseAllowed = false;
  let errorResponses = 0;

  // Model: attachments, devices present, partial lists.
  const att = new Map<string, Attachment | null>();
  const key = (dev: number, pasid: number) => `${dev}:${pasid}`;
  for (const dev of DEVS) {
    att.set(key(dev, -1), { handle: {}, fq: 0 });
    att.set(key(dev, 0), { handle: {}, fq: 1 });
    att.set(key(dev, 1), { handle: {}, fq: null });
    att.set(key(dev, 2), null);
  }
  const present = new Set<number>();
  const partial = new Map<number, PageRequest[]>();

  const sinks: FaultSink[] = fqs.map((_, i) => ({
    deliver(g: IopfGroup): boolean {
      const fq = fqs[i]!;
      const accepted = fq.deliver(g);
      const b: Built = { g, fqObj: fq, req: currentReq!, accepted };
      built.push(b);
      byGroup.set(g, b);
      unanswered.add(g);
      return accepted;
    },
    withdraw(g: IopfGroup): void {
      byGroup.get(g)!.fqObj.withdraw(g);
    },
  }));

  const lookupFor =
    (dev: number) =>
    (pasid: number): FaultHandler | null => {
      const a = att.get(key(dev, pasid));
      return a == null ? null : { handle: a.handle, sink: a.fq === null ? null : sinks[a.fq]! };
    };

  fd.onResponse = (resp) => {
    const newly = [...unanswered].filter((g) => g.state === 'answered');
    if (newly.length === 1) {
      const g = newly[0]!;
      unanswered.delete(g);
      const want = expectedResponse(byGroup.get(g)!.req, g.code);
      if (JSON.stringify(resp) !== JSON.stringify(want)) violations.push(`group response ${JSON.stringify(resp)} != ${JSON.stringify(want)}`);
    } else if (newly.length === 0) {
      const want = currentReq === undefined ? undefined : expectedResponse(currentReq, PageResponseCode.INVALID);
      if (!errorResponseAllowed || JSON.stringify(resp) !== JSON.stringify(want)) violations.push(`unexpected response ${JSON.stringify(resp)}`);
      errorResponseAllowed = false;
      errorResponses++;
    } else violations.push(`${newly.length} groups answered by one response`);
  };

  const pendingOf = (fq: number) => built.filter((b) => b.fqObj === fqs[fq] && b.accepted && b.g.state === 'pending');

  const addDevice = (dev: number) => {
    q.addDevice(device(dev), lookupFor(dev), 100 + dev);
    present.add(dev);
    partial.set(dev, []);
  };
  for (const dev of DEVS) addDevice(dev);

  const checkInvariants = (what: string) => {
    expect(violations, what).toEqual([]);
    expect(q.outstanding, what).toBe(built.filter((b) => b.g.state === 'pending').length);
    expect(q.outstanding, what).toBe(unanswered.size);
    for (const b of built) if (b.g.state === 'pending') expect(b.g.deadline, what).toBeGreaterThan(clock.now);
    for (const dev of present) {
      expect(
        q.device(dev)!.partial.map((f) => [f.grpid, f.addr]),
        what,
      ).toEqual(partial.get(dev)!.map((r) => [r.grpid, r.addr]));
    }
    for (let i = 0; i < fqs.length; i++) {
      // cookies are never shared by two groups awaiting a response in one fault object
      const cookies = pendingOf(i).filter((b) => b.g.cookie !== 0).map((b) => b.g.cookie);
      expect(new Set(cookies).size, what).toBe(cookies.length);
      expect(fqs[i]!.awaitingResponse, what).toBe(cookies.length);
      expect(fqs[i]!.pendingRead, what).toBe(pendingOf(i).length - cookies.length);
    }
  };

  const autoRespondHandle = (a: Attachment) => {
    if (a.fq === null) return;
    fqs[a.fq]!.autoRespond((g) => g.handle === a.handle);
    for (const b of built) if (b.g.handle === a.handle) expect(b.g.state).toBe('answered');
  };

  for (const [step, op] of ops.entries()) {
    const what = `step ${step}: ${JSON.stringify(op)}`;
    const sentBefore = fd.sent.length;
    switch (op.t) {
      case 'req': {
        const req: PageRequest = { kind: 'page-request', rid: op.dev, pasid: op.pasid, grpid: op.grpid, perm: op.perm, addr: op.addr, last: op.last };
        const stop = isStopMarker(req);
        const known = present.has(op.dev);
        const a = known ? att.get(key(op.dev, op.pasid)) : undefined;
        const sinkNull = a == null || a.fq === null;
        const builtBefore = built.length;
        let expectGroup: PageRequest[] | undefined;
        if (known && !stop) {
          const list = partial.get(op.dev)!;
          if (!op.last) {
            if (!sinkNull && list.length < MAX_PARTIAL) list.push(req);
          } else {
            const mine = list.filter((r) => r.grpid === op.grpid);
            partial.set(
              op.dev,
              list.filter((r) => r.grpid !== op.grpid),
            );
            if (sinkNull) errorResponseAllowed = true;
            else expectGroup = [...mine, req];
          }
        }
        currentReq = req;
        const taken = fd.push(req);
        currentReq = undefined;
        expect(taken, what).toEqual([stop || known]);
        expect(errorResponseAllowed, `${what}: the INVALID for a Last no handler takes`).toBe(false);
        if (expectGroup === undefined) expect(built.length, what).toBe(builtBefore);
        else {
          expect(built.length, what).toBe(builtBefore + 1);
          const g = built[built.length - 1]!.g;
          expect(
            g.faults.map((f) => [f.grpid, f.addr, f.perm, f.flags, f.pasid]),
            what,
          ).toEqual(expectGroup.map((r) => [r.grpid, r.addr, r.perm, (r.pasid >= 0 ? 1 : 0) | (r.last ? 2 : 0), r.pasid >= 0 ? r.pasid : 0]));
          expect(g.device.rid, what).toBe(op.dev);
        }
        // no response for a non-Last request or a stop marker; at most one otherwise
        if (!op.last || stop || !known) expect(fd.sent.length, what).toBe(sentBefore);
        else expect(fd.sent.length - sentBefore, what).toBeLessThanOrEqual(1);
        break;
      }
      case 'read': {
        const fq = fqs[op.fq]!;
        if (op.bad) {
          const count = op.n * 40 + 1 + (op.n % 39);
          let errno: string | undefined;
          try {
            fq.read(count);
          } catch (e) {
            errno = isIommuError(e) ? e.errno : String(e);
          }
          expect(errno, what).toBe('ESPIPE');
          break;
        }
        const count = op.n * 40;
        // model: the FIFO of unread groups, whole groups while they fit, cyclic cookies (the first
        // not in use after the last one handed out; a run never gets near the wrap at 0xffffffff)
        const unread = pendingOf(op.fq).filter((b) => b.g.cookie === 0);
        const inUse = new Set(pendingOf(op.fq).map((b) => b.g.cookie).filter((c) => c !== 0));
        const expected: unknown[] = [];
        let room = count;
        for (const b of unread) {
          const need = b.g.faults.length * 40;
          if (need > room) break;
          room -= need;
          let cookie = lastCookie[op.fq]! + 1;
          while (inUse.has(cookie)) cookie++;
          // never a cookie this fault object handed out before, answered or not
          expect(knownCookies[op.fq]!.has(cookie), what).toBe(false);
          inUse.add(cookie);
          lastCookie[op.fq] = cookie;
          for (const f of b.g.faults) expected.push({ flags: f.flags, devId: 100 + b.req.rid, pasid: f.pasid, grpid: f.grpid, perm: f.perm, addr: f.addr, length: 0, cookie });
        }
        const recs = decodePgfaults(fq.read(count));
        expect(recs, what).toEqual(expected);
        for (const r of recs) knownCookies[op.fq]!.add(r.cookie);
        break;
      }
      case 'write': {
        const fq = fqs[op.fq]!;
        // mostly cookies awaiting a response; else any cookie ever read here (stale), 0 or 77
        const awaiting = pendingOf(op.fq).map((b) => b.g.cookie).filter((c) => c !== 0);
        const any = [...knownCookies[op.fq]!, 0, 77];
        const entries = op.entries.map((e) => ({ cookie: e.pick < 35 && awaiting.length > 0 ? awaiting[e.pick % awaiting.length]! : any[e.pick % any.length]!, code: e.code }));
        // model: entries in order while valid (code 0 / 1 and a cookie awaiting a response)
        let ok = 0;
        const answeredNow: [IopfGroup, number][] = [];
        const gone = new Set<IopfGroup>();
        for (const e of entries) {
          const b = pendingOf(op.fq).find((x) => x.g.cookie === e.cookie && e.cookie !== 0 && !gone.has(x.g));
          if ((e.code !== 0 && e.code !== 1) || b === undefined) break;
          gone.add(b.g);
          answeredNow.push([b.g, e.code]);
          ok++;
        }
        let result: number | string;
        try {
          result = fq.write(encodePageResponses(entries));
        } catch (e) {
          result = isIommuError(e) ? e.errno : String(e);
        }
        expect(result, what).toBe(ok === 0 && entries.length > 0 ? 'EINVAL' : ok * 8);
        for (const [g, code] of answeredNow) expect(g.code, what).toBe(code);
        expect(fd.sent.length - sentBefore, what).toBe(ok);
        break;
      }
      case 'respond': {
        if (built.length === 0) break;
        const pending = built.filter((b) => b.g.state === 'pending');
        const g = (op.pick < 60 && pending.length > 0 ? pending[op.pick % pending.length]! : built[op.pick % built.length]!).g;
        const wasPending = g.state === 'pending';
        expect(g.respond(op.code), what).toBe(wasPending);
        expect(fd.sent.length - sentBefore, what).toBe(wasPending ? 1 : 0);
        break;
      }
      case 'detach': {
        const a = att.get(key(op.dev, op.pasid));
        att.set(key(op.dev, op.pasid), null);
        if (a != null) autoRespondHandle(a);
        break;
      }
      case 'attach': {
        // attach or replace: the old attachment's groups are answered after the switch
        const old = att.get(key(op.dev, op.pasid));
        att.set(key(op.dev, op.pasid), { handle: {}, fq: op.fq });
        if (old != null) autoRespondHandle(old);
        break;
      }
      case 'remove': {
        const d = q.device(op.dev);
        q.removeDevice(device(op.dev));
        present.delete(op.dev);
        partial.delete(op.dev);
        if (d !== undefined) for (const b of built) if (b.g.device === d) expect(b.g.state, what).toBe('answered');
        expect(q.device(op.dev), what).toBeUndefined();
        break;
      }
      case 'add': {
        if (present.has(op.dev)) expect(() => q.addDevice(device(op.dev), lookupFor(op.dev))).toThrow(/EBUSY/);
        else addDevice(op.dev);
        break;
      }
      case 'overflow': {
        expect(fd.push({ kind: 'overflow', queue: op.queue }), what).toEqual([true]);
        if (op.queue === 'page-request') for (const dev of present) partial.set(dev, []);
        expect(fd.sent.length, what).toBe(sentBefore);
        break;
      }
      case 'advance': {
        const due = built.filter((b) => b.g.state === 'pending' && b.g.deadline <= clock.now + op.ticks).map((b) => b.g);
        clock.advance(op.ticks);
        for (const g of due) expect(g.code, what).toBe(PageResponseCode.INVALID);
        expect(fd.sent.length - sentBefore, what).toBe(due.length);
        break;
      }
      case 'closeFq': {
        const old = fqs[op.fq]!;
        old.close();
        for (const b of built) if (b.fqObj === old) expect(b.g.state, what).toBe('answered');
        expect([old.closed, old.pendingRead, old.awaitingResponse], what).toEqual([true, 0, 0]);
        fqs[op.fq] = newFq(op.fq);
        knownCookies[op.fq] = new Set();
        lastCookie[op.fq] = 0;
        break;
      }
    }
    checkInvariants(what);
  }

  // Tear everything down: no group may be left unanswered.
  for (const dev of [...present]) q.removeDevice(device(dev));
  for (const fq of fqs) fq.close();
  q.close();
  expect(violations).toEqual([]);
  expect(unanswered.size).toBe(0);
  expect(q.outstanding).toBe(0);
  expect(fd.sent.length).toBe(built.length + errorResponses);
  expect(q.stats.groups).toBe(built.length);
  expect(q.stats.noHandler).toBe(errorResponses);
  expect(q.stats.responseErrors).toBe(0);
  for (const b of built) expect(b.g.state).toBe('answered');
  return { sent: fd.responses(), built: built.length };
}

describe('property: every PRG instance gets exactly one response, addressed by its Last request', () => {
  it('holds for random interleavings of requests, reads, writes, detaches, removals, overflows and timeouts', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 120, size: 'max' }), (ops) => {
        run(ops);
      }),
      { numRuns: 200, seed: 0x10bf, endOnFailure: true },
    );
  });

  it('the reference model itself: a scripted run builds, reads, answers and times out what it should', () => {
    const { sent, built } = run([
      { t: 'req', dev: 1, pasid: -1, grpid: 1, last: false, perm: 1, addr: 0x1000 },
      { t: 'req', dev: 1, pasid: -1, grpid: 1, last: true, perm: 2, addr: 0x2000 },
      { t: 'req', dev: 2, pasid: 2, grpid: 0, last: true, perm: 1, addr: 0x3000 }, // no handler → INVALID
      { t: 'req', dev: 2, pasid: 0, grpid: 0, last: true, perm: 0, addr: 0 }, // stop marker
      { t: 'read', fq: 0, n: 2, bad: false },
      { t: 'write', fq: 0, entries: [{ pick: 0, code: 0 }] },
      { t: 'req', dev: 3, pasid: 0, grpid: 3, last: true, perm: 1, addr: 0x4000 },
      { t: 'advance', ticks: TIMEOUT }, // times out
      { t: 'req', dev: 9, pasid: -1, grpid: 1, last: true, perm: 1, addr: 0x5000 }, // unknown device
      { t: 'req', dev: 1, pasid: -1, grpid: 2, last: true, perm: 1, addr: 0x6000 }, // answered by the teardown
    ]);
    expect(built).toBe(3);
    expect(sent).toEqual([
      { rid: 2, pasid: 2, grpid: 0, code: PageResponseCode.INVALID },
      { rid: 1, pasid: -1, grpid: 1, code: PageResponseCode.SUCCESS },
      { rid: 3, pasid: 0, grpid: 3, code: PageResponseCode.INVALID },
      { rid: 1, pasid: -1, grpid: 2, code: PageResponseCode.INVALID },
    ]);
  });
});
