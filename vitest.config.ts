import { defineConfig } from 'vitest/config';

// One config runs every package's tests (vitest 3.2 `test.projects`).
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*'],
  },
});
