/**
 * Fixture for core-ioasid over the Arm SMMUv3 backend (`@iommulab/hw-smmuv3`): one IommuFd plus
 * one SMMUv3 backend stack (hardware model + Linux-style driver) over the same PhysMem, devices
 * bound with `deviceBind({ stack, spec })` (StreamID = rid), DMA through the stack's device port,
 * and the teardown check (nothing pinned, every frame back once the process exits and the
 * backend shuts down).
 *
 * Also: guest-memory helpers for nested tests (smmuv3.md §8, §9.3). The guest's CD and stage-1
 * tables live in user memory mapped into the IOAS; the guest IPA of a byte is its IOAS IOVA, so
 * every guest descriptor is written by hand with IPAs (never with IoPgtableArm, which writes PAs).
 */
import {
  ACCESS_READ,
  ACCESS_WRITE,
  NO_PASID,
  openBackend,
  type BackendStack,
  type DeviceSpec,
  type DmaResult,
  type InstanceMode,
} from '@iommulab/driver-api';
import type { SmmuV3Driver } from '@iommulab/hw-smmuv3';
import { SMMU_CMDQ_BASE, SMMU_CMDQ_PROD } from '@iommulab/hw-smmuv3/codec';
import { makeS1Cd } from '@iommulab/hw-smmuv3/driver';
import { expect } from 'vitest';
import type { IommufdObject } from '../src/object-table.js';
import { IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_VIOMMU_TYPE_ARM_SMMUV3 } from '../src/uapi/constants.js';
import { Memfd } from '../src/user-memory/memfd.js';
import { BUFFER_SIZE, FIXED, openSelf, PAGE_SIZE, RW, type Self } from './fixture.js';

/** The hw-smmuv3 backend module (source, as mock-fixture.ts loads hw-mock). */
export const HW_SMMUV3 = new URL('../../hw-smmuv3/src/index.ts', import.meta.url).href;

/** Linux MSI_IOVA_BASE / MSI_IOVA_LENGTH: the software MSI window every SMMUv3 device reserves. */
export const SMMU_MSI_IOVA_BASE = 0x800_0000;
export const SMMU_MSI_IOVA_LENGTH = 0x10_0000;

/** A process with an SMMUv3 instance. */
export interface SmmuSelf extends Self {
  stack: BackendStack;
  memfds: Memfd[];
}

/** Options of {@link openSmmuSelf}. */
export interface SmmuSelfOptions {
  memBytes?: number;
  mode?: InstanceMode;
  /** Backend options (hardware features and driver options). */
  options?: Record<string, unknown>;
}

/** Opens the process, the iommufd and an SMMUv3 instance sharing the PhysMem. */
export async function openSmmuSelf(o: SmmuSelfOptions = {}): Promise<SmmuSelf> {
  const self = openSelf(o.memBytes ?? 64 * 1024 * 1024);
  const stack = await openBackend(HW_SMMUV3, { mode: o.mode ?? 'in-thread', mem: self.mem, timeoutMs: 10_000, options: o.options ?? {} });
  return { ...self, stack, memfds: [] };
}

/** VFIO_DEVICE_BIND_IOMMUFD of an SMMUv3 device (`spec.rid` is its StreamID): the DEVICE id. */
export async function bindSmmuDevice(self: SmmuSelf, spec: DeviceSpec): Promise<number> {
  return (await self.fd.deviceBind({ stack: self.stack, spec })).outDevId;
}

/** teardown: close the iommufd (no pin left), shut the backend down, exit: every frame is free. */
export async function teardownSmmu(self: SmmuSelf): Promise<void> {
  await self.fd.close();
  for (let off = 0; off < BUFFER_SIZE; off += PAGE_SIZE) expect(self.proc.pinCount(self.buffer + off)).toBe(0);
  expect(self.proc.vmPinned).toBe(0);
  expect(self.proc.account.lockedVm).toBe(0);
  await self.stack.close();
  for (const f of self.memfds) if (f.isOpen) f.close();
  self.proc.exit();
  expect(self.mem.allocatedFrameCount).toBe(0);
}

/** One DMA by the device with StreamID `rid` (a copy of the result). */
export async function smmuDma(self: { stack: BackendStack }, rid: number, iova: number | bigint, access = ACCESS_READ, pasid = NO_PASID): Promise<DmaResult> {
  return { ...(await self.stack.port.translate({ rid, iova: Number(iova), access, pasid })) };
}

