// FaultQueue automatic responses (vmm-and-faults.md §3.4, eventq.c iommufd_auto_response_faults
// and iommufd_fault_destroy): when an attachment goes away every group of that attach handle,
// queued or read and unanswered, is answered INVALID and forgotten (a late write of its cookie is
// EINVAL); destroying the fault object answers everything INVALID and refuses later groups.
import { isIommuError, PageResponseCode } from '@iommulab/driver-api';
import { describe, expect, it } from 'vitest';
import { decodePgfaults, encodePageResponses, FaultQueue, IopfQueue, type FaultHandler } from '../src/index.js';
import { device, FakeDriver, pageRequest } from './fake-driver.js';

function setup() {
  const fd = new FakeDriver();
  const q = new IopfQueue(fd.driver);
  const fq = new FaultQueue();
  const hA = { attach: 'A' };
  const hB = { attach: 'B' };
  // PASID 1 is attached through handle A, everything else through handle B; one fault queue.
  q.addDevice(device(0x80), (pasid): FaultHandler => ({ handle: pasid === 1 ? hA : hB, sink: fq }));
  const group = (grpid: number, pasid: number) => fd.push(pageRequest({ rid: 0x80, grpid, pasid, last: true }));
  return { fd, q, fq, hA, hB, group };
}

function errnoOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isIommuError(e) ? e.errno : `not an IommuError: ${String(e)}`;
  }
  return undefined;
}

describe('FaultQueue.autoRespond (detach / replace)', () => {
  it('answers INVALID the queued and the read groups of the matching attachment only', () => {
    const { fd, fq, hA, group } = setup();
    group(1, 1); // A, will be read
    group(2, 2); // B, will be read
    fq.read(80);
    group(3, 1); // A, queued
    group(4, 2); // B, queued
    expect(fq.autoRespond((g) => g.handle === hA)).toBe(2);
    expect(fd.responses()).toEqual([
      { rid: 0x80, pasid: 1, grpid: 3, code: PageResponseCode.INVALID },
      { rid: 0x80, pasid: 1, grpid: 1, code: PageResponseCode.INVALID },
    ]);
    expect(fq.stats.autoResponses).toBe(2);
    expect(fq.pendingRead).toBe(1);
    expect(fq.awaitingResponse).toBe(1);
    // B's groups are untouched: the queued one reads next with the next cyclic cookie (3; the
    // auto-answered group's cookie 1 is not handed out again)
    expect(decodePgfaults(fq.read(40)).map((r) => [r.grpid, r.cookie])).toEqual([[4, 3]]);
    expect(errnoOf(() => fq.write(encodePageResponses([{ cookie: 1, code: 0 }])))).toBe('EINVAL');
    expect(fd.responses()).toHaveLength(2);
    expect(fq.write(encodePageResponses([{ cookie: 2, code: 0 }]))).toBe(8);
    expect(fd.responses()[2]).toEqual({ rid: 0x80, pasid: 2, grpid: 2, code: PageResponseCode.SUCCESS });
  });

  it('a late write with the cookie of an auto-answered group is EINVAL and sends nothing', () => {
    const { fd, fq, hA, group } = setup();
    group(1, 1);
    fq.read(40);
    fq.autoRespond((g) => g.handle === hA);
    expect(errnoOf(() => fq.write(encodePageResponses([{ cookie: 1, code: 0 }])))).toBe('EINVAL');
    expect(fd.sent).toHaveLength(1);
  });

  it('a late write with the cookie of an auto-answered group, after a newer group reusing its PRG index was read, is EINVAL and never answers the newer group (cyclic cookies)', () => {
    const { fd, fq, hA, group } = setup();
    group(1, 1);
    expect(decodePgfaults(fq.read(40)).map((r) => [r.grpid, r.cookie])).toEqual([[1, 1]]);
    expect(fq.autoRespond((g) => g.handle === hA)).toBe(1);
    // the device reuses PRG index 1 once its INVALID arrived; the newer group gets cookie 2, not 1
    group(1, 1);
    expect(decodePgfaults(fq.read(40)).map((r) => [r.grpid, r.cookie])).toEqual([[1, 2]]);
    expect(errnoOf(() => fq.write(encodePageResponses([{ cookie: 1, code: 0 }])))).toBe('EINVAL');
    expect(fd.responses()).toEqual([{ rid: 0x80, pasid: 1, grpid: 1, code: PageResponseCode.INVALID }]);
    expect(fq.awaitingResponse).toBe(1);
    expect(fq.write(encodePageResponses([{ cookie: 2, code: 0 }]))).toBe(8);
    expect(fd.responses()).toEqual([
      { rid: 0x80, pasid: 1, grpid: 1, code: PageResponseCode.INVALID },
      { rid: 0x80, pasid: 1, grpid: 1, code: PageResponseCode.SUCCESS },
    ]);
    expect(fq.awaitingResponse).toBe(0);
  });

  it('matching nothing answers nothing', () => {
    const { fd, fq, group } = setup();
    group(1, 1);
    expect(fq.autoRespond(() => false)).toBe(0);
    expect(fd.sent).toEqual([]);
    expect(fq.pendingRead).toBe(1);
  });

  it('keeps the order of the groups left in the deliver list', () => {
    const { fq, hA, group } = setup();
    group(1, 2);
    group(2, 1);
    group(3, 2);
    group(4, 1);
    group(5, 2);
    fq.autoRespond((g) => g.handle === hA);
    expect(decodePgfaults(fq.read(400)).map((r) => r.grpid)).toEqual([1, 3, 5]);
  });
});

