import type { Command } from 'commander';
import { registerInspectCommands } from './inspect.ts';
import { registerModelCommands, registerSynthCommand } from './model.ts';
import { registerBenchCommands } from '@chess/bench';

/** Every command of the CLI, in the order `chess --help` lists them. */
export function registerCommands(program: Command): void {
  registerModelCommands(program);
  registerSynthCommand(program);
  registerInspectCommands(program);
  registerBenchCommands(program);
}
