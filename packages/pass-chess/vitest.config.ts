import { defineConfig } from 'vitest/config';

// The end-to-end test runs the patched llama.cpp in child processes: files run
// one after another so they never compete for the two cores.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    testTimeout: 60_000,
    fileParallelism: false,
  },
});
