/**
 * The device-side micro-TLB (like the per-TBU micro-TLBs of Arm's MMU-500/600 in front of the
 * TCU's main TLB): a small direct-mapped cache of 4 KiB translations tagged by StreamID, for
 * transactions without a SubstreamID, filled from main-TLB hits (tlb.ts).
 *
 * Coherence (smmuv3.md §4.7, §12 #17): the whole micro-TLB is flushed on every command that can
 * change a translation or a configuration (every TLBI_*, every CFGI_*), on SMMUEN / stream-table
 * changes and on reset — so it never serves a translation the main TLB or the configuration cache
 * would no longer serve after an invalidation + CMD_SYNC, and behaves like a larger TLB otherwise.
 * A flush is one generation bump (O(1)); entries carry the generation in their tag.
 *
 * Entry: input page number (Float64Array), tag = StreamID | generation << 16 (Int32Array), PA of
 * the page (Float64Array), packed permissions (privileged [2:0], unprivileged [5:3]).
 */

/** Entries (a power of two). */
export const UTLB_ENTRIES = 4096;
const MASK = UTLB_ENTRIES - 1;
const GEN_LIMIT = 0x7fff;

/** The micro-TLB's arrays and generation (read directly by the pipeline's hot path). */
export class MicroTlb {
  /** Input page number (iova / 4096) of each entry. */
  readonly page = new Float64Array(UTLB_ENTRIES).fill(-1);
  /** StreamID | generation << 16; −1 when empty. */
  readonly tag = new Int32Array(UTLB_ENTRIES).fill(-1);
  /** PA of the page. */
  readonly pa = new Float64Array(UTLB_ENTRIES);
  /** Packed permissions. */
  readonly perm = new Uint8Array(UTLB_ENTRIES);
  /** Current generation, shifted: every valid tag has `tag >>> 16 === gen >>> 16`. */
  genBits = 1 << 16;
  /** Flushes (stats). */
  flushes = 0;
  /** Fills through {@link MicroTlb.fill} (stats; the pipeline's hot path refills slots in place). */
  fills = 0;

  /** Slot of (sid, page). */
  static slot(sid: number, page: number): number {
    return ((page | 0) + sid * 0x9e5) & MASK;
  }

  /** Caches the 4 KiB page `page` of StreamID `sid` at PA `pagePa` with packed permissions. */
  fill(sid: number, page: number, pagePa: number, perm: number): void {
    const i = MicroTlb.slot(sid, page);
    this.page[i] = page;
    this.tag[i] = sid | this.genBits;
    this.pa[i] = pagePa;
    this.perm[i] = perm;
    this.fills++;
  }

  /** Drops every entry (a new generation; the arrays are cleared only when generations wrap). */
  flush(): void {
    this.flushes++;
    let g = (this.genBits >>> 16) + 1;
    if (g > GEN_LIMIT) {
      this.tag.fill(-1);
      g = 1;
    }
    this.genBits = g << 16;
  }
}
