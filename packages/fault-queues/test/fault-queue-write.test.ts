// FaultQueue write side (iommufd fault fd, eventq.c iommufd_fault_fops_write; vmm-and-faults.md
// §3.2 steps 12–13, §4.2): 8-byte {cookie, code} entries; count not a multiple of 8 → ESPIPE; a
// code other than SUCCESS 0 / INVALID 1 or a cookie not awaiting a response → EINVAL when it is
// the first entry, else the bytes consumed before it; a valid entry frees the cookie and sends the
// group's one response to the driver with that code.
import { isIommuError, PageResponseCode } from '@iommulab/driver-api';
import { describe, expect, it } from 'vitest';
import { encodePageResponses, FaultQueue, IopfQueue } from '../src/index.js';
import { device, FakeDriver, pageRequest, routeAllTo } from './fake-driver.js';

function setup() {
  const fd = new FakeDriver();
  const q = new IopfQueue(fd.driver);
  const fq = new FaultQueue();
  q.addDevice(device(0x70), routeAllTo(fq), 3);
  const group = (grpid: number, pasid = -1) => fd.push(pageRequest({ rid: 0x70, grpid, pasid, last: true }));
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

describe('FaultQueue.write: count', () => {
  it('a length that is not a multiple of 8 is ESPIPE and answers nothing', () => {
    const { fd, fq, group } = setup();
    group(1);
    fq.read(40);
    const bytes = new Uint8Array(12);
    new DataView(bytes.buffer).setUint32(0, 1, true);
    expect(errnoOf(() => fq.write(bytes))).toBe('ESPIPE');
    expect(errnoOf(() => fq.write(new Uint8Array(7)))).toBe('ESPIPE');
    expect(fd.sent).toEqual([]);
    expect(fq.awaitingResponse).toBe(1);
  });

  it('an empty write consumes 0 bytes', () => {
    const { fq } = setup();
    expect(fq.write(new Uint8Array(0))).toBe(0);
  });
});

describe('FaultQueue.write: valid responses', () => {
  it('answers the group of the cookie with the written code, once, addressed by its Last request', () => {
    const { fd, q, fq, group } = setup();
    group(4, 9);
    group(5);
    fq.read(80);
    expect(fq.write(encodePageResponses([{ cookie: 2, code: 0 }, { cookie: 1, code: 1 }]))).toBe(16);
    expect(fd.responses()).toEqual([
      { rid: 0x70, pasid: -1, grpid: 5, code: PageResponseCode.SUCCESS },
      { rid: 0x70, pasid: 9, grpid: 4, code: PageResponseCode.INVALID },
    ]);
    expect(fq.stats.responses).toBe(2);
    expect(fq.awaitingResponse).toBe(0);
    expect(q.outstanding).toBe(0);
  });

  it('respond(cookie, code) is one entry: undefined when accepted', () => {
    const { fd, fq, group } = setup();
    group(4);
    fq.read(40);
    expect(fq.respond(1, 0)).toBeUndefined();
    expect(fd.responses()).toEqual([{ rid: 0x70, pasid: -1, grpid: 4, code: 0 }]);
  });

  it('accepts a view at a byte offset inside a larger buffer', () => {
    const { fd, fq, group } = setup();
    group(4);
    fq.read(40);
    const backing = new Uint8Array(4 + 8);
    backing.set(encodePageResponses([{ cookie: 1, code: 1 }]), 4);
    expect(fq.write(backing.subarray(4))).toBe(8);
    expect(fd.responses()).toEqual([{ rid: 0x70, pasid: -1, grpid: 4, code: 1 }]);
  });
});

describe('FaultQueue.write: rejected entries', () => {
  it('a code other than 0 / 1 in the first entry is EINVAL; the group still awaits its response', () => {
    const { fd, fq, group } = setup();
    group(1);
    fq.read(40);
    for (const code of [2, 0xf, 0xffff_ffff]) expect(errnoOf(() => fq.write(encodePageResponses([{ cookie: 1, code }])))).toBe('EINVAL');
    expect(fq.respond(1, 2)).toMatch(/code 2/);
    expect(fd.sent).toEqual([]);
    expect(fq.awaitingResponse).toBe(1);
    expect(fq.stats.rejected).toBe(3);
  });

  it('a bad code after valid entries returns the bytes consumed so far; later entries are not processed', () => {
    const { fd, fq, group } = setup();
    group(1);
    group(2);
    group(3);
    fq.read(120);
    const n = fq.write(
      encodePageResponses([
        { cookie: 1, code: 0 },
        { cookie: 2, code: 2 },
        { cookie: 3, code: 0 },
      ]),
    );
    expect(n).toBe(8);
    expect(fd.responses()).toEqual([{ rid: 0x70, pasid: -1, grpid: 1, code: 0 }]);
    expect(fq.awaitingResponse).toBe(2);
    expect(fq.stats.rejected).toBe(1);
  });

  it('an unknown cookie in the first entry is EINVAL (0, never given, or a group not read yet)', () => {
    const { fd, fq, group } = setup();
    group(1);
    for (const cookie of [0, 1, 42]) expect(errnoOf(() => fq.write(encodePageResponses([{ cookie, code: 0 }])))).toBe('EINVAL');
    expect(fq.respond(7, 0)).toMatch(/cookie 7/);
    expect(fd.sent).toEqual([]);
    expect(fq.pendingRead).toBe(1);
  });

  it('an unknown cookie after valid entries returns the bytes consumed so far', () => {
    const { fd, fq, group } = setup();
    group(1);
    group(2);
    fq.read(80);
    expect(fq.write(encodePageResponses([{ cookie: 2, code: 1 }, { cookie: 9, code: 0 }, { cookie: 1, code: 0 }]))).toBe(8);
    expect(fd.responses()).toEqual([{ rid: 0x70, pasid: -1, grpid: 2, code: 1 }]);
  });

  it('a cookie already answered is unknown: the same cookie twice in one write stops at the second', () => {
    const { fd, fq, group } = setup();
    group(1);
    fq.read(40);
    expect(fq.write(encodePageResponses([{ cookie: 1, code: 0 }, { cookie: 1, code: 0 }]))).toBe(8);
    expect(errnoOf(() => fq.write(encodePageResponses([{ cookie: 1, code: 1 }])))).toBe('EINVAL');
    expect(fd.sent).toHaveLength(1);
  });
});
