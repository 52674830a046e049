/**
 * A named pass pipeline of @chess/pass-chess run on the module (the verifier
 * before the first step and after each, CHESS_DEBUG_IR as always), each pass
 * reported as an event of the stage it belongs to.
 */
import { type Module, type StepReport, runPipeline } from '@chess/ir';
import { type PassContext, passSteps } from '@chess/pass-chess';
import type { CompileEvents, StageName } from './events.ts';

export function runPasses(module: Module, names: readonly string[], context: PassContext, stage: StageName, events: CompileEvents): StepReport[] {
  const reports = runPipeline(module, passSteps(names, context));
  reports.forEach((report, i) => events({ type: 'pass', stage, pass: names[i]!, step: report.step, ...(report.applied && { applied: report.applied }) }));
  return reports;
}
