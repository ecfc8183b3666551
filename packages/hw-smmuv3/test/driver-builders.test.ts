/**
 * The driver's encoders and builders against the worked encodings of smmuv3.md: commands (§4.8),
 * STEs (§2.3), CDs (§3.3), the §2.6 used-bit masks and update protocol, the §4.3 range-TLBI
 * algorithm, the §4.4 ATC span, event / PRI decoding (§5.4, §6.1) and hw_info (§9.2).
 */
import { FaultReason, PgFaultPerm } from '@iommulab/driver-api';
import { PhysMem } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { Cd, CmdOp, Ste, fromDwords, getField, toDwords } from '../src/codec/index.js';
import { CD_WORDS, getCdUsed, makeS1Cd } from '../src/driver/cd-build.js';
import {
  cmdAtcInvAll,
  cmdCfgiAll,
  cmdCfgiCd,
  cmdCfgiSte,
  cmdOpOnly,
  cmdPrefetchConfig,
  cmdPriResp,
  cmdResume,
  cmdSync,
  cmdTlbiNhAsid,
  cmdTlbiS12Vmall,
  cmdTlbiS2Ipa,
  cmdTlbiVa,
  priRespOf,
  resumeActionOf,
} from '../src/driver/cmd-build.js';
import { queueConsumed } from '../src/driver/cmdq.js';
import { entryQwordDiff, writeEntry, type EntryWriter } from '../src/driver/entry-update.js';
import { decodeEvent, decodePriRecord, faultReasonOfEvent } from '../src/driver/events.js';
import { buildHwInfoArmSmmuv3 } from '../src/driver/hw-info.js';
import { validateVste } from '../src/driver/nested-domain.js';
import { STE_WORDS, getSteUsed, makeAbortSte, makeBypassSte, makeCdTableSte, makeNestedSte, makeS2Ste } from '../src/driver/ste-build.js';
import { atcInvSpan, planTlbiRange } from '../src/driver/tlb-inv.js';

const cmd = (fill: (u32: Uint32Array, w: number) => void): bigint[] => {
  const u = new Uint32Array(4);
  fill(u, 0);
  return toDwords(u);
};

