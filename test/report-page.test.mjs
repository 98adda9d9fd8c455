// The HTML report page: everything from the dataset is text, the page asks for nothing and
// runs nothing, and a real browser (Debian's chromium, headless, driven by playwright-core)
// draws every chart and every thumbnail from a file:// URL without a console message.
// Thumbnails are made from the bundled photos with the real sharp.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { renderReport } from '../dist/report/html/render.js';
import { thumbnailDataUri } from '../dist/report/html/thumbnails.js';
import { PHOTOS, PHOTO_FILES } from './support/cdn.mjs';
import { tempDir } from './support/run.mjs';
import { CHROMIUM, openPage } from './support/browser.mjs';
import { unlessMissing } from './support/needs.mjs';


/** Each tries to run (setting window.__pwned), to close the element it lands in, or to end a CDATA section. */
const HOSTILE = {
  script: '<script>window.__pwned=1</script>',
  img: '"><img src=x onerror="window.__pwned=1">',
  style: '</style><script>window.__pwned=1</script>',
  cdata: ']]><svg onload="window.__pwned=1">',
  quotes: `it's "quoted" & <b>bold</b>`,
};

/** @type {Awaited<ReturnType<typeof tempDir>>} */
let work;
/** @type {import('../dist/report/html/data.js').ReportData} */
let fixture;

before(async () => {
  work = await tempDir('pcp-report-');
  fixture = await reportFixture();
});
after(() => work.cleanup());

/**
 * A dataset of 567,597 rows, counted, with hostile text wherever the dataset's own strings land.
 * @returns {Promise<import('../dist/report/html/data.js').ReportData>}
 */
async function reportFixture() {
  const captions = new Map(
    (await readFile(join(PHOTOS, 'captions.tsv'), 'utf8'))
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => /** @type {[string, string]} */ (line.split('\t').slice(0, 2))),
  );
  const thumbnails = await Promise.all(
    PHOTO_FILES.map(async (file, index) => {
      const hostile = Object.values(HOSTILE)[index % 5] ?? '';
      const { src, width, height } = await thumbnailDataUri(join(PHOTOS, file));
      return {
        id: index < 5 ? `${file}${hostile}` : file,
        caption: index < 5 ? hostile : (captions.get(file) ?? ''),
        src,
        width,
        height,
        // A name with characters that mean something in a URL, or in HTML.
        href: index % 2 === 0 ? `images/${index}/${file}` : `images/a:b "c" #?<x>/${file}`,
      };
    }),
  );
  const start = Date.parse('2026-11-26T23:10:00Z');
  const points = Array.from({ length: 90 }, (_, minute) => ({
    at: new Date(start + minute * 60_000).toISOString(),
    saved: 5000 + ((minute * 37) % 900),
    failed: 200 + ((minute * 13) % 150),
  }));
  const bins = (/** @type {number} */ width, /** @type {number[]} */ counts) => counts.map((count, i) => ({ from: i * width, to: (i + 1) * width, count }));
  return {
    title: `train/${HOSTILE.img}`,
    generatedAt: '2026-11-27T01:00:00.000Z',
    sink: 'dir',
    missing: [`slow-downs per host: ${HOSTILE.script}`],
    totals: {
      rows: 567_597,
      saved: 472_000,
      failed: 25_000,
      skipped: 70_597,
      bytesFetched: 412 * 1024 ** 3,
      bytesWritten: 198 * 1024 ** 3,
      startedAt: '2026-11-26T23:10:00Z',
      endedAt: '2026-11-27T00:39:59Z',
      rowsPerSecond: 92.3,
    },
    failures: [
      { reason: 'http_404', count: 14_000, examples: [{ id: HOSTILE.script, url: `https://images.example/${HOSTILE.img}`, detail: `404 Not Found ${HOSTILE.quotes}` }] },
      { reason: 'timeout_body', count: 6_000, examples: [{ id: 'b1', url: 'https://slow.example/b1.jpg', detail: 'the body paused 30 s' }] },
      { reason: 'decode_error', count: 4_990, examples: [{ id: HOSTILE.style, url: HOSTILE.cdata, detail: HOSTILE.cdata }] },
      { reason: HOSTILE.script, count: 10, examples: [] },
    ],
    skips: [{ reason: 'done', count: 70_597 }],
    timeline: { unit: 'minute', points },
    hosts: {
      count: 1_204,
      busiest: [
        { host: 'images.pexels.com', rows: 480_000, failed: 18_000, slowDowns: 312 },
        { host: `evil${HOSTILE.img}.example`, rows: 40_000, failed: 4_000, slowDowns: 0 },
        { host: HOSTILE.script, rows: 20_000, failed: 0 },
        { host: 'cdn.example', rows: 7_597, failed: 3_000, slowDowns: 41 },
      ],
    },
    images: {
      storedSides: { shorter: bins(128, [0, 20, 400, 9000, 460_000, 2580]), longer: bins(256, [0, 0, 2000, 10_000, 300_000, 160_000]) },
      originalMegapixels: bins(2, [3000, 50_000, 200_000, 150_000, 60_000, 9000]),
      buckets: [
        { label: '0.75', aspect: 0.75, count: 120_000, belowBatch: false },
        { label: '1.0', aspect: 1, count: 40_000, belowBatch: false },
        { label: '1.5', aspect: 1.5, count: 300_000, belowBatch: false },
        { label: `2.4${HOSTILE.cdata}`, aspect: 2.4, count: 3, belowBatch: true },
        { label: '0.4', aspect: 0.4, count: 1, belowBatch: true },
      ],
      batchSize: 4,
      bucketRule: `SimpleTuner rounds each image's aspect ratio to two decimals and trains a bucket only when it holds at least one batch ${HOSTILE.quotes}.`,
      resolutionNote: 'resolution 1024, resolution_type pixel',
    },
    captions: { words: bins(10, [2000, 90_000, 250_000, 100_000, 30_000]), fromFallback: 1200, missing: 0, total: 472_000 },
    thumbnails,
  };
}

