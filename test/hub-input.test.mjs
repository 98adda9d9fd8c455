// Inputs behind redirects, as the Hugging Face Hub serves them: a resolve URL answers 302 to
// a signed, expiring URL on a CDN. A real nginx plays both (the Hub on one port, the CDN on
// another, serving byte ranges as static files), and the signed URLs expire for real.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeCsvRows, writeNdjsonRows, writeParquetRows } from '../dist/demo/dataset-files.js';
import { hubResolveUrl } from '../dist/sources/hub-uri.js';
import { startCountingServer } from './support/counting-server.mjs';
import { unlessMissing } from './support/needs.mjs';
import { HAVE_NGINX, freePort, startNginx } from './support/nginx.mjs';
import { readResults, runCli, tempDir } from './support/run.mjs';

const REPO = 'bghira/photo-concept-bucket';

describe('hf:// names', () => {
  it('map to the resolve URLs huggingface_hub builds: revision encoded whole, path slashes kept', () => {
    const endpoint = 'http://hub.test';
    const cases = [
      ['hf://datasets/bghira/photo-concept-bucket/photo-concept-bucket.parquet', '/datasets/bghira/photo-concept-bucket/resolve/main/photo-concept-bucket.parquet'],
      ['hf://datasets/o/n@v1.0/data/train.parquet', '/datasets/o/n/resolve/v1.0/data/train.parquet'],
      ['hf://datasets/o/n@refs/convert/parquet/default/train/0000.parquet', '/datasets/o/n/resolve/refs%2Fconvert%2Fparquet/default/train/0000.parquet'],
      ['hf://datasets/o/n@refs/pr/12/a.csv', '/datasets/o/n/resolve/refs%2Fpr%2F12/a.csv'],
      ['hf://datasets/o/n@feature%2Fx/a b+c(1).csv', '/datasets/o/n/resolve/feature%2Fx/a%20b%2Bc%281%29.csv'],
      ['hf://datasets/o/n/dir/file@2.txt', '/datasets/o/n/resolve/main/dir/file%402.txt'],
    ];
    for (const [uri, path] of cases) assert.equal(hubResolveUrl(uri, endpoint), `${endpoint}${path}`, uri);
    /** @type {Array<[string, RegExp]>} */
    const wrong = [
      ['hf://bghira/photo-concept-bucket/x.parquet', /not a dataset repository/],
      ['hf://dataset/o/n/x.parquet', /plural, "datasets"/],
      ['hf://models/o/n/x.parquet', /only dataset repositories are read, not models/],
      ['hf://datasets/o/n', /names no file/],
      ['hf://datasets/o@main/x.parquet', /OWNER\/NAME/],
      ['hf://datasets/o/n@/x.parquet', /revision after "@" is empty/],
    ];
    for (const [uri, message] of wrong) {
      assert.throws(() => hubResolveUrl(uri, endpoint), message, uri);
    }
  });
});

