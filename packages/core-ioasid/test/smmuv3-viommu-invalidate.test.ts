/**
 * Guest invalidations of an ARM_SMMUV3 vIOMMU: IOMMU_HWPT_INVALIDATE with `hwpt_id` = the vIOMMU,
 * data type IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 (1), an array of 16-byte
 * `struct iommu_viommu_arm_smmuv3_invalidate { __le64 cmd[2]; }` (smmuv3.md §9.4; Linux
 * `arm_vsmmu_cache_invalidate` / `arm_vsmmu_convert_user_cmd`):
 * - TLBI_NSNH_ALL → TLBI_NH_ALL with the vIOMMU's VMID and dword1 = 0; TLBI_NH_VA / VAA / ALL /
 *   ASID keep everything but get the VMID replaced; ATC_INV / CFGI_CD / CFGI_CD_ALL get the vSID
 *   replaced by the vDEVICE's physical SID (unknown vSID → EIO); any other opcode → EIO.
 * - Commands are issued on the host command queue in batches of 63 followed by a CMD_SYNC; a
 *   refused entry stops the call before its batch is issued, and `entry_num` comes back as the
 *   index of that entry.
 * - The array copy (`iommu_copy_struct_from_full_user_array`): another data type → EINVAL, an empty
 *   array → EINVAL, a shorter entry_len is zero-extended, a longer one needs a zero tail (E2BIG).
 * Every rewrite is checked on the exact words the host driver published, and end to end: the
 * guest's stale translation / CD stays in the SMMU's caches until its command has run.
 */
import { ACCESS_READ, FaultReason } from '@iommulab/driver-api';
import { CmdOp, EvtId } from '@iommulab/hw-smmuv3/codec';
import {
  cmdAtcInv,
  cmdCfgiAll,
  cmdCfgiCd,
  cmdCfgiCdAll,
  cmdCfgiSte,
  cmdOpOnly,
  cmdPrefetchConfig,
  cmdPriResp,
  cmdResume,
  cmdSync,
  cmdTlbiNhAll,
  cmdTlbiNhAsid,
  cmdTlbiS12Vmall,
  cmdTlbiS2Ipa,
  cmdTlbiVa,
} from '@iommulab/hw-smmuv3/driver';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IommufdError } from '../src/errors.js';
import { IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 } from '../src/uapi/constants.js';
import { PAGE_SIZE } from './fixture.js';
import {
  allocNested,
  GuestS1,
  GVA,
  HostCmdRecorder,
  openSmmuSelf,
  openVm,
  smmuDma,
  teardownSmmu,
  writeGuestCd,
  type HostCmd,
  type SmmuSelf,
  type Vm,
} from './smmuv3-fixture.js';

type Fill = (u32: Uint32Array, w: number) => void;

/** The little-endian byte array of guest commands, `entryLen` bytes per entry (zero padded). */
function guestCmds(fills: readonly Fill[], entryLen = 16): Uint8Array {
  const out = new Uint8Array(fills.length * entryLen);
  fills.forEach((f, i) => {
    const u32 = new Uint32Array(4);
    f(u32, 0);
    const b = new Uint8Array(u32.buffer).subarray(0, Math.min(16, entryLen));
    out.set(b, i * entryLen);
  });
  return out;
}

async function errOf(p: Promise<unknown>): Promise<IommufdError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).not.toBeNull();
  return e as IommufdError;
}

const T = IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3;
const GUEST_VMID = 0x3ff; // whatever the guest puts in the VMID field
const ASID = 7;

