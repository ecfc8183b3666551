/**
 * Command decode (smmuv3.md §4.1, §4.2, §4.3, §4.4, §4.6, §12 #8): every command is written into
 * the command queue in PhysMem as raw dwords built from the spec's bit positions (not the codec),
 * CMDQ_PROD is written, and the fields the target receives are checked; every CERROR_ILL case
 * halts the queue at the command with CMDQ_CONS.ERR = 1 and GERROR.CMDQ_ERR.
 */
import { describe, expect, it } from 'vitest';
import {
  CERROR_ILL,
  CERROR_NONE,
  CmdOp,
  GERROR_CMDQ_ERR,
  SMMU_GERROR,
  SMMU_GERRORN,
  fromDwords,
} from '../src/codec/index.js';
import { CmdDecoder, CmdqEntry, resolveFeatures } from '../src/model/queues-index.js';
import { Rig, type Executed } from './cmdq-rig.js';

const raw = (d0: bigint, d1: bigint): Uint32Array => fromDwords([d0, d1]);

/** Runs one command through a fresh queue; returns what the target got. */
function run(words: Uint32Array, features: Record<string, unknown> = {}): { rig: Rig; got: Executed | undefined } {
  const rig = new Rig({ features });
  rig.setupCmdq(4);
  rig.cmd(words);
  rig.publish();
  return { rig, got: rig.target.calls[0] };
}

/** Expects `words` to be CERROR_ILL (reason `why`): queue halted at it, ERR = 1, CMDQ_ERR active, nothing executed. */
function expectIll(words: Uint32Array, why: string, features: Record<string, unknown> = {}): void {
  const rig = new Rig({ features });
  rig.setupCmdq(4);
  rig.cmd(words);
  rig.publish();
  expect(rig.cons).toBe((CERROR_ILL << 24) | 0);
  expect((rig.regs.read32(SMMU_GERROR) ^ rig.regs.read32(SMMU_GERRORN)) & GERROR_CMDQ_ERR).toBe(GERROR_CMDQ_ERR);
  expect(rig.target.calls).toEqual([]);
  expect(rig.ctl.cmdq.entry.ill).toBe(why);
}

function expectOk(words: Uint32Array, features: Record<string, unknown> = {}): void {
  const rig = new Rig({ features });
  rig.setupCmdq(4);
  rig.cmd(words);
  rig.publish();
  expect(rig.cons).toBe(1);
  expect(rig.regs.read32(SMMU_GERROR)).toBe(0);
}

