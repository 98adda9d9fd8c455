/**
 * Writes row files shaped like the photo-concept-bucket dataset (id, url,
 * cogvlm_caption, tags, width, height) as Parquet, NDJSON or CSV, with the real
 * libraries. Used by the demo, the tests and the benchmark.
 */
import { writeFile } from 'node:fs/promises';
import * as arrow from 'apache-arrow';
import { Compression, Table as WasmTable, WriterPropertiesBuilder, writeParquet } from 'parquet-wasm';

export interface DatasetRow {
  readonly id: number;
  readonly url: string;
  readonly cogvlm_caption: string | null;
  readonly tags: string | null;
  readonly width: number;
  readonly height: number;
}

export async function writeParquetRows(path: string, rows: readonly DatasetRow[], rowGroupSize = 100_000): Promise<void> {
  const table = new arrow.Table({
    id: arrow.vectorFromArray(rows.map((row) => BigInt(row.id)), new arrow.Int64()),
    url: arrow.vectorFromArray(rows.map((row) => row.url), new arrow.Utf8()),
    cogvlm_caption: arrow.vectorFromArray(rows.map((row) => row.cogvlm_caption), new arrow.Utf8()),
    tags: arrow.vectorFromArray(rows.map((row) => row.tags), new arrow.Utf8()),
    width: arrow.vectorFromArray(rows.map((row) => BigInt(row.width)), new arrow.Int64()),
    height: arrow.vectorFromArray(rows.map((row) => BigInt(row.height)), new arrow.Int64()),
  });
  const properties = new WriterPropertiesBuilder()
    .setCompression(Compression.SNAPPY)
    .setMaxRowGroupSize(rowGroupSize)
    .build();
  await writeFile(path, writeParquet(WasmTable.fromIPCStream(arrow.tableToIPC(table, 'stream')), properties));
}

export async function writeNdjsonRows(path: string, rows: readonly DatasetRow[]): Promise<void> {
  await writeFile(path, rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
}

export async function writeCsvRows(path: string, rows: readonly DatasetRow[]): Promise<void> {
  const columns = ['id', 'url', 'cogvlm_caption', 'tags', 'width', 'height'] as const;
  const cell = (value: unknown) => {
    const text = value === null || value === undefined ? '' : String(value);
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const lines = [columns.join(','), ...rows.map((row) => columns.map((column) => cell(row[column])).join(','))];
  await writeFile(path, `${lines.join('\r\n')}\r\n`);
}
