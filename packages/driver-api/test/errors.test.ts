import { describe, expect, it } from 'vitest';
import { ERRNO, IommuError, isErrnoName, isIommuError } from '../src/index.js';

describe('IommuError carries the kernel errno', () => {
  it('names the errno in the message and maps it to the Linux number', () => {
    const e = new IommuError('EINVAL', 'iova 0x1001 is not aligned to 2048');
    expect(e.errno).toBe('EINVAL');
    expect(e.errnoValue).toBe(22);
    expect(e.message).toBe('EINVAL: iova 0x1001 is not aligned to 2048');
    expect(e).toBeInstanceOf(Error);
    expect(isIommuError(e)).toBe(true);
    expect(isIommuError(e, 'EINVAL')).toBe(true);
    expect(isIommuError(e, 'EBUSY')).toBe(false);
    expect(isIommuError(new Error('x'))).toBe(false);
  });

  it('uses the asm-generic errno numbers iommufd returns', () => {
    expect(ERRNO).toMatchObject({
      ENOENT: 2,
      E2BIG: 7,
      ENOMEM: 12,
      EFAULT: 14,
      EBUSY: 16,
      EEXIST: 17,
      ENODEV: 19,
      EINVAL: 22,
      ENOTTY: 25,
      ENOSPC: 28,
      EOVERFLOW: 75,
      EMSGSIZE: 90,
      EOPNOTSUPP: 95,
      EADDRINUSE: 98,
      ETIMEDOUT: 110,
    });
    expect(isErrnoName('EBUSY')).toBe(true);
    expect(isErrnoName('toString')).toBe(false);
  });
});
