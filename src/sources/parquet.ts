/**
 * Parquet rows, read through parquet-wasm from a file-backed Blob and converted with
 * apache-arrow.
 *
 * Only the needed columns are read, one window of rows at a time within each row group.
 * Reading a whole row group at once would not do: the dataset's file may be a single
 * 567k-row group, and parquet-wasm's memory grows to the largest read and never shrinks.
 * A window (`offset`/`limit` inside one row group) lets the reader use the page index and
 * decode only the pages it needs, so wasm memory stays at tens of megabytes.
 */
import { openAsBlob } from 'node:fs';
import * as arrow from 'apache-arrow';
import { ParquetFile } from 'parquet-wasm';
import { UsageError, errorMessage } from '../errors.js';
import type { NumberedRecord } from './ndjson.js';

/** Rows per read; each read decodes only the pages covering these rows. */
const WINDOW_ROWS = 16_384;
const BATCH_ROWS = 4_096;

export interface ParquetRows {
  readonly columns: readonly string[];
  readonly totalRows: number;
  /** The rows of the wanted columns, one batch (up to BATCH_ROWS) at a time. */
  batches(wanted: readonly string[]): AsyncGenerator<NumberedRecord[]>;
}

/**
 * A column as plain JS values. 64-bit integers (ids, sizes) become numbers when they fit,
 * else decimal strings, so rows from Parquet look like rows from NDJSON and CSV.
 */
function columnValues(vector: arrow.Vector | null, length: number): ArrayLike<unknown> {
  if (!vector) return new Array<null>(length).fill(null);
  if (arrow.DataType.isUtf8(vector.type)) return textValues(vector as arrow.Vector<arrow.Utf8>, length);
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
function textValues(vector: arrow.Vector<arrow.Utf8>, length: number): Array<string | null> {
  const strings = new Array<string | null>(length);
  let row = 0;
  for (const data of vector.data) {
    const bytes = Buffer.from(data.values.buffer, data.values.byteOffset, data.values.byteLength);
    const offsets = data.valueOffsets;
    for (let i = 0; i < data.length; i++, row++) {
      strings[row] = data.getValid(i) ? bytes.toString('utf8', offsets[i], offsets[i + 1]) : null;
    }
  }
  return strings;
}

export async function openParquet(path: string): Promise<ParquetRows> {
  let file: ParquetFile;
  try {
    file = await ParquetFile.fromFile(await openAsBlob(path));
  } catch (error) {
    throw new UsageError(`cannot read ${path} as Parquet: ${errorMessage(error)}`);
  }
  const metadata = file.metadata();
  const groupSizes = Array.from({ length: metadata.numRowGroups() }, (_, group) => Number(metadata.rowGroup(group).numRows()));
  const columns = arrow.tableFromIPC(file.schema().intoIPCStream()).schema.fields.map((field) => field.name);

  return {
    columns,
    totalRows: Number(metadata.fileMetadata().numRows()),
    async *batches(wanted) {
      let index = 0;
      try {
        for (const [group, size] of groupSizes.entries()) {
          for (let offset = 0; offset < size; offset += WINDOW_ROWS) {
            const limit = Math.min(WINDOW_ROWS, size - offset);
            const stream = await file.stream({ rowGroups: [group], columns: [...wanted], batchSize: BATCH_ROWS, offset, limit });
            for await (const batch of stream as AsyncIterable<{ intoIPCStream(): Uint8Array }>) {
              const table = arrow.tableFromIPC(batch.intoIPCStream());
              // Whole columns at once: much cheaper than Vector.get per cell.
              const columns = wanted.map((name) => [name, columnValues(table.getChild(name), table.numRows)] as const);
              const records: NumberedRecord[] = new Array(table.numRows);
              for (let row = 0; row < table.numRows; row++) {
                const record: Record<string, unknown> = {};
                for (const [name, values] of columns) record[name] = values[row] ?? null;
                records[row] = { index: ++index, record };
              }
              yield records;
            }
          }
        }
      } finally {
        file.free();
      }
    },
  };
}
