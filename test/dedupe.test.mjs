// --dedupe url and --dedupe content: within a run, rows in flight with one URL (or the same
// bytes) wait for each other; across runs, the state remembers what was saved. Real CLI runs
// against a server on 127.0.0.1 whose first answer for a URL is held until the test lets it
// go, so the rows are certainly in flight together.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { openAsBlob } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import * as arrow from 'apache-arrow';
import { ParquetFile } from 'parquet-wasm';
import { PHOTOS, PHOTO_FILES } from './support/cdn.mjs';
import { startCli, waitFor } from './support/child.mjs';
import { readResults, runCli } from './support/run.mjs';
import { server, useServerAndFolder, work } from './support/server-and-folder.mjs';

useServerAndFolder();

/** @param {string} name @param {Array<{ id: string, url: string, cogvlm_caption?: string }>} rows */
async function writeRows(name, rows) {
  const input = join(work.path, `${name}.ndjson`);
  await writeFile(input, rows.map((row) => `${JSON.stringify({ cogvlm_caption: `photo ${row.id}`, ...row })}\n`).join(''));
  return input;
}

/** Lines in a --results file being written (0 before it exists). @param {string} path */
async function resultLines(path) {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').length - 1;
}

/** @param {string} path */
const pathOf = (path) => new URL(path).pathname;
/** @param {Buffer} bytes */
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

describe('--dedupe url within a run', () => {
  test('rows 39 and 40 repeat the URLs of rows 6 and 7 while those are in flight: both wait and are duplicate_url; every URL is requested once', async () => {
    const url = (i) => (i === 6 || i === 7 ? `${server.origin}/gate/200/${PHOTO_FILES[i % PHOTO_FILES.length]}/in-flight-${i}` : `${server.origin}/photo/0/${PHOTO_FILES[i % PHOTO_FILES.length]}/in-flight-${i}`);
    const rows = Array.from({ length: 40 }, (_, i) => i + 1).map((n) => ({ id: `u-${n}`, url: url(n === 39 ? 6 : n === 40 ? 7 : n) }));
    const input = await writeRows('in-flight', rows);
    const output = join(work.path, 'in-flight');
    const results = join(work.path, 'in-flight-results.ndjson');
    const run = startCli(['--input', input, '--output', output, '--resolution', '64', '--concurrency', '4', '--dedupe', 'url', '--results', results, '--log-every', '0']);
    // Rows 1-5 and 8-38 recorded while the first answers for rows 6 and 7 are held: rows 39 and
    // 40 were read long before (the resume stage takes 64 rows at once) and now wait.
    await waitFor(async () => (await resultLines(results)) >= 36).catch((error) => {
      throw new Error(`${error.message}; the run printed: ${run.stderr()}`);
    });
    assert.equal(server.requestsFor(pathOf(url(6))), 1, "row 6's request is held");
    server.open('in-flight-6');
    server.open('in-flight-7');
    const { code, stderr } = await run.exited;
    assert.equal(code, 0, stderr);

    const byId = new Map((await readResults(results)).map((line) => [line.id, line]));
    assert.equal(byId.size, 40);
    assert.deepEqual([byId.get('u-39')?.reason, byId.get('u-40')?.reason], ['duplicate_url', 'duplicate_url']);
    assert.deepEqual([byId.get('u-39')?.attempts, byId.get('u-40')?.attempts], [0, 0]);
    for (let n = 1; n <= 38; n++) assert.equal(byId.get(`u-${n}`)?.status, 'saved', `u-${n}`);
    for (let n = 1; n <= 38; n++) assert.equal(server.requestsFor(pathOf(url(n))), 1, `the URL of row ${n} was requested once`);
    assert.match(stderr, /38 saved, 0 failed, 2 skipped \(duplicate_url 2\)/);
    const images = (await readdir(output)).filter((name) => name.endsWith('.png'));
    assert.equal(images.length, 38);
  });

  test('the first row with a URL fails: the row waiting for it is fetched after it, not beside it, and saved', async () => {
    const gated = `${server.origin}/gate/500/aqua.jpg/first-fails`;
    const filler = (n) => ({ id: `f-${n}`, url: `${server.origin}/photo/0/${PHOTO_FILES[n]}/first-fails-${n}` });
    const input = await writeRows('first-fails', [{ id: 'f-a', url: gated }, { id: 'f-b', url: gated }, filler(3), filler(4), filler(5), filler(6)]);
    const output = join(work.path, 'first-fails');
    const results = join(work.path, 'first-fails-results.ndjson');
    const run = startCli(['--input', input, '--output', output, '--resolution', '64', '--retries', '0', '--dedupe', 'url', '--results', results, '--log-every', '0']);
    // The rows after f-b are recorded: f-b was read before them and waits for f-a.
    await waitFor(async () => (await resultLines(results)) >= 4).catch((error) => {
      throw new Error(`${error.message}; the run printed: ${run.stderr()}`);
    });
    server.open('first-fails');
    const { code, stderr } = await run.exited;
    assert.equal(code, 0, stderr);

    const byId = new Map((await readResults(results)).map((line) => [line.id, line]));
    assert.equal(byId.get('f-a')?.reason, 'http_500');
    assert.equal(byId.get('f-b')?.status, 'saved', 'the first failed: the second is fetched');
    assert.equal(byId.get('f-b')?.attempts, 1);
    const requests = server.log.filter((entry) => entry.path === pathOf(gated));
    assert.equal(requests.length, 2, 'one request per row');
    const [first, second] = requests;
    assert.ok(first?.closedAt !== undefined && second !== undefined && second.at >= first.closedAt, 'the second request came after the first was answered');
    assert.deepEqual((await readdir(output)).filter((name) => name.startsWith('f-b.')).sort(), ['f-b.png', 'f-b.txt']);
  });
});

