import { defineProject } from 'vitest/config';

export default defineProject({
  ssr: { resolve: { conditions: ['@iommulab/source'] } },
  test: {
    name: 'fault-queues',
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
  },
});
