// The device side of PCIe PRI (vmm-and-faults.md §3.3, §3.6, §4.5): Outstanding Page Request
// Allocation credits consumed per request and refunded per group on its response; a group short of
// credits waits, FIFO; a PRG index is not reused until its response; a response is matched by
// requester id + PRG index (+ PASID when PRG Response PASID Required), else Status.UPRGI; Response
// Failure sets Status.RF and stops requests until reset; stop markers take no credit.
import { PageResponseCode, PgFaultPerm } from '@iommulab/driver-api';
import type { PageRequestInit } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { PRG_INDEX_MAX, PriFunction, PriStatus, type PriFunctionOptions } from '../src/index.js';

const R = PgFaultPerm.READ;
const W = PgFaultPerm.WRITE;
const RID = 0x0310;

/** Lets queued promise callbacks (the awaited sends) run. */
const tick = () => new Promise<void>((r) => setImmediate(r));

function make(options: Partial<PriFunctionOptions> = {}, queued = true) {
  const sent: PageRequestInit[] = [];
  const pri = new PriFunction({
    rid: RID,
    send: (req) => {
      sent.push({ ...req });
      return queued;
    },
    ...options,
  });
  const pages = (n: number, base = 0x10_0000) => Array.from({ length: n }, (_, i) => ({ addr: base + i * 0x1000, perm: R }));
  const answer = (grpid: number, code: 0 | 1 | 2 = PageResponseCode.SUCCESS, pasid = -1, rid = RID) => pri.receive({ rid, pasid, grpid, code });
  return { pri, sent, pages, answer };
}

describe('PriFunction: requests and credits', () => {
  it('sends one Page Request per page with the PRG index, Last only on the final one; one credit each', async () => {
    const { pri, sent } = make({ allocation: 4 });
    const p = pri.request(
      [
        { addr: 0x1000, perm: R },
        { addr: 0x2000, perm: W },
        { addr: 0x3000, perm: R | W | PgFaultPerm.EXEC },
      ],
      0x42,
    );
    await tick();
    expect(sent).toEqual([
      { rid: RID, pasid: 0x42, addr: 0x1000, perm: R, grpid: 0, last: false },
      { rid: RID, pasid: 0x42, addr: 0x2000, perm: W, grpid: 0, last: false },
      { rid: RID, pasid: 0x42, addr: 0x3000, perm: R | W | PgFaultPerm.EXEC, grpid: 0, last: true },
    ]);
    expect(pri.outstanding).toBe(3);
    expect(pri.outstandingGroups).toBe(1);
    expect(pri.stats.requests).toBe(3);
    expect(pri.stats.groups).toBe(1);
    pri.receive({ rid: RID, pasid: 0x42, grpid: 0, code: PageResponseCode.SUCCESS });
    await expect(p).resolves.toBe(PageResponseCode.SUCCESS);
  });

  it('refunds the whole group’s credits on its response and resolves the request with the code', async () => {
    const { pri, pages, answer } = make({ allocation: 8 });
    const a = pri.request(pages(3));
    const b = pri.request(pages(2));
    await tick();
    expect(pri.outstanding).toBe(5);
    expect(answer(0, PageResponseCode.INVALID)).toBe(true);
    expect(pri.outstanding).toBe(2);
    expect(pri.outstandingGroups).toBe(1);
    expect(answer(1)).toBe(true);
    expect(pri.outstanding).toBe(0);
    expect(await a).toBe(PageResponseCode.INVALID);
    expect(await b).toBe(PageResponseCode.SUCCESS);
    expect([pri.stats.success, pri.stats.invalid, pri.stats.failure]).toEqual([1, 1, 0]);
  });

  it('a group short of credits waits; later groups queue behind it (FIFO) even if they would fit; a refund lets them go in order', async () => {
    const { pri, sent, pages, answer } = make({ allocation: 4 });
    const a = pri.request(pages(3, 0xa0000));
    const b = pri.request(pages(2, 0xb0000));
    const c = pri.request(pages(1, 0xc0000));
    await tick();
    expect(sent.map((r) => r.addr)).toEqual([0xa0000, 0xa1000, 0xa2000]);
    expect(pri.stats.creditWaits).toBe(2);
    expect(pri.outstanding).toBe(3);
    answer(0);
    await tick();
    // b then c got their credits and indices in order (their messages may interleave on the link)
    const byIndex = (i: number) => sent.slice(3).filter((r) => r.grpid === i).map((r) => [r.addr, r.last]);
    expect(byIndex(1)).toEqual([
      [0xb0000, false],
      [0xb1000, true],
    ]);
    expect(byIndex(2)).toEqual([[0xc0000, true]]);
    expect(sent).toHaveLength(6);
    expect(pri.outstanding).toBe(3);
    answer(1);
    answer(2);
    expect(await Promise.all([a, b, c])).toEqual([0, 0, 0]);
  });

  it('raising the allocation lets a waiting group go', async () => {
    const { pri, sent, pages } = make({ allocation: 1, capacity: 4 });
    void pri.request(pages(1));
    void pri.request(pages(1));
    await tick();
    expect(sent).toHaveLength(1);
    pri.allocation = 2;
    await tick();
    expect(sent.map((r) => r.grpid)).toEqual([0, 1]);
  });

  it('counts requests the IOMMU did not queue as dropped', async () => {
    const { pri, pages } = make({}, false);
    void pri.request(pages(2));
    await tick();
    expect(pri.stats.dropped).toBe(2);
  });

  it('validates its arguments', async () => {
    const { pri, sent, pages } = make({ allocation: 2 });
    await expect(pri.request([])).rejects.toThrow(RangeError);
    await expect(pri.request(pages(3))).rejects.toThrow(RangeError);
    await expect(pri.request([{ addr: 0, perm: PgFaultPerm.EXEC }])).rejects.toThrow(/stop marker/);
    await expect(pri.request(pages(1), 0x100000)).rejects.toThrow(RangeError);
    await expect(pri.request(pages(1), -2)).rejects.toThrow(RangeError);
    expect(sent).toEqual([]);
    expect(pri.outstanding).toBe(0);
    expect(() => (pri.allocation = 0)).toThrow(RangeError);
    expect(() => (pri.allocation = 513)).toThrow(RangeError);
    expect(() => new PriFunction({ rid: 1, send: () => true, capacity: 0 })).toThrow(RangeError);
    expect(() => new PriFunction({ rid: 1, send: () => true, capacity: 4, allocation: 5 })).toThrow(RangeError);
    expect(pri.capacity).toBe(512);
    expect(pri.allocation).toBe(2);
  });
});

