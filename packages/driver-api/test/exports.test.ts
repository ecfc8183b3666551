import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

// The public surface of @iommulab/driver-api, written out so that API changes are deliberate (a
// changed list is a changed contract: update it together with a changeset). The source entry,
// the ESM build and the CJS build must export exactly the same names.
const require = createRequire(import.meta.url);

describe('exports of @iommulab/driver-api', () => {
  const expected = [
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
    'defineBackend',
    'dmaRequest',
    'dmaResult',
    'faultReasonName',
    'isErrnoName',
    'isIommuError',
    'loadBackend',
    'openBackend'
  ];
  it('source entry', async () => {
    expect(Object.keys(await import('../src/index.js')).sort()).toEqual(expected);
  });
  it('ESM build', async () => {
    expect(Object.keys(await import('../dist/index.js')).sort()).toEqual(expected);
  });
  it('CJS build', () => {
    const cjs = require('../dist/index.cjs') as Record<string, unknown>;
    expect(Object.keys(cjs).filter((k) => k !== '__esModule').sort()).toEqual(expected);
  });
});

describe('exports of @iommulab/driver-api/conformance', () => {
  const expected = [
    'ConformanceFailure',
    'caseContext',
    'check',
    'checkEqual',
    'checkErrno',
    'conformanceCases',
    'runConformance',
    'runConformanceCase'
  ];
  it('source entry', async () => {
    expect(Object.keys(await import('../src/conformance/index.js')).sort()).toEqual(expected);
  });
  it('ESM build', async () => {
    expect(Object.keys(await import('../dist/conformance/index.js')).sort()).toEqual(expected);
  });
  it('CJS build', () => {
    const cjs = require('../dist/conformance/index.cjs') as Record<string, unknown>;
    expect(Object.keys(cjs).filter((k) => k !== '__esModule').sort()).toEqual(expected);
  });
});
