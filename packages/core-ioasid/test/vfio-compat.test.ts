/**
 * The VFIO compatibility tests of tools/testing/selftests/iommu/iommufd.c, through the binary ioctl
 * path with the structs laid out byte by byte as the C tests pass them:
 *  - FIXTURE iommufd: simple_ioctls, unmap_cmd, map_cmd, info_cmd, set_iommu_cmd, vfio_ioas;
 *  - FIXTURE vfio_compat_mock_domain [Ver1v2, Ver1v0] (an IOAS with one mock device, set as the
 *    compat IOAS, then VFIO_SET_IOMMU(version)): simple_close, option_huge_pages, get_info, map,
 *    huge_map.
 * For GET_INFO the ioctl argument is the whole 16-page `buffer` (the kernel writes the capability
 * chain after the struct); `ioctl_check_buf` fills everything past `argsz` with 0xAA and checks it
 * stays so. A few extra checks (marked "model") cover the ABI numbers and the type1 cut path.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  iommuIoctl,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
} from '../src/uapi/constants.js';
import {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1_NESTING_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  vfioIoctlArg,
} from '../src/vfio-type1.js';
import { BUFFER_SIZE, expectErrno, HUGEPAGE_SIZE, MOCK_APERTURE_START, openSelf, PAGE_SIZE, teardown, type Self } from './fixture.js';
import { MOCK_APERTURE_LAST, openMockSelf, populate, teardownMock, type MockSelf } from './mock-fixture.js';

const IOMMU_VFIO_IOAS = iommuIoctl(0x88);
const IOMMU_OPTION = iommuIoctl(0x87);

/** sizeof / offsetof of the VFIO structs (include/uapi/linux/vfio.h). */
const SIZEOF_INFO = 24; // vfio_iommu_type1_info
const OFFSETOF_INFO_CAP_OFFSET = 16;
const SIZEOF_MAP = 32; // vfio_iommu_type1_dma_map
const SIZEOF_UNMAP = 24; // vfio_iommu_type1_dma_unmap
const SIZEOF_CAP_HEADER = 8; // vfio_info_cap_header
const SIZEOF_DMA_AVAIL = 12; // vfio_iommu_type1_info_dma_avail

/** A C struct in a byte buffer: little-endian field accessors by offset. */
class Struct {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  constructor(size: number | Uint8Array) {
    this.bytes = typeof size === 'number' ? new Uint8Array(size) : size;
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }
  u16(off: number): number {
    return this.view.getUint16(off, true);
  }
  u32(off: number, v?: number): number {
    if (v !== undefined) this.view.setUint32(off, v >>> 0, true);
    return this.view.getUint32(off, true);
  }
  u64(off: number, v?: number | bigint): bigint {
    if (v !== undefined) this.view.setBigUint64(off, BigInt(v), true);
    return this.view.getBigUint64(off, true);
  }
}

/** struct vfio_iommu_type1_dma_map {argsz, flags, vaddr, iova, size}. */
class MapCmd extends Struct {
  constructor(f: { argsz?: number; flags?: number; vaddr?: number | bigint; iova?: number | bigint; size?: number | bigint }) {
    super(SIZEOF_MAP);
    this.argsz = f.argsz ?? 0;
    this.flags = f.flags ?? 0;
    this.vaddr = BigInt(f.vaddr ?? 0);
    this.iova = BigInt(f.iova ?? 0);
    this.size = BigInt(f.size ?? 0);
  }
  get argsz(): number { return this.u32(0); }
  set argsz(v: number) { this.u32(0, v); }
  get flags(): number { return this.u32(4); }
  set flags(v: number) { this.u32(4, v); }
  get vaddr(): bigint { return this.u64(8); }
  set vaddr(v: bigint) { this.u64(8, v); }
  get iova(): bigint { return this.u64(16); }
  set iova(v: bigint) { this.u64(16, v); }
  get size(): bigint { return this.u64(24); }
  set size(v: bigint) { this.u64(24, v); }
}

