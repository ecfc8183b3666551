// vEVENTQ stream (vmm-and-faults.md §3.7, §4.4; iommufd driver.c iommufd_viommu_report_event and
// eventq.c iommufd_veventq_fops_read): every report takes the next sequence number (0..INT_MAX,
// then 0); with depth events queued a report is lost and a single LOST_EVENTS header (flags 1, no
// data) sits at the tail with the lost report's sequence number, replaced by later losses; reading
// frees slots; a read returns whole {8-byte header, data} records, the header alone needs 8 bytes.
import { describe, expect, it } from 'vitest';
import { IOMMU_VEVENTQ_FLAG_LOST_EVENTS, IOMMUFD_VEVENT_HEADER_BYTES, VeventQueue } from '../src/index.js';

/** A 32-byte SMMUv3-style event whose first byte is `id`. */
function evt(id: number, len = 32): Uint8Array {
  const b = new Uint8Array(len);
  b[0] = id;
  b[len - 1] = 0xa0 | (id & 0xf);
  return b;
}

/** The expected bytes of `{flags, sequence}` then `data`. */
function rec(flags: number, sequence: number, data: Uint8Array | null): number[] {
  const h = new Uint8Array(8);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, flags, true);
  dv.setUint32(4, sequence, true);
  return [...h, ...(data ?? [])];
}

describe('VeventQueue: sequence numbers and records', () => {
  it('numbers reports from 0 and reads {flags 0, sequence, data} records in order', () => {
    const q = new VeventQueue(4);
    q.report(evt(1));
    q.report(evt(2, 16));
    expect(q.numEvents).toBe(2);
    expect(q.sequence).toBe(2);
    expect([...q.read(1024)]).toEqual([...rec(0, 0, evt(1)), ...rec(0, 1, evt(2, 16))]);
    expect(q.numEvents).toBe(0);
    expect(q.readable).toBe(false);
    expect(q.stats).toEqual({ reported: 2, lost: 0, read: 2 });
    expect(IOMMUFD_VEVENT_HEADER_BYTES).toBe(8);
    expect(IOMMU_VEVENTQ_FLAG_LOST_EVENTS).toBe(1);
  });

  it('copies the reported data', () => {
    const q = new VeventQueue(1);
    const d = evt(5);
    q.report(d);
    d[0] = 0xff;
    expect(q.read(40)[8]).toBe(5);
  });

  it('wraps the sequence number at INT_MAX (0x7fffffff) to 0', () => {
    const q = new VeventQueue(4);
    q.sequence = 0x7fff_fffe;
    q.report(evt(1));
    q.report(evt(2));
    q.report(evt(3));
    expect([...q.read(120)]).toEqual([...rec(0, 0x7fff_fffe, evt(1)), ...rec(0, 0x7fff_ffff, evt(2)), ...rec(0, 0, evt(3))]);
    expect(q.sequence).toBe(1);
  });

  it('rejects an empty event and a depth outside 1..2^32-1', () => {
    const q = new VeventQueue(1);
    expect(() => q.report(new Uint8Array(0))).toThrow(RangeError);
    expect(q.sequence).toBe(0);
    expect(() => new VeventQueue(0)).toThrow(RangeError);
    expect(() => new VeventQueue(2 ** 32)).toThrow(RangeError);
    expect(() => new VeventQueue(1.5)).toThrow(RangeError);
  });
});

describe('VeventQueue: depth overflow and LOST_EVENTS', () => {
  it('a report beyond depth is lost: a header-only LOST_EVENTS record with its sequence number at the tail', () => {
    const q = new VeventQueue(2);
    q.report(evt(0));
    q.report(evt(1));
    q.report(evt(2));
    expect(q.numEvents).toBe(2);
    expect(q.list.length).toBe(3);
    expect([...q.read(1024)]).toEqual([...rec(0, 0, evt(0)), ...rec(0, 1, evt(1)), ...rec(1, 2, null)]);
    expect(q.stats).toEqual({ reported: 3, lost: 1, read: 2 });
  });

  it('later losses replace the header (one header, the latest sequence number; the gap shows the rest)', () => {
    const q = new VeventQueue(1);
    q.report(evt(0));
    q.report(evt(1));
    q.report(evt(2));
    q.report(evt(3));
    expect(q.list.length).toBe(2);
    expect([...q.read(1024)]).toEqual([...rec(0, 0, evt(0)), ...rec(1, 3, null)]);
    expect(q.stats.lost).toBe(3);
  });

  it('reading an event frees a slot; the next event replaces the tail header and the loss shows as a sequence gap', () => {
    const q = new VeventQueue(2);
    q.report(evt(0));
    q.report(evt(1));
    q.report(evt(2)); // lost
    expect([...q.read(40)]).toEqual(rec(0, 0, evt(0)));
    expect(q.numEvents).toBe(1);
    q.report(evt(3));
    expect(q.numEvents).toBe(2);
    expect([...q.read(1024)]).toEqual([...rec(0, 1, evt(1)), ...rec(0, 3, evt(3))]);
  });

  it('the header takes no slot: with the header queued the queue still holds depth events', () => {
    const q = new VeventQueue(1);
    q.report(evt(0));
    q.report(evt(1)); // lost
    expect(q.numEvents).toBe(1);
    expect([...q.read(40)]).toEqual(rec(0, 0, evt(0)));
    // only the header is left
    expect(q.readable).toBe(true);
    expect(q.numEvents).toBe(0);
    expect([...q.read(8)]).toEqual(rec(1, 1, null));
    expect(q.readable).toBe(false);
    q.report(evt(2));
    expect([...q.read(40)]).toEqual(rec(0, 2, evt(2)));
  });
});

describe('VeventQueue.read: whole records only', () => {
  it('returns 0 bytes when the first record does not fit and keeps it', () => {
    const q = new VeventQueue(2);
    q.report(evt(0));
    expect(q.read(39).length).toBe(0);
    expect(q.read(0).length).toBe(0);
    expect(q.numEvents).toBe(1);
    expect(q.read(40).length).toBe(40);
  });

  it('stops before a record that does not fit', () => {
    const q = new VeventQueue(3);
    q.report(evt(0));
    q.report(evt(1));
    q.report(evt(2));
    expect([...q.read(40 * 2 + 39)]).toEqual([...rec(0, 0, evt(0)), ...rec(0, 1, evt(1))]);
    expect(q.numEvents).toBe(1);
  });

  it('a header-only LOST_EVENTS record needs 8 bytes', () => {
    const q = new VeventQueue(1);
    q.report(evt(0));
    q.report(evt(1));
    expect([...q.read(40 + 7)]).toEqual(rec(0, 0, evt(0)));
    expect(q.read(7).length).toBe(0);
    expect([...q.read(8)]).toEqual(rec(1, 1, null));
  });

  it('rejects a count that is not a non-negative integer', () => {
    const q = new VeventQueue(1);
    expect(() => q.read(-1)).toThrow(RangeError);
    expect(() => q.read(1.5)).toThrow(RangeError);
  });
});

describe('VeventQueue.clear', () => {
  it('frees every record (the header too); sequence numbers go on', () => {
    const q = new VeventQueue(1);
    q.report(evt(0));
    q.report(evt(1));
    q.clear();
    expect(q.numEvents).toBe(0);
    expect(q.read(1024).length).toBe(0);
    q.report(evt(2));
    expect([...q.read(40)]).toEqual(rec(0, 2, evt(2)));
  });
});
