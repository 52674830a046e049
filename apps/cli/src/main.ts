#!/usr/bin/env tsx
/**
 * `chess`: the command line of the CHESS toolchain (cli.ts). Each command lives
 * in its own file under commands/ and is loaded lazily so `chess --help` stays fast.
 */
import { runCli } from './cli.ts';

process.exitCode = await runCli(process.argv.slice(2));
export {};
