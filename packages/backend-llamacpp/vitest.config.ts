import { chessVitestConfig } from '../../vitest.shared.ts';

// The backend tests build llama.cpp (cached) and run models in child processes:
// run the files one after another so two of them never compete for the build or the cores.
export default chessVitestConfig({
  fileParallelism: false,
});
