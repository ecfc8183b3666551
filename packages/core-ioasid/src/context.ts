/**
 * IommufdCtx: the state of one open /dev/iommu (`struct iommufd_ctx`, drivers/iommu/iommufd/main.c):
 * the object table, the accounting mode (IOMMU_OPTION_RLIMIT_MODE), the VFIO compatibility IOAS and
 * the process issuing calls. Object modules (ioas.ts, hw-pagetable.ts, device.ts, ...) take it as
 * their first argument, as the kernel's handlers take `ucmd->ictx`.
 */
import type { PhysMem } from '@iommulab/runtime';
import { FailNth } from './fail-nth.js';
import { ObjectTable, type IommufdObject } from './object-table.js';
import type { RlimitMode } from './user-memory/accounting.js';
import type { UserProcess } from './user-memory/process.js';

/** The context of one open iommufd. */
export class IommufdCtx {
  /** Every object of the context. */
  readonly objects = new ObjectTable();
  /** Physical memory of the machine. */
  readonly mem: PhysMem;
  /** The process that opened the file. */
  readonly opener: UserProcess;
  /**
   * The process issuing the current call (`current`): user pointers and new pinned-page
   * accounting refer to it. Defaults to the opener; see `IommuFd.setCurrentProcess`.
   */
  current: UserProcess;
  /** IOPT_PAGES_ACCOUNT_USER (RLIMIT_MODE 0, default) or IOPT_PAGES_ACCOUNT_MM (1). */
  accountMode: Extract<RlimitMode, 'user' | 'mm'> = 'user';
  /** The caller has CAP_SYS_RESOURCE (needed to SET RLIMIT_MODE). */
  capSysResource: boolean;
  /** Fault injection at allocation points (the kernel's fail_nth; src/fail-nth.ts). */
  readonly failNth = new FailNth();
  /** The IOAS the VFIO compatibility ioctls act on (`ictx->vfio_ioas`); not a users reference. */
  vfioIoas: IommufdObject | null = null;

  constructor(o: { mem: PhysMem; process: UserProcess; capSysResource: boolean }) {
    this.mem = o.mem;
    this.opener = o.process;
    this.current = o.process;
    this.capSysResource = o.capSysResource;
    // iommufd_object_remove: destroying the compat IOAS clears the setting.
    this.objects.onRemove = (obj) => {
      if (this.vfioIoas === obj) this.vfioIoas = null;
    };
  }
}
