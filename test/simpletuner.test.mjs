// The handoff to the trainer: a dir output loads in SimpleTuner the first time, with no
// edits, even after a kill -9, read the way SimpleTuner reads it (support/simpletuner.mjs).
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { cp, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { createDirSink } from '../dist/sinks/dir.js';
import { PHOTO_FILES } from './support/cdn.mjs';
import { countImages, killRun, startCli, waitFor } from './support/child.mjs';
import { readResults, runCli } from './support/run.mjs';
import { planSize } from '../dist/image/size-rule.js';
import { simpleTunerConfig } from '../dist/sinks/simpletuner.js';
import { datasetsLikeSimpleTuner, loadLikeSimpleTuner, meetsMinimum } from './support/simpletuner.mjs';
import { server, useServerAndFolder, work } from './support/server-and-folder.mjs';

useServerAndFolder();

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
    assert.equal(sample.caption, await readFile(path.replace(/\.[a-z]+$/, '.txt'), 'utf8'), `${path}: caption`);
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
    const stored = Number(/metadata.parquet: not written yet \((\d+) images stored\)/.exec(stale.stdout)?.[1]);
    // A kill between renaming a sample's files into place and recording them leaves files
    // no record has: at most one per fetch in flight (--concurrency 2).
    assert.ok(stored <= onDisk && stored >= onDisk - 2, `${stored} recorded of ${onDisk} on disk`);

    // 2. The next run brings the metadata up to date before it fetches anything: its
    //    only row never answers, yet SimpleTuner already trains on every image on disk.
    const stalled = startCli(['--input', await ndjson('stalled', [{ id: 'late', url: `${server.origin}/stall-headers/late`, cogvlm_caption: 'late' }]), '--output', output, '--resolution', '256']);
    try {
      await waitFor(async () => (await readdir(output)).includes('simpletuner-dataloader.json'));
      // The files no record has are gone: what is on disk is what the metadata covers.
      const savedBefore = (await readdir(output)).filter((name) => name.endsWith('.png')).map((name) => name.slice(0, -4));
      assert.equal(savedBefore.length, stored);
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
    // The caches are per model: SimpleTuner fills in {model_family} and {id}.
    assert.equal(config[0].cache_dir_vae, join(output, 'cache', 'vae', '{model_family}', '{id}'));
    assert.deepEqual([config[1].default, config[1].cache_dir], [true, join(output, 'cache', 'text', '{model_family}')]);
    for (const modelFamily of ['flux', 'sdxl']) {
      const [image, text] = await datasetsLikeSimpleTuner(join(output, 'simpletuner-dataloader.json'), { modelFamily });
      assert.equal(image.cache_dir_vae, join(output, 'cache', 'vae', modelFamily, 'kill-output'), modelFamily);
      assert.equal(text.cache_dir, join(output, 'cache', 'text', modelFamily), modelFamily);
      assert.equal(image.instance_data_dir, output, 'no other path changes');
    }
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
    // The minimum is what every image the rule stores has, in SimpleTuner's unit:
    const cases = [
      // 2/3 of 0.05 megapixels less half a multiple: a long thin image's shorter side can round down from 1.5 multiples to 1
      { flags: ['--resize', 'area', '--megapixels', '0.05', '--round', '16'], type: 'area', resolution: 0.05, minimum: 0.033204 },
      { flags: ['--resize', 'center-crop', '--resolution', '192'], type: 'pixel', resolution: 192, minimum: 192 },
      // longer side 320, shorter side at least one multiple of 64: the square of 64 x 320 pixels
      { flags: ['--resize', 'longest', '--resolution', '320'], type: 'pixel_area', resolution: 320, minimum: 143 },
      { flags: ['--resize', 'shortest', '--resolution', '200'], type: 'pixel', resolution: 192, minimum: 192 }, // rounded to a multiple of 64, as the images were
      // Smaller than the target, kept as fetched: any size can be stored.
      { flags: ['--resize', 'shortest', '--resolution', '1024', '--no-upscale', '--format', 'jpeg'], type: 'pixel', resolution: 1024, minimum: 1, extension: 'jpg' },
    ];
    for (const [i, { flags, type, resolution, minimum, extension = 'png' }] of cases.entries()) {
      const output = join(work.path, `mode-${i}`);
      const run = await runCli(['--input', input, '--output', output, '--quiet', ...flags]);
      assert.equal(run.code, 0, run.stderr);
      const [image] = JSON.parse(await readFile(join(output, 'simpletuner-dataloader.json'), 'utf8'));
      assert.deepEqual([image.resolution_type, image.resolution, image.minimum_image_size], [type, resolution, minimum], flags.join(' '));
      // ... so SimpleTuner filters none of them out.
      await assertTrainsOnEverySavedImage(output, ['r0', 'r1', 'r2'], (id) => `${id}.${extension}`);
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
    const combined = join(work.path, 'combined.json');
    await writeFile(combined, JSON.stringify([first, second, textEmbeds]));
    const [firstRead, secondRead] = await datasetsLikeSimpleTuner(combined);
    assert.notEqual(firstRead.cache_dir_vae, secondRead.cache_dir_vae);
    await writeFile(combined, JSON.stringify([first, textEmbeds]));
    assert.equal((await loadLikeSimpleTuner(combined)).samples.size, 3);
    // One folder listed twice (two resolutions): a new id is all the copy needs, {id} keeps the caches apart.
    await writeFile(combined, JSON.stringify([first, { ...first, id: `${first.id}-512`, resolution: 0.25 }, textEmbeds]));
    const twice = await datasetsLikeSimpleTuner(combined);
    assert.deepEqual(twice.slice(0, 2).map((dataset) => dataset.cache_dir_vae), [join(work.path, 'mode-0', 'cache', 'vae', 'flux', 'mode-0'), join(work.path, 'mode-0', 'cache', 'vae', 'flux', 'mode-0-512')]);

    const relative = await runCli(['--input', input, '--output', join(work.path, 'rel'), '--dataloader-root', 'datasets/photos']);
    assert.equal(relative.code, 2);
    assert.match(relative.stderr, /^error: --dataloader-root must be an absolute path/m);
  });

  test('minimum_image_size holds for every size a rule can store, down to the worst rounding', () => {
    /** @type {number[]} */
    const sides = [];
    for (let side = 1; side <= 3000; side += side < 130 ? 1 : 37) sides.push(side);
    const rules = [];
    for (const upscale of [true, false]) {
      // 224 and 24 are halves of a multiple that round up: the float resize can land just below and round down.
      for (const [resolution, round] of [[1024, 64], [224, 64], [24, 16], [200, 64], [512, 8], [100, 3]]) {
        for (const resize of ['shortest', 'center-crop', 'longest', 'none']) rules.push({ resize, resolution, megapixels: 1, round, upscale });
      }
      for (const [megapixels, round] of [[1, 64], [0.05, 16], [1.048576, 64], [0.004, 64], [8, 64]]) rules.push({ resize: 'area', resolution: 1024, megapixels, round, upscale });
    }
    for (const rule of rules) {
      const [image] = /** @type {any[]} */ (simpleTunerConfig('/data/photos', /** @type {any} */ (rule)));
      let tightest = Infinity;
      for (const width of sides) {
        for (const height of sides) {
          const plan = planSize({ width, height }, /** @type {any} */ (rule));
          const stored = plan.kind === 'scale' || plan.kind === 'crop' ? plan : { width, height };
          assert.ok(meetsMinimum(image.resolution_type, image.minimum_image_size, stored.width, stored.height), `${JSON.stringify(rule)}: ${width}x${height} stored at ${stored.width}x${stored.height} is under ${image.minimum_image_size}`);
          if (image.resolution_type === 'pixel') tightest = Math.min(tightest, Math.min(stored.width, stored.height) - image.minimum_image_size);
        }
      }
      // In pixel mode the minimum is no looser than it must be: some stored image sits on it.
      if (image.resolution_type === 'pixel') assert.equal(tightest, 0, `${JSON.stringify(rule)}: minimum ${image.minimum_image_size}`);
    }
  });

  test('the config follows the settings, not the images: a refresh after more samples rewrites it unchanged', async () => {
    const output = join(work.path, 'stable');
    const config = join(output, 'simpletuner-dataloader.json');
    // --round 16 keeps the shapes apart: the smallest stored area moves as photos arrive.
    const args = ['--output', output, '--resize', 'longest', '--resolution', '320', '--round', '16', '--quiet'];
    const first = await runCli(['--input', await ndjson('stable-1', [photoRow('s0', 0, 0)]), ...args]);
    assert.equal(first.code, 0, first.stderr);
    const written = await readFile(config, 'utf8');
    const areaOf = async () => Math.min(...[...(await loadLikeSimpleTuner(config)).samples.values()].map(({ width, height }) => width * height));
    const areaBefore = await areaOf();

    // 16:9, 2:3 and 1.78:1 photos: under the old rule (the smallest stored image) the minimum moved.
    const more = [4, 2, 10].map((photo, i) => photoRow(`s${i + 1}`, photo, 0));
    const second = await runCli(['--input', await ndjson('stable-2', more), ...args]);
    assert.equal(second.code, 0, second.stderr);
    assert.ok((await areaOf()) < areaBefore, 'smaller images arrived');
    assert.equal(await readFile(config, 'utf8'), written, 'the same config, byte for byte');
    await assertTrainsOnEverySavedImage(output, ['s0', 's1', 's2', 's3']);

    // A rerun with a larger target stores nothing new, but its config's minimum is above the
    // earlier images: the run says so, and SimpleTuner would indeed skip them.
    const larger = await runCli(['--input', await ndjson('stable-3', [photoRow('s0', 0, 0)]), '--output', output, '--resolution', '512']);
    assert.equal(larger.code, 0, larger.stderr);
    assert.match(larger.stderr, /warning: 4 stored image\(s\) are smaller than simpletuner-dataloader\.json's minimum_image_size for this run's size settings/);
    const { skipped } = await loadLikeSimpleTuner(config);
    assert.equal(skipped.too_small.length, 4);
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
