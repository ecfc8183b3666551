import { describe, expect, it } from 'vitest';
import { API_VERSION, SUPPORTED_API_VERSIONS, defineBackend, loadBackend } from '../src/index.js';

const caps = {
  pageSizes: [4096],
  aperture: { start: 0, last: 0xffff_ffff },
  ridBits: 16,
  pasidBits: 0,
  nesting: false,
  dirtyTracking: false,
  pri: false,
  stall: false,
  ats: false,
  rangeInvalidation: false,
  hwInfoType: 0,
  nestedDataTypes: [],
};

describe('defineBackend / loadBackend', () => {
  it('the contract is version 1 and hosts accept exactly it', () => {
    expect(API_VERSION).toBe(1);
    expect(SUPPORTED_API_VERSIONS).toEqual([1]);
  });

  it('defineBackend returns the descriptor unchanged when it is complete', () => {
    const d = {
      apiVersion: API_VERSION,
      id: 'x',
      registerFileBytes: 4096,
      capabilities: caps,
      createHardware: () => {
        throw new Error('unused');
      },
      createDriver: async () => {
        throw new Error('unused');
      },
    };
    expect(defineBackend(d)).toBe(d);
  });

  it('defineBackend names every missing piece', () => {
    expect(() => defineBackend({ apiVersion: 1, id: 'broken', registerFileBytes: 12, capabilities: caps } as never)).toThrow(
      'defineBackend(broken): createHardware must be a function; createDriver must be a function; registerFileBytes must be a positive multiple of 8',
    );
  });

  it('loadBackend refuses an unknown contract version and names both versions', async () => {
    const url = new URL('./fixtures/future-backend.ts', import.meta.url).href;
    await expect(loadBackend(url)).rejects.toThrow(/7/);
    await expect(loadBackend(url)).rejects.toThrow(/\b1\b/);
    await expect(loadBackend(url)).rejects.toMatchObject({ code: 'API_VERSION' });
  });

  it('loadBackend refuses a module without a backend', async () => {
    const url = new URL('./fixtures/not-a-backend.ts', import.meta.url).href;
    await expect(loadBackend(url)).rejects.toMatchObject({ code: 'BAD_BACKEND' });
  });
});
