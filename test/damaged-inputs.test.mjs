// Damaged inputs, systematically: NDJSON, CSV, Parquet and gzipped NDJSON files with bytes
// flipped, cut short, or random bytes inserted, from a fixed seed. Every run must end in
// time with exit 0, 1 or 2; a failed run says in one line which file and what is wrong (no
// stack trace); and every row read before the damage is recorded in --results.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { constants, createGzip } from 'node:zlib';
import * as arrow from 'apache-arrow';
import { Table as WasmTable, WriterPropertiesBuilder, writeParquet } from 'parquet-wasm';
import { GZIP_ROUND_BYTES } from '../dist/sources/decompress.js';
import { PHOTO_FILES, startTestCdn } from './support/cdn.mjs';
import { readResults, runCli, tempDir } from './support/run.mjs';
import { seededRandom } from './support/random.mjs';

const SEED = 0x5eed_0031;
const CASES_PER_FORMAT = 10;
const ROWS = 16;
/** Parquet rows per row group: rows before a damaged group are read from the ones before it. */
const GROUP_ROWS = 4;
const CASE_TIMEOUT_MS = 20_000;

const random = seededRandom;

/**
 * A clean input and where its rows end.
 * @typedef {{ bytes: Buffer, extension: string, expectedRows: (damage: Damage) => number, rowBytes?: number }} CleanInput
 * @typedef {{ kind: 'flip' | 'cut' | 'insert', at: number, bytes: Buffer }} Damage
 */

/** The cases, fixed by the seed: each a kind of damage at a fraction of the file. */
function planCases() {
  const next = random(SEED);
  const kinds = /** @type {const} */ (['flip', 'cut', 'insert']);
  /** @type {Array<{ format: string, number: number, kind: Damage['kind'], where: number, noise: Buffer }>} */
  const cases = [];
  for (const format of ['ndjson', 'csv', 'parquet', 'ndjson.gz']) {
    for (let number = 1; number <= CASES_PER_FORMAT; number++) {
      const kind = kinds[(number - 1) % kinds.length];
      const length = kind === 'insert' ? 1 + Math.floor(next() * 64) : 1 + Math.floor(next() * 4);
      // Flips XOR with a non-zero byte, so every flipped byte changes.
      const noise = Buffer.from(Array.from({ length }, () => 1 + Math.floor(next() * 255)));
      cases.push({ format, number, kind, where: next(), noise });
    }
  }
  return cases;
}

/** @param {Buffer} clean @param {Damage} damage */
function damaged(clean, damage) {
  if (damage.kind === 'cut') return clean.subarray(0, damage.at);
  if (damage.kind === 'insert') return Buffer.concat([clean.subarray(0, damage.at), damage.bytes, clean.subarray(damage.at)]);
  const copy = Buffer.from(clean);
  // Flipped bytes a few apart from `at` on.
  damage.bytes.forEach((mask, i) => {
    const at = Math.min(copy.length - 1, damage.at + i * 3);
    copy[at] ^= mask;
  });
  return copy;
}

/** How many rows end at or before `offset`, given each row's end. @param {number[]} ends @param {number} offset */
const rowsEndingBy = (ends, offset) => ends.filter((end) => end <= offset).length;

/** @param {string[]} lines one row each, newline included */
function textInput(lines, extension, headerLines = 0) {
  const bytes = Buffer.from(lines.join(''));
  const ends = [];
  let at = 0;
  for (const line of lines) ends.push((at += Buffer.byteLength(line)));
  const header = ends[headerLines - 1] ?? 0;
  const rowEnds = ends.slice(headerLines);
  return {
    bytes,
    extension,
    // A damaged header (CSV) leaves no row readable.
    expectedRows: (/** @type {Damage} */ damage) => (damage.at < header ? 0 : rowsEndingBy(rowEnds, damage.at)),
  };
}

/**
 * Gzipped lines with a full flush after each, so the compressed offset where each row's
 * text is complete is known. zlib only notices damage after it, and drops the output of the
 * round it notices it in (src/sources/decompress.ts): the last GZIP_ROUND_BYTES of text
 * before the damage may be lost.
 * @param {string[]} lines
 */
async function gzipInput(lines) {
  const gzip = createGzip();
  const chunks = [];
  let size = 0;
  gzip.on('data', (chunk) => {
    chunks.push(chunk);
    size += chunk.length;
  });
  const flushedAt = [];
  const textEnds = [];
  let text = 0;
  for (const line of lines) {
    gzip.write(line);
    await new Promise((resolve) => gzip.flush(constants.Z_FULL_FLUSH, () => resolve(undefined)));
    flushedAt.push(size);
    textEnds.push((text += Buffer.byteLength(line)));
  }
  gzip.end();
  await once(gzip, 'end');
  return {
    bytes: Buffer.concat(chunks),
    extension: 'ndjson.gz',
    expectedRows: (/** @type {Damage} */ damage) => {
      const intact = rowsEndingBy(flushedAt, damage.at);
      const intactText = textEnds[intact - 1] ?? 0;
      return rowsEndingBy(textEnds, intactText - GZIP_ROUND_BYTES);
    },
  };
}

/**
 * A Parquet file of row groups of GROUP_ROWS rows. The reader reads the footer (and the
 * page index, between the data and the footer) first, then the row groups in order: a flip
 * in a row group's pages leaves the groups before it readable. A cut loses the footer, and
 * an insertion moves the page index away from where the footer says it is: no row is read
 * before either.
 * @param {Record<string, string[]>} columns
 */