describe('PriFunction: PRG indices', () => {
  it('does not reuse a PRG index until its response: with all 512 outstanding the next group waits for one', async () => {
    const { pri, sent, pages, answer } = make({ capacity: 1024 });
    for (let i = 0; i <= PRG_INDEX_MAX; i++) void pri.request(pages(1));
    await tick();
    expect(new Set(sent.map((r) => r.grpid)).size).toBe(512);
    const late = pri.request(pages(1, 0xf000));
    await tick();
    expect(sent).toHaveLength(512);
    expect(pri.stats.creditWaits).toBe(1);
    answer(300);
    await tick();
    expect(sent[512]).toEqual({ rid: RID, pasid: -1, addr: 0xf000, perm: R, grpid: 300, last: true });
    answer(300);
    expect(await late).toBe(0);
  });

  it('hands indices out in turn, skipping outstanding ones', async () => {
    const { pri, sent, pages, answer } = make();
    void pri.request(pages(1));
    void pri.request(pages(1));
    await tick();
    answer(1);
    void pri.request(pages(1));
    await tick();
    expect(sent.map((r) => r.grpid)).toEqual([0, 1, 2]);
  });
});

describe('PriFunction: response matching', () => {
  it('a response matching no outstanding index sets Status.UPRGI and counts it', async () => {
    const { pri, pages, answer } = make();
    void pri.request(pages(1));
    await tick();
    expect(answer(7)).toBe(false);
    expect(pri.status).toBe(PriStatus.UPRGI);
    expect(PriStatus.UPRGI).toBe(0x2);
    expect(pri.stats.unexpected).toBe(1);
    expect(pri.outstanding).toBe(1);
  });

  it('a second response to an answered group is unexpected', async () => {
    const { pri, pages, answer } = make();
    void pri.request(pages(1));
    await tick();
    expect(answer(0)).toBe(true);
    expect(answer(0)).toBe(false);
    expect(pri.stats.unexpected).toBe(1);
  });

  it('ignores a response addressed to another requester id (no UPRGI)', async () => {
    const { pri, pages, answer } = make();
    void pri.request(pages(1));
    await tick();
    expect(answer(0, 0, -1, RID + 1)).toBe(false);
    expect(pri.status).toBe(0);
    expect(pri.outstanding).toBe(1);
  });

  it('with PRG Response PASID Required the PASID must match too; Status shows the bit', async () => {
    const { pri, pages, answer } = make({ responsePasidRequired: true });
    expect(pri.status).toBe(PriStatus.PRG_RESPONSE_PASID_REQUIRED);
    const p = pri.request(pages(1), 5);
    await tick();
    expect(answer(0, 0, 6)).toBe(false);
    expect(answer(0, 0, -1)).toBe(false);
    expect(pri.status).toBe(PriStatus.PRG_RESPONSE_PASID_REQUIRED | PriStatus.UPRGI);
    expect(answer(0, 0, 5)).toBe(true);
    expect(await p).toBe(0);
  });

  it('without it the PASID of the response is not checked', async () => {
    const { pri, pages, answer } = make();
    const p = pri.request(pages(1), 5);
    await tick();
    expect(answer(0, 1, 9)).toBe(true);
    expect(await p).toBe(1);
  });
});

