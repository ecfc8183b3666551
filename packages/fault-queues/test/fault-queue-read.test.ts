// FaultQueue read side (iommufd fault fd, drivers/iommu/iommufd/eventq.c; vmm-and-faults.md §3.2
// step 7, §4.2): count must be a multiple of 40 (ESPIPE); whole groups only, in FIFO order; a
// group that does not fit stays queued (the first one not fitting → 0 bytes); each group read gets
// the next cyclic cookie (1, 2, 3...; a freed cookie is not handed out again until the cursor
// wraps at 0xffffffff, unlike the kernel's lowest-free xa_alloc), carried by all its records;
// exact iommu_hwpt_pgfault bytes.
import { isIommuError, PageResponseCode, PgFaultPerm } from '@iommulab/driver-api';
import { describe, expect, it } from 'vitest';
import { decodePgfaults, encodePageResponses, FaultQueue, IopfQueue } from '../src/index.js';
import { device, FakeDriver, pageRequest, routeAllTo } from './fake-driver.js';

const DEV_ID = 0x77;

function setup(options: ConstructorParameters<typeof FaultQueue>[0] = {}) {
  const fd = new FakeDriver();
  const q = new IopfQueue(fd.driver);
  const fq = new FaultQueue(options);
  q.addDevice(device(0x60), routeAllTo(fq), DEV_ID);
  /** Sends a group of `n` requests (the last one Last) with PRG index `grpid`. */
  const group = (grpid: number, n = 1, pasid = -1) => {
    for (let i = 0; i < n; i++) fd.push(pageRequest({ rid: 0x60, grpid, pasid, addr: 0x1000 * (grpid * 16 + i), last: i === n - 1 }));
  };
  return { fd, q, fq, group };
}

function errnoOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isIommuError(e) ? e.errno : `not an IommuError: ${String(e)}`;
  }
  return undefined;
}

describe('FaultQueue.read: count', () => {
  it('a count that is not a multiple of 40 is ESPIPE, and nothing is consumed', () => {
    const { fq, group } = setup();
    group(1);
    expect(errnoOf(() => fq.read(39))).toBe('ESPIPE');
    expect(errnoOf(() => fq.read(41))).toBe('ESPIPE');
    expect(errnoOf(() => fq.read(8))).toBe('ESPIPE');
    expect(errnoOf(() => fq.readInto(new Uint8Array(50)))).toBe('ESPIPE');
    expect(fq.pendingRead).toBe(1);
    expect(fq.stats.read).toBe(0);
  });

  it('a count that is not a size is EINVAL', () => {
    const { fq } = setup();
    expect(errnoOf(() => fq.read(-40))).toBe('EINVAL');
    expect(errnoOf(() => fq.read(40.5))).toBe('EINVAL');
  });

  it('reading an empty queue returns 0 bytes', () => {
    const { fq } = setup();
    expect(fq.read(400).length).toBe(0);
    expect(fq.read(0).length).toBe(0);
    expect(fq.readable).toBe(false);
  });
});

