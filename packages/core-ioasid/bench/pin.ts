/**
 * Pin / unpin throughput of the user-memory model (the pinning part of IOMMU_IOAS_MAP / UNMAP).
 * Run from packages/core-ioasid:
 *   node --conditions=@iommulab/source --import tsx bench/pin.ts
 * Reports pages/s for: first pin (populates zeroed frames) + unpin + munmap, steady-state pin +
 * unpin of populated pages, and a memfd pin + unpin. Bar: 1 M pages/s for map + unmap.
 */
import { PhysMem } from '@iommulab/runtime';
import { Memfd, UserProcess } from '../src/user-memory/index.js';

const NPAGES = 262144; // 1 GiB of 4 KiB pages
const PAGE = 4096;
const mem = PhysMem.create((NPAGES + 4096) * PAGE);
const proc = UserProcess.create({ mem });

function time(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}
const rate = (pages: number, s: number): string => `${(pages / s / 1e6).toFixed(2)} M pages/s (${(s * 1e3).toFixed(1)} ms)`;

const free0 = mem.freeFrameCount;
// 0. the host OS commits the SharedArrayBuffer on first touch: fault it in once (not measured),
// and measure the memset floor (PhysMem zero-fills every frame it hands out)
mem.u8.fill(1, PAGE, (NPAGES + 1) * PAGE);
{
  const s = time(() => mem.u8.fill(0, PAGE, (NPAGES + 1) * PAGE));
  console.log(`floor: zero-filling ${NPAGES} frames (memset of 1 GiB): ${rate(NPAGES, s)}`);
}
// 1. cold: mmap, first pin populates every page, unpin, munmap frees every frame
{
  const runs = 3;
  let total = 0;
  for (let r = 0; r < runs; r++) {
    total += time(() => {
      const a = proc.mmap({ length: NPAGES * PAGE, hugeAlign: 2 * 1024 * 1024 });
      const pas = proc.pin(a, NPAGES, true);
      proc.unpin(pas);
      proc.munmap(a, NPAGES * PAGE);
    });
  }
  if (mem.freeFrameCount !== free0) throw new Error('leak');
  console.log(`cold  pin+unpin+munmap of ${NPAGES} pages: ${rate(NPAGES * runs, total)}`);
}
// 2. warm: pages already populated
{
  const a = proc.mmap({ length: NPAGES * PAGE });
  proc.unpin(proc.pin(a, NPAGES, true)); // populate
  const runs = 10;
  let total = 0;
  for (let r = 0; r < runs; r++) {
    total += time(() => {
      const pas = proc.pin(a, NPAGES, true);
      proc.unpin(pas);
    });
  }
  console.log(`warm  pin+unpin of ${NPAGES} populated pages: ${rate(NPAGES * runs, total)}`);
  proc.munmap(a, NPAGES * PAGE);
}
// 3. memfd
{
  const m = Memfd.create(mem, NPAGES * PAGE);
  m.unpin(m.pin(0, NPAGES, true));
  const runs = 10;
  let total = 0;
  for (let r = 0; r < runs; r++) {
    total += time(() => {
      m.unpin(m.pin(0, NPAGES, true));
    });
  }
  console.log(`memfd pin+unpin of ${NPAGES} pages: ${rate(NPAGES * runs, total)}`);
  m.close();
}
if (mem.freeFrameCount !== free0) throw new Error('leak');
