import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', codec: 'src/codec/index.ts', pgtable: 'src/pgtable/index.ts', driver: 'src/driver/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  shims: true,
  splitting: true,
  target: 'node20',
});
