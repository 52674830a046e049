/**
 * The linux-aarch64 device bundle, checked on this (x86-64) machine under qemu-user:
 *   pnpm -C benchmarks device-aarch64 [--out results/device-aarch64.json] [--chunks 4] [--ctx 128]
 *
 * Packs the sparse SmolLM2 (CHESS+ 25 %, column blocks, synthetic thresholds) and its dense
 * source for linux-aarch64 and for linux-x86_64 (`chess pack`'s code: the device programs are
 * built on first use, cross-compiled for AArch64 with Debian's toolchain; installed with
 * apt-get when missing), unpacks both in empty directories and runs:
 *   - `./run check` under `qemu-aarch64 -cpu max` (SDOT: the dot-product libraries) and
 *     `-cpu cortex-a53` (ARMv8.0-A: the baseline ones), with an empty environment;
 *   - `./run exec llama-bench` on the sparse model, 4 decoded tokens, under `-cpu max`;
 *   - `./run exec llama-perplexity` on the same short text (the last 3 Brown corpus documents)
 *     with each bundle: x86-64 natively, AArch64 under qemu; each AArch64 perplexity must be
 *     within 0.5 % of the x86-64 bundle's. Beside them: our kernels forced to other ISAs and
 *     to the portable reference (same results bit for bit by design), and the x86-64 bundle
 *     with only ggml's AVX2 backend (ggml's own backends differ in float summation order).
 * Not in the test suite: the two device builds take 20-40 minutes on 2 busy cores, beyond
 * the CI budget. Writes JSON with CPU, date and git revision; exits 1 when a check fails.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fetchDefaultModel } from '@chess/assets';
import { AARCH64_SYSROOT, CROSS_APT_PACKAGES, makeSparseTestModel } from '@chess/backend-llamacpp';
import { gitRevision, machineInfo } from '@chess/bench';
import { loadBrownCorpus } from '@chess/calibrate';
import { repoRoot, writeFileAtomic } from '@chess/core';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

function exec(cmd: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  const started = Date.now();
  return new Promise((resolvePromise) => {
    execFile(cmd, args, { maxBuffer: 256 << 20, cwd: options.cwd, env: options.env ?? process.env }, (error, stdout, stderr) => {
      resolvePromise({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
}

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
};

const log = (line: string): void => void process.stderr.write(`${line}\n`);

async function ensureCrossToolchain(): Promise<void> {
  const have = await exec('sh', ['-c', 'command -v aarch64-linux-gnu-g++ && command -v qemu-aarch64']);
  if (have.code === 0) return;
  log(`installing ${CROSS_APT_PACKAGES.join(' ')}`);
  const prefix = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  const apt = (...a: string[]) => exec(prefix[0] ?? 'apt-get', [...prefix.slice(1), ...(prefix.length ? ['apt-get'] : []), '-o', 'DPkg::Lock::Timeout=600', ...a], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if ((await apt('install', '-y', '--no-install-recommends', ...CROSS_APT_PACKAGES)).code !== 0) {
    await apt('update');
    const second = await apt('install', '-y', '--no-install-recommends', ...CROSS_APT_PACKAGES);
    if (second.code !== 0) throw new Error(`could not install ${CROSS_APT_PACKAGES.join(' ')}:\n${second.stderr}`);
  }
}

/** Final estimate of llama-perplexity's output. */
function perplexityOf(run: Run): number {
  const m = /Final estimate: PPL = ([\d.]+)/.exec(run.stderr + run.stdout);
  if (!m) throw new Error(`no final perplexity in llama-perplexity's output:\n${(run.stderr + run.stdout).slice(-3000)}`);
  return Number(m[1]);
}

