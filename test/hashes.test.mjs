// Hashes of what was downloaded: the sha256 of the fetched bytes next to the stored file's,
// in --results and the metadata, and --verify-hash-column against hashes in the input
// (sha256, md5 or sha512: --hash).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { openAsBlob } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as arrow from 'apache-arrow';
import { ParquetFile } from 'parquet-wasm';
import { writeParquetRows } from '../dist/demo/dataset-files.js';
import { PHOTOS, withTestCdn } from './support/cdn.mjs';
import { readResults, runCli } from './support/run.mjs';

/** @param {Buffer} bytes */
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

describe('hashes', () => {
  const context = withTestCdn();

  it('--results and metadata.parquet carry the sha256 of the fetched bytes and of the stored file', async () => {
    const { cdn, work } = context;
    const output = join(work.path, 'recorded');
    const results = join(work.path, 'recorded.ndjson');
    const rows = ['aqua.jpg', 'drop.png'].map((name, i) => JSON.stringify({ id: `h${i}`, url: cdn.url(`/photos/${name}`), cogvlm_caption: name }));
    const run = await runCli(['--output', output, '--resolution', '64', '--results', results], { stdin: `${rows.join('\n')}\n` });
    assert.equal(run.code, 0, run.stderr);
    const lines = await readResults(results);
    const file = await ParquetFile.fromFile(await openAsBlob(join(output, 'metadata.parquet')));
    const table = arrow.tableFromIPC((await file.read()).intoIPCStream());
    const metadata = new Map(table.toArray().map((row) => [row.filename, row]));
    for (const [i, name] of ['aqua.jpg', 'drop.png'].entries()) {
      const line = lines.find((result) => result.id === `h${i}`);
      const stored = await readFile(join(output, `h${i}.png`));
      assert.equal(line?.original_sha256, sha256(await readFile(join(PHOTOS, name))), `${name}: the original's hash`);
      assert.equal(line?.sha256, sha256(stored), `${name}: the stored file's hash`);
      assert.equal(metadata.get(`h${i}.png`)?.original_sha256, line?.original_sha256);
      assert.equal(metadata.get(`h${i}.png`)?.sha256, line?.sha256);
    }
  });

  it('--format original: the stored file is the fetched bytes, and both hashes are theirs', async () => {
    const { cdn, work } = context;
    const output = join(work.path, 'original');
    const results = join(work.path, 'original.ndjson');
    const run = await runCli(['--output', output, '--format', 'original', '--resize', 'none', '--results', results], { stdin: `${JSON.stringify({ id: 'o1', url: cdn.url('/photos/aqua.jpg'), cogvlm_caption: 'kept' })}\n` });
    assert.equal(run.code, 0, run.stderr);
    const [line] = await readResults(results);
    const original = sha256(await readFile(join(PHOTOS, 'aqua.jpg')));
    assert.equal(sha256(await readFile(join(output, 'o1.jpg'))), original);
    assert.equal(line?.original_sha256, original);
    assert.equal(line?.sha256, original);
  });

  it('--verify-hash-column fails bytes that differ as hash_mismatch, for good; an empty cell asks for nothing', async () => {
    const { cdn, work } = context;
    const aqua = sha256(await readFile(join(PHOTOS, 'aqua.jpg')));
    const input = join(work.path, 'hashed.parquet');
    const rows = [
      { id: 1, url: cdn.url('/photos/aqua.jpg'), cogvlm_caption: 'right hash', tags: aqua, width: 1, height: 1 },
      { id: 2, url: cdn.url('/photos/wine.jpg'), cogvlm_caption: 'wrong hash', tags: `sha256:${aqua.toUpperCase()}`, width: 1, height: 1 },
      { id: 3, url: cdn.url('/photos/storm.jpg'), cogvlm_caption: 'no hash', tags: null, width: 1, height: 1 },
    ];
    // The hash rides in the tags column here: a Parquet input reads only the columns it needs.
    await writeParquetRows(input, rows);
    const output = join(work.path, 'verified');
    const results = join(work.path, 'verified.ndjson');
    const args = ['--input', input, '--output', output, '--resolution', '64', '--verify-hash-column', 'tags', '--results', results];
    const run = await runCli(args);
    assert.equal(run.code, 0, run.stderr);
    const byId = new Map((await readResults(results)).map((line) => [line.id, line]));
    assert.equal(byId.get('1')?.status, 'saved');
    assert.equal(byId.get('2')?.reason, 'hash_mismatch');
    assert.match(byId.get('2')?.detail ?? '', /row 2 \(id 2\): .*wine\.jpg: the fetched bytes have sha256 [0-9a-f]{64}, the input says [0-9a-f]{64}$/);
    assert.equal(byId.get('3')?.status, 'saved');
    assert.match(run.stderr, /failed: hash_mismatch: row 2/);

    // Permanent: the next run does not fetch it again.
    const before = cdn.requests.get('/photos/wine.jpg');
    const rerun = await runCli(args);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.equal(cdn.requests.get('/photos/wine.jpg'), before);

    const missing = await runCli(['--input', input, '--output', join(work.path, 'missing'), '--verify-hash-column', 'sha']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error: .*hashed\.parquet has no column "sha" \(--verify-hash-column\)/);
  });

  it('--hash md5 and sha512: the fetched bytes are checked in that algorithm, original_sha256 stays a sha256', async () => {
    const { cdn, work } = context;
    const digest = async (/** @type {string} */ algorithm, /** @type {string} */ name) => createHash(algorithm).update(await readFile(join(PHOTOS, name))).digest('hex');
    for (const algorithm of ['md5', 'sha512']) {
      const input = join(work.path, `${algorithm}.ndjson`);
      const rows = [
        { id: 'right', url: cdn.url(`/photos/aqua.jpg?${algorithm}`), cogvlm_caption: 'right', hash: await digest(algorithm, 'aqua.jpg') },
        { id: 'prefixed', url: cdn.url(`/photos/drop.png?${algorithm}`), cogvlm_caption: 'prefixed', hash: `${algorithm.toUpperCase()}:${(await digest(algorithm, 'drop.png')).toUpperCase()}` },
        { id: 'wrong', url: cdn.url(`/photos/wine.jpg?${algorithm}`), cogvlm_caption: 'wrong', hash: await digest(algorithm, 'aqua.jpg') },
        // The sha256 of the right bytes is not their md5 / sha512.
        { id: 'sha256', url: cdn.url(`/photos/storm.jpg?${algorithm}`), cogvlm_caption: 'other algorithm', hash: await digest('sha256', 'storm.jpg') },
      ];
      await writeFile(input, rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
      const output = join(work.path, `hash-${algorithm}`);
      const results = join(work.path, `hash-${algorithm}.ndjson`);
      const run = await runCli(['--input', input, '--output', output, '--resolution', '64', '--verify-hash-column', 'hash', '--hash', algorithm, '--results', results]);
      assert.equal(run.code, 0, run.stderr);
      const byId = new Map((await readResults(results)).map((line) => [line.id, line]));
      assert.deepEqual(['right', 'prefixed', 'wrong', 'sha256'].map((id) => byId.get(id)?.reason ?? byId.get(id)?.status), ['saved', 'saved', 'hash_mismatch', 'hash_mismatch'], algorithm);
      const hex = algorithm === 'md5' ? 32 : 128;
      assert.match(byId.get('wrong')?.detail ?? '', new RegExp(`wine\\.jpg\\?${algorithm}: the fetched bytes have ${algorithm} ${await digest(algorithm, 'wine.jpg')}, the input says [0-9a-f]{${hex}}$`));
      assert.match(byId.get('sha256')?.detail ?? '', new RegExp(`the fetched bytes have ${algorithm} [0-9a-f]{${hex}}, the input says [0-9a-f]{64} \\(64 hex digits, the length of sha256: --hash sha256\\?\\)$`));
      assert.equal(byId.get('right')?.original_sha256, await digest('sha256', 'aqua.jpg'), 'the recorded hash of the fetched bytes is still their sha256');
    }

    const wrong = await runCli(['--output', join(work.path, 'hash-bad'), '--verify-hash-column', 'hash', '--hash', 'sha1'], { stdin: '' });
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /--hash.*sha1.*md5, sha256, sha512/);
  });

  it('--dedupe url skips a row whose URL was saved under another id, and says so', async () => {
    const { cdn, work } = context;
    const output = join(work.path, 'dedupe');
    const results = join(work.path, 'dedupe.ndjson');
    const row = (id, name) => JSON.stringify({ id, url: cdn.url(`/photos/${name}?dedupe`), cogvlm_caption: id });
    const first = await runCli(['--output', output, '--resolution', '64'], { stdin: `${row('a', 'otters.jpg')}\n` });
    assert.equal(first.code, 0, first.stderr);
    const args = ['--output', output, '--resolution', '64', '--dedupe', 'url', '--results', results];
    const second = await runCli(args, { stdin: `${[row('b', 'otters.jpg'), row('c', 'spiral.jpg'), row('a', 'otters.jpg')].join('\n')}\n` });
    assert.equal(second.code, 0, second.stderr);
    const byId = new Map((await readResults(results)).map((line) => [line.id, line]));
    assert.deepEqual([byId.get('b')?.reason, byId.get('c')?.status, byId.get('a')?.reason], ['duplicate_url', 'saved', 'already_saved']);
    assert.equal(cdn.requests.get('/photos/otters.jpg?dedupe'), 1, 'the URL was fetched once, for its first id');
    assert.match(second.stderr, /skipped \(.*duplicate_url 1/);

    const stateless = await runCli(['--output', join(work.path, 'dedupe-stateless'), '--dedupe', 'url', '--no-resume'], { stdin: '' });
    assert.equal(stateless.code, 2);
    assert.match(stateless.stderr, /^error: --dedupe url needs the resume state/);
  });
});
