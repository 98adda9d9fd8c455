// Images done right: orientation, colour, bit depth, alpha, animation, resize modes,
// filters before and after the fetch, decompression bombs, originals kept byte for byte.
// Hard cases are made here with sharp from the bundled real photos.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createDeflate, crc32 as zlibCrc32 } from 'node:zlib';
import sharp from 'sharp';
import { runPipeline } from '../dist/index.js';
import { startLoopbackCdn } from '../dist/demo/loopback-cdn.js';
import { PHOTOS } from './support/cdn.mjs';
import { meanDifference } from './support/images.mjs';
import { readResults, tempDir } from './support/run.mjs';

/** @type {Awaited<ReturnType<typeof tempDir>>} */
let work;
/** @type {Awaited<ReturnType<typeof startLoopbackCdn>>} */
let cdn;
let served = '';

before(async () => {
  work = await tempDir();
  served = join(work.path, 'served');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(served);
  cdn = await startLoopbackCdn({ root: served });
});
after(async () => {
  await cdn.close();
  await work.cleanup();
});

const quiet = { quiet: true, logEveryMs: 0 };

/**
 * Runs rows { id, file, width?, height? } (files under `served`) and returns results by id.
 * @param {string} name @param {Array<{ id: string, file: string, width?: number, height?: number }>} rows @param {object} [image]
 */
async function run(name, rows, image = {}) {
  const input = join(work.path, `${name}.ndjson`);
  await writeFile(input, rows.map(({ id, file, width, height }) => `${JSON.stringify({ id, url: `${cdn.origin}/photos/${file}`, cogvlm_caption: id, width, height })}\n`).join(''));
  const output = join(work.path, name);
  const resultsPath = join(work.path, `${name}-results.ndjson`);
  const summary = await runPipeline({ input: { path: input }, output, image, report: { ...quiet, resultsPath } });
  const results = new Map((await readResults(resultsPath)).map((result) => [result.id, result]));
  return { output, summary, results };
}

describe('orientation', () => {
  test('every EXIF orientation 1 to 8 comes out upright at the right size', async () => {
    const upright = await sharp(join(PHOTOS, 'friends.jpg')).toBuffer(); // 799x1200 portrait
    // What a camera stores for each orientation: the upright picture under the inverse of
    // the transform the tag asks a viewer to apply.
    // (Separate steps where two are needed: sharp applies rotate and flop in its own order.)
    /** @type {Record<number, (image: import('sharp').Sharp) => import('sharp').Sharp | Promise<import('sharp').Sharp>>} */
    const stored = {
      1: (image) => image,
      2: (image) => image.flop(),
      3: (image) => image.rotate(180),
      4: (image) => image.flip(),
      5: async (image) => sharp(await image.rotate(90).toBuffer()).flop(), // transpose
      6: (image) => image.rotate(-90),
      7: async (image) => sharp(await image.rotate(-90).toBuffer()).flop(), // transverse
      8: (image) => image.rotate(90),
    };
    const rows = [];
    for (const [orientation, transform] of Object.entries(stored)) {
      const pixels = await (await transform(sharp(upright))).toBuffer();
      await sharp(pixels).withMetadata({ orientation: Number(orientation) }).jpeg({ quality: 95 }).toFile(join(served, `orient-${orientation}.jpg`));
      rows.push({ id: `o${orientation}`, file: `orient-${orientation}.jpg` });
    }
    const { output, summary } = await run('orientation', rows);
    assert.equal(summary.saved, 8);
    for (const row of rows) {
      const { width, height } = await sharp(join(output, `${row.id}.png`)).metadata();
      assert.deepEqual([width, height], [1024, 1536], `${row.id} is portrait`);
      const difference = await meanDifference(join(output, 'o1.png'), join(output, `${row.id}.png`));
      assert.ok(difference < 6, `${row.id} matches the upright photo (mean difference ${difference.toFixed(2)})`);
    }
    // For scale: the same photo mirrored, as a pipeline ignoring the tag would give for 2.
    const mirrored = await sharp(join(output, 'o1.png')).flop().png().toBuffer();
    const wrong = await meanDifference(join(output, 'o1.png'), mirrored);
    assert.ok(wrong > 20, `a wrong orientation is far off (${wrong.toFixed(2)})`);
  });
});

