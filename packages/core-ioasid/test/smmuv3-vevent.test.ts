/**
 * Nested stage-1 faults of SMMUv3 devices as vEVENTQ records (smmuv3.md §5.1, §5.4, §9.5;
 * iommufd.md §2.10; Linux `arm_smmu_handle_event` → `arm_vmaster_report_event`): a device
 * attached to a nested HWPT of a vIOMMU with a vDEVICE gets events 0x04 C_BAD_STE,
 * 0x06 F_STREAM_DISABLED, 0x08 C_BAD_SUBSTREAMID, 0x0A C_BAD_CD, 0x10 F_TRANSLATION,
 * 0x11 F_ADDR_SIZE, 0x12 F_ACCESS, 0x13 F_PERMISSION (not stalled, not stage 2) queued on the
 * vIOMMU's IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 (1) queue as `struct iommufd_vevent_header { u32 flags;
 * u32 sequence; }` + `struct iommu_vevent_arm_smmuv3 { __le64 evt[4]; }` — the raw 32-byte record
 * with the StreamID (dword0 [63:32]) replaced by the virtual SID. Sequence numbers count every
 * report; a full queue ends with one LOST_EVENTS header.
 */
import { ACCESS_READ, ACCESS_WRITE, NO_PASID, type IommuFault } from '@iommulab/driver-api';
import { EvtId } from '@iommulab/hw-smmuv3/codec';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { VeventqFile } from '../src/eventq.js';
import { IOMMU_VEVENTQ_FLAG_LOST_EVENTS, IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, IOMMU_VEVENTQ_TYPE_DEFAULT } from '../src/uapi/constants.js';
import { expectErrno, PAGE_SIZE } from './fixture.js';
import {
  allocNested,
  bindSmmuDevice,
  bytesDwords,
  drainEvents,
  GVA,
  openSmmuSelf,
  openVm,
  smmuDma,
  teardownSmmu,
  vste,
  writeGuestCd,
  type SmmuSelf,
  type Vm,
} from './smmuv3-fixture.js';

/** sizeof(struct iommufd_vevent_header) + sizeof(struct iommu_vevent_arm_smmuv3). */
const REC = 8 + 32;
/** Event record dword1 bits (smmuv3.md §5.1): RnW [35]; CLASS [41:40] = IN (0b10). */
const RNW = 1n << 35n;
/**
 * CLASS of a stage-1 F_TRANSLATION / F_ADDR_SIZE / F_ACCESS / F_PERMISSION: IN (IHI 0070 §7.3.13,
 * as the model writes it; smmuv3.md §12 #12 said 0, the architecture says IN).
 */
const CLASS_IN = 2n << 40n;

interface Vevent {
  flags: number;
  seq: number;
  /** evt[0..3], absent for a LOST_EVENTS header. */
  evt?: bigint[];
}

/** Parses what read(2) of a vEVENTQ returned. */
function parse(b: Uint8Array): Vevent[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: Vevent[] = [];
  for (let at = 0; at < b.length; ) {
    const flags = dv.getUint32(at, true);
    const seq = dv.getUint32(at + 4, true);
    at += 8;
    if (flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) out.push({ flags, seq });
    else {
      out.push({ flags, seq, evt: bytesDwords(b.subarray(at, at + 32)) });
      at += 32;
    }
  }
  return out;
}

/**
 * dword0 of a record: EventID, SSV / SubstreamID, StreamID (here the virtual one). C_BAD_SUBSTREAMID
 * carries the SubstreamID without an SSV bit (IHI 0070 §7.3.9).
 */
function dw0(id: number, sid: number, ssid = -1): bigint {
  const ssv = ssid >= 0 && id !== EvtId.C_BAD_SUBSTREAMID ? 1n << 11n : 0n;
  return (BigInt(sid) << 32n) | (ssid >= 0 ? BigInt(ssid) << 12n : 0n) | ssv | BigInt(id);
}