describe('FaultQueue.read: whole groups', () => {
  it('returns 0 bytes when the first group does not fit, and keeps it queued', () => {
    const { fq, group } = setup();
    group(1, 2);
    expect(fq.read(40).length).toBe(0);
    expect(fq.pendingRead).toBe(1);
    expect(fq.awaitingResponse).toBe(0);
    expect(fq.read(80).length).toBe(80);
  });

  it('stops before a group that does not fit; it stays queued for the next read', () => {
    const { fq, group } = setup();
    group(1, 1);
    group(2, 3);
    group(3, 1);
    const first = decodePgfaults(fq.read(120));
    expect(first.map((r) => r.grpid)).toEqual([1]);
    expect(fq.pendingRead).toBe(2);
    const second = decodePgfaults(fq.read(160));
    expect(second.map((r) => r.grpid)).toEqual([2, 2, 2, 3]);
    expect(fq.pendingRead).toBe(0);
    expect(fq.awaitingResponse).toBe(3);
    expect(fq.stats.read).toBe(3);
  });

  it('delivers groups in FIFO order, with every record of a group carrying its cookie', () => {
    const { fq, group } = setup();
    group(7, 2);
    group(3, 1);
    group(5, 2);
    const recs = decodePgfaults(fq.read(40 * 10));
    expect(recs.map((r) => [r.grpid, r.cookie])).toEqual([
      [7, 1],
      [7, 1],
      [3, 2],
      [5, 3],
      [5, 3],
    ]);
  });

  it('writes the exact 40-byte iommu_hwpt_pgfault records', () => {
    const { fd, fq } = setup();
    fd.push(pageRequest({ rid: 0x60, grpid: 0x1a5, pasid: 0x12345, addr: 0x1_2345_6000, perm: PgFaultPerm.READ | PgFaultPerm.PRIV }));
    fd.push(pageRequest({ rid: 0x60, grpid: 0x1a5, pasid: 0x12345, addr: 0xdead_b000, perm: PgFaultPerm.WRITE | PgFaultPerm.EXEC, last: true }));
    const bytes = fq.read(80);
    const expected = new Uint8Array(80);
    const dv = new DataView(expected.buffer);
    // record 0: flags PASID_VALID only (not the last)
    dv.setUint32(0, 1, true);
    dv.setUint32(4, DEV_ID, true);
    dv.setUint32(8, 0x12345, true);
    dv.setUint32(12, 0x1a5, true);
    dv.setUint32(16, 0b1001, true);
    dv.setUint32(20, 0, true);
    dv.setUint32(24, 0x2345_6000, true);
    dv.setUint32(28, 0x1, true);
    dv.setUint32(32, 0, true);
    dv.setUint32(36, 1, true);
    // record 1: PASID_VALID | LAST_PAGE
    dv.setUint32(40, 3, true);
    dv.setUint32(44, DEV_ID, true);
    dv.setUint32(48, 0x12345, true);
    dv.setUint32(52, 0x1a5, true);
    dv.setUint32(56, 0b0110, true);
    dv.setUint32(60, 0, true);
    dv.setUint32(64, 0xdead_b000, true);
    dv.setUint32(68, 0, true);
    dv.setUint32(72, 0, true);
    dv.setUint32(76, 1, true);
    expect([...bytes]).toEqual([...expected]);
  });

  it('a request without PASID: flags without PASID_VALID and pasid 0', () => {
    const { fq, group } = setup();
    group(2, 2);
    const recs = decodePgfaults(fq.read(80));
    expect(recs.map((r) => [r.flags, r.pasid, r.devId, r.length])).toEqual([
      [0, 0, DEV_ID, 0],
      [2, 0, DEV_ID, 0],
    ]);
  });

  it('the dev_id defaults to the requester id', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const fq = new FaultQueue();
    q.addDevice(device(0x61), routeAllTo(fq));
    fd.push(pageRequest({ rid: 0x61, grpid: 0, last: true }));
    expect(decodePgfaults(fq.read(40))[0]!.devId).toBe(0x61);
  });

  it('sets the group’s cookie when it is read (0 before)', () => {
    const fd = new FakeDriver();
    const q = new IopfQueue(fd.driver);
    const groups: import('../src/index.js').IopfGroup[] = [];
    const fq = new FaultQueue();
    q.addDevice(device(0x62), () => ({
      handle: {},
      sink: {
        deliver: (g) => {
          groups.push(g);
          return fq.deliver(g);
        },
        withdraw: (g) => fq.withdraw(g),
      },
    }));
    fd.push(pageRequest({ rid: 0x62, grpid: 0, last: true }));
    expect(groups[0]!.cookie).toBe(0);
    fq.read(40);
    expect(groups[0]!.cookie).toBe(1);
  });
});

describe('FaultQueue: cookies', () => {
  it('gives cookies 1, 2, 3... in read order and does not hand out a freed cookie again (cyclic, not lowest free)', () => {
    const { fd, fq, group } = setup();
    for (let g = 0; g < 4; g++) group(g);
    expect(decodePgfaults(fq.read(160)).map((r) => r.cookie)).toEqual([1, 2, 3, 4]);
    expect(fq.write(encodePageResponses([{ cookie: 3, code: 0 }, { cookie: 1, code: 1 }]))).toBe(16);
    group(10);
    group(11);
    group(12);
    expect(decodePgfaults(fq.read(120)).map((r) => [r.grpid, r.cookie])).toEqual([
      [10, 5],
      [11, 6],
      [12, 7],
    ]);
    // the freed cookies 1 and 3 answer nothing now; the groups holding 2, 4, 5, 6, 7 still await
    expect(errnoOf(() => fq.write(encodePageResponses([{ cookie: 1, code: 0 }])))).toBe('EINVAL');
    expect(errnoOf(() => fq.write(encodePageResponses([{ cookie: 3, code: 0 }])))).toBe('EINVAL');
    expect(fd.sent).toHaveLength(2);
    expect(fq.awaitingResponse).toBe(5);
    expect(fq.write(encodePageResponses([5, 2, 7, 4, 6].map((cookie) => ({ cookie, code: 0 }))))).toBe(40);
    expect(fd.responses().map((r) => r.grpid)).toEqual([2, 0, 10, 1, 12, 3, 11]);
  });

  it('does not start again from 1 once every cookie is free', () => {
    const { fq, group } = setup();
    group(1);
    group(2);
    fq.read(80);
    fq.write(encodePageResponses([{ cookie: 2, code: 0 }, { cookie: 1, code: 0 }]));
    expect(fq.awaitingResponse).toBe(0);
    group(3);
    expect(decodePgfaults(fq.read(40))[0]!.cookie).toBe(3);
  });
});

