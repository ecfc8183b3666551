import { threadId } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { createJobPool } from '../src/index.js';
import type { SquareConfig, SquareResult } from './fixtures/square-job.js';
import type { WorkloadJobConfig } from './fixtures/workload-job.js';

// Job modules are TypeScript: createJobPool runs .ts job files through tsx (`--import <tsx loader>`
// plus the @iommulab/source condition in the piscina workers' execArgv).
const SQUARE = new URL('./fixtures/square-job.ts', import.meta.url);
const WORKLOAD = new URL('./fixtures/workload-job.ts', import.meta.url);

describe('createJobPool', () => {
  it('runs N jobs on worker threads and returns results in order', async () => {
    const pool = createJobPool<SquareConfig, SquareResult>({ filename: SQUARE, maxThreads: 2 });
    try {
      expect(pool.threads).toBe(2);
      const configs = Array.from({ length: 12 }, (_, i) => ({ n: i * 3 }));
      const results = await pool.runAll(configs);
      expect(results.map((r) => [r.n, r.square])).toEqual(configs.map((c) => [c.n, c.n * c.n]));
      for (const r of results) expect(r.threadId).not.toBe(threadId);
      expect(await pool.run({ n: 7 })).toMatchObject({ n: 7, square: 49 });
    } finally {
      await pool.destroy();
    }
  });

  it("a job that throws rejects run() with the job's error", async () => {
    const pool = createJobPool<SquareConfig, SquareResult>({ filename: SQUARE.href, maxThreads: 1 });
    try {
      expect(pool.threads).toBe(1);
      await expect(pool.run({ n: -4 })).rejects.toThrow('negative input -4');
      await expect(pool.runAll([{ n: 1 }, { n: -2 }])).rejects.toThrow('negative input -2');
      expect(await pool.run({ n: 5 })).toMatchObject({ square: 25 }); // the pool survives
    } finally {
      await pool.destroy();
    }
  });

  it('runs benchmark jobs that build an in-thread instance (pure config -> result)', async () => {
    const pool = createJobPool<WorkloadJobConfig, { id: string; translations: number; faults: number; checksum: number; stats: Record<string, number> }>(
      { filename: WORKLOAD, maxThreads: 2 },
    );
    try {
      const configs: WorkloadJobConfig[] = [0, 1, 2].map((i) => ({
        id: `job${i}`,
        offset: 0x100000 * (i + 1),
        spec: { pattern: 'sequential', rid: i === 2 ? 5 : 1, iovaBase: 0, length: 4 * 4096, step: 4096, count: 8 },
      }));
      const results = await pool.runAll(configs);
      // pages 0..3 twice, plus the offset, summed: 2 * (0 + 1 + 2 + 3) * 4096 + 8 * offset
      expect(results).toEqual([
        {
          id: 'job0',
          translations: 8,
          faults: 0,
          checksum: 12 * 4096 + 8 * 0x100000,
          stats: { translations: 8, faults: 0, services: 0, offset: 0x100000, serviceCalls: 0, devicePortRequests: 0 },
        },
        {
          id: 'job1',
          translations: 8,
          faults: 0,
          checksum: 12 * 4096 + 8 * 0x200000,
          stats: { translations: 8, faults: 0, services: 0, offset: 0x200000, serviceCalls: 0, devicePortRequests: 0 },
        },
        {
          id: 'job2',
          translations: 8,
          faults: 8,
          checksum: 0,
          stats: { translations: 8, faults: 8, services: 0, offset: 0x300000, serviceCalls: 0, devicePortRequests: 0 },
        },
      ]);
    } finally {
      await pool.destroy();
    }
  });

  it('rejects a bad thread count', () => {
    expect(() => createJobPool({ filename: SQUARE, maxThreads: 0 })).toThrowError(/maxThreads/);
  });
});
