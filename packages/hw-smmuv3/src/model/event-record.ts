/**
 * Event-record builder (smmuv3.md §5.1): fills one reusable 8-word (32-byte) record, bit-exact,
 * without allocating. Words are little-endian halves of the 4 dwords (word 2i = dword i [31:0],
 * word 2i+1 = dword i [63:32]).
 */

const TWO_32 = 4294967296;

/** A reusable event record under construction. */
export class EventRecord {
  /** The 8 record words. */
  readonly w = new Uint32Array(8);

  /**
   * Starts a record: clears it and writes EventID, SSV/SubstreamID and StreamID (dword 0).
   * Per IHI 0070 §7.3: C_BAD_SUBSTREAMID (§7.3.9) has no SSV qualifier — SubstreamID is always
   * valid (0 when the transaction had none and CD 0 was being fetched via S1DSS = 0b10);
   * F_STREAM_DISABLED (§7.3.7) and F_TRANSL_FORBIDDEN (§7.3.8) define no SSV / SubstreamID (RES0).
   * @param ssid - the transaction's SubstreamID, or a negative number when it had none (SSV = 0)
   */
  begin(id: number, sid: number, ssid: number): this {
    const w = this.w;
    w.fill(0);
    const ev = id & 0xff;
    if (ev === 0x08) w[0] = (ev | (((ssid >= 0 ? ssid : 0) & 0xfffff) << 12)) >>> 0;
    else if (ev === 0x06 || ev === 0x07) w[0] = ev;
    else w[0] = ssid >= 0 ? (ev | (1 << 11) | ((ssid & 0xfffff) << 12)) >>> 0 : ev;
    w[1] = sid >>> 0;
    return this;
  }

  /**
   * Translation-fault fields (dwords 1 and 2): STAG [15:0], Stall [31], PnU [33], InD [34], RnW [35],
   * S2 [39], CLASS [41:40], TTRnW [44], InputAddr (dword 2, the full input address).
   */
  translation(
    stag: number,
    stall: boolean,
    pnu: boolean,
    ind: boolean,
    rnw: boolean,
    s2: boolean,
    cls: number,
    ttrnw: boolean,
    inputAddr: number,
  ): this {
    const w = this.w;
    w[2] = ((stag & 0xffff) | (stall ? 0x80000000 : 0)) >>> 0;
    w[3] = ((pnu ? 1 << 1 : 0) | (ind ? 1 << 2 : 0) | (rnw ? 1 << 3 : 0) | (s2 ? 1 << 7 : 0) | ((cls & 3) << 8) | (ttrnw ? 1 << 12 : 0)) >>> 0;
    this.inputAddr(inputAddr);
    return this;
  }

  /** RnW alone (F_TRANSL_FORBIDDEN, §7.3.8: bit 99 = dword 1 bit 35). */
  rnw(rnw: boolean): this {
    this.w[3] = (this.w[3] & ~0x8) | (rnw ? 1 << 3 : 0);
    return this;
  }

  /** InputAddr: dword 2, [63:0]. */
  inputAddr(addr: number): this {
    this.w[4] = addr >>> 0;
    this.w[5] = Math.floor(addr / TWO_32) >>> 0;
    return this;
  }

  /** Access bits of a non-translation record that carries them (F_BAD_ATS_TREQ, F_UUT): PnU, InD, RnW. */
  access(pnu: boolean, ind: boolean, rnw: boolean): this {
    this.w[3] = (this.w[3] & ~0xe) | (pnu ? 1 << 1 : 0) | (ind ? 1 << 2 : 0) | (rnw ? 1 << 3 : 0);
    return this;
  }

  /** IPA [51:12] of dword 3 (stage-2 faults). */
  ipa(ipa: number): this {
    this.w[6] = (ipa >>> 0) & 0xfffff000;
    this.w[7] = Math.floor(ipa / TWO_32) & 0xfffff;
    return this;
  }

  /** FetchAddr [51:3] of dword 3 (F_STE_FETCH, F_CD_FETCH, F_WALK_EABT). */
  fetchAddr(pa: number): this {
    this.w[6] = ((pa >>> 0) & 0xfffffff8) >>> 0;
    this.w[7] = Math.floor(pa / TWO_32) & 0xfffff;
    return this;
  }
}
