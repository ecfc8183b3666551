import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

// The public surface of @iommulab/runtime, written out so that API changes are deliberate (a changed list
// is a changed contract: update it together with a changeset). The source entry, the ESM build
// and the CJS build of each entry point must export exactly the same names.
const require = createRequire(import.meta.url);

const entries: { entry: string; src: string; dist: string; names: string[] }[] = [
  {
    'entry': '@iommulab/runtime',
    'src': '../src/index.js',
    'dist': 'index',
    'names': [
      'ACCESS_EXEC',
      'ACCESS_READ',
      'ACCESS_WRITE',
      'DEFAULT_PHYS_MEM_BYTES',
      'DEFAULT_REGISTER_FILE_BYTES',
      'DEVICE_PORT_ENTRIES',
      'DEVICE_PORT_RECORD_BYTES',
      'Doorbell',
      'FRAME_SHIFT',
      'FRAME_SIZE',
      'InstanceError',
      'InstanceGroup',
      'InstanceHost',
      'NO_PASID',
      'PhysMem',
      'RecordRing',
      'RegisterFile',
      'RuntimeError',
      'WORKLOAD_CHUNK',
      'activeConditions',
      'createJobPool',
      'dmaRequest',
      'dmaResult',
      'loadHostedBackend',
      'qCount',
      'qEmpty',
      'qFull',
      'qIdx',
      'qInc',
      'qSpace',
      'qValid',
      'qWrap',
      'resolveBackendSpecifier',
      'resolvePackageEsm',
      'runWorkload',
      'runWorkloadSync',
      'toDmaRequest',
      'waitUntil'
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
