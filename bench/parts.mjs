#!/usr/bin/env node
// What each part of an image's way through the pipeline costs, in CPU ms per image: each
// part run alone over the same photos, in one process, at the concurrency the pipeline
// gives it, then the whole pipeline in the same process. The CPU is the whole process's
// (every thread: libvips, libuv's pool, V8's helpers), so a part's figure includes the
// thread hops and garbage collection it causes. The rest of the whole run is the stages'
// own work (queues, records, progress) and what the parts cost when they share the cores.
//
// Usage: npm run bench:parts -- [--photos DIR] [--count N] [--repeat N] [pipeline flags...]
// (default: the bench's photos, 200 rows, 3 repeats, --format jpeg). Runs itself with the
// process settings the pipeline gives itself (src/process-settings.ts).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipelineOptionsFrom } from '../dist/cli/run.js';
import { createFetcher } from '../dist/fetch/fetcher.js';
import { encodeImage, extensionOf } from '../dist/image/encode.js';
import { resolveOptions } from '../dist/options.js';
import { runPipeline } from '../dist/pipeline.js';
import { GLIBC_ENV, NODE_FLAGS } from '../dist/cli/process-settings.js';
import { openSink } from '../dist/sinks/load.js';
import { createHash } from 'node:crypto';
const sha256Hex = (data) => createHash('sha256').update(data).digest('hex');
import { startCdnProcess } from './cdn-process.mjs';

const ROOT = resolve(new URL('..', import.meta.url).pathname);

if (!process.env.PCP_BENCH_PARTS) {
  const child = spawn(process.execPath, [...NODE_FLAGS, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...GLIBC_ENV, ...process.env, PCP_BENCH_PARTS: '1' } });
  const [code] = await once(child, 'exit');
  process.exit(code ?? 1);
}

const { values, pipelineFlags } = splitArguments(process.argv.slice(2));
const flags = pipelineFlags.length > 0 ? pipelineFlags : ['--format', 'jpeg'];
const count = Number(values.count);
const photos = resolve(values.photos ?? (existsSync(join(ROOT, '.bench-cache/photos')) ? join(ROOT, '.bench-cache/photos') : join(ROOT, 'examples/photos')));
const work = join(tmpdir(), `pcp-parts-${process.pid}`);
await mkdir(work, { recursive: true });

const options = resolveOptions(pipelineOptionsFrom([...flags, '--input', 'unused', '--output', work]));
const names = (await readdir(photos)).filter((name) => /\.(jpe?g|png|webp)$/i.test(name)).sort();
const cdn = await startCdnProcess(photos);
let folders = 0;
try {
  const urls = Array.from({ length: count }, (_, i) => `${cdn.origin}/photos/${encodeURIComponent(names[i % names.length])}`);
  const rowsPath = join(work, 'rows.ndjson');
  await writeFile(rowsPath, urls.map((url, i) => `${JSON.stringify({ id: String(i), url, cogvlm_caption: `caption ${i}` })}\n`).join(''));
  console.log(`${count} rows over ${names.length} photos from ${photos}; flags: ${flags.join(' ')}; CPU ms per image, each part alone, ${values.repeat} runs`);

  // The photos in memory, as the ceiling has them; a warm-up run caches them in the CDN
  // and has V8 compile the hot paths.
  const bodies = await Promise.all(urls.map((_, i) => readFile(join(photos, names[i % names.length]))));
  const originalHashes = await fetchAll(urls);
  await encodeAll(bodies);

  const rows = { fetch: [], cdn: [], bodyHash: [], encode: [], outputHash: [], sink: [], whole: [] };
  for (let round = 0; round < Number(values.repeat); round++) {
    const cdnBefore = cdn.cpuSeconds();
    rows.fetch.push((await measure(() => fetchAll(urls))).ms);
    rows.cdn.push(((cdn.cpuSeconds() - cdnBefore) * 1000) / count);
    rows.bodyHash.push((await measure(async () => bodies.map((body) => sha256Hex(body)))).ms);
    const encoded = await measure(() => encodeAll(bodies));
    rows.encode.push(encoded.ms);
    const outputHashes = await measure(async () => encoded.value.map((image) => sha256Hex(image.image)));
    rows.outputHash.push(outputHashes.ms);
    rows.sink.push((await measure(() => writeAll(encoded.value, outputHashes.value, originalHashes, urls))).ms);
    rows.whole.push((await measure(() => runPipeline(pipelineOptionsFrom([...flags, '--input', rowsPath, '--output', newFolder('whole'), '--no-resume', '--quiet'])))).ms);
  }

  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];
  const line = (label, values) => console.log(`  ${label.padEnd(58)} ${median(values).toFixed(2).padStart(6)}   (${values.map((v) => v.toFixed(2)).join(', ')})`);
  line(`fetch: HTTP, body copy, body sha256 (${options.fetch.concurrency} at once)`, rows.fetch);
  line('  of which the body sha256, measured alone', rows.bodyHash);
  line(`decode, resize, encode: the ceiling (${options.image.concurrency} at once)`, rows.encode);
  line('stored file sha256', rows.outputHash);
  line(`${options.sink} sink: files, renames, index, metadata.parquet at close`, rows.sink);
  const parts = rows.fetch.map((_, i) => rows.fetch[i] + rows.encode[i] + rows.outputHash[i] + rows.sink[i]);
  line('sum of the parts', parts);
  line('whole pipeline, same process', rows.whole);
  line('whole pipeline less the parts', rows.whole.map((whole, i) => whole - parts[i]));
  line('the loopback CDN serving (its own process, same cores)', rows.cdn);
} finally {
  await cdn.close();
  await rm(work, { recursive: true, force: true });
}

