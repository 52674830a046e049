#!/usr/bin/env tsx
/**
 * `chess`: the command line of the CHESS toolchain. Each command lives in its
 * own file under commands/ and is loaded lazily so `chess --help` stays fast.
 */
import { Command, CommanderError } from 'commander';
import { reportError } from './report-error.ts';
import { registerCommands } from './commands/index.ts';

const program = new Command('chess')
  .description('CHESS activation sparsity as a compiler: import, calibrate, transform and benchmark llama.cpp models')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else {
    process.exitCode = reportError(error);
  }
}
