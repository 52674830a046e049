import { calibrate } from '@chess/calibrate';
import { cachePath } from '@chess/core';
const out = cachePath('profiles', 'e2e-8192-SmolLM2-135M-Instruct.Q4_1.prf');
const t0 = Date.now();
let last = 0;
const p = await calibrate({ model: '/root/.cache/chess-toolchain/models/SmolLM2-135M-Instruct.Q4_1.gguf', tokens: 8192, out, log: (l) => console.error(l), progress: (p) => { if (p.done - last >= 1024) { last = p.done; console.error(`pass ${p.pass} ${p.done}/${p.total} ${(Date.now() - t0) / 1000}s`); } } });
console.log(out, p.calibration, (Date.now() - t0) / 1000);