describe('colour, depth, alpha, frames', () => {
  test('CMYK and Display P3 photos come out sRGB, close to the sRGB original', async () => {
    // CMYK from a photo of soft colours (CMYK's gamut is smaller than sRGB's: saturated
    // colours would clip), Display P3 from a saturated one (where P3 and sRGB differ most).
    await sharp(join(PHOTOS, 'sunset.jpg')).jpeg({ quality: 95 }).toFile(join(served, 'srgb-cmyk.jpg'));
    await sharp(join(PHOTOS, 'sunset.jpg')).toColourspace('cmyk').jpeg({ quality: 95 }).toFile(join(served, 'cmyk.jpg'));
    await sharp(join(PHOTOS, 'flowers.webp')).jpeg({ quality: 95 }).toFile(join(served, 'srgb-p3.jpg'));
    await sharp(join(PHOTOS, 'flowers.webp')).withIccProfile('p3').jpeg({ quality: 95 }).toFile(join(served, 'p3.jpg'));
    const cmykInfo = await sharp(join(served, 'cmyk.jpg')).metadata();
    assert.equal(cmykInfo.space, 'cmyk', 'the fixture really is CMYK');
    const p3Info = await sharp(join(served, 'p3.jpg')).metadata();
    assert.ok(p3Info.icc, 'the fixture carries its P3 profile');
    // P3 values read as if they were sRGB, as a pipeline ignoring the profile would: the
    // distance a missing conversion would show.
    const ignoredProfile = await meanDifference(await sharp(join(served, 'p3.jpg'), { ignoreIcc: true }).png().toBuffer(), join(served, 'srgb-p3.jpg'));

    const { output, summary } = await run('colour', [
      { id: 'srgb-cmyk', file: 'srgb-cmyk.jpg' },
      { id: 'cmyk', file: 'cmyk.jpg' },
      { id: 'srgb-p3', file: 'srgb-p3.jpg' },
      { id: 'p3', file: 'p3.jpg' },
    ]);
    assert.equal(summary.saved, 4);
    for (const id of ['cmyk', 'p3']) {
      const info = await sharp(join(output, `${id}.png`)).metadata();
      assert.deepEqual([info.space, info.channels, info.depth], ['srgb', 3, 'uchar'], id);
      const difference = await meanDifference(join(output, `srgb-${id}.png`), join(output, `${id}.png`));
      // CMYK loses more: its gamut is smaller than sRGB's, so the round trip clips.
      const limit = id === 'cmyk' ? 10 : 3;
      assert.ok(difference < limit, `${id}: mean difference from the sRGB reference ${difference.toFixed(2)} (out of 255)`);
      console.log(`# ${id}: mean difference from the sRGB reference ${difference.toFixed(2)} of 255`);
    }
    console.log(`# p3 read without its profile (no colour management) would differ by ${ignoredProfile.toFixed(2)}`);
    const p3 = await meanDifference(join(output, 'srgb-p3.png'), join(output, 'p3.png'));
    assert.ok(p3 < ignoredProfile / 2, 'the P3 profile was applied, not ignored');
  });

  test('a 16-bit PNG with alpha, a grey image and an animated GIF come out as 8-bit RGB', async () => {
    // 16-bit RGBA, written by hand: opaque blue top half, half-transparent red bottom half.
    await writePng(join(served, 'rgba16.png'), { width: 64, height: 64, bitDepth: 16, colourType: 6 }, (y) => {
      const row = Buffer.alloc(1 + 64 * 8);
      const [r, g, b, a] = y < 32 ? [0, 0, 65535, 65535] : [65535, 0, 0, 32768];
      for (let x = 0; x < 64; x++) {
        row.writeUInt16BE(r, 1 + x * 8);
        row.writeUInt16BE(g, 3 + x * 8);
        row.writeUInt16BE(b, 5 + x * 8);
        row.writeUInt16BE(a, 7 + x * 8);
      }
      return row;
    });
    const fixture = await sharp(join(served, 'rgba16.png')).metadata();
    assert.deepEqual([fixture.depth, fixture.channels], ['ushort', 4], 'the fixture really is 16-bit RGBA');
    await sharp(join(PHOTOS, 'storm.jpg')).toColourspace('b-w').jpeg().toFile(join(served, 'grey.jpg'));
    assert.equal((await sharp(join(served, 'grey.jpg')).metadata()).channels, 1);
    const frame = (colour) => sharp({ create: { width: 64, height: 48, channels: 3, background: colour } }).png().toBuffer();
    await sharp([await frame('#ff0000'), await frame('#0000ff')], { join: { animated: true } }).gif({ delay: [100, 100] }).toFile(join(served, 'animated.gif'));
    assert.equal((await sharp(join(served, 'animated.gif')).metadata()).pages, 2);

    const { output, summary } = await run('depth', [
      { id: 'rgba16', file: 'rgba16.png' },
      { id: 'grey', file: 'grey.jpg' },
      { id: 'animated', file: 'animated.gif' },
    ], { resolution: 64, round: 1 });
    assert.equal(summary.saved, 3, JSON.stringify(summary.failures));
    for (const id of ['rgba16', 'grey', 'animated']) {
      const info = await sharp(join(output, `${id}.png`)).metadata();
      assert.deepEqual([info.channels, info.depth, info.space, info.pages ?? 1], [3, 'uchar', 'srgb', 1], id);
    }
    const pixel = async (id, x, y) => Array.from((await sharp(join(output, `${id}.png`)).extract({ left: x, top: y, width: 1, height: 1 }).raw().toBuffer()));
    assert.deepEqual(await pixel('rgba16', 10, 5), [0, 0, 255], 'opaque blue stays blue');
    const [r, g, b] = await pixel('rgba16', 10, 60);
    assert.ok(r === 255 && Math.abs(g - 127) <= 2 && Math.abs(b - 127) <= 2, `half-transparent red over white is pink: ${[r, g, b]}`);
    assert.deepEqual(await pixel('animated', 10, 10), [255, 0, 0], 'the first frame');

    const kept = await run('alpha', [{ id: 'rgba16', file: 'rgba16.png' }], { resolution: 64, round: 1, keepAlpha: true });
    const alpha = await sharp(join(kept.output, 'rgba16.png')).metadata();
    assert.deepEqual([alpha.channels, alpha.depth], [4, 'uchar'], '--keep-alpha keeps transparency, still 8-bit');
  });
});

