/**
 * Opens the row source: NDJSON, CSV, TSV, a URL list or Parquet in, one `row` item (or a
 * `failed` item for a broken row) out per input row, less the rows `--sample` leaves out.
 * Problems with the input as a whole (no such file, a missing column) are found here,
 * before the pipeline starts, as `UsageError`s.
 *
 * A source holds what it opened (an HTTP connection pool, a Parquet reader, a file
 * stream) until its rows end or `close()` is called, whichever comes first: a run that
 * stops before reading (another run holds the output) closes it unread.
 */
import { createReadStream, openAsBlob } from 'node:fs';
import { access } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { UsageError, errorMessage } from '../errors.js';
import type { Failed, Item } from '../types.js';
import { Holdings } from '../util/holdings.js';
import { compressionOf, withoutCompression } from './compression.js';
import { DELIMITERS, readCsv } from './csv.js';
import { decompressed } from './decompress.js';
import { HttpInputError, HttpRangeFile, createInputAgent, isUrl, openHttpText, type HttpInputOptions } from './http-input.js';
import { keptTypeOf, type KeptColumn } from './kept-columns.js';
import { readNdjson, type NumberedRecord } from './ndjson.js';
import { normalizeRecord, type RowRules } from './normalize.js';
import { DEFAULT_MAX_ROW_BYTES } from './row-size.js';
import { DEFAULT_COLUMNS, columnNamesOf, inferInputFormat, type ByteWindow, type ColumnNames, type InputFormat, type InputOptions, type RowRange } from './options.js';
import { openParquet, type ParquetBytes } from './parquet.js';
import { sampled } from './sample.js';
import { readUrlList } from './url-list.js';
import { isRelativePath } from '../fetch/local-file.js';

export interface RowSource {
  readonly items: AsyncIterable<Item>;
  /** The input columns kept for the metadata (`--keep-columns`), with their types. */
  readonly keptColumns: readonly KeptColumn[];
  /** Rows in the input, when the format says so up front (Parquet). */
  readonly totalRows?: number;
  /**
   * Why the input could not be read to its end (a corrupt .gz, a cut connection, a broken
   * Parquet page), once `items` has ended; undefined when it was read whole. `items` ends
   * quietly at such an error, so the rows read before it still go through the pipeline
   * and are recorded; then the run fails with this error, which names the input.
   */
  readonly readError: () => Error | undefined;
  /** Releases what the source holds; its rows end. Safe to call at any time, more than once. */
  close(): Promise<void>;
}

export interface SourceSetup {
  /** The deadlines, retries and User-Agent for an input given as a URL. */
  readonly http: HttpInputOptions;
  /** Column names the output's metadata has already: `--keep-columns` may not name them. */
  readonly reservedColumns: ReadonlySet<string>;
  /**
   * Rows may name files of this machine (`--allow-local-files`): a relative path is made
   * absolute against the folder of the input file it is in (stdin, a URL: the working
   * directory), so that a list and its images can move together, and every queue worker
   * reads the same files whatever folder it runs in.
   */
  readonly localFiles?: boolean;
}

export async function openRowSource(input: InputOptions, setup: SourceSetup): Promise<RowSource> {
  const source =
    input.paths && input.paths.length > 1
      ? await openManySources(input, input.paths, setup)
      : await openOneSource(input, setup, { idPrefix: '', ...localBase(input.path, setup) });
  if (!input.sample) return source;
  // Applied to the rows as named (ids from several files carry their file's name), before
  // the resume stage; how many rows it keeps is known only as they come: no total.
  return { items: sampled(source.items, input.sample), keptColumns: source.keptColumns, readError: source.readError, close: () => source.close() };
}

/** The folder relative local paths in `path`'s rows are read from, with --allow-local-files. */
function localBase(path: string | undefined, setup: SourceSetup): { localBase?: string } {
  if (!setup.localFiles) return {};
  return { localBase: path === undefined || isUrl(path) ? process.cwd() : dirname(resolve(path)) };
}

/**
 * What a source's rows are called by: the file they came from (several inputs), and the
 * ids of an input without an id column (its rows' positions, prefixed with the file's
 * name when there are several, so they are unique across files and stable across runs).
 */
interface RowNaming {
  readonly source?: string;
  readonly idPrefix: string;
  positional?: boolean;
  /** Where relative local paths lead (see `SourceSetup.localFiles`); they are left as they are without it. */
  readonly localBase?: string;
}

