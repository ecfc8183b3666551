/**
 * Walk configuration checks used for C_BAD_STE (stage 2, smmuv3.md §2.5 / §7.2) and C_BAD_CD
 * (stage 1, §3.4): each rule of checkS2Config / checkS1Config, with Linux's own configurations
 * (§2.3, §3.3, §7.2) accepted.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_FEATURES } from '../src/model/features.js';
import {
  checkS1Config,
  checkS2Config,
  alignTtb,
  s1StartTableBytes,
  s2StartTableBytes,
  newS1Ctx,
  newS2Ctx,
  s1ConfigProblem,
  s2ConfigProblem,
  type WalkCaps,
} from '../src/model/walk/index.js';

const caps: WalkCaps = { granules: { '4k': true, '16k': true, '64k': true }, oas: 48, vax: false, stt: false, httu: 2 };
const with_ = (c: Partial<WalkCaps>): WalkCaps => ({ ...caps, ...c });

describe('checkS2Config (§2.5, §7.2)', () => {
  it('accepts the SMMU features object and Linux stage-2 layouts', () => {
    const f: WalkCaps = DEFAULT_FEATURES; // type-level: SmmuFeatures satisfies WalkCaps
    expect(checkS2Config(newS2Ctx({ ttb: 0x10000, t0sz: 16, sl0: 2, g: 12 }), f)).toBe(true); // 4K IAS 48, level 0
    expect(checkS2Config(newS2Ctx({ ttb: 0x2000, t0sz: 24, sl0: 1, g: 12, oaBits: 44 }), caps, 40)).toBe(true); // 4K IAS 40: 2 × L1
    expect(checkS2Config(newS2Ctx({ ttb: 0x8000, t0sz: 16, sl0: 2, g: 14 }), caps)).toBe(true); // 16K IAS 48: 2 × L1
    expect(checkS2Config(newS2Ctx({ ttb: 0x10000, t0sz: 16, sl0: 2, g: 16 }), caps)).toBe(true); // 64K IAS 48: L1, 64 entries
    expect(checkS2Config(newS2Ctx({ ttb: 0x10000, t0sz: 22, sl0: 1, g: 16 }), caps)).toBe(true); // 64K IAS 42: L2, 8192 entries
  });

  it('rejects reserved or unsupported granules and SL0 = 3', () => {
    expect(s2ConfigProblem(newS2Ctx({ g: 14, ttb: 0x8000, sl0: 2 }), with_({ granules: { '4k': true, '16k': false, '64k': true } }))).toBe('S2TG: granule reserved or not supported');
    expect(checkS2Config(newS2Ctx({ g: 0 as 12 }), caps)).toBe(false);
    expect(s2ConfigProblem(newS2Ctx({ sl0: 3 }), caps)).toBe('S2SL0: reserved value');
  });

  it('S2T0SZ range: ≥ max(16, 64 − IAS), ≤ 39 (48 with STT)', () => {
    expect(s2ConfigProblem(newS2Ctx({ t0sz: 15, ttb: 0x10000 }), caps)).toBe('S2T0SZ: out of range');
    expect(s2ConfigProblem(newS2Ctx({ t0sz: 23, sl0: 1, ttb: 0x10000 }), caps, 40)).toBe('S2T0SZ: out of range');
    expect(s2ConfigProblem(newS2Ctx({ t0sz: 40, sl0: 0, ttb: 0x1000 }), caps)).toBe('S2T0SZ: out of range');
    expect(s2ConfigProblem(newS2Ctx({ t0sz: 40, sl0: 0, ttb: 0x1000 }), with_({ stt: true }))).toBe(null);
  });

  it('start level / size combinations: > 16 concatenated tables or no bits at the start level', () => {
    // 4K level 1: IA 43 → 16 tables (ok, aligned to 64 KiB), IA 44 → 32 tables (ILLEGAL).
    expect(s2ConfigProblem(newS2Ctx({ t0sz: 21, sl0: 1, ttb: 0x10000 }), caps)).toBe(null);
    expect(s2ConfigProblem(newS2Ctx({ t0sz: 20, sl0: 1, ttb: 0x20000 }), caps)).toBe('S2SL0/S2T0SZ: more than 16 concatenated start tables');
    // 4K level 1 with IA 30: the start level resolves nothing.
    expect(s2ConfigProblem(newS2Ctx({ t0sz: 34, sl0: 1, ttb: 0x1000 }), caps)).toBe('S2SL0/S2T0SZ: start level resolves no input bits');
    // 16K level 3 (SL0 0) with IA 36: 2^22 entries → too many.
    expect(checkS2Config(newS2Ctx({ g: 14, t0sz: 28, sl0: 0, ttb: 0 }), caps)).toBe(false);
  });

  it('SL0 = 2 needs OAS ≥ 44 (4K / 64K) or ≥ 42 (16K)', () => {
    expect(s2ConfigProblem(newS2Ctx({ t0sz: 24, sl0: 2, ttb: 0x1000 }), with_({ oas: 40 }), 40)).toBe('S2SL0: start level not supported with this OAS');
    expect(checkS2Config(newS2Ctx({ g: 14, t0sz: 22, sl0: 2, ttb: 0x4000 }), with_({ oas: 42 }), 42)).toBe(true);
  });

  it('S2TTB beyond the effective S2PS is ILLEGAL; a misaligned S2TTB is not (IHI 0070 §5.2 S2TTB: aligned down)', () => {
    expect(s2ConfigProblem(newS2Ctx({ t0sz: 24, sl0: 1, ttb: 0x100_0000_0000, oaBits: 40 }), caps, 40)).toBe('S2TTB: outside S2PS');
    // 4 KiB granule without DS: outside a 48-bit range is ILLEGAL even with a 52-bit S2PS
    expect(s2ConfigProblem(newS2Ctx({ t0sz: 16, sl0: 2, ttb: 2 ** 48, oaBits: 52 }), with_({ oas: 52 }))).toBe('S2TTB: outside S2PS');
    expect(checkS2Config(newS2Ctx({ t0sz: 24, sl0: 1, ttb: 0x1000 }), caps, 40)).toBe(true);
    expect(checkS2Config(newS2Ctx({ t0sz: 24, sl0: 1, ttb: 0x2000 }), caps, 40)).toBe(true);
    // 2 concatenated level-1 tables: 8 KiB, bits [12:0] treated as zero
    const s2 = newS2Ctx({ t0sz: 24, sl0: 1, ttb: 0x3008 });
    expect(alignTtb(s2.ttb, s2StartTableBytes(s2), 40)).toBe(0x2000);
    expect(alignTtb(0x1234, 32, 52)).toBe(0x1200); // 52-bit output: at least 64-byte alignment
  });
});

describe('checkS1Config (§3.4)', () => {
  const linux = newS1Ctx({ ttb0: 0x8000_0000, t0sz: 16, g0: 12, epd0: false, epd1: true, oaBits: 44 });

  it('accepts the Linux paging-domain CD, with HA+HD', () => {
    expect(s1ConfigProblem(linux, caps)).toBe(null);
    expect(checkS1Config({ ...linux, ha: true, hd: true }, caps)).toBe(true);
  });

  it('HA needs HTTU ≥ 1; HD needs HTTU = 2 (HD without HA is not ILLEGAL, IHI 0070 §5.4 HA)', () => {
    expect(s1ConfigProblem({ ...linux, ha: true }, with_({ httu: 0 }))).toBe('CD.HA: no HTTU support');
    expect(s1ConfigProblem({ ...linux, ha: true, hd: true }, with_({ httu: 1 }))).toBe('CD.HD: needs HTTU = 2');
    expect(s1ConfigProblem({ ...linux, hd: true }, caps)).toBe(null);
  });

  it('TxSZ range: 16..39, 12 with VAX for 64 KiB, up to 48 (47 for 64 KiB) with STT', () => {
    expect(s1ConfigProblem({ ...linux, t0sz: 15 }, caps)).toBe('TxSZ: out of range');
    expect(checkS1Config({ ...linux, t0sz: 12, g0: 16, ttb0: 0x10000 }, with_({ vax: true }))).toBe(true);
    expect(checkS1Config({ ...linux, t0sz: 12, g0: 12 }, with_({ vax: true }))).toBe(false);
    expect(checkS1Config({ ...linux, t0sz: 40 }, caps)).toBe(false);
    expect(checkS1Config({ ...linux, t0sz: 48 }, with_({ stt: true }))).toBe(true);
    expect(checkS1Config({ ...linux, t0sz: 48, g0: 16 }, with_({ stt: true }))).toBe(false);
  });

  it('granule must be supported; a disabled region is not checked; TTB1 is checked when EPD1 = 0', () => {
    expect(s1ConfigProblem({ ...linux, g0: 16 }, with_({ granules: { '4k': true, '16k': true, '64k': false } }))).toBe('TGx: granule reserved or not supported');
    expect(checkS1Config({ ...linux, epd0: true, t0sz: 0, g0: 0 as 12, ttb0: 3 }, caps)).toBe(true);
    expect(checkS1Config({ ...linux, epd1: false, t1sz: 60 }, caps)).toBe(false);
    expect(checkS1Config({ ...linux, epd1: false, t1sz: 16, g1: 12, ttb1: 0x9000_0000 }, caps)).toBe(true);
  });

  it('TTBx below 2^IPS; alignment is not a legality rule (IHI 0070 §5.4 TTB0: the SMMU aligns it down)', () => {
    expect(s1ConfigProblem({ ...linux, ttb0: 0x1000_0000_0000 }, caps)).toBe('TTBx: outside IPS');
    expect(checkS1Config({ ...linux, ttb0: 0x1800 }, caps)).toBe(true);
    expect(alignTtb(0x1800, s1StartTableBytes(16, 12), 44)).toBe(0x1000); // 512-entry table: 4 KiB
    expect(alignTtb(0x1018, s1StartTableBytes(24, 12), 44)).toBe(0x1010); // IA 40: 2 entries, 16 bytes
  });
});
