/**
 * The compiler driver: a dense GGUF in, a sparse GGUF out
 * (docs/gguf-sparse.md). The options are validated once (options.ts), then
 * the stages of events.ts run in order:
 *
 *   import -> check -> calibrate -> thresholds -> passes -> refine -> emit
 *
 * `check`, `passes` and `refine` run named pass pipelines of
 * @chess/pass-chess (the verifier between steps); the calibrator and the
 * layout encoder are passed in. Everything that can be checked without
 * calibrating is checked before calibration, the expensive part.
 */
import { type EmitResult, emitGGUF } from '@chess/codegen-gguf';
import { importGGUF } from '@chess/import-gguf';
import type { DType, Module, StepReport } from '@chess/ir';
import {
  BUDGET_LEVELS,
  type BudgetPlan,
  CHECK_PIPELINE,
  allocateBudget,
  minimumBudget,
  type LayoutEncoder,
  type PassContext,
  type Placement,
  TRANSFORM_PIPELINE,
  type Thresholds,
  checkProfileMatchesModule,
  computeThresholds,
  inputSparsePlacements,
  registerSparseOps,
} from '@chess/pass-chess';
import { asBudgetProfile, budgetBytes, budgetProblem, downColumnNorms } from './budget-model.ts';
import { type Calibrator, type CalibrationRequest, checkCalibratorCanRefine } from './calibrator.ts';
import type { CompileEvent, CompileEvents, RefinementStep, StageName } from './events.ts';
import { ggufLayoutEncoder } from './layout-encoder.ts';
import { type CompileInput, type CompileOptions, keyName, validateCompileOptions } from './options.ts';
import { refineThresholds } from './refine.ts';
import { runPasses } from './run-passes.ts';
import { runtimeCalibrator } from './runtime-calibrator.ts';
import { weightByteSize } from './weight-bytes.ts';

export interface CompileDeps {
  /** Where profiles come from; default: runtimeCalibrator() (the patched llama.cpp). */
  readonly calibrator?: Calibrator;
  readonly events?: CompileEvents;
  /** How messages name an option (the CLI: its flags); default: the option's key. */
  readonly optionName?: (key: keyof CompileOptions) => string;
  /** Bytes of the projections in their storage layout; default: @chess/gguf's encoders. */
  readonly encoder?: LayoutEncoder;
}

export interface ModuleResult {
  readonly options: CompileOptions;
  /** The thresholds in the module (after the last refinement, if any). */
  readonly thresholds: Thresholds;
  /** Where each input-sparse projection went (`rows`: kept in its row layout, with the reason). */
  readonly placements: readonly Placement[];
  /** Every pass step that ran, in order. */
  readonly reports: readonly StepReport[];
  readonly refinement: readonly RefinementStep[];
}

export interface CompileResult extends ModuleResult {
  /** The sparse GGUF written. */
  readonly path: string;
  /** The dense source (the default model's path if none was given). */
  readonly model: string;
  readonly emit: EmitResult;
}

export { weightByteSize };

export function moduleTensorBytes(module: Module): number {
  let total = 0;
  for (const w of module.weights.values()) total += weightByteSize(w.dtype, w.shape);
  return total;
}

/** Emits stage-start, runs, emits stage-end (not on failure: the error says what happened). */
async function stage<T>(events: CompileEvents, name: StageName, work: () => T | Promise<T>): Promise<T> {
  events({ type: 'stage-start', stage: name });
  const started = performance.now();
  const result = await work();
  events({ type: 'stage-end', stage: name, ms: performance.now() - started });
  return result;
}

const refines = (o: CompileOptions) => o.refineTokens > 0 && (o.budget !== undefined ? o.budget < 1 : o.sparsity > 0);

interface Run {
  readonly options: CompileOptions;
  readonly model: string;
  readonly calibrator: Calibrator;
  readonly events: CompileEvents;
  readonly optionName: (key: keyof CompileOptions) => string;
  readonly encoder: LayoutEncoder;
}

