/**
 * The codec against every worked encoding of smmuv3.md: §2.3 STEs, §2.4 L1STD, §3.2 L1CD,
 * §3.3 CD, §4.8 commands, §5.4 event record, §7.5 PTE words. Words are built with packFields
 * and compared with toDwords; decoding goes through getField / getAddr / unpackFields.
 */
import { describe, expect, it } from 'vitest';
import {
  CFGI_RANGE_ALL,
  CMD_FIELDS,
  Cd,
  CmdField,
  CmdOp,
  Evt,
  EvtId,
  L1Cd,
  L1Std,
  MAIR_LINUX,
  PTE_AF,
  PTE_AP_RDONLY,
  PTE_AP_UNPRIV,
  PTE_ATTRINDX_SHIFT,
  PTE_NG,
  PTE_S2AP_READ,
  PTE_S2AP_WRITE,
  PTE_S2_MEMATTR_NC,
  PTE_S2_MEMATTR_OIWB,
  PTE_S2_MEMATTR_SHIFT,
  PTE_SH_IS,
  PTE_SH_OS,
  PTE_SH_SHIFT,
  PTE_TYPE_BLOCK,
  PTE_TYPE_PAGE,
  PTE_XN_HI,
  PTE_DBM_HI,
  PriResp,
  Priq,
  ResumeAction,
  SH_ISH,
  S1Dss,
  Ste,
  SteConfig,
  SyncCs,
  Tg,
  Tg1,
  fromDwords,
  getAddr,
  getField,
  packFields,
  setAddr,
  setField,
  toDwords,
  unpackFields,
  type Field,
} from '../src/codec/index.js';

/** Builds a command with packFields (2 dwords). */
function cmd(values: Parameters<typeof packFields<typeof CmdField>>[1]): bigint[] {
  return toDwords(packFields(CmdField, values, 2));
}

