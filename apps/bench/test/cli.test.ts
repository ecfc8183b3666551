import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { main } from '../src/main.js';
import type { BenchReport, ComparisonReport } from '../src/report-json.js';

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

  it('checks --page-size against every backend of the list', async () => {
    const s = io();
    expect(await main(['--page-size', '2k'], s)).toBe(2);
    expect(s.err.join('')).toBe(
      'iommulab-bench: --page-size 2048 (2 KiB) is not a page size of backend arm-smmuv3; allowed: 4096 (4 KiB), 2097152 (2 MiB), 1073741824 (1 GiB), smallest, largest\n',
    );
    const t = io();
    expect(await main(['--backend', 'smmuv3', '--page-size', '1g'], t)).toBe(2);
    expect(t.err.join('')).toBe(
      'iommulab-bench: --page-size 1073741824 (1 GiB) is larger than the 32 MiB mapped per instance (--map-mb)\n',
    );
  });

  it('exits 2 when the mappings do not fit in PhysMem (1 GiB pages need 1 GiB alignment)', async () => {
    const s = io();
    const argv = ['--backend', 'smmuv3', '--page-size', 'largest', '--map-mb', '1024', '--instances', '2'];
    expect(await main(argv, s)).toBe(2);
    expect(s.err.join('')).toBe(
      'iommulab-bench: backend arm-smmuv3: 2 instances x 1024 MiB need 4108 MiB of PhysMem; the maximum is 4096 MiB\n',
    );
  });

  it('runs every backend of the list and compares them (tables and JSON)', async () => {
    const s = io();
    const file = join(mkdtempSync(join(tmpdir(), 'bench-cli-')), 'r.json');
    const argv = ['--short', '--backend', 'mock,smmuv3', '--instances', '1', '--translations', '2k', '--map-mb', '1', '--faults', '200'];
    expect(await main([...argv, '--mode', 'in-thread', '--json', file], s)).toBe(0);
    const out = s.out.join('');
    expect(s.err.join('')).toBe('');
    expect(out).toContain('iommulab-bench: mock 0.1.0, 1 instance (in-thread, host runner), 1 MiB mapped each in 2 KiB pages');
    expect(out).toContain('iommulab-bench: arm-smmuv3 0.1.0, 1 instance (in-thread, host runner), 1 MiB mapped each in 4 KiB pages');
    expect(out).toContain('Caches, walks, commands and events (arm-smmuv3, all instances)');
    expect(out).toMatch(/\niommulab-bench: 2 backends \(mock, arm-smmuv3\), 1 instance each \(in-thread, host runner\), 1 MiB mapped each, 2,000 translations per pattern, /);
    expect(out).toMatch(/\nbackend +IO page +IOTLB hit +walks +steps\/walk +sequential\/s +random\/s +strided\/s +trans\/s +vs first /);
    expect(out).toMatch(/\nmock +2 KiB +/);
    expect(out).toMatch(/\narm-smmuv3 +4 KiB +/);
    expect(out).not.toContain('warning:');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as ComparisonReport;
    expect(doc).toMatchObject({ schemaVersion: 1, kind: 'comparison', backends: ['mock', 'smmuv3'] });
    expect(doc.runs.map((r: BenchReport) => [r.config.backend.name, r.config.backend.id, r.config.ioPageSize])).toEqual([
      ['mock', 'mock', 2048],
      ['smmuv3', 'arm-smmuv3', 4096],
    ]);
    expect(doc.runs[1].totals.counters.detail).toMatchObject({ utlbHits: expect.any(Number), walkSteps: expect.any(Number) });
    // The page-fault phase (200 round trips, 64 batches of 256; explicit, so never cut short): tables and JSON.
    expect(out).toMatch(/\nPage faults \(PRI round trips through IopfQueue \+ FaultQueue, one instance at a time\)\ninstance +round trips +p50 +p90 +p99 +in flight +faults\/s +groups +SUCCESS +dropped\n/);
    expect(out).toMatch(/\nmock-0 +200 +[\d.]+ µs +[\d.]+ µs +[\d.]+ µs +64 x 256 +[\d.]+( k| M)? +16,584 +16,584 +0\n/);
    expect(out).toMatch(/\narm-smmuv3-0 +200 +[\d.]+ µs +[\d.]+ µs +[\d.]+ µs +64 x 256 +[\d.]+( k| M)? +16,584 +16,584 +0\n/);
    expect(out).toMatch(/ +port trans\/s +fault p50\/p90 µs +faults\/s\n/);
    expect(out).toMatch(/\narm-smmuv3 +4 KiB .* [\d.]+\/[\d.]+ +[\d.]+( k| M)?\n/);
    for (const r of doc.runs) {
      expect(r.config.pageFaults).toEqual({ roundTrips: 200, batch: 256, batches: 64, timeLimited: false });
      expect(r.pageFaults).toMatchObject({ ok: 1, unsupported: 0, errors: 0, roundTrips: 200, sent: 16584, groups: 16584, success: 16584, dropped: 0 });
      expect(r.instances[0].pageFaults).toMatchObject({
        status: 'ok',
        latency: { roundTrips: 200, counts: { sent: 200, queued: 200, dropped: 0, responses: 200, groups: 200, success: 200, iopfDrops: 0 } },
        throughput: { batch: 256, batches: 64, counts: { sent: 16384, queued: 16384, dropped: 0, responses: 16384, groups: 16384, success: 16384, iopfDrops: 0 } },
      });
    }
  });

  it('--faults 0 leaves the page-fault phase out of the tables and the JSON', async () => {
    const s = io();
    const file = join(mkdtempSync(join(tmpdir(), 'bench-cli-')), 'r.json');
    const argv = ['--short', '--backend', 'mock,smmuv3', '--instances', '1', '--translations', '1k', '--map-mb', '1', '--faults', '0'];
    expect(await main([...argv, '--mode', 'in-thread', '--json', file], s)).toBe(0);
    const out = s.out.join('');
    expect(out).not.toContain('Page faults');
    expect(out).not.toContain('faults:');
    expect(out).toMatch(/ +port trans\/s\n/);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as ComparisonReport;
    for (const r of doc.runs) {
      expect(r.pageFaults).toBeNull();
      expect(r.instances[0].pageFaults).toBeNull();
      expect(r.config.pageFaults).toEqual({ roundTrips: 0, batch: 256, batches: 0, timeLimited: false });
    }
  });

  it('writes a single-backend report as before (no comparison)', async () => {
    const s = io();
    const file = join(mkdtempSync(join(tmpdir(), 'bench-cli-')), 'r.json');
    const argv = ['--short', '--backend', 'mock', '--instances', '1', '--translations', '1k', '--map-mb', '1'];
    expect(await main([...argv, '--mode', 'in-thread', '--json', file], s)).toBe(0);
    expect(s.out.join('')).not.toContain('backends (');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as BenchReport & { kind?: string };
    expect(doc.kind).toBeUndefined();
    expect(doc.config.backend.id).toBe('mock');
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