describe('FaultQueue.close (fault object destroyed)', () => {
  it('answers INVALID every queued and every read-but-unanswered group, and returns how many', () => {
    const { fd, q, fq, group } = setup();
    group(1, 1);
    group(2, 2);
    fq.read(40); // group 1 (cookie 1)
    fq.write(encodePageResponses([{ cookie: 1, code: 0 }])); // answered: not answered again
    fq.read(40); // group 2 (cookie 1 again)
    group(3, 2);
    group(4, 1);
    expect(fq.close()).toBe(3);
    expect(fq.closed).toBe(true);
    expect(fd.responses()).toEqual([
      { rid: 0x80, pasid: 1, grpid: 1, code: PageResponseCode.SUCCESS },
      { rid: 0x80, pasid: 2, grpid: 3, code: PageResponseCode.INVALID },
      { rid: 0x80, pasid: 1, grpid: 4, code: PageResponseCode.INVALID },
      { rid: 0x80, pasid: 2, grpid: 2, code: PageResponseCode.INVALID },
    ]);
    expect(fq.stats.autoResponses).toBe(3);
    expect(fq.pendingRead).toBe(0);
    expect(fq.awaitingResponse).toBe(0);
    expect(q.outstanding).toBe(0);
  });

  it('refuses groups delivered after it (answered Response Failure) and a second close does nothing', () => {
    const { fd, q, fq, group } = setup();
    fq.close();
    group(7, 2);
    expect(fd.responses()).toEqual([{ rid: 0x80, pasid: 2, grpid: 7, code: PageResponseCode.FAILURE }]);
    expect(q.stats.refused).toBe(1);
    expect(fq.close()).toBe(0);
    expect(fd.sent).toHaveLength(1);
  });

  it('a late write with a cookie of a group answered by close is EINVAL', () => {
    const { fd, fq, group } = setup();
    group(1, 1);
    fq.read(40);
    fq.close();
    expect(errnoOf(() => fq.write(encodePageResponses([{ cookie: 1, code: 0 }])))).toBe('EINVAL');
    expect(fd.sent).toHaveLength(1);
  });

  it('a group delivered while close is answering (a re-entrant drain) is refused, not left unanswered', () => {
    const { fd, q, fq, group } = setup();
    group(1, 1);
    let pushed = false;
    fd.onResponse = () => {
      if (pushed) return;
      pushed = true;
      group(9, 2);
    };
    fq.close();
    expect(fd.responses()).toEqual([
      { rid: 0x80, pasid: 1, grpid: 1, code: PageResponseCode.INVALID },
      { rid: 0x80, pasid: 2, grpid: 9, code: PageResponseCode.FAILURE },
    ]);
    expect(q.outstanding).toBe(0);
    expect(fq.pendingRead).toBe(0);
  });
});