/** struct vfio_iommu_type1_dma_unmap {argsz, flags, iova, size}. */
class UnmapCmd extends Struct {
  constructor(f: { argsz?: number; flags?: number; iova?: number | bigint; size?: number | bigint }) {
    super(SIZEOF_UNMAP);
    this.argsz = f.argsz ?? 0;
    this.flags = f.flags ?? 0;
    this.iova = BigInt(f.iova ?? 0);
    this.size = BigInt(f.size ?? 0);
  }
  get argsz(): number { return this.u32(0); }
  set argsz(v: number) { this.u32(0, v); }
  get flags(): number { return this.u32(4); }
  set flags(v: number) { this.u32(4, v); }
  get iova(): bigint { return this.u64(8); }
  set iova(v: bigint) { this.u64(8, v); }
  get size(): bigint { return this.u64(16); }
  set size(v: bigint) { this.u64(16, v); }
}

/** struct vfio_iommu_type1_info {argsz, flags, iova_pgsizes, cap_offset, pad} over a buffer. */
class InfoCmd extends Struct {
  get argsz(): number { return this.u32(0); }
  set argsz(v: number) { this.u32(0, v); }
  get flags(): number { return this.u32(4); }
  get iovaPgsizes(): bigint { return this.u64(8); }
  get capOffset(): number { return this.u32(OFFSETOF_INFO_CAP_OFFSET); }
  /** `*info_cmd = (struct vfio_iommu_type1_info){ .argsz = argsz }`. */
  reset(argsz: number): void {
    this.bytes.fill(0, 0, SIZEOF_INFO);
    this.argsz = argsz;
  }
}

/** struct iommu_vfio_ioas {size, ioas_id, u16 op, u16 __reserved}. */
function vfioIoasCmd(op: number, ioasId = 0): Struct {
  const s = new Struct(12);
  s.u32(0, 12);
  s.u32(4, ioasId);
  s.view.setUint16(8, op, true);
  return s;
}

/** A deterministic stand-in for the test's rand()-based shuffle_array. */
function shuffleArray(array: bigint[], seed = 1): void {
  let x = seed;
  const rand = (): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x >>> 16;
  };
  for (let i = 0; i !== array.length; i++) {
    const tmp = array[i];
    const other = rand() % (array.length - i);
    array[i] = array[other];
    array[other] = tmp;
  }
}

// ------------------------------------------------------------------ FIXTURE iommufd

