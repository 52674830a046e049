/** The options of `pnpm -C benchmarks frontier` (run.ts): defaults, parsing and the command line that reproduces a run. */
import { UsageError } from '@chess/core';

export const FRONTIER_PEERS = ['chess', 'chess+', 'cats', 'teal'] as const;

export interface FrontierOptions {
  windows: number;
  ctx: number;
  threads: number;
  /** Byte budgets of the `budget` models (fractions of the dense model's bytes per token). */
  budgets: number[];
  /** Per peer method its target sparsities. */
  peers: Record<string, number[]>;
  calibrationTokens: number;
  rebuild: boolean;
  rebuildBudget: boolean;
  /** The budget (one of `budgets`) whose model is compared with dense on the 8 tasks; null: no task evaluation. */
  tasksAt: number | null;
  /** Documents per task of that comparison (the first N of each task, the same for both models). */
  taskLimit: number;
}

/**
 * Per peer the target sparsities whose bytes span the budgets 0.85 / 0.78 / 0.72 with a point on
 * each side (the comparison interpolates a peer between two of its points; without a point below
 * a budget's bytes the peer drops out of that comparison).
 *
 * The byte model (docs/gguf-sparse.md §7) on SmolLM2-135M Q4_1 at an achieved sparsity equal to the
 * target (`readWeightTable` + `columnBlockReadBytes`): token_embd (Q8_0, also the tied output head,
 * read whole) is 0.312 of the bytes; over the 30 layers W_gate, W_up and W_down 0.172 each, W_q and
 * W_o 0.064 each, W_k and W_v 0.021 each. chess and cats keep W_gate and attention dense and read
 * W_up's surviving rows and W_down's kept columns (column blocks: a group's scales while any of its
 * 32 columns is kept): 0.907 of the dense bytes at 0.3, 0.845 at 0.5, 0.784 at 0.7, 0.753 at 0.8,
 * 0.721 at 0.9, 0.700 at 0.95, and no less than 0.658 at any sparsity. The committed runs read a
 * little more than that (held-out sparsity a little below the calibrated target: chess 50 % 0.849,
 * cats 50 % 0.849; the budget models 0.853 / 0.785 / 0.726), so 0.9 does not reach the 0.72 budget
 * and 0.95 does, and 0.7 sits just above the 0.78 budget. chess+ (also W_q, W_o): 0.876 / 0.794 /
 * 0.711 at 0.3 / 0.5 / 0.7; teal (all seven projections): 0.835 at 0.3, 0.725 at 0.5.
 */
export const DEFAULT_PEERS: Readonly<Record<string, readonly number[]>> = {
  'chess+': [0.3, 0.5, 0.7],
  teal: [0.2, 0.3, 0.5, 0.6],
  chess: [0.3, 0.5, 0.7, 0.8, 0.9, 0.95],
  cats: [0.3, 0.5, 0.7, 0.8, 0.9, 0.95],
};

export function frontierDefaults(): FrontierOptions {
  return {
    windows: 10,
    ctx: 512,
    threads: 2,
    budgets: [0.85, 0.78, 0.72],
    peers: Object.fromEntries(Object.entries(DEFAULT_PEERS).map(([m, xs]) => [m, [...xs]])),
    calibrationTokens: 6144,
    rebuild: false,
    rebuildBudget: false,
    tasksAt: 0.72,
    taskLimit: 200,
  };
}

const bad = (message: string, details: Record<string, unknown>) => new UsageError('BENCH_BAD_ARGUMENT', message, details);

/** A comma-separated list of numbers each satisfying `ok`; an error naming `flag` otherwise. */
function numberList(flag: string, value: string, ok: (x: number) => boolean, expected: string): number[] {
  const parts = value.split(',');
  const xs = parts.map((p) => (p.trim() === '' ? Number.NaN : Number(p)));
  if (!xs.every((x) => Number.isFinite(x) && ok(x))) throw bad(`${flag} ${value}: expected ${expected}`, { flag, value });
  return xs;
}

function parsePeers(value: string): Record<string, number[]> {
  // chess+:0.3,0.5;teal:0.2,0.5
  const peers: Record<string, number[]> = {};
  for (const part of value.split(';')) {
    const [m, xs, extra] = part.split(':');
    const ok = extra === undefined && xs !== undefined && (FRONTIER_PEERS as readonly string[]).includes(m!);
    const list = ok ? xs.split(',').map((p) => (p.trim() === '' ? Number.NaN : Number(p))) : [];
    if (!ok || !list.every((x) => Number.isFinite(x) && x >= 0 && x < 1)) {
      throw bad(`--peers: bad entry '${part}': expected method:s1,s2;... with a method of ${FRONTIER_PEERS.join(', ')} and sparsities in [0, 1)`, { flag: '--peers', value });
    }
    peers[m!] = list;
  }
  return peers;
}

/** The frontier benchmark's options from its arguments; every error is BENCH_BAD_ARGUMENT and names the option. */
export function parseFrontierArgs(argv: readonly string[]): FrontierOptions {
  const o = frontierDefaults();
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--rebuild') {
      o.rebuild = true;
      continue;
    }
    if (flag === '--rebuild-budget') {
      o.rebuildBudget = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw bad(`${flag} needs a value`, { flag });
    if (flag === '--windows' || flag === '--ctx' || flag === '--threads' || flag === '--task-limit') {
      const n = Number(value);
      if (!Number.isInteger(n) || n <= 0) throw bad(`${flag} ${value}: expected a positive integer`, { flag, value });
      if (flag === '--task-limit') o.taskLimit = n;
      else o[flag === '--windows' ? 'windows' : flag === '--ctx' ? 'ctx' : 'threads'] = n;
    } else if (flag === '--budgets') o.budgets = numberList(flag, value, (b) => b > 0 && b <= 1, 'comma-separated budgets in (0, 1]');
    else if (flag === '--peers') o.peers = parsePeers(value);
    else if (flag === '--tasks-at') {
      const b = value.trim() === '' ? Number.NaN : Number(value);
      if (value !== 'none' && !(Number.isFinite(b) && b > 0 && b <= 1)) throw bad(`${flag} ${value}: expected one budget in (0, 1] (one of --budgets) or 'none'`, { flag, value });
      o.tasksAt = value === 'none' ? null : b;
    } else throw bad(`unknown option ${flag}`, { flag });
  }
  if (o.tasksAt !== null && !o.budgets.includes(o.tasksAt)) {
    throw bad(`--tasks-at ${o.tasksAt}: not one of --budgets ${o.budgets.join(',')} (the task evaluation uses a budget model of this run; --tasks-at none skips it)`, {
      flag: '--tasks-at',
      value: o.tasksAt,
      budgets: o.budgets,
    });
  }
  return o;
}

/** The command line that reproduces a run with these options (recorded in results/frontier.json). */
export function frontierCommand(o: FrontierOptions): string {
  const peers = Object.entries(o.peers)
    .map(([m, xs]) => `${m}:${xs.join(',')}`)
    .join(';');
  return (
    `pnpm -C benchmarks frontier --windows ${o.windows} --ctx ${o.ctx} --threads ${o.threads} --budgets ${o.budgets.join(',')} --peers '${peers}'` +
    ` --tasks-at ${o.tasksAt ?? 'none'}${o.tasksAt === null ? '' : ` --task-limit ${o.taskLimit}`}`
  );
}
