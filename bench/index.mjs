#!/usr/bin/env node
// `npm run bench`: speed and memory, measured against a ceiling and a baseline in the same
// run, offline. Starts a loopback CDN on 127.0.0.1 over real photos and reports:
//   1. pipeline throughput (images/s, MB/s in, CPU, peak RSS) for png, jpeg and webp;
//   2. the ceiling: sharp alone, same photos from memory, same encoder settings, as many
//      images at once as cores; pipeline/ceiling;
//   3. the reference: the dataset's Python downloader (bench/reference.py: thread pool,
//      requests, PIL) against the same CDN, when python3 has PIL and requests;
//   4. memory over the whole dataset: 567,597 rows (a generated Parquet file shaped like
//      photo-concept-bucket) through the full pipeline against small images, peak RSS at
//      50k rows and at the end; and reading that Parquet file alone, in rows/s.
//
// Usage: npm run bench -- [--photos DIR] [--rows N] [--count N] [--skip-memory] [--only png,jpeg,webp]
// Photos: --photos DIR, else ../shared/tools/photos.sh into .bench-cache/photos when it
// exists, else the bundled examples/photos.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startLoopbackCdn } from '../dist/demo/loopback-cdn.js';
import { writeParquetRows } from '../dist/demo/dataset-files.js';
import { encodeImage } from '../dist/image/encode.js';
import { resolveOptions } from '../dist/options.js';
import { openRowSource } from '../dist/stages/source.js';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const { values: flags } = parseArgs({
  options: {
    photos: { type: 'string' },
    rows: { type: 'string', default: '567597' },
    count: { type: 'string', default: '200' },
    only: { type: 'string', default: 'png,jpeg,webp' },
    'skip-memory': { type: 'boolean', default: false },
    'skip-reference': { type: 'boolean', default: false },
  },
});
const cores = availableParallelism();
const work = join(tmpdir(), `pcp-bench-${process.pid}`);
await mkdir(work, { recursive: true });

const photos = await findPhotos();
const files = (await readdir(photos)).filter((name) => /\.(jpe?g|png|webp)$/i.test(name)).sort();
const cdn = await startLoopbackCdn({ root: photos });
try {
  const count = Number(flags.count);
  const rows = [];
  let megapixels = 0;
  const sharp = (await import('sharp')).default;
  for (let i = 0; i < count; i++) {
    const file = files[i % files.length];
    const { width = 0, height = 0 } = await sharp(join(photos, file)).metadata();
    megapixels += (width * height) / 1e6;
    rows.push({ id: i, url: `${cdn.origin}/photos/${encodeURIComponent(file)}`, cogvlm_caption: `caption ${i}`, tags: null, width, height });
  }
  const input = join(work, 'rows.parquet');
  await writeParquetRows(input, rows);
  const inputBytes = (await Promise.all(rows.map((row) => stat(join(photos, decodeURIComponent(row.url.split('/photos/')[1]))).then((s) => s.size)))).reduce((a, b) => a + b, 0);
  console.log(`photos: ${files.length} files from ${photos}; ${count} rows, ${(megapixels / count).toFixed(1)} MP and ${(inputBytes / count / 1e6).toFixed(2)} MB on average; ${cores} cores`);
  console.log(`command: node dist/pipeline.js --input rows.parquet --output OUT --format F --no-resume --quiet\n`);

  const table = [];
  for (const format of flags.only.split(',')) {
    const pipeline = await runPipelineChild(input, format, count);
    const ceiling = await sharpCeiling(rows, photos, format);
    table.push({ format, pipeline, ceiling });
    console.log(
      `${format.padEnd(5)} pipeline ${pipeline.imagesPerSecond.toFixed(2)} images/s, ${(inputBytes / 1e6 / pipeline.seconds).toFixed(1)} MB/s in, ` +
        `CPU ${pipeline.cpuPercent.toFixed(0)}%, peak RSS ${pipeline.peakRssMb.toFixed(0)} MiB, ${(pipeline.bytesWritten / count / 1e6).toFixed(2)} MB/file | ` +
        `ceiling ${ceiling.imagesPerSecond.toFixed(2)} images/s | pipeline/ceiling ${(pipeline.imagesPerSecond / ceiling.imagesPerSecond).toFixed(2)}`,
    );
  }

  if (!flags['skip-reference']) {
    const reference = await runReference(rows);
    if (reference) {
      console.log(`\nreference (Python, thread pool + requests + PIL, PNG): ${reference.imagesPerSecond.toFixed(2)} images/s, peak RSS ${reference.peakRssMb.toFixed(0)} MiB, ${(reference.bytesWritten / count / 1e6).toFixed(2)} MB/file`);
      for (const { format, pipeline } of table) {
        console.log(`pipeline/reference at ${format}: ${(pipeline.imagesPerSecond / reference.imagesPerSecond).toFixed(2)}`);
      }
    }
  }

  if (!flags['skip-memory']) await memoryOverDataset(Number(flags.rows));
} finally {
  await cdn.close();
  await rm(work, { recursive: true, force: true });
}

