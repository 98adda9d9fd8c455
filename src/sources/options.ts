/**
 * What the row sources need to know: which input, in which format, which columns, which
 * rows. `resolveInputOptions` fills the defaults and checks a caller's partial once.
 */
import { isAbsolute } from 'node:path';
import type { Readable } from 'node:stream';
import { globSync, isDynamicPattern } from 'tinyglobby';
import { UsageError } from '../errors.js';
import { HASH_ALGORITHMS, type HashAlgorithm } from '../types.js';
import { integer, oneOf } from '../util/validate.js';
import { inputName, withoutCompression } from './compression.js';
import { hubResolveUrl, isHubUri } from './hub-uri.js';
import { DEFAULT_MAX_ROW_BYTES } from './row-size.js';

/** `txt`: a list of image URLs, one a line; `tsv`: CSV with tabs. */
export type InputFormat = 'ndjson' | 'csv' | 'tsv' | 'txt' | 'parquet';
export const INPUT_FORMATS: readonly InputFormat[] = ['ndjson', 'csv', 'tsv', 'txt', 'parquet'];

/**
 * What becomes of a row with no caption text (neither column): `fail` it as `no_caption`
 * before any request, or `keep` it and store its image without a caption.
 */
export type MissingCaptions = 'fail' | 'keep';
export const MISSING_CAPTIONS: readonly MissingCaptions[] = ['fail', 'keep'];

export interface ColumnNames {
  readonly id: string;
  readonly url: string;
  readonly caption: string;
  readonly fallbackCaption: string;
  readonly width: string;
  readonly height: string;
  /** A column holding the hash the fetched bytes must have (`--verify-hash-column`); none by default. */
  readonly hash?: string;
  /**
   * Not a column: the algorithm of the `hash` column's values (`--hash`). It lives with the
   * column names because they travel together, into each queue job too.
   */
  readonly hashAlgorithm: HashAlgorithm;
}

/** The names of the input's columns in `columns` (`hashAlgorithm` is not one). */
export function columnNamesOf(columns: ColumnNames): string[] {
  const { hashAlgorithm: _algorithm, ...names } = columns;
  return Object.values(names).filter((name): name is string => name !== undefined);
}

/** Rows `first` to `last` of an input, 1-based and inclusive. */
export interface RowRange {
  readonly first: number;
  readonly last: number;
}

/** Bytes [start, end) of a text input; for CSV, after its first `headerBytes` bytes (the header line). */
export interface ByteWindow {
  readonly start: number;
  readonly end: number;
  readonly headerBytes?: number;
}

/**
 * `--sample FRACTION --seed N`: the rows kept, chosen by a hash of each row's id and the
 * seed (sample.ts), so every run and every queue worker keeps the same ones.
 */
export interface Sample {
  /** The share of rows kept, in (0, 1]. */
  readonly fraction: number;
  readonly seed: number;
}

export interface InputOptions {
  /** A file to read; when absent, rows come from `stream` (the CLI passes stdin). */
  readonly path?: string;
  /** Several files (or what globs matched), read one after another as one stream of rows. */
  readonly paths?: readonly string[];
  readonly stream?: Readable;
  readonly format: InputFormat;
  readonly columns: ColumnNames;
  /** Only rows `first` to `last` (1-based, inclusive: NDJSON lines, CSV records, Parquet rows). */
  readonly rows?: RowRange;
  /**
   * NDJSON and CSV: where exactly the `rows` are in the file, so only those bytes are read
   * (a queue job; `enqueue` finds the offsets). CSV reads its header line first.
   */
  readonly window?: ByteWindow;
  /** `--keep-columns`: input columns carried into the metadata, or every column. */
  readonly keep?: readonly string[] | 'all';
  /**
   * `--max-row-bytes`: the longest row read (an NDJSON line, a CSV record, a Parquet row's
   * text and binary cells); a longer one fails as `bad_row` without being held whole.
   * `resolveInputOptions` always sets it (DEFAULT_MAX_ROW_BYTES); a job's input (queue) may not.
   */
  readonly maxRowBytes?: number;
  /** `--sample`: only the rows it keeps go on; the others are left out of the run altogether. */
  readonly sample?: Sample;
  /** `--missing-captions`: fail a row without a caption, or keep it uncaptioned. */
  readonly missingCaptions: MissingCaptions;
}

/** The dataset's own column names (SimpleTuner's Parquet settings name the same). */
export const DEFAULT_COLUMNS: ColumnNames = Object.freeze({
  id: 'id',
  url: 'url',
  caption: 'cogvlm_caption',
  fallbackCaption: 'tags',
  width: 'width',
  height: 'height',
  hashAlgorithm: 'sha256',
});

