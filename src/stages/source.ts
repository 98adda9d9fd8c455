/**
 * Stage 1, the row source: NDJSON, CSV or Parquet in, one `row` item (or a `failed`
 * item for a broken row) out per input row. Problems with the input as a whole (no such
 * file, a missing column) are found here, before the pipeline starts, as `UsageError`s.
 */
import { createReadStream, openAsBlob } from 'node:fs';
import { access } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { UsageError, errorMessage } from '../errors.js';
import { DEFAULT_COLUMNS, inferInputFormat, type ByteWindow, type ColumnNames, type InputOptions } from '../options.js';
import { compressionOf, withoutCompression } from '../sources/compression.js';
import { decompressed } from '../sources/decompress.js';
import { readCsv } from '../sources/csv.js';
import { readNdjson, type NumberedRecord } from '../sources/ndjson.js';
import { DEFAULT_MAX_ROW_BYTES } from '../sources/row-size.js';
import { normalizeRecord } from '../sources/normalize.js';
import { openParquet, type ParquetBytes, type RowRange } from '../sources/parquet.js';
import { keptTypeOf, type KeptColumn } from '../sinks/kept-columns.js';
import { RESERVED_COLUMNS } from '../sinks/metadata.js';
import { HttpInputError, HttpRangeFile, createInputAgent, isUrl, openHttpText, type HttpInputOptions } from '../sources/http-input.js';
import type { Dispatcher } from 'undici';
import type { Failed, Item } from '../types.js';

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
}

/**
 * @param http the deadlines, retries and User-Agent for an input given as a URL
 */
export async function openRowSource(input: InputOptions, http: HttpInputOptions): Promise<RowSource> {
  if (input.paths && input.paths.length > 1) return openManySources(input, input.paths, http);
  return openOneSource(input, http, { idPrefix: '' });
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
}

/**
 * Several inputs (`--input a b` or a glob) as one stream of rows, file after file, each
 * opened when the one before it ends. Every file must exist at start.
 */
async function openManySources(input: InputOptions, paths: readonly string[], http: HttpInputOptions): Promise<RowSource> {
  const stems = paths.map((path) => basename(withoutCompression(path)).replace(/\.[^.]*$/, ''));
  const clash = stems.find((stem, i) => stems.indexOf(stem) !== i);
  if (clash !== undefined) throw new UsageError(`two inputs are both called ${clash}: ids from row positions would not be unique; rename one`);
  for (const path of paths) if (!isUrl(path)) await assertReadable(path);
  const one = (i: number) => openOneSource({ ...input, path: paths[i]!, paths: undefined, format: inferInputFormat(paths[i]!, input.format) }, http, { source: paths[i]!, idPrefix: `${stems[i]}-` });
  const first = await one(0);
  // The first file that could not be opened or read to its end stops the reading there.
  let readError: Error | undefined;
  async function* items(): AsyncGenerator<Item> {
    let source = first;
    for (let i = 1; ; i++) {
      yield* source.items;
      readError = source.readError();
      if (readError || i === paths.length) return;
      try {
        source = await one(i);
      } catch (error) {
        readError = error instanceof Error ? error : new Error(errorMessage(error));
        return;
      }
    }
  }
  return { items: items(), keptColumns: first.keptColumns, readError: () => readError };
}