describe('§2.3 STE worked values', () => {
  it('abort STE: dword0 = V | Config 0 = 0x1', () => {
    const w = packFields(Ste, { V: 1, CONFIG: SteConfig.ABORT }, 8);
    expect(toDwords(w)).toEqual([0x1n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]);
  });

  it('bypass STE: dword0 = 0x9; SHCFG = 1 is 1 << 44 in dword1', () => {
    expect(toDwords(packFields(Ste, { V: 1, CONFIG: SteConfig.BYPASS }, 8))[0]).toBe(0x9n);
    expect(toDwords(packFields(Ste, { V: 1, CONFIG: SteConfig.BYPASS, SHCFG: 1 }, 8)).slice(0, 2)).toEqual([0x9n, 1n << 44n]);
  });

  it('S1 STE with a single CD at 0x8000_0000: dword0 0x000000008000000B, dword1 0xD6', () => {
    const w = packFields(Ste, { V: 1, CONFIG: SteConfig.S1_TRANS, S1DSS: S1Dss.SSID0, S1CIR: 1, S1COR: 1, S1CSH: 3 }, 8);
    setAddr(w, 0, Ste.S1_CONTEXT_PTR, 0x8000_0000);
    expect(toDwords(w).slice(0, 2)).toEqual([0x000000008000000bn, 0xd6n]);
    expect(getAddr(w, 0, Ste.S1_CONTEXT_PTR)).toBe(0x8000_0000);
    expect(getField(w, 0, Ste.CONFIG)).toBe(5);
    expect(getField(w, 0, Ste.S1DSS)).toBe(2);
  });

  it('S1 STE general form 0xB | f<<4 | P[51:6] | c<<59 (P above 4 GiB, fmt 2, S1CDMax 20)', () => {
    const P = 0x000f_1234_5678_9ac0;
    const w = packFields(Ste, { V: 1, CONFIG: 5, S1FMT: 2, S1_CD_MAX: 20 }, 8);
    setAddr(w, 0, Ste.S1_CONTEXT_PTR, P);
    expect(toDwords(w)[0]).toBe(0xbn | (2n << 4n) | BigInt(P) | (20n << 59n));
    expect(getAddr(w, 0, Ste.S1_CONTEXT_PTR)).toBe(P);
    expect(getField(w, 0, Ste.S1_CD_MAX)).toBe(20);
  });

  it('S2 STE, VMID 1, IAS 40, 4 KB, OAS 44: VTCR 0x43558, dword2 = 0x044C355800000001', () => {
    const w = packFields(
      Ste,
      {
        V: 1,
        CONFIG: SteConfig.S2_TRANS,
        S2VMID: 1,
        S2T0SZ: 24,
        S2SL0: 1,
        S2IR0: 1,
        S2OR0: 1,
        S2SH0: 3,
        S2TG: Tg.G4K,
        S2PS: 4,
        S2AA64: 1,
        S2PTW: 1,
        S2R: 1,
      },
      8,
    );
    setAddr(w, 0, Ste.S2TTB, 0x1234_5000);
    const d = toDwords(w);
    expect(d[0]).toBe(0xdn);
    expect(d[2]).toBe(0x044c355800000001n);
    expect(d[3]).toBe(0x1234_5000n);
    // The VTCR as Linux packs it (T0SZ [5:0] SL0 [7:6] IR0 [9:8] OR0 [11:10] SH0 [13:12] TG [15:14] PS [18:16]) at [50:32].
    expect((d[2] >> 32n) & 0x7ffffn).toBe(0x43558n);
    const f = unpackFields(Ste, w);
    expect([f.S2T0SZ, f.S2SL0, f.S2IR0, f.S2OR0, f.S2SH0, f.S2TG, f.S2PS, f.S2AA64, f.S2PTW, f.S2R, f.S2S]).toEqual([
      24, 1, 1, 1, 3, 0, 4, 1, 1, 1, 0,
    ]);
    expect(getAddr(w, 0, Ste.S2TTB)).toBe(0x1234_5000);
  });

  it('STE dword1 single-bit fields at their bits (PPAR 18, MEV 19, S2FWB 25, S1STALLD 27, EATS [29:28], STRW [31:30])', () => {
    const cases: [keyof typeof Ste, number, bigint][] = [
      ['PPAR', 1, 1n << 18n],
      ['MEV', 1, 1n << 19n],
      ['S2FWB', 1, 1n << 25n],
      ['S1STALLD', 1, 1n << 27n],
      ['EATS', 1, 1n << 28n],
      ['EATS', 2, 2n << 28n],
      ['STRW', 2, 2n << 30n],
      ['SHCFG', 1, 1n << 44n],
    ];
    for (const [name, v, dw1] of cases) expect(toDwords(packFields(Ste, { [name]: v }, 8))[1]).toBe(dw1);
  });

  it('STE dword2 stage-2 flag bits (S2ENDI 52, S2AFFD 53, S2HD 55, S2HA 56, S2S 57)', () => {
    const cases: [keyof typeof Ste, bigint][] = [
      ['S2ENDI', 1n << 52n],
      ['S2AFFD', 1n << 53n],
      ['S2HD', 1n << 55n],
      ['S2HA', 1n << 56n],
      ['S2S', 1n << 57n],
    ];
    for (const [name, dw2] of cases) expect(toDwords(packFields(Ste, { [name]: 1 }, 8))[2]).toBe(dw2);
  });
});

describe('§2.4 L1STD and §3.2 L1CD', () => {
  it('L1STD: Span [4:0] = 9 (Linux), L2Ptr [51:6]', () => {
    const w = packFields(L1Std, { SPAN: 9 }, 1);
    setAddr(w, 0, L1Std.L2PTR, 0x0000_0012_3456_4000);
    expect(toDwords(w)).toEqual([0x0000_0012_3456_4009n]);
    expect(getField(w, 0, L1Std.SPAN)).toBe(9);
    expect(getAddr(w, 0, L1Std.L2PTR)).toBe(0x12_3456_4000);
  });

  it('L1CD: V [0], L2Ptr [51:12]', () => {
    const w = packFields(L1Cd, { V: 1 }, 1);
    setAddr(w, 0, L1Cd.L2PTR, 0x000f_ffff_ffff_f000);
    expect(toDwords(w)).toEqual([0x000f_ffff_ffff_f001n]);
    expect(getAddr(w, 0, L1Cd.L2PTR)).toBe(0x000f_ffff_ffff_f000);
  });
});