/** A device read of `length` bytes at `iova` (translated page by page): the bytes, or null on a fault. */
export async function dmaRead(self: Self & { stack: BackendStack }, rid: number, iova: number, length: number, pasid = NO_PASID): Promise<Uint8Array | null> {
  const out = new Uint8Array(length);
  for (let off = 0; off < length; ) {
    const r = await smmuDma(self, rid, iova + off, ACCESS_READ, pasid);
    if (!r.ok) return null;
    const n = Math.min(length - off, PAGE_SIZE - ((iova + off) % PAGE_SIZE));
    out.set(self.mem.u8.subarray(r.pa, r.pa + n), off);
    off += n;
  }
  return out;
}

/** A device write of `data` at `iova` (translated page by page with write access): false on a fault. */
export async function dmaWrite(self: Self & { stack: BackendStack }, rid: number, iova: number, data: Uint8Array, pasid = NO_PASID): Promise<boolean> {
  for (let off = 0; off < data.length; ) {
    const r = await smmuDma(self, rid, iova + off, ACCESS_WRITE, pasid);
    if (!r.ok) return false;
    const n = Math.min(data.length - off, PAGE_SIZE - ((iova + off) % PAGE_SIZE));
    self.mem.u8.set(data.subarray(off, off + n), r.pa);
    off += n;
  }
  return true;
}

// ------------------------------------------------------------------------------ guest memory

/** 64-bit little-endian store into user memory. */
export function writeU64(self: Self, va: number, v: bigint): void {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  self.proc.write(va, b);
}

/** 64-bit little-endian load from user memory. */
export function readU64(self: Self, va: number): bigint {
  const b = self.proc.read(va, 8);
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
}

/** Dwords → the little-endian byte image (e.g. `struct iommu_hwpt_arm_smmuv3`). */
export function dwordBytes(dwords: readonly bigint[]): Uint8Array {
  const b = new Uint8Array(8 * dwords.length);
  const dv = new DataView(b.buffer);
  dwords.forEach((d, i) => dv.setBigUint64(8 * i, BigInt.asUintN(64, d), true));
  return b;
}

/** Little-endian bytes → dwords. */
export function bytesDwords(b: Uint8Array): bigint[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: bigint[] = [];
  for (let i = 0; i + 8 <= b.length; i += 8) out.push(dv.getBigUint64(i, true));
  return out;
}

/** VMSAv8-64 stage-1 descriptor bits (smmuv3.md §7.3). */
export const S1 = {
  VALID: 1n << 0n,
  /** Table (levels 0–2) / page (level 3). */
  TABLE: 1n << 1n,
  PAGE: 1n << 1n,
  /** AttrIndx = 0 (MAIR slot 0), AP[1] = 1 (EL0 accessible), AP[2] = read-only. */
  AP_EL0: 1n << 6n,
  AP_RDONLY: 1n << 7n,
  /** SH = inner shareable. */
  SH_IS: 3n << 8n,
  AF: 1n << 10n,
  /** nG: not global (tagged with the CD's ASID), as Linux io-pgtable writes stage-1 leaves. */
  NG: 1n << 11n,
  /** DBM (hardware dirty state management). */
  DBM: 1n << 51n,
} as const;

/**
 * A page descriptor of a guest's 4 KiB stage-1 table: output IPA `ipa`, writable unless `ro`,
 * non-global (nG = 1: the TLB entry is tagged with the ASID) unless `global`.
 */
export function s1PageDesc(ipa: bigint, ro = false, global = false): bigint {
  return ipa | S1.VALID | S1.PAGE | S1.AP_EL0 | (ro ? S1.AP_RDONLY : 0n) | S1.SH_IS | S1.AF | (global ? 0n : S1.NG);
}

/** A table descriptor pointing at the next-level table at IPA `ipa`. */
export function s1TableDesc(ipa: bigint): bigint {
  return ipa | S1.VALID | S1.TABLE;
}

// ------------------------------------------------------------------------------ host command queue

/** A command the host driver published on the SMMU command queue (4 words). */
export type HostCmd = readonly [number, number, number, number];

/**
 * Records the commands between the old and the new SMMU_CMDQ_PROD on every PROD write the driver
 * makes (in-thread stacks: register writes are seen on this thread). The in-thread model consumes
 * the queue inside the PROD write, before this listener runs, so a CMD_SYNC completed by an MSI
 * write to itself (Linux's MSI polling: MSIAddress = the command's own slot, MSIData = 0) reads
 * back with its first word 0 (opcode 0, which no command has): such entries are CMD_SYNCs.
 */
export class HostCmdRecorder {
  private readonly cmds: HostCmd[] = [];
  private last = -1;
  private readonly stop: () => void;

