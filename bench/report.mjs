#!/usr/bin/env node
// `npm run bench:report`: what `report` costs over the whole dataset's state. Builds (once,
// cached in .bench-cache/) an output as a dir run over photo-concept-bucket leaves it: a
// resume state of 567,597 rows (95% saved, the rest failed for a mix of reasons, over three
// days, most from one host) and the dir sink's index of the saved ones, their files being
// the bundled photos. Then runs `node dist/pipeline.js report` on it and watches the
// process tree: wall time and peak resident memory, against the targets (30 s, 300 MiB).
//
// Usage: npm run bench:report -- [--rows N] [--thumbnails N]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { SampleIndex } from '../dist/sinks/sample-index.js';
import { StateStore } from '../dist/state/store.js';
import { datasetCaption, datasetId } from './dataset-rows.mjs';
import { watchProcessTree } from './proc.mjs';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const PHOTOS = join(ROOT, 'examples/photos');
const PHOTO_FILES = ['aqua.jpg', 'dragonfly.jpg', 'friends.jpg', 'wine.jpg', 'canyon-wren.jpg', 'yellow-flower.jpg', 'otters.jpg', 'storm.jpg', 'drop.png', 'flowers.webp', 'spiral.jpg', 'sunset.jpg'];
const FAILURES = ['http_404', 'http_404', 'http_404', 'http_410', 'http_403', 'not_image', 'decode_error', 'timeout_body', 'http_429', 'connection_error'];
const HOSTS = ['images.pexels.com', 'images.pexels.com', 'images.pexels.com', 'images.pexels.com', 'cdn.example.org', 'photos.example.net'];
/** Original sizes like Pexels photos, and what --resolution 1024 makes of them. */
const SIZES = [
  [6000, 4000, 1536, 1024],
  [4000, 6000, 1024, 1536],
  [5472, 3648, 1536, 1024],
  [4608, 3072, 1536, 1024],
  [3840, 2160, 1856, 1024],
  [4000, 4000, 1024, 1024],
  [2560, 1600, 1664, 1024],
];

const { values: flags } = parseArgs({ options: { rows: { type: 'string', default: '567597' }, thumbnails: { type: 'string', default: '200' } } });
const total = Number(flags.rows);
const output = join(ROOT, '.bench-cache', `report-${total}`);

if (!existsSync(join(output, '.pipeline', 'dir-index.sqlite'))) {
  console.log(`building an output of ${total} rows in ${output} (once)...`);
  await rm(output, { recursive: true, force: true });
  await mkdir(join(output, 'photos'), { recursive: true });
  await mkdir(join(output, '.pipeline'), { recursive: true });
  for (const file of PHOTO_FILES) {
    await copyFile(join(PHOTOS, file), join(output, 'photos', file));
    await copyFile(join(PHOTOS, 'captions.tsv'), join(output, 'photos', file.replace(/\.[^.]+$/, '.txt')));
  }
  // The schema as the tool creates it; the rows inserted in bulk (the tool writes one at a time).
  const store = StateStore.open(output);
  const run = store.startRun({ sink: 'dir', format: 'png', resize: 'shortest', resolution: 1024, megapixels: 1, round: 64, upscale: true });
  store.close();
  new SampleIndex(output, 'dir').close();
  const state = new Database(join(output, '.pipeline', 'state.sqlite'));
  const index = new Database(join(output, '.pipeline', 'dir-index.sqlite'));
  const start = Date.parse('2026-11-20T00:00:00Z');
  const span = 3 * 24 * 3600_000;
  const saved = state.prepare(`INSERT INTO samples (id, status, last_run, width, height, bytes, updated_at, url, bytes_fetched, original_width, original_height, caption_source, caption_words)
    VALUES (?, 'saved', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const failed = state.prepare(`INSERT INTO samples (id, status, reason, transient, failed_runs, last_run, updated_at, url, detail, bytes_fetched) VALUES (?, 'failed', ?, 0, 1, ?, ?, ?, ?, 0)`);
  const indexed = index.prepare(`INSERT INTO samples (id, filename, caption, width, height, original_width, original_height, sha256, original_sha256, url, shard, committed)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 1)`);
  state.transaction(() => {
    index.transaction(() => {
      for (let i = 0; i < total; i++) {
        const id = String(datasetId(i));
        const at = new Date(start + Math.floor((i / total) * span)).toISOString().replace('T', ' ').slice(0, 19);
        const url = `https://${HOSTS[i % HOSTS.length]}/photos/${id}/pexels-photo-${id}.jpeg`;
        if (i % 20 === 7) {
          const reason = FAILURES[Math.floor(i / 20) % FAILURES.length];
          failed.run(id, reason, run, at, url, `row ${i + 1} (id ${id}): ${url}: ${reason.replace('_', ' ')}`);
          continue;
        }
        const [ow, oh, w, h] = SIZES[i % SIZES.length];
        const caption = datasetCaption(i);
        saved.run(id, run, w, h, 1_500_000, at, url, 12_000_000, ow, oh, i % 50 === 0 ? 'fallback' : 'caption', caption.split(' ').length);
        indexed.run(id, `photos/${PHOTO_FILES[i % PHOTO_FILES.length]}`, caption, w, h, ow, oh, 'a'.repeat(64), 'b'.repeat(64), url);
      }
    })();
  })();
  const sqliteTime = (ms) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
  state.prepare("UPDATE runs SET started_at = ?, ended_at = ?, exit = 'finished', rows = ?, saved = ?, failed = ? WHERE run = ?").run(
    sqliteTime(start), sqliteTime(start + span), total, total - Math.ceil(total / 20), Math.ceil(total / 20), run,
  );
  state.prepare('INSERT INTO hosts (host, slow_downs) VALUES (?, ?)').run('images.pexels.com', 1234);
  state.close();
  index.close();
}

const started = performance.now();
const child = spawn(process.execPath, [join(ROOT, 'dist/pipeline.js'), 'report', '--output', output, '--thumbnails', flags.thumbnails], { stdio: ['ignore', 'pipe', 'inherit'] });
const watch = watchProcessTree(child.pid);
let stdout = '';
child.stdout.setEncoding('utf8').on('data', (text) => (stdout += text));
const [code] = await once(child, 'exit');
const seconds = (performance.now() - started) / 1000;
const { peakRssKb } = watch.stop();
const peakMiB = peakRssKb / 1024;
process.stdout.write(stdout);
console.log(`report of ${total} rows: ${seconds.toFixed(1)} s (target 30), peak RSS of the process tree ${peakMiB.toFixed(0)} MiB (target 300), exit ${code}`);
process.exitCode = code === 0 && seconds <= 30 && peakMiB <= 300 ? 0 : 1;
