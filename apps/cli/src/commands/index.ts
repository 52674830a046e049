import type { Command } from 'commander';
import { registerCalibrateCommand } from './calibrate.ts';
import { registerBackendCommands } from './backend.ts';
import { registerDemoCommand } from './demo.ts';
import { registerInspectCommands } from './inspect.ts';
import { registerModelCommands, registerSynthCommand } from './model.ts';
import { registerExportOnnxCommand } from './onnx.ts';
import { registerTransformCommand } from './transform.ts';
import { registerPackCommand } from './pack.ts';
import { registerGenerateCommand } from './generate.ts';
import { registerBenchCommands } from '@chess/bench';

/** Every command of the CLI, in the order `chess --help` lists them. */
export function registerCommands(program: Command): void {
  registerDemoCommand(program);
  registerModelCommands(program);
  registerSynthCommand(program);
  registerInspectCommands(program);
  registerExportOnnxCommand(program);
  registerBackendCommands(program);
  registerCalibrateCommand(program);
  registerTransformCommand(program);
  registerBenchCommands(program);
  registerGenerateCommand(program);
  registerPackCommand(program);
}
