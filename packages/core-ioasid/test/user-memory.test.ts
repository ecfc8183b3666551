import { describe, it, expect } from 'vitest';
import { PhysMem } from '@iommulab/runtime';
import {
  UserProcess,
  Memfd,
  MemlockAccount,
  chargeMemlock,
  unchargeMemlock,
  pagesAccountMode,
  MMAP_BASE,
  TASK_SIZE,
} from '../src/user-memory/index.js';
import { IommufdError } from '../src/errors.js';

const P = 4096;
const MiB2 = 2 * 1024 * 1024;

function errno(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof IommufdError) return e.errno;
    throw e;
  }
  return 'no error';
}

function setup(bytes = 64 * 1024 * 1024): { mem: PhysMem; p: UserProcess; free0: number } {
  const mem = PhysMem.create(bytes);
  const p = UserProcess.create({ mem });
  return { mem, p, free0: mem.freeFrameCount };
}

const bytes = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);

describe('address space', () => {
  it('mmap reserves VA only, top-down from MMAP_BASE, page aligned', () => {
    const { mem, p, free0 } = setup();
    const a = p.mmap({ length: 4 * P });
    expect(a).toBe(MMAP_BASE - 4 * P);
    const b = p.mmap({ length: 100 }); // rounded up to one page
    expect(b).toBe(a - P);
    expect(mem.freeFrameCount).toBe(free0);
    expect(p.mappingCount).toBe(2);
    expect(a + 4 * P).toBeLessThan(TASK_SIZE);
  });

  it('hugeAlign gives 2 MiB aligned addresses', () => {
    const { p } = setup();
    p.mmap({ length: P });
    const a = p.mmap({ length: 16 * P, hugeAlign: MiB2 });
    expect(a % MiB2).toBe(0);
    expect(a).toBe(MMAP_BASE - MiB2);
    expect(errno(() => p.mmap({ length: P, hugeAlign: 3 * P }))).toBe('EINVAL');
  });

  it('first touch allocates one zeroed frame per page; read/write round trip across pages', () => {
    const { mem, p, free0 } = setup();
    const a = p.mmap({ length: 4 * P });
    expect(p.read(a + P, 8)).toEqual(new Uint8Array(8));
    expect(mem.freeFrameCount).toBe(free0 - 1);
    const data = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    p.write(a + 2 * P - 100, data);
    expect(mem.freeFrameCount).toBe(free0 - 2);
    expect(p.read(a + 2 * P - 100, 300)).toEqual(data);
    expect(p.privatePages).toBe(2);
    p.munmap(a, 4 * P);
    expect(mem.freeFrameCount).toBe(free0);
    expect(p.mappingCount).toBe(0);
  });

  it('munmap of the middle splits the mapping and keeps the rest', () => {
    const { mem, p, free0 } = setup();
    const a = p.mmap({ length: 3 * P });
    p.write(a, bytes(3 * P, 7));
    p.munmap(a + P, P);
    expect(p.mappingCount).toBe(2);
    expect(mem.freeFrameCount).toBe(free0 - 2);
    expect(p.read(a, 1)[0]).toBe(7);
    expect(p.read(a + 2 * P, 1)[0]).toBe(7);
    expect(errno(() => p.read(a + P, 1))).toBe('EFAULT');
    // unmapping holes is fine
    p.munmap(a - 10 * P, 20 * P);
    expect(mem.freeFrameCount).toBe(free0);
  });

  it('mprotect splits and changes protection; a CPU write to read-only is EFAULT', () => {
    const { p } = setup();
    const a = p.mmap({ length: 3 * P });
    p.mprotect(a + P, P, 'r');
    expect(p.mappingCount).toBe(3);
    expect(errno(() => p.write(a + P, bytes(1, 1)))).toBe('EFAULT');
    // a write straddling into the read-only page writes nothing
    expect(errno(() => p.write(a + P - 2, bytes(4, 9)))).toBe('EFAULT');
    expect(p.read(a + P - 2, 2)).toEqual(new Uint8Array(2));
    p.write(a, bytes(1, 1));
    p.write(a + 2 * P, bytes(1, 1));
    p.mprotect(a, 3 * P, 'rw');
    p.write(a + P, bytes(1, 5));
    expect(p.read(a + P, 1)[0]).toBe(5);
  });

  it('bad input is EINVAL (or the Linux errno) and changes nothing', () => {
    const { p } = setup();
    const a = p.mmap({ length: 4 * P });
    expect(errno(() => p.munmap(a + 1, P))).toBe('EINVAL');
    expect(errno(() => p.munmap(a, 0))).toBe('EINVAL');
    expect(errno(() => p.munmap(a, -P))).toBe('EINVAL');
    expect(errno(() => p.mprotect(a + 8, P, 'r'))).toBe('EINVAL');
    expect(errno(() => p.mprotect(a, -1, 'r'))).toBe('EINVAL');
    expect(errno(() => p.mprotect(a, P, 'x' as never))).toBe('EINVAL');
    expect(errno(() => p.mmap({ length: 0 }))).toBe('EINVAL');
    expect(errno(() => p.mmap({ length: -5 }))).toBe('EINVAL');
    expect(errno(() => p.mmap({ length: P, addr: a + 3 * P }))).toBe('EINVAL'); // overlaps
    expect(errno(() => p.mmap({ length: P, addr: a + 3 }))).toBe('EINVAL');
    expect(errno(() => p.mmap({ length: P, prot: 'w' as never }))).toBe('EINVAL');
    expect(errno(() => p.mmap({ length: P, addr: 0 }))).toBe('EPERM');
    // mprotect over a hole: ENOMEM, nothing changed
    expect(errno(() => p.mprotect(a - P, 2 * P, 'r'))).toBe('ENOMEM');
    expect(p.mappingCount).toBe(1);
    p.write(a, bytes(1, 1));
    expect(p.mprotect(a, 0, 'r')).toBeUndefined();
    expect(p.mappingCount).toBe(1);
  });

  it('fixed mmap lands exactly where asked when free', () => {
    const { p } = setup();
    const addr = 0x1000_0000;
    expect(p.mmap({ length: 2 * P, addr })).toBe(addr);
    expect(p.mmap({ length: P, addr: addr + 2 * P })).toBe(addr + 2 * P);
    p.write(addr + 2 * P - 1, bytes(2, 3)); // across the two adjacent mappings
    expect(p.read(addr + 2 * P - 1, 2)).toEqual(bytes(2, 3));
  });

  it('translate returns the PA of the byte', () => {
    const { mem, p } = setup();
    const a = p.mmap({ length: P });
    p.write(a + 10, bytes(1, 0xab));
    const pa = p.translate(a + 10);
    expect(mem.read8(pa)).toBe(0xab);
    expect(errno(() => p.translate(a + P))).toBe('EFAULT');
  });
});

