/**
 * Leaf permission checks (smmuv3.md §7.4): what a stage-1 or stage-2 block/page descriptor
 * grants, as a packed PERM_* value for both privilege levels (privileged [2:0], unprivileged
 * [5:3]). Write permission is granted only when the descriptor is writable *now* (AP[2] = 0 /
 * S2AP.W = 1): a clean DBM page is "not yet writable" and the walker performs the dirty update.
 */
import {
  PTE_AP_RDONLY,
  PTE_AP_UNPRIV,
  PTE_PXN_HI,
  PTE_S2AP_READ,
  PTE_S2AP_WRITE,
  PTE_UXN_HI,
} from '../../codec/index.js';
import { TBL_NO_UNPRIV, TBL_PXN, TBL_RDONLY, TBL_UXN } from './descriptor.js';
import { PERM_R, PERM_UNPRIV_SHIFT, PERM_W, PERM_X } from './walk-context.js';

/**
 * Stage-1 permissions of a leaf (VMSAv8-64 EL1&0 regime, §7.4):
 * - AP[2:1]: 00 priv RW / unpriv none; 01 RW / RW; 10 RO / none; 11 RO / RO;
 * - hierarchical restrictions `tbl` (TBL_* from the table descriptors above, 0 when HAD):
 *   APTable[1] removes write, APTable[0] removes unprivileged access, PXNTable/XNTable remove
 *   privileged / unprivileged execution;
 * - privileged execution is forbidden by PXN, by unprivileged write permission (AArch64 rule,
 *   also what CD.UWXN asks for) and with WXN by privileged write permission;
 * - unprivileged execution is forbidden by UXN, by the absence of unprivileged read permission,
 *   and with WXN by unprivileged write permission;
 * - PAN removes privileged data access (not execution) to unprivileged-accessible pages.
 * @returns packed PERM_* (privileged [2:0], unprivileged [5:3])
 */
export function s1LeafPerms(lo: number, hi: number, tbl: number, wxn: boolean, pan: boolean): number {
  const ap1 = (lo & PTE_AP_UNPRIV) !== 0 && (tbl & TBL_NO_UNPRIV) === 0;
  const ap2 = (lo & PTE_AP_RDONLY) !== 0 || (tbl & TBL_RDONLY) !== 0;
  const pxn = (hi & PTE_PXN_HI) !== 0 || (tbl & TBL_PXN) !== 0;
  const uxn = (hi & PTE_UXN_HI) !== 0 || (tbl & TBL_UXN) !== 0;
  const privW = !ap2;
  const userR = ap1;
  const userW = ap1 && !ap2;
  const privX = !(pxn || userW || (wxn && privW));
  const userX = !(uxn || !userR || (wxn && userW));
  let p = 0;
  if (!(pan && ap1)) p = PERM_R | (privW ? PERM_W : 0);
  if (privX) p |= PERM_X;
  let u = 0;
  if (userR) u |= PERM_R;
  if (userW) u |= PERM_W;
  if (userX) u |= PERM_X;
  return p | (u << PERM_UNPRIV_SHIFT);
}

/**
 * Stage-2 permissions of a leaf (§7.3, §7.4): S2AP[0] (bit 6) read, S2AP[1] (bit 7) write, for
 * both privileges. Execution: without XNX, XN (bit 54) forbids it at both privileges (bit 53 is
 * ignored); with XNX, XN[1:0] = bits [54:53]: 00 both, 01 unprivileged only (PXN), 10 none,
 * 11 privileged only. Execution does not need S2AP read (AArch64 stage 2).
 * @returns packed PERM_* (privileged [2:0], unprivileged [5:3])
 */
export function s2LeafPerms(lo: number, hi: number, xnx: boolean): number {
  let d = 0;
  if ((lo & PTE_S2AP_READ) !== 0) d |= PERM_R;
  if ((lo & PTE_S2AP_WRITE) !== 0) d |= PERM_W;
  let p = d;
  let u = d;
  if (xnx) {
    const xn = ((hi & PTE_UXN_HI) !== 0 ? 2 : 0) | ((hi & PTE_PXN_HI) !== 0 ? 1 : 0);
    if (xn === 0 || xn === 3) p |= PERM_X;
    if (xn === 0 || xn === 1) u |= PERM_X;
  } else if ((hi & PTE_UXN_HI) === 0) {
    p |= PERM_X;
    u |= PERM_X;
  }
  return p | (u << PERM_UNPRIV_SHIFT);
}
