// The example of packages/runtime/README.md. Run: node --import tsx apps/examples/src/runtime-quick-start.ts
import { InstanceHost, PhysMem, RecordRing } from '@iommulab/runtime';

export async function main(log: (...a: unknown[]) => void = console.log): Promise<void> {
  // Host RAM shared by every thread.
  const mem = PhysMem.create(64 * 1024 * 1024);
  const table = mem.allocFrames(4, 4); // 16 KiB, 16 KiB aligned, zeroed
  mem.write64(table, 0x1234_5678_9abc);
  log(mem.read64(table).toString(16)); // 123456789abc

  // A ring of 16-byte records.
  const ring = RecordRing.create({ entries: 8, recordBytes: 16 });
  ring.pushBatch(new Uint32Array([1, 2, 3, 4, 5, 6, 7, 8]), 2);
  const out = new Uint32Array(8);
  log(ring.popBatch(out, 2)); // 2: both records, 4 words each

  // One IOMMU instance in its own worker, loaded by module specifier.
  const host = await InstanceHost.start({
    id: 'iommu0',
    backend: '@iommulab/hw-mock',
    resolveFrom: import.meta.url, // where to resolve the package name (default: the working directory)
    mode: 'worker',
    mem,
  });
  log(host.backendId, (await host.stats()).translations); // mock 0
  await host.shutdown();
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
