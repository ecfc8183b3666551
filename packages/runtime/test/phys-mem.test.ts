import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { PhysMem, FRAME_SIZE, FRAME_SHIFT, DEFAULT_PHYS_MEM_BYTES } from '../src/phys-mem.js';
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

describe('PhysMem constants and create', () => {
  it('has the agreed constants', () => {
    expect(FRAME_SIZE).toBe(4096);
    expect(FRAME_SHIFT).toBe(12);
    expect(DEFAULT_PHYS_MEM_BYTES).toBe(268435456);
  });

  it('creates with size and frame count', () => {
    const m = PhysMem.create(64 * 1024);
    expect(m.size).toBe(65536);
    expect(m.frameCount).toBe(16);
    expect(m.u8.length).toBe(65536);
    expect(m.u32.length).toBe(16384);
    expect(m.i32.length).toBe(16384);
    expect(m.freeFrameCount).toBe(15); // frame 0 reserved
    expect(m.allocatedFrameCount).toBe(0);
    expect(m.handle.data).toBeInstanceOf(SharedArrayBuffer);
    expect(m.handle.alloc).toBeInstanceOf(SharedArrayBuffer);
  });

  it('default size is 256 MiB', () => {
    const m = PhysMem.create();
    expect(m.size).toBe(DEFAULT_PHYS_MEM_BYTES);
    expect(m.frameCount).toBe(65536);
  });

  it('rejects bad sizes', () => {
    expectCode(() => PhysMem.create(0), 'BAD_ARGUMENT', /size 0/);
    expectCode(() => PhysMem.create(-4096), 'BAD_ARGUMENT', /-4096/);
    expectCode(() => PhysMem.create(4097), 'BAD_ARGUMENT', /4097/);
    expectCode(() => PhysMem.create(1.5 * 4096), 'BAD_ARGUMENT');
    expectCode(() => PhysMem.create(2 ** 32 + 4096), 'BAD_ARGUMENT');
  });

  it('attach rejects a bad handle', () => {
    const m = PhysMem.create(8192);
    expectCode(() => PhysMem.attach({ data: new SharedArrayBuffer(4096), alloc: m.handle.alloc }), 'BAD_ARGUMENT');
    expectCode(
      () => PhysMem.attach({ data: new ArrayBuffer(8192) as unknown as SharedArrayBuffer, alloc: m.handle.alloc }),
      'BAD_ARGUMENT',
    );
  });
});