describe('pinning', () => {
  it('pin populates, counts per page exactly, unpin releases', () => {
    const { mem, p, free0 } = setup();
    const a = p.mmap({ length: 4 * P });
    const pas = p.pin(a, 4, true);
    expect(pas).toBeInstanceOf(Float64Array);
    expect(pas.length).toBe(4);
    expect(mem.freeFrameCount).toBe(free0 - 4);
    expect(new Set(pas).size).toBe(4);
    for (const pa of pas) expect(pa % P).toBe(0);
    const again = p.pin(a + P, 2, false);
    expect(Array.from(again)).toEqual([pas[1], pas[2]]);
    expect([0, 1, 2, 3].map((i) => p.pinCount(a + i * P))).toEqual([1, 2, 2, 1]);
    p.unpin(again);
    expect([0, 1, 2, 3].map((i) => p.pinCount(a + i * P))).toEqual([1, 1, 1, 1]);
    p.unpin(pas);
    expect([0, 1, 2, 3].map((i) => p.pinCount(a + i * P))).toEqual([0, 0, 0, 0]);
    expect(mem.freeFrameCount).toBe(free0 - 4); // still mapped
    p.munmap(a, 4 * P);
    expect(mem.freeFrameCount).toBe(free0);
  });

  it('pinned pages see CPU writes and vice versa (same frame)', () => {
    const { mem, p } = setup();
    const a = p.mmap({ length: 2 * P });
    const [pa0, pa1] = p.pin(a, 2, true);
    p.write(a + P + 5, bytes(1, 0x5a));
    expect(mem.read8(pa1 + 5)).toBe(0x5a);
    mem.write8(pa0 + 7, 0x11);
    expect(p.read(a + 7, 1)[0]).toBe(0x11);
  });

  it('munmap of a pinned page keeps the frame until unpinned', () => {
    const { mem, p, free0 } = setup();
    const a = p.mmap({ length: 2 * P });
    p.write(a, bytes(2 * P, 0x42));
    const pas = p.pin(a, 2, true);
    p.munmap(a, 2 * P);
    expect(mem.freeFrameCount).toBe(free0 - 2);
    expect(mem.isAllocated(pas[0])).toBe(true);
    expect(mem.read8(pas[1] + 100)).toBe(0x42);
    p.unpin(pas.subarray(0, 1));
    expect(mem.freeFrameCount).toBe(free0 - 1);
    expect(mem.isAllocated(pas[0])).toBe(false);
    p.unpin(pas.subarray(1));
    expect(mem.freeFrameCount).toBe(free0);
  });

  it('EFAULT if any page is unmapped (second half / first half), nothing pinned', () => {
    const { mem, p, free0 } = setup();
    const a = p.mmap({ length: 8 * P });
    p.munmap(a + 4 * P, 4 * P);
    expect(errno(() => p.pin(a, 8, true))).toBe('EFAULT');
    expect([0, 1, 2, 3].map((i) => p.pinCount(a + i * P))).toEqual([0, 0, 0, 0]);
    expect(mem.freeFrameCount).toBe(free0);
    p.munmap(a, 4 * P);
    expect(errno(() => p.pin(a, 8, true))).toBe('EFAULT');
    expect(errno(() => p.pin(a, 1, false))).toBe('EFAULT');
    expect(mem.freeFrameCount).toBe(free0);
  });

  it('writable pin of a read-only mapping is EPERM; read pin works', () => {
    const { p } = setup();
    const a = p.mmap({ length: 2 * P, prot: 'r' });
    expect(errno(() => p.pin(a, 2, true))).toBe('EPERM');
    expect(p.pinCount(a)).toBe(0);
    const pas = p.pin(a, 2, false);
    expect(p.pinCount(a)).toBe(1);
    p.unpin(pas);
    const b = p.mmap({ length: 2 * P });
    p.mprotect(b + P, P, 'r');
    expect(errno(() => p.pin(b, 2, true))).toBe('EPERM');
    expect(p.pinCount(b)).toBe(0);
  });

  it('unpin of a PA that is not pinned is EINVAL and changes nothing', () => {
    const { p } = setup();
    const a = p.mmap({ length: 2 * P });
    const pas = p.pin(a, 2, true);
    expect(errno(() => p.unpin([pas[0], pas[1], pas[1]]))).toBe('EINVAL');
    expect(p.pinCount(a)).toBe(1);
    expect(p.pinCount(a + P)).toBe(1);
    expect(errno(() => p.unpin([123]))).toBe('EINVAL');
    p.unpin(pas);
    expect(p.pinCount(a)).toBe(0);
  });

  it('a fully 2 MiB-aligned run is backed by a 2 MiB-aligned contiguous PA run', () => {
    const { p } = setup();
    const a = p.mmap({ length: MiB2, hugeAlign: MiB2 });
    const pas = p.pin(a, 512, true);
    expect(pas[0] % MiB2).toBe(0);
    for (let i = 1; i < 512; i++) expect(pas[i]).toBe(pas[0] + i * P);
  });

  it('ENOMEM when physical memory runs out: nothing stays pinned', () => {
    const mem = PhysMem.create(64 * P); // 63 usable frames
    const p = UserProcess.create({ mem });
    const free0 = mem.freeFrameCount;
    const a = p.mmap({ length: 100 * P });
    expect(errno(() => p.pin(a, 100, true))).toBe('ENOMEM');
    for (let i = 0; i < 100; i++) expect(p.pinCount(a + i * P)).toBe(0);
    p.munmap(a, 100 * P);
    expect(mem.freeFrameCount).toBe(free0);
  });
});

