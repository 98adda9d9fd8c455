/**
 * The thread parquet-wasm decodes in (started by parquet.ts, one per Parquet input).
 *
 * parquet-wasm runs its reads as wasm-bindgen futures, polled in microtasks. When it
 * panics on damaged data (a flipped byte in a page: a wasm trap, "RuntimeError:
 * unreachable"), the trap is thrown from such a microtask, where no caller can catch it,
 * and would end the whole process, rows in flight unrecorded. In a thread of its own it
 * ends only the thread: the main thread sees the worker's error and reports the input as
 * broken after the rows before it are recorded. A panicked wasm instance is not fit to
 * use again anyway.
 *
 * The worker opens no file: the Blob parquet-wasm reads through asks the main thread for
 * each byte range, which reads it from the local file or over HTTP (with its deadlines
 * and retries, see http-input.ts). Decoded batches go back as Arrow IPC bytes, moved, not
 * copied, and one batch is decoded ahead while the main thread turns the last into rows.
 *
 * Which rows are read at once is planned here, where the file's metadata is:
 * - only the wanted columns, one window of rows at a time within each row group (a window,
 *   `offset`/`limit` inside a row group, lets the reader use the page index and decode only
 *   the pages it needs: reading a whole 567k-row group at once would grow wasm memory to
 *   match, and it never shrinks);
 * - windows and batches as many rows as fit a byte budget at the row group's average row
 *   size (uncompressed), so a file of large rows is read a few rows at a time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ParquetFile, type ParquetMetaData } from 'parquet-wasm';
import type { RowRange } from './options.js';

/** Rows per read at most; each read decodes only the pages covering these rows. */
const WINDOW_ROWS = 16_384;
const BATCH_ROWS = 4_096;
/** Bytes a read and a batch hold at most, by the average row: the dataset's rows (about 1.5 KB) still come 16,384 and 4,096 at a time. */
const WINDOW_BYTES = 64 * 1024 * 1024;
const BATCH_BYTES = 16 * 1024 * 1024;

/** What the worker is started with. */
export interface ParquetWorkerData {
  /** The file's size in bytes. */
  readonly size: number;
}

/** Messages to the worker. */
export type ToParquetWorker =
  | { readonly type: 'read'; readonly wanted: readonly string[]; readonly rows?: RowRange }
  | { readonly type: 'next' }
  | { readonly type: 'bytes'; readonly id: number; readonly bytes: ArrayBuffer }
  | { readonly type: 'bytesFailed'; readonly id: number; readonly message: string };

/** Messages from the worker. */
export type FromParquetWorker =
  | { readonly type: 'slice'; readonly id: number; readonly start: number; readonly end: number }
  | { readonly type: 'layout'; readonly schema: Uint8Array; readonly totalRows: number; readonly groupSizes: readonly number[] }
  /** Rows from `first` (1-based) on, as Arrow IPC. */
  | { readonly type: 'batch'; readonly ipc: Uint8Array; readonly first: number }
  | { readonly type: 'end' }
  | { readonly type: 'failed'; readonly message: string };

const port = parentPort!;
const post = (message: FromParquetWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);

/** Byte ranges asked of the main thread and not answered yet. */
const waiting = new Map<number, { resolve: (bytes: ArrayBuffer) => void; reject: (error: Error) => void }>();
let lastId = 0;

/** The Blob parquet-wasm reads through (`size`, `slice(start, end).arrayBuffer()`), backed by the main thread. */
function remoteBytes(size: number): { size: number; slice(start?: number, end?: number): { arrayBuffer(): Promise<ArrayBuffer> } } {
  return {
    size,
    slice(start = 0, end = size) {
      return {
        arrayBuffer: () =>
          new Promise<ArrayBuffer>((resolve, reject) => {
            const id = ++lastId;
            waiting.set(id, { resolve, reject });
            post({ type: 'slice', id, start, end });
          }),
      };
    },
  };
}

interface Batch {
  readonly ipc: Uint8Array;
  readonly first: number;
}

