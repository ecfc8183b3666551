/**
 * SMMUv3 model hosted by the runtime's InstanceHost, in-thread and in its own worker thread: the
 * same bring-up (smmuv3.md §1.6) through the shared register file and doorbell, tables and
 * commands in the shared PhysMem, translations through the device port, event records read from
 * the event queue, stats over the control plane, and a workload run next to the model.
 */
import { FaultReason } from '@iommulab/driver-api';
import { ACCESS_READ, ACCESS_WRITE } from '@iommulab/runtime';
import { afterEach, describe, expect, it } from 'vitest';
import { CmdOp, EvtId } from '../src/codec/index.js';
import { HostRig } from './helpers/host-rig.js';
import { HandTables, S1_AP_EL0, S1_NG, S1_PAGE, linuxCd, linuxS1Ste } from './helpers/spec-rig.js';

let open: HostRig[] = [];
afterEach(async () => {
  for (const r of open) await r.host.shutdown();
  open = [];
});

for (const mode of ['in-thread', 'worker'] as const) {
  describe(`SmmuV3Hardware hosted ${mode}`, () => {
    it('brings up through registers, translates through the device port, records events, honours TLBI + SYNC', async () => {
      const r = await HostRig.open(mode);
      open.push(r);
      const pt = new HandTables(r.mem, 0);
      const page = r.mem.allocFrame();
      pt.map(0x40_0000, page, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
      const cd = r.mem.allocFrame();
      r.writeCd(cd, linuxCd(pt.root, 3));
      r.writeSte(9, linuxS1Ste(cd));
      r.put({ OPCODE: CmdOp.CFGI_STE, SID: 9, LEAF: 1 });
      await r.sync();
      expect(await r.host.port.translate({ rid: 9, iova: 0x40_0123, access: 'write' })).toEqual({ ok: true, pa: page + 0x123, fault: 0, faultDetail: 0 });
      expect(await r.host.port.translate({ rid: 9, iova: 0x50_0000 })).toEqual({
        ok: false,
        pa: 0,
        fault: FaultReason.TRANSLATION,
        faultDetail: EvtId.F_TRANSLATION,
      });
      expect(await r.host.port.translate({ rid: 12, iova: 0 })).toMatchObject({ faultDetail: EvtId.C_BAD_STE });
      expect(r.events()).toEqual([
        [EvtId.F_TRANSLATION, 9, 0x50_0000],
        [EvtId.C_BAD_STE, 12, 0],
      ]);
      pt.unmap(0x40_0000);
      expect((await r.host.port.translate({ rid: 9, iova: 0x40_0123 })).ok).toBe(true); // stale until TLBI
      r.put({ OPCODE: CmdOp.TLBI_NH_ASID, ASID: 3 });
      await r.sync();
      expect((await r.host.port.translate({ rid: 9, iova: 0x40_0123, access: ACCESS_READ })).faultDetail).toBe(EvtId.F_TRANSLATION);
      const st = await r.host.stats();
      expect(st.translations).toBe(5);
      expect(st.walks).toBe(3);
      expect(st.syncs).toBe(3);
    });

    it('runs a TLB-hit workload next to the model without allocating per translation', async () => {
      const r = await HostRig.open(mode);
      open.push(r);
      const pt = new HandTables(r.mem, 0);
      const buf = r.mem.allocFrames(64);
      for (let i = 0; i < 64; i++) pt.map(0x100_0000 + i * 4096, buf + i * 4096, 3, S1_PAGE | S1_AP_EL0 | S1_NG);
      const cd = r.mem.allocFrame();
      r.writeCd(cd, linuxCd(pt.root, 4));
      r.writeSte(1, linuxS1Ste(cd));
      r.put({ OPCODE: CmdOp.CFGI_STE, SID: 1, LEAF: 1 });
      await r.sync();
      const spec = { pattern: 'sequential' as const, rid: 1, iovaBase: 0x100_0000, length: 64 * 4096, step: 520, count: 200_000, access: ACCESS_WRITE };
      await r.host.runWorkload(spec);
      const res = await r.host.runWorkload({ ...spec, count: 1_000_000 });
      expect(res.faults).toBe(0);
      expect(res.translations).toBe(1_000_000);
      expect(Math.abs(res.heapUsedDelta)).toBeLessThan(256 * 1024); // ~0 per translation (GC noise allowed)
    });
  });
}
