import type { IommuDevice } from '../device.js';
import { PageResponseCode, PgFaultPerm, type IommuFault, type PageResponseCodeValue } from '../fault.js';
import { check, checkEqual, checkErrno } from './check.js';
import type { ConformanceCase } from './cases.js';
import type { CaseContext } from './context.js';

/**
 * The fault contract of a driver (docs/writing-a-backend.md, "The driver rules", Faults), for
 * backends with PCIe PRI: page requests a device sends through the device port reach the
 * `onFault` subscribers after `drainFaults()`, `pageResponse` checks its arguments, a declined
 * request does not stop the drain, and unsubscribing stops delivery. Everything is observed
 * after an explicit `drainFaults()` (never by waiting), so each case is deterministic in both
 * modes.
 */

const needsPri = (caps: { readonly pri: boolean }): boolean => caps.pri;

/** Page-aligned request addresses: PCIe page requests carry the page address only. */
const ADDR_HIGH = 0x12_3456_7000; // above 4 GiB: both halves of the address must survive
const GROUP_OFFSET = 0x0040_3000; // the two-request group, from iovaBase

interface Want {
  readonly rid: number;
  readonly pasid: number;
  readonly grpid: number;
  readonly perm: number;
  readonly addr: number;
  readonly last: boolean;
}

/** A probed PRI-capable device (ATS + PRI) attached to a fresh paging domain. */
async function priDevice(ctx: CaseContext): Promise<IommuDevice> {
  const dev = await ctx.probe({ ats: true, pri: true });
  const dom = await ctx.stack.driver.domainAllocPaging(dev, {});
  await ctx.stack.driver.attachDevice(dev, dom);
  return dev;
}

/** Sends one PRI Page Request Message without PASID through the device port; it must be queued. */
async function sendPageRequest(ctx: CaseContext, dev: IommuDevice, grpid: number, perm: number, addr: number, last: boolean): Promise<Want> {
  const req: Want = { rid: dev.rid, pasid: -1, grpid, perm, addr, last };
  const queued = await ctx.stack.port.pageRequest({ ...req });
  checkEqual(queued, true, `port.pageRequest(grpid ${grpid}, last ${last}) queued`);
  return req;
}

/** A subscriber that records everything it is handed and returns `answer`; unsubscribes once. */
function recorder(ctx: CaseContext, answer?: boolean): { faults: IommuFault[]; unsubscribe: () => void } {
  const faults: IommuFault[] = [];
  const off = ctx.stack.driver.onFault((f) => {
    faults.push(f);
    return answer;
  });
  check(typeof off === 'function', 'onFault returns an unsubscribe function');
  let subscribed = true;
  const unsubscribe = (): void => {
    if (subscribed) off();
    subscribed = false;
  };
  return { faults, unsubscribe };
}

/** Only the page requests among `faults`. */
function pageRequests(faults: readonly IommuFault[]): IommuFault[] {
  return faults.filter((f) => f.kind === 'page-request');
}

/** Fails unless `f` is the PRI page request `want`, field for field. */
function checkPageRequest(f: IommuFault | undefined, want: Want, what: string): void {
  check(f !== undefined, `${what}: not delivered to the onFault subscriber`);
  checkEqual(f.kind, 'page-request', `${what}: kind`);
  if (f.kind !== 'page-request') return;
  checkEqual(f.rid, want.rid, `${what}: rid`);
  checkEqual(f.pasid, want.pasid, `${what}: pasid (a request without PASID)`);
  checkEqual(f.grpid, want.grpid, `${what}: grpid`);
  checkEqual(f.perm, want.perm, `${what}: perm`);
  checkEqual(f.addr, want.addr, `${what}: addr`);
  checkEqual(f.last, want.last, `${what}: last`);
  // A PRI request is not a stall (answered with a PRI response) and never says which stage faulted.
  check(f.stall === undefined || f.stall === false, `${what}: stall must be absent for a PRI page request, got ${String(f.stall)}`);
  checkEqual(f.stage, undefined, `${what}: stage (a PCIe page request never says)`);
}

/** Fails unless exactly the page requests `want` were delivered, in order. */
function checkDelivered(faults: readonly IommuFault[], want: readonly Want[], what: string): void {
  const got = pageRequests(faults);
  checkEqual(got.length, want.length, `${what}: page requests delivered`);
  want.forEach((w, i) => checkPageRequest(got[i], w, `${what}: page request ${i} (grpid ${w.grpid}, last ${w.last})`));
}

