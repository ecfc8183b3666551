/**
 * Pinned-memory accounting against RLIMIT_MEMLOCK, as drivers/iommu/iommufd/pages.c does it.
 *
 * Kernel facts this file follows (drivers/iommu/iommufd/pages.c, mm/util.c; paraphrased):
 * - Every iopt_pages object gets an account mode when it is created: IOPT_PAGES_ACCOUNT_NONE if
 *   the creating task has CAP_IPC_LOCK, otherwise IOPT_PAGES_ACCOUNT_USER; when the iommufd
 *   context's IOMMU_OPTION_RLIMIT_MODE is 1 (the VFIO-compatible per-process mode) a USER mode is
 *   upgraded to IOPT_PAGES_ACCOUNT_MM (io_pagetable.c, iopt_map_common). The mode then stays fixed
 *   for the life of the pages object. {@link pagesAccountMode} computes it.
 * - do_update_pinned(): the charge is done after pinning, for the number of newly pinned pages.
 *   USER mode (incr_user_locked_vm, "the io_uring method"): the limit is
 *   `rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT` of the source task; if `user->locked_vm + npages`
 *   exceeds it the charge fails with -ENOMEM, else user->locked_vm grows (a cmpxchg loop, so the
 *   check and the add are one step). The uncharge (decr_user_locked_vm) WARNs and does nothing if
 *   locked_vm is smaller than the amount, else subtracts.
 *   MM mode (update_mm_locked_vm, "compatibility with VFIO"): needs a live reference on the source
 *   mm (mmget_not_zero) else -EINVAL; then __account_locked_vm(mm, npages, inc, task,
 *   bypass_rlim=false): on increment ENOMEM if `mm->locked_vm + npages` exceeds the limit, else
 *   locked_vm grows; on decrement it shrinks (WARN if it would go below zero).
 *   NONE mode: no locked_vm accounting at all.
 * - Whatever the mode, once the locked_vm step succeeded, `mm->pinned_vm` (the /proc/<pid>/status
 *   VmPin line) of the source mm is increased / decreased by npages. So pinned_vm moves in NONE
 *   mode too; a failed charge changes nothing.
 * The selftest change_process relies on this: VmPin of the accounting process is 1 page in every
 * variant, VmLck only in the MM variant, and IOAS_CHANGE_PROCESS moves both to the new process.
 *
 * Units: every counter here is in pages (/proc shows them in kB = pages * 4).
 */
import { fail } from '../errors.js';
import { PAGE_SIZE } from '../uapi/u64.js';
import type { UserProcess } from './process.js';

/**
 * How pinned pages are charged (iommufd's IOPT_PAGES_ACCOUNT_NONE / _USER / _MM):
 * `'user'` charges the user's `locked_vm` (IOMMU_OPTION_RLIMIT_MODE 0, the default),
 * `'mm'` charges the process's `locked_vm` (RLIMIT_MODE 1, VFIO compatible), `'none'` skips the
 * locked_vm charge (a CAP_IPC_LOCK task). `pinned_vm` is updated in all three.
 */
export type RlimitMode = 'none' | 'user' | 'mm';

let nextUid = 1000;

/**
 * A user (uid): the owner of the per-user `locked_vm` counter that `'user'` accounting charges.
 * Processes of the same user (e.g. a parent and its forked child) share one account.
 */
export class MemlockAccount {
  /** The user's id (informational). */
  readonly uid: number;
  /** Pages charged to this user (`user_struct.locked_vm`). */
  lockedVm = 0;

  constructor(uid?: number) {
    this.uid = uid ?? nextUid++;
  }
}

/**
 * RLIMIT_MEMLOCK of `proc` in pages (`rlimit >> PAGE_SHIFT`; `Infinity` for RLIM_INFINITY).
 */
export function memlockLimitPages(proc: UserProcess): number {
  const lim = proc.memlockLimit;
  return lim === Infinity ? Infinity : Math.floor(lim / PAGE_SIZE);
}

