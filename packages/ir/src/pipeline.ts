/**
 * A pass pipeline: a straight list of named steps (a rule list or a function),
 * the verifier between steps, and a debug hook. With `CHESS_DEBUG_IR=1` the
 * module is printed to stderr after every step; `CHESS_DEBUG_IR=2` also traces
 * every rule application.
 */
import type { Module } from './module.ts';
import { valueNames } from './names.ts';
import { print } from './printer.ts';
import { type RewriteResult, type Rule, applyRules } from './rewrite.ts';
import { verify } from './verifier.ts';

export type Step =
  | { readonly name: string; readonly rules: readonly Rule[]; readonly maxIterations?: number }
  | { readonly name: string; readonly run: (module: Module) => void };

export interface StepReport {
  readonly step: string;
  /** Rule applications (rule steps only). */
  readonly applied?: RewriteResult['applied'];
}

export interface DebugHook {
  /** After a step ran (and verified). */
  afterStep?(step: string, module: Module, report: StepReport): void;
  /** After one rule application. */
  onApply?(step: string, rule: string, root: string, replacement: string): void;
}

export interface PipelineOptions {
  /** Run the verifier before the first step and after each one. Default true. */
  readonly verify?: boolean;
  /** Default: from CHESS_DEBUG_IR (printing to stderr), or none. */
  readonly debug?: DebugHook;
}

export function runPipeline(module: Module, steps: readonly Step[], options: PipelineOptions = {}): StepReport[] {
  const check = options.verify ?? true;
  const debug = options.debug ?? debugHookFromEnv();
  if (check) verify(module);
  const reports: StepReport[] = [];
  for (const step of steps) {
    let report: StepReport;
    if ('rules' in step) {
      const names = debug?.onApply ? valueNames(module) : undefined;
      const result = applyRules(module, step.rules, {
        ...(step.maxIterations !== undefined && { maxIterations: step.maxIterations }),
        ...(debug?.onApply && {
          onApply: (rule, root, replacement) =>
            debug.onApply!(step.name, rule.name, `%${names?.get(root) ?? root.name ?? root.id}`, replacement.op),
        }),
      });
      report = { step: step.name, applied: result.applied };
    } else {
      step.run(module);
      report = { step: step.name };
    }
    if (check) verify(module);
    debug?.afterStep?.(step.name, module, report);
    reports.push(report);
  }
  return reports;
}

/** The hook selected by CHESS_DEBUG_IR (1: print after each step; 2: also each rule application). */
export function debugHookFromEnv(env: NodeJS.ProcessEnv = process.env, write: (text: string) => void = (t) => process.stderr.write(t)): DebugHook | undefined {
  const level = Number(env.CHESS_DEBUG_IR ?? 0);
  if (!(level >= 1)) return undefined;
  return {
    afterStep(step, module, report) {
      const applied = report.applied ? ` ${JSON.stringify(report.applied)}` : '';
      write(`// ---- after step '${step}'${applied}\n${print(module, { elideMetaArrays: 8 })}`);
    },
    ...(level >= 2 && {
      onApply(step: string, rule: string, root: string, replacement: string) {
        write(`// [${step}] ${rule}: ${root} -> ${replacement}\n`);
      },
    }),
  };
}
