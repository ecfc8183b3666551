import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/cli.ts', 'src/job.ts'],
  format: ['esm'],
  dts: false,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // The workspace packages and npm deps stay external: they resolve from node_modules at run time.
  skipNodeModulesBundle: true,
});