describe('PriFunction: Response Failure, disable, reset', () => {
  it('FAILURE sets Status.RF (0x1): the request resolves 2, waiting groups fail, later requests throw; reset() clears it', async () => {
    const { pri, sent, pages, answer } = make({ allocation: 1 });
    const a = pri.request(pages(1));
    const waiting = pri.request(pages(1));
    await tick();
    expect(answer(0, PageResponseCode.FAILURE)).toBe(true);
    expect(await a).toBe(PageResponseCode.FAILURE);
    await expect(waiting).rejects.toThrow(/Response Failure/);
    expect(pri.status).toBe(PriStatus.RF);
    expect(PriStatus.RF).toBe(0x1);
    expect(pri.stats.failure).toBe(1);
    await expect(pri.request(pages(1))).rejects.toThrow(/Response Failure/);
    expect(sent).toHaveLength(1);
    pri.reset();
    expect(pri.status).toBe(0);
    const again = pri.request(pages(1));
    await tick();
    expect(sent).toHaveLength(2);
    answer(sent[1]!.grpid);
    expect(await again).toBe(0);
  });

  it('reset() resolves every outstanding group FAILURE, frees all credits and clears UPRGI', async () => {
    const { pri, pages, answer } = make({ allocation: 4 });
    const a = pri.request(pages(2));
    const b = pri.request(pages(2));
    await tick();
    answer(99);
    pri.reset();
    expect(await Promise.all([a, b])).toEqual([2, 2]);
    expect(pri.outstanding).toBe(0);
    expect(pri.outstandingGroups).toBe(0);
    expect(pri.status).toBe(0);
  });

  it('setEnabled(false): waiting groups fail, new requests throw, STOPPED once nothing is outstanding', async () => {
    const { pri, pages, answer } = make({ allocation: 1 });
    const a = pri.request(pages(1));
    const waiting = pri.request(pages(1));
    await tick();
    pri.setEnabled(false);
    await expect(waiting).rejects.toThrow(/disabled/);
    await expect(pri.request(pages(1))).rejects.toThrow(/disabled/);
    expect(pri.status).toBe(0);
    answer(0);
    expect(await a).toBe(0);
    expect(pri.status).toBe(PriStatus.STOPPED);
    pri.setEnabled(true);
    expect(pri.status).toBe(0);
  });

  it('a group woken by a refund but not yet sent when a Response Failure arrives never goes out, and gives its credits back', async () => {
    const { pri, sent, pages, answer } = make({ allocation: 2 });
    const a = pri.request(pages(1, 0xa000)); // index 0
    const c = pri.request(pages(1, 0xc000)); // index 1
    await tick();
    const b = pri.request(pages(1, 0xb000)); // waits
    await tick();
    answer(0); // wakes b (index 2)
    answer(1, PageResponseCode.FAILURE); // before b runs
    await expect(b).rejects.toThrow(/Response Failure/);
    expect(await a).toBe(0);
    expect(await c).toBe(2);
    expect(sent.map((r) => r.addr)).toEqual([0xa000, 0xc000]);
    expect(pri.outstanding).toBe(0);
    expect(pri.outstandingGroups).toBe(0);
  });

  it('a group woken by a refund but not yet sent when PRI is reset resolves FAILURE, sends nothing and holds no credit', async () => {
    const { pri, sent, pages, answer } = make({ allocation: 1 });
    void pri.request(pages(1, 0xa000));
    await tick();
    const b = pri.request(pages(1, 0xb000));
    await tick();
    answer(0); // wakes b
    pri.reset(); // before b runs
    expect(await b).toBe(PageResponseCode.FAILURE);
    expect(sent.map((r) => r.addr)).toEqual([0xa000]);
    expect(pri.outstanding).toBe(0);
    expect(pri.outstandingGroups).toBe(0);
    // the allocation is intact: exactly one credit, so a 1-page group goes, a second waits
    void pri.request(pages(1, 0xd000));
    void pri.request(pages(1, 0xe000));
    await tick();
    expect(sent.map((r) => r.addr)).toEqual([0xa000, 0xd000]);
  });
});