describe('§3.3 CD Linux writes', () => {
  it('48-bit IAS, 4 KB, coherent, OAS 44, ASID 1: dword0 = 0x0001E204C0003510; MAIR 0xF404FF44', () => {
    const w = packFields(
      Cd,
      { T0SZ: 16, TG0: Tg.G4K, IR0: 1, OR0: 1, SH0: 3, EPD1: 1, V: 1, IPS: 4, AA64: 1, R: 1, A: 1, ASET: 1, ASID: 1, MAIR0: MAIR_LINUX },
      8,
    );
    setAddr(w, 0, Cd.TTB0, 0x4_5678_9000);
    const d = toDwords(w);
    expect(d[0]).toBe(0x0001e204c0003510n);
    expect(d[1]).toBe(0x4_5678_9000n);
    expect(d[3]).toBe(0x00000000f404ff44n);
    const f = unpackFields(Cd, w);
    expect([f.T0SZ, f.TG0, f.IR0, f.OR0, f.SH0, f.EPD0, f.EPD1, f.V, f.IPS, f.AA64, f.R, f.A, f.ASET, f.ASID, f.S, f.HA, f.HD]).toEqual([
      16, 0, 1, 1, 3, 0, 1, 1, 4, 1, 1, 1, 1, 1, 0, 0, 0,
    ]);
    expect(getAddr(w, 0, Cd.TTB0)).toBe(0x4_5678_9000);
  });

  it('CD single-bit fields at §3.1 positions', () => {
    const cases: [keyof typeof Cd, bigint][] = [
      ['EPD0', 1n << 14n],
      ['ENDI', 1n << 15n],
      ['EPD1', 1n << 30n],
      ['V', 1n << 31n],
      ['AFFD', 1n << 35n],
      ['WXN', 1n << 36n],
      ['UWXN', 1n << 37n],
      ['TBI0', 1n << 38n],
      ['TBI1', 1n << 39n],
      ['PAN', 1n << 40n],
      ['AA64', 1n << 41n],
      ['HD', 1n << 42n],
      ['HA', 1n << 43n],
      ['S', 1n << 44n],
      ['R', 1n << 45n],
      ['A', 1n << 46n],
      ['ASET', 1n << 47n],
    ];
    for (const [name, dw0] of cases) expect(toDwords(packFields(Cd, { [name]: 1 }, 8))[0]).toBe(dw0);
    expect(toDwords(packFields(Cd, { T1SZ: 0x3f, TG1: Tg1.G4K }, 8))[0]).toBe((0x3fn << 16n) | (2n << 22n));
    expect(toDwords(packFields(Cd, { HAD0: 1 }, 8))[1]).toBe(2n);
    expect(toDwords(packFields(Cd, { HAD1: 1 }, 8))[2]).toBe(2n);
  });
});

describe('IHI 0070 §5.4 CD MPAM fields', () => {
  it('PARTID is bits [367:352] and PMG bits [375:368]: dword 5 [47:32] and [55:48]', () => {
    const w = packFields(Cd, { PARTID: 0xbeef, PMG: 0xa5 }, 8);
    expect(Array.from(w)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xa5beef, 0, 0, 0, 0]);
  });
});

