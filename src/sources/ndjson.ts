/**
 * NDJSON rows: one JSON object per line. Lines are split by stream-chain (UTF-8 safe
 * across chunk boundaries); each line is parsed here so that a broken line becomes a
 * `bad_row` failure naming its line number instead of ending the stream.
 */
import type { Readable } from 'node:stream';
import chain from 'stream-chain';
import fixUtf8Stream from 'stream-chain/utils/fixUtf8Stream.js';
import lines from 'stream-chain/utils/lines.js';
import { failed, type Failed } from '../types.js';
import type { RawRecord } from './normalize.js';

export interface NumberedRecord {
  readonly index: number;
  readonly record: RawRecord;
}

/** @param firstLine the number of the input's first line (a queue job reads a window of the file) */
export async function* readNdjson(input: Readable, firstLine = 1): AsyncGenerator<NumberedRecord | Failed> {
  const text = chain([input, fixUtf8Stream(), lines()]);
  // The chain does not pass on its source's errors (a corrupt .gz, a cut connection).
  input.once('error', (error) => text.destroy(error));
  let lineNumber = firstLine - 1;
  for await (const line of text as AsyncIterable<string>) {
    lineNumber++;
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
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
