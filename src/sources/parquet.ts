/**
 * Parquet rows, read through parquet-wasm from a file-backed Blob (or HTTP ranges of a
 * URL, see http-input.ts) and converted with apache-arrow.
 *
 * parquet-wasm decodes in a worker thread of its own (parquet-worker.ts): a panic on a
 * damaged page is then an error of that thread, told here as the input's read error, and
 * not the end of the process. The worker plans which rows it reads at once and sends
 * decoded batches as Arrow IPC; the byte ranges it needs are read here, from `bytes`.
 *
 * Rows are bounded by `--max-row-bytes` after they are decoded: a row whose text and
 * binary cells add up to more fails as `bad_row`, its text never turned into strings. The
 * reader decodes whole pages, so the bound cannot keep a huge cell out of memory; the
 * worker's byte budget per batch keeps one from being multiplied (docs/inputs-safety.md).
 */
import { Worker } from 'node:worker_threads';
import * as arrow from 'apache-arrow';
import { UsageError, errorMessage } from '../errors.js';
import { failed, type Failed } from '../types.js';
import { addCellBytes } from './cell-bytes.js';
import { HttpInputError } from './http-input.js';
import type { NumberedRecord } from './ndjson.js';
import type { RowRange } from './options.js';
import type { FromParquetWorker, ParquetWorkerData, ToParquetWorker } from './parquet-worker.js';
import { sizeText, tooLongText } from './row-size.js';

export interface ParquetRows {
  readonly columns: readonly string[];
  /** Each column's Arrow type. */
  readonly types: ReadonlyMap<string, arrow.DataType>;
  readonly totalRows: number;
  /** Rows in each row group, in order. */
  readonly groupSizes: readonly number[];
  /**
   * The rows of the wanted columns, one batch at a time; with `rows`, only those (1-based,
   * inclusive), read from the row groups and pages that hold them. A row longer than
   * `maxRowBytes` comes as a `bad_row` failure.
   */
  batches(wanted: readonly string[], maxRowBytes: number, rows?: RowRange): AsyncGenerator<Array<NumberedRecord | Failed>>;
  /** Releases the file without reading rows (batches() releases it when it ends). */
  free(): void;
}

/** What parquet-wasm reads a file through: a local file's Blob, or ranges of a URL (HttpRangeFile). */
export interface ParquetBytes {
  readonly size: number;
  slice(start?: number, end?: number): { arrayBuffer(): Promise<ArrayBuffer> };
}

/** @param name the file or URL, for messages */
export async function openParquet(bytes: ParquetBytes, name: string): Promise<ParquetRows> {
  const reader = startReader(bytes);
  let layout: Extract<FromParquetWorker, { type: 'layout' }>;
  try {
    layout = (await reader.answer()) as typeof layout;
  } catch (error) {
    reader.stop();
    if (error instanceof HttpInputError) throw error;
    throw new UsageError(`cannot read ${name} as Parquet: ${errorMessage(error)}`);
  }
  const fields = arrow.tableFromIPC(layout.schema).schema.fields;
  return {
    columns: fields.map((field) => field.name),
    types: new Map(fields.map((field) => [field.name, field.type])),
    totalRows: layout.totalRows,
    groupSizes: layout.groupSizes,
    free: () => reader.stop(),
    async *batches(wanted, maxRowBytes, rows) {
      try {
        reader.send({ type: 'read', wanted, ...(rows ? { rows } : {}) });
        while (true) {
          const answer = await reader.answer({ type: 'next' });
          if (answer.type !== 'batch') return;
          yield batchEntries(arrow.tableFromIPC(answer.ipc), wanted, maxRowBytes, answer.first);
        }
      } finally {
        reader.stop();
      }
    },
  };
}

/** The main thread's end of the worker: one answer awaited at a time. */
interface Reader {
  send(message: ToParquetWorker): void;
  /** Sends `request` (if any) and waits for the worker's next layout, batch or end. */
  answer(request?: ToParquetWorker): Promise<Extract<FromParquetWorker, { type: 'layout' | 'batch' | 'end' }>>;
  stop(): void;
}