describe('command encoders (smmuv3.md §4.2, §4.8 worked encodings)', () => {
  it('CMD_SYNC CS=SEV (Linux default) and CS=IRQ MSI-poll at the entry address', () => {
    expect(cmd((u, w) => cmdSync(u, w, 0))).toEqual([0x0fc02046n, 0n]);
    expect(cmd((u, w) => cmdSync(u, w, 0x12340))).toEqual([0x0fc01046n, 0x12340n]);
  });
  it('configuration invalidations', () => {
    expect(cmd((u, w) => cmdCfgiSte(u, w, 5, true))).toEqual([0x0000_0005_0000_0003n, 1n]);
    expect(cmd((u, w) => cmdCfgiAll(u, w))).toEqual([0x4n, 0x1fn]);
    expect(cmd((u, w) => cmdCfgiCd(u, w, 7, 3, false))).toEqual([0x0000_0007_0000_3005n, 0n]);
    expect(cmd((u, w) => cmdPrefetchConfig(u, w, 9))).toEqual([0x0000_0009_0000_0001n, 0n]);
  });
  it('TLB invalidations', () => {
    expect(cmd((u, w) => cmdTlbiNhAsid(u, w, 1, 0))).toEqual([0x0001_0000_0000_0011n, 0n]);
    expect(cmd((u, w) => cmdTlbiVa(u, w, CmdOp.TLBI_NH_VA, 1, 0, 0x1000, true, 0, 0, 0, 0))).toEqual([0x0001_0000_0000_0012n, 0x1001n]);
    expect(cmd((u, w) => cmdTlbiS12Vmall(u, w, 1))).toEqual([0x0000_0001_0000_0028n, 0n]);
    expect(cmd((u, w) => cmdOpOnly(u, w, CmdOp.TLBI_NSNH_ALL))).toEqual([0x30n, 0n]);
    // range form: NUM [16:12], SCALE [24:20], TTL [9:8], TG [11:10], a 40-bit address
    expect(cmd((u, w) => cmdTlbiVa(u, w, CmdOp.TLBI_NH_VA, 0x1234, 0, 0x12_3456_7000, true, 1, 3, 31, 5))).toEqual([
      0x1234_0000_0051_f012n,
      0x12_3456_7701n,
    ]);
    expect(cmd((u, w) => cmdTlbiS2Ipa(u, w, 7, 0x8000_0000, false, 1, 0, 1, 0))).toEqual([0x0000_0007_0000_102an, 0x8000_0400n]);
  });
  it('ATC_INV, PRI_RESP, RESUME', () => {
    expect(cmd((u, w) => cmdAtcInvAll(u, w, 2, -1))).toEqual([0x0000_0002_0000_0040n, 0x34n]);
    expect(cmd((u, w) => cmdPriResp(u, w, 0x10, 3, 5, 2))).toEqual([0x0000_0010_0000_3841n, 0x2005n]);
    expect(cmd((u, w) => cmdResume(u, w, 0x10, 7, 1))).toEqual([0x0000_0010_0000_1044n, 0x7n]);
  });
  it('response code mapping (IHI 0070 §4.5.2 Resp 0b00 ResponseFailure, 0b01 InvalidRequest, 0b10 Success): SUCCESS → Resp 2 / RETRY, INVALID → 1 / ABORT, FAILURE → 0 / ABORT', () => {
    expect([priRespOf(0), priRespOf(1), priRespOf(2)]).toEqual([2, 1, 0]);
    expect([resumeActionOf(0), resumeActionOf(1), resumeActionOf(2)]).toEqual([1, 2, 2]);
  });
  it('queue_consumed (§1.5): equal wraps cons > p, different wraps cons <= p', () => {
    expect(queueConsumed(0x5, 0x4, 7)).toBe(true);
    expect(queueConsumed(0x4, 0x4, 7)).toBe(false);
    expect(queueConsumed(0x80, 0x7f, 7)).toBe(true); // wrapped past the last entry
    expect(queueConsumed(0x81, 0x1, 7)).toBe(true);
    expect(queueConsumed(0x82, 0x1, 7)).toBe(false);
  });
});