/**
 * Several inputs (`--input a b` or a glob) as one stream of rows, file after file, each
 * opened when the one before it ends. Every file must exist at start.
 */
async function openManySources(input: InputOptions, paths: readonly string[], setup: SourceSetup): Promise<RowSource> {
  const stems = paths.map((path) => basename(withoutCompression(path)).replace(/\.[^.]*$/, ''));
  const clash = stems.find((stem, i) => stems.indexOf(stem) !== i);
  if (clash !== undefined) throw new UsageError(`two inputs are both called ${clash}: ids from row positions would not be unique; rename one`);
  for (const path of paths) if (!isUrl(path)) await assertReadable(path);
  const one = (i: number) =>
    openOneSource({ ...input, path: paths[i]!, paths: undefined, format: inferInputFormat(paths[i]!, input.format) }, setup, { source: paths[i]!, idPrefix: `${stems[i]}-`, ...localBase(paths[i], setup) });
  let current = await one(0);
  const keptColumns = current.keptColumns;
  let closed = false;
  // The first file that could not be opened or read to its end stops the reading there.
  let readError: Error | undefined;
  async function* items(): AsyncGenerator<Item> {
    for (let i = 0; ; ) {
      yield* current.items;
      readError = current.readError();
      if (readError || ++i >= paths.length || closed) return;
      try {
        current = await one(i);
      } catch (error) {
        readError = error instanceof Error ? error : new Error(errorMessage(error));
        return;
      }
      if (closed) return void (await current.close());
    }
  }
  return {
    items: items(),
    keptColumns,
    readError: () => readError,
    close: async () => {
      closed = true;
      await current.close();
    },
  };
}

async function openOneSource(input: InputOptions, setup: SourceSetup, naming: RowNaming): Promise<RowSource> {
  const { rows, columns } = input;
  const { http } = setup;
  const maxRowBytes = input.maxRowBytes ?? DEFAULT_MAX_ROW_BYTES;
  const url = input.path !== undefined && isUrl(input.path) ? input.path : undefined;
  if (input.path !== undefined && url === undefined) await assertReadable(input.path);
  const held = new Holdings();
  const source = (items: AsyncIterable<Item>, keptColumns: readonly KeptColumn[], totalRows?: number): RowSource => {
    const reading = endingAtReadError(items, input.path ?? 'standard input');
    return {
      items: releasing(reading.items, held),
      keptColumns,
      ...(totalRows === undefined ? {} : { totalRows }),
      readError: reading.readError,
      close: () => held.releaseAll(),
    };
  };
  // One connection pool for the input, closed when its rows end.
  const agent = url === undefined ? undefined : held.hold(createInputAgent(http), (pool) => pool.close());
  const keptOf = (found: readonly string[] | undefined, name: string) => keptColumnsOf(input, found, name, setup.reservedColumns);
  try {
    if (input.format === 'parquet') {
      if (input.path === undefined) throw new UsageError('Parquet input must be a file or URL: pass it with --input');
      const bytes = agent && url ? await HttpRangeFile.open(url, agent, http) : await openAsBlob(input.path);
      const parquet = held.hold(await openParquet(bytes, input.path), (file) => file.free());
      checkColumns(parquet.columns, columns, input.path);
      naming.positional = !parquet.columns.includes(columns.id);
      const keptColumns = keptOf(parquet.columns, input.path).map((name) => ({ name, type: keptTypeOf(parquet.types.get(name)!) }));
      const mapped = columnNamesOf(columns).filter((name) => parquet.columns.includes(name));
      const wanted = [...new Set([...mapped, ...keptColumns.map(({ name }) => name)])];
      const totalRows = rows ? Math.max(0, Math.min(rows.last, parquet.totalRows) - rows.first + 1) : parquet.totalRows;
      return source(toItems(parquet.batches(wanted, maxRowBytes, rows), input, naming), keptColumns, totalRows);
    }
    const name = input.path ?? 'standard input';
    const format = input.format;
    if (format === 'txt' && input.keep !== undefined) throw new UsageError(`${name} is a list of URLs: it has no columns for --keep-columns to keep`);
    // Text columns are known only as rows come: kept columns are named, and checked in the CSV header.
    const keptColumns = keptOf(undefined, name).map((column) => ({ name: column, type: format === 'ndjson' ? ('json' as const) : ('utf8' as const) }));
    // A URL list's ids are its line numbers.
    naming.positional = columns.id === '' || format === 'txt';
    const checkHeader = (header: readonly string[]) => {
      checkColumns(header, columns, name);
      naming.positional = !header.includes(columns.id);
      keptOf(header, name);
    };
    if (input.window) {
      if (input.path === undefined || !rows) throw new UsageError('a byte window of the input needs its file or URL and its rows');
      // Exactly the window's rows: numbered from its first, nothing to skip.
      const stream = await readWindow(agent && url ? await HttpRangeFile.open(url, agent, http) : await openAsBlob(input.path), input.window);
      return source(toItems(readText(format, stream, { checkHeader, maxRowBytes, urlColumn: columns.url }, rows.first), input, naming), keptColumns, rows.last - rows.first + 1);
    }
    const raw = held.hold(agent && url ? await openHttpText(url, agent, http) : openText(input), (stream) => stream.destroy());
    const compression = input.path === undefined ? undefined : compressionOf(input.path);
    const stream = compression ? decompressed(raw, compression) : raw;
    const records = readText(format, stream, { checkHeader, maxRowBytes, urlColumn: columns.url });
    return source(toItems(withinRows(records, rows), input, naming), keptColumns);
  } catch (error) {
    await held.releaseAll();
    if (error instanceof HttpInputError) throw new UsageError(error.message);
    throw error;
  }
}

