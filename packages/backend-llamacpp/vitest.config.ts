import { defineConfig } from 'vitest/config';

// The backend tests build llama.cpp (cached) and run models in child processes:
// run the files one after another so two of them never compete for the build or the cores.
export default defineConfig({
  test: {
    fileParallelism: false,
  },
});
