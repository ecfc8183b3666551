import { describe, it, expect } from 'vitest';
import { RegisterFile } from '../src/register-file.js';
import { RuntimeError, type RuntimeErrorCode } from '../src/errors.js';

function expectCode(fn: () => unknown, code: RuntimeErrorCode, msg?: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(RuntimeError);
  expect((err as RuntimeError).code).toBe(code);
  if (msg) expect((err as RuntimeError).message).toMatch(msg);
}

describe('RegisterFile', () => {
  it('creates a zeroed block after a 64-byte header', () => {
    const r = RegisterFile.create(0x20000);
    expect(r.size).toBe(0x20000);
    expect(r.handle.sab.byteLength).toBe(64 + 0x20000);
    expect(r.u32.length).toBe(0x8000);
    expect(r.i32.length).toBe(0x8000);
    expect(r.u32.byteOffset).toBe(64);
    expect(r.read32(0x1fffc)).toBe(0);
    expect(r.doorbell.value).toBe(0);
    expect(r.irq.value).toBe(0);
    expect(r.control.value).toBe(0);
  });

  it('rejects bad sizes and handles', () => {
    expectCode(() => RegisterFile.create(0), 'BAD_ARGUMENT', /size 0/);
    expectCode(() => RegisterFile.create(12), 'BAD_ARGUMENT', /size 12/);
    expectCode(() => RegisterFile.attach({ sab: new SharedArrayBuffer(64), size: 8 }), 'BAD_ARGUMENT');
  });

  it('software writes store, ring the doorbell once and call listeners with the offset', () => {
    const r = RegisterFile.create(0x100);
    const seen: number[] = [];
    const off = r.onWrite((o) => seen.push(o));
    r.write32(0x10, 0x80000001);
    expect(r.read32(0x10)).toBe(0x80000001);
    expect(r.u32[4]).toBe(0x80000001);
    expect(r.i32[4]).toBe(-0x7fffffff);
    expect(r.doorbell.value).toBe(1);
    r.write64(0x18, 4294967298);
    expect(r.doorbell.value).toBe(2);
    expect(r.read32(0x18)).toBe(2);
    expect(r.read32(0x1c)).toBe(1);
    expect(r.read64(0x18)).toBe(4294967298);
    r.write64Parts(0x20, 0xdeadbeef, 0xffffffff);
    expect(r.doorbell.value).toBe(3);
    expect(r.read64Hi(0x20)).toBe(0xffffffff);
    expect(r.read32(0x20)).toBe(0xdeadbeef);
    expect(seen).toEqual([0x10, 0x18, 0x20]);
    off();
    r.write32(0x10, 1);
    expect(seen).toEqual([0x10, 0x18, 0x20]);
    expect(r.doorbell.value).toBe(4);
  });

  it('read64 of a value >= 2^53 throws BAD_ARGUMENT', () => {
    const r = RegisterFile.create(0x100);
    r.hwWrite64Parts(0x20, 0, 0x200000);
    expectCode(() => r.read64(0x20), 'BAD_ARGUMENT', /0x20/);
    r.hwWrite64Parts(0x20, 5, 0x1fffff);
    expect(r.read64(0x20)).toBe(0x1fffff * 4294967296 + 5);
  });

  it('hardware writes neither ring nor call listeners; raiseIrq rings irq and calls irq listeners', () => {
    const r = RegisterFile.create(0x100);
    let writes = 0;
    let irqs = 0;
    r.onWrite(() => writes++);
    const offIrq = r.onIrq(() => irqs++);
    r.hwWrite32(0x0, 0xffffffff);
    r.hwWrite64(0x8, 2 ** 40 + 3);
    r.hwWrite64Parts(0x10, 7, 8);
    expect(r.hwRead32(0x0)).toBe(0xffffffff);
    expect(r.read64(0x8)).toBe(2 ** 40 + 3);
    expect(r.read64(0x10)).toBe(8 * 4294967296 + 7);
    expect(writes).toBe(0);
    expect(r.doorbell.value).toBe(0);
    r.raiseIrq();
    expect(r.irq.value).toBe(1);
    expect(irqs).toBe(1);
    offIrq();
    r.raiseIrq();
    expect(r.irq.value).toBe(2);
    expect(irqs).toBe(1);
  });

  it('bad offsets throw MISALIGNED / OUT_OF_RANGE; nothing stored, no ring', () => {
    const r = RegisterFile.create(0x100);
    let writes = 0;
    r.onWrite(() => writes++);
    expectCode(() => r.read32(0x2), 'MISALIGNED', /offset 0x2 is not 4-byte aligned/);
    expectCode(() => r.write32(0x101, 1), 'OUT_OF_RANGE');
    expectCode(() => r.write32(0x100, 1), 'OUT_OF_RANGE', /offset 0x100 is outside the 0x100-byte/);
    expectCode(() => r.write64(0x4, 1), 'MISALIGNED', /8-byte/);
    expectCode(() => r.write64(0xf8 + 8, 1), 'OUT_OF_RANGE');
    expectCode(() => r.write64Parts(0xc, 1, 2), 'MISALIGNED');
    expectCode(() => r.read64(0xfc), 'OUT_OF_RANGE');
    expectCode(() => r.hwWrite32(-4, 1), 'OUT_OF_RANGE');
    expectCode(() => r.hwWrite64(0x4, 1), 'MISALIGNED');
    expectCode(() => r.write64(0x8, 2 ** 53), 'BAD_ARGUMENT', /9007199254740992/);
    expectCode(() => r.write64(0x8, -1), 'BAD_ARGUMENT');
    expectCode(() => r.hwWrite64(0x8, 0.5), 'BAD_ARGUMENT');
    expect(writes).toBe(0);
    expect(r.doorbell.value).toBe(0);
    expect(r.u32.every((w) => w === 0)).toBe(true);
  });

  it('attach shares registers and doorbells but not listeners', () => {
    const r = RegisterFile.create(0x40);
    const r2 = RegisterFile.attach(r.handle);
    let local = 0;
    r.onWrite(() => local++);
    r2.write32(0x4, 42);
    expect(r.read32(0x4)).toBe(42);
    expect(r.doorbell.value).toBe(1);
    expect(local).toBe(0);
    r.control.ring();
    expect(r2.control.value).toBe(1);
  });
});
