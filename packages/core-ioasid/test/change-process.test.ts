/**
 * FIXTURE change_process (tools/testing/selftests/iommu/iommufd.c) with its three variants over a
 * hw-mock device: the setup drops CAP_IPC_LOCK, sets IOMMU_OPTION_RLIMIT_MODE for the user / mm
 * variants (account_none leaves the option alone, as the kernel fixture does, so it charges like
 * the default), allocates an IOAS and attaches a mock device (so maps are pinned at once).
 *
 * `basic`: with a plain MAP present CHANGE_PROCESS is EINVAL; with only a MAP_FILE it works in the
 * current process; in a forked child it works and moves VmPin (and VmLck in mm mode) of the one
 * pinned page from the parent to the child. Counters are in pages (/proc shows 4 kB per page).
 *
 * Model extras: a CAP_IPC_LOCK process (IOPT_PAGES_ACCOUNT_NONE proper) moves only VmPin; a child
 * whose RLIMIT_MEMLOCK cannot take the page (mm mode) gets ENOMEM and nothing moves.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_OPTION_OP_SET, IOMMU_OPTION_RLIMIT_MODE } from '../src/uapi/constants.js';
import type { Memfd } from '../src/user-memory/memfd.js';
import type { UserProcess } from '../src/user-memory/process.js';
import { expectErrno, MOCK_APERTURE_START, PAGE_SIZE, RW } from './fixture.js';
import { dma, newMemfd, openMockSelf, teardownMock, type MockSelf } from './mock-fixture.js';

type Accounting = 'none' | 'user' | 'mm';

const VARIANTS: { name: string; accounting: Accounting }[] = [
  { name: 'account_none', accounting: 'none' },
  { name: 'account_user', accounting: 'user' },
  { name: 'account_mm', accounting: 'mm' },
];

describe.each(VARIANTS)('FIXTURE change_process ($name)', (variant) => {
  let self: MockSelf;
  let ioasId: number;
  let mfd: Memfd;
  let children: UserProcess[];
  let stdevId: number;

  beforeEach(async () => {
    self = await openMockSelf();
    // drop_cap_ipc_lock()
    self.proc.capIpcLock = false;
    if (variant.accounting !== 'none') {
      await self.fd.option({ optionId: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_SET, objectId: 0, val64: variant.accounting === 'mm' ? 1 : 0 });
    }
    ioasId = (await self.fd.ioasAlloc()).outIoasId;
    stdevId = (await self.mock.mockDomain(ioasId)).outStdevId;
    mfd = newMemfd(self, 16 * PAGE_SIZE);
    mfd.write(0, new Uint8Array(PAGE_SIZE).fill(0x3c));
    children = [];
  });
  afterEach(async () => {
    self.fd.setCurrentProcess(self.proc);
    for (const c of children) c.exit(); // waitpid
    await teardownMock(self);
  });

  /** VmPin / VmLck of a process, in pages. */
  function vm(p: UserProcess): { pin: number; lck: number } {
    return { pin: p.vmPinned, lck: p.vmLocked };
  }
  const mmLck = (n: number): number => (variant.accounting === 'mm' ? n : 0);

  it('basic', async () => {
    const parent = self.proc;

    // Expect failure if non-file maps exist
    const { iova } = await self.fd.ioasMap({ flags: RW, ioasId, userVa: self.buffer, length: PAGE_SIZE });
    expect(vm(parent)).toEqual({ pin: 1, lck: mmLck(1) });
    await expectErrno('EINVAL', self.fd.ioasChangeProcess());
    expect(vm(parent)).toEqual({ pin: 1, lck: mmLck(1) });
    await self.fd.ioasUnmap({ ioasId, iova, length: PAGE_SIZE });
    expect(vm(parent)).toEqual({ pin: 0, lck: 0 });

    // Change process works in current process.
    const f = await self.fd.ioasMapFile({ flags: RW, ioasId, fd: mfd, start: 0, length: PAGE_SIZE });
    await self.fd.ioasChangeProcess();
    expect(vm(parent)).toEqual({ pin: 1, lck: mmLck(1) });
    expect(parent.account.lockedVm).toBe(variant.accounting === 'mm' ? 0 : 1);

    // Change process works in another process.
    const child = parent.fork();
    children.push(child);
    self.fd.setCurrentProcess(child);
    // Parent accounts for locked memory before
    expect(vm(parent)).toEqual({ pin: 1, lck: mmLck(1) });
    expect(vm(child)).toEqual({ pin: 0, lck: 0 });
    // New process accounts for locked memory after
    await self.fd.ioasChangeProcess();
    expect(vm(child)).toEqual({ pin: 1, lck: mmLck(1) });
    expect(vm(parent)).toEqual({ pin: 0, lck: 0 });
    // The same user: its locked_vm (user mode) neither grew nor shrank.
    expect(parent.account.lockedVm).toBe(variant.accounting === 'mm' ? 0 : 1);
    await self.fd.ioasChangeProcess();
    expect(vm(child)).toEqual({ pin: 1, lck: mmLck(1) });

    // The mapping itself never moved: the device still reads the memfd page.
    const r = await dma(self, self.mock.deviceOf(stdevId).dev.rid, f.iova);
    expect(r.ok).toBe(true);
    expect(self.mem.u8[r.pa]).toBe(0x3c);

    // The child exits (waitpid); the parent's teardown closes the fd: the parent stays at 0 and
    // the user's locked_vm goes back to 0 (checked by teardownMock).
    child.exit();
    expect(vm(parent)).toEqual({ pin: 0, lck: 0 });
  });

  it('a failed CHANGE_PROCESS (RLIMIT_MEMLOCK) moves nothing', async () => {
    const parent = self.proc;
    await self.fd.ioasMapFile({ flags: RW, ioasId, fd: mfd, start: 0, length: 2 * PAGE_SIZE, iova: MOCK_APERTURE_START });
    const child = parent.fork();
    children.push(child);
    child.memlockLimit = PAGE_SIZE; // room for 1 of the 2 pinned pages
    self.fd.setCurrentProcess(child);
    const before = { parent: vm(parent), child: vm(child), user: parent.account.lockedVm };
    await expectErrno('ENOMEM', self.fd.ioasChangeProcess());
    expect({ parent: vm(parent), child: vm(child), user: parent.account.lockedVm }).toEqual(before);
    expect(vm(parent)).toEqual({ pin: 2, lck: mmLck(2) });
    self.fd.setCurrentProcess(parent);
  });
});

