// A small project whose outcomes are known: vitest-summary.test.ts runs it and counts.
import { chessVitestConfig } from '../../../../../vitest.shared.ts';

export default chessVitestConfig({ include: ['*.case.ts'] });