  constructor(private readonly self: { stack: BackendStack }) {
    const regs = self.stack.host.regs;
    const mem = self.stack.mem;
    const PROD = SMMU_CMDQ_PROD;
    const BASE = SMMU_CMDQ_BASE;
    this.last = regs.u32[PROD >>> 2];
    this.stop = regs.onWrite((off) => {
      if (off !== PROD) return;
      const base = regs.u32[BASE >>> 2];
      const log2 = base & 0x1f;
      const pa = base & 0xffffffe0;
      const mask = (2 << log2) - 1;
      const prod = regs.u32[PROD >>> 2] & mask;
      let p = this.last & mask;
      while (p !== prod) {
        const w = (pa + (p & ((1 << log2) - 1)) * 16) >>> 2;
        this.cmds.push([mem.u32[w], mem.u32[w + 1], mem.u32[w + 2], mem.u32[w + 3]]);
        p = (p + 1) & mask;
      }
      this.last = prod;
    });
  }

  /** The commands recorded so far (and forget them). */
  take(): HostCmd[] {
    return this.cmds.splice(0);
  }

  /** The commands recorded so far without CMD_SYNC / CMD_PREFETCH_CONFIG (and forget them). */
  takeNoSync(): HostCmd[] {
    return this.take().filter((c) => !HostCmdRecorder.isSync(c) && (c[0] & 0xff) !== 0x01);
  }

  /** CMD_SYNC (0x46), or one whose first word the SMMU overwrote with MSIData 0 on completion. */
  static isSync(c: HostCmd): boolean {
    return (c[0] & 0xff) === 0x46 || (c[0] & 0xff) === 0;
  }

  close(): void {
    this.stop();
  }
}

// ------------------------------------------------------------------------------ a guest (nested)

/**
 * A guest's RAM: `pages` pages of user memory (MAP_SHARED) mapped into the IOAS at `ipaBase`
 * (the guest IPA = the IOAS IOVA). Tables are bump-allocated from the start; everything is
 * written with the CPU through the process (the guest kernel's view).
 */
export class GuestRam {
  private nextPage = 0;

  private constructor(
    readonly self: Self,
    /** User VA of the RAM. */
    readonly va: number,
    /** Guest IPA (= IOAS IOVA) of the RAM. */
    readonly ipaBase: number,
    readonly pages: number,
  ) {}

  /** mmap + IOMMU_IOAS_MAP (FIXED, RW) of `pages` pages at `ipaBase`. */
  static async create(self: Self, ioasId: number, ipaBase: number, pages: number): Promise<GuestRam> {
    const va = self.proc.mmap({ length: pages * PAGE_SIZE, shared: true });
    self.proc.write(va, new Uint8Array(pages * PAGE_SIZE));
    await self.fd.ioasMap({ flags: RW | FIXED, ioasId, userVa: va, length: pages * PAGE_SIZE, iova: ipaBase });
    return new GuestRam(self, va, ipaBase, pages);
  }

  /** A zeroed page for a table / CD: its IPA. */
  allocPage(): number {
    if (this.nextPage >= this.pages) throw new Error('guest RAM exhausted');
    return this.ipaBase + PAGE_SIZE * this.nextPage++;
  }

  /** User VA of a guest IPA. */
  vaOf(ipa: number): number {
    if (ipa < this.ipaBase || ipa >= this.ipaBase + this.pages * PAGE_SIZE) throw new Error(`IPA 0x${ipa.toString(16)} is not guest RAM`);
    return this.va + (ipa - this.ipaBase);
  }

  write64(ipa: number, v: bigint): void {
    writeU64(this.self, this.vaOf(ipa), v);
  }

  read64(ipa: number): bigint {
    return readU64(this.self, this.vaOf(ipa));
  }

  write(ipa: number, b: Uint8Array): void {
    this.self.proc.write(this.vaOf(ipa), b);
  }

  read(ipa: number, n: number): Uint8Array {
    return this.self.proc.read(this.vaOf(ipa), n);
  }

  /** Host PA behind a guest IPA (the pinned user page). */
  paOf(ipa: number): number {
    return this.self.proc.translate(this.vaOf(ipa));
  }
}

/**
 * A guest's stage-1 page table (VMSAv8-64, 4 KiB granule, 48-bit VA: levels 0..3), built by hand
 * in guest RAM with IPAs (what a guest kernel writes; smmuv3.md §7.3).
 */
export class GuestS1 {
  /** IPA of the level-0 table (CD.TTB0). */
  readonly root: number;

  constructor(readonly ram: GuestRam) {
    this.root = ram.allocPage();
  }

