import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

// The public surface of @iommulab/fault-queues, written out so that API changes are deliberate (a
// changed list is a changed contract: update it together with a changeset). The source entry, the
// ESM build and the CJS build must export exactly the same names (run the package build first).
const require = createRequire(import.meta.url);

const entries: { entry: string; src: string; dist: string; names: string[] }[] = [
  {
    'entry': '@iommulab/fault-queues',
    'src': '../src/index.js',
    'dist': 'index',
    'names': [
      'CookieAllocator',
      'FaultDevice',
      'FaultQueue',
      'IOMMUFD_PAGE_RESP_INVALID',
      'IOMMUFD_PAGE_RESP_SUCCESS',
      'IOMMUFD_VEVENT_HEADER_BYTES',
      'IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID',
      'IOMMU_HWPT_PAGE_RESPONSE_BYTES',
      'IOMMU_HWPT_PGFAULT_BYTES',
      'IOMMU_PGFAULT_FLAGS_LAST_PAGE',
      'IOMMU_PGFAULT_FLAGS_PASID_VALID',
      'IOMMU_VEVENTQ_FLAG_LOST_EVENTS',
      'IopfGroup',
      'IopfQueue',
      'LogicalClock',
      'PRG_INDEX_MAX',
      'PcieResponseCode',
      'PriFunction',
      'PriStatus',
      'VeventQueue',
      'decodePgfaults',
      'encodePageResponses',
      'encodePgfault',
      'fromPcieResponseCode',
      'isIommufdResponseCode',
      'isStopMarker',
      'toPcieResponseCode'
    ]
  }
];

describe.each(entries)('exports of $entry', ({ src, dist, names }) => {
  it('source entry', async () => {
    expect(Object.keys(await import(/* @vite-ignore */ new URL(src, import.meta.url).href)).sort()).toEqual(names);
  });
  it('ESM build', async () => {
    expect(Object.keys(await import(/* @vite-ignore */ new URL(`../dist/${dist}.js`, import.meta.url).href)).sort()).toEqual(names);
  });
  it('CJS build', () => {
    const cjs = require(`../dist/${dist}.cjs`) as Record<string, unknown>;
    expect(Object.keys(cjs).filter((k) => k !== '__esModule').sort()).toEqual(names);
  });
});
