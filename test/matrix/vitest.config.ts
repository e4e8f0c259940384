import { defineConfig } from 'vitest/config';

/** The full matrix's checks (scripts/full-matrix.sh); not part of the test suite. */
export default defineConfig({
  test: {
    include: ['test/matrix/*.matrix.ts'],
    fileParallelism: false,
    testTimeout: 3_600_000,
    hookTimeout: 3_600_000,
    reporters: ['default'],
  },
});
