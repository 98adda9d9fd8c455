// The `report` command over a real run: the numbers it counts (a run with known failures,
// skips, captions and sizes gives exactly those), and the page it writes, opened from disk
// in Debian's chromium: no request, no console message, no script from the dataset, every
// thumbnail decoded. A run written before the state recorded what the report needs is
// reported with what it holds, and the page says what is missing.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { writeNdjsonRows } from '../dist/demo/dataset-files.js';
import { bucketOf } from '../dist/report/buckets.js';
import { gatherLocal } from '../dist/report/local.js';
import { startTestCdn } from './support/cdn.mjs';
import { CHROMIUM, openPage } from './support/browser.mjs';
import { unlessMissing } from './support/needs.mjs';
import { photoRows } from './support/rows.mjs';
import { runCli, tempDir } from './support/run.mjs';

const HOSTILE_CAPTION = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">';

/** @type {Awaited<ReturnType<typeof startTestCdn>>} */
let cdn;
/** @type {Awaited<ReturnType<typeof tempDir>>} */
let work;
/** @type {Awaited<ReturnType<typeof photoRows>>} */
let rows;
let output = '';

before(async () => {
  cdn = await startTestCdn();
  work = await tempDir('pcp-report-run-');
  rows = await photoRows(cdn.origin);
  rows[3] = { ...rows[3], cogvlm_caption: HOSTILE_CAPTION };
  const input = join(work.path, 'rows.ndjson');
  await writeNdjsonRows(input, [
    ...rows,
    { id: 900, url: cdn.url('/status/404'), cogvlm_caption: 'gone', tags: null, width: 1, height: 1 },
    { id: 901, url: cdn.url('/status/404?again'), cogvlm_caption: 'gone too', tags: null, width: 1, height: 1 },
    { id: 902, url: cdn.url('/html'), cogvlm_caption: 'a challenge page', tags: null, width: 1, height: 1 },
    { id: 903, url: rows[0].url, cogvlm_caption: 'the first photo again', tags: null, width: 1, height: 1 },
  ]);
  output = join(work.path, 'out');
  // One at a time: the duplicate URL (row 903) is then decided after row 500 is saved.
  const run = await runCli(['--input', input, '--output', output, '--resolution', '256', '--concurrency', '1', '--dedupe', 'url', '--quiet']);
  assert.equal(run.code, 0, run.stderr);
});
after(async () => {
  await cdn.close();
  await work.cleanup();
});

describe('the report of a run', () => {
  test('counts what the run did: outcomes, failures by reason, skips, hosts, sizes, buckets, captions', async () => {
    const data = await gatherLocal(output, { batchSize: 4, thumbnails: 5 });
    assert.equal(data.sink, 'dir');
    assert.deepEqual(data.missing, [], 'this version records everything the page shows');
    assert.deepEqual({ ...data.totals, startedAt: undefined, endedAt: undefined, rowsPerSecond: undefined, bytesFetched: undefined, bytesWritten: undefined }, {
      rows: rows.length + 4, saved: rows.length, failed: 3, skipped: 1, startedAt: undefined, endedAt: undefined, rowsPerSecond: undefined, bytesFetched: undefined, bytesWritten: undefined,
    });
    assert.ok(data.totals.bytesWritten > 0 && data.totals.bytesFetched > data.totals.bytesWritten, 'originals fetched, 256-px images written');
    assert.deepEqual(data.failures.map(({ reason, count }) => [reason, count]), [['http_404', 2], ['not_image', 1]]);
    assert.deepEqual(data.failures[0]?.examples.map((example) => example.id).sort(), ['900', '901']);
    assert.match(data.failures[0]?.examples[0]?.detail ?? '', /HTTP 404/);
    assert.deepEqual(data.skips, [{ reason: 'duplicate_url', count: 1 }]);
    assert.equal(data.hosts.count, 1);
    assert.deepEqual(data.hosts.busiest.map(({ rows: n, failed, slowDowns }) => [n, failed, slowDowns]), [[rows.length + 3, 3, 0]]);
    assert.equal(data.timeline.points.reduce((sum, point) => sum + point.saved, 0), rows.length);
    assert.equal(data.timeline.points.reduce((sum, point) => sum + point.failed, 0), 3);

    // The stored sizes, and the buckets SimpleTuner makes of them at the config's resolution.
    const config = JSON.parse(await readFile(join(output, 'simpletuner-dataloader.json'), 'utf8'))[0];
    const expected = new Map();
    for (const row of rows) {
      const { width = 0, height = 0 } = await sharp(join(output, `${row.id}.png`)).metadata();
      const { key } = bucketOf(width, height, { resolution: config.resolution, resolutionType: config.resolution_type, alignment: 64 });
      expected.set(key, (expected.get(key) ?? 0) + 1);
    }
    assert.deepEqual(new Map(data.images.buckets.map(({ label, count }) => [label, count])), expected);
    for (const bucket of data.images.buckets) assert.equal(bucket.belowBatch, bucket.count < 4, bucket.label);
    assert.equal(data.images.storedSides.shorter.reduce((sum, bin) => sum + bin.count, 0), rows.length);
    assert.equal(data.images.originalMegapixels.reduce((sum, bin) => sum + bin.count, 0), rows.length);

    assert.equal(data.captions.total, rows.length);
    assert.equal(data.captions.fromFallback, rows.filter((row) => !row.cogvlm_caption).length, 'the empty caption came from the tags');
    assert.equal(data.captions.words.reduce((sum, bin) => sum + bin.count, 0), rows.length);
    assert.equal(data.thumbnails.length, 5);
    for (const thumbnail of data.thumbnails) assert.ok(existsSync(join(output, thumbnail.href ?? '')), `${thumbnail.href} is the stored file`);
  });

  test('an output written before the state recorded it is reported with what it holds, and the page says what is missing', async () => {
    const old = join(work.path, 'old');
    const input = join(work.path, 'old.ndjson');
    await writeNdjsonRows(input, [rows[0], { id: 910, url: cdn.url('/status/404'), cogvlm_caption: 'gone', tags: null, width: 1, height: 1 }]);
    const run = await runCli(['--input', input, '--output', old, '--quiet']);
    assert.equal(run.code, 0, run.stderr);
    // What an older version's state held: no URLs, details, sizes or caption sources, no
    // hosts table, no run settings.
    const db = new Database(join(old, '.pipeline', 'state.sqlite'));
    db.exec(`UPDATE samples SET url = NULL, detail = NULL, original_width = NULL, original_height = NULL, caption_source = NULL, caption_words = NULL;
      DROP TABLE hosts; UPDATE runs SET settings = NULL, failures = NULL, skips = NULL`);
    db.close();
    const data = await gatherLocal(old, { batchSize: 4, thumbnails: 1 });
    assert.equal(data.totals.saved, 1);
    assert.deepEqual(data.failures.map(({ reason, count }) => [reason, count]), [['http_404', 1]]);
    assert.ok(data.missing.some((line) => /URL and detail of 1 failures/.test(line)), data.missing.join('\n'));
    assert.ok(data.missing.some((line) => /which column the caption of 1 saved samples came from/.test(line)), data.missing.join('\n'));
    assert.ok(data.missing.some((line) => /429 and 503/.test(line)), data.missing.join('\n'));
  });

  test('a usage error for an output without state: exit 2, one line', async () => {
    const report = await runCli(['report', '--output', join(work.path, 'nothing-here')]);
    assert.equal(report.code, 2);
    assert.match(report.stderr, /^error: no state in .*: has a run written there\?\n$/);
  });
});

