/**
 * The phases of one benchmark instance over an open {@link BackendStack}: map memory, run DMA
 * patterns (inside the instance's thread, via `host.runWorkload`), invalidate a slice, measure
 * the device port, and measure I/O page-fault round trips (`fault-phase.ts`). The host runner
 * calls the phases with barriers between them; a pool job calls {@link runInstance}, which runs
 * them all in order.
 */
import {
  IotlbGather,
  Prot,
  dmaRequest,
  type BackendStack,
  type DmaRequest,
  type IommuDevice,
  type PagingDomain,
} from '@iommulab/driver-api';
import type { WorkloadSpec } from '@iommulab/runtime';
import { resolvePageSize, type PageSizeChoice, type Pattern } from './args.js';
import { countersFromStats, diffCounters, hitRate, sumCounters, type Counters } from './counters.js';
import { measurePageFaults, type FaultPhaseTimeouts } from './fault-phase.js';
import { mappingAlignment, pageSizesUpTo, planMapping } from './map-plan.js';
import { STRIDE_PAGES, patternSteps } from './pattern-steps.js';
import type {
  InstanceRecord,
  InvalidationRecord,
  MapChunk,
  MapRecord,
  PageFaultRecord,
  PatternRecord,
  PortRecord,
  TotalsRecord,
} from './records.js';

/** What one instance must do (plain data: crosses into a pool job). */
export interface InstancePlan {
  readonly index: number;
  readonly id: string;
  /** Requester id of the benchmark device. */
  readonly rid: number;
  readonly mapBytes: number;
  /** IO page size of the mapping (resolved against the domain's page sizes). */
  readonly pageSize: PageSizeChoice;
  /** Bytes between accesses of the sequential pattern. */
  readonly seqStep: number;
  readonly patterns: readonly Pattern[];
  /** Translations per pattern. */
  readonly translations: number;
  readonly portTranslations: number;
  readonly portBatch: number;
  /** Seed of the random pattern. */
  readonly seed: number;
  /** Page-fault round trips with one outstanding; 0 skips the page-fault phase. */
  readonly faults: number;
  /** Page faults in flight in the throughput part. */
  readonly faultBatch: number;
  /** Timed batches of the throughput part. */
  readonly faultBatches: number;
  /** The page-fault parts may stop at their time limits (default counts). */
  readonly faultTimeLimited: boolean;
}

/** An instance after {@link mapInstance}: its device, domain and mapping. */
export interface MappedInstance {
  readonly stack: BackendStack;
  readonly plan: InstancePlan;
  readonly device: IommuDevice;
  readonly domain: PagingDomain;
  readonly chunks: readonly MapChunk[];
  /** Smallest page size of the domain: the unit of the strided pattern and the port phase. */
  readonly minPage: number;
  /** The IO page size the mapping was asked to use: the granule of random traffic. */
  readonly ioPageSize: number;
  readonly map: MapRecord;
}

/** Requester id used for the benchmark device (00:00.1). */
export const BENCH_RID = 1;
/** Protection of the benchmark mapping. */
export const BENCH_PROT = Prot.READ | Prot.WRITE;
export { STRIDE_PAGES, patternSteps, type PatternSteps } from './pattern-steps.js';

const FRAME = 4096;

/**
 * The IOVA base: the aperture start aligned up to `align`, moved past any reserved region that
 * would overlap `[base, base + size)`.
 *
 * @throws Error when the mapping does not fit in the aperture
 */
export function chooseIovaBase(
  aperture: { readonly start: number; readonly last: number },
  reserved: readonly { readonly start: number; readonly last: number }[],
  size: number,
  align: number,
): number {
  const up = (v: number): number => Math.ceil(v / align) * align;
  let base = up(aperture.start);
  for (let moved = true; moved; ) {
    moved = false;
    for (const r of reserved) {
      if (r.start <= base + size - 1 && r.last >= base) {
        base = up(r.last + 1);
        moved = true;
      }
    }
  }
  if (base + size - 1 > aperture.last) {
    throw new Error(
      `cannot place ${size} bytes of IOVA in the aperture 0x${aperture.start.toString(16)}..0x${aperture.last.toString(16)}`,
    );
  }
  return base;
}

