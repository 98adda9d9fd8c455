#!/usr/bin/env node
// The ceiling: sharp alone, through the pipeline's own encoder (src/image/encode.ts) with
// the options the same command-line flags give the pipeline, on the same photos read
// into memory first, as many images at once as the pipeline decodes (one per core).
// Usage: node bench/ceiling.mjs FILE_LIST_JSON [pipeline flags...]; prints one JSON line.
// Run it with the process settings the pipeline gives itself (src/process-settings.ts).
import { readFile } from 'node:fs/promises';
import { pipelineOptionsFrom } from '../dist/cli/run.js';
import { encodeImage } from '../dist/image/encode.js';
import { resolveOptions } from '../dist/options.js';
import { cpuByKind, threadTicks } from './proc.mjs';

const [listPath, ...flags] = process.argv.slice(2);
const files = JSON.parse(await readFile(listPath, 'utf8'));
const options = resolveOptions(pipelineOptionsFrom([...flags, '--input', 'unused', '--output', 'unused'])).image;
const buffers = await Promise.all(files.map((file) => readFile(file)));

const before = cpuByKind(threadTicks(process.pid));
let next = 0;
let bytesWritten = 0;
const started = performance.now();
await Promise.all(
  Array.from({ length: options.concurrency }, async () => {
    while (next < buffers.length) {
      const result = await encodeImage(buffers[next++], options);
      if (!result.ok) throw new Error(result.detail);
      bytesWritten += result.image.length;
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
const after = cpuByKind(threadTicks(process.pid));
const cpu = Object.fromEntries(Object.entries(after).map(([kind, value]) => [kind, value - before[kind]]));
process.stdout.write(`${JSON.stringify({ images: buffers.length, seconds, bytesWritten, cpu })}\n`);
