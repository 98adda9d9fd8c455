// The handoff to the trainer: a dir output loads in SimpleTuner the first time, with no
// edits, even after a kill -9, read the way SimpleTuner reads it (support/simpletuner.mjs).
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { cp, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { createDirSink } from '../dist/sinks/dir.js';
import { PHOTO_FILES } from './support/cdn.mjs';
import { countImages, killRun, startCli, waitFor } from './support/child.mjs';
import { startFaultyServer } from './support/faulty-server.mjs';
import { readResults, runCli, tempDir } from './support/run.mjs';
import { loadLikeSimpleTuner } from './support/simpletuner.mjs';

/** @type {Awaited<ReturnType<typeof startFaultyServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof tempDir>>} */
let work;
before(async () => {
  server = await startFaultyServer();
  work = await tempDir();
});
after(async () => {
  await server.close();
  await work.cleanup();
});

/** @param {string} name @param {object[]} rows */
async function ndjson(name, rows) {
  const path = join(work.path, `${name}.ndjson`);
  await writeFile(path, rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
  return path;
}

/** A row of a bundled photo served after `delayMs`. @param {string} id @param {number} i @param {number} delayMs */
function photoRow(id, i, delayMs) {
  return { id, url: `${server.origin}/photo/${delayMs}/${PHOTO_FILES[i % PHOTO_FILES.length]}/${id}`, cogvlm_caption: `photo ${id}`, tags: 'tag one, tag two' };
}

/**
 * Everything SimpleTuner would train on is what the run saved: each image on disk has its
 * metadata row (nothing skipped), with the stored file's own size and the caption written
 * beside it.
 * @param {string} output @param {string[]} savedIds
 */
async function assertTrainsOnEverySavedImage(output, savedIds, where = (/** @type {string} */ id) => `${id}.png`) {
  const { samples, skipped } = await loadLikeSimpleTuner(join(output, 'simpletuner-dataloader.json'));
  assert.deepEqual(skipped, { metadata_missing: [], too_small: [], missing_caption: [] }, 'no image on disk is skipped');
  const trained = [...samples.keys()].map((path) => path.slice(output.length + 1)).sort();
  assert.deepEqual(trained, savedIds.map(where).sort(), 'every saved image, and nothing else');
  for (const [path, sample] of samples) {
    const header = await sharp(path).metadata();
    assert.deepEqual([sample.width, sample.height], [header.width, header.height], `${path}: metadata size is the file's`);
    assert.equal(sample.caption, await readFile(path.replace(/\.png$/, '.txt'), 'utf8'), `${path}: caption`);
  }
  return samples;
}

describe('SimpleTuner reads the dir output', () => {
  test('after a kill -9 and a rerun, every saved image trains: the config is a list, the metadata covers the disk, no caption is empty', async () => {
    const rows = [
      ...Array.from({ length: 10 }, (_, i) => photoRow(`k${i}`, i, 150)),
      { ...photoRow('empty-caption', 1, 0), cogvlm_caption: '' }, // the tags stand in
      { ...photoRow('null-caption', 2, 0), cogvlm_caption: null, tags: ['list', 'of tags'] },
      { ...photoRow('blank', 3, 0), cogvlm_caption: ' \n\t ', tags: '' }, // nothing to train on
      { ...photoRow('no-text', 4, 0), cogvlm_caption: null, tags: null },
      { id: 'gone', url: `${server.origin}/status/404/gone`, cogvlm_caption: 'a photo that is not there' },
    ];
    const input = await ndjson('kill', rows);
    const output = join(work.path, 'kill-output');
    const results = join(work.path, 'kill-results.ndjson');
    const args = ['--input', input, '--output', output, '--concurrency', '2', '--resolution', '256', '--quiet'];

    // 1. Killed mid-run, with no periodic refresh: images on disk, metadata never written.
    const killed = startCli([...args, '--metadata-every', '0']);
    await waitFor(async () => (await countImages(output)) >= 3);
    await killRun(killed, output);
    const onDisk = await countImages(output);
    assert.ok(!(await readdir(output)).includes('metadata.parquet'), 'the killed run never wrote its metadata');
    const stale = await runCli(['status', '--output', output]);
    assert.match(stale.stdout, new RegExp(`metadata.parquet: not written yet \\(${onDisk} images stored\\)`));

    // 2. The next run brings the metadata up to date before it fetches anything: its
    //    only row never answers, yet SimpleTuner already trains on every image on disk.
    const stalled = startCli(['--input', await ndjson('stalled', [{ id: 'late', url: `${server.origin}/stall-headers/late`, cogvlm_caption: 'late' }]), '--output', output]);
    try {
      await waitFor(async () => (await readdir(output)).includes('simpletuner-dataloader.json'));
      const savedBefore = (await readdir(output)).filter((name) => name.endsWith('.png')).map((name) => name.slice(0, -4));
      assert.equal(savedBefore.length, onDisk);
      await assertTrainsOnEverySavedImage(output, savedBefore);
      assert.match(stalled.stderr(), /bringing metadata.parquet up to date/);
    } finally {
      await killRun(stalled, output);
    }

    // 3. A rerun finishes the set.
    const final = await runCli([...args, '--results', results]);
    assert.equal(final.code, 0, final.stderr);
    const outcomes = new Map((await readResults(results)).map((result) => [result.id, result]));
    for (const id of ['blank', 'no-text']) {
      assert.equal(outcomes.get(id)?.reason, 'no_caption', id);
      assert.equal(outcomes.get(id)?.attempts, 0, `${id}: no request made`);
      assert.equal(server.requestsFor(`/photo/0/${PHOTO_FILES[id === 'blank' ? 3 : 4]}/${id}`), 0, `${id}: never fetched`);
    }
    assert.equal(outcomes.get('gone')?.reason, 'http_404');
    const saved = rows.map((row) => row.id).filter((id) => !['blank', 'no-text', 'gone'].includes(id));
    const samples = await assertTrainsOnEverySavedImage(output, saved);
    assert.equal(samples.get(join(output, 'empty-caption.png'))?.caption, 'tag one, tag two');
    assert.equal(samples.get(join(output, 'null-caption.png'))?.caption, 'list, of tags');
    const status = await runCli(['status', '--output', output]);
    assert.match(status.stdout, new RegExp(`metadata.parquet: covers ${saved.length} of ${saved.length} stored images, written \\S+ \\S+ UTC\\n`));

    // The config, as SimpleTuner needs it: image dataset + default text embeds, absolute paths.
    const config = JSON.parse(await readFile(join(output, 'simpletuner-dataloader.json'), 'utf8'));
    assert.deepEqual(
      config.map((/** @type {any} */ entry) => [entry.id, entry.dataset_type]),
      [['kill-output', 'image'], ['kill-output-text-embeds', 'text_embeds']],
    );
    assert.deepEqual([config[0].resolution_type, config[0].resolution, config[0].minimum_image_size], ['pixel', 256, 256]);
    assert.equal(config[0].instance_data_dir, output);
    assert.equal(config[0].cache_dir_vae, join(output, 'cache', 'vae'));
    assert.deepEqual([config[1].default, config[1].cache_dir], [true, join(output, 'cache', 'text')]);
  });

  test('a long run refreshes the metadata as it goes: a folder read mid-run trains on what it holds', async () => {
    const rows = [...Array.from({ length: 4 }, (_, i) => photoRow(`m${i}`, i, 0)), { id: 'hangs', url: `${server.origin}/stall-headers/hangs`, cogvlm_caption: 'hangs' }];
    const output = join(work.path, 'midrun');
    const run = startCli(['--input', await ndjson('midrun', rows), '--output', output, '--resolution', '128', '--metadata-every', '0.2', '--quiet']);
    try {
      await waitFor(async () => {
        if (!(await readdir(output).catch(() => /** @type {string[]} */ ([]))).includes('simpletuner-dataloader.json')) return false;
        return (await loadLikeSimpleTuner(join(output, 'simpletuner-dataloader.json')).catch(() => ({ samples: new Map() }))).samples.size === 4;
      });
      assert.equal(run.child.exitCode, null, 'the run is still going');
      await assertTrainsOnEverySavedImage(output, ['m0', 'm1', 'm2', 'm3']);
      const status = JSON.parse((await runCli(['status', '--output', output, '--json'])).stdout);
      assert.deepEqual([status.metadata.stored, status.metadata.metadataRows, status.metadata.current], [4, 4, true]);
    } finally {
      await killRun(run, output);
    }
  });

  test('resolution settings follow --resize; --dataloader-root writes the config for where the folder will be', async () => {
    const rows = Array.from({ length: 3 }, (_, i) => photoRow(`r${i}`, i, 0));
    const input = await ndjson('modes', rows);
    const cases = [
      { flags: ['--resize', 'area', '--megapixels', '0.05', '--round', '16'], type: 'area', resolution: 0.05 },
      { flags: ['--resize', 'center-crop', '--resolution', '192'], type: 'pixel', resolution: 192 },
      { flags: ['--resize', 'longest', '--resolution', '320'], type: 'pixel_area', resolution: 320 },
      { flags: ['--resize', 'shortest', '--resolution', '200'], type: 'pixel', resolution: 192 }, // rounded to a multiple of 64, as the images were
    ];
    for (const [i, { flags, type, resolution }] of cases.entries()) {
      const output = join(work.path, `mode-${i}`);
      const run = await runCli(['--input', input, '--output', output, '--quiet', ...flags]);
      assert.equal(run.code, 0, run.stderr);
      const [image] = JSON.parse(await readFile(join(output, 'simpletuner-dataloader.json'), 'utf8'));
      assert.deepEqual([image.resolution_type, image.resolution], [type, resolution], flags.join(' '));
      const samples = await assertTrainsOnEverySavedImage(output, ['r0', 'r1', 'r2']);
      // The minimum is the smallest stored image, in SimpleTuner's unit: nothing is filtered.
      const sizes = [...samples.values()];
      const smallest = {
        pixel: Math.min(...sizes.map(({ width, height }) => Math.min(width, height))),
        area: Math.floor(Math.min(...sizes.map(({ width, height }) => width * height)) / 1e3) / 1e3,
        pixel_area: Math.floor(Math.sqrt(Math.min(...sizes.map(({ width, height }) => width * height)))),
      }[type];
      assert.equal(image.minimum_image_size, smallest, `${flags.join(' ')}: minimum`);
    }

    // Written for another machine's path, then copied there: it loads from the new place.
    const moved = join(work.path, 'gpu-box', 'datasets', 'photos');
    const output = join(work.path, 'to-move');
    const run = await runCli(['--input', input, '--output', output, '--quiet', '--resolution', '128', '--dataloader-root', `${moved}/`]);
    assert.equal(run.code, 0, run.stderr);
    await cp(output, moved, { recursive: true });
    const { id, samples } = await loadLikeSimpleTuner(join(moved, 'simpletuner-dataloader.json'));
    assert.equal(id, 'photos');
    assert.equal(samples.size, 3);
    for (const path of samples.keys()) assert.ok(path.startsWith(`${moved}/`), path);

    // Two outputs in one config: ids and VAE caches do not clash.
    const [first] = JSON.parse(await readFile(join(work.path, 'mode-0', 'simpletuner-dataloader.json'), 'utf8'));
    const [second, textEmbeds] = JSON.parse(await readFile(join(work.path, 'mode-1', 'simpletuner-dataloader.json'), 'utf8'));
    assert.notEqual(first.id, second.id);
    assert.notEqual(first.cache_dir_vae, second.cache_dir_vae);
    const combined = join(work.path, 'combined.json');
    await writeFile(combined, JSON.stringify([first, textEmbeds]));
    assert.equal((await loadLikeSimpleTuner(combined)).samples.size, 3);

    const relative = await runCli(['--input', input, '--output', join(work.path, 'rel'), '--dataloader-root', 'datasets/photos']);
    assert.equal(relative.code, 2);
    assert.match(relative.stderr, /^error: --dataloader-root must be an absolute path/m);
  });

  test('--subfolders spreads the files over folders; SimpleTuner finds every one, and resume does too', async () => {
    const output = join(work.path, 'subfolders');
    const ids = Array.from({ length: 12 }, (_, i) => `sub${i}`);
    const input = await ndjson('subfolders', ids.map((id, i) => photoRow(id, i, 0)));
    const args = ['--input', input, '--output', output, '--resolution', '64', '--subfolders', '4'];
    const first = await runCli(args);
    assert.equal(first.code, 0, first.stderr);
    const folders = (await readdir(output, { withFileTypes: true })).filter((entry) => entry.isDirectory() && !entry.name.startsWith('.')).map((entry) => entry.name).sort();
    assert.ok(folders.length > 1 && folders.every((name) => ['000', '001', '002', '003'].includes(name)), `folders ${folders.join(' ')}`);
    assert.deepEqual((await readdir(output)).filter((name) => name.endsWith('.png') || name.endsWith('.txt')), [], 'no sample file in the output folder itself');
    const folderOf = new Map();
    for (const folder of folders) for (const name of await readdir(join(output, folder))) folderOf.set(name.replace(/\.(png|txt)$/, ''), folder);
    await assertTrainsOnEverySavedImage(output, ids, (id) => `${folderOf.get(id)}/${id}.png`);

    const requests = ids.map((id, i) => server.requestsFor(`/photo/0/${PHOTO_FILES[i % PHOTO_FILES.length]}/${id}`));
    const again = await runCli(args);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /12 skipped \(already_saved 12\)/);
    assert.deepEqual(ids.map((id, i) => server.requestsFor(`/photo/0/${PHOTO_FILES[i % PHOTO_FILES.length]}/${id}`)), requests, 'nothing fetched again');
    const other = await runCli([...args.slice(0, -1), '8']);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /was written with --subfolders 4; this run asks for 8/);
  });

  test('an original SimpleTuner cannot open is refused for good (sink_refused), not stored to be skipped silently', async () => {
    const output = join(work.path, 'heif');
    await mkdir(output);
    /** @type {string[]} */
    const logged = [];
    const sink = await createDirSink({
      output,
      format: 'original',
      samplesPerShard: 1,
      log: (line) => logged.push(line),
      sizeRule: { resize: 'none', resolution: 1024, megapixels: 1, round: 64, upscale: true },
      datasetRoot: output,
      metadataEveryMs: 0,
    });
    const image = await readFile(new URL('../examples/photos/storm.jpg', import.meta.url));
    const hash = createHash('sha256').update(image).digest('hex');
    /** @type {import('../dist/sinks/contract.js').Sample} */
    const sample = { id: 'h1', caption: 'c', captionSource: 'caption', image, sha256: hash, originalSha256: hash, format: 'heif', extension: 'heif', width: 1, height: 1, originalWidth: 1, originalHeight: 1, url: 'http://127.0.0.1/h1', row: {} };
    await assert.rejects(sink.write(sample), (/** @type {any} */ error) => error.transient === false && /heif original cannot be opened by SimpleTuner/.test(error.message));
    await sink.write({ ...sample, id: 'j1', format: 'jpeg', extension: 'jpg' });
    await sink.close();
    assert.deepEqual((await readdir(output)).filter((name) => !name.startsWith('.')).sort(), ['j1.jpg', 'j1.txt', 'metadata.parquet', 'simpletuner-dataloader.json']);

    // Through a run, a refusal is a permanent failure: the next run does not try it again.
    const refusing = join(work.path, 'refusing-sink.mjs');
    await writeFile(refusing, "export default () => ({ async write() { throw Object.assign(new Error('not for me'), { transient: false }); }, async close() {} });\n");
    const input = await ndjson('refused', [photoRow('x1', 0, 0)]);
    const results = join(work.path, 'refused-results.ndjson');
    const first = await runCli(['--input', input, '--output', join(work.path, 'refused'), '--sink', refusing, '--results', results, '--quiet']);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual((await readResults(results)).map((r) => [r.id, r.status, r.reason]), [['x1', 'failed', 'sink_refused']]);
    const second = await runCli(['--input', input, '--output', join(work.path, 'refused'), '--sink', refusing, '--quiet']);
    assert.match(second.stderr, /0 saved, 0 failed, 1 skipped/);
  });
});
