/**
 * The result records of one instance: plain JSON, the same whether the instance ran under the host
 * runner or as a pool job (a job returns an {@link InstanceRecord} across threads).
 */
import type { Pattern } from './args.js';
import type { Counters } from './counters.js';

/** One contiguous run of same-size pages in a mapping. */
export interface MapChunk {
  readonly iova: number;
  readonly pa: number;
  readonly pageSize: number;
  readonly count: number;
}

/** The mapping phase of one instance. */
export interface MapRecord {
  /** First mapped IOVA. */
  readonly iova: number;
  /** First PA of the (contiguous) backing frames. */
  readonly pa: number;
  readonly bytes: number;
  /** The IO page size asked for (`--page-size`, resolved); alignment may add smaller pages. */
  readonly ioPageSize: number;
  /** Pages mapped, over all page sizes. */
  readonly pages: number;
  /** Largest page size used. */
  readonly pageSize: number;
  /** Pages per page size (bytes as key). */
  readonly pagesBySize: Readonly<Record<string, number>>;
  /** Time of the `mapPages` calls plus `iotlbSyncMap`, ms. */
  readonly mapMs: number;
  readonly pagesPerSec: number;
  /** Time of probe + domain allocation + attach, ms. */
  readonly setupMs: number;
}

/** One DMA pattern run inside the instance. */
export interface PatternRecord {
  readonly pattern: Pattern;
  /** Bytes between accesses (the granule, i.e. the IO page size, for `random`). */
  readonly step: number;
  readonly translations: number;
  /** Faulted translations as the workload saw them. */
  readonly faults: number;
  /** Time in the translation loop, ms. */
  readonly elapsedMs: number;
  readonly translationsPerSec: number;
  readonly checksum: number;
  /** Hardware counter deltas over the run. */
  readonly counters: Counters;
}

/** The invalidation phase: unmap a slice + `iotlbSync`, DMA to it (faults), remap, DMA again. */
export interface InvalidationRecord {
  readonly iova: number;
  readonly bytes: number;
  readonly pageSize: number;
  /** Time of `unmapPages` + `iotlbSync`, ms. */
  readonly unmapMs: number;
  /** Time of `mapPages` + `iotlbSyncMap`, ms. */
  readonly remapMs: number;
  /** DMA over the slice before the unmap (fills the IOTLB). */
  readonly warm: { readonly translations: number; readonly faults: number };
  /** DMA over the unmapped slice: every translation must fault. */
  readonly unmapped: { readonly translations: number; readonly faults: number };
  /** DMA over the remapped slice: no translation may fault. */
  readonly remapped: { readonly translations: number; readonly faults: number };
  /** Hardware counter deltas over the whole phase. */
  readonly counters: Counters;
}

/** The cross-thread device-port phase: `port.translateMany` from the instance's driver thread. */
export interface PortRecord {
  readonly translations: number;
  readonly batch: number;
  readonly faults: number;
  readonly elapsedMs: number;
  readonly translationsPerSec: number;
  /** True when the port crossed threads (worker mode); false for a direct in-thread port. */
  readonly crossThread: boolean;
}

/**
 * What the page-fault phase counted over one of its parts (warm-ups excluded): deltas of the
 * model's `stats()` and of the instance's `IopfQueue` counters. A clean run has
 * `queued = responses = groups = success = sent` and `dropped = iopfDrops = 0`.
 */
export interface PageFaultCounts {
  /** Page requests the device sent (`port.pageRequest`, each the Last of its own group). */
  readonly sent: number;
  /**
   * Model: page requests queued for software (SMMUv3 `priQueued`; mock `pageRequests` minus
   * `faultRecordsDropped`), or null when the backend reports neither.
   */
  readonly queued: number | null;
  /**
   * Model: page requests dropped or rejected (SMMUv3 `priDropped`; mock `pageRequestsRejected` +
   * `faultRecordsDropped`), or null when the backend reports neither.
   */
  readonly dropped: number | null;
  /** Model: page responses the hardware consumed and delivered to the device (`pageResponses`), or null. */
  readonly responses: number | null;
  /** IopfQueue: page request groups handed to the FaultQueue. */
  readonly groups: number;
  /** IopfQueue: SUCCESS responses sent to the driver (`pageResponse`). */
  readonly success: number;
  /**
   * IopfQueue counters that stay 0 on a clean run, summed (each loss once): requests of an
   * unknown device, partial requests dropped / discarded, groups answered INVALID (no handler, a
   * timeout) or FAILURE (refused), failed `pageResponse` calls, page-request queue overflows.
   */
  readonly iopfDrops: number;
}

