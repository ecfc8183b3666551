/**
 * Fault injection at allocation points, the model's counterpart of the kernel's fail_nth
 * (/proc/self/task/<tid>/fail-nth; Documentation/fault-injection) that
 * tools/testing/selftests/iommu/iommufd_fail_nth.c sweeps: writing n makes the n-th fault-injectable
 * allocation (kmalloc, xa_alloc, page allocation, pin_user_pages, ...) the task reaches fail with
 * -ENOMEM; reading it back tells whether the failure was consumed.
 *
 * Design (kept small on purpose):
 * - Every context has one injector, `ctx.failNth` ({@link FailNth}). `arm(n)` makes the n-th
 *   allocation point reached from now on throw `IommufdError('ENOMEM')`; `disarm()` stops counting
 *   and returns how many points were reached (a result `< n` means the run completed without the
 *   failure: the sweep is over).
 * - Like the kernel's, the counter belongs to the calling *task*, not to one fd: while an injector
 *   is armed it is the task-wide one ({@link armedInjector}), and every allocation point counts
 *   into it whichever context reached it. At most one injector may be armed at a time.
 * - Code that has a context calls {@link failpoint}(ctx, site). Code without one (io_pagetable,
 *   pages, domain mapping) calls `failpoint(null, site)`: it counts into the armed injector too.
 * - The user-memory model (src/user-memory) knows nothing about iommufd: it exposes a plain hook
 *   (`setUserMemoryFaultHook` in user-memory/frames.ts) that it calls at each pin call and frame
 *   allocation; arming installs the injector there, disarming removes it.
 * - A failpoint sits *before* the allocation it stands for changes anything, so the code's
 *   existing error paths are what gets exercised (a driver call that "fails with ENOMEM" fails
 *   before the driver is entered).
 *
 * Sites (the `site` strings; {@link FailNth.sites} records the ones reached while armed):
 * `object.alloc` (constructing an object: `iommufd_object_alloc`'s kzalloc), `object.id_alloc`
 * (ObjectTable.alloc: its xa_alloc),
 * `iopt.pages_alloc` (a new IoptPages), `iopt.area_alloc` (a new IoptArea), `iopt.pages_list`
 * (COPY's `iopt_pages_list` element), `iopt.allowed_alloc` / `iopt.reserved_alloc` (interval
 * nodes), `iopt.access_add` (an ACCESS joining an IOAS), `pages.pin` (the pfn batch / xarray of
 * `iopt_pages`), `user.pin` (one pin_user_pages / memfd_pin_folios call), `user.frame_alloc`
 * (populating pages from PhysMem), `driver.domain_alloc` / `driver.domain_alloc_nested` (the
 * IOMMU driver allocating a domain), `driver.map_pages` (one `map_pages` call into the driver),
 * `device.bind` (`iommufd_device_bind`'s allocations), `selftest.access_item` (the selftest's
 * access-pages item), `selftest.access_pages` (the selftest's pages array).
 */
import type { IommufdCtx } from './context.js';
import { IommufdError } from './errors.js';
import { setUserMemoryFaultHook } from './user-memory/frames.js';

/** The injector armed for the calling task, if any. */
let armed: FailNth | null = null;

/** A fail_nth injector (one per context: `ctx.failNth`). */
export class FailNth {
  private nth = 0;
  private reached = 0;
  private hitSite: string | null = null;
  /** Sites reached since the last {@link arm}, in order (diagnostics). */
  readonly sites: string[] = [];

  /** True between {@link arm} and {@link disarm}. */
  get isArmed(): boolean {
    return armed === this;
  }

  /** The site that failed since the last {@link arm}, or null (not reached yet). */
  get failedSite(): string | null {
    return this.hitSite;
  }

  /** Allocation points reached since the last {@link arm}. */
  get count(): number {
    return this.reached;
  }

  /**
   * Makes the `n`-th allocation point reached from now on (1-based) throw ENOMEM; the points
   * after it succeed again (the kernel's fail-nth fires once). Throws if another injector is armed.
   */
  arm(n: number): void {
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`FailNth.arm: n must be a positive integer, got ${n}`);
    if (armed !== null && armed !== this) throw new Error('FailNth.arm: another injector is armed (fail_nth is per task)');
    this.nth = n;
    this.reached = 0;
    this.hitSite = null;
    this.sites.length = 0;
    armed = this;
    setUserMemoryFaultHook(userMemoryHook);
  }

  /** Stops injecting; returns how many allocation points were reached since {@link arm}. */
  disarm(): number {
    if (armed === this) {
      armed = null;
      setUserMemoryFaultHook(null);
    }
    return this.reached;
  }

  /** @internal one allocation point reached. */
  hit(site: string): void {
    this.reached++;
    this.sites.push(site);
    if (this.reached === this.nth) {
      this.hitSite = site;
      throw new IommufdError('ENOMEM', `fail_nth: injected allocation failure #${this.nth} at ${site}`);
    }
  }
}

function userMemoryHook(site: string): void {
  armed?.hit(site);
}

/** The injector armed for the calling task (null when fault injection is off). */
export function armedInjector(): FailNth | null {
  return armed;
}

/**
 * An allocation point: throws `ENOMEM` when it is the armed n-th one. `ctx` is the context of the
 * call when the code has one, else null; either way the point counts into the task's armed
 * injector (see the module comment). Costs one null check when nothing is armed.
 */
export function failpoint(ctx: IommufdCtx | null, site: string): void {
  void ctx;
  if (armed !== null) armed.hit(site);
}