describe('PhysMem allocator', () => {
  it('never hands out frame 0 and zero-fills frames', () => {
    const m = PhysMem.create(4 * 4096);
    m.fill(0, m.size, 0xaa);
    const got = [m.allocFrame(), m.allocFrame(), m.allocFrame()].sort((a, b) => a - b);
    expect(got).toEqual([0x1000, 0x2000, 0x3000]);
    for (const pa of got) {
      expect(m.readBytes(pa, 4096).every((b) => b === 0)).toBe(true);
      expect(m.isAllocated(pa)).toBe(true);
      expect(m.isAllocated(pa + 4095)).toBe(true);
    }
    expect(m.isAllocated(0)).toBe(false);
    expect(m.read8(0)).toBe(0xaa); // frame 0 untouched
    expect(m.freeFrameCount).toBe(0);
    expect(m.allocatedFrameCount).toBe(3);
    expectCode(() => m.allocFrame(), 'NO_MEMORY', /1 frame/);
    expect(m.freeFrameCount).toBe(0);
  });

  it('counts frames through alloc and free', () => {
    const m = PhysMem.create(64 * 4096);
    expect(m.freeFrameCount).toBe(63);
    const a = m.allocFrames(8);
    expect(m.freeFrameCount).toBe(55);
    expect(m.allocatedFrameCount).toBe(8);
    const b = m.allocFrame();
    expect(m.freeFrameCount).toBe(54);
    m.freeFrames(a, 8);
    expect(m.freeFrameCount).toBe(62);
    expect(m.allocatedFrameCount).toBe(1);
    m.freeFrames(b);
    expect(m.freeFrameCount).toBe(63);
    expect(m.allocatedFrameCount).toBe(0);
  });

  it('allocates aligned contiguous runs', () => {
    const m = PhysMem.create(64 * 4096);
    m.allocFrame(); // frame 1
    const pa = m.allocFrames(4, 16);
    expect(pa % (16 * 4096)).toBe(0);
    expect(pa).toBe(16 * 4096);
    for (let f = 0; f < 4; f++) expect(m.isAllocated(pa + f * 4096)).toBe(true);
    expect(m.isAllocated(pa + 4 * 4096)).toBe(false);
    const big = m.allocFrames(32, 32);
    expect(big).toBe(32 * 4096);
    expectCode(() => m.allocFrames(16, 16), 'NO_MEMORY', /16 frame\(s\) aligned to 16/);
  });

  it('rejects bad counts and alignments without changing state', () => {
    const m = PhysMem.create(16 * 4096);
    expectCode(() => m.allocFrames(0), 'BAD_ARGUMENT', /count 0/);
    expectCode(() => m.allocFrames(1.5), 'BAD_ARGUMENT');
    expectCode(() => m.allocFrames(17), 'BAD_ARGUMENT', /17/);
    expectCode(() => m.allocFrames(1, 3), 'BAD_ARGUMENT', /alignFrames 3/);
    expectCode(() => m.allocFrames(1, 0), 'BAD_ARGUMENT');
    expect(m.freeFrameCount).toBe(15);
    // a run larger than any free run: NO_MEMORY (frame 0 is reserved, so 16 contiguous cannot exist)
    expectCode(() => m.allocFrames(16), 'NO_MEMORY');
    expect(m.freeFrameCount).toBe(15);
  });

  it('double free and bad frees throw and leave state unchanged', () => {
    const m = PhysMem.create(16 * 4096);
    const pa = m.allocFrames(2);
    m.freeFrames(pa + 4096);
    expect(m.freeFrameCount).toBe(14);
    // freeing a run where the second frame is already free: nothing freed
    expectCode(() => m.freeFrames(pa, 2), 'DOUBLE_FREE', new RegExp(`0x${(pa + 4096).toString(16)}`));
    expect(m.isAllocated(pa)).toBe(true);
    expect(m.freeFrameCount).toBe(14);
    expectCode(() => m.freeFrames(pa + 4096), 'DOUBLE_FREE');
    expectCode(() => m.freeFrames(0), 'DOUBLE_FREE', /0x0/);
    expectCode(() => m.freeFrames(pa + 8), 'MISALIGNED', new RegExp(`0x${(pa + 8).toString(16)}`));
    expectCode(() => m.freeFrames(16 * 4096), 'OUT_OF_RANGE', /0x10000/);
    expectCode(() => m.freeFrames(15 * 4096, 2), 'OUT_OF_RANGE');
    expectCode(() => m.freeFrames(-4096), 'OUT_OF_RANGE');
    expectCode(() => m.freeFrames(pa, 0), 'BAD_ARGUMENT');
    expect(m.freeFrameCount).toBe(14);
    m.freeFrames(pa);
    expect(m.freeFrameCount).toBe(15);
  });

  it('reuses freed frames', () => {
    const m = PhysMem.create(4 * 4096);
    const a = m.allocFrame();
    m.allocFrame();
    m.allocFrame();
    m.freeFrames(a);
    expect(m.allocFrame()).toBe(a);
  });

  it('property: random alloc/free agrees with a Set model', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('alloc' as const), count: fc.integer({ min: 1, max: 6 }), alignLog: fc.integer({ min: 0, max: 3 }) }),
            fc.record({ op: fc.constant('free' as const), pick: fc.nat(), count: fc.integer({ min: 1, max: 3 }) }),
          ),
          { maxLength: 80 },
        ),
        (ops) => {
          const frames = 48;
          const m = PhysMem.create(frames * 4096);
          const used = new Set<number>();
          const runs: Array<{ first: number; count: number }> = [];
          for (const o of ops) {
            if (o.op === 'alloc') {
              const align = 1 << o.alignLog;
              // model: is there any aligned free run?
              let possible = false;
              for (let f = align; f + o.count <= frames && !possible; f += align) {
                let ok = true;
                for (let j = 0; j < o.count; j++) if (used.has(f + j)) ok = false;
                possible = ok;
              }
              if (possible) {
                const pa = m.allocFrames(o.count, align);
                const first = pa / 4096;
                expect(first % align).toBe(0);
                expect(first).toBeGreaterThan(0);
                for (let j = 0; j < o.count; j++) {
                  expect(used.has(first + j)).toBe(false);
                  used.add(first + j);
                }
                runs.push({ first, count: o.count });
              } else {
                expectCode(() => m.allocFrames(o.count, align), 'NO_MEMORY');
              }
            } else {
              // free a (maybe partial, maybe already free) range
              const base = runs.length > 0 ? runs[o.pick % runs.length].first : 1 + (o.pick % (frames - 1));
              const count = Math.min(o.count, frames - base);
              let allUsed = true;
              for (let j = 0; j < count; j++) if (!used.has(base + j)) allUsed = false;
              if (allUsed) {
                m.freeFrames(base * 4096, count);
                for (let j = 0; j < count; j++) used.delete(base + j);
              } else {
                expectCode(() => m.freeFrames(base * 4096, count), 'DOUBLE_FREE');
              }
            }
            expect(m.allocatedFrameCount).toBe(used.size);
            expect(m.freeFrameCount).toBe(frames - 1 - used.size);
          }
          for (let f = 0; f < frames; f++) expect(m.isAllocated(f * 4096)).toBe(used.has(f));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('PhysMem access', () => {
  it('read/write 8 and 32 little-endian, unsigned', () => {
    const m = PhysMem.create(8192);
    m.write32(0x100, 0x11223344);
    expect(m.read8(0x100)).toBe(0x44);
    expect(m.read8(0x103)).toBe(0x11);
    m.write32(0x104, 0xffffffff);
    expect(m.read32(0x104)).toBe(4294967295);
    m.write32(0x108, -1);
    expect(m.read32(0x108)).toBe(0xffffffff);
    m.write8(0x10c, 0x1ff);
    expect(m.read8(0x10c)).toBe(0xff);
    expect(m.u32[0x100 >>> 2]).toBe(0x11223344);
  });

  it('read64 of 0x1_0000_0002 written as parts returns 4294967298', () => {
    const m = PhysMem.create(8192);
    m.write64Parts(0x200, 2, 1);
    expect(m.read64(0x200)).toBe(4294967298);
    expect(m.read32(0x200)).toBe(2);
    expect(m.read32(0x204)).toBe(1);
    expect(m.read64Hi(0x200)).toBe(1);
  });

  it('write64 splits into halves; max safe integer round-trips', () => {
    const m = PhysMem.create(8192);
    m.write64(0x10, 0x12_3456_789a);
    expect(m.read32(0x10)).toBe(0x3456789a);
    expect(m.read32(0x14)).toBe(0x12);
    m.write64(0x18, Number.MAX_SAFE_INTEGER);
    expect(m.read64(0x18)).toBe(Number.MAX_SAFE_INTEGER);
    expect(m.read64Hi(0x18)).toBe(0x1fffff);
  });

  it('read64 of a value >= 2^53 throws BAD_ARGUMENT; write64 rejects bad values, memory unchanged', () => {
    const m = PhysMem.create(8192);
    m.write64Parts(0x20, 0, 0x200000);
    expectCode(() => m.read64(0x20), 'BAD_ARGUMENT', /0x20/);
    expect(m.read64Hi(0x20)).toBe(0x200000);
    m.write64(0x28, 7);
    expectCode(() => m.write64(0x28, 2 ** 53), 'BAD_ARGUMENT', /9007199254740992/);
    expectCode(() => m.write64(0x28, -1), 'BAD_ARGUMENT', /-1/);
    expectCode(() => m.write64(0x28, 1.5), 'BAD_ARGUMENT');
    expect(m.read64(0x28)).toBe(7);
  });

  it('out-of-range access throws OUT_OF_RANGE naming the address and length', () => {
    const m = PhysMem.create(8192);
    expectCode(() => m.read8(8192), 'OUT_OF_RANGE', /1 byte\(s\) at PA 0x2000/);
    expectCode(() => m.read8(-1), 'OUT_OF_RANGE', /-0x1/);
    expectCode(() => m.read32(8192), 'OUT_OF_RANGE', /4 byte\(s\) at PA 0x2000/);
    expectCode(() => m.read64(8188), 'OUT_OF_RANGE');
    expectCode(() => m.write32(8192, 1), 'OUT_OF_RANGE');
    expectCode(() => m.write64(8192, 1), 'OUT_OF_RANGE');
    expectCode(() => m.readBytes(8190, 4), 'OUT_OF_RANGE', /4 byte\(s\) at PA 0x1ffe/);
    expectCode(() => m.writeBytes(8190, new Uint8Array(4)), 'OUT_OF_RANGE');
    expectCode(() => m.fill(8000, 200), 'OUT_OF_RANGE');
    expectCode(() => m.copy(0, 8000, 200), 'OUT_OF_RANGE', /source/);
    expectCode(() => m.copy(8000, 0, 200), 'OUT_OF_RANGE', /destination/);
    expectCode(() => m.read8(1.5), 'OUT_OF_RANGE');
    expectCode(() => m.readBytes(0, -1), 'BAD_ARGUMENT');
    // nothing was written
    expect(m.u8.every((b) => b === 0)).toBe(true);
  });

  it('misaligned access throws MISALIGNED', () => {
    const m = PhysMem.create(8192);
    expectCode(() => m.read32(2), 'MISALIGNED', /PA 0x2 is not 4-byte aligned/);
    expectCode(() => m.write32(1, 5), 'MISALIGNED');
    expectCode(() => m.read64(4), 'MISALIGNED', /8-byte/);
    expectCode(() => m.write64(4, 5), 'MISALIGNED');
    expectCode(() => m.write64Parts(12, 1, 2), 'MISALIGNED');
    expectCode(() => m.read64Hi(4), 'MISALIGNED');
    expect(m.u8.every((b) => b === 0)).toBe(true);
  });

  it('readBytes copies, writeBytes, copy with overlap, fill, inRange', () => {
    const m = PhysMem.create(8192);
    m.writeBytes(10, new Uint8Array([1, 2, 3, 4, 5]));
    const r = m.readBytes(10, 5);
    expect([...r]).toEqual([1, 2, 3, 4, 5]);
    r[0] = 99;
    expect(m.read8(10)).toBe(1); // a copy
    expect(r.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    m.copy(12, 10, 5); // overlapping forward copy
    expect([...m.readBytes(10, 7)]).toEqual([1, 2, 1, 2, 3, 4, 5]);
    m.fill(100, 3, 0x7f);
    expect([...m.readBytes(99, 5)]).toEqual([0, 0x7f, 0x7f, 0x7f, 0]);
    m.fill(100, 3);
    expect([...m.readBytes(100, 3)]).toEqual([0, 0, 0]);
    expect(m.inRange(0, 8192)).toBe(true);
    expect(m.inRange(8192, 0)).toBe(true);
    expect(m.inRange(8191, 2)).toBe(false);
    expect(m.inRange(-1, 1)).toBe(false);
    expect(m.inRange(0.5, 1)).toBe(false);
  });

  it('attach sees the same bytes and the same allocator', () => {
    const m = PhysMem.create(16 * 4096);
    const m2 = PhysMem.attach(m.handle);
    m.write32(0x40, 0xdeadbeef);
    expect(m2.read32(0x40)).toBe(0xdeadbeef);
    const pa = m2.allocFrame();
    expect(m.isAllocated(pa)).toBe(true);
    expect(m.freeFrameCount).toBe(14);
    m.freeFrames(pa);
    expect(m2.freeFrameCount).toBe(15);
  });
});
