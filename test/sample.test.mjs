// --sample FRACTION --seed N: a fixed subset of the rows, chosen by a hash of each row's id,
// the same on every run and in every format; the rows left out are not part of the run.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeNdjsonRows, writeParquetRows } from '../dist/demo/dataset-files.js';
import { startCountingServer } from './support/counting-server.mjs';
import { readResults, runCli, tempDir } from './support/run.mjs';

/**
 * The documented rule, written out again here: the first 8 bytes of SHA-256("SEED:ID"),
 * big-endian, below FRACTION x 2^64.
 * @param {string} id @param {number} fraction @param {number} seed
 */
function kept(id, fraction, seed) {
  const hash = createHash('sha256').update(`${seed}:${id}`).digest().readBigUInt64BE(0);
  return hash < BigInt(Math.floor(fraction * 2 ** 64));
}

describe('--sample', () => {
  /** @type {Awaited<ReturnType<typeof tempDir>>} */
  let work;
  /** @type {Awaited<ReturnType<typeof startCountingServer>>} */
  let images;
  const ndjson = () => join(work.path, 'rows.ndjson');
  const parquet = () => join(work.path, 'rows.parquet');
  const ids = Array.from({ length: 300 }, (_, i) => String(i + 1));

  before(async () => {
    work = await tempDir();
    images = await startCountingServer({ delayMs: 0 });
    const rows = ids.map((id) => ({ id: Number(id), url: `${images.base}/img/${id}.png`, cogvlm_caption: `photo ${id}`, tags: null, width: 96, height: 64 }));
    await writeParquetRows(parquet(), rows, 64);
    await writeNdjsonRows(ndjson(), rows);
    // A line that is not JSON has no id to sample by: it is kept, its damage told.
    await writeFile(ndjson(), `${await readFile(ndjson(), 'utf8')}{"id": 301, "url": \n`);
  });
  after(async () => {
    await images.close();
    await work.cleanup();
  });

  /** @param {string} name @param {string[]} args */
  async function run(name, args) {
    const results = join(work.path, `${name}.ndjson`);
    const summary = join(work.path, `${name}.summary.json`);
    const outcome = await runCli([...args, '--output', join(work.path, name), '--resolution', '32', '--results', results, '--summary', summary, '--quiet']);
    assert.equal(outcome.code, 0, outcome.stderr);
    return { results: await readResults(results), summary: JSON.parse(await readFile(summary, 'utf8')), stderr: outcome.stderr };
  }

  it('keeps the rows the hash rule picks, only those are fetched and counted, and again on the next run', async () => {
    const expected = ids.filter((id) => kept(id, 0.1, 0));
    assert.ok(expected.length > 15 && expected.length < 50, `${expected.length} of 300`);
    const requestsBefore = images.requests.size;
    const first = await run('ndjson', ['--input', ndjson(), '--sample', '0.1']);
    const saved = first.results.filter((result) => result.status === 'saved').map((result) => result.id);
    assert.deepEqual(saved.sort(), [...expected].sort());
    assert.deepEqual(first.results.filter((result) => result.status !== 'saved').map((result) => [result.index, result.reason]), [[301, 'bad_row']]);
    assert.equal(first.summary.rows, expected.length + 1, 'the rows left out are not in the summary');
    assert.equal(first.summary.skipped, 0);
    assert.equal(images.requests.size - requestsBefore, expected.length, 'only the kept rows were fetched');

    const again = await run('ndjson', ['--input', ndjson(), '--sample', '0.1']);
    assert.equal(again.summary.skipped, expected.length, 'the same rows, already saved');

    // By id, whatever the format or the order of the rows.
    const fromParquet = await run('parquet', ['--input', parquet(), '--sample', '0.1']);
    assert.deepEqual(fromParquet.results.map((result) => result.id).sort(), [...expected].sort());
  });

  it('another seed is another draw; a larger fraction with the same seed keeps a superset', async () => {
    const seven = await run('seed-7', ['--input', parquet(), '--sample', '0.1', '--seed', '7']);
    const sevenIds = seven.results.map((result) => result.id).sort();
    assert.deepEqual(sevenIds, ids.filter((id) => kept(id, 0.1, 7)).sort());
    assert.notDeepEqual(sevenIds, ids.filter((id) => kept(id, 0.1, 0)).sort());
    const quarter = await run('quarter', ['--input', parquet(), '--sample', '0.25', '--seed', '7']);
    const quarterIds = new Set(quarter.results.map((result) => result.id));
    assert.equal(quarterIds.size, ids.filter((id) => kept(id, 0.25, 7)).length);
    assert.ok(sevenIds.every((id) => quarterIds.has(id)), 'every row of the 10% sample is in the 25% one');
  });

  it('refuses a fraction outside (0, 1] and a --seed without --sample', async () => {
    for (const value of ['0', '1.5', '-0.1', 'half']) {
      const outcome = await runCli(['--input', ndjson(), '--sample', value, '--output', join(work.path, 'refused')]);
      assert.equal(outcome.code, 2, value);
      assert.match(outcome.stderr, /--sample.*expected a fraction above 0 and at most 1/, value);
    }
    const seedOnly = await runCli(['--input', ndjson(), '--seed', '3', '--output', join(work.path, 'refused')]);
    assert.equal(seedOnly.code, 2);
    assert.match(seedOnly.stderr, /^error: --seed chooses which rows --sample keeps: give --sample FRACTION too\n$/);
  });
});
