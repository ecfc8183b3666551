import { ConformanceFailure, conformanceCases, runConformanceCase } from '@iommulab/driver-api/conformance';
import { describe, expect, it } from 'vitest';

// The suite must be able to fail: each deliberately broken backend is caught by the case that
// checks the broken behaviour, with the message that names it.
const backend = new URL('./fixtures/broken-backends.ts', import.meta.url).href;
const byName = (prefix: string) => {
  const c = conformanceCases.find((k) => k.name.startsWith(prefix));
  if (c === undefined) throw new Error(`no case ${prefix}`);
  return c;
};

describe('the conformance suite catches broken backends', () => {
  it('an iotlbSync that does not invalidate: stale translation after unmap + sync', async () => {
    const c = byName('unmap + iotlbSync');
    const run = runConformanceCase(c, { backend, options: { flaw: 'no-invalidate' } }, 'in-thread');
    await expect(run).rejects.toBeInstanceOf(ConformanceFailure);
    await expect(runConformanceCase(c, { backend, options: { flaw: 'no-invalidate' } }, 'in-thread')).rejects.toThrow(
      'page 1 still translates after unmap + sync',
    );
  });

  it('permissions ignored: the write to a read-only page translates', async () => {
    const c = byName('permissions are enforced');
    await expect(runConformanceCase(c, { backend, options: { flaw: 'ignore-prot' } }, 'worker')).rejects.toThrow(
      'write of a read-only page translated',
    );
  });

  it('domains sharing one page table: isolation fails', async () => {
    const c = byName('two domains are isolated');
    // B's map lands in A's table, where the page is already mapped.
    await expect(runConformanceCase(c, { backend, options: { flaw: 'no-isolation' } }, 'in-thread')).rejects.toThrow(
      /EEXIST/,
    );
  });

  it('detach that does nothing: DMA still translates while blocked', async () => {
    const c = byName('detaching (attach to blocked)');
    await expect(runConformanceCase(c, { backend, options: { flaw: 'detach-noop' } }, 'in-thread')).rejects.toThrow(
      'DMA translated while the device was blocked',
    );
  });

  it('the property test finds the missing invalidation too (and shrinks it)', async () => {
    const c = byName('random map/unmap/translate');
    await expect(
      runConformanceCase(c, { backend, options: { flaw: 'no-invalidate' }, numRuns: 50 }, 'in-thread'),
    ).rejects.toThrow(/Property failed/);
  });

  it('the unbroken mock passes the same cases', async () => {
    for (const prefix of ['unmap + iotlbSync', 'permissions are enforced', 'two domains are isolated']) {
      await expect(runConformanceCase(byName(prefix), { backend, options: { flaw: 'none' } }, 'in-thread')).resolves.toBe(
        'passed',
      );
    }
  });
});
