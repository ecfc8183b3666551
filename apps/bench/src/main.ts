/**
 * The CLI's body, separate from the bin so tests can call it: parse, resolve the backend, run,
 * print the tables and write the JSON. Returns the exit code (0 ok, 1 run failure, 2 usage error).
 */
import { resolve as resolvePath } from 'node:path';
import { loadBackend } from '@iommulab/driver-api';
import { ArgsError, USAGE, parseArgs, resolvePageSize } from './args.js';
import { createProgress, isLiveTerminal } from './progress.js';
import type { BenchReport } from './report-json.js';
import { writeReport } from './report-json.js';
import { formatReport } from './report-table.js';
import { BackendNotFoundError, resolveBackend } from './resolve-backend.js';
import { runHost } from './runner-host.js';
import { runPool } from './runner-pool.js';

/** Where the CLI writes. */
export interface CliIo {
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WritableStream;
}

/** Problems worth a warning line under the tables (the invalidation phase must be exact). */
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
  let backend;
  try {
    backend = resolveBackend(config.backend);
  } catch (e) {
    if (e instanceof BackendNotFoundError) {
      io.stderr.write(`iommulab-bench: --backend: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  // --page-size must be one of the backend's page sizes: a usage error (exit 2), checked before
  // any instance starts. (The runners resolve it again against each domain.)
  try {
    const plugin = await loadBackend(backend.url);
    resolvePageSize(config.pageSize, plugin.capabilities.pageSizes, `backend ${plugin.id}`);
  } catch (e) {
    if (e instanceof ArgsError) {
      io.stderr.write(`iommulab-bench: ${e.message}\n`);
      return e.exitCode;
    }
    const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
    io.stderr.write(`iommulab-bench: the run failed: cannot load ${backend.url}: ${msg}\n`);
    return 1;
  }
  const live = isLiveTerminal(io.stdout);
  const progress = createProgress(io.stdout);
  let report: BenchReport;
  try {
    report = config.runner === 'pool' ? await runPool(config, backend, progress) : await runHost(config, backend, progress);
  } catch (e) {
    progress.stop();
    const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
    io.stderr.write(`iommulab-bench: the run failed: ${msg}\n`);
    return 1;
  }
  progress.stop();
  io.stdout.write(`\n${formatReport(report, { color: live })}`);
  for (const w of reportWarnings(report)) io.stdout.write(`warning: ${w}\n`);
  if (config.jsonFile !== null) {
    const file = resolvePath(config.jsonFile);
    await writeReport(file, report);
    io.stdout.write(`JSON result written to ${file}\n`);
  }
  return 0;
}