describe('the report page in a browser', { skip: unlessMissing(existsSync(CHROMIUM), `${CHROMIUM} (apt-get install chromium)`) }, () => {
  test('report --output DIR writes DIR/report.html: opened from disk it asks for nothing, logs nothing, runs nothing from the dataset', async () => {
    const report = await runCli(['report', '--output', output, '--thumbnails', '20']);
    assert.equal(report.code, 0, report.stderr);
    const path = join(output, 'report.html');
    assert.match(report.stdout, new RegExp(`^wrote ${path}: ${rows.length + 4} rows, ${rows.length} saved, 3 failed, 1 skipped; ${rows.length} thumbnails`));
    const html = await readFile(path, 'utf8');
    assert.ok(!html.includes(HOSTILE_CAPTION), 'the hostile caption is not markup');

    const { context, page, messages, close } = await openPage();
    try {
      const url = pathToFileURL(path).href;
      /** @type {string[]} */
      const outside = [];
      await context.route('**/*', (route) => (route.request().url() === url ? route.continue() : (outside.push(route.request().url()), route.abort())));
      await page.goto(url, { waitUntil: 'load' });
      const seen = await page.evaluate(() => {
        const { document, window } = /** @type {any} */ (globalThis);
        return {
          pwned: window.__pwned,
          images: [...document.querySelectorAll('img')].map((img) => img.complete && img.naturalWidth > 0),
          charts: [...document.querySelectorAll('figure.chart')].map((figure) => [figure.getAttribute('data-chart'), figure.querySelectorAll('svg g.role-mark > :not(g)').length]),
          captions: [...document.querySelectorAll('.contact-sheet li')].map((cell) => cell.getAttribute('title')),
        };
      });
      assert.deepEqual(outside, [], 'no request outside the file');
      assert.deepEqual(messages, [], 'no console message');
      assert.equal(seen.pwned, undefined, 'no script from the dataset ran');
      assert.equal(seen.images.length, rows.length);
      assert.ok(seen.images.every(Boolean), 'every thumbnail decoded');
      assert.ok(seen.captions.some((title) => title?.includes(HOSTILE_CAPTION)), 'the hostile caption shows as its characters');
      assert.ok(seen.charts.length >= 6, `charts: ${JSON.stringify(seen.charts)}`);
      for (const [chart, marks] of seen.charts) assert.ok(marks > 0, `${chart} drew its marks`);
      const screenshot = join(work.path, 'report.png');
      await page.screenshot({ path: screenshot, fullPage: true });
      const { format, height = 0 } = await sharp(screenshot).metadata();
      assert.equal(format, 'png');
      assert.ok(height > 2000, `the whole page (${height} px)`);
    } finally {
      await close();
    }
  });
});