describe('change_process with CAP_IPC_LOCK (IOPT_PAGES_ACCOUNT_NONE)', () => {
  it('moves VmPin only', async () => {
    const self = await openMockSelf();
    self.proc.capIpcLock = true;
    await self.fd.option({ optionId: IOMMU_OPTION_RLIMIT_MODE, op: IOMMU_OPTION_OP_SET, objectId: 0, val64: 1 });
    const ioasId = (await self.fd.ioasAlloc()).outIoasId;
    await self.mock.mockDomain(ioasId);
    const mfd = newMemfd(self, 4 * PAGE_SIZE);
    await self.fd.ioasMapFile({ flags: RW | IOMMU_IOAS_MAP_FIXED_IOVA, ioasId, fd: mfd, start: 0, length: PAGE_SIZE, iova: MOCK_APERTURE_START });
    expect([self.proc.vmPinned, self.proc.vmLocked, self.proc.account.lockedVm]).toEqual([1, 0, 0]);
    const child = self.proc.fork();
    self.fd.setCurrentProcess(child);
    await self.fd.ioasChangeProcess();
    expect([child.vmPinned, child.vmLocked, child.account.lockedVm]).toEqual([1, 0, 0]);
    expect([self.proc.vmPinned, self.proc.vmLocked]).toEqual([0, 0]);
    self.fd.setCurrentProcess(self.proc);
    child.exit();
    await teardownMock(self);
  });
});
