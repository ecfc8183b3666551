/**
 * Nested translation through the driver (smmuv3.md §8, §9.3–§9.5): a nest-parent stage-2 domain,
 * a vIOMMU over it, a vDEVICE, a nested domain from a guest STE, the physical nested STE the
 * driver installs, DMA through both stages, guest invalidations rewritten as the kernel does
 * (VMID, virtual → physical SID, EIO for the rest), and events forwarded to the vEVENTQ.
 */
import { IotlbGather, Prot, isIommuError, type IommuViommu, type ViommuEvent } from '@iommulab/driver-api';
import { ACCESS_READ } from '@iommulab/runtime';
import { describe, expect, it } from 'vitest';
import { CmdOp, EvtId, fromDwords } from '../src/codec/index.js';
import { makeS1Cd } from '../src/driver/cd-build.js';
import { cmdCfgiCd, cmdOpOnly, cmdTlbiVa } from '../src/driver/cmd-build.js';
import type { SmmuS2Domain } from '../src/driver/domain-s2.js';
import { IoPgtableArm } from '../src/pgtable/index.js';
import { DriverRig } from './driver-rig.js';

const RW = Prot.READ | Prot.WRITE;
const MiB = 1024 * 1024;
const dw = DriverRig.dwords;

function bytesOf(words: Uint32Array): Uint8Array {
  return new Uint8Array(words.buffer.slice(0));
}

async function errno(p: () => unknown): Promise<string> {
  try {
    await p();
  } catch (e) {
    if (isIommuError(e)) return e.errno;
    throw e;
  }
  return 'OK';
}

/** A VM: S2 identity over PhysMem for the guest's tables, a guest S1 table and CD at IPA = PA. */
async function vm() {
  const r = await DriverRig.create();
  const dev = await r.drv.probeDevice({ rid: 3 });
  const s2 = (await r.drv.domainAllocPaging(dev, { nestParent: true })) as SmmuS2Domain;
  s2.mapPages(0, 0, 2 * MiB, r.mem.size / (2 * MiB), RW); // IPA = PA for all of PhysMem
  const data = r.mem.allocFrames(4);
  s2.mapPages(0x4000_0000, data, 4096, 4, RW); // the guest's "RAM" at IPA 1 GiB
  const guest = new IoPgtableArm(r.mem, { fmt: 's1', granule: 4096, ias: 48, oas: 48 });
  guest.map(0x10_0000, 0x4000_0000, 4096, 4, RW);
  const cdPa = r.mem.allocFrame();
  r.mem.u32.set(makeS1Cd(new Uint32Array(16), { tcr: guest.tcr, ttb0: guest.pgdPa, asid: 5, stall: false, dirty: false }), cdPa >>> 2);
  const viommu = (await r.drv.viommuAlloc!(dev, s2, 1, new Uint8Array(0))) as IommuViommu;
  await viommu.vdeviceInit!(dev, 0x99n);
  const vste = fromDwords([BigInt(cdPa) | 0xbn, 0xd4n]); // V | Config S1 | S1ContextPtr; S1CIR/COR/CSH
  const nested = await viommu.domainAllocNested!(dev, 2, bytesOf(vste));
  return { r, dev, s2, data, guest, cdPa, viommu, nested };
}

