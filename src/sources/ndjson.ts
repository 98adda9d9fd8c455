/**
 * NDJSON rows: one JSON object per line. Lines are split by `numberedLines` (UTF-8 safe
 * across chunk boundaries, none held past `--max-row-bytes`); each line is parsed here so
 * that a broken or overlong line becomes a `bad_row` failure naming its line number
 * instead of ending the stream.
 */
import type { Readable } from 'node:stream';
import { failed, type Failed } from '../types.js';
import { numberedLines } from './lines.js';
import type { RawRecord } from './normalize.js';

export interface NumberedRecord {
  readonly index: number;
  readonly record: RawRecord;
}

/**
 * @param maxRowBytes the longest line read; a longer one fails as `bad_row`
 * @param firstLine the number of the input's first line (a queue job reads a window of the file)
 */
export async function* readNdjson(input: Readable, maxRowBytes: number, firstLine = 1): AsyncGenerator<NumberedRecord | Failed> {
  for await (const line of numberedLines(input, maxRowBytes, firstLine)) {
    if ('kind' in line) {
      yield line;
      continue;
    }
    if (line.text.trim() === '') continue;
    const lineNumber = line.number;
    let value: unknown;
    try {
      value = JSON.parse(line.text);
    } catch (error) {
      yield failed({ index: lineNumber }, 'bad_row', `line ${lineNumber}: invalid JSON (${(error as Error).message})`);
      continue;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      yield failed({ index: lineNumber }, 'bad_row', `line ${lineNumber}: expected a JSON object, got ${describe(value)}`);
      continue;
    }
    yield { index: lineNumber, record: value as RawRecord };
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}
