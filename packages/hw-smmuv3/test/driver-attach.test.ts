/**
 * The STE and CD words the driver writes for each kind of attachment, checked against the
 * worked values of smmuv3.md §2.3 (STEs) and §3.3 (CDs), the commands of the §2.6 update
 * protocol, PASID attachment through the master's CD table (§3.2) with S1DSS carrying the RID's
 * behaviour, and the driver-api errno contract of attach / detach / free.
 */
import { IommuError, Prot, isIommuError, type PagingDomain } from '@iommulab/driver-api';
import { ACCESS_READ } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { CmdOp, EvtId } from '../src/codec/index.js';
import type { SmmuS1Domain } from '../src/driver/domain-s1.js';
import type { SmmuS2Domain } from '../src/driver/domain-s2.js';
import { DriverRig } from './driver-rig.js';

const RW = Prot.READ | Prot.WRITE;
const dw = DriverRig.dwords;

async function errno(p: () => unknown): Promise<string> {
  try {
    await p();
  } catch (e) {
    if (isIommuError(e)) return e.errno;
    throw e;
  }
  return 'OK';
}

function cdWords(r: DriverRig, rid: number, ssid: number): bigint[] {
  const m = r.drv.masterBySid(rid)!;
  const w = m.cdTable!.cdWord(ssid);
  return dw(r.mem.u32.subarray(w, w + 16));
}

describe('STE / CD per attachment (smmuv3.md §2.3, §3.3)', () => {
  it('stage-1 paging domain: cdtable STE (S1DSS = SSID0, S1STALLD) and the Linux CD at SSID 0', async () => {
    const r = await DriverRig.create();
    const dev = await r.drv.probeDevice({ rid: 3 });
    expect(dw(r.ste(3))).toEqual([1n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]); // abort from the start
    const dom = (await r.drv.domainAllocPaging(dev)) as SmmuS1Domain;
    expect(dom.stage).toBe('s1');
    expect(dom.asid).toBe(1);
    await r.drv.attachDevice(dev, dom);
    const m = r.drv.masterOf(dev);
    const cdPa = m.cdTable!.basePa;
    // S1Fmt 0, S1CDMax 0 (no PASID); dword1 0xD6 | S1STALLD (the SMMU stalls, the master does not).
    expect(dw(r.ste(3))).toEqual([BigInt(cdPa) | 0xbn, 0xd6n | (1n << 27n), 0n, 0n, 0n, 0n, 0n, 0n]);
    // T0SZ 16, TG0 4K, IR0 = OR0 = WBWA, SH0 ISH, EPD1, V, IPS 5 (48-bit), AA64, R, A, ASET, ASID 1.
    expect(cdWords(r, 3, 0)).toEqual([0x0001e205c0003510n, BigInt(dom.pgtable.pgdPa), 0n, 0xf404ff44n, 0n, 0n, 0n, 0n]);
    // §2.6: the CD (hitless, 2 syncs), then the STE (hitless abort → cdtable, 2 syncs), then PREFETCH_CONFIG.
    expect(r.rec.ops()).toEqual([CmdOp.CFGI_CD, CmdOp.SYNC, CmdOp.CFGI_CD, CmdOp.SYNC, CmdOp.CFGI_STE, CmdOp.SYNC, CmdOp.CFGI_STE, CmdOp.SYNC, CmdOp.PREFETCH_CONFIG]);
  });

  it('nest-parent stage-2 domain: S2 STE with VMID, VTCR, S2AA64 | S2PTW | S2R, S2FWB, S2TTB', async () => {
    const r = await DriverRig.create();
    const dev = await r.drv.probeDevice({ rid: 4 });
    const dom = (await r.drv.domainAllocPaging(dev, { nestParent: true })) as SmmuS2Domain;
    expect(dom.stage).toBe('s2');
    expect(dom.vmid).toBe(1);
    // IAS 48, 4 KiB, coherent, OAS 48: T0SZ 16 | SL0 2 | IR0 1 | OR0 1 | SH0 3 | TG 0 | PS 5.
    expect(dom.pgtable.vtcrValue()).toBe(0x53590);
    await r.drv.attachDevice(dev, dom);
    expect(dw(r.ste(4))).toEqual([0xdn, 1n << 25n, 0x044d_3590_0000_0001n, BigInt(dom.pgtable.pgdPa), 0n, 0n, 0n, 0n]);
    // abort → S2 is hitless: dwords 1–3 while dword 0 is abort, then dword 0.
    expect(r.rec.ops()).toEqual([CmdOp.CFGI_STE, CmdOp.SYNC, CmdOp.CFGI_STE, CmdOp.SYNC, CmdOp.PREFETCH_CONFIG]);
  });

  it('identity → bypass STE (0x9); blocked → abort STE (0x1); S1 → identity clears CD 0', async () => {
    const r = await DriverRig.create();
    const dev = await r.drv.probeDevice({ rid: 5 });
    await r.drv.attachDevice(dev, 'identity');
    expect(dw(r.ste(5)).slice(0, 2)).toEqual([0x9n, 0n]);
    expect(r.dma(5, 0x1234_5678).pa).toBe(0x1234_5678);
    await r.drv.attachDevice(dev, 'blocked');
    expect(dw(r.ste(5))).toEqual([1n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]);
    const dom = await r.drv.domainAllocPaging(dev);
    await r.drv.attachDevice(dev, dom);
    await r.drv.attachDevice(dev, 'identity');
    expect(dw(r.ste(5))[0]).toBe(0x9n);
    expect(cdWords(r, 5, 0)[0]).toBe(0n);
  });

  it('a device with ATS gets EATS = 1 and its ATC is invalidated after the STE changes', async () => {
    const r = await DriverRig.create();
    const dev = await r.drv.probeDevice({ rid: 6, ats: true });
    const dom = await r.drv.domainAllocPaging(dev);
    await r.drv.attachDevice(dev, dom);
    expect(dw(r.ste(6))[1]).toBe(0xd6n | (1n << 27n) | (1n << 28n));
    const cmds = r.rec.take();
    expect(cmds.slice(-2).map((c) => c[0] & 0xff)).toEqual([CmdOp.ATC_INV, CmdOp.SYNC]);
    expect(cmds.at(-2)).toEqual([0x40, 6, 0x34, 0]);
    await r.drv.attachDevice(dev, 'blocked'); // ATS off: EATS cleared, ATC flushed once more
    expect(dw(r.ste(6))[1]).toBe(0n);
    expect(r.rec.ops().slice(-2)).toEqual([CmdOp.ATC_INV, CmdOp.SYNC]);
  });
});