describe('§4.8 command worked encodings (dword0, dword1)', () => {
  it('CMD_SYNC CS=SEV, MSH=ISH, MSIAttr=0xF: 0x0FC02046, 0', () => {
    expect(cmd({ OPCODE: CmdOp.SYNC, CS: SyncCs.SEV, MSH: SH_ISH, MSIATTR: 0xf })).toEqual([0x0fc02046n, 0n]);
  });

  it('CMD_SYNC CS=IRQ (MSI-poll): 0x0FC01046, MSIAddress = the entry address', () => {
    const w = packFields(CmdField, { OPCODE: CmdOp.SYNC, CS: SyncCs.IRQ, MSH: SH_ISH, MSIATTR: 0xf }, 2);
    setAddr(w, 0, CmdField.MSIADDR, 0x12_3456_7890);
    expect(toDwords(w)).toEqual([0x0fc01046n, 0x12_3456_7890n]);
    expect(getAddr(w, 0, CmdField.MSIADDR)).toBe(0x12_3456_7890);
  });

  it('CFGI_STE SID 5, Leaf: 0x0000_0005_0000_0003, 0x1', () => {
    expect(cmd({ OPCODE: CmdOp.CFGI_STE, SID: 5, LEAF: 1 })).toEqual([0x0000_0005_0000_0003n, 0x1n]);
  });

  it('CFGI_ALL: 0x4, 0x1F', () => {
    expect(cmd({ OPCODE: CmdOp.CFGI_STE_RANGE, RANGE: CFGI_RANGE_ALL })).toEqual([0x4n, 0x1fn]);
  });

  it('TLBI_NH_ASID ASID 1 (VMID 0): 0x0001_0000_0000_0011, 0', () => {
    expect(cmd({ OPCODE: CmdOp.TLBI_NH_ASID, ASID: 1 })).toEqual([0x0001_0000_0000_0011n, 0n]);
  });

  it('TLBI_NH_VA ASID 1, VA 0x1000, Leaf, TG=0: 0x0001_0000_0000_0012, 0x1001', () => {
    const w = packFields(CmdField, { OPCODE: CmdOp.TLBI_NH_VA, ASID: 1, LEAF: 1 }, 2);
    setAddr(w, 0, CmdField.ADDR, 0x1000);
    expect(toDwords(w)).toEqual([0x0001_0000_0000_0012n, 0x1001n]);
    expect(getAddr(w, 0, CmdField.ADDR)).toBe(0x1000);
  });

  it('TLBI_S12_VMALL VMID 1: 0x0000_0001_0000_0028, 0', () => {
    expect(cmd({ OPCODE: CmdOp.TLBI_S12_VMALL, VMID: 1 })).toEqual([0x0000_0001_0000_0028n, 0n]);
  });

  it('TLBI_NSNH_ALL: 0x30, 0', () => {
    expect(cmd({ OPCODE: CmdOp.TLBI_NSNH_ALL })).toEqual([0x30n, 0n]);
  });

  it('ATC_INV SID 2, all: 0x0000_0002_0000_0040, 0x34', () => {
    expect(cmd({ OPCODE: CmdOp.ATC_INV, SID: 2, ATC_SIZE: 52 })).toEqual([0x0000_0002_0000_0040n, 0x34n]);
  });

  it('PRI_RESP SID 0x10, SSV, SSID 3, PRGI 5, Success: 0x0000_0010_0000_3841, 0x2005', () => {
    expect(cmd({ OPCODE: CmdOp.PRI_RESP, SID: 0x10, SSV: 1, SSID: 3, PRGI: 5, RESP: PriResp.SUCC })).toEqual([
      0x0000_0010_0000_3841n,
      0x2005n,
    ]);
  });

  it('RESUME SID 0x10, RETRY, STAG 7: 0x0000_0010_0000_1044, 0x7', () => {
    expect(cmd({ OPCODE: CmdOp.RESUME, SID: 0x10, ACTION: ResumeAction.RETRY, STAG: 7 })).toEqual([0x0000_0010_0000_1044n, 0x7n]);
  });

  it('§4.2 range fields: NUM [16:12], SCALE [24:20], VMID [47:32], ASID [63:48], TTL [9:8], TG [11:10]', () => {
    const w = packFields(CmdField, { OPCODE: CmdOp.TLBI_NH_VA, NUM: 31, SCALE: 31, VMID: 0xabcd, ASID: 0x1234, TTL: 3, TG: 2, LEAF: 1 }, 2);
    setAddr(w, 0, CmdField.ADDR, 0xffff_ffff_f000);
    expect(toDwords(w)).toEqual([
      0x1234_abcd_0000_0012n | (31n << 12n) | (31n << 20n),
      0xffff_ffff_f000n | (3n << 8n) | (2n << 10n) | 1n,
    ]);
    const f = unpackFields(CmdField, w);
    expect([f.NUM, f.SCALE, f.VMID, f.ASID, f.TTL, f.TG, f.LEAF]).toEqual([31, 31, 0xabcd, 0x1234, 3, 2, 1]);
  });

  it('every CMD_FIELDS field list names only CmdField fields, with no two fields of a command overlapping', () => {
    for (const [op, names] of Object.entries(CMD_FIELDS)) {
      const seen = new Uint32Array(4);
      for (const n of names) {
        // §4.2 itself lists PREFETCH_ADDR Stride [12:8] (⚠) next to Addr [63:12]: bit 12 is shared.
        if (Number(op) === CmdOp.PREFETCH_ADDR && n === 'ADDR') continue;
        const f: Field = CmdField[n];
        const one = new Uint32Array(4);
        setField(one, 0, f, 2 ** f.width - 1);
        for (let i = 0; i < 4; i++) {
          expect(seen[i] & one[i], `opcode ${op} field ${n}`).toBe(0);
          seen[i] |= one[i];
        }
      }
      // The opcode byte is never part of a command field.
      expect(seen[0] & 0xff).toBe(0);
    }
  });
});