  private static index(va: number, level: number): number {
    return Number((BigInt(va) >> BigInt(12 + 9 * (3 - level))) & 0x1ffn);
  }

  /** IPA of the level-3 descriptor of `va` (tables made on the way). */
  leafIpa(va: number): number {
    let table = this.root;
    for (let level = 0; level < 3; level++) {
      const at = table + 8 * GuestS1.index(va, level);
      let d = this.ram.read64(at);
      if ((d & 3n) !== 3n) {
        const next = this.ram.allocPage();
        d = s1TableDesc(BigInt(next));
        this.ram.write64(at, d);
      }
      table = Number(d & 0x0000_ffff_ffff_f000n);
    }
    return table + 8 * GuestS1.index(va, 3);
  }

  /** Maps the 4 KiB page at `va` to IPA `ipa` (read-only with `ro`; `af` false leaves AF clear; `dbm`; `global`: nG = 0). */
  map(va: number, ipa: number, o: { ro?: boolean; af?: boolean; dbm?: boolean; global?: boolean } = {}): void {
    let d = s1PageDesc(BigInt(ipa), o.ro === true, o.global === true);
    if (o.af === false) d &= ~S1.AF;
    if (o.dbm === true) d |= S1.DBM;
    this.ram.write64(this.leafIpa(va), d);
  }

  /** Clears the level-3 descriptor of `va` (the guest's unmap, before its TLBI). */
  unmap(va: number): void {
    this.ram.write64(this.leafIpa(va), 0n);
  }

  /** The level-3 descriptor of `va`. */
  leaf(va: number): bigint {
    return this.ram.read64(this.leafIpa(va));
  }
}

/** Stage-1 CD of a guest (smmuv3.md §3.1, built like Linux `arm_smmu_make_s1_cd`), as bytes. */
export function guestCdBytes(words: Uint32Array): Uint8Array {
  const b = new Uint8Array(64);
  const dv = new DataView(b.buffer);
  for (let i = 0; i < 16; i++) dv.setUint32(4 * i, words[i] >>> 0, true);
  return b;
}

/** `struct iommu_hwpt_arm_smmuv3` from the guest STE fields (smmuv3.md §2.1, §9.3). */
export function vste(o: {
  v?: boolean;
  config?: number;
  s1fmt?: number;
  cdPtr?: number;
  s1cdmax?: number;
  s1dss?: number;
  eats?: number;
  /** dword1 cache / shareability (default S1CIR = S1COR = WBWA, S1CSH = ISH: 0xd4). */
  dw1?: bigint;
  extra0?: bigint;
  extra1?: bigint;
}): Uint8Array {
  const d0 =
    (o.v === false ? 0n : 1n) |
    (BigInt(o.config ?? 5) << 1n) |
    (BigInt(o.s1fmt ?? 0) << 4n) |
    (BigInt(o.cdPtr ?? 0) & 0x000f_ffff_ffff_ffc0n) |
    (BigInt(o.s1cdmax ?? 0) << 59n) |
    (o.extra0 ?? 0n);
  const d1 = (o.dw1 ?? 0xd4n) | BigInt(o.s1dss ?? 0) | (BigInt(o.eats ?? 0) << 28n) | (o.extra1 ?? 0n);
  return dwordBytes([d0, d1]);
}

// ------------------------------------------------------------------------------ a VM over the SMMU

/** The guest IPA where {@link openVm} maps guest RAM (an IOAS IOVA clear of the MSI window). */
export const GUEST_IPA_BASE = 0x4000_0000;

/** A guest VA the tests map (L0 index 0, L1 0x1fd, L2 1: three table levels below the root). */
export const GVA = 0x7f_4020_0000;

/** A VMM's setup for one device: IOAS, nest-parent HWPT, ARM_SMMUV3 vIOMMU, vDEVICE, guest RAM. */
export interface Vm {
  ioasId: number;
  devId: number;
  /** Physical StreamID. */
  rid: number;
  parentId: number;
  viommuId: number;
  vdevId: number;
  /** Virtual StreamID (the vDEVICE's virt_id). */
  vsid: number;
  /** VMID of the nest parent (the vIOMMU's). */
  vmid: number;
  ram: GuestRam;
  s1: GuestS1;
  /** IPA of the guest's CD table (CD 0 first; 64 bytes per CD). */
  cdIpa: number;
}

/** Options of {@link openVm}. */
export interface VmOptions {
  rid?: number;
  vsid?: number;
  spec?: Partial<DeviceSpec>;
  ramPages?: number;
  /** Skip IOMMU_VDEVICE_ALLOC. */
  noVdevice?: boolean;
}