describe('PASIDs (smmuv3.md §3.2; Linux arm_smmu_set_pasid)', () => {
  it('RID blocked + PASID 5: cdtable STE with S1DSS = terminate, CD at SSID 5; detach restores abort', async () => {
    const r = await DriverRig.create();
    const dev = await r.drv.probeDevice({ rid: 7, pasidBits: 8 });
    expect(dev.maxPasidLog2).toBe(8);
    const dom = (await r.drv.domainAllocPaging(dev, { pasid: true })) as SmmuS1Domain;
    const pa = r.mem.allocFrame();
    dom.mapPages(0x4000, pa, 4096, 1, RW);
    await r.drv.attachPasid(dev, 5, dom);
    const m = r.drv.masterOf(dev);
    expect(m.cdTable!.s1cdmax).toBe(8);
    expect(dw(r.ste(7)).slice(0, 2)).toEqual([(8n << 59n) | BigInt(m.cdTable!.basePa) | 0xbn, 0xd4n | (1n << 27n)]);
    expect(cdWords(r, 7, 5)[0] & 0x0000_ffff_ffff_ffffn).toBe(0x0000_e205c0003510n);
    expect(r.dma(7, 0x4010, ACCESS_READ, 5)).toMatchObject({ ok: true, pa: pa + 0x10 });
    expect(r.dma(7, 0x4010, ACCESS_READ, 6).ok).toBe(false);
    expect(r.dma(7, 0x4010).faultDetail).toBe(EvtId.F_STREAM_DISABLED);
    await r.drv.detachPasid(dev, 5);
    expect(cdWords(r, 7, 5)[0]).toBe(0n);
    expect(dw(r.ste(7))).toEqual([1n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]);
    expect(r.dma(7, 0x4010, ACCESS_READ, 5).ok).toBe(false);
    await r.drv.detachPasid(dev, 5); // again: nothing to do
  });

  it('RID identity + PASID: S1DSS = bypass; RID on a stage-1 domain: S1DSS = SSID0 and CD 0', async () => {
    const r = await DriverRig.create();
    const dev = await r.drv.probeDevice({ rid: 8, pasidBits: 4 });
    const pdom = await r.drv.domainAllocPaging(dev, { pasid: true });
    await r.drv.attachDevice(dev, 'identity');
    await r.drv.attachPasid(dev, 1, pdom);
    expect(dw(r.ste(8))[1] & 3n).toBe(1n);
    expect(r.dma(8, 0x9000).pa).toBe(0x9000);
    const rdom = await r.drv.domainAllocPaging(dev, { pasid: true });
    await r.drv.attachDevice(dev, rdom);
    expect(dw(r.ste(8))[1] & 3n).toBe(2n);
    expect(cdWords(r, 8, 0)[0] & 0x8000_0000n).toBe(0x8000_0000n);
    await r.drv.detachPasid(dev, 1);
    expect(dw(r.ste(8))[1] & 3n).toBe(2n); // still the RID's cdtable STE
  });

  it('20 PASID bits: a 2-level CD table (S1Fmt 2, S1CDMax 20); a new L1CD is synced with CFGI_CD Leaf = 0', async () => {
    const r = await DriverRig.create();
    const dev = await r.drv.probeDevice({ rid: 9, pasidBits: 20 });
    const dom = await r.drv.domainAllocPaging(dev, { pasid: true });
    await r.drv.attachPasid(dev, 0x12345, dom);
    const t = r.drv.masterOf(dev).cdTable!;
    expect([t.s1fmt, t.s1cdmax]).toEqual([2, 20]);
    const l1 = r.mem.read32(t.basePa + (0x12345 >>> 10) * 8);
    expect(l1 & 1).toBe(1);
    expect(t.cdWord(0x12345)).toBe(((l1 & ~0xfff) + (0x12345 & 1023) * 64) >>> 2);
    const cmds = r.rec.take();
    expect(cmds[0]).toEqual([(CmdOp.CFGI_CD | (0x12345 << 12)) >>> 0, 9, 0, 0]); // Leaf = 0
    expect(cmds[1][0] & 0xff).toBe(CmdOp.SYNC);
    expect(dw(r.ste(9))[0] >> 59n).toBe(20n);
    expect((dw(r.ste(9))[0] >> 4n) & 3n).toBe(2n);
  });

  it('errno contract: no PASID, PASID 0, non-pasid domain, S2 RID, S2 over PASIDs', async () => {
    const r = await DriverRig.create();
    const plain = await r.drv.probeDevice({ rid: 10 });
    const dev = await r.drv.probeDevice({ rid: 11, pasidBits: 8 });
    const pdom = await r.drv.domainAllocPaging(dev, { pasid: true });
    const nopasid = await r.drv.domainAllocPaging(dev);
    const s2 = await r.drv.domainAllocPaging(dev, { nestParent: true });
    expect(await errno(() => r.drv.attachPasid(plain, 1, pdom))).toBe('EINVAL');
    expect(await errno(() => r.drv.attachPasid(dev, 0, pdom))).toBe('EINVAL');
    expect(await errno(() => r.drv.attachPasid(dev, 256, pdom))).toBe('EINVAL');
    expect(await errno(() => r.drv.attachPasid(dev, 1, nopasid))).toBe('EINVAL');
    expect(await errno(() => r.drv.attachPasid(dev, 1, s2))).toBe('EINVAL');
    expect(await errno(() => r.drv.attachPasid(dev, 1, 'identity'))).toBe('EOPNOTSUPP');
    await r.drv.attachDevice(dev, s2);
    expect(await errno(() => r.drv.attachPasid(dev, 1, pdom))).toBe('EINVAL');
    await r.drv.attachDevice(dev, 'blocked');
    await r.drv.attachPasid(dev, 1, pdom);
    expect(await errno(() => r.drv.attachDevice(dev, s2))).toBe('EBUSY');
    expect(await errno(() => pdom.free())).toBe('EBUSY');
  });
});