function allocBacking(stack: BackendStack, bytes: number, pageSizes: readonly number[]): { pa: number; align: number } {
  const frames = Math.ceil(bytes / FRAME);
  const aligns = [...new Set([mappingAlignment(bytes, pageSizes), ...pageSizes])]
    .filter((a) => a <= bytes || a === Math.min(...pageSizes))
    .sort((a, b) => b - a);
  let lastError: unknown;
  for (const align of aligns) {
    try {
      return { pa: stack.mem.allocFrames(frames, Math.max(1, align / FRAME)), align };
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError;
}

/**
 * Probes a device, allocates a paging domain, attaches it, allocates contiguous PhysMem frames and
 * maps `plan.mapBytes` of IOVA with pages of `plan.pageSize` (smaller ones only where alignment
 * forces them). The IOVA and PA are aligned as for the largest page size whatever the choice, so
 * runs with different page sizes map the same layout.
 *
 * @throws ArgsError when the domain does not offer `plan.pageSize`
 */
export async function mapInstance(stack: BackendStack, plan: InstancePlan): Promise<MappedInstance> {
  const t0 = performance.now();
  const device = await stack.driver.probeDevice({ rid: plan.rid, name: `bench-dev-${plan.index}` });
  const domain = await stack.driver.domainAllocPaging(device);
  await stack.driver.attachDevice(device, domain);
  const setupMs = performance.now() - t0;
  const pageSizes = [...domain.pageSizes].sort((a, b) => a - b);
  const minPage = pageSizes[0];
  const ioPageSize = resolvePageSize(plan.pageSize, pageSizes, `the ${stack.plugin.id} domain`, plan.mapBytes);
  const { pa, align } = allocBacking(stack, plan.mapBytes, pageSizes);
  const iova = chooseIovaBase(domain.aperture, stack.driver.reservedRegions(device), plan.mapBytes, align);
  const chunks = planMapping(iova, pa, plan.mapBytes, pageSizesUpTo(pageSizes, ioPageSize));
  const t1 = performance.now();
  for (const c of chunks) domain.mapPages(c.iova, c.pa, c.pageSize, c.count, BENCH_PROT);
  await domain.iotlbSyncMap(iova, plan.mapBytes);
  const mapMs = performance.now() - t1;
  const pagesBySize: Record<string, number> = {};
  let pages = 0;
  let largest = 0;
  for (const c of chunks) {
    pagesBySize[String(c.pageSize)] = (pagesBySize[String(c.pageSize)] ?? 0) + c.count;
    pages += c.count;
    largest = Math.max(largest, c.pageSize);
  }
  return {
    stack,
    plan,
    device,
    domain,
    chunks,
    minPage,
    ioPageSize,
    map: {
      iova,
      pa,
      bytes: plan.mapBytes,
      ioPageSize,
      pages,
      pageSize: largest,
      pagesBySize,
      mapMs,
      pagesPerSec: mapMs > 0 ? (pages * 1000) / mapMs : 0,
      setupMs,
    },
  };
}

/**
 * The workload of one pattern over the whole mapping (see {@link patternSteps}): sequential walks
 * it in `plan.seqStep` steps, random picks IO pages uniformly (seeded) and accesses the middle of
 * each, strided jumps {@link STRIDE_PAGES} smallest pages. Sequential and strided wrap around.
 */
export function patternSpec(m: MappedInstance, pattern: Pattern, count: number = m.plan.translations): WorkloadSpec {
  const steps = patternSteps(m.plan.seqStep, m.ioPageSize, m.minPage);
  // Random: granule k is accessed at iova + k * step + randomOffset. The workload draws from
  // floor(length / step) granules, so the range stays length long and ends inside the mapping.
  const random = pattern === 'random';
  return {
    pattern,
    rid: m.plan.rid,
    iovaBase: m.map.iova + (random ? steps.randomOffset : 0),
    length: m.map.bytes,
    step: steps[pattern],
    count,
    seed: random ? m.plan.seed : undefined,
  };
}

async function counters(m: MappedInstance): Promise<Counters> {
  return countersFromStats(await m.stack.host.stats());
}

/** Runs one pattern inside the instance's thread and records the hardware counter deltas. */
export async function runPattern(m: MappedInstance, pattern: Pattern): Promise<PatternRecord> {
  const spec = patternSpec(m, pattern);
  const before = await counters(m);
  const r = await m.stack.host.runWorkload(spec);
  const after = await counters(m);
  return {
    pattern,
    step: spec.step,
    translations: r.translations,
    faults: r.faults,
    elapsedMs: r.elapsedMs,
    translationsPerSec: r.translationsPerSec,
    checksum: r.checksum,
    counters: diffCounters(after, before),
  };
}

/** The slice the invalidation phase unmaps: about 1/8 of the mapping, whole large pages, mid-range. */
export function invalidationSlice(m: MappedInstance): { iova: number; pa: number; bytes: number; pageSize: number } {
  const ps = m.map.pageSize;
  const bigPages = Math.floor(m.map.bytes / ps);
  const slicePages = Math.max(1, Math.floor(bigPages / 8));
  const firstPage = Math.min(Math.floor(bigPages / 2), bigPages - slicePages);
  const offset = firstPage * ps;
  return { iova: m.map.iova + offset, pa: m.map.pa + offset, bytes: slicePages * ps, pageSize: ps };
}

/**
 * Unmaps a slice and invalidates it (`unmapPages` + `iotlbSync`), sends DMA to it (every access
 * must fault), remaps it and sends DMA again (none may fault). Counter deltas cover the phase.
 */
export async function runInvalidation(m: MappedInstance): Promise<InvalidationRecord> {
  const slice = invalidationSlice(m);
  const spec: WorkloadSpec = {
    pattern: 'sequential',
    rid: m.plan.rid,
    iovaBase: slice.iova,
    length: slice.bytes,
    step: m.minPage,
    count: slice.bytes / m.minPage,
  };
  const before = await counters(m);
  const warm = await m.stack.host.runWorkload(spec);
  const gather = new IotlbGather();
  const t0 = performance.now();
  const unmapped = m.domain.unmapPages(slice.iova, slice.pageSize, slice.bytes / slice.pageSize, gather);
  await m.domain.iotlbSync(gather);
  const unmapMs = performance.now() - t0;
  if (unmapped !== slice.bytes) {
    throw new Error(`${m.plan.id}: unmapPages removed ${unmapped} of ${slice.bytes} bytes`);
  }
  const faulted = await m.stack.host.runWorkload(spec);
  const t1 = performance.now();
  m.domain.mapPages(slice.iova, slice.pa, slice.pageSize, slice.bytes / slice.pageSize, BENCH_PROT);
  await m.domain.iotlbSyncMap(slice.iova, slice.bytes);
  const remapMs = performance.now() - t1;
  const again = await m.stack.host.runWorkload(spec);
  const after = await counters(m);
  return {
    iova: slice.iova,
    bytes: slice.bytes,
    pageSize: slice.pageSize,
    unmapMs,
    remapMs,
    warm: { translations: warm.translations, faults: warm.faults },
    unmapped: { translations: faulted.translations, faults: faulted.faults },
    remapped: { translations: again.translations, faults: again.faults },
    counters: diffCounters(after, before),
  };
}

/**
 * Measures the device port from this thread: `port.translateMany` in batches of
 * `plan.portBatch` requests walking the mapping, for `plan.portTranslations` translations.
 */
export async function measurePort(m: MappedInstance): Promise<PortRecord> {
  const { portTranslations: total, portBatch: batchSize } = m.plan;
  const batch: DmaRequest[] = [];
  for (let i = 0; i < batchSize; i++) batch.push(dmaRequest({ rid: m.plan.rid, iova: m.map.iova }));
  const pages = Math.floor(m.map.bytes / m.minPage);
  let cursor = 0;
  let done = 0;
  let faults = 0;
  const t0 = performance.now();
  while (done < total) {
    const n = Math.min(batchSize, total - done);
    const reqs = n === batchSize ? batch : batch.slice(0, n);
    for (let i = 0; i < n; i++) {
      reqs[i].iova = m.map.iova + cursor * m.minPage;
      cursor = cursor + 1 === pages ? 0 : cursor + 1;
    }
    const results = await m.stack.port.translateMany(reqs);
    for (const r of results) if (!r.ok) faults++;
    done += n;
  }
  const elapsedMs = performance.now() - t0;
  return {
    translations: done,
    batch: batchSize,
    faults,
    elapsedMs,
    translationsPerSec: elapsedMs > 0 ? (done * 1000) / elapsedMs : 0,
    crossThread: m.stack.host.mode === 'worker',
  };
}

/**
 * The page-fault phase (see `fault-phase.ts`): a PRI device next to the bench device, its page
 * requests through the instance's IopfQueue into a FaultQueue and back. Null when `plan.faults`
 * is 0. Never throws: a backend without PRI gives an `unsupported` record, a failure an `error`
 * record.
 */
export async function measureFaults(m: MappedInstance, timeouts?: FaultPhaseTimeouts): Promise<PageFaultRecord | null> {
  const { plan } = m;
  if (plan.faults <= 0) return null;
  return measurePageFaults(
    {
      stack: m.stack,
      id: plan.id,
      rid: plan.rid,
      roundTrips: plan.faults,
      batch: plan.faultBatch,
      batches: plan.faultBatches,
      timeLimited: plan.faultTimeLimited,
    },
    timeouts,
  );
}

/**
 * Totals of one instance: counters over patterns + invalidation, rate over the pattern loops.
 */
export function instanceTotals(
  patterns: readonly PatternRecord[],
  inv: InvalidationRecord,
  port: PortRecord,
): TotalsRecord {
  const counters = sumCounters([...patterns.map((p) => p.counters), inv.counters]);
  const patternTranslations = patterns.reduce((s, p) => s + p.translations, 0);
  const loopMs = patterns.reduce((s, p) => s + p.elapsedMs, 0);
  return {
    translations:
      patternTranslations + inv.warm.translations + inv.unmapped.translations + inv.remapped.translations,
    patternTranslations,
    counters,
    hitRate: hitRate(counters),
    translationsPerSec: loopMs > 0 ? (patternTranslations * 1000) / loopMs : 0,
    portTranslationsPerSec: port.translationsPerSec,
  };
}

/** Assembles an {@link InstanceRecord} from the phase results. */
export function instanceRecord(
  m: MappedInstance,
  patterns: readonly PatternRecord[],
  inv: InvalidationRecord,
  port: PortRecord,
  pageFaults: PageFaultRecord | null,
): InstanceRecord {
  return {
    index: m.plan.index,
    id: m.plan.id,
    backendId: m.stack.plugin.id,
    mode: m.stack.host.mode,
    pageSizes: [...m.domain.pageSizes].sort((a, b) => a - b),
    map: m.map,
    patterns,
    invalidation: inv,
    port,
    pageFaults,
    totals: instanceTotals(patterns, inv, port),
  };
}

/** Phase names, as progress reports them. */
export type InstancePhase = 'start' | 'map' | Pattern | 'invalidate' | 'port' | 'faults' | 'done';

/**
 * Runs every phase of one instance in order (map, patterns, invalidation, port, page faults) and
 * returns its record. Does not close the stack.
 *
 * @param onPhase - called when a phase begins
 */
export async function runInstance(
  stack: BackendStack,
  plan: InstancePlan,
  onPhase?: (phase: InstancePhase) => void,
): Promise<InstanceRecord> {
  onPhase?.('map');
  const m = await mapInstance(stack, plan);
  const patterns: PatternRecord[] = [];
  for (const p of plan.patterns) {
    onPhase?.(p);
    patterns.push(await runPattern(m, p));
  }
  onPhase?.('invalidate');
  const inv = await runInvalidation(m);
  onPhase?.('port');
  const port = await measurePort(m);
  onPhase?.('faults');
  const faults = await measureFaults(m);
  onPhase?.('done');
  return instanceRecord(m, patterns, inv, port, faults);
}
