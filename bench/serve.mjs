#!/usr/bin/env node
// The bench's loopback CDN in a process of its own, so that serving never waits on the
// bench's own work (sampling /proc, timing) and its CPU is not counted as the pipeline's.
// Usage: node bench/serve.mjs FOLDER; prints the origin on stdout, serves until stdin ends.
import { startLoopbackCdn } from '../dist/demo/loopback-cdn.js';

const cdn = await startLoopbackCdn({ root: process.argv[2] ?? '.' });
process.stdout.write(`${cdn.origin}\n`);
process.stdin.on('end', () => void cdn.close()).resume();
