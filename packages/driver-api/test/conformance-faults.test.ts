import { describe, expect, it } from 'vitest';
import {
  ConformanceFailure,
  conformanceCases,
  runConformance,
  runConformanceCase,
  type ConformanceCase,
} from '../src/conformance/index.js';
import { MOCK_CAPABILITIES } from '../../hw-mock/src/index.js';

// The fault cases (run for PRI-capable backends) must be able to fail: a driver that drops page
// requests (never hands a PRI record to its onFault subscribers) is caught by each of them, the
// same mock without the flaw passes them, and a backend without PRI does not get them.
const backend = new URL('./fixtures/drops-page-requests.ts', import.meta.url).href;
const faultCases = conformanceCases.filter((c) => c.name.startsWith('PRI: '));
const byName = (prefix: string): ConformanceCase => {
  const c = conformanceCases.find((k) => k.name.startsWith(prefix));
  if (c === undefined) throw new Error(`no case ${prefix}`);
  return c;
};
const broken = { backend, options: { flaw: 'drop-page-requests' } };
const unbroken = { backend, options: { flaw: 'none' } };

describe('the fault cases of the conformance suite', () => {
  it('exist, and apply only to backends with PRI', () => {
    expect(faultCases.map((c) => c.name)).toEqual([
      'PRI: a page request from the device port reaches onFault subscribers after drainFaults, field for field and in order',
      'PRI: pageResponse answers a group; a bad code or group index is EINVAL, a released or unknown device ENODEV',
      'PRI: a subscriber that declines page requests (returns false) does not stop the drain or later deliveries',
      "PRI: onFault's unsubscribe stops delivery to that subscriber only",
    ]);
    for (const c of faultCases) {
      expect(c.needs?.({ ...MOCK_CAPABILITIES, pri: true })).toBe(true);
      expect(c.needs?.({ ...MOCK_CAPABILITIES, pri: false })).toBe(false);
    }
  });

  it.each(['in-thread', 'worker'] as const)('catch a driver that drops page requests (%s)', async (mode) => {
    const c = byName('PRI: a page request from the device port');
    const run = runConformanceCase(c, broken, mode);
    await expect(run).rejects.toBeInstanceOf(ConformanceFailure);
    await expect(run).rejects.toThrow('faults delivered for one Last page request: expected 1 (0x1), got 0 (0x0)');
  });

  it('every fault case fails on that driver, naming the missing delivery', async () => {
    const messages: string[] = [];
    for (const c of faultCases) {
      const err = await runConformanceCase(c, broken, 'in-thread').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, c.name).toBeInstanceOf(ConformanceFailure);
      messages.push((err as Error).message);
    }
    expect(messages).toEqual([
      'faults delivered for one Last page request: expected 1 (0x1), got 0 (0x0)',
      'before the response: page requests delivered: expected 1 (0x1), got 0 (0x0)',
      'declined batch: page requests delivered: expected 3 (0x3), got 0 (0x0)',
      'subscriber A, both subscribed: page requests delivered: expected 1 (0x1), got 0 (0x0)',
    ]);
  });

  it.each(['in-thread', 'worker'] as const)('the same mock without the flaw passes them (%s)', async (mode) => {
    for (const c of faultCases) await expect(runConformanceCase(c, unbroken, mode), c.name).resolves.toBe('passed');
  });

  it('a backend without PRI does not get them: not applicable when probed, not registered by capabilities', async () => {
    const noPri = { backend, options: { flaw: 'drop-page-requests', pri: false } };
    for (const c of faultCases) await expect(runConformanceCase(c, noPri, 'in-thread'), c.name).resolves.toBe('not-applicable');

    const registered = (pri: boolean): string[] => {
      const names: string[] = [];
      runConformance(
        { describe: (_name, fn) => fn(), it: (name) => void names.push(name) },
        { backend, capabilities: { ...MOCK_CAPABILITIES, pri }, modes: ['in-thread'] },
      );
      return names;
    };
    const faultNames = faultCases.map((c) => c.name);
    expect(registered(true)).toEqual(expect.arrayContaining(faultNames));
    expect(registered(false).filter((n) => faultNames.includes(n))).toEqual([]);
    expect(registered(false)).toHaveLength(registered(true).length - faultCases.length);
  });
});
