/**
 * End to end on the real SmolLM2 with the patched llama.cpp: for every method
 * at sparsity 0.5, the transformed model loads and runs (patched
 * llama-perplexity on held-out text: LAMBADA passages, not the Brown corpus
 * the profile was calibrated on), and the sparsity the runtime MEASURES
 * (CHESS_SPARSITY_REPORT) is within 3 points of the target in every layer and
 * at every thresholded site. The thresholds are those `chess transform`
 * makes by default: dense calibration, then one refinement on the partially
 * sparsified model (the sparse GGUF measured on calibration text).
 *
 * Builds the patched backend on first use (cached) and calibrates the model
 * once (profile cached under the toolchain cache). Developer override:
 * CHESS_BACKEND_BIN_DIR=<dir of llama-perplexity> uses already built tools.
 */
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CalibrationProfile, loadBrownCorpus, seededShuffle } from '@chess/calibrate';
import { UNIFORM_METHODS as METHODS, thresholdedSites } from '@chess/contract';
import { fixedCalibrator } from './calibrator.ts';
import { compile } from './compile.ts';
import { E2E_REFINE_TOKENS, smollm2E2e } from './testing/smollm2-e2e.ts';

const run = promisify(execFile);
const MINUTE = 60_000;
const SPARSITY = 0.5;
/** Achieved vs target, every layer, every thresholded site. */
const TOLERANCE = 0.03;
/**
 * Known gap at the input of W_o (attention output): it is domain- and
 * document-sensitive. On LAMBADA a few layers land at 54.4-54.6 % (layer 22),
 * with refinement on 4096 or 16384 tokens alike, so more calibration text does
 * not close it; on held-out Brown documents teal's last layer lands at 46.2 %
 * (all four attention inputs thresholded, so W_o's input moves with three
 * upstream masks; CI 2026-12-07). Held to this bound at that site on both
 * held-out texts, to TOLERANCE everywhere else.
 */
const ATTN_OUTPUT_TOLERANCE = 0.05;
/** Held-out Brown documents: the last ones of the seed-0 order (calibration and refinement use the first 16). */
const HELD_OUT_BROWN_DOCS = 40;
/** Held-out evaluation: windows of CTX tokens of LAMBADA text. */
const CTX = 512;
const CHUNKS = 4;
const REFINE_TOKENS = E2E_REFINE_TOKENS;

const log = (line: string): void => {
  process.stderr.write(`[compiler e2e] ${line}\n`);
};

let binDir: string;
let model: string;
let profile: CalibrationProfile;
let refine: (sparseModel: string, iteration: number) => Promise<CalibrationProfile>;
let work: string;
let text: string;
let brownText: string;

beforeAll(async () => {
  ({ work, model, binDir, profile, refine, lambada: text } = await smollm2E2e('compiler-e2e', log));
  expect(profile.calibration.seed).toBe(0);
  brownText = join(work, 'brown-held-out.txt');
  // the opening paragraphs (~600 characters) of each held-out document: the 4 evaluated windows span ~16 documents, not one
  const opening = (doc: string) => {
    const out: string[] = [];
    for (const p of doc.split(/\n\s*\n/)) if (out.join('\n\n').length < 600) out.push(p);
    return out.join('\n\n');
  };
  await writeFile(brownText, seededShuffle(loadBrownCorpus().documents, 0).slice(-HELD_OUT_BROWN_DOCS).map(opening).join('\n\n'));
}, 120 * MINUTE); // a cold backend build, or a wait for another package's (the cache lock waits up to 2 h), then calibration

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

interface SparsityReport {
  layers: Array<{ layer: number } & Record<string, { seen: number; zeroed: number; sparsity: number }>>;
  totals: Record<string, { sparsity: number }>;
}

describe('SmolLM2 through the patched llama.cpp', () => {
  for (const method of METHODS) {
    it(
      `${method} at ${SPARSITY}: loads, runs; achieved sparsity on held-out text (LAMBADA, Brown documents never calibrated on) within ${TOLERANCE * 100} points in every layer and site (W_o input: ${ATTN_OUTPUT_TOLERANCE * 100})`,
      async () => {
        const out = join(work, `${method}.gguf`);
        const { refinement } = await compile(
          { model, out, method, sparsity: SPARSITY, refineTokens: REFINE_TOKENS, refineIterations: 1 },
          { calibrator: fixedCalibrator(profile, refine) },
        );
        expect(refinement).toHaveLength(1);
        const sites = thresholdedSites(method);
        const nLayer = profile.model.nLayer;
        const misses: string[] = [];
        for (const [name, file] of [
          ['LAMBADA', text],
          ['held-out Brown', brownText],
        ] as const) {
          const reportPath = join(work, `${method}-${name.replace(/\W+/g, '-')}.json`);
          const { stdout, stderr } = await run(
            join(binDir, 'llama-perplexity'),
            ['-m', out, '-f', file, '-c', String(CTX), '-b', String(CTX), '--chunks', String(CHUNKS), '-t', '2'],
            { env: { ...process.env, LD_LIBRARY_PATH: binDir, CHESS_SPARSITY_REPORT: reportPath }, maxBuffer: 64 << 20 },
          );
          const ppl = /Final estimate: PPL = ([\d.]+)/.exec(stdout + stderr);
          expect(ppl, (stdout + stderr).slice(-2000)).not.toBeNull();
          expect(Number(ppl![1])).toBeGreaterThan(1);
          expect(Number(ppl![1])).toBeLessThan(1000);

          const report = JSON.parse(await readFile(reportPath, 'utf8')) as SparsityReport;
          expect(report.layers).toHaveLength(nLayer);
          const summary: string[] = [];
          for (const site of sites) {
            const values = report.layers.map((l) => l[site]?.sparsity ?? Number.NaN);
            summary.push(`${site} ${(100 * Math.min(...values)).toFixed(1)}..${(100 * Math.max(...values)).toFixed(1)}%`);
            const tolerance = site === 'attn_output_in' ? ATTN_OUTPUT_TOLERANCE : TOLERANCE;
            for (const [il, v] of values.entries()) if (!(Math.abs(v - SPARSITY) <= tolerance)) misses.push(`${name} layer ${il} ${site}: ${(100 * v).toFixed(1)}% (tolerance ${tolerance * 100} points)`);
          }
          log(`${method} on ${name}: PPL ${ppl![1]}; achieved (min..max over ${nLayer} layers) ${summary.join(', ')}`);
        }
        expect(misses, `achieved sparsity too far from ${SPARSITY * 100}%`).toEqual([]);
      },
      20 * MINUTE,
    );
  }
});
