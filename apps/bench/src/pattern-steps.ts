/**
 * The address steps of the DMA patterns: how far apart consecutive accesses are. Pure, so the
 * JSON report can record them without the driver API.
 */

/** Strided traffic moves this many smallest pages per access. */
export const STRIDE_PAGES = 17;

/** The address steps of the patterns, as recorded in the JSON config. */
export interface PatternSteps {
  /** Bytes between sequential accesses (`--seq-step`). */
  readonly sequential: number;
  /** The random granule: one access per random IO page of the mapping's page size. */
  readonly random: number;
  /** Offset of every random access inside its IO page (the middle of the page). */
  readonly randomOffset: number;
  /** The stride: {@link STRIDE_PAGES} smallest pages. */
  readonly strided: number;
}

/**
 * The steps of the three patterns.
 *
 * @param seqStep - `--seq-step`
 * @param ioPageSize - the mapping's IO page size
 * @param minPage - the domain's smallest page size
 */
export function patternSteps(seqStep: number, ioPageSize: number, minPage: number): PatternSteps {
  return {
    sequential: seqStep,
    random: ioPageSize,
    randomOffset: Math.floor(ioPageSize / 2),
    strided: STRIDE_PAGES * minPage,
  };
}
