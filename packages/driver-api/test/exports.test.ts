import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

// The public surface of @iommulab/driver-api, written out so that API changes are deliberate (a changed list
// is a changed contract: update it together with a changeset). The source entry, the ESM build
// and the CJS build of each entry point must export exactly the same names.
const require = createRequire(import.meta.url);

const entries: { entry: string; src: string; dist: string; names: string[] }[] = [
  {
    'entry': '@iommulab/driver-api',
    'src': '../src/index.js',
    'dist': 'index',
    'names': [
      'ACCESS_EXEC',
      'ACCESS_READ',
      'ACCESS_WRITE',
      'API_VERSION',
      'ERRNO',
      'FaultReason',
      'HwCap',
      'IommuError',
      'IotlbGather',
      'NO_PASID',
      'PageResponseCode',
      'PgFaultPerm',
      'Prot',
      'SUPPORTED_API_VERSIONS',
      'checkPageRange',
      'defineBackend',
      'deliverFault',
      'dmaRequest',
      'dmaResult',
      'faultReasonName',
      'isErrnoName',
      'isIommuError',
      'isStopMarker',
      'loadBackend',
      'openBackend'
    ]
  },
  {
    'entry': '@iommulab/driver-api/conformance',
    'src': '../src/conformance/index.js',
    'dist': 'conformance/index',
    'names': [
      'ConformanceFailure',
      'caseContext',
      'check',
      'checkEqual',
      'checkErrno',
      'conformanceCases',
      'runConformance',
      'runConformanceCase'
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