describe('STE builders (smmuv3.md §2.3)', () => {
  it('abort and bypass', () => {
    expect(toDwords(makeAbortSte(new Uint32Array(16)))).toEqual([1n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]);
    expect(toDwords(makeBypassSte(new Uint32Array(16), false)).slice(0, 2)).toEqual([9n, 0n]);
    expect(toDwords(makeBypassSte(new Uint32Array(16), true)).slice(0, 2)).toEqual([9n, 1n << 44n]);
  });
  it('S1 (cdtable) STE with a single CD at 0x8000_0000: dword0 0x8000000B, dword1 0xD6', () => {
    const ste = makeCdTableSte(new Uint32Array(16), { cdPtr: 0x8000_0000, s1fmt: 0, s1cdmax: 0, s1dss: 2, ats: false, smmuStalls: false, stallEnabled: false, attrTypesOvr: false });
    expect(toDwords(ste).slice(0, 4)).toEqual([0x8000000bn, 0xd6n, 0n, 0n]);
    const s = makeCdTableSte(new Uint32Array(16), { cdPtr: 0x40000, s1fmt: 2, s1cdmax: 20, s1dss: 1, ats: true, smmuStalls: true, stallEnabled: false, attrTypesOvr: true });
    // S1Fmt 2, S1CDMax 20; S1DSS bypass, S1STALLD, EATS 1, SHCFG incoming
    expect(toDwords(s).slice(0, 2)).toEqual([(20n << 59n) | 0x40000n | (2n << 4n) | 0xbn, 0xd5n | (1n << 27n) | (1n << 28n) | (1n << 44n)]);
  });
  it('S2 STE, VMID 1, IAS 40, 4 KiB, OAS 44, coherent: dword2 0x044C355800000001', () => {
    const ste = makeS2Ste(new Uint32Array(16), { vmid: 1, vtcr: 0x43558, s2ttb: 0x1234_5000, ats: false, stallEnabled: false, fwb: false, attrTypesOvr: false });
    expect(toDwords(ste).slice(0, 4)).toEqual([0xdn, 0n, 0x044c355800000001n, 0x1234_5000n]);
    const s = makeS2Ste(new Uint32Array(16), { vmid: 1, vtcr: 0x43558, s2ttb: 0x1000, ats: true, stallEnabled: true, fwb: true, attrTypesOvr: true });
    expect(toDwords(s)[1]).toEqual((1n << 28n) | (1n << 25n) | (1n << 44n));
    expect(toDwords(s)[2] & (1n << 57n)).toBe(1n << 57n); // S2S
  });
  it('nested STE (§9.3): the parent S2 STE with Config 7, the guest fields and MEV', () => {
    const s2 = makeS2Ste(new Uint32Array(16), { vmid: 3, vtcr: 0x43558, s2ttb: 0x2000, ats: false, stallEnabled: false, fwb: false, attrTypesOvr: false });
    const guest = fromDwords([0xb0000n | 0xbn | (2n << 4n) | (4n << 59n), 0xd6n]);
    const ste = makeNestedSte(new Uint32Array(16), s2, guest, true);
    const d = toDwords(ste);
    expect(d[0]).toBe(0xb0000n | 0xfn | (2n << 4n) | (4n << 59n));
    expect(d[1]).toBe(0xd6n | (1n << 19n) | (1n << 28n));
    expect(d.slice(2, 4)).toEqual(toDwords(s2).slice(2, 4));
  });
  it('vSTE validation (§9.3): V = 0 zeroes, stray bits / bad Config / EATS 2 are EIO, EATS stripped', () => {
    expect(Array.from(validateVste(fromDwords([0xan, 0x1n])).ste)).toEqual([0, 0, 0, 0]);
    expect(() => validateVste(fromDwords([0x9n | (1n << 52n), 0n]))).toThrow(/EIO/);
    expect(() => validateVste(fromDwords([0xdn, 0n]))).toThrow(/EIO/);
    expect(() => validateVste(fromDwords([0xbn, 2n << 28n]))).toThrow(/EIO/);
    const ok = validateVste(fromDwords([0xb1000n | 0xbn, 0xd6n | (1n << 28n)]));
    expect(toDwords(ok.ste)).toEqual([0xb1000n | 0xbn, 0xd6n]);
    expect(ok.enableAts).toBe(true);
  });
  it('used bits (§2.6): V only when invalid; S1 adds the CD-table fields and S2VMID; S2 adds VTCR and S2TTB', () => {
    const used = new Uint32Array(16);
    getSteUsed(new Uint32Array(16), 0, used);
    expect(toDwords(used)).toEqual([1n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]);
    getSteUsed(makeAbortSte(new Uint32Array(16)), 0, used);
    expect(toDwords(used)[0]).toBe(0xfn);
    getSteUsed(makeBypassSte(new Uint32Array(16), false), 0, used);
    expect(toDwords(used).slice(0, 3)).toEqual([0xfn, 3n << 44n, 0n]);
    const s1 = makeCdTableSte(new Uint32Array(16), { cdPtr: 0x1000, s1fmt: 0, s1cdmax: 0, s1dss: 2, ats: false, smmuStalls: false, stallEnabled: false, attrTypesOvr: false });
    getSteUsed(s1, 0, used);
    const d = toDwords(used);
    expect(d[0]).toBe(0xf80f_ffff_ffff_ffffn);
    expect(d[2]).toBe(0xffffn);
    expect(d[3]).toBe(0n);
    const s2 = makeS2Ste(new Uint32Array(16), { vmid: 1, vtcr: 0x43558, s2ttb: 0x1000, ats: false, stallEnabled: false, fwb: false, attrTypesOvr: false });
    getSteUsed(s2, 0, used);
    expect(toDwords(used)[3]).toBe(0x000f_ffff_ffff_fff0n);
  });
});