/** Runs the real command line as a child and samples its process tree's RSS and CPU. */
async function runPipelineChild(input, format, count, extra = [], onLine = () => {}) {
  const output = join(work, `out-${format}-${Date.now()}`);
  const started = performance.now();
  const child = spawn(process.execPath, [join(ROOT, 'dist/pipeline.js'), '--input', input, '--output', output, '--format', format, '--no-resume', '--summary', join(work, 'summary.json'), ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let peakRss = 0;
  let cpuTicks = 0;
  const sample = () => {
    const usage = treeUsage(child.pid);
    peakRss = Math.max(peakRss, usage.rssKb);
    cpuTicks = Math.max(cpuTicks, usage.cpuTicks);
    return usage;
  };
  const timer = setInterval(sample, 100);
  let buffered = '';
  child.stderr.setEncoding('utf8').on('data', (text) => {
    buffered += text;
    let newline;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      onLine(buffered.slice(0, newline), sample);
      buffered = buffered.slice(newline + 1);
    }
  });
  const code = await new Promise((done) => child.on('exit', done));
  clearInterval(timer);
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`pipeline exited ${code}`);
  const summary = JSON.parse(await readFile(join(work, 'summary.json'), 'utf8'));
  await rm(output, { recursive: true, force: true });
  const ticksPerSecond = 100;
  return {
    seconds,
    imagesPerSecond: summary.saved / seconds,
    saved: summary.saved,
    bytesWritten: summary.bytesWritten,
    cpuPercent: (cpuTicks / ticksPerSecond / seconds) * 100,
    peakRssMb: peakRss / 1024,
    count,
  };
}

/**
 * RSS (kB) summed over a process and its descendants, and their CPU ticks, read from
 * /proc directly (spawning a reader 10 times a second would steal CPU from the run).
 */
function treeUsage(pid) {
  let rssKb = 0;
  let cpuTicks = 0;
  const visit = (id) => {
    try {
      rssKb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${id}/status`, 'utf8'))?.[1] ?? 0);
      const stat = readFileSync(`/proc/${id}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpuTicks += Number(fields[11]) + Number(fields[12]);
      const children = readFileSync(`/proc/${id}/task/${id}/children`, 'utf8').trim();
      for (const childPid of children ? children.split(/\s+/) : []) visit(childPid);
    } catch {
      // the process just exited
    }
  };
  visit(pid);
  return { rssKb, cpuTicks };
}

/** sharp alone, from memory, with the pipeline's own encoder settings, `cores` images at once. */
async function sharpCeiling(rows, folder, format) {
  const buffers = await Promise.all(rows.map((row) => readFile(join(folder, decodeURIComponent(row.url.split('/photos/')[1])))));
  const options = resolveOptions({ output: work, image: { format } }).image;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (next < buffers.length) {
        const result = await encodeImage(buffers[next++], options);
        if (!result.ok) throw new Error(result.detail);
      }
    }),
  );
  return { imagesPerSecond: buffers.length / ((performance.now() - started) / 1000) };
}