describe('§4.2 field positions: each command decoded at its exact bits', () => {
  it('PREFETCH_CONFIG (0x01): SSV [11], SSID [31:12], SID [63:32]', () => {
    const { got } = run(raw(0x01n | (1n << 11n) | (0xabcden << 12n) | (0xfedc_ba98n << 32n), 0n));
    expect(got).toMatchObject({ op: 0x01, ssv: true, ssid: 0xabcde, sid: 0xfedc_ba98 });
  });

  it('PREFETCH_ADDR (0x02): SID, SSV, SSID; Size [4:0], Stride [12:8] ⚠, Addr [63:12]', () => {
    const addr = 0x7fff_ffff_e000n;
    const { got } = run(raw(0x02n | (0x3n << 12n) | (0x11n << 32n), addr | 0x1fn | (0xfn << 8n)));
    expect(got).toMatchObject({ op: 0x02, ssv: false, ssid: 3, sid: 0x11, pfSize: 0x1f, pfStride: 0xf, addr: 0x7fff_ffff_e000 });
  });

  it('CFGI_STE (0x03): SID [63:32], Leaf dword1 [0]', () => {
    expect(run(raw(0x03n | (0xffff_ffffn << 32n), 1n)).got).toMatchObject({ op: 3, sid: 0xffff_ffff, leaf: true });
    expect(run(raw(0x03n | (5n << 32n), 0n)).got).toMatchObject({ op: 3, sid: 5, leaf: false });
  });

  it('CFGI_STE_RANGE (0x04): SID, Range [4:0]; Range 31 = CFGI_ALL', () => {
    expect(run(raw(0x04n | (0x100n << 32n), 7n)).got).toMatchObject({ op: 4, sid: 0x100, range: 7 });
    expect(run(raw(0x04n, 0x1fn)).got).toMatchObject({ op: 4, sid: 0, range: 31 });
  });

  it('CFGI_CD (0x05): SSID [31:12] (no SSV), SID, Leaf', () => {
    expect(run(raw(0x05n | (0xfffffn << 12n) | (7n << 32n), 1n)).got).toMatchObject({ op: 5, ssid: 0xfffff, sid: 7, leaf: true, ssv: false });
  });

  it('CFGI_CD_ALL (0x06): SID', () => {
    expect(run(raw(0x06n | (9n << 32n), 0n)).got).toMatchObject({ op: 6, sid: 9 });
  });

  it('TLBI_NH_ALL (0x10): VMID [47:32]', () => {
    expect(run(raw(0x10n | (0xffffn << 32n), 0n)).got).toMatchObject({ op: 0x10, vmid: 0xffff, asid: 0 });
  });

  it('TLBI_NH_ASID (0x11): VMID [47:32], ASID [63:48]', () => {
    expect(run(raw(0x11n | (0x1234n << 32n) | (0xfedcn << 48n), 0n)).got).toMatchObject({ op: 0x11, vmid: 0x1234, asid: 0xfedc });
  });

  it('TLBI_NH_VA (0x12): NUM [16:12], SCALE [24:20], VMID, ASID; Leaf [0], TTL [9:8], TG [11:10], Address [63:12]', () => {
    const d0 = 0x12n | (31n << 12n) | (31n << 20n) | (0x00abn << 32n) | (0xcdefn << 48n);
    const d1 = 0xffff_ffff_ffff_f000n | (3n << 8n) | (1n << 10n) | 1n;
    const { got } = run(raw(d0, d1));
    expect(got).toMatchObject({
      op: 0x12,
      num: 31,
      scale: 31,
      vmid: 0xab,
      asid: 0xcdef,
      leaf: true,
      ttl: 3,
      tg: 1,
      addrLo: 0xffff_f000,
      addrHi: 0xffff_ffff,
    });
  });

  it('TLBI_NH_VA range helpers: (NUM+1) × 2^SCALE pages of TG', () => {
    const d = new CmdDecoder(resolveFeatures());
    const e = new CmdqEntry();
    expect(d.decode(raw(0x12n | (4n << 12n) | (3n << 20n), 0x4000_0000n | (3n << 10n) | (3n << 8n)), 0, e)).toBe(CERROR_NONE);
    expect([e.granuleShift(), e.rangePages(), e.rangeBytes(), e.addr]).toEqual([16, 40, 40 * 65536, 0x4000_0000]);
    expect(d.decode(raw(0x12n, 0x1000n), 0, e)).toBe(CERROR_NONE);
    expect([e.granuleShift(), e.rangePages(), e.rangeBytes()]).toEqual([0, 1, 0]);
  });

  it('TLBI_NH_VAA (0x13): NUM, SCALE, VMID (no ASID); Leaf, TTL, TG, Address', () => {
    const d0 = 0x13n | (1n << 12n) | (2n << 20n) | (0x77n << 32n);
    const d1 = 0x1234_5000n | (2n << 8n) | (1n << 10n);
    expect(run(raw(d0, d1)).got).toMatchObject({ op: 0x13, num: 1, scale: 2, vmid: 0x77, asid: 0, ttl: 2, tg: 1, leaf: false, addr: 0x1234_5000 });
  });

  it('TLBI_EL2_ALL (0x20): no fields', () => {
    expect(run(raw(0x20n, 0n)).got).toMatchObject({ op: 0x20, vmid: 0, asid: 0 });
  });

  it('TLBI_EL2_ASID (0x21): ASID [63:48]', () => {
    expect(run(raw(0x21n | (0x4242n << 48n), 0n)).got).toMatchObject({ op: 0x21, asid: 0x4242, vmid: 0 });
  });

  it('TLBI_EL2_VA (0x22): NUM, SCALE, ASID; Leaf, TTL, TG, Address', () => {
    const { got } = run(raw(0x22n | (2n << 12n) | (5n << 48n), 0x8000_0000n | 1n | (1n << 8n) | (1n << 10n)));
    expect(got).toMatchObject({ op: 0x22, num: 2, asid: 5, leaf: true, ttl: 1, tg: 1, addr: 0x8000_0000 });
  });

  it('TLBI_EL2_VAA (0x23): NUM, SCALE; Leaf, TTL, TG, Address', () => {
    const { got } = run(raw(0x23n | (1n << 20n), 0x9000n | (3n << 8n) | (1n << 10n)));
    expect(got).toMatchObject({ op: 0x23, scale: 1, ttl: 3, tg: 1, addr: 0x9000, asid: 0 });
  });

  it('TLBI_S12_VMALL (0x28): VMID [47:32]', () => {
    expect(run(raw(0x28n | (0xbeefn << 32n), 0n)).got).toMatchObject({ op: 0x28, vmid: 0xbeef });
  });

  it('TLBI_S2_IPA (0x2A): NUM, SCALE, VMID; Leaf, TTL, TG, Address [51:12] (IPA)', () => {
    const d0 = 0x2an | (3n << 12n) | (4n << 20n) | (0x99n << 32n);
    const d1 = 0x000f_ffff_ffff_f000n | 1n | (2n << 8n) | (3n << 10n);
    const { got } = run(raw(d0, d1));
    expect(got).toMatchObject({ op: 0x2a, num: 3, scale: 4, vmid: 0x99, leaf: true, ttl: 2, tg: 3, ipa: 0x000f_ffff_ffff_f000, addr: 0x000f_ffff_ffff_f000 });
  });

  it('TLBI_NSNH_ALL (0x30): no fields', () => {
    expect(run(raw(0x30n, 0n)).got).toMatchObject({ op: 0x30 });
  });

  it('ATC_INV (0x40): Global [9], SSV [11], SSID [31:12], SID [63:32]; Size [5:0], Address [63:12]', () => {
    const d0 = 0x40n | (1n << 9n) | (1n << 11n) | (0x12345n << 12n) | (0x8001n << 32n);
    const { got } = run(raw(d0, 0x7_0000_0000n | 52n));
    expect(got).toMatchObject({ op: 0x40, global: true, ssv: true, ssid: 0x12345, sid: 0x8001, atcSize: 52, addr: 0x7_0000_0000 });
  });

  it('PRI_RESP (0x41): SSV, SSID, SID; PRGI [8:0], Resp [13:12]', () => {
    const { got } = run(raw(0x41n | (1n << 11n) | (3n << 12n) | (0x10n << 32n), 0x1ffn | (2n << 12n)));
    expect(got).toMatchObject({ op: 0x41, ssv: true, ssid: 3, sid: 0x10, prgi: 0x1ff, resp: 2 });
    expect(run(raw(0x41n | (0x10n << 32n), 5n | (1n << 12n))).got).toMatchObject({ ssv: false, prgi: 5, resp: 1 });
  });

  it('RESUME (0x44): Action [13:12], SID [63:32]; STAG [15:0]', () => {
    expect(run(raw(0x44n | (2n << 12n) | (0x10n << 32n), 0xffffn)).got).toMatchObject({ op: 0x44, action: 2, sid: 0x10, stag: 0xffff });
    expect(run(raw(0x44n | (1n << 12n) | (0x10n << 32n), 7n)).got).toMatchObject({ action: 1, stag: 7 });
  });

  it('STALL_TERM (0x45): SID [63:32]', () => {
    expect(run(raw(0x45n | (0xcafen << 32n), 0n)).got).toMatchObject({ op: 0x45, sid: 0xcafe });
  });

  it('CMD_SYNC (0x46): CS [13:12], MSH [23:22], MSIAttr [27:24], MSIData [63:32]; MSIAddress [51:2] (never sent to the target)', () => {
    const d = new CmdDecoder(resolveFeatures());
    const e = new CmdqEntry();
    const w = raw(0x46n | (1n << 12n) | (3n << 22n) | (0xfn << 24n) | (0xdead_beefn << 32n), 0x000f_ffff_ffff_fffcn);
    expect(d.decode(w, 0, e)).toBe(CERROR_NONE);
    expect([e.op, e.cs, e.msh, e.msiAttr, e.msiData, e.msiAddr]).toEqual([0x46, 1, 3, 0xf, 0xdead_beef, 0x000f_ffff_ffff_fffc]);
    const { rig, got } = run(raw(0x46n | (2n << 12n), 0n));
    expect(got).toBeUndefined();
    expect(rig.cons).toBe(1);
  });

  it('decode rewrites every field: nothing leaks from the previous command', () => {
    const d = new CmdDecoder(resolveFeatures());
    const e = new CmdqEntry();
    d.decode(raw(0x40n | (1n << 9n) | (1n << 11n) | (5n << 12n) | (6n << 32n), 0x5000n | 3n), 0, e);
    d.decode(raw(0x30n, 0n), 0, e);
    expect([e.op, e.sid, e.ssid, e.ssv, e.global, e.atcSize, e.addr]).toEqual([0x30, 0, 0, false, false, 0, 0]);
  });

  it('a reused entry decodes exactly like a fresh one, whatever came before (same opcode, other opcode, ILL)', () => {
    const d = new CmdDecoder(resolveFeatures({ ril: true }));
    const reused = new CmdqEntry();
    let x = 0x1234_5678;
    const next = (): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x >>> 0;
    };
    const ops = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x11, 0x12, 0x13, 0x1a, 0x20, 0x21, 0x28, 0x2a, 0x30, 0x40, 0x41, 0x44, 0x45, 0x46, 0x07, 0xff];
    const fields = (e: CmdqEntry): Record<string, unknown> => {
      const { dirtyOp: _dirty, ...rest } = e;
      return rest;
    };
    for (let i = 0; i < 20000; i++) {
      const w = new Uint32Array(4);
      for (let k = 0; k < 4; k++) w[k] = next();
      // Mostly legal-looking commands: keep the random bits sparse so some pass the RES0 check.
      const sparse = next() % 4 !== 0;
      if (sparse) for (let k = 0; k < 4; k++) w[k] &= next() & next() & next();
      w[0] = (w[0] & ~0xff) | ops[next() % ops.length];
      if (sparse) w[0] &= ~0x400;
      const fresh = new CmdqEntry();
      const r1 = d.decode(w, 0, fresh);
      const r2 = d.decode(w, 0, reused);
      expect(r2).toBe(r1);
      expect(fields(reused)).toEqual(fields(fresh));
    }
  });

  it('out-of-range SID / SSID / ASID / VMID values are not ILL (§4.6)', () => {
    expectOk(raw(0x03n | (0xffff_ffffn << 32n), 1n), { sidBits: 8 });
    expectOk(raw(0x05n | (0xfffffn << 12n) | (1n << 32n), 1n), { ssidBits: 0 });
    expectOk(raw(0x11n | (0xffffn << 32n) | (0xffffn << 48n), 0n));
  });
});