function startReader(bytes: ParquetBytes): Reader {
  const worker = new Worker(new URL('./parquet-worker.js', import.meta.url), { workerData: { size: bytes.size } satisfies ParquetWorkerData });
  let waiting: { resolve: (message: Extract<FromParquetWorker, { type: 'layout' | 'batch' | 'end' }>) => void; reject: (error: Error) => void } | undefined;
  /** Why the worker can answer no more. */
  let broken: Error | undefined;
  /** The last byte range that could not be read, as it was thrown (an HttpInputError says the URL). */
  let unreadable: unknown;
  const fail = (error: Error): void => {
    broken ??= error;
    waiting?.reject(broken);
    waiting = undefined;
    worker.unref();
  };
  worker.on('message', (message: FromParquetWorker) => {
    if (message.type === 'slice') {
      bytes
        .slice(message.start, message.end)
        .arrayBuffer()
        .then(
          (buffer) => worker.postMessage({ type: 'bytes', id: message.id, bytes: buffer } satisfies ToParquetWorker, [buffer]),
          (error: unknown) => {
            unreadable = error;
            worker.postMessage({ type: 'bytesFailed', id: message.id, message: errorMessage(error) } satisfies ToParquetWorker);
          },
        );
      return;
    }
    if (message.type === 'failed') return fail(unreadable instanceof Error ? unreadable : new Error(message.message));
    waiting?.resolve(message);
    waiting = undefined;
    // Waiting for nothing, the worker must not keep the process alive (a run that ends early never frees it).
    worker.unref();
  });
  // A wasm trap in the worker: parquet-wasm panicked on damaged data, or on a byte range it
  // was refused (a URL that stopped answering), which is then the error to tell.
  worker.on('error', (error) => fail(unreadable instanceof Error ? unreadable : new Error(`the Parquet reader crashed on damaged data (wasm: ${errorMessage(error)})`)));
  worker.on('exit', (code) => fail(new Error(`the Parquet reader stopped (exit code ${code})`)));
  return {
    send: (message) => worker.postMessage(message),
    answer(request) {
      if (broken) return Promise.reject(broken);
      worker.ref();
      if (request) worker.postMessage(request);
      return new Promise((resolve, reject) => (waiting = { resolve, reject }));
    },
    stop: () => void worker.terminate(),
  };
}

/**
 * A column as plain JS values. 64-bit integers (ids, sizes) become numbers when they fit,
 * else decimal strings, so rows from Parquet look like rows from NDJSON and CSV.
 */
function columnValues(vector: arrow.Vector | null, length: number, skip: Uint8Array | undefined): ArrayLike<unknown> {
  if (!vector) return new Array<null>(length).fill(null);
  if (arrow.DataType.isUtf8(vector.type)) return textValues(vector as arrow.Vector<arrow.Utf8>, length, skip);
  const values = vector.toArray() as ArrayLike<unknown>;
  if (values instanceof BigInt64Array || values instanceof BigUint64Array) {
    const plain = Array.from(values, (value: bigint) => (Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()));
    if (vector.nullCount > 0) for (let i = 0; i < length; i++) if (!vector.isValid(i)) plain[i] = null as never;
    return plain;
  }
  if (vector.nullCount > 0 && !Array.isArray(values)) {
    return Array.from({ length }, (_, i) => (vector.isValid(i) ? values[i] : null));
  }
  return values;
}

/**
 * A text column as strings, decoded straight from its bytes and offsets: about half the
 * cost of apache-arrow's `toArray`, which decodes each cell through `TextDecoder`
 * (measured on dataset-like captions: 149 against 279 ns each).
 */
function textValues(vector: arrow.Vector<arrow.Utf8>, length: number, skip: Uint8Array | undefined): Array<string | null> {
  const strings = new Array<string | null>(length);
  let row = 0;
  for (const data of vector.data) {
    const bytes = Buffer.from(data.values.buffer, data.values.byteOffset, data.values.byteLength);
    const offsets = data.valueOffsets;
    for (let i = 0; i < data.length; i++, row++) {
      strings[row] = data.getValid(i) && skip?.[row] !== 1 ? bytes.toString('utf8', offsets[i], offsets[i + 1]) : null;
    }
  }
  return strings;
}

/** The rows of one batch: records, and a `bad_row` for each row past the bound. */
function batchEntries(table: arrow.Table, wanted: readonly string[], maxRowBytes: number, firstIndex: number): Array<NumberedRecord | Failed> {
  const rows = table.numRows;
  const sizes = wanted.map((name) => {
    const bytes = new Float64Array(rows);
    addCellBytes(table.getChild(name), bytes);
    return bytes;
  });
  let skip: Uint8Array | undefined;
  const totals = new Float64Array(rows);
  for (const bytes of sizes) for (let row = 0; row < rows; row++) totals[row]! += bytes[row]!;
  for (let row = 0; row < rows; row++) if (totals[row]! > maxRowBytes) (skip ??= new Uint8Array(rows))[row] = 1;
  // Whole columns at once: much cheaper than Vector.get per cell.
  const columns = wanted.map((name) => [name, columnValues(table.getChild(name), rows, skip)] as const);
  const entries: Array<NumberedRecord | Failed> = new Array(rows);
  for (let row = 0; row < rows; row++) {
    const index = firstIndex + row;
    if (skip?.[row] === 1) {
      const largest = sizes.reduce((best, bytes, column) => (bytes[row]! > sizes[best]![row]! ? column : best), 0);
      const detail = `${sizeText(totals[row]!)} of text and binary, ${sizeText(sizes[largest]![row]!)} in column "${wanted[largest]}"`;
      entries[row] = failed({ index }, 'bad_row', `row ${index}: ${tooLongText(maxRowBytes, detail)}`);
      continue;
    }
    const record: Record<string, unknown> = {};
    for (const [name, values] of columns) record[name] = values[row] ?? null;
    entries[row] = { index, record };
  }
  return entries;
}