describe('FaultQueue: long runs', () => {
  it('keeps FIFO order and cyclic cookies across thousands of groups read in chunks and mostly answered as they go (deliver list compaction)', () => {
    const { fd, fq, group } = setup();
    for (let i = 0; i < 3000; i++) group(i & 0x1ff);
    const grpids: number[] = [];
    const cookies: number[] = [];
    let chunks = 0;
    for (;;) {
      const recs = decodePgfaults(fq.read(40 * 7));
      if (recs.length === 0) break;
      chunks++;
      for (const r of recs) {
        grpids.push(r.grpid);
        cookies.push(r.cookie);
      }
      // answer every group of the chunk but its first: freed cookies are never handed out again
      const answers = recs.slice(1).map((r) => ({ cookie: r.cookie, code: 0 }));
      if (answers.length > 0) expect(fq.write(encodePageResponses(answers))).toBe(8 * answers.length);
    }
    expect(chunks).toBe(Math.ceil(3000 / 7));
    expect(grpids).toEqual(Array.from({ length: 3000 }, (_, i) => i & 0x1ff));
    expect(cookies).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    expect(fq.awaitingResponse).toBe(chunks);
    expect(fd.sent).toHaveLength(3000 - chunks);
  });

  it('auto-answers correctly after the deliver list was compacted', () => {
    const { fd, fq, group } = setup();
    for (let i = 0; i < 2100; i++) group(i & 0x1ff);
    fq.read(40 * 1100); // the head passes 1024 with more than half the list read: compaction
    expect(fq.pendingRead).toBe(1000);
    // PRG index 100: groups 100 and 612 (read), 1124 and 1636 (queued)
    expect(fq.autoRespond((g) => g.last.grpid === 100)).toBe(4);
    expect(fd.sent).toHaveLength(4);
    expect(fq.pendingRead).toBe(998);
    const rest = decodePgfaults(fq.read(40 * 1000)).map((r) => r.grpid);
    const want = Array.from({ length: 1000 }, (_, k) => (1100 + k) & 0x1ff).filter((g) => g !== 100);
    expect(rest).toEqual(want);
  });
});

describe('FaultQueue.readInto', () => {
  it('fills the caller’s buffer (at its byte offset) and returns the bytes written', () => {
    const { fq, group } = setup();
    group(1, 2);
    group(2, 2);
    const backing = new Uint8Array(8 + 120);
    backing.fill(0xee);
    const view = backing.subarray(8);
    expect(fq.readInto(view)).toBe(80);
    expect(backing.subarray(0, 8).every((b) => b === 0xee)).toBe(true);
    expect(decodePgfaults(view.subarray(0, 80)).map((r) => [r.grpid, r.cookie, r.flags])).toEqual([
      [1, 1, 0],
      [1, 1, 2],
    ]);
    expect(view.subarray(80).every((b) => b === 0xee)).toBe(true);
    expect(fq.pendingRead).toBe(1);
  });

  it('returns 0 when the first group does not fit the buffer', () => {
    const { fq, group } = setup();
    group(1, 3);
    expect(fq.readInto(new Uint8Array(80))).toBe(0);
    expect(fq.pendingRead).toBe(1);
  });
});

describe('FaultQueue: readiness', () => {
  it('calls the onReadable listener synchronously once per delivered group; undefined removes it', () => {
    const { fq, group } = setup();
    const calls: number[] = [];
    fq.onReadable(() => calls.push(fq.pendingRead));
    group(1, 3);
    expect(calls).toEqual([1]);
    group(2);
    expect(calls).toEqual([1, 2]);
    fq.onReadable(undefined);
    group(3);
    expect(calls).toEqual([1, 2]);
  });

  it('a throwing listener does not refuse the group', () => {
    const { fd, fq, group } = setup();
    fq.onReadable(() => {
      throw new Error('broken');
    });
    group(1);
    expect(fq.pendingRead).toBe(1);
    expect(fq.stats.delivered).toBe(1);
    expect(fd.sent).toEqual([]);
  });

  it('readable is true while groups wait to be read (poll EPOLLIN)', () => {
    const { fq, group } = setup();
    expect(fq.readable).toBe(false);
    group(1);
    expect(fq.readable).toBe(true);
    fq.read(40);
    expect(fq.readable).toBe(false);
    expect(fq.closed).toBe(false);
  });
});

describe('FaultQueue: capacity', () => {
  it('counts queued and read groups; answering one frees room', () => {
    const { fd, fq, group } = setup({ capacity: 2 });
    group(1);
    group(2);
    fq.read(40);
    group(3); // refused: 1 queued + 1 read
    expect(fd.responses()).toEqual([{ rid: 0x60, pasid: -1, grpid: 3, code: PageResponseCode.FAILURE }]);
    expect(fq.stats.refused).toBe(1);
    fq.write(encodePageResponses([{ cookie: 1, code: 0 }]));
    group(4);
    expect(fq.pendingRead).toBe(2);
    expect(fq.stats.delivered).toBe(3);
  });

  it('rejects a capacity that is not a positive integer', () => {
    expect(() => new FaultQueue({ capacity: 0 })).toThrow(RangeError);
    expect(() => new FaultQueue({ capacity: 2.5 })).toThrow(RangeError);
    expect(() => new FaultQueue({ capacity: Infinity })).not.toThrow();
  });
});
