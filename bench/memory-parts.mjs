#!/usr/bin/env node
// Where the worker's memory goes: the pipeline run in this process (as the command's worker
// runs it, with the same process settings) over N rows of tiny images from a Parquet file,
// resume state on, sampling process.memoryUsage() and parquet-wasm's memory every second.
// Prints the parts at 10%, 50% and 100% of the rows.
//
//   npm run build && MALLOC_ARENA_MAX=2 node --initial-old-space-size=64 bench/memory-parts.mjs [rows] [sink] [metadata-every seconds, 300]
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { wasmMemory } from 'parquet-wasm';
import { runPipeline } from '../dist/index.js';

const ROOT = new URL('..', import.meta.url).pathname;
const rows = Number(process.argv[2] ?? 100_000);
const sink = process.argv[3] ?? 'null';
const metadataEverySeconds = Number(process.argv[4] ?? 300);
const work = join(tmpdir(), `pcp-memory-parts-${process.pid}`);
const small = join(ROOT, '.bench-cache', 'small');
await mkdir(small, { recursive: true });
// The tiny images and the input are made by a child process: this process's memory is
// what is being measured.
spawnSync(process.execPath, ['--input-type=module', '-e', `
  import sharp from 'sharp';
  import { readdirSync } from 'node:fs';
  const photos = ${JSON.stringify(join(ROOT, 'examples/photos'))};
  for (const [i, file] of readdirSync(photos).filter((name) => name.endsWith('.jpg')).slice(0, 8).entries()) {
    await sharp(photos + '/' + file).resize(96, 64, { fit: 'fill' }).jpeg({ quality: 80 }).toFile(${JSON.stringify(small)} + '/small-' + i + '.jpg');
  }`], { stdio: 'inherit', cwd: ROOT });
const server = spawn(process.execPath, [join(ROOT, 'bench/serve.mjs'), small], { stdio: ['pipe', 'pipe', 'inherit'] });
const [origin] = await once(createInterface({ input: server.stdout }), 'line');
try {
  await mkdir(work, { recursive: true });
  const input = join(work, 'rows.parquet');
  spawnSync(process.execPath, ['--input-type=module', '-e', `
    import { writeParquetRows } from './dist/demo/dataset-files.js';
    import { datasetCaption, datasetId } from './bench/dataset-rows.mjs';
    const rows = Array.from({ length: ${rows} }, (_, i) => ({ id: datasetId(i), url: ${JSON.stringify(origin.trim())} + '/photos/small-' + (i % 8) + '.jpg', cogvlm_caption: datasetCaption(i), tags: 'photo', width: 96, height: 64 }));
    await writeParquetRows(${JSON.stringify(input)}, rows, 100000);`], { stdio: 'inherit', cwd: ROOT });
  const mib = (bytes) => Math.round(bytes / 2 ** 20);
  const parts = () => {
    const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
    const wasm = wasmMemory().buffer.byteLength;
    // What none of the counters above covers: native code, libvips, SQLite, allocator arenas.
    return { rss: mib(rss), heapTotal: mib(heapTotal), heapUsed: mib(heapUsed), external: mib(external), arrayBuffers: mib(arrayBuffers), wasm: mib(wasm), mainArena: mib(mainArenaBytes()), other: mib(rss - heapTotal - external) };
  };
  // Sampled every second; reported at 10%, 50% and 100% of the run's time (the rate is
  // steady, so that is about the same share of the rows).
  const samples = [];
  const timer = setInterval(() => samples.push(parts()), 1000);
  const started = performance.now();
  const summary = await runPipeline(
    { input: { path: input }, output: join(work, 'out'), sink, metadataEveryMs: metadataEverySeconds * 1000, image: { format: 'jpeg', resolution: 64, round: 8 }, fetch: { concurrency: 32 }, report: { quiet: true } },
    { log: () => {} },
  );
  clearInterval(timer);
  samples.push(parts());
  const seconds = (performance.now() - started) / 1000;
  console.log(`${summary.saved} of ${rows} rows saved in ${seconds.toFixed(0)} s, --sink ${sink}; MiB:`);
  console.log('at    rss  heapTotal  heapUsed  external  arrayBuffers  wasm  other  of it, main arena');
  for (const share of [0.1, 0.5, 1]) {
    const p = samples[Math.min(samples.length - 1, Math.max(0, Math.round(share * samples.length) - 1))];
    console.log(`${String(share * 100).padStart(3)}% ${String(p.rss).padStart(5)} ${String(p.heapTotal).padStart(10)} ${String(p.heapUsed).padStart(9)} ${String(p.external).padStart(9)} ${String(p.arrayBuffers).padStart(13)} ${String(p.wasm).padStart(5)} ${String(p.other).padStart(6)} ${String(p.mainArena).padStart(18)}`);
  }
  const peak = samples.reduce((best, p) => (p.rss > best.rss ? p : best));
  console.log(`peak rss ${peak.rss} MiB (heapTotal ${peak.heapTotal}, external ${peak.external}, wasm ${peak.wasm}, other ${peak.other}, main arena ${peak.mainArena})`);
} finally {
  server.stdin.end();
  await rm(work, { recursive: true, force: true });
}

/** Resident bytes of glibc's main arena (the `[heap]` mapping): where the main thread's malloc goes, SQLite's page caches included. */
function mainArenaBytes() {
  const smaps = readFileSync('/proc/self/smaps', 'utf8');
  const start = smaps.indexOf('[heap]');
  if (start < 0) return 0;
  return Number(/\nRss:\s+(\d+) kB/.exec(smaps.slice(start))?.[1] ?? 0) * 1024;
}
