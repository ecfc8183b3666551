import { describe, it, expect } from 'vitest';
import { ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC, NO_PASID, dmaRequest, dmaResult } from '../src/dma.js';
import { RuntimeError, InstanceError } from '../src/errors.js';
import * as runtime from '../src/index.js';

describe('dma wire types', () => {
  it('constants', () => {
    expect([ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC, NO_PASID]).toEqual([1, 2, 4, -1]);
  });

  it('dmaRequest defaults and overrides', () => {
    expect(dmaRequest()).toEqual({ rid: 0, pasid: -1, iova: 0, access: 1, privileged: false });
    expect(dmaRequest({ rid: 0x100, pasid: 5, iova: 2 ** 40, access: ACCESS_WRITE, privileged: true })).toEqual({
      rid: 0x100,
      pasid: 5,
      iova: 2 ** 40,
      access: 2,
      privileged: true,
    });
    expect(dmaRequest({ pasid: 0 }).pasid).toBe(0);
  });

  it('dmaResult is a fresh cleared object', () => {
    const a = dmaResult();
    expect(a).toEqual({ ok: false, pa: 0, fault: 0, faultDetail: 0 });
    expect(dmaResult()).not.toBe(a);
  });
});

describe('errors', () => {
  it('RuntimeError and InstanceError carry code and instance id', () => {
    const e = new RuntimeError('OUT_OF_RANGE', 'bad PA 0x1000');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('RuntimeError');
    expect(e.code).toBe('OUT_OF_RANGE');
    expect(e.message).toBe('bad PA 0x1000');
    const cause = new Error('boom');
    const i = new InstanceError('WORKER_DIED', 'smmu0', 'instance smmu0: worker died', { cause });
    expect(i).toBeInstanceOf(RuntimeError);
    expect(i.name).toBe('InstanceError');
    expect(i.instanceId).toBe('smmu0');
    expect(i.code).toBe('WORKER_DIED');
    expect(i.cause).toBe(cause);
  });

  it('the primitives are exported from the package index', () => {
    for (const name of [
      'RuntimeError', 'InstanceError', 'PhysMem', 'FRAME_SIZE', 'FRAME_SHIFT', 'DEFAULT_PHYS_MEM_BYTES',
      'qIdx', 'qWrap', 'qEmpty', 'qFull', 'qCount', 'qSpace', 'qInc', 'qValid', 'RecordRing', 'Doorbell',
      'waitUntil', 'RegisterFile', 'ACCESS_READ', 'ACCESS_WRITE', 'ACCESS_EXEC', 'NO_PASID', 'dmaRequest', 'dmaResult',
    ]) {
      expect(runtime, name).toHaveProperty(name);
    }
  });
});

describe('toDmaRequest: the device port accepts access names at the API edge', () => {
  it('returns a complete request unchanged (no allocation)', async () => {
    const { toDmaRequest, dmaRequest } = await import('../src/index.js');
    const r = dmaRequest({ rid: 3, iova: 0x1000 });
    expect(toDmaRequest(r)).toBe(r);
  });
  it('fills defaults and maps names to ACCESS_* bits', async () => {
    const { toDmaRequest, ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC, NO_PASID } = await import('../src/index.js');
    expect(toDmaRequest({ rid: 1, iova: 0x2000 })).toEqual({ rid: 1, pasid: NO_PASID, iova: 0x2000, access: ACCESS_READ, privileged: false });
    expect(toDmaRequest({ rid: 1, iova: 0, access: 'write' }).access).toBe(ACCESS_WRITE);
    expect(toDmaRequest({ rid: 1, iova: 0, access: ['read', 'exec'] }).access).toBe(ACCESS_READ | ACCESS_EXEC);
    expect(toDmaRequest({ rid: 1, iova: 0, access: 'fly' as never }).access).toBe(-1);
    expect(toDmaRequest({ rid: 1, iova: 0, pasid: 7, privileged: true }).pasid).toBe(7);
  });
});