/** The open file, set before its layout is sent: every 'read' comes after. */
let opened: { file: ParquetFile; metadata: ParquetMetaData; groupSizes: readonly number[] } | undefined;
let batches: AsyncGenerator<Batch> | undefined;
/** The next batch, decoded while the main thread works on the one before. */
let ahead: Promise<IteratorResult<Batch>> | undefined;

function readAhead(): void {
  ahead = batches!.next();
  // Its failure is told when the batch is asked for, not as an unhandled rejection now.
  ahead.catch(() => {});
}

port.on('message', (message: ToParquetWorker) => {
  if (message.type === 'bytes' || message.type === 'bytesFailed') {
    const request = waiting.get(message.id);
    waiting.delete(message.id);
    if (message.type === 'bytes') request?.resolve(message.bytes);
    else request?.reject(new Error(message.message));
  } else if (message.type === 'read' && opened) {
    batches = readBatches(opened.file, opened.metadata, opened.groupSizes, message.wanted, message.rows);
    readAhead();
  } else if (message.type === 'next' && ahead) {
    ahead.then(
      (result) => {
        if (result.done) return post({ type: 'end' });
        readAhead();
        post({ type: 'batch', ipc: result.value.ipc, first: result.value.first }, [result.value.ipc.buffer as ArrayBuffer]);
      },
      (error: unknown) => post({ type: 'failed', message: messageOf(error) }),
    );
  }
});

async function open(): Promise<void> {
  const { size } = workerData as ParquetWorkerData;
  const file = await ParquetFile.fromFile(remoteBytes(size) as unknown as Blob);
  const metadata = file.metadata();
  const groupSizes = Array.from({ length: metadata.numRowGroups() }, (_, group) => Number(metadata.rowGroup(group).numRows()));
  const schema = file.schema().intoIPCStream();
  opened = { file, metadata, groupSizes };
  post({ type: 'layout', schema, totalRows: Number(metadata.fileMetadata().numRows()), groupSizes }, [schema.buffer as ArrayBuffer]);
}

async function* readBatches(file: ParquetFile, metadata: ParquetMetaData, groupSizes: readonly number[], wanted: readonly string[], rows: RowRange | undefined): AsyncGenerator<Batch> {
  // Positions are 0-based here: the range's rows are [from, to).
  const from = rows ? rows.first - 1 : 0;
  const to = rows ? rows.last : Infinity;
  let groupStart = 0;
  for (const [group, size] of groupSizes.entries()) {
    const start = Math.max(from - groupStart, 0);
    const end = Math.min(to - groupStart, size);
    let first = groupStart + start + 1;
    groupStart += size;
    if (start >= end) continue;
    const atOnce = rowsAtOnce(metadata, group, wanted);
    for (let offset = start; offset < end; offset += atOnce.window) {
      const limit = Math.min(atOnce.window, end - offset);
      const stream = await file.stream({ rowGroups: [group], columns: [...wanted], batchSize: atOnce.batch, offset, limit });
      for await (const batch of stream as AsyncIterable<{ numRows: number; intoIPCStream(): Uint8Array }>) {
        const count = batch.numRows;
        yield { ipc: batch.intoIPCStream(), first };
        first += count;
      }
    }
  }
}

/** How many rows of a row group to read and to decode at once, by its average row size. */
function rowsAtOnce(metadata: ParquetMetaData, group: number, wanted: readonly string[]): { window: number; batch: number } {
  const rowGroup = metadata.rowGroup(group);
  let bytes = 0;
  for (const column of rowGroup.columns()) if (wanted.includes(column.columnPath()[0]!)) bytes += Number(column.uncompressedSize());
  const rowBytes = Math.max(1, bytes / Math.max(1, Number(rowGroup.numRows())));
  const batch = Math.max(1, Math.min(BATCH_ROWS, Math.floor(BATCH_BYTES / rowBytes)));
  return { batch, window: Math.max(batch, Math.min(WINDOW_ROWS, Math.floor(WINDOW_BYTES / rowBytes))) };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

open().catch((error: unknown) => post({ type: 'failed', message: messageOf(error) }));