async function openOneSource(input: InputOptions, http: HttpInputOptions, naming: RowNaming): Promise<RowSource> {
  const { rows, columns } = input;
  const maxRowBytes = input.maxRowBytes ?? DEFAULT_MAX_ROW_BYTES;
  const url = input.path !== undefined && isUrl(input.path) ? input.path : undefined;
  if (input.path !== undefined && url === undefined) await assertReadable(input.path);
  // One connection pool for the input, closed when its rows end.
  const agent = url === undefined ? undefined : createInputAgent(http);
  try {
    if (input.format === 'parquet') {
      if (input.path === undefined) throw new UsageError('Parquet input must be a file or URL: pass it with --input');
      const bytes = agent && url ? await HttpRangeFile.open(url, agent, http) : await openAsBlob(input.path);
      const parquet = await openParquet(bytes, input.path);
      checkColumns(parquet.columns, columns, input.path);
      naming.positional = !parquet.columns.includes(columns.id);
      const keptColumns = keptOf(input, parquet.columns, input.path).map((name) => ({ name, type: keptTypeOf(parquet.types.get(name)!) }));
      const mapped = Object.values(columns).filter((name) => parquet.columns.includes(name));
      const wanted = [...new Set([...mapped, ...keptColumns.map(({ name }) => name)])];
      const totalRows = rows ? Math.max(0, Math.min(rows.last, parquet.totalRows) - rows.first + 1) : parquet.totalRows;
      return { ...endingAtReadError(closing(toItems(parquet.batches(wanted, maxRowBytes, rows), columns, naming), agent), input.path), totalRows, keptColumns };
    }
    const name = input.path ?? 'standard input';
    // Text columns are known only as rows come: kept columns are named, and checked in the CSV header.
    const keptColumns = keptOf(input, undefined, name).map((column) => ({ name: column, type: input.format === 'csv' ? ('utf8' as const) : ('json' as const) }));
    naming.positional = columns.id === '';
    const checkHeader = (header: readonly string[]) => {
      checkColumns(header, columns, name);
      naming.positional = !header.includes(columns.id);
      keptOf(input, header, name);
    };
    if (input.window) {
      if (input.path === undefined || !rows) throw new UsageError('a byte window of the input needs its file or URL and its rows');
      // Exactly the window's rows: numbered from its first, nothing to skip.
      const stream = await readWindow(agent && url ? await HttpRangeFile.open(url, agent, http) : await openAsBlob(input.path), input.window);
      const records = input.format === 'csv' ? readCsv(stream, checkHeader, maxRowBytes, rows.first) : readNdjson(stream, maxRowBytes, rows.first);
      return { ...endingAtReadError(closing(toItems(records, columns, naming), agent), input.path), totalRows: rows.last - rows.first + 1, keptColumns };
    }
    const raw = agent && url ? await openHttpText(url, agent, http) : openText(input);
    const compression = input.path === undefined ? undefined : compressionOf(input.path);
    const stream = compression ? decompressed(raw, compression) : raw;
    const records = input.format === 'csv' ? readCsv(stream, checkHeader, maxRowBytes) : readNdjson(stream, maxRowBytes);
    return { ...endingAtReadError(closing(toItems(withinRows(records, rows), columns, naming), agent), name), keptColumns };
  } catch (error) {
    await agent?.close();
    if (error instanceof HttpInputError) throw new UsageError(error.message);
    throw error;
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

async function* closing<T>(items: AsyncIterable<T>, agent: Dispatcher | undefined): AsyncGenerator<T> {
  try {
    yield* items;
  } finally {
    await agent?.close();
  }
}

type Entry = NumberedRecord | Failed;

/**
 * Records (one at a time from text formats, a batch at a time from Parquet) to items.
 * Batches are walked synchronously: one async step per row fewer (measured: Parquet
 * reading the 567,597-row file went from ~140k to ~180k rows/s).
 */
async function* toItems(records: AsyncIterable<Entry | readonly Entry[]>, columns: ColumnNames, naming: RowNaming): AsyncGenerator<Item> {
  for await (const chunk of records) {
    if (!Array.isArray(chunk)) {
      yield toItem(chunk as Entry, columns, naming);
      continue;
    }
    for (const entry of chunk as readonly Entry[]) yield toItem(entry, columns, naming);
  }
}

function toItem(entry: Entry, columns: ColumnNames, naming: RowNaming): Item {
  if ('kind' in entry) return naming.source === undefined ? entry : { ...entry, row: { ...entry.row, source: naming.source } };
  const row = normalizeRecord(entry.record, entry.index, columns, naming.positional ? `${naming.idPrefix}${entry.index}` : undefined, naming.source);
  return 'kind' in row ? row : { kind: 'row', row };
}

/**
 * The columns `--keep-columns` asks for, checked against the input's columns when they are
 * known. `all` needs them known (a Parquet schema); names the metadata already uses are
 * refused (named) or left out (all).
 */
function keptOf(input: InputOptions, found: readonly string[] | undefined, name: string): string[] {
  const keep = input.keep;
  if (keep === undefined) return [];
  if (keep === 'all') {
    if (!found || input.format !== 'parquet') throw new UsageError('--keep-columns all needs a Parquet input (its schema lists the columns): name the columns to keep for NDJSON and CSV');
    return found.filter((column) => !RESERVED_COLUMNS.has(column));
  }
  const reserved = keep.filter((column) => RESERVED_COLUMNS.has(column));
  if (reserved.length > 0) throw new UsageError(`--keep-columns ${reserved.join(', ')}: the metadata has ${reserved.length === 1 ? 'a column' : 'columns'} of that name already`);
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