describe('fork and exit', () => {
  it('private anonymous pages are independent after fork (copied eagerly)', () => {
    const { mem, p, free0 } = setup();
    const a = p.mmap({ length: 2 * P });
    p.write(a, bytes(1, 1)); // one populated page
    const c = p.fork();
    expect(c.pid).not.toBe(p.pid);
    expect(c.account).toBe(p.account);
    expect(mem.freeFrameCount).toBe(free0 - 2); // the parent's page + the child's copy
    expect(c.read(a, 1)[0]).toBe(1);
    c.write(a, bytes(1, 2));
    expect(p.read(a, 1)[0]).toBe(1);
    p.write(a + P, bytes(1, 3));
    expect(c.read(a + P, 1)[0]).toBe(0);
    expect(c.translate(a)).not.toBe(p.translate(a));
    c.exit();
    p.exit();
    expect(mem.freeFrameCount).toBe(free0);
  });

  it('MAP_SHARED anonymous pages stay shared across fork', () => {
    const { mem, p, free0 } = setup();
    const a = p.mmap({ length: 2 * P, shared: true });
    const c = p.fork();
    c.write(a + P, bytes(1, 9));
    expect(p.read(a + P, 1)[0]).toBe(9);
    p.write(a, bytes(1, 8));
    expect(c.read(a, 1)[0]).toBe(8);
    expect(c.translate(a)).toBe(p.translate(a));
    c.exit();
    expect(p.read(a + P, 1)[0]).toBe(9); // the parent's mapping still holds the object
    p.munmap(a, 2 * P);
    expect(mem.freeFrameCount).toBe(free0);
  });

  it('pins are not inherited; counters start at 0 in the child', () => {
    const { p } = setup();
    const a = p.mmap({ length: P });
    const pas = p.pin(a, 1, true);
    p.vmPinned = 1;
    const c = p.fork();
    expect(p.pinCount(a)).toBe(1);
    expect(c.pinCount(a)).toBe(0);
    expect(c.vmPinned).toBe(0);
    expect(c.vmLocked).toBe(0);
    // the child's copy is a different frame with the same contents
    expect(c.translate(a)).not.toBe(pas[0]);
    p.unpin(pas);
  });

  it('exit frees private pages unless pinned; pin after exit is EFAULT', () => {
    const { mem, p, free0 } = setup();
    const c = p.fork();
    const a = c.mmap({ length: 4 * P });
    c.write(a, bytes(4 * P, 0x77));
    const pas = c.pin(a, 2, true);
    c.exit();
    expect(c.alive).toBe(false);
    expect(mem.freeFrameCount).toBe(free0 - 2);
    expect(mem.read8(pas[1] + 4000)).toBe(0x77); // pinned pages stay usable (fork_gone)
    expect(errno(() => c.pin(a, 1, false))).toBe('EFAULT');
    expect(errno(() => c.read(a, 1))).toBe('EFAULT');
    expect(errno(() => c.mmap({ length: P }))).toBe('ESRCH');
    c.exit(); // idempotent
    c.unpin(pas);
    expect(mem.freeFrameCount).toBe(free0);
  });
});