async function main(): Promise<void> {
  const out = resolve(arg('--out', join(import.meta.dirname, '..', 'results', 'device-aarch64.json')));
  const ctx = Number(arg('--ctx', '128'));
  const chunks = Number(arg('--chunks', '4'));
  await ensureCrossToolchain();
  const work = await mkdtemp(join(tmpdir(), 'chess-device-aarch64-'));
  try {
    const source = await fetchDefaultModel();
    const sparseCached = await makeSparseTestModel({ method: 'chess+', source, layout: 'column-blocks', sparsity: 0.25, log });
    const dense = join(work, 'smollm2-dense.gguf');
    const sparse = join(work, 'smollm2-chess+25.gguf');
    await symlink(source, dense);
    await symlink(sparseCached, sparse);
    const text = join(work, 'text.txt');
    const brown = loadBrownCorpus();
    await writeFile(text, brown.documents.slice(-3).join('\n\n'));

    const bundles: Record<string, { dir: string; id: string; seconds: number }> = {};
    for (const target of ['linux-x86_64', 'linux-aarch64'] as const) {
      const started = Date.now();
      const archive = join(work, `${target}.tar.gz`);
      // the `chess pack` command itself
      const pack = await exec('tsx', [join(repoRoot(), 'apps', 'cli', 'src', 'main.ts'), 'pack', '--model', sparse, '--model', dense, '--target', target, '--out', archive]);
      process.stderr.write(pack.stderr);
      if (pack.code !== 0) throw new Error(`chess pack --target ${target} failed (exit ${pack.code})`);
      const packed = { id: /^bundle ([0-9a-f]+) /m.exec(pack.stderr)?.[1] ?? 'unknown' };
      const dir = join(work, target);
      await mkdir(dir);
      const untar = await exec('tar', ['-xzf', archive, '-C', dir]);
      if (untar.code !== 0) throw new Error(`tar -xzf ${archive}: ${untar.stderr}`);
      bundles[target] = { dir, id: packed.id, seconds: (Date.now() - started) / 1000 };
      log(`${target}: bundle ${packed.id} (${Math.round(bundles[target]!.seconds)} s)`);
    }
    // the x86-64 bundle restricted to ggml's AVX2 CPU backend (the AVX2+VNNI and AVX-512 ones removed):
    // how far ggml's own x86 variants move a perplexity on this text
    const avx2Dir = join(work, 'linux-x86_64-avx2');
    const copy = await exec('cp', ['-a', bundles['linux-x86_64']!.dir, avx2Dir]);
    if (copy.code !== 0) throw new Error(`cp -a: ${copy.stderr}`);
    await rm(join(avx2Dir, 'bin', 'libggml-cpu-avx512.so'));
    await rm(join(avx2Dir, 'bin', 'libggml-cpu-avx2vnni.so'));
    bundles['linux-x86_64-avx2'] = { dir: avx2Dir, id: bundles['linux-x86_64']!.id, seconds: 0 };
    const qemu = (cpu: string) => `qemu-aarch64 -L ${AARCH64_SYSROOT} -cpu ${cpu}`;
    const onDevice = (target: string, emulator: string | null, ...args: string[]) =>
      exec('env', ['-i', 'PATH=/usr/bin:/bin', ...(emulator ? [`CHESS_BUNDLE_EMULATOR=${emulator}`] : []), './run', ...args], { cwd: bundles[target]!.dir });

    const failures: string[] = [];
    const checks: Record<string, { code: number; stdout: string; stderr: string }> = {};
    for (const cpu of ['max', 'cortex-a53']) {
      const r = await onDevice('linux-aarch64', qemu(cpu), 'check');
      checks[cpu] = { code: r.code, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
      log(`aarch64 check (qemu ${cpu}): exit ${r.code}\n${r.stderr.trim()}`);
      if (r.code !== 0) failures.push(`./run check under qemu ${cpu} exited ${r.code}`);
    }
    if (!/will run dotprod/.test(checks.max!.stderr)) failures.push('qemu max (SDOT) did not select the dot-product libraries');
    if (!/will run armv8\.0/.test(checks['cortex-a53']!.stderr)) failures.push('qemu cortex-a53 did not select the ARMv8.0 libraries');

    const bench = await onDevice('linux-aarch64', qemu('max'), 'exec', 'llama-bench', '-m', 'models/smollm2-chess+25.gguf', '-p', '0', '-n', '4', '-r', '1', '-t', '2', '-o', 'json');
    let benchRow: Record<string, unknown> | null = null;
    try {
      benchRow = (JSON.parse(bench.stdout) as Record<string, unknown>[])[0] ?? null;
    } catch {
      failures.push(`llama-bench under qemu printed no JSON (exit ${bench.code}): ${bench.stderr.slice(-2000)}`);
    }
    log(`aarch64 llama-bench (qemu max): exit ${bench.code}, ${benchRow ? `${String(benchRow.avg_ts)} tok/s (emulated)` : 'no result'}`);

    // perplexity of each model on the same text: x86-64 natively (and, for the sparse model, with the
    // kernels forced to avx2 and to the portable reference: how much a change of float summation
    // order alone moves a thresholded model), AArch64 under qemu
    const pplArgs = (model: string) => ['exec', 'llama-perplexity', '-m', `models/${model}`, '-f', text, '-c', String(ctx), '--chunks', String(chunks), '-t', '2', '-b', String(ctx)];
    const runs: [string, string, string, string | null, string[]][] = [
      ['dense x86_64', 'smollm2-dense.gguf', 'linux-x86_64', null, []],
      ['dense x86_64 ggml avx2', 'smollm2-dense.gguf', 'linux-x86_64-avx2', null, []],
      ['dense aarch64-qemu-max', 'smollm2-dense.gguf', 'linux-aarch64', qemu('max'), []],
      ['sparse x86_64', 'smollm2-chess+25.gguf', 'linux-x86_64', null, []],
      ['sparse x86_64 kernels avx2', 'smollm2-chess+25.gguf', 'linux-x86_64', null, ['CHESS_KERNEL_ISA=avx2']],
      ['sparse x86_64 kernels ref', 'smollm2-chess+25.gguf', 'linux-x86_64', null, ['CHESS_KERNEL_ISA=ref']],
      ['sparse x86_64 ggml avx2', 'smollm2-chess+25.gguf', 'linux-x86_64-avx2', null, []],
      ['sparse aarch64-qemu-max kernels ref', 'smollm2-chess+25.gguf', 'linux-aarch64', qemu('max'), ['CHESS_KERNEL_ISA=ref']],
      ['sparse aarch64-qemu-max', 'smollm2-chess+25.gguf', 'linux-aarch64', qemu('max'), []],
      ['sparse aarch64-qemu-cortex-a53', 'smollm2-chess+25.gguf', 'linux-aarch64', qemu('cortex-a53'), []],
    ];
    const perplexity: Record<string, { ppl: number | null; seconds: number }> = {};
    for (const [name, model, target, emulator, env] of runs) {
      const r = await exec('env', ['-i', 'PATH=/usr/bin:/bin', ...env, ...(emulator ? [`CHESS_BUNDLE_EMULATOR=${emulator}`] : []), './run', ...pplArgs(model)], { cwd: bundles[target]!.dir });
      let ppl: number | null = null;
      try {
        ppl = perplexityOf(r);
      } catch (error) {
        failures.push(`${name}: ${(error as Error).message}`);
      }
      perplexity[name] = { ppl, seconds: r.seconds };
      log(`perplexity ${name}: ${ppl ?? 'failed'} (${Math.round(r.seconds)} s)`);
    }
    const rel = (a: string, b: string): number | null => {
      const x = perplexity[a]!.ppl;
      const y = perplexity[b]!.ppl;
      return x && y ? Math.round((Math.abs(x - y) / y) * 1e5) / 1e5 : null;
    };
    const relative = {
      'dense aarch64-qemu-max vs x86_64': rel('dense aarch64-qemu-max', 'dense x86_64'),
      'sparse aarch64-qemu-max vs x86_64': rel('sparse aarch64-qemu-max', 'sparse x86_64'),
      'sparse aarch64-qemu-cortex-a53 vs x86_64': rel('sparse aarch64-qemu-cortex-a53', 'sparse x86_64'),
      'sparse aarch64-qemu-cortex-a53 vs aarch64-qemu-max': rel('sparse aarch64-qemu-cortex-a53', 'sparse aarch64-qemu-max'),
      'sparse x86_64 kernels ref vs x86_64': rel('sparse x86_64 kernels ref', 'sparse x86_64'),
      'sparse x86_64 kernels avx2 vs x86_64': rel('sparse x86_64 kernels avx2', 'sparse x86_64'),
      'dense x86_64 ggml avx2 vs x86_64': rel('dense x86_64 ggml avx2', 'dense x86_64'),
      'sparse x86_64 ggml avx2 vs x86_64': rel('sparse x86_64 ggml avx2', 'sparse x86_64'),
      'sparse aarch64-qemu-max kernels ref vs aarch64-qemu-max': rel('sparse aarch64-qemu-max kernels ref', 'sparse aarch64-qemu-max'),
    };
    for (const [what, value] of Object.entries(relative)) {
      log(`relative difference ${what}: ${value === null ? '-' : `${(100 * value).toFixed(3)} %`}`);
      if (/^(dense|sparse) aarch64-qemu-(max|cortex-a53) vs x86_64$/.test(what) && (value === null || value > 0.005)) failures.push(`${what}: ${value} is not within 0.5 %`);
    }
    const result = {
      benchmark: 'device-aarch64',
      command: 'pnpm -C benchmarks device-aarch64',
      createdAt: new Date().toISOString(),
      machine: machineInfo(),
      gitRevision: gitRevision(),
      models: { sparse: 'SmolLM2-135M-Instruct Q4_1, CHESS+ 25 %, column blocks, synthetic thresholds (makeSparseTestModel)', dense: 'SmolLM2-135M-Instruct Q4_1' },
      bundles: Object.fromEntries(Object.entries(bundles).map(([k, v]) => [k, { id: v.id, packSeconds: Math.round(v.seconds) }])),
      checks,
      llamaBenchQemuMax: benchRow ? { n_gen: benchRow.n_gen, avg_ts: benchRow.avg_ts, cpu_info: benchRow.cpu_info, note: 'tokens/s under emulation: says nothing about a real device' } : null,
      perplexity: {
        text: `${brown.source}, last 3 documents`,
        ctx,
        chunks,
        values: perplexity,
        relativeDifference: relative,
        limit: 0.005,
        limitAppliesTo: 'each AArch64 perplexity against the x86-64 bundle on this machine; the x86 ggml AVX2 rows show how far ggml\'s own x86 backends move the same number, the kernels-ref rows that our kernel variants do not',
      },
      failures,
    };
    await writeFileAtomic(out, `${JSON.stringify(result, null, 2)}\n`);
    log(`wrote ${out}`);
    if (failures.length > 0) {
      log(`FAILED:\n- ${failures.join('\n- ')}`);
      process.exitCode = 1;
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