describe('CD builder (smmuv3.md §3.3)', () => {
  const tcr = { t0sz: 16, tg: 0, ir: 1, or: 1, sh: 3, ips: 4 };
  it('48-bit IAS, 4 KiB, coherent, OAS 44, ASID 1 → dword0 0x0001E204C0003510; TTB0; MAIR 0xF404FF44', () => {
    const cd = makeS1Cd(new Uint32Array(16), { tcr, ttb0: 0x7654_3000, asid: 1, stall: false, dirty: false });
    expect(toDwords(cd).slice(0, 4)).toEqual([0x0001e204c0003510n, 0x7654_3000n, 0n, 0xf404ff44n]);
  });
  it('stall → S; dirty tracking → HA + HD', () => {
    const cd = makeS1Cd(new Uint32Array(16), { tcr, ttb0: 0x1000, asid: 0x42, stall: true, dirty: true });
    expect(getField(cd, 0, Cd.S)).toBe(1);
    expect(getField(cd, 0, Cd.HA)).toBe(1);
    expect(getField(cd, 0, Cd.HD)).toBe(1);
    expect(getField(cd, 0, Cd.ASID)).toBe(0x42);
  });
  it('used bits: V only when invalid, everything when valid (minus TTB0 fields with EPD0)', () => {
    const used = new Uint32Array(CD_WORDS);
    getCdUsed(new Uint32Array(16), 0, used);
    expect(toDwords(used)).toEqual([0x8000_0000n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]);
    const cd = makeS1Cd(new Uint32Array(16), { tcr, ttb0: 0x1000, asid: 1, stall: false, dirty: false });
    getCdUsed(cd, 0, used);
    expect(toDwords(used)[1]).toBe(0xffff_ffff_ffff_ffffn);
    cd[0] |= 1 << 14; // EPD0
    getCdUsed(cd, 0, used);
    expect(toDwords(used)[0] & 0x3fffn).toBe(0n);
    expect(toDwords(used)[1]).toBe(~0x000f_ffff_ffff_fff0n & 0xffff_ffff_ffff_ffffn);
  });
});

describe('update protocol (smmuv3.md §2.6, Linux KUnit expectations)', () => {
  const mem = PhysMem.create(1024 * 1024);
  const pa = mem.allocFrame();
  const w = pa >>> 2;
  const snapshots: bigint[][] = [];
  const writer: EntryWriter = {
    getUsed: getSteUsed,
    sync: async () => {
      snapshots.push(toDwords(mem.u32, w, 4));
    },
  };
  const set = (ste: Uint32Array) => mem.u32.set(ste, w);
  // Linux's KUnit SMMU has ATTR_TYPES_OVR: its bypass STE carries SHCFG = incoming.
  const bypass = makeBypassSte(new Uint32Array(16), true);
  const abort = makeAbortSte(new Uint32Array(16));
  const cdtab = (cd: number, dss = 2) => makeCdTableSte(new Uint32Array(16), { cdPtr: cd, s1fmt: 0, s1cdmax: 0, s1dss: dss, ats: false, smmuStalls: false, stallEnabled: false, attrTypesOvr: false });
  const s2 = (vmid: number) => makeS2Ste(new Uint32Array(16), { vmid, vtcr: 0x43558, s2ttb: 0x5000, ats: false, stallEnabled: false, fwb: false, attrTypesOvr: false });

  it('bypass → abort and abort → bypass are hitless with 2 syncs', async () => {
    set(bypass);
    snapshots.length = 0;
    expect(await writeEntry(mem, w, abort, writer)).toBe(2);
    expect(toDwords(mem.u32, w, 8)).toEqual(toDwords(abort));
    expect(await writeEntry(mem, w, bypass, writer)).toBe(2);
    // Without SHCFG only dword 0 changes: one sync.
    expect(await writeEntry(mem, w, makeBypassSte(new Uint32Array(16), false), writer)).toBe(1);
    expect(await writeEntry(mem, w, abort, writer)).toBe(1);
  });
  it('abort → S1 cdtable is hitless: unused dwords first, then dword 0', async () => {
    set(abort);
    snapshots.length = 0;
    const t = cdtab(0x8000);
    expect(await writeEntry(mem, w, t, writer)).toBe(2);
    expect(snapshots[0]).toEqual([0x1n, 0xd6n, 0n, 0n]); // dword1 written while still abort
    expect(snapshots[1][0]).toBe(0x800bn);
  });
  it('S1 → S2 is breaking: V = 0, dwords 1–7, dword 0 (3 syncs)', async () => {
    set(cdtab(0x8000));
    snapshots.length = 0;
    expect(await writeEntry(mem, w, s2(1), writer)).toBe(3);
    expect(snapshots[0][0]).toBe(0n);
    expect(snapshots[1].slice(1, 4)).toEqual(toDwords(s2(1)).slice(1, 4));
    expect(snapshots[2]).toEqual(toDwords(s2(1)).slice(0, 4));
  });
  it('same STE: nothing written, no sync; S2 VMID change is hitless in dword 2', async () => {
    set(s2(1));
    expect(await writeEntry(mem, w, s2(1), writer)).toBe(0);
    const u = new Uint32Array(16);
    expect(entryQwordDiff(mem.u32, w, s2(2), writer, u)).toBe(1 << 2);
    expect(await writeEntry(mem, w, s2(2), writer)).toBe(1);
    expect(toDwords(mem.u32, w, 8)).toEqual(toDwords(s2(2)));
  });
  it('S1DSS change (SSID0 → bypass) only touches dword 1', async () => {
    set(cdtab(0x8000, 2));
    const u = new Uint32Array(16);
    expect(entryQwordDiff(mem.u32, w, cdtab(0x8000, 1), writer, u)).toBe(1 << 1);
  });
});

