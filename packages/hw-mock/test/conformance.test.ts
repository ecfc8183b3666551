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