export const faultCases: readonly ConformanceCase[] = [
  {
    name: 'PRI: a page request from the device port reaches onFault subscribers after drainFaults, field for field and in order',
    needs: needsPri,
    async run(ctx) {
      const dev = await priDevice(ctx);
      const sub = recorder(ctx);
      try {
        const last = await sendPageRequest(ctx, dev, 0x2a, PgFaultPerm.READ | PgFaultPerm.WRITE, ADDR_HIGH, true);
        await ctx.stack.driver.drainFaults();
        checkEqual(sub.faults.length, 1, 'faults delivered for one Last page request');
        checkPageRequest(sub.faults[0], last, 'Last page request');

        // A two-request group: the non-Last request first, then the Last one, same PRG index.
        const first = await sendPageRequest(ctx, dev, 0x1ff, PgFaultPerm.READ, ctx.iovaBase + GROUP_OFFSET, false);
        const second = await sendPageRequest(ctx, dev, 0x1ff, PgFaultPerm.READ | PgFaultPerm.WRITE, ctx.iovaBase + GROUP_OFFSET + 0x1000, true);
        await ctx.stack.driver.drainFaults();
        checkEqual(sub.faults.length, 3, 'faults delivered after the two-request group');
        checkPageRequest(sub.faults[1], first, 'non-Last request of the group');
        checkPageRequest(sub.faults[2], second, 'Last request of the group');
      } finally {
        sub.unsubscribe();
      }
    },
  },
  {
    name: 'PRI: pageResponse answers a group; a bad code or group index is EINVAL, a released or unknown device ENODEV',
    needs: needsPri,
    async run(ctx) {
      const drv = ctx.stack.driver;
      const dev = await priDevice(ctx);
      const sub = recorder(ctx);
      try {
        const req = await sendPageRequest(ctx, dev, 7, PgFaultPerm.READ, ctx.iovaBase, true);
        await drv.drainFaults();
        checkDelivered(sub.faults, [req], 'before the response');
        const ok = { rid: dev.rid, pasid: -1, grpid: 7, code: PageResponseCode.SUCCESS } as const;
        await drv.pageResponse(dev, ok);
        await checkErrno(() => drv.pageResponse(dev, { ...ok, code: 7 as PageResponseCodeValue }), 'EINVAL', 'pageResponse with code 7');
        await checkErrno(() => drv.pageResponse(dev, { ...ok, grpid: 512 }), 'EINVAL', 'pageResponse with grpid 512');
        await checkErrno(() => drv.pageResponse(dev, { ...ok, grpid: -1 }), 'EINVAL', 'pageResponse with grpid -1');
        const rid = dev.rid + 0x40; // never probed
        const stranger: IommuDevice = { rid, spec: { rid, ats: true, pri: true }, maxPasidLog2: 0 };
        await checkErrno(
          () => drv.pageResponse(stranger, { ...ok, rid: stranger.rid }),
          'ENODEV',
          `pageResponse for requester id ${stranger.rid}, never probed`,
        );
        await drv.releaseDevice(dev);
        await checkErrno(() => drv.pageResponse(dev, ok), 'ENODEV', 'pageResponse for a released device');
      } finally {
        sub.unsubscribe();
      }
    },
  },
  {
    name: 'PRI: a subscriber that declines page requests (returns false) does not stop the drain or later deliveries',
    needs: needsPri,
    async run(ctx) {
      const dev = await priDevice(ctx);
      const decliner = recorder(ctx, false);
      let taker: ReturnType<typeof recorder> | undefined;
      try {
        // Nobody takes these: the driver answers the Last ones itself (not observable portably).
        const batch = [
          await sendPageRequest(ctx, dev, 1, PgFaultPerm.READ, ctx.iovaBase, true),
          await sendPageRequest(ctx, dev, 2, PgFaultPerm.WRITE, ctx.iovaBase + 0x1000, false),
          await sendPageRequest(ctx, dev, 2, PgFaultPerm.READ, ctx.iovaBase + 0x2000, true),
        ];
        await ctx.stack.driver.drainFaults();
        checkDelivered(decliner.faults, batch, 'declined batch');

        taker = recorder(ctx);
        const later = await sendPageRequest(ctx, dev, 3, PgFaultPerm.READ | PgFaultPerm.WRITE, ctx.iovaBase + 0x3000, true);
        await ctx.stack.driver.drainFaults();
        checkDelivered(decliner.faults, [...batch, later], 'declining subscriber, after the declined batch');
        checkDelivered(taker.faults, [later], 'a later subscriber');
        await ctx.stack.driver.pageResponse(dev, { rid: dev.rid, pasid: -1, grpid: 3, code: PageResponseCode.SUCCESS });
      } finally {
        decliner.unsubscribe();
        taker?.unsubscribe();
      }
    },
  },
  {
    name: "PRI: onFault's unsubscribe stops delivery to that subscriber only",
    needs: needsPri,
    async run(ctx) {
      const drv = ctx.stack.driver;
      const dev = await priDevice(ctx);
      const a = recorder(ctx);
      const b = recorder(ctx);
      try {
        const r1 = await sendPageRequest(ctx, dev, 4, PgFaultPerm.READ, ctx.iovaBase, true);
        await drv.drainFaults();
        checkDelivered(a.faults, [r1], 'subscriber A, both subscribed');
        checkDelivered(b.faults, [r1], 'subscriber B, both subscribed');

        a.unsubscribe();
        const r2 = await sendPageRequest(ctx, dev, 5, PgFaultPerm.READ, ctx.iovaBase + 0x1000, true);
        await drv.drainFaults();
        checkDelivered(a.faults, [r1], 'subscriber A after its unsubscribe');
        checkDelivered(b.faults, [r1, r2], 'subscriber B after A unsubscribed');

        b.unsubscribe();
        await sendPageRequest(ctx, dev, 6, PgFaultPerm.READ, ctx.iovaBase + 0x2000, true);
        await drv.drainFaults();
        checkDelivered(b.faults, [r1, r2], 'subscriber B after its unsubscribe');
        checkDelivered(a.faults, [r1], 'subscriber A with nobody subscribed');
      } finally {
        a.unsubscribe();
        b.unsubscribe();
      }
    },
  },
];