describe('§5.4 event record example', () => {
  it('F_TRANSLATION, SID 5, no SSID, read of 0x1234000 at stage 1', () => {
    const w = packFields(Evt, { ID: EvtId.F_TRANSLATION, SID: 5, RNW: 1, INPUT_ADDR_LO: 0x1234000 }, 4);
    expect(toDwords(w)).toEqual([0x0000000500000010n, 0x0000000800000000n, 0x1234000n, 0n]);
    const back = fromDwords([0x0000000500000010n, 0x0000000800000000n, 0x1234000n, 0n]);
    const f = unpackFields(Evt, back);
    expect([f.ID, f.SID, f.SSV, f.RNW, f.S2, f.STALL, f.INPUT_ADDR_LO, f.INPUT_ADDR_HI]).toEqual([0x10, 5, 0, 1, 0, 0, 0x1234000, 0]);
  });

  it('translation-fault fields: STAG [15:0], Stall 31, PnU 33, InD 34, S2 39, CLASS [41:40], TTRnW 44, IPA [51:12], FetchAddr [51:3]', () => {
    const w = packFields(Evt, { STAG: 0xbeef, STALL: 1, PNU: 1, IND: 1, S2: 1, CLASS: 2, TTRNW: 1, SSV: 1, SSID: 0xfffff }, 4);
    const d = toDwords(w);
    expect(d[0]).toBe((1n << 11n) | (0xfffffn << 12n));
    expect(d[1]).toBe(0xbeefn | (1n << 31n) | (1n << 33n) | (1n << 34n) | (1n << 39n) | (2n << 40n) | (1n << 44n));
    const ipa = packFields(Evt, {}, 4);
    setAddr(ipa, 0, Evt.IPA, 0x000f_ffff_ffff_f000);
    expect(toDwords(ipa)[3]).toBe(0x000f_ffff_ffff_f000n);
    const fa = packFields(Evt, {}, 4);
    setAddr(fa, 0, Evt.FETCH_ADDR, 0x8_0000_0008);
    expect(toDwords(fa)[3]).toBe(0x8_0000_0008n);
    expect(getAddr(fa, 0, Evt.FETCH_ADDR)).toBe(0x8_0000_0008);
  });
});

describe('§6.1 PRI record', () => {
  it('SID [31:0], SSID [51:32], Priv 58, Exec 59, Read 60, Write 61, Last 62, PV 63, PRGI [8:0], Addr [63:12]', () => {
    const w = packFields(Priq, { SID: 0x10, SSID: 3, READ: 1, WRITE: 1, LAST: 1, PV: 1, PRGI: 5 }, 2);
    setAddr(w, 0, Priq.ADDR, 0x7f12_3456_7000);
    expect(toDwords(w)).toEqual([0x10n | (3n << 32n) | (1n << 60n) | (1n << 61n) | (1n << 62n) | (1n << 63n), 0x7f12_3456_7005n]);
    expect(toDwords(packFields(Priq, { PRIV: 1, EXEC: 1 }, 2))[0]).toBe((1n << 58n) | (1n << 59n));
  });
});