describe('resize modes', () => {
  const SIZES = [[2560, 1600], [1600, 2560], [1000, 1000], [500, 300], [3000, 1000]];
  // Computed with the reference's rule in Python (round() is half to even).
  const EXPECTED = {
    shortest: [[1664, 1024], [1024, 1664], [1024, 1024], [1728, 1024], [3072, 1024]],
    longest: [[1024, 640], [640, 1024], [1024, 1024], [1024, 640], [1024, 320]],
    area: [[1408, 896], [896, 1408], [1088, 1088], [1472, 896], [1920, 640]],
    'area --round 1': [[1414, 884], [884, 1414], [1118, 1118], [1443, 866], [1936, 645]],
    'center-crop': [[1024, 1024], [1024, 1024], [1024, 1024], [1024, 1024], [1024, 1024]],
    none: SIZES,
    'shortest --no-upscale': [[1664, 1024], [1024, 1664], [1000, 1000], [500, 300], [3000, 1000]],
  };
  const OPTIONS = {
    shortest: { resize: 'shortest' },
    longest: { resize: 'longest' },
    area: { resize: 'area', megapixels: 1.25 },
    'area --round 1': { resize: 'area', megapixels: 1.25, round: 1 },
    'center-crop': { resize: 'center-crop' },
    none: { resize: 'none', format: 'png' },
    'shortest --no-upscale': { resize: 'shortest', upscale: false },
  };

  before(async () => {
    for (const [width, height] of SIZES) {
      await sharp(join(PHOTOS, 'sunset.jpg')).resize(width, height, { fit: 'fill' }).jpeg().toFile(join(served, `size-${width}x${height}.jpg`));
    }
  });

  for (const [mode, expected] of Object.entries(EXPECTED)) {
    test(`${mode} gives the sizes its rule says`, async () => {
      const rows = SIZES.map(([width, height]) => ({ id: `${width}x${height}`, file: `size-${width}x${height}.jpg` }));
      const { output } = await run(`mode-${mode.replace(/\W+/g, '-')}`, rows, OPTIONS[mode]);
      for (const [i, [width, height]] of SIZES.entries()) {
        const info = await sharp(join(output, `${width}x${height}.png`)).metadata();
        assert.deepEqual([info.width, info.height], expected[i], `${mode}: ${width}x${height}`);
      }
    });
  }

  test('--no-upscale --skip-small skips images smaller than the target', async () => {
    const { results } = await run('skip-small', [
      { id: 'big', file: 'size-2560x1600.jpg' },
      { id: 'small', file: 'size-500x300.jpg' },
    ], { upscale: false, skipSmall: true });
    assert.equal(results.get('big')?.status, 'saved');
    assert.equal(results.get('small')?.reason, 'filtered_size');
  });

  test('--resize none keeps the original bytes untouched', async () => {
    for (const file of ['aqua.jpg', 'drop.png', 'flowers.webp']) await copyFile(join(PHOTOS, file), join(served, file));
    const { output, summary } = await run('none', [
      { id: 'jpeg', file: 'aqua.jpg' },
      { id: 'png', file: 'drop.png' },
      { id: 'webp', file: 'flowers.webp' },
    ], { resize: 'none' });
    assert.equal(summary.saved, 3);
    const hash = async (path) => createHash('sha256').update(await readFile(path)).digest('hex');
    assert.equal(await hash(join(output, 'jpeg.jpg')), await hash(join(PHOTOS, 'aqua.jpg')));
    assert.equal(await hash(join(output, 'png.png')), await hash(join(PHOTOS, 'drop.png')));
    assert.equal(await hash(join(output, 'webp.webp')), await hash(join(PHOTOS, 'flowers.webp')));
  });
});

