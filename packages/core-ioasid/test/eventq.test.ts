/**
 * VEVENTQ queueing rules (drivers/iommu/iommufd/eventq.c, driver.c iommufd_viommu_report_event,
 * iommufd_vevent_handler): depth, sequence numbers counting every report, the single
 * LOST_EVENTS header at the tail and its replacement, whole-event reads.
 */
import { describe, expect, it } from 'vitest';
import { IommufdVeventq } from '../src/eventq.js';
import { IOMMU_VEVENTQ_FLAG_LOST_EVENTS } from '../src/uapi/constants.js';
import type { IommufdViommu } from '../src/viommu.js';

function queue(depth: number): IommufdVeventq {
  const viommu = { veventqs: [] as IommufdVeventq[], users: 1 } as unknown as IommufdViommu;
  const q = new IommufdVeventq(viommu, 0xbeefbeef, depth);
  q.link();
  return q;
}

function ev(id: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, id, true);
  return b;
}

/** Decodes `{u32 flags; u32 sequence; [u32 data]}` records (data only without LOST_EVENTS). */
function decode(b: Uint8Array): { flags: number; seq: number; data?: number }[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = [];
  for (let at = 0; at < b.length; ) {
    const flags = dv.getUint32(at, true);
    const seq = dv.getUint32(at + 4, true);
    at += 8;
    if (flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) out.push({ flags, seq });
    else {
      out.push({ flags, seq, data: dv.getUint32(at, true) });
      at += 4;
    }
  }
  return out;
}

describe('VEVENTQ', () => {
  it('overflow: one LOST_EVENTS header at the tail, replaced by the next event that fits', () => {
    const q = queue(2);
    q.report(ev(10));
    q.report(ev(11));
    q.report(ev(12)); // lost: header with sequence 2
    q.report(ev(13)); // lost again: the header moves to sequence 3
    expect(q.list.map((e) => [e.flags, e.sequence])).toEqual([
      [0, 0],
      [0, 1],
      [IOMMU_VEVENTQ_FLAG_LOST_EVENTS, 3],
    ]);
    // One event read frees a slot; the next report replaces the header (a sequence gap).
    expect(decode(q.readEvents(12))).toEqual([{ flags: 0, seq: 0, data: 10 }]);
    q.report(ev(14));
    expect(decode(q.readEvents(1000))).toEqual([
      { flags: 0, seq: 1, data: 11 },
      { flags: 0, seq: 4, data: 14 },
    ]);
    expect(q.numEvents).toBe(0);
  });

  it('reads copy whole events; a LOST_EVENTS header needs only 8 bytes and takes no slot', () => {
    const q = queue(1);
    q.report(ev(1));
    q.report(ev(2)); // lost
    expect(q.readEvents(7).length).toBe(0);
    expect(q.readEvents(11).length).toBe(0); // the first event needs 12
    expect(decode(q.readEvents(19))).toEqual([{ flags: 0, seq: 0, data: 1 }]); // the header does not fit the 7 left
    expect(decode(q.readEvents(8))).toEqual([{ flags: IOMMU_VEVENTQ_FLAG_LOST_EVENTS, seq: 1 }]);
    expect(q.readEvents(100).length).toBe(0);
    q.report(ev(3));
    expect(decode(q.readEvents(100))).toEqual([{ flags: 0, seq: 2, data: 3 }]);
  });

  it('sequence numbers wrap from INT_MAX to 0', () => {
    const q = queue(4);
    q.sequence = 0x7fff_fffe;
    for (const i of [1, 2, 3]) q.report(ev(i));
    expect(decode(q.readEvents(100)).map((e) => e.seq)).toEqual([0x7fff_fffe, 0x7fff_ffff, 0]);
  });

  it('an empty report is refused; destroy leaves the vIOMMU', () => {
    const q = queue(1);
    expect(() => q.report(new Uint8Array(0))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(q.viommu.users).toBe(2);
    q.destroy();
    expect(q.viommu.users).toBe(1);
    expect(q.viommu.veventqs).toEqual([]);
  });
});
