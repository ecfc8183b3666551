/**
 * The counters the bench reports, read from a backend's free-form `stats()` record. Backends name
 * their counters themselves; this module knows the common spellings and takes the first present.
 */

/** The IOMMU counters the bench reports for a phase (all deltas). */
export interface Counters {
  /** Translations the hardware performed (device port included). */
  translations: number;
  iotlbHits: number;
  iotlbMisses: number;
  /** Page-table walks. */
  walks: number;
  /** Translations that faulted. */
  faults: number;
  /** IOTLB invalidations (commands or entries, as the backend counts them). */
  invalidations: number;
  /**
   * Backend-specific costs ({@link DetailCounters}), present only when the backend's `stats()`
   * reports at least one of them (the SMMUv3 reports all; the mock some).
   */
  detail?: DetailCounters;
}

/**
 * Costs some backends report besides the common counters: where the IOTLB hits came from, how
 * long walks are, what invalidation cost in commands, and how many fault records were written.
 * A field is present only when the backend reports it.
 */
export interface DetailCounters {
  /** Hits in a micro-TLB in front of the main TLB (SMMUv3: `utlbHits`). */
  utlbHits?: number;
  /** Hits in the main TLB (SMMUv3: `mainTlbHits`). */
  mainTlbHits?: number;
  /** Descriptor fetches of page-table walks (SMMUv3: `walkSteps`; mock: `walkReads`). */
  walkSteps?: number;
  /** Commands the hardware consumed from its command queue, syncs included. */
  commands?: number;
  /** Sync commands (CMD_SYNC) consumed. */
  syncs?: number;
  /** Fault / event records written to the event queue (SMMUv3: `events`; mock: `faultRecords`). */
  events?: number;
}

/** The common counter fields (every backend has them, 0 when it does not report one). */
export type CounterField = Exclude<keyof Counters, 'detail'>;

/** Counter names per field, most specific first. Exported for the README and tests. */
export const COUNTER_KEYS: Readonly<Record<CounterField, readonly string[]>> = {
  translations: ['translations', 'translate', 'requests'],
  iotlbHits: ['iotlbHits', 'iotlb.hits', 'tlbHits', 'hits'],
  iotlbMisses: ['iotlbMisses', 'iotlb.misses', 'tlbMisses', 'misses'],
  walks: ['walks', 'pageWalks', 'tableWalks'],
  faults: ['faults', 'translationFaults', 'faultCount'],
  invalidations: ['invalidations', 'iotlbInvalidations', 'tlbInvalidations', 'invalidatedEntries'],
};

/** Detail counter names per field, most specific first. Exported for the README and tests. */
export const DETAIL_KEYS: Readonly<Record<keyof DetailCounters, readonly string[]>> = {
  utlbHits: ['utlbHits', 'microTlbHits'],
  mainTlbHits: ['mainTlbHits'],
  walkSteps: ['walkSteps', 'walkReads', 'walkFetches'],
  commands: ['commands', 'cmdqCommands'],
  syncs: ['syncs', 'cmdSyncs'],
  events: ['events', 'faultRecords', 'eventsWritten'],
};

const DETAIL_FIELDS = Object.keys(DETAIL_KEYS) as (keyof DetailCounters)[];

/** All-zero counters. */
export function zeroCounters(): Counters {
  return { translations: 0, iotlbHits: 0, iotlbMisses: 0, walks: 0, faults: 0, invalidations: 0 };
}

/**
 * Extracts {@link Counters} from a `stats()` record (0 for a counter the backend lacks).
 *
 * @param stats - what `host.stats()` returned
 */
export function countersFromStats(stats: Readonly<Record<string, number>>): Counters {
  const out = zeroCounters();
  for (const field of Object.keys(COUNTER_KEYS) as CounterField[]) {
    for (const key of COUNTER_KEYS[field]) {
      const v = stats[key];
      if (typeof v === 'number' && Number.isFinite(v)) {
        out[field] = v;
        break;
      }
    }
  }
  const detail = detailFromStats(stats);
  if (detail !== undefined) out.detail = detail;
  return out;
}

/**
 * The {@link DetailCounters} a `stats()` record reports, or undefined when it reports none.
 *
 * @param stats - what `host.stats()` returned
 */
export function detailFromStats(stats: Readonly<Record<string, number>>): DetailCounters | undefined {
  let out: DetailCounters | undefined;
  for (const field of DETAIL_FIELDS) {
    for (const key of DETAIL_KEYS[field]) {
      const v = stats[key];
      if (typeof v === 'number' && Number.isFinite(v)) {
        (out ??= {})[field] = v;
        break;
      }
    }
  }
  return out;
}

/**
 * Combines the detail records of several counters field by field with `op`; a field is kept when
 * every record that has a detail record has it. Undefined when no record has details.
 */
function combineDetail(
  list: readonly (DetailCounters | undefined)[],
  op: (acc: number, v: number, index: number) => number,
): DetailCounters | undefined {
  const present = list.filter((d): d is DetailCounters => d !== undefined);
  if (present.length === 0) return undefined;
  let out: DetailCounters | undefined;
  for (const field of DETAIL_FIELDS) {
    if (!present.every((d) => d[field] !== undefined)) continue;
    let acc = 0;
    present.forEach((d, i) => {
      acc = op(acc, d[field] as number, i);
    });
    (out ??= {})[field] = acc;
  }
  return out;
}

/** `after - before`, field by field. */
export function diffCounters(after: Counters, before: Counters): Counters {
  const out: Counters = {
    translations: after.translations - before.translations,
    iotlbHits: after.iotlbHits - before.iotlbHits,
    iotlbMisses: after.iotlbMisses - before.iotlbMisses,
    walks: after.walks - before.walks,
    faults: after.faults - before.faults,
    invalidations: after.invalidations - before.invalidations,
  };
  if (after.detail !== undefined && before.detail !== undefined) {
    const detail = combineDetail([after.detail, before.detail], (acc, v, i) => (i === 0 ? v : acc - v));
    if (detail !== undefined) out.detail = detail;
  }
  return out;
}

/** Field-by-field sum of several counter records. */
export function sumCounters(list: readonly Counters[]): Counters {
  const out = zeroCounters();
  for (const c of list) {
    out.translations += c.translations;
    out.iotlbHits += c.iotlbHits;
    out.iotlbMisses += c.iotlbMisses;
    out.walks += c.walks;
    out.faults += c.faults;
    out.invalidations += c.invalidations;
  }
  const detail = combineDetail(
    list.map((c) => c.detail),
    (acc, v) => acc + v,
  );
  if (detail !== undefined) out.detail = detail;
  return out;
}

/** Page-table descriptor fetches per walk, or null when unknown or there were no walks. */
export function stepsPerWalk(c: Counters): number | null {
  const steps = c.detail?.walkSteps;
  return steps !== undefined && c.walks > 0 ? steps / c.walks : null;
}

/** IOTLB hit rate in [0, 1], or null when there were no lookups. */
export function hitRate(c: Counters): number | null {
  const lookups = c.iotlbHits + c.iotlbMisses;
  return lookups > 0 ? c.iotlbHits / lookups : null;
}