describe('--dedupe content', () => {
  test('two rows with the same bytes in flight at once store one sample; later runs match saved bytes by sha256, and url,content does both', async () => {
    const aqua = sha256(await readFile(join(PHOTOS, 'aqua.jpg')));
    const output = join(work.path, 'content');
    const results = join(work.path, 'content-results.ndjson');
    const first = [
      { id: 'c-1', url: `${server.origin}/gate/200/aqua.jpg/content-1` },
      { id: 'c-2', url: `${server.origin}/gate/200/aqua.jpg/content-2` },
      { id: 'c-3', url: `${server.origin}/photo/0/wine.jpg/content-3` },
    ];
    const run = startCli(['--input', await writeRows('content-1', first), '--output', output, '--resolution', '64', '--dedupe', 'content', '--results', results, '--log-every', '0']);
    // Both requests are held, then answered together: both bodies arrive before either is stored.
    await waitFor(() => server.requestsFor(pathOf(first[0].url)) === 1 && server.requestsFor(pathOf(first[1].url)) === 1);
    server.open('content-1');
    server.open('content-2');
    const { code, stderr } = await run.exited;
    assert.equal(code, 0, stderr);
    const lines = await readResults(results);
    const aquaLines = lines.filter((line) => line.id === 'c-1' || line.id === 'c-2');
    assert.deepEqual(aquaLines.map((line) => line.status).sort(), ['saved', 'skipped'], 'one of the two is stored');
    const kept = aquaLines.find((line) => line.status === 'saved');
    const duplicate = aquaLines.find((line) => line.status === 'skipped');
    assert.equal(duplicate?.reason, 'duplicate_content');
    assert.equal(duplicate?.original_sha256, aqua);
    assert.equal(duplicate?.attempts, 1, 'it was fetched: the hash is known only then');
    assert.equal(kept?.original_sha256, aqua);
    assert.match(stderr, /2 saved, 0 failed, 1 skipped \(duplicate_content 1\)/);
    assert.deepEqual((await readdir(output)).filter((name) => name.startsWith(`${duplicate?.id}.`)), [], 'nothing stored for the duplicate');
    const file = await ParquetFile.fromFile(await openAsBlob(join(output, 'metadata.parquet')));
    const table = arrow.tableFromIPC((await file.read()).intoIPCStream());
    assert.deepEqual(table.toArray().map((row) => row.filename).sort(), [`${kept?.id}.png`, 'c-3.png']);

    // A later run: new URLs with saved bytes, a saved URL, and something new.
    const second = [
      { id: 'c-4', url: `${server.origin}/photo/0/aqua.jpg/content-4` },
      { id: 'c-5', url: first[2].url },
      { id: 'c-6', url: `${server.origin}/photo/0/storm.jpg/content-6` },
    ];
    const rerun = await runCli(['--input', await writeRows('content-2', second), '--output', output, '--resolution', '64', '--dedupe', 'url,content', '--results', results]);
    assert.equal(rerun.code, 0, rerun.stderr);
    const byId = new Map((await readResults(results)).map((line) => [line.id, line]));
    assert.equal(byId.get('c-4')?.reason, 'duplicate_content');
    assert.equal(byId.get('c-5')?.reason, 'duplicate_url');
    assert.equal(byId.get('c-6')?.status, 'saved');
    assert.equal(server.requestsFor(pathOf(first[2].url)), 1, 'a saved URL is not requested again');

    const stateless = await runCli(['--output', join(work.path, 'content-stateless'), '--dedupe', 'content', '--no-resume'], { stdin: '' });
    assert.equal(stateless.code, 2);
    assert.match(stateless.stderr, /^error: --dedupe content needs the resume state/);
    const unknown = await runCli(['--output', join(work.path, 'content-unknown'), '--dedupe', 'url,pixels'], { stdin: '' });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--dedupe.*expected one or more of url, content/);
  });
});
