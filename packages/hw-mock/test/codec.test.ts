import { describe, expect, it } from 'vitest';
import {
  CMD_INV_RANGE,
  CMD_PAGE_RESP,
  CMD_SYNC,
  decodeCmd,
  decodeDte,
  decodeFaultRecord,
  decodePasidDirEntry,
  decodePasidEntry,
  decodePte,
  dteReservedBitsSet,
  encodeCmd,
  encodeDte,
  encodeFaultRecord,
  encodePasidDirEntry,
  encodePasidEntry,
  encodePte,
  FAULT_TYPE_PAGE_REQ,
  pasidEntryReservedBitsSet,
  writeCmdInvAll,
  writeCmdInvDomain,
  writeCmdInvDte,
  writeCmdInvPasid,
} from '../src/codec.js';

const words = (a: Uint32Array) => Array.from(a);

describe('codec: device-table entry', () => {
  const dte = { valid: true, pasidEnable: true, dirtyEnable: true, priEnable: false, domainId: 0x1234, root: 0x1234_4000, pasidDir: 0x1_0000_5000 };
  const hand = [0x1234_0007, 0, 0x1234_4000, 0, 0x0000_5000, 0x1, 0, 0];
  it('encodes to hand-built words', () => expect(words(encodeDte(dte))).toEqual(hand));
  it('decodes hand-built words', () => expect(decodeDte(hand)).toEqual(dte));
  it('PRI_EN is bit 3', () => expect(encodeDte({ ...dte, pasidEnable: false, dirtyEnable: false, priEnable: true })[0]).toBe(0x1234_0009));
  it('flags reserved bits and misaligned pointers', () => {
    expect(dteReservedBitsSet(hand)).toBe(false);
    expect(dteReservedBitsSet([0x1234_0017, 0, 0x1234_4000, 0, 0, 0, 0, 0])).toBe(true); // bit 4
    expect(dteReservedBitsSet([1, 1, 0, 0, 0, 0, 0, 0])).toBe(true); // word1
    expect(dteReservedBitsSet([1, 0, 0x1234_5000, 0, 0, 0, 0, 0])).toBe(true); // root not 16 KiB aligned
    expect(dteReservedBitsSet([1, 0, 0, 0, 0x800, 0, 0, 0])).toBe(true); // PASID dir not 4 KiB aligned
    expect(dteReservedBitsSet([1, 0, 0, 0, 0, 0, 0, 0x8000_0000])).toBe(true); // word7
  });
});

describe('codec: PASID tables', () => {
  it('directory entry', () => {
    expect(words(encodePasidDirEntry({ valid: true, leaf: 0x2_0000_3000 }))).toEqual([0x3001, 2]);
    expect(decodePasidDirEntry([0x3001, 2])).toEqual({ valid: true, leaf: 0x2_0000_3000 });
  });
  it('leaf entry', () => {
    const e = { valid: true, dirtyEnable: true, domainId: 9, root: 0x8000 };
    expect(words(encodePasidEntry(e))).toEqual([0x0009_0005, 0, 0x8000, 0]);
    expect(decodePasidEntry([0x0009_0005, 0, 0x8000, 0])).toEqual(e);
    expect(pasidEntryReservedBitsSet([0x0009_0005, 0, 0x8000, 0])).toBe(false);
    expect(pasidEntryReservedBitsSet([0x0009_0007, 0, 0x8000, 0])).toBe(true); // bit 1
    expect(pasidEntryReservedBitsSet([0x0009_0005, 0, 0x9000, 0])).toBe(true); // root misaligned
  });
});

describe('codec: PTE', () => {
  it('encodes an L2 leaf above 4 GiB', () => {
    const p = { valid: true, read: true, write: true, leaf: true, dirty: true, accessed: false, pa: 0x3_8765_4800 };
    expect(words(encodePte(p))).toEqual([0x8765_481f, 3]);
    expect(decodePte([0x8765_481f, 3])).toEqual(p);
  });
  it('A is bit 5, read-only leaf', () => {
    expect(decodePte([0x0010_002b, 0])).toEqual({ valid: true, read: true, write: false, leaf: true, dirty: false, accessed: true, pa: 0x10_0000 });
  });
});

describe('codec: commands', () => {
  it('INV_RANGE', () => {
    const w = encodeCmd({ op: CMD_INV_RANGE, domainId: 7, iova: 0x0100_0800, pages: 3 });
    expect(words(w)).toEqual([0x0007_0003, 3, 0x0100_0800, 0]);
    expect(decodeCmd(w)).toEqual({ op: CMD_INV_RANGE, domainId: 7, iova: 0x0100_0800, pages: 3 });
  });
  it('SYNC', () => {
    expect(words(encodeCmd({ op: CMD_SYNC, value: 0xabcd, addr: 0x1234_5678 }))).toEqual([6, 0xabcd, 0x1234_5678, 0]);
    expect(decodeCmd([6, 0xabcd, 0x1234_5678, 0])).toEqual({ op: CMD_SYNC, value: 0xabcd, addr: 0x1234_5678 });
  });
  it('PAGE_RESP with and without PASID', () => {
    const c = { op: CMD_PAGE_RESP, code: 2, rid: 0x10, pasid: 5, pasidValid: true, prgIndex: 0x1ff } as const;
    expect(words(encodeCmd(c))).toEqual([0x0002_0007, 0x10, 0x8000_0005, 0x1ff]);
    expect(decodeCmd([0x0002_0007, 0x10, 0x8000_0005, 0x1ff])).toEqual(c);
    expect(words(encodeCmd({ ...c, pasidValid: false, code: 0 }))).toEqual([7, 0x10, 0, 0x1ff]);
  });
  it('other writers', () => {
    const u = new Uint32Array(16);
    writeCmdInvAll(u, 0);
    writeCmdInvDomain(u, 4, 0xbeef);
    writeCmdInvDte(u, 8, 0x42);
    writeCmdInvPasid(u, 12, 0x42, 0xfffff);
    expect(words(u)).toEqual([1, 0, 0, 0, 0xbeef_0002, 0, 0, 0, 4, 0x42, 0, 0, 5, 0x42, 0xfffff, 0]);
  });
  it('unknown opcodes keep their raw words', () => {
    expect(decodeCmd([0x55, 1, 2, 3])).toEqual({ op: 0x55, raw: [0x55, 1, 2, 3] });
    expect(words(encodeCmd({ op: 0x55, raw: [0x55, 1, 2, 3] }))).toEqual([0x55, 1, 2, 3]);
  });
});

describe('codec: fault records', () => {
  it('page request', () => {
    const r = { type: FAULT_TYPE_PAGE_REQ, reason: 10, pasidValid: true, last: true, perm: 3, rid: 0x42, pasid: 1, prgIndex: 2, addr: 0xdeadbeaf };
    const hand = [0x000f_0a02, 0x42, 1, 2, 0xdeadbeaf, 0, 0, 0];
    expect(words(encodeFaultRecord(r))).toEqual(hand);
    expect(decodeFaultRecord(hand)).toEqual(r);
  });
  it('fault without PASID, address above 4 GiB', () => {
    const hand = [0x0004_0201, 7, 0, 0, 0x0000_1000, 0x10, 0, 0];
    expect(decodeFaultRecord(hand)).toEqual({ type: 1, reason: 2, pasidValid: false, last: false, perm: 1, rid: 7, pasid: 0, prgIndex: 0, addr: 0x10_0000_1000 });
    expect(words(encodeFaultRecord(decodeFaultRecord(hand)))).toEqual(hand);
  });
});
