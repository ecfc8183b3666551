/**
 * The CLI's body, separate from the bin so tests can call it: parse, resolve the backends, run
 * each in turn (printing its tables as it finishes), compare them, and write the JSON. Returns
 * the exit code (0 ok, 1 run failure, 2 usage error).
 */
import { resolve as resolvePath } from 'node:path';
import { loadBackend } from '@iommulab/driver-api';
import { ArgsError, USAGE, parseArgs, resolvePageSize } from './args.js';
import { physMemBytes } from './mem-size.js';
import { createProgress, isLiveTerminal } from './progress.js';
import type { BenchReport, ComparisonReport } from './report-json.js';
import { buildComparison, environmentInfo, writeReport } from './report-json.js';
import { formatComparison, formatReport } from './report-table.js';
import { BackendNotFoundError, resolveBackend, type ResolvedBackend } from './resolve-backend.js';
import { runHost } from './runner-host.js';
import { runPool } from './runner-pool.js';

/** Where the CLI writes. */
export interface CliIo {
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WritableStream;
}

/**
 * Problems worth a warning line under the tables: the invalidation phase must be exact, and every
 * page fault must become one group answered SUCCESS with nothing dropped.
 */
export function reportWarnings(report: BenchReport): string[] {
  const out: string[] = [];
  for (const i of report.instances) {
    const inv = i.invalidation;
    if (inv.unmapped.faults !== inv.unmapped.translations) {
      out.push(
        `${i.id}: only ${inv.unmapped.faults} of ${inv.unmapped.translations} DMA accesses to the unmapped slice faulted (stale IOTLB entries?)`,
      );
    }
    if (inv.remapped.faults !== 0) out.push(`${i.id}: ${inv.remapped.faults} accesses faulted after the remap`);
    for (const p of i.patterns) if (p.faults !== 0) out.push(`${i.id}: ${p.pattern} had ${p.faults} faults over mapped memory`);
    if (i.port.faults !== 0) out.push(`${i.id}: ${i.port.faults} device-port translations faulted`);
    const f = i.pageFaults;
    if (f?.status === 'error') out.push(`${i.id}: the page-fault phase failed: ${f.reason ?? 'unknown error'}`);
    for (const [part, c] of [
      ['one outstanding', f?.latency?.counts],
      ['in flight', f?.throughput?.counts],
    ] as const) {
      if (c === undefined) continue;
      const drops = (c.dropped ?? 0) + c.iopfDrops;
      if (c.groups !== c.sent || c.success !== c.sent || drops !== 0 || (c.responses !== null && c.responses !== c.sent)) {
        out.push(
          `${i.id}: page faults (${part}): ${c.sent} sent, ${c.groups} groups, ${c.success} SUCCESS, ` +
            `${c.responses ?? '-'} responses consumed, ${drops} dropped`,
        );
      }
    }
  }
  return out;
}

/**
 * Runs `iommulab-bench` with `argv` (the arguments after the script).
 *
 * @returns the process exit code
 */
export async function main(argv: readonly string[], io: CliIo = process): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs(argv);
  } catch (e) {
    if (e instanceof ArgsError) {
      io.stderr.write(`iommulab-bench: ${e.message}\nRun 'iommulab-bench --help' for usage.\n`);
      return e.exitCode;
    }
    throw e;
  }
  if (parsed.kind === 'help') {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const config = parsed.config;
  const backends: ResolvedBackend[] = [];
  for (const name of config.backends) {
    try {
      backends.push(resolveBackend(name));
    } catch (e) {
      if (e instanceof BackendNotFoundError) {
        io.stderr.write(`iommulab-bench: --backend: ${e.message}\n`);
        return 2;
      }
      throw e;
    }
  }
  // --page-size must be one of every backend's page sizes, and the mappings must fit in PhysMem:
  // usage errors (exit 2), checked before any instance starts. (The runners resolve the page size
  // again against each domain.)
  for (const backend of backends) {
    try {
      const plugin = await loadBackend(backend.url);
      const pageSizes = plugin.capabilities.pageSizes;
      resolvePageSize(config.pageSize, pageSizes, `backend ${plugin.id}`, config.mapBytes);
      try {
        // The host runner shares one PhysMem between the instances; a pool job has its own.
        physMemBytes(config.runner === 'pool' ? 1 : config.instances, config.mapBytes, pageSizes);
      } catch (e) {
        if (e instanceof RangeError) throw new ArgsError(`backend ${plugin.id}: ${e.message}`);
        throw e;
      }
    } catch (e) {
      if (e instanceof ArgsError) {
        io.stderr.write(`iommulab-bench: ${e.message}\n`);
        return e.exitCode;
      }
      const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
      io.stderr.write(`iommulab-bench: the run failed: cannot load ${backend.url}: ${msg}\n`);
      return 1;
    }
  }
  const t0 = performance.now();
  const environment = environmentInfo();
  const live = isLiveTerminal(io.stdout);
  const reports: BenchReport[] = [];
  for (const backend of backends) {
    const runConfig = { ...config, backend: backend.name };
    const progress = createProgress(io.stdout);
    let report: BenchReport;
    try {
      report =
        runConfig.runner === 'pool'
          ? await runPool(runConfig, backend, progress)
          : await runHost(runConfig, backend, progress);
    } catch (e) {
      progress.stop();
      const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
      io.stderr.write(`iommulab-bench: the run failed (${backend.name}): ${msg}\n`);
      return 1;
    }
    progress.stop();
    io.stdout.write(`\n${formatReport(report, { color: live })}`);
    for (const w of reportWarnings(report)) io.stdout.write(`warning: ${w}\n`);
    if (reports.length + 1 < backends.length) io.stdout.write('\n');
    reports.push(report);
  }
  let doc: BenchReport | ComparisonReport = reports[0];
  if (reports.length > 1) {
    doc = buildComparison({
      backends: config.backends,
      environment,
      runs: reports,
      durationMs: performance.now() - t0,
    });
    io.stdout.write(`\n${formatComparison(doc, { color: live })}`);
  }
  if (config.jsonFile !== null) {
    const file = resolvePath(config.jsonFile);
    await writeReport(file, doc);
    io.stdout.write(`JSON result written to ${file}\n`);
  }
  return 0;
}