describe('range TLBI planning (smmuv3.md §4.3, Linux __arm_smmu_tlb_inv_range)', () => {
  it('RIL: 64 MiB of 4 KiB leaves = 16384 pages → one command NUM 0 SCALE 14, TG 1, TTL 3', () => {
    expect(planTlbiRange(0x4000_0000, 64 << 20, 4096, true, true, 12)).toEqual([{ addr: 0x4000_0000, num: 0, scale: 14, tg: 1, ttl: 3 }]);
  });
  it('RIL: 35 pages → SCALE 0 NUM 2 (3 pages), then SCALE 5 NUM 0 (32 pages)', () => {
    expect(planTlbiRange(0x10000, 35 * 4096, 4096, true, true, 12)).toEqual([
      { addr: 0x10000, num: 2, scale: 0, tg: 1, ttl: 3 },
      { addr: 0x13000, num: 0, scale: 5, tg: 1, ttl: 3 },
    ]);
  });
  it('RIL: TTL from the granule (2 MiB → 2, 1 GiB → 1; 16 KiB TG 2, 64 KiB TG 3)', () => {
    expect(planTlbiRange(0, 2 << 20, 2 << 20, true, true, 12)![0]).toMatchObject({ ttl: 2, tg: 1, scale: 9, num: 0 });
    expect(planTlbiRange(0, 1 << 30, 1 << 30, true, true, 12)![0]).toMatchObject({ ttl: 1, scale: 18 });
    expect(planTlbiRange(0, 16384, 16384, true, true, 14)![0]).toMatchObject({ tg: 2, ttl: 3, num: 0, scale: 0 });
    expect(planTlbiRange(0, 1 << 29, 1 << 29, true, true, 16)![0]).toMatchObject({ tg: 3, ttl: 2 });
  });
  it('RIL non-leaf: TTL 0 and a single page bumped to 2 (no NUM = SCALE = TTL = 0 with TG ≠ 0)', () => {
    expect(planTlbiRange(0x1000, 4096, 4096, false, true, 12)).toEqual([{ addr: 0x1000, num: 0, scale: 1, tg: 1, ttl: 0 }]);
  });
  it('no RIL: one TG = 0 command per granule step; 512 steps or more → whole-context flush', () => {
    expect(planTlbiRange(0x3000, 3 * 4096, 4096, true, false, 12)).toEqual([0x3000, 0x4000, 0x5000].map((addr) => ({ addr, num: 0, scale: 0, tg: 0, ttl: 0 })));
    expect(planTlbiRange(0, 511 * 4096, 4096, true, false, 12)).toHaveLength(511);
    expect(planTlbiRange(0, 512 * 4096, 4096, true, false, 12)).toBeNull();
  });
  it('ATC_INV span (§4.4): pages [7, 10] → [0, 15] (Size 4); 0 → everything', () => {
    expect(atcInvSpan(7 * 4096, 4 * 4096)).toEqual({ addr: 0, log2: 4 });
    expect(atcInvSpan(0x5000, 4096)).toEqual({ addr: 0x5000, log2: 0 });
    expect(atcInvSpan(0, 0)).toEqual({ addr: 0, log2: 52 });
  });
});