describe('encoder settings', () => {
  const FILES = ['wine.jpg', 'storm.jpg', 'otters.jpg'];
  const rows = FILES.map((file) => ({ id: file.replace(/\..*/, ''), file }));
  before(async () => {
    for (const file of FILES) await copyFile(join(PHOTOS, file), join(served, file));
  });

  test('png row filters change the size, never the pixels: adaptive (the default) writes smaller files', async () => {
    const adaptive = await run('png-adaptive', rows);
    const none = await run('png-none', rows, { pngFilter: 'none' });
    assert.equal(adaptive.summary.saved, FILES.length);
    assert.equal(none.summary.saved, FILES.length);
    for (const { id } of rows) {
      const [a, b] = await Promise.all([adaptive, none].map(({ output }) => sharp(join(output, `${id}.png`)).raw().toBuffer()));
      assert.ok(a.equals(b), `${id}: the same pixels either way`);
    }
    assert.ok(adaptive.summary.bytesWritten < none.summary.bytesWritten * 0.9, `adaptive ${adaptive.summary.bytesWritten} B, none ${none.summary.bytesWritten} B`);
  });

  test('jpeg is 4:2:0 by default, as PIL and OpenCV write it, and 4:4:4 on request', async () => {
    const standard = await run('jpeg-420', rows, { format: 'jpeg' });
    const full = await run('jpeg-444', rows, { format: 'jpeg', chromaSubsampling: '4:4:4' });
    for (const { id } of rows) {
      assert.equal((await sharp(join(standard.output, `${id}.jpg`)).metadata()).chromaSubsampling, '4:2:0', id);
      assert.equal((await sharp(join(full.output, `${id}.jpg`)).metadata()).chromaSubsampling, '4:4:4', id);
    }
    assert.ok(full.summary.bytesWritten > standard.summary.bytesWritten);
  });
});

describe('filters', () => {
  test('metadata filters skip rows before any request; the real size is checked after the fetch', async () => {
    const rows = [
      { id: 'ok', file: 'size-2560x1600.jpg', width: 2560, height: 1600 },
      { id: 'narrow', file: 'size-500x300.jpg', width: 500, height: 300 },
      { id: 'panorama', file: 'size-3000x1000.jpg', width: 3000, height: 1000 },
      { id: 'lies', file: 'size-500x300.jpg', width: 2560, height: 1600 }, // declared big, really small
      { id: 'undeclared', file: 'size-1000x1000.jpg' },
    ];
    const before = new Map(cdn.requests);
    const { results } = await run('filters', rows, { minSide: 512, maxAspect: 2.5 });
    const requested = (file) => (cdn.requests.get(`/photos/${file}`) ?? 0) - (before.get(`/photos/${file}`) ?? 0);
    assert.equal(results.get('ok')?.status, 'saved');
    assert.equal(results.get('narrow')?.reason, 'filtered_metadata');
    assert.equal(results.get('panorama')?.reason, 'filtered_metadata');
    assert.equal(results.get('lies')?.reason, 'filtered_size');
    assert.equal(results.get('undeclared')?.status, 'saved');
    assert.equal(requested('size-3000x1000.jpg'), 0, 'the panorama was never requested');
    assert.equal(requested('size-500x300.jpg'), 1, 'only the row that lied about its size fetched the small image');
    assert.match(results.get('narrow')?.detail, /declared 500x300 has a side under --min-side 512/);
  });
});