/** How a text format's records are read. */
interface TextReading {
  readonly checkHeader: (header: readonly string[]) => void;
  readonly maxRowBytes: number;
  /** The column a URL list's URL goes in. */
  readonly urlColumn: string;
}

/** The numbered records of a text input; `first` is the number of its first one (a queue job's window). */
function readText(format: Exclude<InputFormat, 'parquet'>, stream: Readable, reading: TextReading, first = 1): AsyncIterable<Entry> {
  const { checkHeader, maxRowBytes, urlColumn } = reading;
  switch (format) {
    case 'csv':
    case 'tsv':
      return readCsv(stream, checkHeader, maxRowBytes, first, DELIMITERS[format]);
    case 'txt':
      return readUrlList(stream, urlColumn, maxRowBytes, first);
    case 'ndjson':
      return readNdjson(stream, maxRowBytes, first);
  }
}

async function assertReadable(path: string): Promise<void> {
  try {
    await access(path);
  } catch (error) {
    throw new UsageError(`cannot read input ${path}: ${errorMessage(error)}`);
  }
}

function openText(input: InputOptions): Readable {
  if (input.path !== undefined) return createReadStream(input.path, { highWaterMark: 256 * 1024 });
  if (input.stream) return input.stream;
  throw new UsageError('no input: pass --input FILE or pipe rows on standard input');
}

/**
 * A window of a text input as one stream: the CSV header (when there is one), then the
 * window's bytes. Windows are small (a job's rows), so each part is read whole.
 */
async function readWindow(file: ParquetBytes, window: ByteWindow): Promise<Readable> {
  const header = window.headerBytes ? await file.slice(0, window.headerBytes).arrayBuffer() : new ArrayBuffer(0);
  const body = await file.slice(window.start, window.end).arrayBuffer();
  return Readable.from([Buffer.concat([Buffer.from(header), Buffer.from(body)])]);
}

/** Text records of `rows` only: earlier ones are skipped, and reading stops after the last. */
async function* withinRows(records: AsyncIterable<Entry>, rows: RowRange | undefined): AsyncGenerator<Entry> {
  if (!rows) return yield* records;
  for await (const entry of records) {
    const index = 'kind' in entry ? entry.row.index : entry.index;
    if (index < rows.first) continue;
    if (index > rows.last) return;
    yield entry;
  }
}

/**
 * Items that end quietly where the input breaks (a corrupt .gz, a reset connection, a
 * damaged Parquet page), and the error that ended them, naming the input in one line.
 */
function endingAtReadError<T>(items: AsyncIterable<T>, name: string): { items: AsyncGenerator<T>; readError: () => Error | undefined } {
  let readError: Error | undefined;
  async function* reading(): AsyncGenerator<T> {
    try {
      yield* items;
    } catch (error) {
      // A wrong header found as the first rows are read is the user's to fix (exit 2).
      readError = error instanceof UsageError ? error : new Error(`cannot read input ${name}: ${oneLine(errorMessage(error))}`, { cause: error });
    }
  }
  return { items: reading(), readError: () => readError };
}