/** Page-fault round trips with one fault outstanding. */
export interface PageFaultLatencyRecord {
  /** Timed round trips (after `PageFaultRecord.warmup` untimed ones). */
  readonly roundTrips: number;
  /**
   * The part stopped at its time limit (600 ms, default counts only) before `--faults` round
   * trips: `roundTrips` says how many ran.
   */
  readonly stoppedAtTimeLimit: boolean;
  /** Round trip time, µs: from `port.pageRequest` to `IopfQueue.flush()` resolved (the response consumed). */
  readonly medianUs: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly minUs: number;
  readonly maxUs: number;
  readonly counts: PageFaultCounts;
}

/** Page faults with many outstanding: `batch` groups in flight, one read and one write per batch. */
export interface PageFaultThroughputRecord {
  /** Faults in flight at once (distinct PRG indices 0..batch-1). */
  readonly batch: number;
  /** Timed batches (after the untimed warm-up batches: up to 100, fewer at the time limit). */
  readonly batches: number;
  /** The part stopped at its time limit (300 ms, default counts only): `batches` says how many ran. */
  readonly stoppedAtTimeLimit: boolean;
  /** `batch * batches`. */
  readonly faults: number;
  /** Timed faults / wall time of the timed batches, run back to back (each: send all → all groups read → all answered and consumed). */
  readonly faultsPerSec: number;
  /** The slowest batch's rate. */
  readonly minFaultsPerSec: number;
  /** The fastest batch's rate. */
  readonly maxFaultsPerSec: number;
  readonly counts: PageFaultCounts;
}

/**
 * The page-fault phase of one instance (see `src/fault-phase.ts`): I/O page-fault round trips of
 * a PRI device through the fault layer (`IopfQueue` + `FaultQueue` of `@iommulab/fault-queues`),
 * measured from the driver's thread.
 */
export interface PageFaultRecord {
  /**
   * `ok`: measured; `unsupported`: the backend has no PRI (`capabilities.pri` false, `probeDevice`
   * refused `pri`, or the device port rejected the page request with `UNSUPPORTED`), shown as
   * n/a; `error`: the phase failed, `reason` says where (what was measured before is kept).
   */
  readonly status: 'ok' | 'unsupported' | 'error';
  /** Why the phase is `unsupported` or failed; null when `ok`. */
  readonly reason: string | null;
  /** Requester id of the PRI device (the bench device's + 0x10). */
  readonly rid: number;
  /** Untimed round trips before the latency part. */
  readonly warmup: number;
  readonly latency: PageFaultLatencyRecord | null;
  readonly throughput: PageFaultThroughputRecord | null;
  /**
   * How the reader found the fault groups it waited for (warm-ups included), one count per wait:
   * `poll`, by its own `driver.drainFaults()` poll (up to 2 ms in worker mode, one drain in-thread);
   * `irq`, woken by `FaultQueue.onReadable` when the driver's interrupt loop delivered them;
   * `fallback`, by the `drainFaults()` a sleeping wait makes after 20 ms without a delivery.
   */
  readonly noticed: { readonly poll: number; readonly irq: number; readonly fallback: number };
  /** True when the hardware ran in its own worker (the requests and responses crossed threads). */
  readonly crossThread: boolean;
  /** Time of the whole phase, ms. */
  readonly elapsedMs: number;
}

/** Totals of one instance (or of the whole run). */
export interface TotalsRecord {
  /** Translations issued by the DMA workloads (patterns + invalidation phase). */
  readonly translations: number;
  /** Translations of the pattern runs only (the rate's numerator). */
  readonly patternTranslations: number;
  /** Hardware counter deltas over patterns + invalidation phase. */
  readonly counters: Counters;
  /** IOTLB hit rate in [0, 1], or null without lookups. */
  readonly hitRate: number | null;
  /** Pattern translations per second (per instance: loop time; total: wall time of the DMA phase). */
  readonly translationsPerSec: number;
  /** Device-port translations per second (total: all port translations over the summed port time; instances are measured one at a time). */
  readonly portTranslationsPerSec: number;
}

/** Everything measured for one instance. */
export interface InstanceRecord {
  readonly index: number;
  readonly id: string;
  readonly backendId: string;
  readonly mode: 'worker' | 'in-thread';
  /** Page sizes the domain offered, ascending. */
  readonly pageSizes: readonly number[];
  readonly map: MapRecord;
  readonly patterns: readonly PatternRecord[];
  readonly invalidation: InvalidationRecord;
  readonly port: PortRecord;
  /** The page-fault phase, or null when it was disabled (`--faults 0`). */
  readonly pageFaults: PageFaultRecord | null;
  readonly totals: TotalsRecord;
}
