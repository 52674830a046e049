import { chessVitestConfig } from '../vitest.shared.ts';

export default chessVitestConfig();
