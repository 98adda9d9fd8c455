// --max-row-bytes: a row longer than the bound (an NDJSON line, a CSV record, a Parquet
// row) fails as bad_row naming it, is never held whole, and the rows after it are read
// as usual with their numbers right.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import * as arrow from 'apache-arrow';
import { parse } from 'csv-parse';
import { Table as WasmTable, writeParquet } from 'parquet-wasm';
import { watchProcessTree } from '../bench/proc.mjs';
import { readCsv } from '../dist/sources/csv.js';
import { splitLines } from '../dist/sources/lines.js';
import { withTestCdn } from './support/cdn.mjs';
import { CLI, readResults, runCli } from './support/run.mjs';
import { seededRandom } from './support/random.mjs';

const random = seededRandom;

/** `bytes` as a stream of pieces of random length up to `most`. @param {Buffer} bytes @param {() => number} next @param {number} most */
function pieces(bytes, next, most) {
  const out = [];
  for (let at = 0; at < bytes.length; ) {
    const length = 1 + Math.floor(next() * most);
    out.push(bytes.subarray(at, at + length));
    at += length;
  }
  return Readable.from(out);
}

/** @param {AsyncIterable<any>} items @returns {Promise<any[]>} */
async function collect(items) {
  const out = [];
  for await (const item of items) out.push(item);
  return out;
}

/** The index of a record or a failure from a reader. @param {any} entry */
const indexOf = (entry) => ('kind' in entry ? entry.row.index : entry.index);