describe('IOMMU_HWPT_INVALIDATE on an ARM_SMMUV3 vIOMMU', () => {
  let self: SmmuSelf;
  let vm: Vm;
  let rec: HostCmdRecorder;
  let page: number;
  let nested: number;

  beforeEach(async () => {
    self = await openSmmuSelf();
    vm = await openVm(self, { rid: 0x10, vsid: 0x99 });
    page = vm.ram.allocPage();
    vm.s1.map(GVA, page);
    vm.ram.write(page, new Uint8Array([0x11, 0x22]));
    writeGuestCd(vm, { asid: ASID });
    nested = await allocNested(self, vm);
    await self.fd.deviceAttach({ devId: vm.devId, ptId: nested });
    rec = new HostCmdRecorder(self);
  });
  afterEach(async () => {
    rec.close();
    await teardownSmmu(self);
  });

  const inv = (fills: readonly Fill[], o: { entryLen?: number; dataType?: number; entryNum?: number; data?: Uint8Array | null } = {}) =>
    self.fd.hwptInvalidate({
      hwptId: vm.viommuId,
      dataType: o.dataType ?? T,
      entryLen: o.entryLen ?? 16,
      entryNum: o.entryNum ?? fills.length,
      data: o.data === undefined ? guestCmds(fills, o.entryLen ?? 16) : o.data,
    });
  const expectInv = async (errno: string, p: Promise<unknown>, entryNum: number) => {
    const e = await errOf(p);
    expect(e.errno).toBe(errno);
    expect(e.out?.entryNum).toBe(entryNum);
  };
  const SYNC = (c: HostCmd) => HostCmdRecorder.isSync(c);

  it('TLBI_NH_VA: the guest VMID field is replaced by the vIOMMU VMID; the stale stage-1 entry goes', async () => {
    expect(await smmuDma(self, vm.rid, GVA)).toMatchObject({ ok: true, pa: vm.ram.paOf(page) });
    // The guest unmaps the page: the SMMU's TLB still has it until the guest invalidates
    vm.s1.unmap(GVA);
    expect(await smmuDma(self, vm.rid, GVA)).toMatchObject({ ok: true, pa: vm.ram.paOf(page) });
    rec.take();
    // a TLBI for another ASID leaves it
    expect(await inv([(u, w) => cmdTlbiVa(u, w, CmdOp.TLBI_NH_VA, ASID + 1, GUEST_VMID, GVA, true, 0, 0, 0, 0)])).toEqual({ entryNum: 1 });
    expect(await smmuDma(self, vm.rid, GVA)).toMatchObject({ ok: true });
    rec.take();
    expect(await inv([(u, w) => cmdTlbiVa(u, w, CmdOp.TLBI_NH_VA, ASID, GUEST_VMID, GVA, true, 0, 0, 0, 0)])).toEqual({ entryNum: 1 });
    const issued = rec.take();
    expect(issued.length).toBe(2);
    // dword0: opcode 0x12, VMID [47:32] = the vIOMMU's, ASID [63:48] kept; dword1: VA [63:12] | Leaf
    expect(issued[0]).toEqual([CmdOp.TLBI_NH_VA, ((ASID << 16) | vm.vmid) >>> 0, (GVA % 2 ** 32) + 1, Math.floor(GVA / 2 ** 32)]);
    expect(SYNC(issued[1])).toBe(true);
    expect(await smmuDma(self, vm.rid, GVA, ACCESS_READ)).toMatchObject({ ok: false, fault: FaultReason.TRANSLATION, faultDetail: EvtId.F_TRANSLATION });
  });

  it('TLBI_NSNH_ALL → TLBI_NH_ALL(VMID) with dword1 = 0; TLBI_NH_ASID / NH_VAA / NH_ALL keep their fields but the VMID', async () => {
    const junkNsnh: Fill = (u, w) => {
      cmdOpOnly(u, w, CmdOp.TLBI_NSNH_ALL);
      u[w] |= 0xff00; // junk in dword0 [15:8] ...
      u[w + 1] = 0xabcd_1234; // ... [63:32]
      u[w + 2] = 0x5555_5000; // and dword1
      u[w + 3] = 0x5;
    };
    expect(
      await inv([
        junkNsnh,
        (u, w) => cmdTlbiNhAsid(u, w, ASID, GUEST_VMID),
        (u, w) => cmdTlbiVa(u, w, CmdOp.TLBI_NH_VAA, 0, GUEST_VMID, GVA + PAGE_SIZE, false, 0, 0, 0, 0),
        (u, w) => cmdTlbiNhAll(u, w, GUEST_VMID),
      ]),
    ).toEqual({ entryNum: 4 });
    const issued = rec.take();
    expect(issued.slice(0, 4)).toEqual([
      [CmdOp.TLBI_NH_ALL, vm.vmid, 0, 0],
      [CmdOp.TLBI_NH_ASID, ((ASID << 16) | vm.vmid) >>> 0, 0, 0],
      [CmdOp.TLBI_NH_VAA, vm.vmid, (GVA + PAGE_SIZE) % 2 ** 32, Math.floor(GVA / 2 ** 32)],
      [CmdOp.TLBI_NH_ALL, vm.vmid, 0, 0],
    ]);
    // one batch: one CMD_SYNC after the four
    expect(issued.length).toBe(5);
    expect(SYNC(issued[4])).toBe(true);
    // end to end: NSNH_ALL alone flushes the guest's entries of this VM
    expect((await smmuDma(self, vm.rid, GVA)).ok).toBe(true);
    vm.s1.unmap(GVA);
    expect((await smmuDma(self, vm.rid, GVA)).ok).toBe(true);
    await inv([(u, w) => cmdOpOnly(u, w, CmdOp.TLBI_NSNH_ALL)]);
    expect((await smmuDma(self, vm.rid, GVA)).ok).toBe(false);
  });

  it('CFGI_CD / CFGI_CD_ALL / ATC_INV: the vSID becomes the physical SID; a guest CD change is seen after its CFGI_CD', async () => {
    expect((await smmuDma(self, vm.rid, GVA)).pa).toBe(vm.ram.paOf(page));
    // The guest points CD 0 at a new stage-1 table (GVA → page2) with a new ASID
    const page2 = vm.ram.allocPage();
    const s1b = new GuestS1(vm.ram);
    s1b.map(GVA, page2);
    writeGuestCd(vm, { asid: 9, ttb0: s1b.root });
    expect((await smmuDma(self, vm.rid, GVA)).pa).toBe(vm.ram.paOf(page)); // the SMMU still uses the cached CD
    rec.take();
    expect(await inv([(u, w) => cmdCfgiCd(u, w, vm.vsid, 0, true)])).toEqual({ entryNum: 1 });
    const issued = rec.take();
    expect(issued[0]).toEqual([CmdOp.CFGI_CD, vm.rid, 1, 0]); // SID [63:32] = 0x10, SSID 0, Leaf
    expect(SYNC(issued[1])).toBe(true);
    expect((await smmuDma(self, vm.rid, GVA)).pa).toBe(vm.ram.paOf(page2));
    // CFGI_CD with an SSID, CFGI_CD_ALL, ATC_INV: only the SID field changes
    expect(
      await inv([
        (u, w) => cmdCfgiCd(u, w, vm.vsid, 0x1234, false),
        (u, w) => cmdCfgiCdAll(u, w, vm.vsid),
        (u, w) => cmdAtcInv(u, w, vm.vsid, 5, GVA, 3, false),
        (u, w) => cmdAtcInv(u, w, vm.vsid, -1, 0, 52, true),
      ]),
    ).toEqual({ entryNum: 4 });
    expect(rec.take().slice(0, 4)).toEqual([
      [(CmdOp.CFGI_CD | (0x1234 << 12)) >>> 0, vm.rid, 0, 0],
      [CmdOp.CFGI_CD_ALL, vm.rid, 0, 0],
      [(CmdOp.ATC_INV | (1 << 11) | (5 << 12)) >>> 0, vm.rid, (GVA % 2 ** 32) | 3, Math.floor(GVA / 2 ** 32)],
      [CmdOp.ATC_INV | (1 << 9), vm.rid, 52, 0],
    ]);
  });

  it('an unknown vSID is EIO; entry_num is the refused entry and the converted ones of its batch are not issued', async () => {
    await expectInv('EIO', inv([(u, w) => cmdCfgiCd(u, w, 0x42, 0, true)]), 0);
    await expectInv('EIO', inv([(u, w) => cmdCfgiCd(u, w, vm.vsid, 0, true), (u, w) => cmdCfgiCdAll(u, w, 0x42), (u, w) => cmdOpOnly(u, w, CmdOp.TLBI_NSNH_ALL)]), 1);
    await expectInv('EIO', inv([(u, w) => cmdAtcInv(u, w, vm.rid + 1, -1, 0, 52, false)]), 0);
    expect(rec.take()).toEqual([]);
    // the vSID goes with its vDEVICE
    await self.fd.deviceDetach({ devId: vm.devId });
    await self.fd.destroy({ id: vm.vdevId });
    rec.take();
    await expectInv('EIO', inv([(u, w) => cmdCfgiCdAll(u, w, vm.vsid)]), 0);
    expect(rec.take()).toEqual([]);
  });

  it('every other opcode is refused with EIO (CFGI_STE, S2 / EL2 / EL3 TLBIs, CMD_SYNC, PRI_RESP, RESUME, ...)', async () => {
    const refused: [string, Fill][] = [
      ['PREFETCH_CONFIG', (u, w) => cmdPrefetchConfig(u, w, vm.vsid)],
      ['PREFETCH_ADDR', (u, w) => cmdOpOnly(u, w, CmdOp.PREFETCH_ADDR)],
      ['CFGI_STE', (u, w) => cmdCfgiSte(u, w, vm.vsid, true)],
      ['CFGI_ALL', (u, w) => cmdCfgiAll(u, w)],
      ['TLBI_EL3_ALL', (u, w) => cmdOpOnly(u, w, CmdOp.TLBI_EL3_ALL)],
      ['TLBI_EL3_VA', (u, w) => cmdOpOnly(u, w, CmdOp.TLBI_EL3_VA)],
      ['TLBI_EL2_ALL', (u, w) => cmdOpOnly(u, w, CmdOp.TLBI_EL2_ALL)],
      ['TLBI_EL2_ASID', (u, w) => cmdOpOnly(u, w, CmdOp.TLBI_EL2_ASID)],
      ['TLBI_EL2_VA', (u, w) => cmdOpOnly(u, w, CmdOp.TLBI_EL2_VA)],
      ['TLBI_EL2_VAA', (u, w) => cmdOpOnly(u, w, CmdOp.TLBI_EL2_VAA)],
      ['TLBI_S12_VMALL', (u, w) => cmdTlbiS12Vmall(u, w, vm.vmid)],
      ['TLBI_S2_IPA', (u, w) => cmdTlbiS2Ipa(u, w, vm.vmid, 0x4000_0000, true, 0, 0, 0, 0)],
      ['PRI_RESP', (u, w) => cmdPriResp(u, w, vm.vsid, -1, 1, 2)],
      ['RESUME', (u, w) => cmdResume(u, w, vm.vsid, 3, 1)],
      ['STALL_TERM', (u, w) => cmdOpOnly(u, w, CmdOp.STALL_TERM)],
      ['CMD_SYNC', (u, w) => cmdSync(u, w, 0)],
      ['opcode 0x00', (u, w) => cmdOpOnly(u, w, 0)],
      ['opcode 0x7f', (u, w) => cmdOpOnly(u, w, 0x7f)],
      ['opcode 0xff', (u, w) => cmdOpOnly(u, w, 0xff)],
    ];
    for (const [name, fill] of refused) {
      const e = await errOf(inv([(u, w) => cmdOpOnly(u, w, CmdOp.TLBI_NSNH_ALL), (u, w) => cmdTlbiNhAsid(u, w, 1, 0), fill]));
      expect([name, e.errno, e.out?.entryNum]).toEqual([name, 'EIO', 2]);
      expect([name, rec.take()]).toEqual([name, []]);
    }
  });

  it('batches of 63 commands, each followed by a CMD_SYNC; a refused entry after a full batch leaves that batch issued', async () => {
    const asids = (n: number): Fill[] => Array.from({ length: n }, (_, i) => (u: Uint32Array, w: number) => cmdTlbiNhAsid(u, w, i + 1, GUEST_VMID));
    expect(await inv(asids(126))).toEqual({ entryNum: 126 });
    let issued = rec.take();
    expect(issued.length).toBe(128);
    expect(SYNC(issued[63])).toBe(true);
    expect(SYNC(issued[127])).toBe(true);
    expect(issued.filter(SYNC).length).toBe(2);
    expect(issued[62]).toEqual([CmdOp.TLBI_NH_ASID, ((63 << 16) | vm.vmid) >>> 0, 0, 0]);
    expect(issued[64]).toEqual([CmdOp.TLBI_NH_ASID, ((64 << 16) | vm.vmid) >>> 0, 0, 0]);
    // 70 entries, entry 65 refused: the first 63 went out with their CMD_SYNC; 63 and 64 did not
    const cmds = asids(70);
    cmds[65] = (u, w) => cmdCfgiSte(u, w, vm.vsid, true);
    await expectInv('EIO', inv(cmds), 65);
    issued = rec.take();
    expect(issued.length).toBe(64);
    expect(issued.slice(0, 63).map((c) => c[1] >>> 16)).toEqual(Array.from({ length: 63 }, (_, i) => i + 1));
    expect(SYNC(issued[63])).toBe(true);
  });

  it('the array copy: data type EINVAL, empty array EINVAL, short entries zero-extended, long ones need a zero tail (E2BIG)', async () => {
    const nsnh: Fill = (u, w) => cmdOpOnly(u, w, CmdOp.TLBI_NSNH_ALL);
    await expectInv('EINVAL', inv([nsnh], { dataType: IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 }), 0);
    await expectInv('EINVAL', inv([nsnh], { dataType: 0xdead }), 0);
    // entry_num 0: iommu_copy_struct_from_full_user_array refuses an empty array on SMMUv3 (the
    // selftest mock's "check data_type with a zero-length array" succeeds; this driver does not)
    await expectInv('EINVAL', inv([], { entryNum: 0 }), 0);
    // entry_num with no data or entry_len 0: the core's EINVAL
    await expectInv('EINVAL', inv([nsnh], { data: null }), 0);
    await expectInv('EINVAL', inv([nsnh], { entryLen: 0, data: new Uint8Array(16) }), 0);
    expect(rec.take()).toEqual([]);
    // entry_len 8: each entry is dword0 only, dword1 reads as 0
    expect(await inv([(u, w) => cmdTlbiNhAsid(u, w, 3, 0), nsnh], { entryLen: 8 })).toEqual({ entryNum: 2 });
    expect(rec.take().slice(0, 2)).toEqual([
      [CmdOp.TLBI_NH_ASID, ((3 << 16) | vm.vmid) >>> 0, 0, 0],
      [CmdOp.TLBI_NH_ALL, vm.vmid, 0, 0],
    ]);
    // entry_len 24: the tail beyond cmd[2] must be zero
    expect(await inv([nsnh, nsnh], { entryLen: 24 })).toEqual({ entryNum: 2 });
    rec.take();
    const tail = guestCmds([nsnh, nsnh], 24);
    tail[24 + 20] = 1;
    await expectInv('E2BIG', inv([], { entryLen: 24, entryNum: 2, data: tail }), 0);
    expect(rec.take()).toEqual([]);
    // the array from the process's memory (data_uptr); a bad pointer is EFAULT
    const uva = self.proc.mmap({ length: PAGE_SIZE });
    self.proc.write(uva, guestCmds([nsnh]));
    expect(await self.fd.hwptInvalidate({ hwptId: vm.viommuId, dataType: T, entryLen: 16, entryNum: 1, dataUptr: uva })).toEqual({ entryNum: 1 });
    expect(rec.take()[0]).toEqual([CmdOp.TLBI_NH_ALL, vm.vmid, 0, 0]);
    await expectInv('EFAULT', self.fd.hwptInvalidate({ hwptId: vm.viommuId, dataType: T, entryLen: 16, entryNum: 1, dataUptr: 0x1000 }), 0);
  });

  it('other hwpt_id targets: a nested HWPT has no cache_invalidate_user (EOPNOTSUPP), the parent / IOAS are EINVAL, a missing id ENOENT', async () => {
    const nsnh = guestCmds([(u, w) => cmdOpOnly(u, w, CmdOp.TLBI_NSNH_ALL)]);
    const at = (hwptId: number) => self.fd.hwptInvalidate({ hwptId, dataType: T, entryLen: 16, entryNum: 1, data: nsnh });
    await expectInv('EOPNOTSUPP', at(nested), 0);
    await expectInv('EINVAL', at(vm.parentId), 0);
    await expectInv('EINVAL', at(vm.ioasId), 0);
    await expectInv('EINVAL', at(vm.devId), 0);
    await expectInv('ENOENT', at(0xffff), 0);
    expect(rec.take()).toEqual([]);
  });
});