describe('§4.6 / §12 #8 CERROR_ILL', () => {
  it('unknown opcodes (0x00, 0x07 (not CFGI_VMS_PIDM here), 0x14, 0x47, 0xFF)', () => {
    for (const op of [0x00n, 0x07n, 0x14n, 0x47n, 0xffn]) expectIll(raw(op, 0n), 'opcode');
  });

  it('TLBI_EL3_ALL / TLBI_EL3_VA on the Non-secure queue', () => {
    expectIll(raw(0x18n, 0n), 'opcode');
    expectIll(raw(0x1an, 0x1000n), 'opcode');
  });

  it('SSec = 1 (dword0 bit 10) on CFGI_STE, CFGI_STE_RANGE, CFGI_CD, CFGI_CD_ALL and on any other command', () => {
    for (const op of [0x03n, 0x04n, 0x05n, 0x06n]) expectIll(raw(op | (1n << 10n), 0n), 'ssec');
    expectIll(raw(0x30n | (1n << 10n), 0n), 'ssec');
  });

  it('RES0 bits: dword0 low, dword0 high, dword1 low, dword1 high', () => {
    expectIll(raw(0x30n | (1n << 8n), 0n), 'res0'); // TLBI_NSNH_ALL: everything but the opcode is RES0
    expectIll(raw(0x10n | (1n << 48n), 0n), 'res0'); // TLBI_NH_ALL: ASID slot is RES0
    expectIll(raw(0x03n, 2n), 'res0'); // CFGI_STE: dword1 [63:1] RES0
    expectIll(raw(0x46n | (2n << 12n), 1n << 52n), 'res0'); // CMD_SYNC MSIAddress above bit 51
    expectIll(raw(0x46n | (2n << 12n), 1n), 'res0'); // CMD_SYNC MSIAddress [1:0]
    expectIll(raw(0x2an, 0x1000n | (1n << 52n)), 'res0'); // TLBI_S2_IPA: IPA is [51:12]
    expectIll(raw(0x05n | (1n << 11n), 0n), 'res0'); // CFGI_CD has no SSV
    expectIll(raw(0x12n | (1n << 25n), 0x1000n), 'res0'); // SCALE bit 5 (no DS)
  });

  it('8-bit ASIDs / VMIDs: the upper byte is RES0', () => {
    expectIll(raw(0x11n | (0x100n << 48n), 0n), 'res0', { asid16: false });
    expectOk(raw(0x11n | (0xffn << 48n), 0n), { asid16: false });
    expectIll(raw(0x28n | (0x100n << 32n), 0n), 'res0', { vmid16: false });
    expectOk(raw(0x28n | (0xffn << 32n), 0n), { vmid16: false });
  });

  it('TLBI_NH_* without stage 1; TLBI_S12_VMALL / TLBI_S2_IPA without stage 2', () => {
    for (const op of [0x10n, 0x11n, 0x12n, 0x13n]) expectIll(raw(op, op >= 0x12n ? 0x1000n : 0n), 'feature', { stage1: false });
    expectIll(raw(0x28n, 0n), 'feature', { stage2: false });
    expectIll(raw(0x2an, 0x1000n), 'feature', { stage2: false });
  });

  it('CFGI_CD / CFGI_CD_ALL without stage 1 (IHI 0070 §4.3.3, §4.3.4: "raises CERROR_ILL when stage 1 is not implemented")', () => {
    expectIll(raw(0x05n | (1n << 32n), 1n), 'feature', { stage1: false });
    expectIll(raw(0x06n | (1n << 32n), 0n), 'feature', { stage1: false });
    expectOk(raw(0x03n | (1n << 32n), 1n), { stage1: false }); // CFGI_STE stays legal
  });

  it('TLBI_EL2_* without HYP', () => {
    for (const op of [0x20n, 0x21n, 0x22n, 0x23n]) expectIll(raw(op, 0n), 'feature', { hyp: false });
  });

  it('ATC_INV without ATS; PRI_RESP without PRI; RESUME / STALL_TERM with stall model none', () => {
    expectIll(raw(0x40n, 0n), 'feature', { ats: false });
    expectIll(raw(0x41n, 0n), 'feature', { pri: false });
    expectIll(raw(0x44n, 0n), 'feature', { stall: 'none' });
    expectIll(raw(0x45n, 0n), 'feature', { stall: 'none' });
    expectOk(raw(0x44n, 0n), { stall: 'forced' });
  });

  it('§4.3 reserved range encodings', () => {
    expectIll(raw(0x12n | (1n << 12n), 0x1000n), 'range'); // TG = 0, NUM ≠ 0
    expectIll(raw(0x12n | (1n << 20n), 0x1000n), 'range'); // TG = 0, SCALE ≠ 0
    expectIll(raw(0x12n, 0x1000n | (2n << 8n)), 'range'); // TG = 0, TTL ≠ 0
    expectIll(raw(0x12n, 0x1000n | (1n << 10n)), 'range'); // TG ≠ 0, NUM = SCALE = TTL = 0
    expectIll(raw(0x2an, 0x1000n | (2n << 10n) | (1n << 8n)), 'range'); // TTL = 1 with 16 KB (no DS), NUM = SCALE = 0
    // IHI 0070 §4.4.1.1: TTL = 0b01 with TG = 64 KB is "Leaf entries at Level 1 of a 64KB Granule
    // table" (legal whatever the OAS); TTL = 0b01 with TG = 16 KB and no DS is "Reserved, and
    // hardware treats as TTL == 0b00": only the NUM = SCALE = 0 form is the Reserved combination.
    expectOk(raw(0x13n, 0x10000n | (3n << 10n) | (1n << 8n)));
    expectOk(raw(0x13n, 0x10000n | (3n << 10n) | (1n << 8n)), { oas: 52 });
    const { got } = run(raw(0x2an | (3n << 12n), 0x4000n | (2n << 10n) | (1n << 8n)));
    expect(got).toMatchObject({ op: 0x2a, tg: 2, num: 3, ttl: 0 });
    expectOk(raw(0x12n, 0x1000n | (1n << 10n) | (3n << 8n))); // TG 4K, TTL 3, one page
    expectOk(raw(0x12n | (1n << 12n), 0x1000n | (1n << 10n))); // TG 4K, NUM 1, TTL 0
  });

  it('range fields without RIL are RES0', () => {
    expectIll(raw(0x12n, 0x1000n | (1n << 10n) | (3n << 8n)), 'range', { ril: false });
    expectIll(raw(0x22n | (1n << 12n), 0x1000n), 'range', { ril: false });
    expectOk(raw(0x12n, 0x1001n), { ril: false });
  });

  it('CMD_SYNC CS = 3', () => {
    expectIll(raw(0x46n | (3n << 12n), 0n), 'cs');
  });

  it('ATC_INV Size > 52 (52 = all is legal)', () => {
    expectIll(raw(0x40n, 53n), 'atc-size');
    expectIll(raw(0x40n, 63n), 'atc-size');
    expectOk(raw(0x40n, 52n));
  });

  it('PRI_RESP Resp = 3 (reserved)', () => {
    expectIll(raw(0x41n, 3n << 12n), 'resp');
  });

  it('CMD_SYNC CS = SEV is accepted without IDR0.SEV (§12 #9)', () => {
    expectOk(raw(0x46n | (2n << 12n), 0n), { sev: false });
  });

  it('CmdDecoder.legal reflects the feature set', () => {
    const d = new CmdDecoder(resolveFeatures({ stage2: false, ats: false }));
    expect([d.legal(CmdOp.TLBI_NH_VA), d.legal(CmdOp.TLBI_S2_IPA), d.legal(CmdOp.ATC_INV), d.legal(CmdOp.SYNC), d.legal(0x07)]).toEqual([
      true,
      false,
      false,
      true,
      false,
    ]);
  });
});
