/**
 * The lines of a byte stream, none held longer than a bound: NDJSON rows (and any other
 * one-record-per-line input).
 *
 * A line past `maxBytes` is never held whole: its bytes so far are let go, the rest are
 * counted and dropped up to its newline, and it comes out as a `LongLine` (how long it
 * was), so the lines after it are read as usual and keep their numbers. A 256 MiB line
 * costs no more memory than a 4 MiB one.
 *
 * A line is decoded from its own bytes once it is complete, so a UTF-8 character split
 * across two chunks comes out whole. "\n" ends a line and a "\r" before it is dropped
 * ("\r\n" files); the last line needs no newline.
 */
import { failed, type Failed } from '../types.js';
import { sizeText, tooLongText } from './row-size.js';

/** A line longer than the bound, dropped as it streamed. */
export interface LongLine {
  /** Its length in bytes (without the newline). */
  readonly bytes: number;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

export async function* splitLines(chunks: AsyncIterable<Buffer | string>, maxBytes: number): AsyncGenerator<string | LongLine> {
  // The current line's pieces (views of the chunks, not copies) and its length so far.
  let pieces: Buffer[] = [];
  let length = 0;
  let dropping = false;

  const take = (piece: Buffer): void => {
    length += piece.length;
    if (dropping) return;
    if (length > maxBytes) {
      dropping = true;
      pieces = [];
    } else if (piece.length > 0) {
      pieces.push(piece);
    }
  };
  const end = (): string | LongLine => {
    const line = dropping ? { bytes: length } : decode(pieces);
    pieces = [];
    length = 0;
    dropping = false;
    return line;
  };

  for await (const data of chunks) {
    // A library caller's stream may give strings.
    const chunk = typeof data === 'string' ? Buffer.from(data) : data;
    let start = 0;
    for (let newline = chunk.indexOf(NEWLINE); newline !== -1; newline = chunk.indexOf(NEWLINE, start)) {
      take(chunk.subarray(start, newline));
      start = newline + 1;
      yield end();
    }
    take(chunk.subarray(start));
  }
  if (length > 0) yield end();
}

/** A line of a one-record-per-line input, with its number in the file. */
export interface NumberedLine {
  readonly number: number;
  readonly text: string;
}

/**
 * The lines numbered from `firstLine` (a queue job reads a window of the file); a line past
 * `maxBytes` (`--max-row-bytes`) comes out as a `bad_row` failure naming its number.
 */
export async function* numberedLines(chunks: AsyncIterable<Buffer | string>, maxBytes: number, firstLine = 1): AsyncGenerator<NumberedLine | Failed> {
  let number = firstLine - 1;
  for await (const line of splitLines(chunks, maxBytes)) {
    number++;
    yield typeof line === 'string' ? { number, text: line } : failed({ index: number }, 'bad_row', `line ${number}: ${tooLongText(maxBytes, sizeText(line.bytes))}`);
  }
}

function decode(pieces: readonly Buffer[]): string {
  const bytes = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  const last = bytes.length - 1;
  return bytes.toString('utf8', 0, bytes[last] === CARRIAGE_RETURN ? last : bytes.length);
}
