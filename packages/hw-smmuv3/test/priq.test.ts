/**
 * PRI queue producer (smmuv3.md §6, §12 #5 and #7): 16-byte page-request records, PRIQ_PROD with
 * OVFLG toggled once on entry into overflow, the automatic PRG response for a dropped request with
 * Last = 1 (configurable code; none for stop markers), PRIQ interrupt, GERROR.PRIQ_ABT_ERR.
 */
import { describe, expect, it } from 'vitest';
import {
  GERROR_PRIQ_ABT_ERR,
  IRQ_CTRL_PRIQ_IRQEN,
  PriResp,
  SMMU_GERROR,
  SMMU_GERRORN,
  SMMU_PRIQ_CONS,
  SMMU_PRIQ_IRQ_CFG0,
  SMMU_PRIQ_IRQ_CFG1,
  SMMU_PRIQ_PROD,
  fromDwords,
} from '../src/codec/index.js';
import type { PriAutoReason } from '../src/model/queues-index.js';
import { Rig } from './cmdq-rig.js';

interface Req {
  sid: number;
  ssid?: number;
  pv?: boolean;
  read?: boolean;
  write?: boolean;
  last?: boolean;
  prgi: number;
  addr?: number;
}

/** A page-request record with the §6.1 bit positions. */
function req(r: Req): Uint32Array {
  let d0 = BigInt(r.sid) | (BigInt(r.ssid ?? 0) << 32n);
  if (r.read ?? true) d0 |= 1n << 60n;
  if (r.write) d0 |= 1n << 61n;
  if (r.last) d0 |= 1n << 62n;
  if (r.pv) d0 |= 1n << 63n;
  return fromDwords([d0, BigInt(r.addr ?? 0x1000) | BigInt(r.prgi)]);
}

type Resp = [sid: number, ssv: boolean, ssid: number, prgi: number, resp: number, reason: PriAutoReason];

function rigWithHook(features: Record<string, unknown> = {}): { rig: Rig; responses: Resp[] } {
  const rig = new Rig({ features });
  const responses: Resp[] = [];
  rig.ctl.priq.onAutoResponse = (...a) => responses.push(a);
  return { rig, responses };
}

function readRec(rig: Rig, i: number): bigint[] {
  const pa = rig.priqBase + 16 * (i & ((1 << rig.priqLog2) - 1));
  return [0, 1].map((d) => (BigInt(rig.mem.read32(pa + 8 * d + 4)) << 32n) | BigInt(rig.mem.read32(pa + 8 * d)));
}

describe('§6 PRI queue records', () => {
  it('writes the 16-byte record at base + 16 × index(PROD), publishes PROD, PRIQ interrupt (doorbell + MSI)', () => {
    const { rig } = rigWithHook();
    rig.setupPriq(2);
    const msi = rig.mem.allocFrame();
    rig.regs.write64(SMMU_PRIQ_IRQ_CFG0, msi);
    rig.regs.write32(SMMU_PRIQ_IRQ_CFG1, 77);
    rig.regs.write32(0x50, IRQ_CTRL_PRIQ_IRQEN);
    const irq0 = rig.regs.irq.value;
    expect(rig.ctl.priq.push(req({ sid: 0x10, ssid: 3, pv: true, write: true, last: true, prgi: 5, addr: 0x7f00_0000_1000 }))).toBe('queued');
    expect(rig.regs.read32(SMMU_PRIQ_PROD)).toBe(1);
    expect(readRec(rig, 0)).toEqual([0x10n | (3n << 32n) | (1n << 60n) | (1n << 61n) | (1n << 62n) | (1n << 63n), 0x7f00_0000_1005n]);
    expect(rig.regs.irq.value).toBe(irq0 + 1);
    expect(rig.mem.read32(msi)).toBe(77);
  });

  it('a stop marker (PV, Last, no R/W) is recorded like a request (§12 #7)', () => {
    const { rig, responses } = rigWithHook();
    rig.setupPriq(2);
    expect(rig.ctl.priq.push(req({ sid: 1, ssid: 9, pv: true, read: false, last: true, prgi: 2 }))).toBe('queued');
    expect(readRec(rig, 0)[0]).toBe(1n | (9n << 32n) | (1n << 62n) | (1n << 63n));
    expect(responses).toEqual([]);
  });
});

