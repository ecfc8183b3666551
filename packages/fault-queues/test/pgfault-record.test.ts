// The fault-fd records (include/uapi/linux/iommufd.h; vmm-and-faults.md §4.2): struct
// iommu_hwpt_pgfault is 40 bytes little-endian {flags, dev_id, pasid, grpid, perm, __reserved,
// addr u64, length, cookie}; struct iommu_hwpt_page_response is 8 bytes {cookie, code}.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodePgfaults,
  encodePageResponses,
  encodePgfault,
  IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID,
  IOMMU_HWPT_PAGE_RESPONSE_BYTES,
  IOMMU_HWPT_PGFAULT_BYTES,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
} from '../src/index.js';

describe('iommu_hwpt_pgfault', () => {
  it('sizes and flag bits', () => {
    expect([IOMMU_HWPT_PGFAULT_BYTES, IOMMU_HWPT_PAGE_RESPONSE_BYTES]).toEqual([40, 8]);
    expect([IOMMU_PGFAULT_FLAGS_PASID_VALID, IOMMU_PGFAULT_FLAGS_LAST_PAGE, IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID]).toEqual([1, 2, 4]);
  });

  it('encodes every field at its offset, little-endian, with __reserved and length 0', () => {
    const buf = new Uint8Array(48).fill(0xcc);
    encodePgfault(new DataView(buf.buffer, 4), 0, { flags: 3, pasid: 0xabcde, grpid: 0x1ff, perm: 0xf, addr: 0x000f_1234_5678_9000 }, 0x01020304, 0xfffffffe);
    expect([...buf]).toEqual([
      0xcc, 0xcc, 0xcc, 0xcc,
      0x03, 0x00, 0x00, 0x00, // flags
      0x04, 0x03, 0x02, 0x01, // dev_id
      0xde, 0xbc, 0x0a, 0x00, // pasid
      0xff, 0x01, 0x00, 0x00, // grpid
      0x0f, 0x00, 0x00, 0x00, // perm
      0x00, 0x00, 0x00, 0x00, // __reserved
      0x00, 0x90, 0x78, 0x56, 0x34, 0x12, 0x0f, 0x00, // addr
      0x00, 0x00, 0x00, 0x00, // length
      0xfe, 0xff, 0xff, 0xff, // cookie
      0xcc, 0xcc, 0xcc, 0xcc,
    ]);
  });

  it('decodes what it encodes (addresses below 2^53) and ignores a trailing partial record', () => {
    const fault = fc.record({
      flags: fc.integer({ min: 0, max: 3 }),
      pasid: fc.integer({ min: 0, max: 0xfffff }),
      grpid: fc.integer({ min: 0, max: 0x1ff }),
      perm: fc.integer({ min: 0, max: 0xf }),
      addr: fc.maxSafeNat(),
      devId: fc.nat({ max: 0xffff_ffff }),
      cookie: fc.nat({ max: 0xffff_ffff }),
    });
    fc.assert(
      fc.property(fc.array(fault, { maxLength: 8 }), fc.nat(39), (faults, extra) => {
        const buf = new Uint8Array(faults.length * 40 + extra);
        const dv = new DataView(buf.buffer);
        faults.forEach((f, i) => encodePgfault(dv, i * 40, f, f.devId, f.cookie));
        expect(decodePgfaults(buf)).toEqual(faults.map((f) => ({ flags: f.flags, devId: f.devId, pasid: f.pasid, grpid: f.grpid, perm: f.perm, addr: f.addr, length: 0, cookie: f.cookie })));
      }),
      { numRuns: 200, seed: 42 },
    );
  });

  it('decodes a view at a byte offset', () => {
    const buf = new Uint8Array(43);
    encodePgfault(new DataView(buf.buffer, 3), 0, { flags: 2, pasid: 0, grpid: 5, perm: 1, addr: 0x3000 }, 9, 4);
    expect(decodePgfaults(buf.subarray(3))).toEqual([{ flags: 2, devId: 9, pasid: 0, grpid: 5, perm: 1, addr: 0x3000, length: 0, cookie: 4 }]);
  });
});

describe('iommu_hwpt_page_response', () => {
  it('encodes {u32 cookie; u32 code} little-endian, 8 bytes each', () => {
    expect([...encodePageResponses([{ cookie: 0x01020304, code: 1 }, { cookie: 0xffffffff, code: 0 }])]).toEqual([
      0x04, 0x03, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00,
      0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
    ]);
    expect(encodePageResponses([]).length).toBe(0);
  });
});