/** check -> calibrate -> thresholds -> passes -> refine, on a module whose options are already valid. */
async function transformModule(module: Module, run: Run): Promise<ModuleResult> {
  const { options, calibrator, events } = run;
  registerSparseOps();
  const base: PassContext = { method: options.method, layout: options.layout, transposedType: options.transposedType, encoder: run.encoder };
  const reports: StepReport[] = [];
  await stage(events, 'check', () => reports.push(...runPasses(module, CHECK_PIPELINE, base, 'check', events)));
  // a budget below what the method can reach on this model fails before calibrating
  const budgetBytesModel = options.budget !== undefined ? budgetBytes(module, options.method, inputSparsePlacements(module, options.method, options.layout)) : undefined;
  if (budgetBytesModel && options.budget! < minimumBudget(budgetBytesModel)) {
    allocateBudget({ ...budgetBytesModel, budget: options.budget!, levels: BUDGET_LEVELS, sites: budgetBytesModel.sites.map((x) => ({ ...x, cost: new Float64Array(BUDGET_LEVELS.length) })) });
  }
  const request: CalibrationRequest = { model: run.model, options, optionName: run.optionName, events };
  const dense = await stage(events, 'calibrate', async () => {
    const profile = await calibrator.profile(request);
    checkProfileMatchesModule(profile, module);
    return profile;
  });
  const placements = inputSparsePlacements(module, options.method, options.layout);
  let budgetPlan: BudgetPlan | undefined;
  let thresholds = await stage(events, 'thresholds', async () => {
    if (budgetBytesModel) {
      // the allocation: the byte model's curves and the dense profile's cost curves (budget-model.ts)
      const gateScale = await downColumnNorms(module, dense.layers.length);
      const problem = budgetProblem(budgetBytesModel, asBudgetProfile(dense), options.method, gateScale, options.budget!, options.statistic);
      budgetPlan = { allocation: allocateBudget(problem), gateScale };
    }
    return computeThresholds(dense, { ...options, ...(budgetPlan && { budgetPlan }) });
  });
  const context = { ...base, thresholds, calibration: dense.calibration };
  await stage(events, 'passes', () => reports.push(...runPasses(module, TRANSFORM_PIPELINE, context, 'passes', events)));
  let refinement: RefinementStep[] = [];
  if (refines(options)) {
    const refined = await stage(events, 'refine', () => refineThresholds(module, context, dense, calibrator, request, budgetPlan));
    ({ thresholds, steps: refinement } = refined);
    reports.push(...refined.reports);
  }
  return { options, thresholds, placements, reports, refinement };
}

function prepare(input: CompileInput, deps: CompileDeps, needsOut: boolean): Omit<Run, 'model'> {
  const optionName = deps.optionName ?? keyName;
  const options = validateCompileOptions(input, { optionName, needsOut });
  const calibrator = deps.calibrator ?? runtimeCalibrator();
  if (refines(options)) checkCalibratorCanRefine(calibrator, optionName);
  return { options, calibrator, events: deps.events ?? (() => undefined), optionName, encoder: deps.encoder ?? ggufLayoutEncoder };
}

/**
 * IR in, IR out: the module of `model` (imported by the caller) made sparse in
 * place. Refinement still writes temporary GGUFs for the calibrator to
 * measure. `out` is not needed.
 */
export async function compileModule(module: Module, model: string, input: CompileInput, deps: CompileDeps = {}): Promise<ModuleResult> {
  return transformModule(module, { ...prepare(input, deps, false), model });
}

/** A dense GGUF file in, a sparse GGUF file out. */
export async function compile(input: CompileInput, deps: CompileDeps = {}): Promise<CompileResult> {
  const run = prepare(input, deps, true);
  const { options, events } = run;
  const out = options.out!; // required by the validation above
  const log = (message: string) => events({ type: 'log', message });
  const { model, module, file } = await stage(events, 'import', async () => {
    const model = options.model ?? (await (await import('@chess/models')).fetchDefaultModel({ log }));
    return { model, ...(await importGGUF(model)) };
  });
  try {
    const result = await transformModule(module, { ...run, model });
    const emit = await stage(events, 'emit', () => {
      const total = moduleTensorBytes(module);
      const label = `write ${options.method}`;
      const progress = (done: number, _total: number, tensor: string): void =>
        events({ type: 'progress', stage: 'emit', label, unit: 'bytes', done, total: Math.max(total, done), detail: tensor } satisfies CompileEvent);
      return emitGGUF(module, out, { progress });
    });
    return { ...result, path: out, model, emit };
  } finally {
    await file.close();
  }
}