describe('FIXTURE iommufd: VFIO compatibility IOCTLs', () => {
  let self: Self;

  beforeEach(() => {
    self = openSelf();
  });
  afterEach(async () => {
    await teardown(self);
  });

  it('simple_ioctls', async () => {
    expect(await self.fd.ioctl(VFIO_GET_API_VERSION, null)).toBe(VFIO_API_VERSION);
    expect(await self.fd.ioctl(VFIO_CHECK_EXTENSION, vfioIoctlArg(VFIO_TYPE1v2_IOMMU))).toBe(1);
  });

  it('unmap_cmd', async () => {
    const unmapCmd = new UnmapCmd({ iova: MOCK_APERTURE_START, size: PAGE_SIZE });

    unmapCmd.argsz = 1;
    await expectErrno('EINVAL', self.fd.ioctl(VFIO_IOMMU_UNMAP_DMA, unmapCmd.bytes));

    unmapCmd.argsz = SIZEOF_UNMAP;
    unmapCmd.flags = 1 << 31;
    await expectErrno('EINVAL', self.fd.ioctl(VFIO_IOMMU_UNMAP_DMA, unmapCmd.bytes));

    unmapCmd.flags = 0;
    await expectErrno('ENODEV', self.fd.ioctl(VFIO_IOMMU_UNMAP_DMA, unmapCmd.bytes));
  });

  it('map_cmd', async () => {
    const mapCmd = new MapCmd({ iova: MOCK_APERTURE_START, size: PAGE_SIZE, vaddr: self.buffer });

    mapCmd.argsz = 1;
    await expectErrno('EINVAL', self.fd.ioctl(VFIO_IOMMU_MAP_DMA, mapCmd.bytes));

    mapCmd.argsz = SIZEOF_MAP;
    mapCmd.flags = 1 << 31;
    await expectErrno('EINVAL', self.fd.ioctl(VFIO_IOMMU_MAP_DMA, mapCmd.bytes));

    // Requires a domain to be attached
    mapCmd.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
    await expectErrno('ENODEV', self.fd.ioctl(VFIO_IOMMU_MAP_DMA, mapCmd.bytes));
  });

  it('info_cmd', async () => {
    const infoCmd = new InfoCmd(SIZEOF_INFO);

    // Invalid argsz
    infoCmd.argsz = 1;
    await expectErrno('EINVAL', self.fd.ioctl(VFIO_IOMMU_GET_INFO, infoCmd.bytes));

    infoCmd.argsz = SIZEOF_INFO;
    await expectErrno('ENODEV', self.fd.ioctl(VFIO_IOMMU_GET_INFO, infoCmd.bytes));
  });

  it('set_iommu_cmd', async () => {
    // Requires a domain to be attached
    await expectErrno('ENODEV', self.fd.ioctl(VFIO_SET_IOMMU, vfioIoctlArg(VFIO_TYPE1v2_IOMMU)));
    await expectErrno('ENODEV', self.fd.ioctl(VFIO_SET_IOMMU, vfioIoctlArg(VFIO_TYPE1_IOMMU)));
  });

  it('vfio_ioas', async () => {
    const cmd = vfioIoasCmd(IOMMU_VFIO_IOAS_GET);

    // ENODEV if there is no compat ioas
    await expectErrno('ENODEV', self.fd.ioctl(IOMMU_VFIO_IOAS, cmd.bytes));

    // Invalid id for set
    cmd.view.setUint16(8, IOMMU_VFIO_IOAS_SET, true);
    await expectErrno('ENOENT', self.fd.ioctl(IOMMU_VFIO_IOAS, cmd.bytes));

    // Valid id for set
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    cmd.u32(4, ioasId);
    expect(await self.fd.ioctl(IOMMU_VFIO_IOAS, cmd.bytes)).toBe(0);

    // Same id comes back from get
    cmd.view.setUint16(8, IOMMU_VFIO_IOAS_GET, true);
    expect(await self.fd.ioctl(IOMMU_VFIO_IOAS, cmd.bytes)).toBe(0);
    expect(cmd.u32(4)).toBe(ioasId);

    // Clear works
    cmd.view.setUint16(8, IOMMU_VFIO_IOAS_CLEAR, true);
    expect(await self.fd.ioctl(IOMMU_VFIO_IOAS, cmd.bytes)).toBe(0);
    cmd.view.setUint16(8, IOMMU_VFIO_IOAS_GET, true);
    await expectErrno('ENODEV', self.fd.ioctl(IOMMU_VFIO_IOAS, cmd.bytes));
  });

  it('model: request numbers and extension answers', async () => {
    // _IO(VFIO_TYPE, VFIO_BASE + n) with VFIO_TYPE ';' (0x3b) and VFIO_BASE 100.
    expect(VFIO_GET_API_VERSION).toBe(0x3b64);
    expect(VFIO_CHECK_EXTENSION).toBe(0x3b65);
    expect(VFIO_SET_IOMMU).toBe(0x3b66);
    expect(VFIO_IOMMU_GET_INFO).toBe(0x3b70);
    expect(VFIO_IOMMU_MAP_DMA).toBe(0x3b71);
    expect(VFIO_IOMMU_UNMAP_DMA).toBe(0x3b72);
    expect(await self.fd.ioctl(VFIO_CHECK_EXTENSION, vfioIoctlArg(VFIO_TYPE1_IOMMU))).toBe(1);
    expect(await self.fd.ioctl(VFIO_CHECK_EXTENSION, vfioIoctlArg(VFIO_UNMAP_ALL))).toBe(1);
    expect(await self.fd.ioctl(VFIO_CHECK_EXTENSION, vfioIoctlArg(VFIO_TYPE1_NESTING_IOMMU))).toBe(0);
    expect(await self.fd.ioctl(VFIO_CHECK_EXTENSION, vfioIoctlArg(12345))).toBe(0);
    await expectErrno('ENODEV', self.fd.ioctl(VFIO_CHECK_EXTENSION, vfioIoctlArg(VFIO_DMA_CC_IOMMU)));
    await expectErrno('EINVAL', self.fd.ioctl(VFIO_SET_IOMMU, vfioIoctlArg(2)));
    // VFIO_IOMMU_DIRTY_PAGES and other numbers below the iommufd table are unknown.
    await expectErrno('ENOTTY', self.fd.ioctl(VFIO_IOMMU_DIRTY_PAGES, new Uint8Array(64)));
    await expectErrno('ENOTTY', self.fd.ioctl(iommuIoctl(0x7f), new Uint8Array(8)));
    // The struct must be readable: a short or NULL argument faults.
    await expectErrno('EFAULT', self.fd.ioctl(VFIO_IOMMU_MAP_DMA, new Uint8Array(SIZEOF_MAP - 1)));
    await expectErrno('EFAULT', self.fd.ioctl(VFIO_IOMMU_UNMAP_DMA, null));
  });
});

