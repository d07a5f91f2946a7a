import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real ONNX sessions, PGlite and child processes: generous per-test budgets, no timing asserts.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: keep the pool small so onnxruntime threads and PGlite do not starve each other.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