describe('vEVENTQ (IOMMU_VEVENTQ_TYPE_ARM_SMMUV3) of an SMMUv3 vIOMMU', () => {
  let self: SmmuSelf;
  let vm: Vm;
  let page: number;
  let roPage: number;
  let file: VeventqFile;
  let qId: number;

  beforeEach(async () => {
    self = await openSmmuSelf();
    vm = await openVm(self, { rid: 0x10, vsid: 0x99 });
    page = vm.ram.allocPage();
    roPage = vm.ram.allocPage();
    vm.s1.map(GVA, page);
    vm.s1.map(GVA + PAGE_SIZE, roPage, { ro: true });
    vm.s1.map(GVA + 2 * PAGE_SIZE, page, { af: false });
    vm.s1.map(GVA + 3 * PAGE_SIZE, 0x8000_0000); // an IPA outside the IOAS (stage-2 fault)
    writeGuestCd(vm);
    const q = await self.fd.veventqAlloc({ viommuId: vm.viommuId, type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, veventqDepth: 64 });
    file = q.file;
    qId = q.outVeventqId;
  });
  afterEach(async () => {
    await teardownSmmu(self);
  });

  /** One DMA that must fault, then the driver drains the SMMU's event queue. */
  async function fault(iova: number, access = ACCESS_READ, pasid = NO_PASID): Promise<void> {
    expect((await smmuDma(self, vm.rid, iova, access, pasid)).ok).toBe(false);
    await drainEvents(self);
  }

  it('IOMMU_VEVENTQ_ALLOC: type, depth, one queue per type', async () => {
    await expectErrno('EEXIST', self.fd.veventqAlloc({ viommuId: vm.viommuId, type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, veventqDepth: 2 }));
    await expectErrno('EOPNOTSUPP', self.fd.veventqAlloc({ viommuId: vm.viommuId, type: IOMMU_VEVENTQ_TYPE_DEFAULT, veventqDepth: 2 }));
    await expectErrno('EINVAL', self.fd.veventqAlloc({ viommuId: vm.viommuId, type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, veventqDepth: 0 }));
    await expectErrno('ENOENT', self.fd.veventqAlloc({ viommuId: vm.parentId, type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, veventqDepth: 2 }));
    await expectErrno('EBUSY', self.fd.destroy({ id: vm.viommuId }));
    expect(file.poll().readable).toBe(false);
  });

  it('stage-1 translation faults: F_TRANSLATION, F_PERMISSION, F_ACCESS with the vSID, RnW, CLASS = IN, InputAddr; S2 = 0, IPA 0', async () => {
    await self.fd.deviceAttach({ devId: vm.devId, ptId: await allocNested(self, vm) });
    expect((await smmuDma(self, vm.rid, GVA)).ok).toBe(true);
    await fault(GVA + 5 * PAGE_SIZE + 0x123, ACCESS_READ); // no descriptor
    await fault(GVA + PAGE_SIZE + 8, ACCESS_WRITE); // AP[2] read-only
    await fault(GVA + 2 * PAGE_SIZE, ACCESS_READ); // AF = 0, CD.HA = 0, CD.AFFD = 0
    expect(file.poll().readable).toBe(true);
    const got = parse(file.read(10 * REC));
    expect(got).toEqual([
      { flags: 0, seq: 0, evt: [dw0(EvtId.F_TRANSLATION, vm.vsid), CLASS_IN | RNW, BigInt(GVA + 5 * PAGE_SIZE + 0x123), 0n] },
      { flags: 0, seq: 1, evt: [dw0(EvtId.F_PERMISSION, vm.vsid), CLASS_IN, BigInt(GVA + PAGE_SIZE + 8), 0n] },
      { flags: 0, seq: 2, evt: [dw0(EvtId.F_ACCESS, vm.vsid), CLASS_IN | RNW, BigInt(GVA + 2 * PAGE_SIZE), 0n] },
    ]);
    expect(file.poll().readable).toBe(false);
  });

  it('F_ADDR_SIZE: a stage-1 output IPA beyond CD.IPS (32 bits)', async () => {
    writeGuestCd(vm, { ips: 0 }); // 32-bit IPA space: the guest tables (at 1 GiB) still fit
    vm.s1.map(GVA + 6 * PAGE_SIZE, 0x1_0000_0000);
    await self.fd.deviceAttach({ devId: vm.devId, ptId: await allocNested(self, vm) });
    expect((await smmuDma(self, vm.rid, GVA)).pa).toBe(vm.ram.paOf(page));
    await fault(GVA + 6 * PAGE_SIZE + 0x10, ACCESS_READ);
    expect(parse(file.read(REC))).toEqual([{ flags: 0, seq: 0, evt: [dw0(EvtId.F_ADDR_SIZE, vm.vsid), CLASS_IN | RNW, BigInt(GVA + 6 * PAGE_SIZE + 0x10), 0n] }]);
  });

  it('configuration errors of the guest STE / CD: C_BAD_STE, F_STREAM_DISABLED, C_BAD_SUBSTREAMID (its SSID), C_BAD_CD', async () => {
    // S1CDMax = 21 > IDR1.SSIDSIZE (20): the nested STE is ILLEGAL (smmuv3.md §2.5)
    const badSte = await allocNested(self, vm, vste({ cdPtr: vm.cdIpa, s1cdmax: 21 }));
    // S1CDMax = 1, S1DSS = terminate: a transaction without SubstreamID is F_STREAM_DISABLED
    const dss0 = await allocNested(self, vm, vste({ cdPtr: vm.cdIpa, s1cdmax: 1, s1dss: 0 }));
    // a CD table page the guest never filled: CD 0 has V = 0
    const badCd = await allocNested(self, vm, vste({ cdPtr: vm.ram.allocPage() }));
    const good = await allocNested(self, vm);
    await self.fd.deviceAttach({ devId: vm.devId, ptId: badSte });
    await fault(GVA);
    await self.fd.deviceReplace({ devId: vm.devId, ptId: dss0 });
    await fault(GVA);
    await self.fd.deviceReplace({ devId: vm.devId, ptId: good });
    await fault(GVA, ACCESS_READ, 3); // S1CDMax = 0: any SubstreamID
    await self.fd.deviceReplace({ devId: vm.devId, ptId: badCd });
    await fault(GVA);
    expect(parse(file.read(10 * REC))).toEqual([
      { flags: 0, seq: 0, evt: [dw0(EvtId.C_BAD_STE, vm.vsid), 0n, 0n, 0n] },
      { flags: 0, seq: 1, evt: [dw0(EvtId.F_STREAM_DISABLED, vm.vsid), 0n, 0n, 0n] },
      { flags: 0, seq: 2, evt: [dw0(EvtId.C_BAD_SUBSTREAMID, vm.vsid, 3), 0n, 0n, 0n] },
      { flags: 0, seq: 3, evt: [dw0(EvtId.C_BAD_CD, vm.vsid), 0n, 0n, 0n] },
    ]);
  });

  it('not forwarded: stage-2 faults, devices without a vDEVICE / nested attachment; no queue → nothing (sequence starts at the first queued report)', async () => {
    const host: IommuFault[] = [];
    const off = self.stack.driver.onFault((f) => host.push(f));
    await self.fd.deviceAttach({ devId: vm.devId, ptId: await allocNested(self, vm) });
    await fault(GVA + 3 * PAGE_SIZE); // guest IPA 0x8000_0000 not in the IOAS: F_TRANSLATION with S2 = 1
    // the same device on the parent (stage 2 only): its faults are the host's
    await self.fd.deviceReplace({ devId: vm.devId, ptId: vm.parentId });
    await fault(0x9000_0000);
    // a device without a vDEVICE on a bypass nested HWPT: no virtual SID, nothing forwarded
    const other = await bindSmmuDevice(self, { rid: 0x11 });
    await self.fd.deviceAttach({ devId: other, ptId: await allocNested(self, vm, vste({ config: 4 })) });
    expect((await smmuDma(self, 0x11, 0x1000, ACCESS_READ, 5)).ok).toBe(false); // a SubstreamID on a stage-1-bypass STE
    await drainEvents(self);
    expect(file.poll().readable).toBe(false);
    expect(file.read(10 * REC).length).toBe(0);
    // ... they reached the host driver's fault handlers instead, with their physical StreamIDs
    expect(host.map((f) => (f.kind === 'event' ? [f.rid, f.detail, (f.raw[3] >>> 7) & 1] : f.kind))).toEqual([
      [vm.rid, EvtId.F_TRANSLATION, 1], // S2 = 1: stage-2 faults stay with the host (Linux `!event->s2`)
      [vm.rid, EvtId.F_TRANSLATION, 1],
      [0x11, EvtId.C_BAD_SUBSTREAMID, 0],
    ]);
    off();
    // destroy the queue: a nested stage-1 fault is then dropped; a new queue starts at sequence 0
    await self.fd.deviceReplace({ devId: vm.devId, ptId: await allocNested(self, vm) });
    await destroyQueue();
    await fault(GVA + 5 * PAGE_SIZE);
    const q2 = await self.fd.veventqAlloc({ viommuId: vm.viommuId, type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, veventqDepth: 4 });
    await fault(GVA + 5 * PAGE_SIZE);
    expect(parse(q2.file.read(10 * REC)).map((e) => [e.seq, e.evt?.[0]])).toEqual([[0, dw0(EvtId.F_TRANSLATION, vm.vsid)]]);
  });

  /** close(2) of the queue's fd, then IOMMU_DESTROY of the VEVENTQ. */
  async function destroyQueue(): Promise<void> {
    for (const fd of self.fd.files.fdsOf(file)) self.fd.files.close(fd);
    await self.fd.destroy({ id: qId });
  }

  it('sequence numbers and overflow: depth 2 → two records and one LOST_EVENTS header; a later event replaces the header (a gap)', async () => {
    await destroyQueue();
    const q = await self.fd.veventqAlloc({ viommuId: vm.viommuId, type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, veventqDepth: 2 });
    await self.fd.deviceAttach({ devId: vm.devId, ptId: await allocNested(self, vm) });
    const at = (i: number) => GVA + (8 + i) * PAGE_SIZE; // distinct unmapped pages
    for (let i = 0; i < 4; i++) await fault(at(i));
    // events 0 and 1 are queued; 2 and 3 are lost: one header at the tail, with the last lost sequence
    expect(parse(q.file.read(REC))).toEqual([{ flags: 0, seq: 0, evt: [dw0(EvtId.F_TRANSLATION, vm.vsid), CLASS_IN | RNW, BigInt(at(0)), 0n] }]);
    // one slot free again: the next report replaces the header (loss visible as a gap 1 → 4)
    await fault(at(4));
    expect(parse(q.file.read(10 * REC)).map((e) => [e.flags, e.seq, e.evt?.[2]])).toEqual([
      [0, 1, BigInt(at(1))],
      [0, 4, BigInt(at(4))],
    ]);
    // overflow again and read everything: the LOST_EVENTS header comes last, 8 bytes, no payload
    for (let i = 5; i < 8; i++) await fault(at(i));
    const b = q.file.read(10 * REC);
    expect(b.length).toBe(2 * REC + 8);
    expect(parse(b).map((e) => [e.flags, e.seq])).toEqual([
      [0, 5],
      [0, 6],
      [IOMMU_VEVENTQ_FLAG_LOST_EVENTS, 7],
    ]);
    await fault(at(8));
    expect(parse(q.file.read(REC)).map((e) => [e.flags, e.seq])).toEqual([[0, 8]]);
    // a read smaller than one record returns nothing
    await fault(at(9));
    expect(q.file.read(REC - 1).length).toBe(0);
    expect(parse(q.file.read(REC)).map((e) => e.seq)).toEqual([9]);
  });
});