// ------------------------------------------------------------------ FIXTURE vfio_compat_mock_domain

const VARIANTS = [
  { name: 'Ver1v2', version: VFIO_TYPE1v2_IOMMU },
  { name: 'Ver1v0', version: VFIO_TYPE1_IOMMU },
];

describe.each(VARIANTS)('FIXTURE vfio_compat_mock_domain ($name)', (variant) => {
  let self: MockSelf;
  let ioasId: number;
  /** The shared `buffer` as the ioctl argument of GET_INFO (the struct is at its start). */
  let buffer: Uint8Array;

  beforeEach(async () => {
    self = await openMockSelf();
    // Create what VFIO would consider a group
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    await self.mock.mockDomain(ioasId);
    // Attach it to the vfio compat
    expect(await self.fd.ioctl(IOMMU_VFIO_IOAS, vfioIoasCmd(IOMMU_VFIO_IOAS_SET, ioasId).bytes)).toBe(0);
    expect(await self.fd.ioctl(VFIO_SET_IOMMU, vfioIoctlArg(variant.version))).toBe(0);
    buffer = new Uint8Array(BUFFER_SIZE);
  });
  afterEach(async () => {
    await teardownMock(self);
  });

  it('simple_close', () => {});

  it('option_huge_pages', async () => {
    const cmd = new Struct(24);
    cmd.u32(0, 24);
    cmd.u32(4, IOMMU_OPTION_HUGE_PAGES);
    cmd.view.setUint16(8, IOMMU_OPTION_OP_GET, true);
    cmd.u32(12, ioasId);
    cmd.u64(16, 3);
    expect(await self.fd.ioctl(IOMMU_OPTION, cmd.bytes)).toBe(0);
    if (variant.version === VFIO_TYPE1_IOMMU) expect(cmd.u64(16)).toBe(0n);
    else expect(cmd.u64(16)).toBe(1n);
  });

  /** ioctl_check_buf: run `cmd` on `buffer` and check nothing past `argsz` (as passed) was written. */
  async function ioctlCheckBuf(cmd: number): Promise<void> {
    const cmdLen = new Struct(buffer).u32(0);
    buffer.fill(0xaa, cmdLen);
    expect(await self.fd.ioctl(cmd, buffer)).toBe(0);
    const firstChanged = buffer.subarray(cmdLen).findIndex((b) => b !== 0xaa);
    expect(firstChanged).toBe(-1);
  }

  /** check_vfio_info_cap_chain. */
  function checkVfioInfoCapChain(info: InfoCmd): void {
    expect(info.argsz).toBeGreaterThanOrEqual(info.capOffset + SIZEOF_CAP_HEADER);
    let cap = info.capOffset;
    const b = new Struct(buffer);
    for (;;) {
      const next = b.u32(cap + 4);
      const capSize = next ? next - cap : info.argsz - cap;
      switch (b.u16(cap)) {
        case VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE: {
          expect(b.u16(cap + 2)).toBe(1); // header.version
          expect(b.u32(cap + 8)).toBe(1); // nr_iovas
          expect(b.u64(cap + 16)).toBe(BigInt(MOCK_APERTURE_START)); // iova_ranges[0].start
          expect(b.u64(cap + 24)).toBe(BigInt(MOCK_APERTURE_LAST)); // iova_ranges[0].end
          break;
        }
        case VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL: {
          expect(b.u16(cap + 2)).toBe(1);
          // The C test compares with sizeof(*data), which the compiler pads to 12 -> the kernel
          // aligns each capability to 8 bytes, so the next one starts 16 bytes later.
          expect(capSize).toBe(16);
          expect(SIZEOF_DMA_AVAIL).toBeLessThanOrEqual(capSize);
          break;
        }
        default:
          expect.fail(`unknown capability id ${b.u16(cap)}`);
      }
      if (!next) break;
      expect(info.argsz).toBeGreaterThanOrEqual(next + SIZEOF_CAP_HEADER);
      expect(next).toBeGreaterThanOrEqual(cap);
      cap = next;
    }
  }

  it('get_info', async () => {
    const info = new InfoCmd(buffer);

    // Pre-cap ABI
    info.reset(OFFSETOF_INFO_CAP_OFFSET);
    await ioctlCheckBuf(VFIO_IOMMU_GET_INFO);
    expect(info.iovaPgsizes).not.toBe(0n);
    expect(info.flags).toBe(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);

    // Read the cap chain size
    info.reset(SIZEOF_INFO);
    await ioctlCheckBuf(VFIO_IOMMU_GET_INFO);
    expect(info.iovaPgsizes).not.toBe(0n);
    expect(info.flags).toBe(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
    expect(info.capOffset).toBe(0);
    expect(info.argsz).toBeGreaterThan(SIZEOF_INFO);

    // Read the caps, kernel should never create a corrupted caps
    const caplen = info.argsz;
    for (let i = SIZEOF_INFO; i < caplen; i++) {
      info.reset(i);
      await ioctlCheckBuf(VFIO_IOMMU_GET_INFO);
      expect(info.flags).toBe(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
      if (!info.capOffset) continue;
      checkVfioInfoCapChain(info);
    }

    // model: with room for everything the chain is returned and well formed
    for (const argsz of [caplen, caplen + 8, BUFFER_SIZE]) {
      info.reset(argsz);
      await ioctlCheckBuf(VFIO_IOMMU_GET_INFO);
      expect(info.argsz).toBe(caplen);
      expect(info.capOffset).toBe(SIZEOF_INFO);
      checkVfioInfoCapChain(info);
    }
    // DMA_AVAIL (U32_MAX) then IOVA_RANGE (one range): 24 + 16 + 32.
    expect(caplen).toBe(72);
    expect(new Struct(buffer).u32(SIZEOF_INFO + 8)).toBe(0xffff_ffff);
  });

  it('map', async () => {
    const mapCmd = new MapCmd({
      argsz: SIZEOF_MAP,
      flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
      vaddr: self.buffer,
      size: BUFFER_SIZE,
      iova: MOCK_APERTURE_START,
    });
    const unmapCmd = new UnmapCmd({ argsz: SIZEOF_UNMAP, size: BUFFER_SIZE, iova: MOCK_APERTURE_START });
    const pagesIova: bigint[] = new Array<bigint>(BUFFER_SIZE / PAGE_SIZE).fill(0n);

    // Simple map/unmap
    expect(await self.fd.ioctl(VFIO_IOMMU_MAP_DMA, mapCmd.bytes)).toBe(0);
    expect(await self.fd.ioctl(VFIO_IOMMU_UNMAP_DMA, unmapCmd.bytes)).toBe(0);
    expect(unmapCmd.size).toBe(BigInt(BUFFER_SIZE));
    // Unmap of empty is success
    expect(await self.fd.ioctl(VFIO_IOMMU_UNMAP_DMA, unmapCmd.bytes)).toBe(0);

    // UNMAP_FLAG_ALL requires 0 iova/size
    expect(await self.fd.ioctl(VFIO_IOMMU_MAP_DMA, mapCmd.bytes)).toBe(0);
    unmapCmd.flags = VFIO_DMA_UNMAP_FLAG_ALL;
    await expectErrno('EINVAL', self.fd.ioctl(VFIO_IOMMU_UNMAP_DMA, unmapCmd.bytes));

    unmapCmd.iova = 0n;
    unmapCmd.size = 0n;
    expect(await self.fd.ioctl(VFIO_IOMMU_UNMAP_DMA, unmapCmd.bytes)).toBe(0);
    expect(unmapCmd.size).toBe(BigInt(BUFFER_SIZE));

    // Small pages
    for (let i = 0; i !== pagesIova.length; i++) {
      mapCmd.iova = pagesIova[i] = BigInt(MOCK_APERTURE_START + i * PAGE_SIZE);
      mapCmd.vaddr = BigInt(self.buffer + i * PAGE_SIZE);
      mapCmd.size = BigInt(PAGE_SIZE);
      expect(await self.fd.ioctl(VFIO_IOMMU_MAP_DMA, mapCmd.bytes)).toBe(0);
    }
    shuffleArray(pagesIova);

    unmapCmd.flags = 0;
    unmapCmd.size = BigInt(PAGE_SIZE);
    for (let i = 0; i !== pagesIova.length; i++) {
      unmapCmd.iova = pagesIova[i];
      expect(await self.fd.ioctl(VFIO_IOMMU_UNMAP_DMA, unmapCmd.bytes)).toBe(0);
    }
  });

  it('huge_map', async () => {
    const bufSize = HUGEPAGE_SIZE * 2;
    const mapCmd = new MapCmd({
      argsz: SIZEOF_MAP,
      flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
      size: bufSize,
      iova: MOCK_APERTURE_START,
    });
    const unmapCmd = new UnmapCmd({ argsz: SIZEOF_UNMAP });
    const pagesIova: bigint[] = new Array<bigint>(16).fill(0n);

    // Test huge pages and splitting (MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE)
    const buf = self.proc.mmap({ length: bufSize, shared: true, hugeAlign: HUGEPAGE_SIZE });
    populate(self, buf, bufSize);
    mapCmd.vaddr = BigInt(buf);
    expect(await self.fd.ioctl(VFIO_IOMMU_MAP_DMA, mapCmd.bytes)).toBe(0);

    unmapCmd.size = BigInt(bufSize / pagesIova.length);
    for (let i = 0; i !== pagesIova.length; i++) pagesIova[i] = BigInt(MOCK_APERTURE_START) + BigInt(i) * unmapCmd.size;
    shuffleArray(pagesIova);

    // type1 mode can cut up larger mappings, type1v2 always fails
    for (let i = 0; i !== pagesIova.length; i++) {
      unmapCmd.iova = pagesIova[i];
      unmapCmd.size = BigInt(bufSize / pagesIova.length);
      if (variant.version === VFIO_TYPE1_IOMMU) {
        expect(await self.fd.ioctl(VFIO_IOMMU_UNMAP_DMA, unmapCmd.bytes)).toBe(0);
        expect(unmapCmd.size).toBe(BigInt(bufSize / pagesIova.length));
      } else {
        await expectErrno('ENOENT', self.fd.ioctl(VFIO_IOMMU_UNMAP_DMA, unmapCmd.bytes));
      }
    }
    // model: type1 left nothing mapped; type1v2 left the whole mapping in place.
    const ioas = self.fd.ctx.vfioIoas as unknown as { iopt: { areas: { size: number } } };
    expect(ioas.iopt.areas.size).toBe(variant.version === VFIO_TYPE1_IOMMU ? 0 : 1);
  });

  it('model: a type1 hole keeps the rest of the mapping in the domain', async () => {
    const mapCmd = new MapCmd({
      argsz: SIZEOF_MAP,
      flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
      vaddr: self.buffer,
      size: BUFFER_SIZE,
      iova: MOCK_APERTURE_START,
    });
    expect(await self.fd.ioctl(VFIO_IOMMU_MAP_DMA, mapCmd.bytes)).toBe(0);
    const hole = new UnmapCmd({ argsz: SIZEOF_UNMAP, iova: MOCK_APERTURE_START + 4 * PAGE_SIZE, size: 2 * PAGE_SIZE });
    if (variant.version === VFIO_TYPE1v2_IOMMU) {
      await expectErrno('ENOENT', self.fd.ioctl(VFIO_IOMMU_UNMAP_DMA, hole.bytes));
      expect(hole.size).toBe(0n); // size is written back even on failure
      return;
    }
    expect(await self.fd.ioctl(VFIO_IOMMU_UNMAP_DMA, hole.bytes)).toBe(0);
    expect(hole.size).toBe(BigInt(2 * PAGE_SIZE));
    const hwptId = (self.fd.ctx.vfioIoas as unknown as { hwptList: { id: number }[] }).hwptList[0].id;
    await self.mock.mdCheckMap(hwptId, MOCK_APERTURE_START, 4 * PAGE_SIZE, self.buffer);
    await self.mock.mdCheckMap(hwptId, MOCK_APERTURE_START + 6 * PAGE_SIZE, 10 * PAGE_SIZE, self.buffer + 6 * PAGE_SIZE);
    for (let i = 4; i < 6; i++) expect(self.proc.pinCount(self.buffer + i * PAGE_SIZE)).toBe(0);
    for (const i of [0, 3, 6, 15]) expect(self.proc.pinCount(self.buffer + i * PAGE_SIZE)).toBe(1);
    // The pieces unmap independently, and unmapping across them works too.
    const rest = new UnmapCmd({ argsz: SIZEOF_UNMAP, iova: MOCK_APERTURE_START, size: BUFFER_SIZE });
    expect(await self.fd.ioctl(VFIO_IOMMU_UNMAP_DMA, rest.bytes)).toBe(0);
    expect(rest.size).toBe(BigInt(BUFFER_SIZE - 2 * PAGE_SIZE));
  });
});
