/**
 * The `chess` program as a function: a fresh commander program per call (so a
 * test can run many commands in one process), every error turned into one
 * `error[CODE]: message` line on stderr and an exit code: 0 success, 2 bad usage
 * (commander's own errors included), 1 a failure (docs/errors.md).
 */
import { Command, CommanderError } from 'commander';
import { escapeControl } from '@chess/core';
import { reportError } from './report-error.ts';
import { registerCommands } from './commands/index.ts';

/** commander's error codes -> ours (docs/errors.md, "Usage errors of the command line"). */
const COMMANDER_CODES: Record<string, string> = {
  'commander.unknownOption': 'CLI_UNKNOWN_OPTION',
  'commander.unknownCommand': 'CLI_UNKNOWN_COMMAND',
  'commander.missingMandatoryOptionValue': 'CLI_MISSING_OPTION',
  'commander.optionMissingArgument': 'CLI_MISSING_OPTION_VALUE',
  'commander.missingArgument': 'CLI_MISSING_ARGUMENT',
  'commander.excessArguments': 'CLI_EXCESS_ARGUMENTS',
  'commander.invalidArgument': 'CLI_INVALID_ARGUMENT',
  'commander.conflictingOption': 'CLI_CONFLICTING_OPTIONS',
  // `chess` or `chess model` without a subcommand: commander prints the help, then this
  'commander.help': 'CLI_NO_COMMAND',
};

/** Run `chess <argv...>`; returns the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const program = new Command('chess')
    .description('CHESS activation sparsity as a compiler: import, calibrate, transform and benchmark llama.cpp models')
    .exitOverride()
    // commander's message is printed by us, as error[CODE]: ...
    .configureOutput({ outputError: () => undefined });
  registerCommands(program);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (!(error instanceof CommanderError)) return reportError(error);
    // --help, --version: not errors
    if (error.exitCode === 0) return 0;
    const code = COMMANDER_CODES[error.code] ?? 'CLI_USAGE';
    const message = error.code === 'commander.help' ? 'no command given' : error.message.replace(/^error: /, '');
    process.stderr.write(`error[${code}]: ${escapeControl(message)} (run with --help for usage)\n`);
    return 2;
  }
}