/**
 * The account mode a new iopt_pages object gets (iopt_alloc_pages + iopt_map_common):
 * `'none'` if `proc` has CAP_IPC_LOCK, else `'mm'` when the context's RLIMIT_MODE is 1 (`ctxMode`
 * `'mm'`), else `'user'`. Compute it once per pages object and pass the result to both
 * {@link chargeMemlock} and {@link unchargeMemlock} to get the kernel's exact counter values.
 */
export function pagesAccountMode(ctxMode: RlimitMode, proc: UserProcess): RlimitMode {
  if (proc.capIpcLock || ctxMode === 'none') return 'none';
  return ctxMode;
}

/**
 * Charges `npages` newly pinned pages to `proc` (do_update_pinned with inc = true).
 * - `'user'`: `proc.account.lockedVm += npages`, ENOMEM if that exceeds the limit;
 * - `'mm'`: `proc.vmLocked += npages`, ENOMEM if that exceeds the limit; EINVAL if `proc` has exited
 *   (the kernel cannot take a reference on a dead mm);
 * - `'none'`: no locked_vm change;
 * then, in every mode, `proc.vmPinned += npages`. The mode is applied as given; a process with
 * `capIpcLock` is never refused (the kernel gives such a process mode NONE, see
 * {@link pagesAccountMode}). A failed charge changes nothing.
 * @throws IommufdError ENOMEM over RLIMIT_MEMLOCK; EINVAL for a bad `npages` or mode.
 */
export function chargeMemlock(mode: RlimitMode, proc: UserProcess, npages: number): void {
  checkNpages(npages, 'chargeMemlock');
  if (npages === 0) return;
  const limit = proc.capIpcLock ? Infinity : memlockLimitPages(proc);
  switch (mode) {
    case 'none':
      break;
    case 'user': {
      const acct = proc.account;
      if (acct.lockedVm + npages > limit) {
        fail(
          'ENOMEM',
          `chargeMemlock: user ${acct.uid} locked_vm ${acct.lockedVm} + ${npages} pages exceeds RLIMIT_MEMLOCK ` +
            `(${limit} pages) of pid ${proc.pid}`,
        );
      }
      acct.lockedVm += npages;
      break;
    }
    case 'mm':
      if (!proc.alive) fail('EINVAL', `chargeMemlock: pid ${proc.pid} has exited (no mm to charge)`);
      if (proc.vmLocked + npages > limit) {
        fail(
          'ENOMEM',
          `chargeMemlock: pid ${proc.pid} locked_vm ${proc.vmLocked} + ${npages} pages exceeds RLIMIT_MEMLOCK ` +
            `(${limit} pages)`,
        );
      }
      proc.vmLocked += npages;
      break;
    default:
      fail('EINVAL', `chargeMemlock: unknown mode ${String(mode)}`);
  }
  proc.vmPinned += npages;
}

/**
 * Reverses {@link chargeMemlock} (do_update_pinned with inc = false): `'user'` subtracts from
 * `proc.account.lockedVm` (skipped, as the kernel's WARN path, if it holds less), `'mm'` from
 * `proc.vmLocked`, then `proc.vmPinned -= npages`. For an exited process in `'mm'` mode nothing
 * changes (the kernel's update_mm_locked_vm gives up when the mm is gone). Never throws for a
 * valid `npages`.
 */
export function unchargeMemlock(mode: RlimitMode, proc: UserProcess, npages: number): void {
  checkNpages(npages, 'unchargeMemlock');
  if (npages === 0) return;
  switch (mode) {
    case 'none':
      break;
    case 'user': {
      const acct = proc.account;
      if (acct.lockedVm >= npages) acct.lockedVm -= npages;
      break;
    }
    case 'mm':
      if (!proc.alive) return;
      proc.vmLocked = Math.max(0, proc.vmLocked - npages);
      break;
    default:
      fail('EINVAL', `unchargeMemlock: unknown mode ${String(mode)}`);
  }
  proc.vmPinned -= npages;
}

function checkNpages(npages: number, what: string): void {
  if (!Number.isSafeInteger(npages) || npages < 0) fail('EINVAL', `${what}: npages ${String(npages)} is not a count`);
}