describe('PriFunction: stop markers', () => {
  it('sends Last with no Read / Write for the PASID, takes no credit, expects no response', async () => {
    const { pri, sent } = make({ allocation: 1 });
    expect(await pri.stopMarker(9)).toBe(true);
    expect(sent).toEqual([{ rid: RID, pasid: 9, addr: 0, perm: 0, grpid: 0, last: true }]);
    expect(pri.outstanding).toBe(0);
    expect(pri.outstandingGroups).toBe(0);
    expect(pri.stats.stopMarkers).toBe(1);
    expect(pri.stats.requests).toBe(0);
    await expect(pri.stopMarker(-1)).rejects.toThrow(RangeError);
  });
});

describe('PriFunction: timeouts (real milliseconds)', () => {
  it('a request with no response within timeoutMs rejects; its group stays outstanding', async () => {
    const { pri, pages } = make({ timeoutMs: 50 });
    await expect(pri.request(pages(2))).rejects.toThrow(/no PRG Response for index 0/);
    expect(pri.outstanding).toBe(2);
    expect(pri.outstandingGroups).toBe(1);
  });

  it('a wait for credits longer than timeoutMs rejects and leaves the queue of waiters', async () => {
    const { pri, sent, pages, answer } = make({ allocation: 1, timeoutMs: 50 });
    void pri.request(pages(1, 0xa000)).catch(() => {});
    await expect(pri.request(pages(1, 0xb000))).rejects.toThrow(/no credits for 1 requests/);
    answer(0);
    await tick();
    expect(sent.map((r) => r.addr)).toEqual([0xa000]);
    expect(pri.outstanding).toBe(0);
  });
});

describe('PriFunction: transport failures', () => {
  it('a send that throws gives the group its credits and PRG index back (nobody can answer a group whose Last never went out) and rethrows', async () => {
    let fail = true;
    const sent: PageRequestInit[] = [];
    const pri = new PriFunction({
      rid: RID,
      allocation: 2,
      send: (req) => {
        if (fail) throw new Error('port closed');
        sent.push({ ...req });
        return true;
      },
    });
    await expect(pri.request([{ addr: 0x1000, perm: R }])).rejects.toThrow('port closed');
    expect(pri.outstanding).toBe(0);
    expect(pri.outstandingGroups).toBe(0);
    fail = false;
    const p = pri.request([
      { addr: 0x1000, perm: R },
      { addr: 0x2000, perm: R },
    ]);
    await tick();
    // Both credits were free again; index 0 was handed back but the cursor moved on to 1.
    expect(sent.map((r) => [r.grpid, r.last])).toEqual([
      [1, false],
      [1, true],
    ]);
    expect(pri.receive({ rid: RID, pasid: -1, grpid: 1, code: PageResponseCode.SUCCESS })).toBe(true);
    await expect(p).resolves.toBe(PageResponseCode.SUCCESS);
  });

  it('rejects a page address or perm that is not an integer in range before taking credits', async () => {
    const { pri, sent } = make();
    await expect(pri.request([{ addr: 0.5, perm: R }])).rejects.toThrow(RangeError);
    await expect(pri.request([{ addr: -4096, perm: R }])).rejects.toThrow(RangeError);
    await expect(pri.request([{ addr: 0x1000, perm: 0x10 | R }])).rejects.toThrow(RangeError);
    expect(sent).toEqual([]);
    expect(pri.outstanding).toBe(0);
  });
});