/** A message as one line: a library's (a wasm panic's, say) may span several. */
function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim();
}

/** The items, then what the source held is released (when they end, fail, or are abandoned). */
async function* releasing<T>(items: AsyncIterable<T>, held: Holdings): AsyncGenerator<T> {
  try {
    yield* items;
  } finally {
    await held.releaseAll();
  }
}

type Entry = NumberedRecord | Failed;

/**
 * Records (one at a time from text formats, a batch at a time from Parquet) to items.
 * Batches are walked synchronously: one async step per row fewer (measured: Parquet
 * reading the 567,597-row file went from ~140k to ~180k rows/s).
 */
async function* toItems(records: AsyncIterable<Entry | readonly Entry[]>, rules: RowRules, naming: RowNaming): AsyncGenerator<Item> {
  for await (const chunk of records) {
    if (!Array.isArray(chunk)) {
      yield toItem(chunk as Entry, rules, naming);
      continue;
    }
    for (const entry of chunk as readonly Entry[]) yield toItem(entry, rules, naming);
  }
}

function toItem(entry: Entry, rules: RowRules, naming: RowNaming): Item {
  if ('kind' in entry) return naming.source === undefined ? entry : { ...entry, row: { ...entry.row, source: naming.source } };
  const row = normalizeRecord(entry.record, entry.index, rules, naming.positional ? `${naming.idPrefix}${entry.index}` : undefined, naming.source);
  if ('kind' in row) return row;
  if (naming.localBase !== undefined && isRelativePath(row.url)) return { kind: 'row', row: { ...row, url: resolve(naming.localBase, row.url) } };
  return { kind: 'row', row };
}

/**
 * The columns `--keep-columns` asks for, checked against the input's columns when they are
 * known. `all` needs them known (a Parquet schema); names the metadata already uses are
 * refused (named) or left out (all).
 */
function keptColumnsOf(input: InputOptions, found: readonly string[] | undefined, name: string, reserved: ReadonlySet<string>): string[] {
  const keep = input.keep;
  if (keep === undefined) return [];
  if (keep === 'all') {
    if (!found || input.format !== 'parquet') throw new UsageError('--keep-columns all needs a Parquet input (its schema lists the columns): name the columns to keep for NDJSON and CSV');
    return found.filter((column) => !reserved.has(column));
  }
  const taken = keep.filter((column) => reserved.has(column));
  if (taken.length > 0) throw new UsageError(`--keep-columns ${taken.join(', ')}: the metadata has ${taken.length === 1 ? 'a column' : 'columns'} of that name already`);
  const missing = found ? keep.filter((column) => !found.includes(column)) : [];
  if (missing.length > 0) throw new UsageError(`${name} has no column ${missing.map((column) => `"${column}"`).join(', ')} (--keep-columns); columns found: ${found!.join(', ')}`);
  return [...keep];
}

/**
 * A file with a header or schema must have the url column and a caption column, and the
 * id column unless it is the default one: an input with no `id` column at all (as
 * img2dataset's test files, with only URL and TEXT) takes its rows' positions as ids, but
 * an --id-column the user named must be there (a typo should not renumber a dataset).
 */
export function checkColumns(found: readonly string[], columns: ColumnNames, name: string): void {
  const missing: string[] = [];
  if (!found.includes(columns.id) && columns.id !== DEFAULT_COLUMNS.id && columns.id !== '') missing.push(`"${columns.id}" (--id-column)`);
  if (!found.includes(columns.url)) missing.push(`"${columns.url}" (--url-column)`);
  if (columns.hash !== undefined && !found.includes(columns.hash)) missing.push(`"${columns.hash}" (--verify-hash-column)`);
  if (!found.includes(columns.caption) && !found.includes(columns.fallbackCaption)) {
    missing.push(`"${columns.caption}" (--caption-column) or "${columns.fallbackCaption}" (--fallback-caption-column)`);
  }
  if (missing.length > 0) {
    throw new UsageError(
      `${name} has no column ${missing.join(', no column ')}; columns found: ${found.join(', ') || '(none)'}`,
    );
  }
}
