/**
 * Runs one chess command over many files in this one process (malformed-corpus.test.ts):
 * spawning a CLI per (file, command) pair would cost seconds each. For every case it
 * appends to the result file, before and after the run, so a hang or a crash (which ends
 * the process) still names the case: `{"start": name}`, then `{ name, exit, ms, stdout,
 * stderr, hwmBytes, leftovers }`. hwmBytes is the process's peak RSS (VmHWM) after the
 * case: the peak during the case is at most that. leftovers: files in the output
 * directory after the case (none may be left).
 *
 *   tsx corpus-runner.ts spec.json   spec: { args: string[] (with {file}), cases: {name, path}[], outDir, results }
 */
import { appendFileSync, readFileSync, readdirSync } from 'node:fs';
import { runCli } from '../cli.ts';

interface Spec {
  args: string[];
  cases: { name: string; path: string }[];
  outDir: string;
  results: string;
}

const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Spec;

function peakRss(): number {
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
}

const realStdout = process.stdout.write.bind(process.stdout);
const realStderr = process.stderr.write.bind(process.stderr);
for (const c of spec.cases) {
  appendFileSync(spec.results, `${JSON.stringify({ start: c.name })}\n`);
  let stdout = '';
  let stderr = '';
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  const started = performance.now();
  let exit: number;
  try {
    exit = await runCli(spec.args.map((a) => a.replaceAll('{file}', c.path)));
  } finally {
    process.stdout.write = realStdout;
    process.stderr.write = realStderr;
  }
  const ms = performance.now() - started;
  const leftovers = readdirSync(spec.outDir);
  appendFileSync(spec.results, `${JSON.stringify({ name: c.name, exit, ms, stdout, stderr, hwmBytes: peakRss(), leftovers })}\n`);
}