/**
 * The input format a file name implies (a `.gz` or `.zst` suffix aside), or NDJSON; a
 * format the user gave wins.
 */
export function inferInputFormat(path: string | undefined, given?: InputFormat): InputFormat {
  if (given !== undefined) return given;
  if (path === undefined) return 'ndjson';
  const lower = withoutCompression(inputName(path)).toLowerCase();
  if (lower.endsWith('.parquet')) return 'parquet';
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.tsv')) return 'tsv';
  if (lower.endsWith('.txt')) return 'txt';
  return 'ndjson';
}

type Given = { readonly [K in keyof InputOptions]?: K extends 'columns' ? Partial<ColumnNames> : K extends 'sample' ? Partial<Sample> : InputOptions[K] };

export function resolveInputOptions(given: Given = {}): InputOptions {
  const paths = expandInputs(given.paths ?? (given.path === undefined ? [] : [given.path]));
  const path = paths.length === 1 ? paths[0] : undefined;
  const format = inferInputFormat(paths[0], given.format);
  oneOf('--input-format', format, INPUT_FORMATS);
  const missingCaptions = given.missingCaptions ?? 'fail';
  oneOf('--missing-captions', missingCaptions, MISSING_CAPTIONS);
  if (paths.length > 1) {
    const formats = new Set(paths.map((each) => inferInputFormat(each, given.format)));
    if (formats.size > 1) throw new UsageError(`the inputs are of different formats (${[...formats].join(', ')}): give files of one format, or --input-format`);
    if (given.rows !== undefined) throw new UsageError('--rows reads part of one input: give one --input with it');
  }
  const columns = Object.fromEntries(Object.entries(given.columns ?? {}).filter(([, name]) => name !== undefined));
  if (columns.hashAlgorithm !== undefined) oneOf('--hash', columns.hashAlgorithm, HASH_ALGORITHMS);
  return {
    ...(path === undefined ? {} : { path }),
    ...(paths.length > 1 ? { paths } : {}),
    ...(given.stream === undefined ? {} : { stream: given.stream }),
    format,
    columns: { ...DEFAULT_COLUMNS, ...columns },
    ...(given.rows === undefined ? {} : { rows: rowRange(given.rows) }),
    ...(given.window === undefined ? {} : { window: given.window }),
    ...(given.keep === undefined ? {} : { keep: given.keep === 'all' ? 'all' : [...given.keep] }),
    maxRowBytes: integer('--max-row-bytes', given.maxRowBytes ?? DEFAULT_MAX_ROW_BYTES, 1024, 2 ** 31 - 1),
    ...sampleOf(given.sample),
    missingCaptions,
  };
}

/** `--sample` and `--seed`, checked; a fraction of 1 keeps every row, so it asks for nothing. */
function sampleOf(given: Partial<Sample> | undefined): { sample?: Sample } {
  if (given === undefined) return {};
  const { fraction, seed = 0 } = given;
  if (fraction === undefined) throw new UsageError('--seed chooses which rows --sample keeps: give --sample FRACTION too');
  if (!(fraction > 0 && fraction <= 1)) throw new UsageError(`--sample must be a fraction above 0 and at most 1, e.g. 0.01 for 1% of the rows, got ${fraction}`);
  const checkedSeed = integer('--seed', seed, 0, Number.MAX_SAFE_INTEGER);
  return fraction === 1 ? {} : { sample: { fraction, seed: checkedSeed } };
}

/**
 * Input paths with globs expanded (`shards/*.parquet`, quoted so that the shell leaves it
 * to us), in name order; a pattern that matches nothing is an error. URLs are left alone,
 * and `hf://datasets/...` becomes the Hub's resolve URL (hub-uri.ts).
 */
function expandInputs(patterns: readonly string[]): string[] {
  const paths: string[] = [];
  for (const pattern of patterns) {
    if (isHubUri(pattern)) {
      paths.push(hubResolveUrl(pattern));
      continue;
    }
    if (/^https?:\/\//i.test(pattern) || !isDynamicPattern(pattern)) {
      paths.push(pattern);
      continue;
    }
    // Matches are given as the pattern was: absolute for an absolute pattern, else relative.
    const matches = globSync(pattern, { onlyFiles: true, expandDirectories: false, absolute: isAbsolute(pattern) }).sort();
    if (matches.length === 0) throw new UsageError(`--input ${pattern} matches no file`);
    paths.push(...matches);
  }
  return paths;
}

function rowRange(rows: RowRange): RowRange {
  const first = integer('--rows (first)', rows.first, 1, Number.MAX_SAFE_INTEGER);
  const last = integer('--rows (last)', rows.last, first, Number.MAX_SAFE_INTEGER);
  return { first, last };
}
