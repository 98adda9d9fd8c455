/**
 * What the row sources need to know: which input, in which format, which columns, which
 * rows. `resolveInputOptions` fills the defaults and checks a caller's partial once.
 */
import { isAbsolute } from 'node:path';
import type { Readable } from 'node:stream';
import { globSync, isDynamicPattern } from 'tinyglobby';
import { UsageError } from '../errors.js';
import { integer, oneOf } from '../util/validate.js';
import { inputName, withoutCompression } from './compression.js';

export type InputFormat = 'ndjson' | 'csv' | 'parquet';
export const INPUT_FORMATS: readonly InputFormat[] = ['ndjson', 'csv', 'parquet'];

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
  /** A column holding the sha256 the fetched bytes must have (`--verify-hash-column`); none by default. */
  readonly hash?: string;
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
  return 'ndjson';
}

type Given = { readonly [K in keyof InputOptions]?: K extends 'columns' ? Partial<ColumnNames> : InputOptions[K] };

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
  return {
    ...(path === undefined ? {} : { path }),
    ...(paths.length > 1 ? { paths } : {}),
    ...(given.stream === undefined ? {} : { stream: given.stream }),
    format,
    columns: { ...DEFAULT_COLUMNS, ...columns },
    ...(given.rows === undefined ? {} : { rows: rowRange(given.rows) }),
    ...(given.window === undefined ? {} : { window: given.window }),
    ...(given.keep === undefined ? {} : { keep: given.keep === 'all' ? 'all' : [...given.keep] }),
    missingCaptions,
  };
}

/**
 * Input paths with globs expanded (`shards/*.parquet`, quoted so that the shell leaves it
 * to us), in name order; a pattern that matches nothing is an error. URLs are left alone.
 */
function expandInputs(patterns: readonly string[]): string[] {
  const paths: string[] = [];
  for (const pattern of patterns) {
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