describe('inputs behind redirects (nginx as the Hub and its CDN)', { skip: unlessMissing(HAVE_NGINX, 'nginx (apt-get install nginx)') }, () => {
  /** @type {Awaited<ReturnType<typeof tempDir>>} */
  let work;
  /** @type {Awaited<ReturnType<typeof startCountingServer>>} */
  let images;
  /** @type {Awaited<ReturnType<typeof startNginx>>} */
  let nginx;
  let hub = '';
  /** @type {ReturnType<typeof datasetRows>} */
  let rows;

  /** @param {number} count */
  function datasetRows(count) {
    return Array.from({ length: count }, (_, i) => ({ id: 5000 + i, url: `${images.base}/img/${5000 + i}.png`, cogvlm_caption: `photo ${5000 + i}, "quoted"`, tags: 't', width: 96, height: 64 }));
  }

  before(async () => {
    work = await tempDir();
    images = await startCountingServer({ delayMs: 0 });
    const [hubPort, cdnPort] = [await freePort(), await freePort()];
    hub = `http://127.0.0.1:${hubPort}`;
    const cdn = `http://127.0.0.1:${cdnPort}`;
    const files = join(work.path, 'files', 'cdn');
    await mkdir(join(files, 'main'), { recursive: true });
    await mkdir(join(files, 'refs', 'convert', 'parquet', 'default', 'train'), { recursive: true });
    await mkdir(join(work.path, 'used'));
    rows = datasetRows(600);
    await writeParquetRows(join(files, 'main', 'photo-concept-bucket.parquet'), rows, 100);
    await writeParquetRows(join(files, 'refs', 'convert', 'parquet', 'default', 'train', '0000.parquet'), rows.slice(0, 50), 100);
    await writeNdjsonRows(join(files, 'main', 'rows.ndjson'), rows.slice(0, 30));
    await writeCsvRows(join(files, 'main', 'rows.csv'), rows.slice(0, 30));
    const used = join(work.path, 'used');
    nginx = await startNginx(work.path, `
  log_format hits '$status $request_uri';
  server {
    listen 127.0.0.1:${hubPort};
    access_log ${join(work.path, 'hub.log')} hits;
    # The Hub: a resolve URL answers 302 to a URL on the CDN, signed anew each time.
    location ~ ^/datasets/${REPO}/resolve/(?<rev>[^/]+)/(?<file>.+)$ {
      return 302 ${cdn}/cdn/$rev/$file?sig=$request_id;
    }
    # Signed URLs that expire once used: every range after the first finds its URL expired.
    location ~ ^/expiring/(?<file>.+)$ { return 302 ${cdn}/once/main/$file?sig=$request_id; }
    # The same signature every time: once it is used, resolving again does not help.
    location ~ ^/stale/(?<file>.+)$ { return 302 ${cdn}/once/main/$file?sig=stale; }
    location = /loop { return 302 /loop; }
    location ~ ^/hop/(?<n>a*)$ { return 302 /hop/\${n}a; }
    location = /to-ftp { return 302 ftp://127.0.0.1/photo-concept-bucket.parquet; }
  }
  server {
    listen 127.0.0.1:${cdnPort};
    root ${join(work.path, 'files')};
    access_log ${join(work.path, 'cdn.log')} hits;
    location /cdn/ {
      if ($arg_sig = '') { return 403; }
    }
    # A signature is used up by its first request, which logs it under used/.
    location /once/ {
      alias ${files}/;
      if (-f ${used}/$arg_sig) { return 403; }
      access_log ${join(work.path, 'cdn.log')} hits;
      access_log ${used}/$arg_sig hits;
    }
  }`, [hubPort, cdnPort]);
  });
  after(async () => {
    await nginx?.close();
    await images?.close();
    await work?.cleanup();
  });

  /** The lines nginx logged so far ("status uri"). @param {'hub' | 'cdn'} server */
  async function logged(server) {
    return (await readFile(join(work.path, `${server}.log`), 'utf8').catch(() => '')).split('\n').filter(Boolean);
  }

  /** Runs the CLI on `input` and returns its results, sorted by row. @param {string} name @param {string[]} args @param {NodeJS.ProcessEnv} [env] */
  async function run(name, args, env) {
    const results = join(work.path, `${name}.ndjson`);
    const outcome = await runCli([...args, '--output', join(work.path, name), '--resolution', '32', '--results', results, '--quiet'], env ? { env: { ...process.env, ...env } } : {});
    assert.equal(outcome.code, 0, outcome.stderr);
    return (await readResults(results)).map((result) => [result.index, result.id, result.status]).sort((a, b) => a[0] - b[0]);
  }

  /** @param {number} first @param {number} last */
  const saved = (first, last) => rows.slice(first - 1, last).map((row, i) => [first + i, String(row.id), 'saved']);

  it('a resolve URL that redirects to a signed CDN URL: Parquet is read by ranges from the CDN, resolved once', async (t) => {
    const hubBefore = (await logged('hub')).length;
    const cdnBefore = (await logged('cdn')).length;
    const input = `${hub}/datasets/${REPO}/resolve/main/photo-concept-bucket.parquet`;
    assert.deepEqual(await run('resolve', ['--input', input, '--rows', '201-240']), saved(201, 240));
    assert.deepEqual((await logged('hub')).slice(hubBefore), [`302 /datasets/${REPO}/resolve/main/photo-concept-bucket.parquet`], 'one resolve: every range went to the CDN URL');
    const ranges = (await logged('cdn')).slice(cdnBefore);
    assert.ok(ranges.length >= 3, ranges.join('\n'));
    assert.ok(ranges.every((line) => /^206 \/cdn\/main\/photo-concept-bucket\.parquet\?sig=[0-9a-f]{32}$/.test(line)), ranges.join('\n'));
    t.diagnostic(`1 resolve, ${ranges.length} ranges from the CDN`);
  });

  it('hf://datasets/OWNER/NAME[@REVISION]/PATH reads the Hub resolve URL (HF_ENDPOINT); NDJSON and CSV stream from the CDN', async () => {
    const env = { HF_ENDPOINT: `${hub}/` };
    const hubBefore = (await logged('hub')).length;
    assert.deepEqual(await run('hf-parquet', ['--input', `hf://datasets/${REPO}/photo-concept-bucket.parquet`, '--rows', '591-'], env), saved(591, 600));
    assert.deepEqual(await run('hf-ndjson', ['--input', `hf://datasets/${REPO}@main/rows.ndjson`, '--rows', '1-5'], env), saved(1, 5));
    assert.deepEqual(await run('hf-csv', ['--input', `hf://datasets/${REPO}/rows.csv`, '--rows', '26-'], env), saved(26, 30));
    assert.deepEqual(await run('hf-convert', ['--input', `hf://datasets/${REPO}@refs/convert/parquet/default/train/0000.parquet`, '--rows', '49-'], env), saved(49, 50));
    assert.deepEqual((await logged('hub')).slice(hubBefore), [
      `302 /datasets/${REPO}/resolve/main/photo-concept-bucket.parquet`,
      `302 /datasets/${REPO}/resolve/main/rows.ndjson`,
      `302 /datasets/${REPO}/resolve/main/rows.csv`,
      `302 /datasets/${REPO}/resolve/refs%2Fconvert%2Fparquet/default/train/0000.parquet`,
    ]);
    const wrong = await runCli(['--input', 'hf://models/bghira/x/y.parquet', '--output', join(work.path, 'hf-wrong')], { env: { ...process.env, ...env } });
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.match(wrong.stderr, /^error: --input hf:\/\/models\/bghira\/x\/y\.parquet: only dataset repositories are read, not models; a Hub dataset file is hf:\/\/datasets\/OWNER\/NAME\/PATH/m);
  });

  it('a signed URL that expires during the run: each range it refuses is asked again through the original URL, once', async (t) => {
    const hubBefore = (await logged('hub')).length;
    const cdnBefore = (await logged('cdn')).length;
    assert.deepEqual(await run('expiring', ['--input', `${hub}/expiring/photo-concept-bucket.parquet`, '--rows', '401-430']), saved(401, 430));
    const resolves = (await logged('hub')).slice(hubBefore);
    const cdn = (await logged('cdn')).slice(cdnBefore);
    const expired = cdn.filter((line) => line.startsWith('403 '));
    const served = cdn.filter((line) => line.startsWith('206 '));
    // The first range (the size) used the first URL; every later one found its URL used up.
    assert.ok(expired.length >= 2, cdn.join('\n'));
    assert.equal(resolves.length, 1 + expired.length, `${resolves.length} resolves for ${expired.length} expired URLs`);
    assert.equal(served.length, resolves.length, 'every fresh URL served its range');
    t.diagnostic(`${resolves.length} resolves, ${expired.length} ranges refused by an expired URL, ${served.length} served`);

    // A stream (NDJSON, CSV) is one request: its URL expiring later does not matter.
    assert.deepEqual(await run('expiring-csv', ['--input', `${hub}/expiring/rows.csv`]), saved(1, 30));
  });

  it('a URL that stays expired after resolving again, redirect loops, too many redirects and other schemes: one line naming the input', async () => {
    const stale = await runCli(['--input', `${hub}/stale/photo-concept-bucket.parquet`, '--output', join(work.path, 'stale')]);
    assert.equal(stale.code, 2, stale.stderr);
    assert.match(stale.stderr, /^error: http:\/\/127\.0\.0\.1:\d+\/stale\/photo-concept-bucket\.parquet: bytes \d+-\d+ answered HTTP 403 instead of 206 \(from http:\/\/127\.0\.0\.1:\d+\/once\/main\/photo-concept-bucket\.parquet\?…, after resolving http:\/\/127\.0\.0\.1:\d+\/stale\/photo-concept-bucket\.parquet again\)\n$/);
    assert.doesNotMatch(stale.stderr, /sig=/, 'a signed URL is a credential: messages leave its query out');
    /** @type {Array<[string, RegExp]>} */
    const cases = [
      ['/loop', /^error: cannot read input http:\/\/127\.0\.0\.1:\d+\/loop: redirect loop back to http:\/\/127\.0\.0\.1:\d+\/loop\n$/],
      ['/hop/', /^error: cannot read input http:\/\/127\.0\.0\.1:\d+\/hop\/: more than 5 redirects\n$/],
      ['/to-ftp', /^error: cannot read input http:\/\/127\.0\.0\.1:\d+\/to-ftp: redirected to a ftp: URL, refused \(http and https only\)\n$/],
    ];
    for (const [path, message] of cases) {
      for (const name of ['rows.parquet', 'rows.ndjson']) {
        const input = `${hub}${path}`;
        const outcome = await runCli(['--input', input, '--input-format', name.split('.')[1], '--output', join(work.path, 'nowhere')]);
        assert.equal(outcome.code, 2, `${path} ${name}: ${outcome.stderr}`);
        assert.match(outcome.stderr, message, `${path} ${name}`);
      }
    }
  });
});
