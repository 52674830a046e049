import { chessVitestConfig } from '../../vitest.shared.ts';

export default chessVitestConfig({
  include: ['src/**/*.test.ts'],
});
