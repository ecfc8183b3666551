import { defineProject } from 'vitest/config';

export default defineProject({
  ssr: { resolve: { conditions: ['@iommulab/source'] } },
  test: {
    name: 'hw-smmuv3',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
  },
});