describe('nested domain + vIOMMU (smmuv3.md §8, §9.3)', () => {
  it('installs the nested STE (Config 7, guest CD table, MEV, the parent S2 dwords) and translates through both stages', async () => {
    const { r, dev, s2, data, cdPa, nested } = await vm();
    await r.drv.attachDevice(dev, nested);
    const s2ste = dw(s2.makeSte(r.drv.masterOf(dev), false, new Uint32Array(16)));
    expect(dw(r.ste(3))).toEqual([BigInt(cdPa) | 0xfn, 0xd4n | (1n << 19n) | (1n << 25n), s2ste[2], s2ste[3], 0n, 0n, 0n, 0n]);
    expect(r.dma(3, 0x10_1234)).toMatchObject({ ok: true, pa: data + 0x1234 });
    expect(await errno(() => nested.free())).toBe('EBUSY');
    expect(await errno(() => s2.free())).toBe('EBUSY');
  });

  it('guest invalidations: TLBI_NH_VA gets the VM VMID, CFGI_CD the physical SID; other opcodes / unknown vSIDs are EIO', async () => {
    const { r, dev, s2, data, guest, viommu, nested } = await vm();
    await r.drv.attachDevice(dev, nested);
    expect(r.dma(3, 0x10_2000).pa).toBe(data + 0x2000);
    guest.unmap(0x10_2000, 4096, 1);
    expect(r.dma(3, 0x10_2000).ok).toBe(true); // stale until the guest invalidates
    const cmds = new Uint32Array(8);
    cmdTlbiVa(cmds, 0, CmdOp.TLBI_NH_VA, 5, 0, 0x10_2000, true, 0, 0, 0, 0);
    cmdCfgiCd(cmds, 4, 0x99, 0, true);
    r.rec.take();
    expect(await viommu.cacheInvalidate(1, 16, bytesOf(cmds), 2)).toEqual({ handled: 2 });
    const issued = r.rec.take();
    expect(issued[0]).toEqual([0x12, (5 << 16) | s2.vmid, 0x10_2001, 0]);
    expect(issued[1]).toEqual([CmdOp.CFGI_CD, 3, 1, 0]);
    expect(issued[2][0] & 0xff).toBe(CmdOp.SYNC);
    expect(r.dma(3, 0x10_2000).ok).toBe(false);
    // TLBI_NSNH_ALL → TLBI_NH_ALL(VMID)
    const one = new Uint32Array(4);
    cmdOpOnly(one, 0, CmdOp.TLBI_NSNH_ALL);
    one[1] = 0xabcd; // whatever the guest put in dword0[63:32]: the kernel writes dword1 = 0 and VMID
    expect(await viommu.cacheInvalidate(1, 16, bytesOf(one), 1)).toEqual({ handled: 1 });
    expect(r.rec.take().slice(0, 1)).toEqual([[0x10, s2.vmid, 0, 0]]);
    // CFGI_STE is not allowed from a guest: EIO at entry 1, and (`goto out` before the batch is
    // issued) the converted entry 0 of the same batch is not sent either (smmuv3.md §9.4)
    const bad = new Uint32Array(12);
    cmdOpOnly(bad, 0, CmdOp.TLBI_NSNH_ALL);
    cmdOpOnly(bad, 4, CmdOp.CFGI_STE);
    cmdOpOnly(bad, 8, CmdOp.TLBI_NSNH_ALL);
    const res = await viommu.cacheInvalidate(1, 16, bytesOf(bad), 3);
    expect(res.handled).toBe(1);
    expect(res.error?.errno).toBe('EIO');
    expect(r.rec.take()).toEqual([]);
    cmdCfgiCd(bad, 0, 0x42, 0, true);
    expect((await viommu.cacheInvalidate(1, 16, bytesOf(bad.subarray(0, 4)), 1)).error?.errno).toBe('EIO');
    expect((await viommu.cacheInvalidate(7, 16, bytesOf(bad), 0)).error?.errno).toBe('EINVAL');
    // entry_num 0: iommu_copy_struct_from_full_user_array refuses an empty array (EINVAL)
    const empty = await viommu.cacheInvalidate(1, 16, new Uint8Array(0), 0);
    expect(empty.handled).toBe(0);
    expect(empty.error?.errno).toBe('EINVAL');
    expect(r.rec.take()).toEqual([]);
  });

  it('a stage-2 change of the parent flushes the nested entries (TLBI_S2_IPA, then TLBI_NH_ALL of the VMID)', async () => {
    const { r, dev, s2, nested } = await vm();
    await r.drv.attachDevice(dev, nested);
    expect(r.dma(3, 0x10_0000).ok).toBe(true);
    const g = new IotlbGather();
    s2.unmapPages(0x4000_0000, 4096, 1, g);
    await s2.iotlbSync(g);
    expect(r.rec.ops().slice(-4)).toEqual([CmdOp.TLBI_S2_IPA, CmdOp.SYNC, CmdOp.TLBI_NH_ALL, CmdOp.SYNC]);
    expect(r.dma(3, 0x10_0000).ok).toBe(false);
  });

  it('events of the device go to the vEVENTQ with the virtual SID (not to onFault)', async () => {
    const { r, dev, viommu, nested } = await vm();
    await r.drv.attachDevice(dev, nested);
    const vevents: ViommuEvent[] = [];
    const faults: unknown[] = [];
    viommu.onViommuEvent!((e) => vevents.push(e));
    r.drv.onFault((f) => faults.push(f));
    expect(r.dma(3, 0x70_0000, ACCESS_READ).ok).toBe(false);
    await r.drv.drainFaults();
    expect(faults).toEqual([]);
    expect(vevents).toHaveLength(1);
    expect(vevents[0].type).toBe(1);
    const v = new DataView(vevents[0].data.buffer);
    expect(v.getUint32(0, true) & 0xff).toBe(EvtId.F_TRANSLATION);
    expect(v.getUint32(4, true)).toBe(0x99);
    expect(v.getUint32(16, true)).toBe(0x70_0000);
  });

  it('allocation and attach checks: type, length, vSTE bits, vDEVICE', async () => {
    const { r, viommu, cdPa, s2 } = await vm();
    const other = await r.drv.probeDevice({ rid: 4 });
    const vste = bytesOf(fromDwords([BigInt(cdPa) | 0xbn, 0xd4n]));
    // flags first (EOPNOTSUPP), then iommu_copy_struct_from_user: another data type is EINVAL
    expect(await errno(() => viommu.domainAllocNested!(other, 3, vste, { pasid: true }))).toBe('EOPNOTSUPP');
    expect(await errno(() => viommu.domainAllocNested!(other, 3, vste))).toBe('EINVAL');
    expect(await errno(() => viommu.domainAllocNested!(other, 2, vste.subarray(0, 8)))).toBe('EINVAL');
    expect(await errno(() => viommu.domainAllocNested!(other, 2, new Uint8Array([...vste, 1])))).toBe('E2BIG');
    expect(await errno(() => viommu.domainAllocNested!(other, 2, bytesOf(fromDwords([0xdn, 0n]))))).toBe('EIO');
    const d = await viommu.domainAllocNested!(other, 2, vste);
    expect(await errno(() => r.drv.attachDevice(other, d))).toBe('ENOENT'); // no vDEVICE
    await viommu.vdeviceInit!(other, 0x77n);
    await r.drv.attachDevice(other, d);
    expect(await errno(() => viommu.vdeviceInit!(other, 0x77n))).toBe('EEXIST');
    // a guest bypass vSTE is the parent's S2 STE; an invalid one is abort
    const byp = await viommu.domainAllocNested!(other, 2, bytesOf(fromDwords([0x9n, 0n])));
    await r.drv.attachDevice(other, byp);
    expect(dw(r.ste(4))[0]).toBe(0xdn);
    const off = await viommu.domainAllocNested!(other, 2, new Uint8Array(16));
    await r.drv.attachDevice(other, off);
    expect(dw(r.ste(4))[0]).toBe(0x1n);
    expect(await errno(() => r.drv.viommuAlloc!(other, s2, 2, new Uint8Array(0)))).toBe('EOPNOTSUPP');
    const plain = await r.drv.domainAllocPaging(other);
    expect(await errno(() => r.drv.viommuAlloc!(other, plain, 1, new Uint8Array(0)))).toBe('EINVAL');
  });
});