describe('the row bound', () => {
  const context = withTestCdn();
  const row = (/** @type {string} */ id, /** @type {string} */ photo) => JSON.stringify({ id, url: context.cdn.url(`/photos/${photo}?bound`), cogvlm_caption: `caption ${id}` });

  it('a 256 MiB NDJSON line fails as bad_row and the rows after it are saved, the process tree under 300 MiB', async () => {
    const { work } = context;
    const results = join(work.path, 'huge-line.ndjson');
    const child = spawn(process.execPath, [CLI, '--output', join(work.path, 'huge-line'), '--resolution', '64', '--results', results, '--quiet'], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
    const exited = new Promise((resolve) => child.on('close', resolve));
    const watch = watchProcessTree(child.pid, 50);
    const mebibyte = Buffer.alloc(1024 * 1024, 'x');
    async function* input() {
      yield `${row('1', 'aqua.jpg')}\n${row('2', 'wine.jpg')}\n`;
      // Line 3: 256 MiB of caption, made as it is written (the test never holds it either).
      yield '{"id":"3","url":"http://127.0.0.1:1/never.jpg","cogvlm_caption":"';
      for (let i = 0; i < 256; i++) yield mebibyte;
      yield '"}\n';
      yield `${row('4', 'storm.jpg')}\n${row('5', 'otters.jpg')}\n`;
    }
    await pipeline(Readable.from(input()), child.stdin);
    const code = await exited;
    const { peakRssKb } = watch.stop();
    assert.equal(code, 0, stderr);
    const lines = await readResults(results);
    assert.deepEqual(lines.map((line) => [line.index, line.status]).sort(), [[1, 'saved'], [2, 'saved'], [3, 'failed'], [4, 'saved'], [5, 'saved']]);
    const long = lines.find((line) => line.index === 3);
    assert.equal(long.reason, 'bad_row');
    assert.match(long.detail, /line 3: longer than --max-row-bytes 4 MiB \(256 MiB\)/);
    assert.ok(peakRssKb < 300 * 1024, `the process tree peaked at ${Math.round(peakRssKb / 1024)} MiB`);
  });

  it('a CSV record longer than the bound, spanning a thousand lines, fails as bad_row; the records after it keep their numbers and lines', async () => {
    const { cdn, work } = context;
    const url = (/** @type {string} */ photo) => cdn.url(`/photos/${photo}?csv-bound`);
    // 1 MiB of caption in 1,024 quoted lines, commas and escaped quotes among them.
    const caption = `${'a, ""b"" '.repeat(113)}cccccc\n`.repeat(1024);
    const csv = [
      'id,url,cogvlm_caption',
      `1,${url('aqua.jpg')},sea`,
      `2,${url('wine.jpg')},glass`,
      `3,${url('storm.jpg')},"${caption}"`,
      `4,${url('otters.jpg')},otters`,
      `5,${url('drop.png')},a"b"c"d`,
      `6,${url('friends.jpg')},friends`,
    ].join('\n');
    const input = join(work.path, 'bound.csv');
    await writeFile(input, `${csv}\n`);
    const results = join(work.path, 'bound-csv.ndjson');
    const run = await runCli(['--input', input, '--output', join(work.path, 'bound-csv'), '--resolution', '64', '--results', results, '--max-row-bytes', '64KiB']);
    assert.equal(run.code, 0, run.stderr);
    const lines = await readResults(results);
    assert.deepEqual(lines.map((line) => [line.index, line.id ?? null, line.status]).sort(), [
      [1, '1', 'saved'], [2, '2', 'saved'], [3, null, 'failed'], [4, '4', 'saved'], [5, null, 'failed'], [6, '6', 'saved'],
    ]);
    const [long, quotes] = [3, 5].map((index) => lines.find((line) => line.index === index));
    assert.match(long.detail, /^record 3 \(line \d+\): longer than --max-row-bytes 64 KiB \(1 MiB\)$/);
    // Record 5 is on line 1,030: the 1,024 line breaks dropped with record 3 still count.
    assert.match(quotes.detail, /^record 5 \(line 1030\): Invalid Opening Quote/, 'three stray quotes are one bad record, on its own line');
  });

  it('a Parquet row whose text passes the bound fails as bad_row naming its largest column; the rows after it are saved', async () => {
    const { cdn, work } = context;
    const table = new arrow.Table({
      id: arrow.vectorFromArray(['p1', 'p2', 'p3', 'p4'], new arrow.Utf8()),
      url: arrow.vectorFromArray(['aqua.jpg', 'wine.jpg', 'storm.jpg', 'otters.jpg'].map((name) => cdn.url(`/photos/${name}?parquet-bound`)), new arrow.Utf8()),
      cogvlm_caption: arrow.vectorFromArray(['sea', 'x'.repeat(100 * 1024), 'sky', 'otters'], new arrow.Utf8()),
    });
    const input = join(work.path, 'bound.parquet');
    await writeFile(input, writeParquet(WasmTable.fromIPCStream(arrow.tableToIPC(table, 'stream'))));
    const results = join(work.path, 'bound-parquet.ndjson');
    const run = await runCli(['--input', input, '--output', join(work.path, 'bound-parquet'), '--resolution', '64', '--results', results, '--max-row-bytes', '64KiB']);
    assert.equal(run.code, 0, run.stderr);
    const lines = await readResults(results);
    assert.deepEqual(lines.map((line) => [line.index, line.status]).sort(), [[1, 'saved'], [2, 'failed'], [3, 'saved'], [4, 'saved']]);
    assert.match(lines.find((line) => line.index === 2).detail, /^row 2: longer than --max-row-bytes 64 KiB \(100\.\d KiB of text and binary, 100 KiB in column "cogvlm_caption"\)$/);
  });

  it('refuses a bound too small to hold a row, and a size it cannot read', async () => {
    const tiny = await runCli(['--output', join(context.work.path, 'tiny'), '--max-row-bytes', '12']);
    assert.equal(tiny.code, 2);
    assert.match(tiny.stderr, /--max-row-bytes must be a whole number from 1024 to 2147483647, got 12/);
    const words = await runCli(['--output', join(context.work.path, 'words'), '--max-row-bytes', 'lots']);
    assert.equal(words.code, 2);
    assert.match(words.stderr, /--max-row-bytes/);
  });
});

describe('lines and records under the bound', () => {
  it('splitLines: UTF-8 split across chunks comes out whole, CRLF and a last line without a newline are read, a line one byte past the bound is dropped', async () => {
    // 'ñandú 🦩' is 12 bytes, the bound.
    const text = Buffer.from('été\r\nñandú 🦩\n\nñandú 🦩!\nlast');
    const lines = await collect(splitLines(pieces(text, () => 0, 1), 12));
    assert.deepEqual(lines, ['été', 'ñandú 🦩', '', { bytes: 13 }, 'last']);
  });

  it('readCsv: a UTF-16LE or UTF-8 file with a byte order mark reads as UTF-8 does, its long record cut', async () => {
    const text = `id,url,cogvlm_caption\r\n1,u1,"été, ""quoted"""\r\n2,u2,"${'ñ'.repeat(700)}"\r\n3,u3,🦩\r\n`;
    const read = async (/** @type {Buffer} */ bytes) => (await collect(readCsv(pieces(bytes, random(7), 5), () => {}, 1024))).map((entry) => ('kind' in entry ? entry.detail : entry));
    const plain = await read(Buffer.from(text));
    assert.deepEqual(plain, [
      { index: 1, record: { id: '1', url: 'u1', cogvlm_caption: 'été, "quoted"' } },
      'record 2 (line 3): longer than --max-row-bytes 1 KiB (1.4 KiB)',
      { index: 3, record: { id: '3', url: 'u3', cogvlm_caption: '🦩' } },
    ]);
    assert.deepEqual(await read(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])), plain);
    assert.deepEqual(await read(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')])), plain);
  });

  it('readCsv with a bound reads every record csv-parse reads alone, numbered alike, and fails exactly the long ones, CSV and TSV (seeded)', async () => {
    // Records of every shape csv-parse has to decide about: quoted fields with commas, tabs,
    // line breaks and escaped quotes, stray quotes, NUL, CR, LF and CRLF files, a last record
    // without a line break; every other round with tabs between fields (TSV). The bounds are
    // small (readCsv takes any) so that many records pass them.
    const shapes = ['"', ',', '\t', '\n', '\r', '\r\n', 'x', '\0', 'é', '""', '"q"', 'abc'];
    const seed = 20_240_917;
    const next = random(seed);
    let cuts = 0;
    let tsvCuts = 0;
    for (let round = 0; round < 150; round++) {
      const delimiter = round % 2 === 0 ? ',' : '\t';
      const d = delimiter;
      const newline = ['\n', '\r\n', '\r'][Math.floor(next() * 3)];
      const parts = [`a${d}b${d}c${newline}`];
      for (let record = 0, count = 5 + Math.floor(next() * 25); record < count; record++) {
        const shape = next();
        if (shape < 0.45) parts.push(`${record}${d}u${d}"cap ${'w'.repeat(Math.floor(next() * 120))}"${newline}`);
        else if (shape < 0.6) parts.push(`${record}${d}u${d}${'z'.repeat(Math.floor(next() * 120))}${newline}`);
        else {
          let text = '';
          for (let i = Math.floor(next() * 40); i > 0; i--) text += shapes[Math.floor(next() * shapes.length)];
          parts.push(`${text}${'L'.repeat(next() < 0.3 ? Math.floor(next() * 200) : 0)}${next() < 0.8 ? newline : ''}`);
        }
      }
      const bytes = Buffer.from(parts.join(''));
      const bound = 16 + Math.floor(next() * 150);
      const label = `seed ${seed}, round ${round}, ${d === ',' ? 'CSV' : 'TSV'}, bound ${bound}: ${JSON.stringify(bytes.toString()).slice(0, 300)}`;
      // The reference: csv-parse alone, which gives each good record's raw text (its length).
      const lengths = [];
      const reference = Readable.from([bytes]).pipe(parse({ bom: true, skip_empty_lines: true, skip_records_with_error: true, delimiter, columns: true, raw: true }));
      for await (const { raw } of reference) lengths.push(Buffer.byteLength(raw));
      const all = await collect(readCsv(pieces(bytes, next, 64), () => {}, 2 ** 31 - 1, 1, delimiter));
      const bounded = await collect(readCsv(pieces(bytes, next, 64), () => {}, bound, 1, delimiter));
      assert.deepEqual(bounded.map(indexOf), all.map(indexOf), `the same records, numbered alike (${label})`);
      const good = all.filter((entry) => !('kind' in entry));
      assert.equal(good.length, lengths.length, label);
      const byIndex = new Map(bounded.map((entry) => [indexOf(entry), entry]));
      for (const entry of all.filter((each) => 'kind' in each)) assert.ok('kind' in byIndex.get(indexOf(entry)), `record ${indexOf(entry)} stays bad (${label})`);
      good.forEach((entry, i) => {
        const other = byIndex.get(entry.index);
        // `raw` ends with the first byte of the record delimiter, when there is one.
        const length = lengths[i];
        if ('kind' in other) {
          assert.match(other.detail, /longer than --max-row-bytes/, label);
          assert.ok(length > bound, `record ${entry.index} of ${length} bytes is cut (${label})`);
          cuts++;
          if (d === '\t') tsvCuts++;
        } else {
          assert.deepEqual(other.record, entry.record, label);
          assert.ok(length <= bound + 1, `record ${entry.index} of ${length} bytes is read (${label})`);
        }
      });
    }
    assert.ok(cuts > 200 && tsvCuts > 100, `records were cut (${cuts}, ${tsvCuts} of them in TSV)`);
  });
});
