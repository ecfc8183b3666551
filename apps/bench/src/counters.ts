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
}

/** Counter names per field, most specific first. Exported for the README and tests. */
export const COUNTER_KEYS: Readonly<Record<keyof Counters, readonly string[]>> = {
  translations: ['translations', 'translate', 'requests'],
  iotlbHits: ['iotlbHits', 'iotlb.hits', 'tlbHits', 'hits'],
  iotlbMisses: ['iotlbMisses', 'iotlb.misses', 'tlbMisses', 'misses'],
  walks: ['walks', 'pageWalks', 'tableWalks'],
  faults: ['faults', 'translationFaults', 'faultCount'],
  invalidations: ['invalidations', 'iotlbInvalidations', 'tlbInvalidations', 'invalidatedEntries'],
};

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
  for (const field of Object.keys(COUNTER_KEYS) as (keyof Counters)[]) {
    for (const key of COUNTER_KEYS[field]) {
      const v = stats[key];
      if (typeof v === 'number' && Number.isFinite(v)) {
        out[field] = v;
        break;
      }
    }
  }
  return out;
}

/** `after - before`, field by field. */
export function diffCounters(after: Counters, before: Counters): Counters {
  return {
    translations: after.translations - before.translations,
    iotlbHits: after.iotlbHits - before.iotlbHits,
    iotlbMisses: after.iotlbMisses - before.iotlbMisses,
    walks: after.walks - before.walks,
    faults: after.faults - before.faults,
    invalidations: after.invalidations - before.invalidations,
  };
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
  return out;
}

/** IOTLB hit rate in [0, 1], or null when there were no lookups. */
export function hitRate(c: Counters): number | null {
  const lookups = c.iotlbHits + c.iotlbMisses;
  return lookups > 0 ? c.iotlbHits / lookups : null;
}
