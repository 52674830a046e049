import { chessVitestConfig } from '../../vitest.shared.ts';

// The end-to-end test runs the patched llama.cpp in child processes: files run
// one after another so they never compete for the two cores.
export default chessVitestConfig({
  include: ['src/**/*.test.ts'],
  fileParallelism: false,
});
