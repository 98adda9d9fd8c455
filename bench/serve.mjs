#!/usr/bin/env node
// The bench's loopback CDN in a process of its own, so that serving never waits on the
// bench's own work (sampling /proc, timing) and its CPU is not counted as the pipeline's.
// It shares the pipeline's cores all the same, so it serves from memory after a file's
// first request, as a CDN's edge does: reading the disk for every request cost it about
// 1 ms of CPU per 0.85 MB photo that a remote CDN would not take from the pipeline.
// Usage: node bench/serve.mjs FOLDER; prints the origin on stdout, serves until stdin ends.
import { startLoopbackCdn } from '../dist/demo/loopback-cdn.js';

const cdn = await startLoopbackCdn({ root: process.argv[2] ?? '.', cacheFiles: true });
process.stdout.write(`${cdn.origin}\n`);
process.stdin.on('end', () => void cdn.close()).resume();