describe('§6.3 / §12 #5 PRI queue overflow and automatic responses', () => {
  it('OVFLG toggles once on entry into overflow; dropped Last=1 requests get an automatic Success; acknowledged by OVACKFLG', () => {
    const { rig, responses } = rigWithHook();
    rig.setupPriq(1); // 2 entries
    const q = rig.ctl.priq;
    expect(q.push(req({ sid: 1, prgi: 1 }))).toBe('queued');
    expect(q.push(req({ sid: 1, prgi: 1, last: true }))).toBe('queued');
    expect(q.push(req({ sid: 2, prgi: 7 }))).toBe('overflow'); // not Last: no response
    expect(rig.regs.read32(SMMU_PRIQ_PROD) >>> 0).toBe(0x8000_0002);
    expect(q.push(req({ sid: 2, ssid: 4, pv: true, prgi: 7, last: true }))).toBe('overflow');
    expect(rig.regs.read32(SMMU_PRIQ_PROD) >>> 0).toBe(0x8000_0002); // no second toggle
    expect(q.push(req({ sid: 3, ssid: 1, pv: true, read: false, last: true, prgi: 0 }))).toBe('overflow'); // stop marker: no response
    // IHI 0070 §8.1: Success; the PASID is returned only when STE.PPAR = 1 (no pipeline here: none).
    expect(responses).toEqual([[2, false, 0, 7, PriResp.SUCC, 'overflow']]);
    expect(q.stats).toMatchObject({ overflows: 1, overflowDrops: 3, written: 2 });
    expect(q.priStats.autoResponses).toBe(1);
    // Entries recorded before the overflow are intact.
    expect(readRec(rig, 0)[0]).toBe(1n | (1n << 60n));
    expect(readRec(rig, 1)[0]).toBe(1n | (1n << 60n) | (1n << 62n));
    // Linux: drain, then CONS = PROD with OVACKFLG = OVFLG.
    rig.regs.write32(SMMU_PRIQ_CONS, 0x8000_0002);
    expect(q.push(req({ sid: 4, prgi: 1 }))).toBe('queued');
    expect(q.push(req({ sid: 4, prgi: 1 }))).toBe('queued');
    expect(q.push(req({ sid: 4, prgi: 1, last: true }))).toBe('overflow');
    expect(rig.regs.read32(SMMU_PRIQ_PROD)).toBe(0x0000_0000); // OVFLG toggled back, index 0 wrap 0 (4 written)
    expect(q.stats.overflows).toBe(2);
    expect(rig.regs.read32(SMMU_GERROR)).toBe(0);
  });

  it("priAutoResponse 'deny' answers dropped Last=1 requests with Resp 0 (ResponseFailure, IHI 0070 §4.5.2)", () => {
    const { rig, responses } = rigWithHook({ priAutoResponse: 'deny' });
    rig.setupPriq(0); // 1 entry
    rig.ctl.priq.push(req({ sid: 1, prgi: 1 }));
    expect(rig.ctl.priq.push(req({ sid: 5, prgi: 0x1ff, last: true }))).toBe('overflow');
    expect(responses).toEqual([[5, false, 0, 0x1ff, PriResp.DENY, 'overflow']]);
  });

  it('CR0.PRIQEN = 0: dropped, Last=1 answered with Response Failure (Resp 0), no PASID (IHI 0070 §8.2)', () => {
    const { rig, responses } = rigWithHook();
    expect(rig.ctl.priq.push(req({ sid: 8, prgi: 3, last: true, write: true }))).toBe('disabled');
    expect(rig.ctl.priq.push(req({ sid: 8, prgi: 4 }))).toBe('disabled');
    expect(responses).toEqual([[8, false, 0, 3, PriResp.DENY, 'disabled']]);
    expect(rig.ctl.priq.stats.disabledDrops).toBe(2);
  });

  it('no IDR0.PRI: every request is disabled', () => {
    const { rig, responses } = rigWithHook({ pri: false });
    expect(rig.ctl.priq.push(req({ sid: 8, prgi: 3, last: true }))).toBe('disabled');
    expect(responses.length).toBe(1);
  });

  it('a PRI queue outside PhysMem: aborted, GERROR.PRIQ_ABT_ERR, Last=1 answered with Response Failure (IHI 0070 §8.2)', () => {
    const { rig, responses } = rigWithHook();
    rig.setupPriq(3, 2 ** 33);
    expect(rig.ctl.priq.push(req({ sid: 2, prgi: 6, last: true }))).toBe('aborted');
    expect(rig.regs.read32(SMMU_GERROR)).toBe(GERROR_PRIQ_ABT_ERR);
    expect(rig.regs.read32(SMMU_PRIQ_PROD)).toBe(0);
    expect(responses).toEqual([[2, false, 0, 6, PriResp.RESPONSE_FAILURE, 'aborted']]);
  });

  it('IHI 0070 §8.2: while PRIQ_ABT_ERR is active nothing is written; PPRs get Response Failure without PASID', () => {
    const { rig, responses } = rigWithHook();
    rig.setupPriq(3);
    rig.ctl.gerror.raise(GERROR_PRIQ_ABT_ERR);
    expect(rig.ctl.priq.push(req({ sid: 2, ssid: 4, pv: true, prgi: 6, last: true }))).toBe('aborted');
    expect(rig.regs.read32(SMMU_PRIQ_PROD)).toBe(0);
    expect(responses).toEqual([[2, false, 0, 6, PriResp.RESPONSE_FAILURE, 'aborted']]);
    rig.regs.write32(SMMU_GERRORN, rig.regs.read32(SMMU_GERROR));
    expect(rig.ctl.priq.push(req({ sid: 2, prgi: 7 }))).toBe('queued');
  });

  it('IHI 0070 PRIQ_BASE: the effective base is aligned down to the queue size (8 × 16 B = 128 B)', () => {
    const { rig } = rigWithHook();
    const q = rig.mem.allocFrames(1, 1);
    rig.setupPriq(3, q + 0x60);
    expect(rig.ctl.priq.basePa).toBe(q);
    expect(rig.ctl.priq.push(req({ sid: 9, prgi: 1 }))).toBe('queued');
    expect(rig.mem.read32(q)).toBe(9);
  });
});
