// Image URLs that are local paths or file:// URLs: refused (bad_url) unless
// --allow-local-files, then read from disk like a fetched body (bounded, sniffed, hashed),
// relative paths from the input file's folder.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { PHOTOS } from './support/cdn.mjs';
import { startFaultyServer } from './support/faulty-server.mjs';
import { readResults, runCli, tempDir } from './support/run.mjs';

describe('--allow-local-files', () => {
  /** @type {Awaited<ReturnType<typeof tempDir>>} */
  let work;
  /** @type {Awaited<ReturnType<typeof startFaultyServer>>} */
  let web;
  let data = '';
  let input = '';
  /** Each row's URL and what becomes of it with the flag. @type {Array<[string, string]>} */
  let rows = [];

  before(async () => {
    work = await tempDir();
    web = await startFaultyServer();
    data = join(work.path, 'data');
    await mkdir(join(data, 'photos'), { recursive: true });
    await mkdir(join(work.path, 'elsewhere'));
    for (const name of ['wine.jpg', 'storm.jpg', 'flowers.webp', 'aqua.jpg']) await copyFile(join(PHOTOS, name), join(data, 'photos', name));
    await writeFile(join(data, 'notes.txt'), 'root:x:0:0:root:/root:/bin/bash\n');
    const fifo = spawnSync('mkfifo', [join(data, 'photos', 'pipe.jpg')]).status === 0;
    rows = [
      ['photos/wine.jpg', 'saved'],
      [join(data, 'photos', 'storm.jpg'), 'saved'],
      [pathToFileURL(join(data, 'photos', 'flowers.webp')).href, 'saved'],
      ['photos/missing.jpg', 'file_unreadable'],
      ['photos', 'file_unreadable'],
      ['notes.txt', 'not_image'],
      ['photos/aqua.jpg', 'too_large'],
      [`${web.origin}/to-file/local`, 'bad_url'],
      ['file://elsewhere.example/photos/wine.jpg', 'bad_url'],
      ...(fifo ? /** @type {Array<[string, string]>} */ ([['photos/pipe.jpg', 'file_unreadable']]) : []),
    ];
    input = join(data, 'rows.ndjson');
    await writeFile(input, rows.map(([url], i) => `${JSON.stringify({ id: `r${i + 1}`, url, cogvlm_caption: `row ${i + 1}` })}\n`).join(''));
  });
  after(async () => {
    await web.close();
    await work.cleanup();
  });

  /** @param {string} name @param {string[]} flags */
  async function run(name, flags, options = {}) {
    const results = join(work.path, `${name}.ndjson`);
    const outcome = await runCli(['--input', input, '--output', join(work.path, name), '--resolution', '32', '--max-bytes', '150000', '--results', results, '--quiet', ...flags], options);
    assert.equal(outcome.code, 0, outcome.stderr);
    return new Map((await readResults(results)).map((result) => [result.id, result]));
  }

  it('without the flag, every local path and file:// URL fails bad_url naming the flag, and nothing is read', async () => {
    const results = await run('refused', []);
    rows.forEach(([url], i) => {
      const result = results.get(`r${i + 1}`);
      assert.equal(result.reason, 'bad_url', `${url}: ${JSON.stringify(result)}`);
      assert.equal(result.attempts, url.startsWith('http') ? 1 : 0, url);
      assert.equal(result.url, url, 'the URL as the input gives it');
      if (!url.startsWith('http') && !url.startsWith('file://elsewhere')) assert.match(result.detail, /--allow-local-files reads/, url);
    });
    assert.match(results.get('r1').detail, /^row 1 \(id r1\): photos\/wine\.jpg: not a URL \(no http:\/\/ or https:\/\/\); if it is the path of a file on this machine, --allow-local-files reads it$/);
    assert.match(results.get('r3').detail, /file: URL names a file of this machine: only --allow-local-files reads those$/);
  });

  it('with the flag, files are read like fetched bodies: relative paths from the input\'s folder, bounded, sniffed, hashed; a redirect to file: is still refused', async () => {
    // Started in another folder: relative paths still lead into the input's.
    const results = await run('allowed', ['--allow-local-files'], { cwd: join(work.path, 'elsewhere') });
    rows.forEach(([url, expected], i) => {
      const result = results.get(`r${i + 1}`);
      assert.equal(result.status === 'saved' ? 'saved' : result.reason, expected, `${url}: ${JSON.stringify(result)}`);
    });
    assert.equal(results.get('r1').url, join(data, 'photos', 'wine.jpg'));
    const sha256 = async (/** @type {string} */ name) => createHash('sha256').update(await readFile(join(data, 'photos', name))).digest('hex');
    assert.equal(results.get('r1').original_sha256, await sha256('wine.jpg'));
    assert.equal(results.get('r3').original_sha256, await sha256('flowers.webp'));
    assert.match(results.get('r4').detail, /photos\/missing\.jpg: no such file$/);
    assert.match(results.get('r5').detail, /: a folder, not a file$/);
    assert.match(results.get('r6').detail, /notes\.txt: file is not an image \(starts with "root:x:0:0:root:"\)$/);
    assert.match(results.get('r7').detail, /aqua\.jpg: file of 200353 bytes exceeds --max-bytes 150000$/);
    assert.match(results.get('r8').detail, /redirect to file: refused/);
    assert.match(results.get('r9').detail, /not a file URL of this machine/);
    if (results.has('r10')) assert.match(results.get('r10').detail, /pipe\.jpg: not a regular file$/);
    assert.equal(results.get('r1').attempts, 1, 'a file is read once');
  });

  it('rows from standard input: relative paths from the working directory', async () => {
    const results = join(work.path, 'stdin.ndjson');
    const outcome = await runCli(['--output', join(work.path, 'stdin'), '--resolution', '32', '--allow-local-files', '--results', results, '--quiet'], {
      cwd: data,
      stdin: `${JSON.stringify({ id: 's1', url: 'photos/storm.jpg', cogvlm_caption: 'storm' })}\n`,
    });
    assert.equal(outcome.code, 0, outcome.stderr);
    const [result] = await readResults(results);
    assert.equal(result.status, 'saved', JSON.stringify(result));
    assert.equal(result.url, join(data, 'photos', 'storm.jpg'));
  });
});