describe('domains and devices (driver-api errno contract)', () => {
  it('allocation flags as Linux arm_smmu_domain_alloc_paging_flags', async () => {
    const r = await DriverRig.create();
    const dev = await r.drv.probeDevice({ rid: 1 });
    const nd = await r.drv.probeDevice({ rid: 2, noDirty: true });
    expect(await errno(() => r.drv.domainAllocPaging(dev, { nestParent: true, dirtyTracking: true }))).toBe('EOPNOTSUPP');
    expect(await errno(() => r.drv.domainAllocPaging(dev, { nestParent: true, pasid: true }))).toBe('EOPNOTSUPP');
    expect(await errno(() => r.drv.domainAllocPaging(nd, { dirtyTracking: true }))).toBe('EOPNOTSUPP');
    expect(await errno(() => r.drv.domainAllocPaging(dev, {}, { type: 0, data: new Uint8Array(0) }))).toBe('EOPNOTSUPP');
    const dirty = await r.drv.domainAllocPaging(dev, { dirtyTracking: true });
    expect(await errno(() => r.drv.attachDevice(nd, dirty))).toBe('EINVAL');
    const noNest = await DriverRig.create({ hw: { stage2: false } });
    const d2 = await noNest.drv.probeDevice({ rid: 1 });
    expect(await errno(() => noNest.drv.domainAllocPaging(d2, { nestParent: true }))).toBe('EOPNOTSUPP');
    const noDirty = await DriverRig.create({ hw: { httu: 1 } });
    expect(noDirty.drv.capabilities.dirtyTracking).toBe(false);
    expect(await errno(async () => noDirty.drv.domainAllocPaging(await noDirty.drv.probeDevice({ rid: 1 }), { dirtyTracking: true }))).toBe('EOPNOTSUPP');
  });

  it('stage-2-only SMMU: the default paging domain is stage 2 with the S2 input size as aperture', async () => {
    const r = await DriverRig.create({ hw: { stage1: false, oas: 44 } });
    expect(r.drv.capabilities.pasidBits).toBe(0);
    expect(r.drv.capabilities.aperture.last).toBe(2 ** 44 - 1);
    const dev = await r.drv.probeDevice({ rid: 1 });
    const dom = (await r.drv.domainAllocPaging(dev)) as PagingDomain & { stage: string };
    expect(dom.stage).toBe('s2');
    await r.drv.attachDevice(dev, dom);
    const pa = r.mem.allocFrame();
    dom.mapPages(0x7000, pa, 4096, 1, RW);
    expect(r.dma(1, 0x7008).pa).toBe(pa + 8);
  });

  it('probe: EBUSY twice, ENODEV outside the stream table; release blocks DMA and forgets the device', async () => {
    const r = await DriverRig.create({ hw: { sidBits: 8 } });
    const dev = await r.drv.probeDevice({ rid: 3 });
    expect(await errno(() => r.drv.probeDevice({ rid: 3 }))).toBe('EBUSY');
    expect(await errno(() => r.drv.probeDevice({ rid: 256 }))).toBe('ENODEV');
    const dom = await r.drv.domainAllocPaging(dev);
    await r.drv.attachDevice(dev, 'identity');
    expect(r.dma(3, 0x5000).ok).toBe(true);
    await r.drv.attachDevice(dev, dom);
    await r.drv.releaseDevice(dev);
    expect(dw(r.ste(3))).toEqual([1n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]);
    expect(r.dma(3, 0x5000).ok).toBe(false);
    expect(await errno(() => r.drv.hwInfo(dev))).toBe('ENODEV');
    await dom.free();
    const again = await r.drv.probeDevice({ rid: 3 });
    expect(again.rid).toBe(3);
  });

  it('free flushes the ASID and releases it; a freed domain is ENOENT', async () => {
    const r = await DriverRig.create();
    const dev = await r.drv.probeDevice({ rid: 3 });
    const a = (await r.drv.domainAllocPaging(dev)) as SmmuS1Domain;
    r.rec.take();
    await a.free();
    expect(r.rec.take()).toEqual([
      [0x11, 0x0001_0000, 0, 0],
      expect.anything(),
    ]);
    expect(await errno(() => a.mapPages(0, 0x1000, 4096, 1, RW))).toBe('ENOENT');
    expect(await errno(() => r.drv.attachDevice(dev, a))).toBe('ENOENT');
    const b = (await r.drv.domainAllocPaging(dev)) as SmmuS1Domain;
    expect(b.asid).toBe(1);
  });

  it('hwInfo: type 2, iommu_hw_info_arm_smmuv3 with the raw IDRs, dirty capability, PASID width', async () => {
    const r = await DriverRig.create();
    const dev = await r.drv.probeDevice({ rid: 3, pasidBits: 5 });
    const nd = await r.drv.probeDevice({ rid: 4, noDirty: true });
    const info = r.drv.hwInfo(dev);
    expect(info.type).toBe(2);
    expect(info.maxPasidLog2).toBe(5);
    expect(info.capabilities).toBe(1);
    expect(r.drv.hwInfo(nd).capabilities).toBe(0);
    const v = new DataView(info.data.buffer);
    for (let i = 0; i < 6; i++) expect(v.getUint32(8 + 4 * i, true)).toBe(r.regs.read32(4 * i));
    expect(v.getUint32(32, true)).toBe(r.regs.read32(0x18));
    expect(v.getUint32(36, true)).toBe(r.regs.read32(0x1c));
    expect(r.drv.reservedRegions(dev)).toEqual([{ start: 0x8000000, last: 0x80fffff, type: 'msi' }]);
  });

  it('shutdown disables the SMMU, frees every frame, and later calls are ENODEV', async () => {
    const r = await DriverRig.create();
    const before = r.mem.allocatedFrameCount;
    const dev = await r.drv.probeDevice({ rid: 0x345, pasidBits: 12 });
    const dom = await r.drv.domainAllocPaging(dev, { pasid: true });
    dom.mapPages(0x10_0000, 0x20_0000, 4096, 64, RW);
    await r.drv.attachDevice(dev, dom);
    await r.drv.attachPasid(dev, 3, dom);
    await r.drv.shutdown();
    expect(r.regs.read32(0x24)).toBe(0);
    expect(r.mem.allocatedFrameCount).toBe(0);
    expect(before).toBeGreaterThan(0);
    expect(await errno(() => r.drv.probeDevice({ rid: 1 }))).toBe('ENODEV');
    expect(IommuError).toBeDefined();
  });
});
