#!/usr/bin/env node
// Where one process ends: its main thread's CPU per image caps it, whatever the cores.
// Runs the pipeline (to 1024-px jpeg) over N and over 3N rows of the bench's photos, and
// reads every thread's CPU at the process's exit (a preload, bench/thread-cpu.mjs); the
// difference of the two runs, divided by 2N, is the CPU per image with start-up left out.
// The same again with the photos as --cdn-resize would fetch them (scaled by the CDN to
// the smallest size that still covers the target): less libvips work per image, the same
// main-thread work. Prints the main thread's and the busiest other JavaScript thread's ms
// per image, and what follows: the images/s one process can feed at most, and how many
// cores of libvips work that is at each size.
//
//   npm run build && node bench/one-process.mjs [--photos DIR] [--count 244]
// Also run by `npm run bench` (unless --skip-limit).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { missingSettings } from '../dist/cli/process-settings.js';
import { writeParquetRows } from '../dist/demo/dataset-files.js';
import { shortestSideSize } from '../dist/image/size-rule.js';
import { startCdnProcess } from './cdn-process.mjs';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const PRELOAD = join(ROOT, 'bench/thread-cpu.mjs');

/**
 * Measures one process over `photos` at bench sizes and at --cdn-resize sizes.
 * @param {string} photos @param {number} count @param {(line: string) => void} log
 */
export async function measureOneProcess(photos, count, log = console.log) {
  const work = join(tmpdir(), `pcp-one-process-${process.pid}`);
  await mkdir(work, { recursive: true });
  try {
    const full = await perImage(photos, count, work, 'full');
    const scaled = await perImage(await cdnSizedCopies(photos, work), count, work, 'scaled');
    const feed = 1000 / full.main;
    log(
      `\none process (${count} and ${3 * count} rows to 1024-px jpeg, the difference over ${2 * count}; CPU read from each thread at exit):\n` +
        `  main thread ${full.main.toFixed(2)} ms per image (busiest other JavaScript thread ${full.busiest.toFixed(2)}); libvips ${full.libvips.toFixed(1)} ms per image\n` +
        `  so one process feeds at most ${feed.toFixed(0)} images/s: ${((feed * full.libvips) / 1000).toFixed(1)} cores of libvips work at these sizes (${full.megapixels.toFixed(1)} MP originals)\n` +
        `  at --cdn-resize sizes (${scaled.megapixels.toFixed(1)} MP): main thread ${scaled.main.toFixed(2)} ms, libvips ${scaled.libvips.toFixed(1)} ms per image: ` +
        `at most ${(1000 / scaled.main).toFixed(0)} images/s, ${((1000 / scaled.main) * scaled.libvips / 1000).toFixed(1)} cores of libvips work\n` +
        '  past that, run several worker processes on the machine through a queue (docs/queue.md)',
    );
    return { full, scaled };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** CPU per image by kind of thread: (3N run - N run) / 2N. */
async function perImage(photos, count, work, name) {
  const cdn = await startCdnProcess(photos);
  try {
    const files = (await readdir(photos)).filter((file) => /\.(jpe?g|png|webp)$/i.test(file)).sort();
    let megapixels = 0;
    const rowsFor = async (n) => {
      const rows = [];
      megapixels = 0;
      for (let i = 0; i < n; i++) {
        const file = files[i % files.length];
        const { width = 0, height = 0 } = await sharp(join(photos, file)).metadata();
        megapixels += (width * height) / 1e6;
        rows.push({ id: i, url: `${cdn.origin}/photos/${encodeURIComponent(file)}`, cogvlm_caption: `caption ${i}`, tags: null, width, height });
      }
      const input = join(work, `${name}-${n}.parquet`);
      await writeParquetRows(input, rows);
      return input;
    };
    const small = await run(await rowsFor(count), join(work, `${name}-small`));
    const large = await run(await rowsFor(3 * count), join(work, `${name}-large`));
    const per = (kind) => (large[kind] - small[kind]) / (2 * count);
    return { main: per('main'), libvips: per('libvips'), busiest: large.busiest / (3 * count), megapixels: megapixels / (3 * count) };
  } finally {
    await cdn.close();
  }
}

/** One settled run (one process, its settings given), and its threads' CPU in ms at exit. */
async function run(input, output) {
  const report = `${output}.threads.json`;
  const args = ['--input', input, '--output', output, '--no-resume', '--quiet', '--format', 'jpeg'];
  const settings = missingSettings(args, process.env, []);
  const child = spawn(process.execPath, [...(settings?.flags ?? []), '--import', PRELOAD, join(ROOT, 'dist/pipeline.js'), ...args], {
    stdio: ['ignore', 'ignore', 'ignore'],
    env: { ...process.env, ...settings?.env, THREAD_CPU_REPORT: report },
  });
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`pipeline exited ${code}`);
  const threads = JSON.parse(await readFile(report, 'utf8'));
  let main = 0;
  let libvips = 0;
  let busiest = 0;
  for (const { name, main: isMain, ms } of threads) {
    if (isMain) main += ms;
    else if (name.startsWith('libvips')) libvips += ms;
    else busiest = Math.max(busiest, ms);
  }
  return { main, libvips, busiest };
}

/** The photos as the CDN would send them with --cdn-resize: shorter side at the target (1024), jpeg q95. */
async function cdnSizedCopies(photos, work) {
  const folder = join(work, 'cdn-sized');
  await mkdir(folder, { recursive: true });
  for (const file of (await readdir(photos)).filter((name) => /\.(jpe?g|png|webp)$/i.test(name))) {
    const { width = 0, height = 0 } = await sharp(join(photos, file)).metadata();
    const target = shortestSideSize({ width, height }, 1024, 64);
    const scale = Math.min(1, Math.max(target.width / width, target.height / height));
    await sharp(join(photos, file)).resize(Math.ceil(width * scale), Math.ceil(height * scale)).jpeg({ quality: 95 }).toFile(join(folder, file.replace(/\.[^.]+$/, '.jpg')));
  }
  return folder;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { photos: { type: 'string' }, count: { type: 'string', default: '244' } } });
  const photos = values.photos ?? join(ROOT, '.bench-cache/photos');
  if (!existsSync(photos)) throw new Error(`no photos in ${photos}: run npm run bench once (it fetches them), or pass --photos DIR`);
  await measureOneProcess(photos, Number(values.count));
}