/** Chart name -> how many marks of each kind the fixture must draw. */
function expectedMarks() {
  return {
    timeline: { line: 2 },
    failures: { rect: fixture.failures.length, text: fixture.failures.length },
    hosts: { rect: fixture.hosts.busiest.length * 2, text: fixture.hosts.busiest.length },
    storedSides: { rect: fixture.images.storedSides.shorter.length + fixture.images.storedSides.longer.length },
    megapixels: { rect: fixture.images.originalMegapixels.length },
    buckets: { rect: fixture.images.buckets.length, text: fixture.images.buckets.length },
    captionWords: { rect: fixture.captions.words.length },
  };
}

describe('the report page as HTML', () => {
  test('everything from the dataset is escaped, in text, attributes and chart labels', async () => {
    const page = await renderReport(fixture);
    // The page has exactly the markup it makes: one style element, no script, one img per thumbnail, no svg but the charts'.
    assert.equal(count(page, '<script'), 0);
    assert.equal(count(page, '<style'), 1);
    assert.equal(count(page, '</style>'), 1);
    assert.equal(count(page, '<img'), fixture.thumbnails.length);
    assert.equal(count(page, '<svg'), Object.keys(expectedMarks()).length);
    assert.equal(count(page, '<b>'), 0);
    // No tag with an event attribute. (Read attribute by attribute: inside a quoted value or
    // in text, `onerror="` is harmless characters, its quotes and `<` escaped.)
    assert.doesNotMatch(page, /<[a-z][\w-]*(?:\s+[\w:-]+(?:=(?:"[^"]*"|[^\s"'>]*))?)*\s+on[a-z]+\s*=/i);
    assert.ok(!page.includes(']]>'), 'no CDATA end');
    // ... and the hostile text is there, as text.
    assert.ok(page.includes('&lt;script&gt;window.__pwned=1&lt;/script&gt;'));
    assert.ok(page.includes('&quot;&gt;&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;'));
    assert.ok(page.includes('&lt;/style&gt;&lt;script&gt;'));
    assert.ok(page.includes('it&#39;s &quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt;'));
    assert.ok(page.includes(']]&gt;&lt;svg onload=&quot;window.__pwned=1&quot;&gt;'));
    // Chart labels (Vega's own escaping): the hostile host and bucket names.
    assert.match(page, /<text[^>]*>evil&quot;&gt;&lt;img src=x onerror=|<text[^>]*>evil"&gt;&lt;img src=x onerror=/);
    assert.match(page, /<text[^>]*>2\.4\]\]&gt;&lt;svg onload=/);
    // A link to a stored file keeps its odd characters in the name, not in the URL's syntax.
    assert.ok(page.includes('href="images/a%3Ab%20%22c%22%20%23%3F%3Cx%3E/dragonfly.jpg"'));
  });

  test('a Content-Security-Policy forbids every request and every script, and allows the one style sheet by its hash', async () => {
    const page = await renderReport(fixture);
    const policy = page.match(/<meta http-equiv="Content-Security-Policy" content="([^"]+)">/)?.[1];
    assert.ok(policy, 'the page has a policy');
    const style = page.match(/<style>([\s\S]*?)<\/style>/)?.[1] ?? '';
    const hash = createHash('sha256').update(style).digest('base64');
    assert.deepEqual(policy.split('; '), [
      "default-src 'none'",
      'img-src data:',
      `style-src 'sha256-${hash}'`,
      "script-src 'none'",
      "base-uri 'none'",
      "form-action 'none'",
    ]);
    // The policy comes before anything it governs.
    assert.ok(page.indexOf('Content-Security-Policy') < page.indexOf('<style>'));
    assert.ok(!/\sstyle="/.test(page), 'no inline style attribute (the policy would refuse it)');
  });

  test('a dataset with nothing recorded yet says so instead of drawing empty charts', async () => {
    const page = await renderReport(emptyReport());
    assert.equal(count(page, '<svg'), 0);
    assert.equal(count(page, '<img'), 0);
    assert.match(page, /No row failed\./);
    assert.match(page, /No time was recorded for the outcomes\./);
    assert.match(page, /No thumbnails/);
    assert.match(page, /when each outcome happened: this output was written before it was recorded/);
  });

  test('odd but possible data draws its charts: zero counts, one point, one side of the sizes unrecorded', async () => {
    const base = emptyReport();
    const page = await renderReport({
      ...base,
      totals: { ...base.totals, rows: 1, failed: 1 },
      failures: [{ reason: 'decode_error', count: 0, examples: [] }],
      timeline: { unit: 'hour', points: [{ at: '2026-11-26T23:00:00Z', saved: 0, failed: 0 }] },
      hosts: { count: 1, busiest: [{ host: 'a.example', rows: 0, failed: 0 }] },
      images: {
        ...base.images,
        storedSides: { shorter: [{ from: 0, to: 512, count: 3 }], longer: [] },
        originalMegapixels: [{ from: 0, to: 1, count: 0 }],
        buckets: [{ label: '1.0', aspect: 1, count: 0, belowBatch: true }],
      },
      captions: { words: [{ from: 0, to: 5, count: 0 }], fromFallback: 0, missing: 0, total: 0 },
    });
    assert.equal(count(page, '<svg'), 7);
    assert.match(page, /shorter side \(px\)/);
    assert.doesNotMatch(page, /longer side \(px\)/);
  });

  test('a thumbnail source that is not a data: URI is refused, since the page promises to ask for nothing', async () => {
    const [first] = fixture.thumbnails;
    assert.ok(first);
    await assert.rejects(renderReport({ ...fixture, thumbnails: [{ ...first, src: 'https://images.example/x.jpg' }] }), /src must be a data:image\/ URI/);
  });
});

describe('thumbnails', () => {
  test('a photo becomes a small WebP data: URI with its aspect ratio', async () => {
    const thumbnail = await thumbnailDataUri(join(PHOTOS, 'aqua.jpg'));
    assert.match(thumbnail.src, /^data:image\/webp;base64,[A-Za-z0-9+/]+=*$/);
    assert.deepEqual([thumbnail.width, thumbnail.height], [160, 100]);
    const decoded = await sharp(Buffer.from(thumbnail.src.split(',')[1] ?? '', 'base64')).metadata();
    assert.deepEqual([decoded.format, decoded.width, decoded.height], ['webp', 160, 100]);
    assert.ok(thumbnail.src.length < 16_000, `a thumbnail is small (${thumbnail.src.length} characters)`);
  });

  test('EXIF orientation is applied: a landscape file shown rotated stands upright', async () => {
    const rotated = await sharp(join(PHOTOS, 'aqua.jpg')).resize(400, 250).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    const thumbnail = await thumbnailDataUri(rotated, 80);
    assert.deepEqual([thumbnail.width, thumbnail.height], [50, 80]);
  });

  test('a small image is not enlarged', async () => {
    const small = await sharp(join(PHOTOS, 'storm.jpg')).resize(60, 40).png().toBuffer();
    const thumbnail = await thumbnailDataUri(small);
    assert.deepEqual([thumbnail.width, thumbnail.height], [60, 40]);
  });

  test('a file that is not an image is refused with a message naming it', async () => {
    const notImage = join(PHOTOS, 'INDEX.tsv');
    await assert.rejects(thumbnailDataUri(notImage), (error) => {
      assert.ok(error instanceof Error);
      assert.match(error.message, /^cannot make a thumbnail of .*INDEX\.tsv: /);
      assert.ok(!error.message.includes('\n'), 'one line');
      return true;
    });
    await assert.rejects(thumbnailDataUri(Buffer.from('not an image')), /^Error: cannot make a thumbnail of an image of 12 bytes: /);
  });
});

describe('the report page in a browser', { skip: unlessMissing(existsSync(CHROMIUM), `${CHROMIUM} (apt-get install chromium)`) }, () => {
  test('opened from disk: no request, no console message, no script ran, every chart and thumbnail drawn', async (t) => {
    const started = performance.now();
    const full = join(work.path, 'report.html');
    await writeFile(full, await renderReport(fixture));
    const empty = join(work.path, 'empty.html');
    await writeFile(empty, await renderReport(emptyReport()));
    const rendered = performance.now();

    const { context, page, messages, close } = await openPage();
    try {
      /** @type {string[]} */
      const requests = [];
      page.on('request', (request) => requests.push(request.url()));
      /** @type {string[]} */
      const refused = [];
      await context.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith('file:') && [full, empty].some((path) => url === pathToFileURL(path).href)) return route.continue();
        refused.push(url);
        return route.abort();
      });

      for (const path of [full, empty]) {
        const url = pathToFileURL(path).href;
        requests.length = 0;
        await page.goto(url, { waitUntil: 'load' });
        assert.deepEqual(requests.filter((request) => request !== url && !request.startsWith('data:')), [], `${path}: no request but the page itself`);
      }
      // Back to the full page for the rest.
      await page.goto(pathToFileURL(full).href, { waitUntil: 'load' });
      assert.deepEqual(refused, [], 'nothing asked for anything outside');

      const seen = await page.evaluate(() => {
        // This runs in the page; the tests' type check knows no DOM.
        const { document, window } = /** @type {any} */ (globalThis);
        const marks = Object.fromEntries(
          [...document.querySelectorAll('figure.chart')].map((figure) => {
            /** @type {Record<string, number>} */
            const kinds = {};
            for (const group of figure.querySelectorAll('svg g.role-mark')) {
              const kind = [...group.classList].find((name) => name.startsWith('mark-'))?.slice(5) ?? 'unknown';
              kinds[kind] = (kinds[kind] ?? 0) + [...group.children].filter((child) => child.tagName !== 'g').length;
            }
            return [figure.getAttribute('data-chart') ?? '', kinds];
          }),
        );
        const images = [...document.querySelectorAll('img')].map((img) => ({ complete: img.complete, width: img.naturalWidth, alt: img.alt }));
        const firstCell = document.querySelector('.contact-sheet li');
        return {
          pwned: window.__pwned,
          marks,
          images,
          styled: document.querySelectorAll('[style]').length,
          handlers: [...document.querySelectorAll('*')].flatMap((element) => element.getAttributeNames().filter((name) => name.startsWith('on'))),
          scripts: document.scripts.length,
          title: document.title,
          firstCellTitle: firstCell?.getAttribute('title'),
          links: [...document.querySelectorAll('.contact-sheet a')].map((a) => a.getAttribute('href')),
        };
      });
      assert.equal(seen.pwned, undefined, 'no script from the dataset ran');
      assert.equal(seen.scripts, 0);
      assert.equal(seen.styled, 0, 'no element has a style attribute');
      assert.deepEqual(seen.handlers, [], 'no element has an event handler attribute');
      assert.equal(seen.title, `Dataset report: ${fixture.title}`);
      assert.equal(seen.firstCellTitle, `${fixture.thumbnails[0]?.id}\n${fixture.thumbnails[0]?.caption}`);
      assert.equal(seen.images.length, fixture.thumbnails.length);
      for (const image of seen.images) assert.ok(image.complete && image.width > 0, `thumbnail decoded: ${image.alt}`);
      assert.equal(seen.links.length, fixture.thumbnails.length);
      for (const [chart, kinds] of Object.entries(expectedMarks())) {
        for (const [kind, expected] of Object.entries(kinds)) {
          assert.equal(seen.marks[chart]?.[kind], expected, `${chart}: ${expected} ${kind} marks`);
        }
      }

      const screenshot = join(work.path, 'report.png');
      await page.screenshot({ path: screenshot, fullPage: true });
      const png = await readFile(screenshot);
      assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
      assert.ok(png.length > 50_000, `a screenshot of the whole page (${png.length} bytes)`);
      const { height } = await sharp(png).metadata();
      assert.ok((height ?? 0) > 2000, `the full page, not the viewport (${height} px tall)`);

      assert.deepEqual(messages, [], 'no console message of any kind');
      t.diagnostic(`rendered 2 pages in ${Math.round(rendered - started)} ms (${(await readFile(full)).length} bytes), browser checks in ${Math.round(performance.now() - rendered)} ms`);
    } finally {
      await close();
    }
  });
});

/** @returns {import('../dist/report/html/data.js').ReportData} */
function emptyReport() {
  return {
    title: 'new-output',
    generatedAt: '2026-11-27T01:00:00.000Z',
    sink: 'parquet',
    missing: ['when each outcome happened: this output was written before it was recorded'],
    totals: { rows: 0, saved: 0, failed: 0, skipped: 0, bytesFetched: 0, bytesWritten: 0 },
    failures: [],
    skips: [],
    timeline: { unit: 'hour', points: [] },
    hosts: { count: 0, busiest: [] },
    images: {
      storedSides: { shorter: [], longer: [] },
      originalMegapixels: [],
      buckets: [],
      batchSize: 1,
      bucketRule: 'SimpleTuner buckets by aspect ratio.',
    },
    captions: { words: [], fromFallback: 0, missing: 0, total: 0 },
    thumbnails: [],
  };
}

/** @param {string} text @param {string} part */
function count(text, part) {
  return text.split(part).length - 1;
}
