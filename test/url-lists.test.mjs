// URL lists (.txt: one image URL a line, ids are line numbers) and TSV (CSV with tabs),
// as img2dataset reads them.
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { withTestCdn } from './support/cdn.mjs';
import { readResults, runCli } from './support/run.mjs';

describe('URL lists and TSV', () => {
  const context = withTestCdn();

  /** Runs the CLI and gives [index, id, status or reason] per result, by line. @param {string} name @param {string[]} args */
  async function run(name, args) {
    const { work } = context;
    const results = join(work.path, `${name}.ndjson`);
    const outcome = await runCli([...args, '--output', join(work.path, name), '--resolution', '32', '--results', results, '--quiet']);
    assert.equal(outcome.code, 0, outcome.stderr);
    return (await readResults(results)).map((result) => [result.index, result.id ?? null, result.reason ?? result.status]).sort((a, b) => a[0] - b[0]);
  }

  it('.txt: a URL a line, ids are line numbers; blank and # lines skipped but counted; no captions', async () => {
    const { cdn, work } = context;
    const lines = [
      cdn.url('/photos/aqua.jpg?txt'),
      '',
      '# photos from the test CDN',
      `   ${cdn.url('/photos/wine.jpg?txt')}  `,
      'ftp://example.com/photo.jpg',
      `${cdn.url('/photos/storm.jpg?')}${'x'.repeat(2000)}`,
      `${cdn.url('/photos/storm.jpg?txt')}\r`,
    ];
    const text = `${lines.join('\n')}\n`;
    const list = join(work.path, 'list.txt');
    await writeFile(list, text);
    // A URL list has no captions: its rows fail no_caption, before any request (unless
    // --missing-captions keep, below).
    const expected = [
      [1, '1', 'no_caption'],
      [4, '4', 'no_caption'],
      [5, '5', 'bad_url'],
      [6, null, 'bad_row'],
      [7, '7', 'no_caption'],
    ];
    const requestsBefore = [...cdn.requests.values()].reduce((sum, count) => sum + count, 0);
    assert.deepEqual(await run('txt', ['--input', list, '--max-row-bytes', '1024']), expected);
    assert.equal([...cdn.requests.values()].reduce((sum, count) => sum + count, 0), requestsBefore, 'rows without captions are refused before any request');

    // --rows counts lines; compressed lists and --input-format txt read alike.
    assert.deepEqual(await run('txt-rows', ['--input', list, '--rows', '2-5']), expected.slice(1, 3));
    await writeFile(join(work.path, 'list.txt.gz'), gzipSync(text));
    assert.deepEqual(await run('txt-gz', ['--input', join(work.path, 'list.txt.gz'), '--max-row-bytes', '1024']), expected);
    await writeFile(join(work.path, 'list.urls'), text);
    assert.deepEqual(await run('txt-format', ['--input', join(work.path, 'list.urls'), '--input-format', 'txt', '--max-row-bytes', '1024']), expected);

    // With --missing-captions keep, the images of a URL list are stored, uncaptioned.
    const kept = await run('txt-uncaptioned', ['--input', list, '--max-row-bytes', '1024', '--missing-captions', 'keep']);
    assert.deepEqual(kept, expected.map(([line, id, reason]) => [line, id, reason === 'no_caption' ? 'saved' : reason]));
    assert.deepEqual((await readdir(join(work.path, 'txt-uncaptioned'))).filter((name) => /^\d+\./.test(name)).sort(), ['1.png', '4.png', '7.png'], 'images, no captions');

    const keep = await runCli(['--input', list, '--keep-columns', 'url', '--output', join(work.path, 'txt-keep')]);
    assert.equal(keep.code, 2);
    assert.match(keep.stderr, /^error: .*list\.txt is a list of URLs: it has no columns for --keep-columns to keep\n$/);
  });

  it('.tsv: CSV with tabs, quoted fields may hold tabs, commas, quotes and line breaks', async () => {
    const { cdn, work } = context;
    const rows = [
      ['id', 'url', 'cogvlm_caption', 'tags'],
      ['t1', cdn.url('/photos/aqua.jpg?tsv'), '"a caption with\ta tab, a comma and ""quotes"""', 'x'],
      ['t2', cdn.url('/photos/wine.jpg?tsv'), '"two\nlines"', ''],
      ['t3', cdn.url('/photos/storm.jpg?tsv'), 'plain, with a comma', ''],
      ['t4', 'ftp://example.com/x.jpg', 'refused', ''],
    ];
    const input = join(work.path, 'rows.tsv');
    await writeFile(input, `${rows.map((row) => row.join('\t')).join('\r\n')}\r\n`);
    assert.deepEqual(await run('tsv', ['--input', input]), [[1, 't1', 'saved'], [2, 't2', 'saved'], [3, 't3', 'saved'], [4, 't4', 'bad_url']]);
    const caption = (/** @type {string} */ id) => readFile(join(work.path, 'tsv', `${id}.txt`), 'utf8');
    assert.equal(await caption('t1'), 'a caption with\ta tab, a comma and "quotes"');
    assert.equal(await caption('t2'), 'two lines');
    assert.equal(await caption('t3'), 'plain, with a comma');

    // A CSV file read as TSV has one column, and is told so.
    const csv = join(work.path, 'rows.csv');
    await writeFile(csv, 'id,url,cogvlm_caption\n1,http://127.0.0.1/a.jpg,a\n');
    const wrong = await runCli(['--input', csv, '--input-format', 'tsv', '--output', join(work.path, 'tsv-wrong')]);
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.match(wrong.stderr, /^error: .*rows\.csv has no column "url" \(--url-column\).*; columns found: id,url,cogvlm_caption\n$/);
  });
});