describe('safety', () => {
  test('a decompression bomb is refused from its header, quickly and with little memory', async () => {
    const bomb = join(served, 'bomb.png');
    // A real, valid 1-bit greyscale PNG, all black: a few hundred kilobytes that decode to
    // 30000 x 30000 pixels.
    const blackRow = Buffer.alloc(1 + 30000 / 8);
    await writePng(bomb, { width: 30000, height: 30000, bitDepth: 1, colourType: 0 }, () => blackRow);
    const bytes = (await readFile(bomb)).length;
    assert.ok(bytes < 200_000, `a ${bytes}-byte file declaring 900 megapixels`);

    const { results } = await run('bomb', [{ id: 'bomb', file: 'bomb.png' }]);
    assert.equal(results.get('bomb')?.reason, 'too_many_pixels');
    assert.match(results.get('bomb')?.detail, /30000x30000 is more than --max-pixels 100000000/);

    // Peak memory of refusing it, measured in a fresh process against a baseline that only loads sharp.
    const script = (work) => `
      import sharp from 'sharp';
      import { readFileSync } from 'node:fs';
      import { encodeImage } from ${JSON.stringify(new URL('../dist/image/encode.js', import.meta.url).href)};
      import { resolveOptions } from ${JSON.stringify(new URL('../dist/options.js', import.meta.url).href)};
      const options = resolveOptions({ output: 'unused', image: { format: 'png' } }).image;
      const input = readFileSync(${JSON.stringify(bomb)});
      const started = performance.now();
      const result = ${work ? 'await encodeImage(input, options)' : '{ reason: "baseline" }'};
      console.log(JSON.stringify({ reason: result.reason, ms: performance.now() - started, maxRssKb: process.resourceUsage().maxRSS }));`;
    const measure = (work) => JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script(work)], { encoding: 'utf8' }));
    const baseline = measure(false);
    const refused = measure(true);
    assert.equal(refused.reason, 'too_many_pixels');
    const extraMb = (refused.maxRssKb - baseline.maxRssKb) / 1024;
    console.log(`# bomb refused in ${refused.ms.toFixed(1)} ms, peak RSS ${(refused.maxRssKb / 1024).toFixed(0)} MiB (${extraMb.toFixed(1)} MiB over the baseline)`);
    assert.ok(extraMb < 64, `refusing the bomb took ${extraMb.toFixed(1)} MiB more than loading sharp (decoding it would take 900 MB)`);
  });
});

/**
 * Writes a PNG by hand, streaming its scanlines through zlib, so tests can make images
 * sharp would not write (16-bit with alpha exactly as given, huge declared sizes).
 * @param {string} path
 * @param {{ width: number, height: number, bitDepth: number, colourType: number }} header
 * @param {(y: number) => Buffer} scanline filter byte then the row's samples
 */
async function writePng(path, { width, height, bitDepth, colourType }, scanline) {
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlibCrc32(body) >>> 0);
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colourType;
  const deflate = createDeflate({ level: 9 });
  const compressed = [];
  deflate.on('data', (data) => compressed.push(data));
  for (let y = 0; y < height; y++) {
    if (!deflate.write(scanline(y))) await new Promise((resolve) => deflate.once('drain', resolve));
  }
  const ended = new Promise((resolve) => deflate.once('end', resolve)); // the last compressed bytes come after 'finish'
  deflate.end();
  await ended;
  await writeFile(path, Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', Buffer.concat(compressed)),
    chunk('IEND', Buffer.alloc(0)),
  ]));
}