/**
 * IOAS + DEVICE + NEST_PARENT HWPT + vIOMMU (type ARM_SMMUV3) + vDEVICE, guest RAM mapped at
 * {@link GUEST_IPA_BASE}, an empty guest stage-1 table and a page for its CD table.
 */
export async function openVm(self: SmmuSelf, o: VmOptions = {}): Promise<Vm> {
  const rid = o.rid ?? 0x10;
  const vsid = o.vsid ?? 0x99;
  const ioasId = (await self.fd.ioasAlloc()).outIoasId;
  const devId = await bindSmmuDevice(self, { rid, ...o.spec });
  const parentId = (await self.fd.hwptAlloc({ devId, ptId: ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).outHwptId;
  const viommuId = (await self.fd.viommuAlloc({ devId, hwptId: parentId, type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3 })).outViommuId;
  const vdevId = o.noVdevice === true ? 0 : (await self.fd.vdeviceAlloc({ viommuId, devId, virtId: vsid })).outVdeviceId;
  const ram = await GuestRam.create(self, ioasId, GUEST_IPA_BASE, o.ramPages ?? 64);
  const cdIpa = ram.allocPage();
  const s1 = new GuestS1(ram);
  return { ioasId, devId, rid, parentId, viommuId, vdevId, vsid, vmid: parentVmid(self, parentId), ram, s1, cdIpa };
}

/** The VMID of a nest-parent HWPT's stage-2 domain. */
export function parentVmid(self: SmmuSelf, hwptId: number): number {
  const hwpt = self.fd.ctx.objects.get<IommufdObject & { pagingDomain: { vmid?: number } | null }>(hwptId, 'hwpt_paging', 'HWPT_PAGING');
  const vmid = hwpt.pagingDomain?.vmid;
  if (typeof vmid !== 'number') throw new Error(`HWPT ${hwptId} is not a stage-2 domain`);
  return vmid;
}

/** Inputs of {@link writeGuestCd}. */
export interface GuestCdOptions {
  ssid?: number;
  asid?: number;
  /** TTB0 (an IPA; default the VM's stage-1 root). */
  ttb0?: number;
  /** CD.IPS encoding (default 5: 48 bits). */
  ips?: number;
  /** HA + HD (hardware AF / dirty updates). */
  dirty?: boolean;
  /** Leave V = 0. */
  invalid?: boolean;
}

/** The guest writes CD `ssid` of its CD table (Linux-style S1 CD: 48-bit VA, 4 KiB granule, R, A). */
export function writeGuestCd(vm: Vm, o: GuestCdOptions = {}): void {
  const words = makeS1Cd(new Uint32Array(16), {
    tcr: { t0sz: 16, tg: 0, ir: 1, or: 1, sh: 3, ips: o.ips ?? 5 },
    ttb0: o.ttb0 ?? vm.s1.root,
    asid: o.asid ?? 7,
    stall: false,
    dirty: o.dirty === true,
  });
  if (o.invalid === true) words[0] &= 0x7fff_ffff; // CD.V is bit 31
  vm.ram.write(vm.cdIpa + 64 * (o.ssid ?? 0), guestCdBytes(words));
}

/** IOMMU_HWPT_ALLOC on the vIOMMU with `struct iommu_hwpt_arm_smmuv3` (default: V, S1, the VM's CD table). */
export async function allocNested(self: SmmuSelf, vm: Vm, data?: Uint8Array): Promise<number> {
  return (await self.fd.hwptAlloc({ devId: vm.devId, ptId: vm.viommuId, dataType: IOMMU_HWPT_DATA_ARM_SMMUV3, data: data ?? vste({ cdPtr: vm.cdIpa }) })).outHwptId;
}

/** The 8 dwords of the STE the SMMU reads for StreamID `sid` (from the driver's stream table). */
export function steDwords(self: SmmuSelf, sid: number): bigint[] {
  const drv = self.stack.driver as unknown as SmmuV3Driver;
  const w = drv.strtab.steWord(sid);
  const u32 = self.mem.u32;
  const out: bigint[] = [];
  for (let i = 0; i < 8; i++) out.push((BigInt(u32[w + 2 * i + 1] >>> 0) << 32n) | BigInt(u32[w + 2 * i] >>> 0));
  return out;
}

/** STE.Config (dword0 [3:1]). */
export function steConfig(dw: readonly bigint[]): number {
  return Number((dw[0] >> 1n) & 7n);
}

/** Drains the SMMU's event queue through the driver (vEVENTQ / fault reports happen here). */
export async function drainEvents(self: SmmuSelf): Promise<void> {
  await self.stack.driver.drainFaults();
}
