import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', selftest: 'src/selftest-entry.ts', internal: 'src/internal.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  shims: true,
  splitting: true,
  target: 'node20',
});
