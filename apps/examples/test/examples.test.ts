import { describe, expect, it } from 'vitest';

// Every README example runs, and prints what its README says it prints.
async function run(mod: { main: (log: (...a: unknown[]) => void) => Promise<void> }): Promise<string[]> {
  const lines: string[] = [];
  await mod.main((...a) => lines.push(a.map(String).join(' ')));
  return lines;
}

describe('README examples', () => {
  it('@iommulab/runtime', async () => {
    expect(await run(await import('../src/runtime-quick-start.js'))).toEqual(['123456789abc', '2', 'mock 0']);
  });

  it('@iommulab/driver-api', async () => {
    expect(await run(await import('../src/driver-api-quick-start.js'))).toEqual(['true true', 'false']);
  });

  it('@iommulab/hw-mock', async () => {
    expect(await run(await import('../src/hw-mock-quick-start.js'))).toEqual([
      '8 true',
      'true',
      'true',
      '{"translations":4,"hits":1,"misses":3,"walks":3,"faults":2}',
    ]);
  });

  it('@iommulab/hw-smmuv3', async () => {
    expect(await run(await import('../src/hw-smmuv3-quick-start.js'))).toEqual([
      'gnip 4096',
      'true',
      'true 10',
      'event 10 40001000',
      '{"translations":4,"tlbHits":1,"walks":3,"faults":1,"events":1}',
    ]);
  });
});

describe('README examples (core)', () => {
  it('@iommulab/core-ioasid: a VMM\'s first steps', async () => {
    expect(await run(await import('../src/core-ioasid-first-steps.js'))).toEqual(['1 2 3', 'true hello', 'false']);
  });
});

describe('README examples (faults)', () => {
  it('@iommulab/fault-queues: a fault handler', async () => {
    expect(await run(await import('../src/fault-queues-quick-start.js'))).toEqual([
      '1 0 1 0 40000000',
      '1 0 1 2 40001000',
      'false true 0',
      'true {"requests":2,"groups":1,"success":1}',
    ]);
  });
});