describe('Memfd', () => {
  it('read/write/size; holes read as zeros without allocating', () => {
    const mem = PhysMem.create(16 * 1024 * 1024);
    const free0 = mem.freeFrameCount;
    const m = Memfd.create(mem, 3 * P);
    expect(m.size).toBe(3 * P);
    expect(m.read(P, 16)).toEqual(new Uint8Array(16));
    expect(mem.freeFrameCount).toBe(free0);
    m.write(P - 2, Uint8Array.of(1, 2, 3, 4));
    expect(mem.freeFrameCount).toBe(free0 - 2);
    expect(m.read(P - 2, 4)).toEqual(Uint8Array.of(1, 2, 3, 4));
    expect(m.read(3 * P - 2, 10).length).toBe(2); // short read at EOF
    m.write(4 * P, Uint8Array.of(5)); // extends
    expect(m.size).toBe(4 * P + 1);
    m.close();
    expect(mem.freeFrameCount).toBe(free0);
    expect(errno(() => m.read(0, 1))).toBe('EBADF');
  });

  it('pin: beyond EOF is EINVAL; the partial last page is pinnable; exact counts', () => {
    const mem = PhysMem.create(16 * 1024 * 1024);
    const m = Memfd.create(mem, 2 * P + 1);
    expect(errno(() => m.pin(0, 4, true))).toBe('EINVAL');
    expect(errno(() => m.pin(3 * P, 1, true))).toBe('EINVAL');
    const pas = m.pin(0, 3, true);
    expect(pas.length).toBe(3);
    m.pin(P, 1, false);
    expect([0, P, 2 * P].map((o) => m.pinCount(o))).toEqual([1, 2, 1]);
    m.unpin([pas[1]]);
    expect(m.pinCount(P)).toBe(1);
  });

  it('truncate below a pinned range keeps the pinned frames alive until unpinned', () => {
    const mem = PhysMem.create(16 * 1024 * 1024);
    const free0 = mem.freeFrameCount;
    const m = Memfd.create(mem, 4 * P);
    m.write(0, bytes(4 * P, 0x33));
    const pas = m.pin(2 * P, 2, true);
    m.truncate(P + 10);
    expect(m.size).toBe(P + 10);
    expect(mem.freeFrameCount).toBe(free0 - 4); // 2 in the file + 2 only pinned
    expect(mem.read8(pas[0])).toBe(0x33);
    expect(m.read(P + 5, 10).length).toBe(5);
    expect(errno(() => m.pin(2 * P, 1, true))).toBe('EINVAL');
    m.truncate(4 * P);
    expect(m.read(2 * P, 4)).toEqual(new Uint8Array(4)); // a new hole, not the pinned page
    expect(m.read(P + 10, 2)).toEqual(new Uint8Array(2)); // tail of the partial page zeroed
    m.unpin(pas);
    expect(mem.freeFrameCount).toBe(free0 - 2);
    m.close();
    expect(mem.freeFrameCount).toBe(free0);
  });

  it('MAP_SHARED of a memfd shares its pages with the file', () => {
    const { mem, p, free0 } = setup();
    const m = Memfd.create(mem, 2 * P);
    const a = p.mmap({ length: 2 * P, file: m, shared: true });
    p.write(a + P, Uint8Array.of(0xee));
    expect(m.read(P, 1)[0]).toBe(0xee);
    m.write(0, Uint8Array.of(0xdd));
    expect(p.read(a, 1)[0]).toBe(0xdd);
    const viaProc = p.pin(a, 2, true);
    const viaFile = m.pin(0, 2, true);
    expect(Array.from(viaProc)).toEqual(Array.from(viaFile));
    expect(p.pinCount(a)).toBe(2);
    expect(m.pinCount(0)).toBe(2);
    p.unpin(viaProc);
    m.unpin(viaFile);
    // mapping past EOF: SIGBUS -> EFAULT
    m.truncate(P);
    expect(errno(() => p.read(a + P, 1))).toBe('EFAULT');
    expect(errno(() => p.pin(a, 2, false))).toBe('EFAULT');
    m.close();
    expect(p.read(a, 1)[0]).toBe(0xdd); // the mapping keeps the pages
    p.munmap(a, 2 * P);
    expect(mem.freeFrameCount).toBe(free0);
  });

  it('offset mappings and fork keep memfd mappings shared', () => {
    const { p } = setup();
    const m = Memfd.create(p.mem, 4 * P);
    const a = p.mmap({ length: 2 * P, file: m, shared: true, offset: 2 * P });
    const c = p.fork();
    c.write(a, Uint8Array.of(4));
    expect(m.read(2 * P, 1)[0]).toBe(4);
    expect(p.read(a, 1)[0]).toBe(4);
    expect(errno(() => p.mmap({ length: P, file: m, offset: 100 }))).toBe('EINVAL');
  });

  it('MAP_PRIVATE of a memfd is copy-on-write; a read-only pin of a writable private page unshares (ro_unshare)', () => {
    const { mem, p } = setup();
    const m = Memfd.create(mem, P);
    m.write(0, Uint8Array.of(1));
    const a = p.mmap({ length: P, file: m });
    expect(p.read(a, 1)[0]).toBe(1);
    const filePa = m.pin(0, 1, false)[0];
    expect(p.translate(a)).toBe(filePa); // reads the file page until written
    const [pa] = p.pin(a, 1, false);
    expect(pa).not.toBe(filePa); // unshared: a private copy was pinned
    expect(p.read(a, 1)[0]).toBe(1);
    p.write(a, bytes(P, 1));
    expect(p.translate(a)).toBe(pa); // the CPU write did not move the pinned page
    expect(m.read(0, 2)).toEqual(Uint8Array.of(1, 0)); // file unchanged
    m.write(0, Uint8Array.of(9));
    expect(p.read(a, 1)[0]).toBe(1); // private copy no longer follows the file
  });

  it('read-only private file mapping pins the file page itself', () => {
    const { mem, p } = setup();
    const m = Memfd.create(mem, P);
    const a = p.mmap({ length: P, file: m, prot: 'r' });
    const [pa] = p.pin(a, 1, false);
    const [fpa] = m.pin(0, 1, false);
    expect(pa).toBe(fpa);
    expect(m.pinCount(0)).toBe(2);
  });
});

