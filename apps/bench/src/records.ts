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
  readonly totals: TotalsRecord;
}
