#!/usr/bin/env node
// What the HTML report page costs to make, at the size of a large dataset's report: the
// charts' library loaded (in a fresh process, as the `report` command does), the page
// rendered once (cold) and then again (warm), its size, and thumbnails per image.
//
// Usage: npm run build && node bench/report-page.mjs [--thumbnails N] [--points N] [--buckets N]
// (default: 200 thumbnails from the bundled photos, 1,440 timeline points (a day by the
// minute), 120 aspect buckets, 30 hosts, 20 failure reasons, 40 bins per histogram).
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const PHOTOS = new URL('../examples/photos/', import.meta.url).pathname;
const PHOTO_FILES = ['aqua.jpg', 'dragonfly.jpg', 'friends.jpg', 'wine.jpg', 'canyon-wren.jpg', 'yellow-flower.jpg', 'otters.jpg', 'storm.jpg', 'drop.png', 'flowers.webp', 'spiral.jpg', 'sunset.jpg'];

const { values: flags } = parseArgs({
  options: { thumbnails: { type: 'string', default: '200' }, points: { type: 'string', default: '1440' }, buckets: { type: 'string', default: '120' } },
  strict: true,
});

let started = performance.now();
const { renderReport } = await import('../dist/report/html/render.js');
const { thumbnailDataUri } = await import('../dist/report/html/thumbnails.js');
const loadMs = performance.now() - started;

started = performance.now();
const thumbnails = [];
for (let i = 0; i < Number(flags.thumbnails); i++) {
  const file = PHOTO_FILES[i % PHOTO_FILES.length] ?? '';
  const { src, width, height } = await thumbnailDataUri(join(PHOTOS, file));
  thumbnails.push({ id: `${i}-${file}`, caption: `a caption of a dozen words or so for image number ${i}`, src, width, height, href: `images/${i}.jpg` });
}
const thumbnailMs = performance.now() - started;

const data = dataset(thumbnails);
started = performance.now();
const page = await renderReport(data);
const coldMs = performance.now() - started;
const warm = [];
for (let i = 0; i < 5; i++) {
  started = performance.now();
  await renderReport(data);
  warm.push(performance.now() - started);
}
warm.sort((a, b) => a - b);
const thumbnailBytes = thumbnails.reduce((sum, { src }) => sum + src.length, 0);

console.log(`load render.js + thumbnails.js (vega, vega-lite, sharp): ${loadMs.toFixed(0)} ms`);
console.log(`thumbnails: ${thumbnails.length} in ${thumbnailMs.toFixed(0)} ms (${(thumbnailMs / Math.max(1, thumbnails.length)).toFixed(1)} ms each, ${(thumbnailBytes / Math.max(1, thumbnails.length) / 1024).toFixed(1)} KiB each as data: URI)`);
console.log(`render (7 charts, ${data.timeline.points.length} timeline points, ${data.images.buckets.length} buckets): cold ${coldMs.toFixed(0)} ms, warm median ${warm[2]?.toFixed(0)} ms`);
console.log(`page: ${(page.length / 1024).toFixed(0)} KiB, of which thumbnails ${(thumbnailBytes / 1024).toFixed(0)} KiB, charts and text ${((page.length - thumbnailBytes) / 1024).toFixed(0)} KiB`);
for (const [, name = '', figure = ''] of page.matchAll(/<figure class="chart" data-chart="(\w+)">([^]*?)<\/figure>/g)) {
  console.log(`  chart ${name}: ${(figure.length / 1024).toFixed(0)} KiB`);
}

/** @param {any[]} thumbnails */
function dataset(thumbnails) {
  const start = Date.parse('2026-11-26T00:00:00Z');
  const points = Array.from({ length: Number(flags.points) }, (_, i) => ({
    at: new Date(start + i * 60_000).toISOString(),
    saved: 350 + ((i * 37) % 90),
    failed: 15 + ((i * 13) % 20),
  }));
  const bins = (/** @type {number} */ width, /** @type {number} */ n) => Array.from({ length: n }, (_, i) => ({ from: i * width, to: (i + 1) * width, count: Math.round(100_000 * Math.exp(-(((i - n / 2) / (n / 6)) ** 2))) }));
  const buckets = Array.from({ length: Number(flags.buckets) }, (_, i) => {
    const aspect = 0.3 + i * 0.02;
    const count = Math.round(50_000 * Math.exp(-(((aspect - 1.4) / 0.4) ** 2)));
    return { label: aspect.toFixed(2), aspect, count, belowBatch: count < 4 };
  });
  return {
    title: 'train/',
    generatedAt: new Date().toISOString(),
    sink: 'dir',
    missing: [],
    totals: { rows: 567_597, saved: 530_000, failed: 30_000, skipped: 7_597, bytesFetched: 412 * 1024 ** 3, bytesWritten: 198 * 1024 ** 3, startedAt: points[0]?.at, endedAt: points.at(-1)?.at, rowsPerSecond: 6.6 },
    failures: Array.from({ length: 20 }, (_, i) => ({ reason: `http_${400 + i}`, count: 3000 - i * 100, examples: [1, 2, 3].map((n) => ({ id: `row-${i}-${n}`, url: `https://images.example/${i}/${n}.jpg`, detail: `HTTP ${400 + i}` })) })),
    skips: [{ reason: 'done', count: 7_597 }],
    timeline: { unit: 'minute', points },
    hosts: { count: 1_204, busiest: Array.from({ length: 30 }, (_, i) => ({ host: `images-${i}.example.com`, rows: 200_000 >> i % 16, failed: 1000 >> i % 16, slowDowns: i })) },
    images: {
      storedSides: { shorter: bins(32, 40), longer: bins(64, 40) },
      originalMegapixels: bins(0.5, 40),
      buckets,
      batchSize: 4,
      bucketRule: 'SimpleTuner groups images by aspect ratio rounded to two decimals.',
    },
    captions: { words: bins(2, 40), fromFallback: 1200, missing: 0, total: 530_000 },
    thumbnails,
  };
}
