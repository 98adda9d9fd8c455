/**
 * Opens the row source: NDJSON, CSV or Parquet in, one `row` item (or a `failed` item for
 * a broken row) out per input row. Problems with the input as a whole (no such file, a
 * missing column) are found here, before the pipeline starts, as `UsageError`s.
 *
 * A source holds what it opened (an HTTP connection pool, a Parquet reader, a file
 * stream) until its rows end or `close()` is called, whichever comes first: a run that
 * stops before reading (another run holds the output) closes it unread.
 */
import { createReadStream, openAsBlob } from 'node:fs';
import { access } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { UsageError, errorMessage } from '../errors.js';
import type { Failed, Item } from '../types.js';
import { Holdings } from '../util/holdings.js';
import { compressionOf, withoutCompression } from './compression.js';
import { readCsv } from './csv.js';
import { decompressed } from './decompress.js';
import { HttpInputError, HttpRangeFile, createInputAgent, isUrl, openHttpText, type HttpInputOptions } from './http-input.js';
import { keptTypeOf, type KeptColumn } from './kept-columns.js';
import { readNdjson, type NumberedRecord } from './ndjson.js';
import { normalizeRecord, type RowRules } from './normalize.js';
import { DEFAULT_COLUMNS, inferInputFormat, type ByteWindow, type ColumnNames, type InputOptions, type RowRange } from './options.js';
import { openParquet, type ParquetBytes } from './parquet.js';

export interface RowSource {
  readonly items: AsyncIterable<Item>;
  /** The input columns kept for the metadata (`--keep-columns`), with their types. */
  readonly keptColumns: readonly KeptColumn[];
  /** Rows in the input, when the format says so up front (Parquet). */
  readonly totalRows?: number;
  /** Releases what the source holds; its rows end. Safe to call at any time, more than once. */
  close(): Promise<void>;
}

export interface SourceSetup {
  /** The deadlines, retries and User-Agent for an input given as a URL. */
  readonly http: HttpInputOptions;
  /** Column names the output's metadata has already: `--keep-columns` may not name them. */
  readonly reservedColumns: ReadonlySet<string>;
}

export async function openRowSource(input: InputOptions, setup: SourceSetup): Promise<RowSource> {
  if (input.paths && input.paths.length > 1) return openManySources(input, input.paths, setup);
  return openOneSource(input, setup, { idPrefix: '' });
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
async function openManySources(input: InputOptions, paths: readonly string[], setup: SourceSetup): Promise<RowSource> {
  const stems = paths.map((path) => basename(withoutCompression(path)).replace(/\.[^.]*$/, ''));
  const clash = stems.find((stem, i) => stems.indexOf(stem) !== i);
  if (clash !== undefined) throw new UsageError(`two inputs are both called ${clash}: ids from row positions would not be unique; rename one`);
  for (const path of paths) if (!isUrl(path)) await assertReadable(path);
  const one = (i: number) => openOneSource({ ...input, path: paths[i]!, paths: undefined, format: inferInputFormat(paths[i]!, input.format) }, setup, { source: paths[i]!, idPrefix: `${stems[i]}-` });
  let current = await one(0);
  const keptColumns = current.keptColumns;
  let closed = false;
  async function* items(): AsyncGenerator<Item> {
    for (let i = 0; ; ) {
      yield* current.items;
      if (++i >= paths.length || closed) return;
      current = await one(i);
      if (closed) return void (await current.close());
    }
  }
  return {
    items: items(),
    keptColumns,
    close: async () => {
      closed = true;
      await current.close();
    },
  };
}

async function openOneSource(input: InputOptions, setup: SourceSetup, naming: RowNaming): Promise<RowSource> {
  const { rows, columns } = input;
  const { http } = setup;
  const url = input.path !== undefined && isUrl(input.path) ? input.path : undefined;
  if (input.path !== undefined && url === undefined) await assertReadable(input.path);
  const held = new Holdings();
  const source = (items: AsyncIterable<Item>, keptColumns: readonly KeptColumn[], totalRows?: number): RowSource => ({
    items: releasing(items, held),
    keptColumns,
    ...(totalRows === undefined ? {} : { totalRows }),
    close: () => held.releaseAll(),
  });
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
      const mapped = Object.values(columns).filter((name) => parquet.columns.includes(name));
      const wanted = [...new Set([...mapped, ...keptColumns.map(({ name }) => name)])];
      const totalRows = rows ? Math.max(0, Math.min(rows.last, parquet.totalRows) - rows.first + 1) : parquet.totalRows;
      return source(toItems(parquet.batches(wanted, rows), input, naming), keptColumns, totalRows);
    }
    const name = input.path ?? 'standard input';
    // Text columns are known only as rows come: kept columns are named, and checked in the CSV header.
    const keptColumns = keptOf(undefined, name).map((column) => ({ name: column, type: input.format === 'csv' ? ('utf8' as const) : ('json' as const) }));
    naming.positional = columns.id === '';
    const checkHeader = (header: readonly string[]) => {
      checkColumns(header, columns, name);
      naming.positional = !header.includes(columns.id);
      keptOf(header, name);
    };
    if (input.window) {
      if (input.path === undefined || !rows) throw new UsageError('a byte window of the input needs its file or URL and its rows');
      // Exactly the window's rows: numbered from its first, nothing to skip.
      const stream = await readWindow(agent && url ? await HttpRangeFile.open(url, agent, http) : await openAsBlob(input.path), input.window);
      const records = input.format === 'csv' ? readCsv(stream, checkHeader, rows.first) : readNdjson(stream, rows.first);
      return source(toItems(records, input, naming), keptColumns, rows.last - rows.first + 1);
    }
    const raw = held.hold(agent && url ? await openHttpText(url, agent, http) : openText(input), (stream) => stream.destroy());
    const compression = input.path === undefined ? undefined : compressionOf(input.path);
    const stream = compression ? decompressed(raw, compression) : raw;
    const records = input.format === 'csv' ? readCsv(stream, checkHeader) : readNdjson(stream);
    return source(namingErrors(toItems(withinRows(records, rows), input, naming), name), keptColumns);
  } catch (error) {
    await held.releaseAll();
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

/** An input that breaks mid-way (a corrupt .gz, a reset connection) stops the run naming it. */
async function* namingErrors<T>(items: AsyncIterable<T>, name: string): AsyncGenerator<T> {
  try {
    yield* items;
  } catch (error) {
    // A wrong header found as the first rows are read is the user's to fix (exit 2).
    if (error instanceof UsageError) throw error;
    throw new Error(`cannot read input ${name}: ${errorMessage(error)}`, { cause: error });
  }
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
  return 'kind' in row ? row : { kind: 'row', row };
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
