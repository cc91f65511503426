import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real nats-server processes and HTTP servers.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Forks, not threads: each file gets its own process, so a helper's
    // process-exit hook cleans up the servers that file started.
    pool: 'forks',
    // Files run in parallel, bounded by the 2 cores of the CI machine.
    maxWorkers: 2,
  },
});