describe('§7.5 io-pgtable PTE words', () => {
  const PA = 0x1234_5000;
  const s1 = (extra: number) => PA + PTE_NG + PTE_AF + extra;
  it('S1 page R|W|CACHE → PA | 0xF47', () => {
    expect(s1(PTE_TYPE_PAGE + (1 << PTE_ATTRINDX_SHIFT) + (PTE_SH_IS << PTE_SH_SHIFT) + PTE_AP_UNPRIV)).toBe(PA + 0xf47);
  });
  it('S1 page R|CACHE (read-only) → PA | 0xFC7', () => {
    expect(s1(PTE_TYPE_PAGE + (1 << PTE_ATTRINDX_SHIFT) + (PTE_SH_IS << PTE_SH_SHIFT) + PTE_AP_UNPRIV + PTE_AP_RDONLY)).toBe(PA + 0xfc7);
  });
  it('S1 2 MB block R|W|CACHE → PA | 0xF45', () => {
    expect(0x4020_0000 + PTE_NG + PTE_AF + PTE_TYPE_BLOCK + (1 << PTE_ATTRINDX_SHIFT) + (PTE_SH_IS << PTE_SH_SHIFT) + PTE_AP_UNPRIV).toBe(
      0x4020_0000 + 0xf45,
    );
  });
  it('S1 page R|W (no cache) → PA | 0xE43', () => {
    expect(s1(PTE_TYPE_PAGE + (PTE_SH_OS << PTE_SH_SHIFT) + PTE_AP_UNPRIV)).toBe(PA + 0xe43);
  });
  it('S2 page R|W|CACHE → PA | 0x7FF', () => {
    expect(
      PA + PTE_AF + PTE_TYPE_PAGE + (PTE_S2_MEMATTR_OIWB << PTE_S2_MEMATTR_SHIFT) + (PTE_SH_IS << PTE_SH_SHIFT) + PTE_S2AP_READ + PTE_S2AP_WRITE,
    ).toBe(PA + 0x7ff);
  });
  it('S2 page R|W → PA | 0x6D7', () => {
    expect(
      PA + PTE_AF + PTE_TYPE_PAGE + (PTE_S2_MEMATTR_NC << PTE_S2_MEMATTR_SHIFT) + (PTE_SH_OS << PTE_SH_SHIFT) + PTE_S2AP_READ + PTE_S2AP_WRITE,
    ).toBe(PA + 0x6d7);
  });
  it('high-word bits: NOEXEC = 3 << 53, DBM = 1 << 51', () => {
    expect(BigInt(PTE_XN_HI) << 32n).toBe(3n << 53n);
    expect(BigInt(PTE_DBM_HI) << 32n).toBe(1n << 51n);
  });
});

describe('field helpers', () => {
  it('getField / setField round-trip every width at every position of a dword, sparing neighbours', () => {
    for (let lo = 0; lo < 64; lo++) {
      for (const width of [1, 2, 5, 16, 20, 31, 32, 40, 52]) {
        if (lo + width > 64 || width > 53) continue;
        const f: Field = { dw: 1, lo, width };
        const w = new Uint32Array(6).fill(0xffffffff);
        const v = 2 ** width - 1 - (width > 3 ? 5 : 0);
        setField(w, 0, f, v);
        expect(getField(w, 0, f)).toBe(v);
        expect(w[0]).toBe(0xffffffff);
        expect(w[1]).toBe(0xffffffff);
        expect(w[4]).toBe(0xffffffff);
        const d = toDwords(w)[1];
        const fieldMask = ((1n << BigInt(width)) - 1n) << BigInt(lo);
        expect(d & ~fieldMask).toBe(0xffff_ffff_ffff_ffffn & ~fieldMask);
        expect((d & fieldMask) >> BigInt(lo)).toBe(BigInt(v));
      }
    }
  });
});