describe('event and PRI decoding (smmuv3.md §5.4, §6.1)', () => {
  it('F_TRANSLATION SID 5 read of 0x1234000 (the §5.4 worked record)', () => {
    const raw = fromDwords([0x0000000500000010n, 0x0000000800000000n, 0x1234000n, 0n]);
    const f = decodeEvent(raw);
    expect(f).toMatchObject({ kind: 'event', rid: 5, pasid: -1, addr: 0x1234000, reason: FaultReason.TRANSLATION, detail: 0x10, access: 1 });
  });
  it('a stalled permission fault becomes a stall page request (grpid = STAG)', () => {
    const raw = fromDwords([(7n << 32n) | (3n << 12n) | (1n << 11n) | 0x13n, (1n << 31n) | 0x2an, 0x5000n, 0n]);
    expect(decodeEvent(raw)).toEqual({ kind: 'page-request', rid: 7, pasid: 3, grpid: 0x2a, perm: PgFaultPerm.WRITE, addr: 0x5000, last: true, stall: true });
  });
  it('event ids map to driver-api reasons (the same reasons the model reports on the device port)', () => {
    expect([0x01, 0x05, 0x07, 0x02, 0x04, 0x06, 0x08, 0x0b, 0x11, 0x12, 0x13].map(faultReasonOfEvent)).toEqual([
      FaultReason.BLOCKED,
      FaultReason.BLOCKED,
      FaultReason.BLOCKED,
      FaultReason.BAD_RID,
      FaultReason.BAD_CONFIG,
      FaultReason.BLOCKED,
      FaultReason.BAD_PASID,
      FaultReason.WALK_ABORT,
      FaultReason.ADDRESS_SIZE,
      FaultReason.ACCESS_FLAG,
      FaultReason.PERMISSION,
    ]);
  });
  it('PRI record: SID, PASID (PV), R/W/X/Priv, Last, PRGI, page address', () => {
    const raw = fromDwords([(1n << 63n) | (1n << 62n) | (1n << 60n) | (1n << 58n) | (9n << 32n) | 0x11n, 0xabc_d000n | 0x1ffn]);
    expect(decodePriRecord(raw)).toEqual({ kind: 'page-request', rid: 0x11, pasid: 9, grpid: 0x1ff, perm: PgFaultPerm.READ | PgFaultPerm.PRIV, addr: 0xabc_d000, last: true });
  });
});

describe('hw_info (smmuv3.md §9.2)', () => {
  it('struct iommu_hw_info_arm_smmuv3: flags, reserved, idr[6], iidr, aidr (40 bytes LE)', () => {
    const b = buildHwInfoArmSmmuv3([1, 2, 3, 4, 5, 0x66778899], 0x43b, 0x2);
    const v = new DataView(b.buffer);
    expect(b.length).toBe(40);
    expect([0, 4, 8, 12, 16, 20, 24, 28, 32, 36].map((o) => v.getUint32(o, true))).toEqual([0, 0, 1, 2, 3, 4, 5, 0x66778899, 0x43b, 2]);
  });
});

