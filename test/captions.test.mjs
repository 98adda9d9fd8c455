// Rows without a caption: failed as no_caption by default; with --missing-captions keep,
// stored without one (no .txt, a null caption) and no SimpleTuner config it would refuse.
// Real CLI runs against the test CDN on 127.0.0.1.
import assert from 'node:assert/strict';
import { existsSync, openAsBlob } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import * as arrow from 'apache-arrow';
import { ParquetFile } from 'parquet-wasm';
import { withTestCdn } from './support/cdn.mjs';
import { readResults, runCli } from './support/run.mjs';
import { loadLikeSimpleTuner } from './support/simpletuner.mjs';
import { readTar } from './support/tar.mjs';

/** metadata.parquet's rows by filename. @param {string} output */
async function readMetadata(output) {
  const file = await ParquetFile.fromFile(await openAsBlob(join(output, 'metadata.parquet')));
  const table = arrow.tableFromIPC((await file.read()).intoIPCStream());
  return new Map(table.toArray().map((row) => [row.filename, { caption: row.caption, source: row.caption_source }]));
}

describe('--missing-captions', () => {
  const context = withTestCdn();
  /** @param {string} id @param {string} photo @param {{ cogvlm_caption?: string | null, tags?: string | null }} captions */
  const row = (id, photo, captions) => JSON.stringify({ id, url: context.cdn.url(`/photos/${photo}?captions-${id}`), ...captions });
  // Functions: the CDN's address is known once the tests run.
  const captioned = () => row('k-1', 'aqua.jpg', { cogvlm_caption: 'a caption' });
  const tagged = () => row('k-2', 'wine.jpg', { cogvlm_caption: '  ', tags: 'wine, glass' });
  const bare = () => row('k-3', 'storm.jpg', { cogvlm_caption: null, tags: '' });

  test('fail (the default): a row without caption text fails no_caption, with no request', async () => {
    const { cdn, work } = context;
    const results = join(work.path, 'fail.ndjson');
    const run = await runCli(['--output', join(work.path, 'fail'), '--resolution', '64', '--results', results], { stdin: `${bare()}\n` });
    assert.equal(run.code, 0, run.stderr);
    const [line] = await readResults(results);
    assert.equal(line?.reason, 'no_caption');
    assert.equal(cdn.requests.get('/photos/storm.jpg?captions-k-3'), undefined);
  });

  test('keep, dir sink: the image without a .txt, a null caption in the metadata, its source recorded; no dataloader config while it lacks one, and resume still finds it', async () => {
    const { cdn, work } = context;
    const output = join(work.path, 'keep');
    const results = join(work.path, 'keep.ndjson');
    const config = join(output, 'simpletuner-dataloader.json');

    // Captioned samples only: SimpleTuner takes the folder as it is.
    const first = await runCli(['--output', output, '--resolution', '64', '--results', results], { stdin: `${captioned()}\n${tagged()}\n` });
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual((await readResults(results)).map((line) => [line.id, line.caption_source]).sort(), [['k-1', 'caption'], ['k-2', 'fallback']]);
    assert.equal((await loadLikeSimpleTuner(config)).samples.size, 2);

    // One more, without a caption: stored, and the config that would now be refused is gone.
    const args = ['--output', output, '--resolution', '64', '--missing-captions', 'keep', '--results', results];
    const second = await runCli(args, { stdin: `${captioned()}\n${tagged()}\n${bare()}\n` });
    assert.equal(second.code, 0, second.stderr);
    const byId = new Map((await readResults(results)).map((line) => [line.id, line]));
    assert.deepEqual([byId.get('k-1')?.reason, byId.get('k-2')?.reason], ['already_saved', 'already_saved']);
    assert.equal(byId.get('k-3')?.status, 'saved');
    assert.equal(byId.get('k-3')?.caption_source, 'none');
    assert.deepEqual((await readdir(output)).filter((name) => name.startsWith('k-')).sort(), ['k-1.png', 'k-1.txt', 'k-2.png', 'k-2.txt', 'k-3.png']);
    assert.deepEqual(
      Object.fromEntries(await readMetadata(output)),
      { 'k-1.png': { caption: 'a caption', source: 'caption' }, 'k-2.png': { caption: 'wine, glass', source: 'fallback' }, 'k-3.png': { caption: null, source: 'none' } },
    );
    assert.equal(existsSync(config), false, 'no config SimpleTuner would refuse');
    const notes = second.stderr.split('\n').filter((line) => line.startsWith('note: '));
    assert.deepEqual(notes.length, 1, second.stderr);
    assert.match(notes[0] ?? '', /^note: 1 stored sample\(s\) have no caption .*SimpleTuner refuses a metadata\.parquet with a null caption, so no simpletuner-dataloader\.json is written/);

    // A rerun finds the uncaptioned sample stored (it has no .txt to look for).
    const third = await runCli(args, { stdin: `${captioned()}\n${tagged()}\n${bare()}\n` });
    assert.equal(third.code, 0, third.stderr);
    assert.deepEqual((await readResults(results)).map((line) => line.reason), ['already_saved', 'already_saved', 'already_saved']);
    assert.equal(cdn.requests.get('/photos/storm.jpg?captions-k-3'), 1);
    assert.equal(existsSync(config), false);
  });

  test('keep, webdataset sink: no .txt member for the uncaptioned sample, caption null in its .json', async () => {
    const { work } = context;
    const output = join(work.path, 'keep-tar');
    const run = await runCli(['--output', output, '--sink', 'webdataset', '--resolution', '64', '--missing-captions', 'keep'], { stdin: `${captioned()}\n${bare()}\n` });
    assert.equal(run.code, 0, run.stderr);
    const members = await readTar(join(output, '00000.tar'));
    assert.deepEqual([...members.keys()].sort(), ['k-1.json', 'k-1.png', 'k-1.txt', 'k-3.json', 'k-3.png']);
    const json = JSON.parse(String(members.get('k-3.json')));
    assert.equal(json.caption, null);
    assert.equal(json.caption_source, 'none');
    assert.equal(String(members.get('k-1.txt')), 'a caption');
  });
});
