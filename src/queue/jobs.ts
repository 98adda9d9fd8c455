/**
 * Jobs: ranges of input rows, each small enough that losing one (a killed worker) costs
 * little, and each read by its worker without reading the rest of the input.
 *
 * - **Parquet**: windows inside row groups, `rowsPerJob` rows at most. A worker reads the
 *   footer and the pages holding its window (locally or over HTTP ranges), as `--rows` does.
 * - **NDJSON, URL lists, CSV and TSV**: `enqueue` reads the file once and notes the byte
 *   offset of every job's first and last record; a worker reads exactly those bytes (CSV
 *   and TSV: the header line too). Row ranges alone would make every worker read the file
 *   from the start up to its rows: over all jobs, about jobs/2 times the whole file. Byte
 *   offsets from one read are exact because records are found by the same parsers the
 *   workers use (line breaks for NDJSON and URL lists, csv-parse with the same delimiter
 *   for CSV and TSV, whose quoted captions may hold line breaks).
 */
import { createReadStream, openAsBlob } from 'node:fs';
import type { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import type { ByteWindow, ColumnNames, InputFormat, InputOptions, RowRange } from '../sources/options.js';
import { checkColumns } from '../sources/open.js';
import { HttpRangeFile, createInputAgent, isUrl, openHttpText, type HttpInputOptions } from '../sources/http-input.js';
import { DELIMITERS, csvParsing } from '../sources/csv.js';
import type { CsvDelimiter } from '../sources/csv-bound.js';
import { compressionOf } from '../sources/compression.js';
import { UsageError } from '../errors.js';
import { openParquet } from '../sources/parquet.js';

/** BullMQ states of a job that may still store samples: the queue has not drained while any is in one. */
export const UNFINISHED_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

/** What one job says (BullMQ stores it as the job's data). */
export interface JobData {
  readonly input: string;
  readonly format: InputFormat;
  readonly columns: ColumnNames;
  readonly rows: RowRange;
  readonly window?: ByteWindow;
}

/**
 * The job's id and the name of the files it writes: `rows-000000001-000000050`. The same
 * input split the same way gives the same names, which is what makes enqueueing twice add
 * nothing.
 */
export function jobName(rows: RowRange): string {
  return `rows-${String(rows.first).padStart(9, '0')}-${String(rows.last).padStart(9, '0')}`;
}

/** The input a worker reads for a job; how its rows become samples is the worker's (its settings, see settings.ts). */
export function jobInput(job: JobData): Omit<InputOptions, 'missingCaptions' | 'keep'> {
  return { path: job.input, format: job.format, columns: job.columns, rows: job.rows, ...(job.window ? { window: job.window } : {}) };
}

/** Splits an input into jobs, reading it as little as its format allows. */
export async function* planJobs(input: string, format: InputFormat, columns: ColumnNames, rowsPerJob: number, http: HttpInputOptions): AsyncGenerator<JobData> {
  const agent = isUrl(input) ? createInputAgent(http) : undefined;
  try {
    const base = { input, format, columns };
    if (format === 'parquet') {
      const bytes = agent ? await HttpRangeFile.open(input, agent, http) : await openAsBlob(input);
      const parquet = await openParquet(bytes, input);
      parquet.free();
      checkColumns(parquet.columns, columns, input);
      let groupStart = 0;
      for (const size of parquet.groupSizes) {
        for (let offset = 0; offset < size; offset += rowsPerJob) {
          yield { ...base, rows: { first: groupStart + offset + 1, last: groupStart + Math.min(offset + rowsPerJob, size) } };
        }
        groupStart += size;
      }
      return;
    }
    if (compressionOf(input)) {
      throw new UsageError(`${input} is compressed: a job's byte window cannot point into it; decompress it first (or convert it to Parquet) for enqueue`);
    }
    const stream = agent ? await openHttpText(input, agent, http) : createReadStream(input, { highWaterMark: 1 << 20 });
    const checkHeader = (header: readonly string[]) => checkColumns(header, columns, input);
    const windows = format === 'csv' || format === 'tsv' ? csvWindows(stream, rowsPerJob, DELIMITERS[format], checkHeader) : lineWindows(stream, rowsPerJob);
    for await (const { rows, window } of windows) yield { ...base, rows, window };
  } finally {
    await agent?.close();
  }
}

interface Window {
  readonly rows: RowRange;
  readonly window: ByteWindow;
}

/** NDJSON and URL lists: every `rowsPerJob` lines (the line numbers `--rows` counts). */
async function* lineWindows(stream: Readable, rowsPerJob: number): AsyncGenerator<Window> {
  let position = 0; // bytes read so far
  let lineStart = 0; // where the current line starts
  let line = 0; // lines ended so far
  let start = 0; // where the current window starts
  let first = 1; // its first line
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    for (let newline = chunk.indexOf(10); newline >= 0; newline = chunk.indexOf(10, newline + 1)) {
      line++;
      lineStart = position + newline + 1;
      if (line - first + 1 === rowsPerJob) {
        yield { rows: { first, last: line }, window: { start, end: lineStart } };
        start = lineStart;
        first = line + 1;
      }
    }
    position += chunk.length;
  }
  if (position > lineStart) line++; // a last line without a line break
  if (line >= first) yield { rows: { first, last: line }, window: { start, end: position } };
}

interface RecordEnd {
  readonly index: number;
  readonly bytes: number;
}

/** CSV and TSV: every `rowsPerJob` records, numbered as the reader numbers them (bad records count). */
async function* csvWindows(stream: Readable, rowsPerJob: number, delimiter: CsvDelimiter, checkHeader: (header: readonly string[]) => void): AsyncGenerator<Window> {
  let headerBytes = 0;
  let size = 0;
  let skipped = 0;
  stream.on('data', (chunk: Buffer) => void (size += chunk.length));
  const parser = stream.pipe(
    parse({
      ...csvParsing(delimiter),
      columns: (header: string[]) => {
        checkHeader(header);
        headerBytes = parser.info.bytes;
        return header;
      },
      // Both run in parse order (the loop below may lag behind): the reader skips bad
      // records too, and counts them in its numbering.
      on_skip: () => void skipped++,
      on_record: (_record, context): RecordEnd => ({ index: context.records + skipped, bytes: context.bytes }),
    }),
  );
  stream.once('error', (error) => parser.destroy(error));
  let start: number | undefined;
  let first = 1;
  // A window ends after a good record: its end offset is known exactly there.
  for await (const { index, bytes } of parser as AsyncIterable<RecordEnd>) {
    start ??= headerBytes;
    if (index - first + 1 >= rowsPerJob) {
      yield { rows: { first, last: index }, window: { start, end: bytes, headerBytes } };
      start = bytes;
      first = index + 1;
    }
  }
  const total = parser.info.records + skipped;
  if (total >= first) yield { rows: { first, last: total }, window: { start: start ?? headerBytes, end: size, headerBytes } };
}