describe('field helpers used by the builders', () => {
  it('STE S1ContextPtr and S2TTB round-trip through the codec', () => {
    const ste = makeCdTableSte(new Uint32Array(STE_WORDS), { cdPtr: 0xfedc_ba40, s1fmt: 0, s1cdmax: 0, s1dss: 2, ats: false, smmuStalls: false, stallEnabled: false, attrTypesOvr: false });
    expect(getField(ste, 0, Ste.S1_CONTEXT_PTR) * 64).toBe(0xfedc_ba40);
  });
});

describe('decodeEvent: the stage of a stall page request (faults per handle: level-2 faults to the parent, level-1 to the child; IHI 0070 §7.3 S2 = dword 1 bit 39)', () => {
  /** A stalled F_TRANSLATION record: SID 0x40, no SSV, Stall + STAG 7, RnW (read), CLASS = IN (0b10), InputAddr 0x7f_4020_0010, IPA 0x4010_0000. */
  const stalled = (s2: boolean, ssid = -1): Uint32Array =>
    fromDwords([
      (0x40n << 32n) | (ssid >= 0 ? (BigInt(ssid) << 12n) | (1n << 11n) : 0n) | 0x10n,
      (s2 ? 1n << 39n : 0n) | (2n << 40n) | (1n << 35n) | (1n << 31n) | 7n,
      0x7f_4020_0010n,
      0x4010_0000n,
    ]);

  it('a stalled F_TRANSLATION with S2 = 1 is a stage-2 stall page request: exactly { page-request, rid 0x40, pasid -1, grpid = STAG 7, perm READ, addr = InputAddr 0x7f_4020_0010 (not the IPA), last, stall, stage 2 }', () => {
    expect(decodeEvent(stalled(true))).toStrictEqual({
      kind: 'page-request',
      rid: 0x40,
      pasid: -1,
      grpid: 7,
      perm: PgFaultPerm.READ,
      addr: 0x7f_4020_0010,
      last: true,
      stall: true,
      stage: 2,
    });
    // With SSV = 1, SSID 5: the PASID is kept, stage still 2.
    expect(decodeEvent(stalled(true, 5))).toStrictEqual({
      kind: 'page-request',
      rid: 0x40,
      pasid: 5,
      grpid: 7,
      perm: PgFaultPerm.READ,
      addr: 0x7f_4020_0010,
      last: true,
      stall: true,
      stage: 2,
    });
  });

  it('the same record with S2 = 0 (a stage-1 stall) has no stage property at all (level-1: the attachment\'s own FAULT)', () => {
    const f = decodeEvent(stalled(false));
    expect(f).toStrictEqual({ kind: 'page-request', rid: 0x40, pasid: -1, grpid: 7, perm: PgFaultPerm.READ, addr: 0x7f_4020_0010, last: true, stall: true });
    expect(Object.hasOwn(f, 'stage')).toBe(false);
    expect(Object.keys(f)).toEqual(['kind', 'rid', 'pasid', 'grpid', 'perm', 'addr', 'last', 'stall']);
  });

  it('S2 = 1 without Stall (a terminated stage-2 fault) stays a FaultEvent (no stage); a PRI record never carries a stage (PCIe page requests do not say)', () => {
    const raw = fromDwords([(0x40n << 32n) | 0x10n, (1n << 39n) | (2n << 40n) | (1n << 35n), 0x7f_4020_0010n, 0x4010_0000n]);
    const f = decodeEvent(raw);
    expect(f).toMatchObject({ kind: 'event', rid: 0x40, pasid: -1, addr: 0x7f_4020_0010, reason: FaultReason.TRANSLATION, detail: 0x10, access: 1 });
    expect(Object.hasOwn(f, 'stage')).toBe(false);
    const pri = decodePriRecord(fromDwords([(1n << 62n) | (1n << 60n) | 0x40n, 0x5000n | 3n]));
    expect(pri).toStrictEqual({ kind: 'page-request', rid: 0x40, pasid: -1, grpid: 3, perm: PgFaultPerm.READ, addr: 0x5000, last: true });
    expect(Object.hasOwn(pri, 'stage')).toBe(false);
  });
});
