/**
 * The driver-api conformance suite against the SMMUv3 model + driver, in-thread and with the
 * model in its instance worker (driver-api/src/conformance).
 */
import { runConformance } from '@iommulab/driver-api/conformance';
import { describe, it } from 'vitest';
import backend from '../src/index.js';

runConformance(
  { describe, it },
  {
    backend: new URL('../src/index.ts', import.meta.url).href,
    capabilities: backend.capabilities,
  },
);
