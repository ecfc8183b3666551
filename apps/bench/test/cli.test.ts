import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { main } from '../src/main.js';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = new PassThrough() as unknown as NodeJS.WriteStream;
  const stderr = new PassThrough();
  stdout.on('data', (d: Buffer) => out.push(d.toString()));
  stderr.on('data', (d: Buffer) => err.push(d.toString()));
  return { stdout, stderr, out, err };
}

describe('main', () => {
  it('prints usage for --help and exits 0', async () => {
    const s = io();
    expect(await main(['--help'], s)).toBe(0);
    expect(s.out.join('')).toMatch(/^Usage: iommulab-bench \[options\]/);
  });

  it('exits 2 with a clear message for a bad value', async () => {
    const s = io();
    expect(await main(['--instances', 'many'], s)).toBe(2);
    expect(s.err.join('')).toBe(
      "iommulab-bench: --instances must be a whole number, got 'many'\nRun 'iommulab-bench --help' for usage.\n",
    );
  });

  it('exits 2 naming the allowed sizes for a --page-size the backend does not have', async () => {
    const s = io();
    expect(await main(['--page-size', '4k'], s)).toBe(2);
    expect(s.err.join('')).toBe(
      'iommulab-bench: --page-size 4096 (4 KiB) is not a page size of backend mock; allowed: 2048 (2 KiB), 1048576 (1 MiB), smallest, largest\n',
    );
    expect(s.out.join('')).toBe('');
  });

  it('exits 2 for a bad --iotlb-entries', async () => {
    const s = io();
    expect(await main(['--iotlb-entries', '3000'], s)).toBe(2);
    expect(s.err.join('')).toMatch(/^iommulab-bench: --iotlb-entries must be a power of two between 1 and 1,048,576, got '3000'\n/);
  });

  it('exits 2 for a backend that cannot be found', async () => {
    const s = io();
    expect(await main(['--backend', 'no-such-backend-xyz'], s)).toBe(2);
    expect(s.err.join('')).toMatch(
      /^iommulab-bench: --backend: backend 'no-such-backend-xyz' not found; tried '@iommulab\/hw-no-such-backend-xyz', 'iommulab-backend-no-such-backend-xyz', 'no-such-backend-xyz'/,
    );
  });
});