function parquetInput(columns) {
  const table = new arrow.Table(Object.fromEntries(Object.entries(columns).map(([name, values]) => [name, arrow.vectorFromArray(values, new arrow.Utf8())])));
  const bytes = Buffer.from(writeParquet(WasmTable.fromIPCStream(arrow.tableToIPC(table, 'stream')), new WriterPropertiesBuilder().setMaxRowGroupSize(GROUP_ROWS).build()));
  return {
    bytes,
    extension: 'parquet',
    /** Set once the file's layout is read (see below). */
    groupEnds: /** @type {number[]} */ ([]),
    /** Where the last row group's pages end. */
    get rowBytes() {
      return this.groupEnds.at(-1) ?? 0;
    },
    expectedRows(/** @type {Damage} */ damage) {
      // The page index and footer after the last group are read before any row.
      if (damage.kind !== 'flip' || damage.at >= this.rowBytes) return 0;
      return rowsEndingBy(this.groupEnds, damage.at) * GROUP_ROWS;
    },
  };
}

/** Where each row group's pages end: they follow "PAR1" one after another. @param {ReturnType<typeof parquetInput>} input */
async function readLayout(input) {
  const { ParquetFile } = await import('parquet-wasm');
  const file = await ParquetFile.fromFile(new Blob([input.bytes]));
  const metadata = file.metadata();
  let end = 4;
  for (let group = 0; group < metadata.numRowGroups(); group++) {
    for (const column of metadata.rowGroup(group).columns()) end += column.compressedSize();
    input.groupEnds.push(end);
  }
  file.free();
}

describe(`damaged inputs (seed ${SEED})`, { concurrency: 3 }, () => {
  /** @type {Awaited<ReturnType<typeof startTestCdn>>} */
  let cdn;
  /** @type {Awaited<ReturnType<typeof tempDir>>} */
  let work;
  /** @type {Record<string, CleanInput>} */
  const inputs = {};

  before(async () => {
    cdn = await startTestCdn();
    work = await tempDir('pcp-damaged-');
    const rows = Array.from({ length: ROWS }, (_, i) => ({
      id: `row-${i + 1}`,
      url: cdn.url(`/photos/${PHOTO_FILES[i % PHOTO_FILES.length]}?damaged`),
      // Captions long enough that a gzipped file spans several of zlib's rounds.
      cogvlm_caption: `photo ${i + 1}, a caption, with "quotes" and words: ${'lorem ipsum '.repeat(40)}`,
    }));
    inputs.ndjson = textInput(rows.map((row) => `${JSON.stringify(row)}\n`), 'ndjson');
    const csvField = (/** @type {string} */ value) => `"${value.replaceAll('"', '""')}"`;
    inputs.csv = textInput(['id,url,cogvlm_caption\n', ...rows.map((row) => `${row.id},${row.url},${csvField(row.cogvlm_caption)}\n`)], 'csv', 1);
    inputs['ndjson.gz'] = await gzipInput(rows.map((row) => `${JSON.stringify(row)}\n`));
    const parquet = parquetInput({ id: rows.map((row) => row.id), url: rows.map((row) => row.url), cogvlm_caption: rows.map((row) => row.cogvlm_caption) });
    await readLayout(parquet);
    inputs.parquet = parquet;
  });
  after(async () => {
    await cdn.close();
    await work.cleanup();
  });

  for (const plan of planCases()) {
    // Half the cases aim at the rows' bytes (a Parquet file's row groups), the others anywhere.
    const aim = plan.number % 2 === 1 ? 'rows' : 'file';
    it(`${plan.format} case ${plan.number}: ${plan.kind} ${plan.noise.length} byte(s) at ${Math.round(plan.where * 100)}% of the ${aim}`, async () => {
      const clean = inputs[plan.format];
      const span = aim === 'rows' ? clean.rowBytes ?? clean.bytes.length : clean.bytes.length;
      /** @type {Damage} */
      const damage = { kind: plan.kind, at: Math.floor(plan.where * span), bytes: plan.noise };
      const name = `case-${plan.format.replace('.', '-')}-${plan.number}`;
      const label = `seed ${SEED}, ${plan.format} case ${plan.number}: ${damage.kind} at byte ${damage.at} of ${clean.bytes.length}`;
      const input = join(work.path, `${name}.${clean.extension}`);
      await writeFile(input, damaged(clean.bytes, damage));
      const results = join(work.path, `${name}.results.ndjson`);
      const args = ['--input', input, '--output', join(work.path, name), '--results', results, '--sink', 'null', '--resize', 'none', '--retries', '0', '--quiet'];
      const run = await runCli(args, { timeoutMs: CASE_TIMEOUT_MS });

      assert.equal(run.timedOut, false, `the run ended within ${CASE_TIMEOUT_MS / 1000} s (${label})`);
      assert.ok([0, 1, 2].includes(run.code ?? -1), `exit 0, 1 or 2, not ${run.code} (${label}): ${run.stderr}`);
      assert.doesNotMatch(run.stderr, /^ {4}at /m, `no stack trace (${label}): ${run.stderr}`);
      if (run.code !== 0) {
        const lines = run.stderr.split('\n').filter(Boolean);
        assert.equal(lines.length, 1, `one line on stderr (${label}): ${run.stderr}`);
        assert.ok(lines[0].includes(input), `the line names the file (${label}): ${run.stderr}`);
      }
      const expected = clean.expectedRows(damage);
      const recorded = expected === 0 ? [] : await readResults(results);
      for (let index = 1; index <= expected; index++) {
        const line = recorded.find((each) => each.index === index);
        assert.ok(line && ['saved', 'failed'].includes(line.status), `row ${index} of the ${expected} before the damage is recorded (${label}): ${JSON.stringify(line)}; stderr: ${run.stderr}`);
      }
    });
  }
});