/** This script's options (--photos, --count, --repeat) apart from the pipeline flags. */
function splitArguments(argv) {
  const values = { photos: undefined, count: '200', repeat: '3' };
  const pipelineFlags = [];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '');
    if (argv[i].startsWith('--') && name in values) values[name] = argv[++i];
    else pipelineFlags.push(argv[i]);
  }
  return { values, pipelineFlags };
}

/** CPU of the whole process while `task` runs, in ms per image. */
async function measure(task) {
  const before = process.cpuUsage();
  const value = await task();
  const { user, system } = process.cpuUsage(before);
  return { value, ms: (user + system) / 1000 / count };
}

/**
 * Fetches every URL and keeps only the bodies' hashes: 200 bodies kept alive would be
 * 200 MB more external memory, and V8 would collect more often than in the pipeline,
 * which lets each body go once it is decoded.
 */
async function fetchAll(list) {
  const fetcher = createFetcher(options.fetch);
  try {
    return await mapAtOnce(list, options.fetch.concurrency, async (url) => {
      const result = await fetcher.fetch(url);
      if (!result.ok) throw new Error(`fetch failed: ${url}: ${result.detail}`);
      return result.sha256;
    });
  } finally {
    await fetcher.close();
  }
}

async function encodeAll(bodies) {
  return mapAtOnce(bodies, options.image.concurrency, async (body) => {
    const result = await encodeImage(body, options.image);
    if (!result.ok) throw new Error(result.detail);
    return result;
  });
}

async function writeAll(images, hashes, originalHashes, urls) {
  const output = newFolder(options.sink);
  await mkdir(output, { recursive: true });
  const sink = await openSink(options.sink, {
    output,
    format: options.image.format,
    samplesPerShard: options.samplesPerShard,
    log: () => {},
    sizeRule: options.image,
    datasetRoot: output,
    metadataEveryMs: 0,
    subfolders: options.subfolders,
  });
  await mapAtOnce(images, sink.concurrency ?? 1, (image, i) =>
    sink.write({
      id: String(i),
      caption: `caption ${i}`,
      image: image.image,
      sha256: hashes[i],
      originalSha256: originalHashes[i],
      format: image.format,
      extension: extensionOf(image.format),
      width: image.width,
      height: image.height,
      originalWidth: image.originalWidth,
      originalHeight: image.originalHeight,
      url: urls[i],
      row: {},
    }),
  );
  await sink.close();
}

/**
 * A new output folder for every run, all removed at the end: on ext4 without a journal,
 * files created just after others were deleted cost more (see runPipeline in index.mjs).
 */
function newFolder(name) {
  return join(work, `${name}-${++folders}`);
}

async function mapAtOnce(items, limit, task) {
  const results = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await task(items[i], i);
      }
    }),
  );
  return results;
}