async function runReference(rows) {
  const python = ['/usr/bin/python3', 'python3'].find((candidate) => spawnSync(candidate, ['-c', 'import PIL, requests'], { stdio: 'ignore' }).status === 0);
  if (!python) {
    console.log('\nreference: skipped (needs python3 with PIL and requests: apt-get install python3-pil python3-requests)');
    return undefined;
  }
  const output = join(work, 'reference');
  const started = performance.now();
  const child = spawn(python, [join(ROOT, 'bench/reference.py'), output, '8'], { stdio: ['pipe', 'ignore', 'inherit'] });
  child.stdin.end(rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
  let peakRss = 0;
  const timer = setInterval(() => (peakRss = Math.max(peakRss, treeUsage(child.pid).rssKb)), 100);
  const code = await new Promise((done) => child.on('exit', done));
  clearInterval(timer);
  if (code !== 0) throw new Error(`reference exited ${code}`);
  const seconds = (performance.now() - started) / 1000;
  let bytesWritten = 0;
  for (const name of await readdir(output)) if (name.endsWith('.png')) bytesWritten += (await stat(join(output, name))).size;
  await rm(output, { recursive: true, force: true });
  return { imagesPerSecond: rows.length / seconds, peakRssMb: peakRss / 1024, bytesWritten };
}

/** 567,597 rows with realistic captions through the whole pipeline, against small images. */
async function memoryOverDataset(total) {
  const cache = join(ROOT, '.bench-cache');
  await mkdir(cache, { recursive: true });
  const small = join(cache, 'small');
  await mkdir(small, { recursive: true });
  const sharp = (await import('sharp')).default;
  for (const [i, file] of files.slice(0, 8).entries()) {
    const target = join(small, `small-${i}.jpg`);
    if (!existsSync(target)) await sharp(join(photos, file)).resize(96, 64, { fit: 'fill' }).jpeg({ quality: 80 }).toFile(target);
  }
  const smallCdn = await startLoopbackCdn({ root: small });
  try {
    const input = join(cache, `dataset-${total}.parquet`);
    if (!existsSync(input)) {
      const words = 'a photo of the with in on and close-up view of warm light soft background wooden table green leaves city street at night'.split(' ');
      const rows = [];
      for (let i = 0; i < total; i++) {
        const length = 40 + ((i * 7919) % 80); // 40 to 120 words, like cogvlm captions
        const caption = Array.from({ length }, (_, w) => words[(i + w * 31) % words.length]).join(' ');
        rows.push({ id: 1_000_000 + i, url: `https://images.pexels.com/photos/${i}/pexels-photo-${i}.jpeg`, cogvlm_caption: caption, tags: 'photo, light', width: 6000, height: 4000 });
      }
      await writeParquetRows(input, rows, 100_000);
      rows.length = 0;
    }
    // Parquet alone: ids, urls, captions.
    const source = await openRowSource(resolveOptions({ output: work, input: { path: input } }).input);
    const readStarted = performance.now();
    let read = 0;
    for await (const _ of source.items) read++;
    const readSeconds = (performance.now() - readStarted) / 1000;
    console.log(`\nreading ${read} rows of Parquet (ids, urls, captions): ${(read / readSeconds).toFixed(0)} rows/s`);

    // The whole pipeline, with every URL pointed at the small images on the loopback CDN.
    // Rows are rewritten to NDJSON pointing at the loopback CDN (its port changes every
    // run); ids and captions stay as generated.
    const smallUrls = join(work, 'dataset-loopback.ndjson');
    const lines = (await readdir(small)).sort();
    await writeFile(smallUrls, '');
    const rewritten = [];
    const source2 = await openRowSource(resolveOptions({ output: work, input: { path: input } }).input);
    for await (const item of source2.items) {
      if (item.kind !== 'row') continue;
      rewritten.push(`${JSON.stringify({ id: item.row.id, url: `${smallCdn.origin}/photos/${lines[Number(item.row.id) % lines.length]}`, cogvlm_caption: item.row.caption })}\n`);
      if (rewritten.length >= 50_000) {
        await writeFile(smallUrls, rewritten.join(''), { flag: 'a' });
        rewritten.length = 0;
      }
    }
    await writeFile(smallUrls, rewritten.join(''), { flag: 'a' });
    let at50k;
    let peakSoFar = 0;
    const started = performance.now();
    const result = await runPipelineChild(smallUrls, 'jpeg', total, ['--sink', 'null', '--resolution', '64', '--round', '8', '--log-every', '2', '--concurrency', '32'], (line, sample) => {
      const rows = Number(/^progress: (\d+) rows/.exec(line)?.[1] ?? NaN);
      if (Number.isNaN(rows)) return;
      peakSoFar = Math.max(peakSoFar, sample().rssKb);
      if (at50k === undefined && rows >= 50_000) at50k = peakSoFar / 1024;
    });
    console.log(
      `whole dataset: ${total} rows in ${((performance.now() - started) / 1000).toFixed(0)} s (${(total / result.seconds).toFixed(0)} rows/s), ` +
        `peak RSS at 50k rows ${at50k === undefined ? 'n/a' : `${at50k.toFixed(0)} MiB`}, at the end ${result.peakRssMb.toFixed(0)} MiB`,
    );
  } finally {
    await smallCdn.close();
  }
}

async function findPhotos() {
  if (flags.photos) return resolve(flags.photos);
  const script = resolve(ROOT, '../shared/tools/photos.sh');
  if (existsSync(script)) {
    const folder = join(ROOT, '.bench-cache/photos');
    execFileSync('bash', [script, folder], { stdio: ['ignore', 'ignore', 'inherit'] });
    return folder;
  }
  return join(ROOT, 'examples/photos');
}