describe('accounting (pages.c do_update_pinned)', () => {
  it("'user': charges the user's locked_vm against RLIMIT_MEMLOCK and the mm's pinned_vm", () => {
    const mem = PhysMem.create(4 * 1024 * 1024);
    const account = new MemlockAccount();
    const p = UserProcess.create({ mem, account, memlockLimit: 8 * P + 100 });
    const q = UserProcess.create({ mem, account, memlockLimit: 8 * P });
    chargeMemlock('user', p, 5);
    expect(account.lockedVm).toBe(5);
    expect(p.vmPinned).toBe(5);
    expect(p.vmLocked).toBe(0);
    expect(errno(() => chargeMemlock('user', q, 4))).toBe('ENOMEM'); // per user: 5 + 4 > 8
    expect(account.lockedVm).toBe(5);
    expect(q.vmPinned).toBe(0);
    chargeMemlock('user', q, 3);
    expect(account.lockedVm).toBe(8);
    expect(q.vmPinned).toBe(3);
    unchargeMemlock('user', p, 5);
    unchargeMemlock('user', q, 3);
    expect(account.lockedVm).toBe(0);
    expect(p.vmPinned).toBe(0);
    expect(q.vmPinned).toBe(0);
    // over-uncharge of locked_vm is ignored (the kernel WARNs), pinned_vm still moves
    q.vmPinned = 2;
    unchargeMemlock('user', q, 2);
    expect(account.lockedVm).toBe(0);
    expect(q.vmPinned).toBe(0);
  });

  it("'mm': charges the process's locked_vm and pinned_vm; EINVAL for an exited process", () => {
    const mem = PhysMem.create(4 * 1024 * 1024);
    const p = UserProcess.create({ mem, memlockLimit: 4 * P });
    chargeMemlock('mm', p, 4);
    expect(p.vmLocked).toBe(4);
    expect(p.vmPinned).toBe(4);
    expect(p.account.lockedVm).toBe(0);
    expect(errno(() => chargeMemlock('mm', p, 1))).toBe('ENOMEM');
    expect(p.vmLocked).toBe(4);
    expect(p.vmPinned).toBe(4);
    const c = p.fork(); // separate mm, separate locked_vm
    chargeMemlock('mm', c, 4);
    expect(c.vmLocked).toBe(4);
    unchargeMemlock('mm', p, 4);
    expect(p.vmLocked).toBe(0);
    expect(p.vmPinned).toBe(0);
    c.exit();
    expect(errno(() => chargeMemlock('mm', c, 1))).toBe('EINVAL');
    unchargeMemlock('mm', c, 4); // nothing to do on a dead mm
    expect(c.vmLocked).toBe(4);
  });

  it("'none': only pinned_vm moves", () => {
    const mem = PhysMem.create(4 * 1024 * 1024);
    const p = UserProcess.create({ mem, memlockLimit: 0 });
    chargeMemlock('none', p, 7);
    expect(p.vmPinned).toBe(7);
    expect(p.vmLocked).toBe(0);
    expect(p.account.lockedVm).toBe(0);
    unchargeMemlock('none', p, 7);
    expect(p.vmPinned).toBe(0);
  });

  it('CAP_IPC_LOCK: never refused; pagesAccountMode gives NONE like iopt_alloc_pages', () => {
    const mem = PhysMem.create(4 * 1024 * 1024);
    const p = UserProcess.create({ mem, memlockLimit: 0, capIpcLock: true });
    expect(pagesAccountMode('user', p)).toBe('none');
    expect(pagesAccountMode('mm', p)).toBe('none');
    chargeMemlock('user', p, 3);
    expect(p.account.lockedVm).toBe(3);
    unchargeMemlock('user', p, 3);
    const q = UserProcess.create({ mem, memlockLimit: 0 });
    expect(pagesAccountMode('user', q)).toBe('user');
    expect(pagesAccountMode('mm', q)).toBe('mm');
    expect(errno(() => chargeMemlock('user', q, 1))).toBe('ENOMEM');
    expect(errno(() => chargeMemlock('mm', q, 1))).toBe('ENOMEM');
    expect(q.vmPinned).toBe(0);
    chargeMemlock('user', q, 0); // no-op
    expect(errno(() => chargeMemlock('user', q, -1))).toBe('EINVAL');
  });

  it('change_process: moving a 1-page charge from parent to child', () => {
    const mem = PhysMem.create(4 * 1024 * 1024);
    for (const mode of ['user', 'mm'] as const) {
      const parent = UserProcess.create({ mem, memlockLimit: 64 * 1024 });
      chargeMemlock(mode, parent, 1);
      const child = parent.fork();
      expect(parent.vmPinned * 4).toBe(4); // VmPin: 4 kB
      expect(parent.vmLocked).toBe(mode === 'mm' ? 1 : 0);
      expect([child.vmPinned, child.vmLocked]).toEqual([0, 0]);
      chargeMemlock(mode, child, 1);
      unchargeMemlock(mode, parent, 1);
      expect([parent.vmPinned, parent.vmLocked]).toEqual([0, 0]);
      expect([child.vmPinned, child.vmLocked]).toEqual([1, mode === 'mm' ? 1 : 0]);
      expect(parent.account.lockedVm).toBe(mode === 'user' ? 1 : 0);
    }
  });
});
