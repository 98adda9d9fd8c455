/**
 * CSV records held to `--max-row-bytes` on their way into csv-parse.
 *
 * csv-parse has a bound of its own, `max_record_size`, but it cannot go on after an
 * overlong record: with `skip_records_with_error` it reports the error once per chunk for
 * the rest of the input and yields no further record (csv-parse 6.2.1 and 7.0.3: the error
 * returns from its parse loop without keeping its place). So the bound is kept here, in
 * front of it, and csv-parse still does all the parsing:
 *
 * - The bytes are passed on as they come (no copy, no record held), while a small state
 *   machine follows them the way csv-parse reads them with our options (quoted fields,
 *   `""` escapes, a quote that closes only before a delimiter (a comma, or a tab for TSV)
 *   or a line break, the record
 *   delimiter csv-parse settles on at the first line break) just closely enough to know
 *   where each record ends and whether csv-parse is inside quotes.
 * - When a record passes the bound, the rest of it is dropped up to its end, and csv-parse
 *   is handed a short ending instead: the open quote closed, then a field holding a mark
 *   and a stray quote. csv-parse rejects that record (a stray quote is an error), which
 *   `cutOf` recognises by the mark; the record delimiter after it is passed on, so the next
 *   record is read as usual and keeps its number.
 *
 * A UTF-8 byte order mark is dropped here (csv-parse would drop it too), and a UTF-16LE
 * one turns the input into UTF-8: csv-parse would switch to UTF-16, which the state
 * machine cannot follow byte by byte.
 */
import { randomUUID } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import { sizeText } from './row-size.js';

const QUOTE = 0x22;
const CR = 0x0d;
const LF = 0x0a;
const NUL = 0x00;
const EMPTY = Buffer.alloc(0);
const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const UTF16LE_BOM = Buffer.from([0xff, 0xfe]);

/**
 * Where csv-parse is in a record. The last three wait for the next byte: csv-parse looks
 * one or two bytes ahead before it decides what a quote or a CR is.
 */
type Mode =
  /** Nothing of the field read yet: a quote here opens a quoted field. */
  | 'fieldStart'
  /** In a field that did not start with a quote (a quote here is a stray one). */
  | 'unquoted'
  /** Inside quotes, where only a quote means anything. */
  | 'quoted'
  /** A quote inside quotes: escaping the next quote, closing the field, or stray. */
  | 'quote'
  /** A quote then a CR inside quotes, with CRLF records: it closes only if LF follows. */
  | 'quoteCr'
  /** A CR outside quotes with CRLF records, or before csv-parse has settled on a delimiter. */
  | 'cr';

type RecordDelimiter = 'lf' | 'crlf' | 'cr';

/** What separates fields: `,` in CSV, a tab in TSV. */
export type CsvDelimiter = ',' | '\t';

/** A record dropped for its length. */
export interface CutRecord {
  /** Its length in bytes, without the record delimiter (complete once its end is read). */
  bytes: number;
  /**
   * CR and LF bytes dropped with it. csv-parse counts lines by these bytes, so its line
   * numbers after a cut are short by as many.
   */
  lineBreaks: number;
}

export interface CsvRecordBound {
  /** `input`'s bytes as csv-parse should read them. */
  bytes(input: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer>;
  /** The cut record a csv-parse error is about, or undefined for any other error. */
  cutOf(error: unknown): CutRecord | undefined;
}

/**
 * A record bound for one input (its mark and its cuts are its own).
 * @param delimiter between fields, as csv-parse is given it
 */
export function csvRecordBound(maxBytes: number, delimiter: CsvDelimiter = ','): CsvRecordBound {
  // Unique, and plain text that csv-parse puts into its error message as it is; each cut
  // adds its number.
  const mark = `row-too-long-${randomUUID()}`;
  const markOf = new RegExp(`${mark}-(\\d+)`);
  const cuts = new Map<number, CutRecord>();
  let count = 0;
  const scanner = createScanner(maxBytes, delimiter.charCodeAt(0), mark, (cut) => {
    cuts.set(++count, cut);
    return count;
  });
  return {
    async *bytes(input) {
      for await (const chunk of decodedUtf8(input)) {
        const out = scanner.scan(chunk, false);
        if (out.length > 0) yield out.length === 1 ? out[0]! : Buffer.concat(out);
      }
      const out = scanner.scan(EMPTY, true);
      if (out.length > 0) yield Buffer.concat(out);
    },
    cutOf(error) {
      const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
      const id = code === 'INVALID_OPENING_QUOTE' && typeof message === 'string' ? markOf.exec(message)?.[1] : undefined;
      if (id === undefined) return undefined;
      const cut = cuts.get(Number(id));
      cuts.delete(Number(id));
      return cut;
    },
  };
}

/** The input as UTF-8 without a byte order mark. */
async function* decodedUtf8(input: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
  let start: Buffer = EMPTY;
  let utf16: StringDecoder | undefined;
  let decided = false;
  for await (const data of input) {
    let chunk = typeof data === 'string' ? Buffer.from(data) : data;
    if (!decided) {
      // The mark needs three bytes to tell; a first chunk may be shorter.
      start = Buffer.concat([start, chunk]);
      if (start.length < UTF8_BOM.length) continue;
      decided = true;
      chunk = start;
      if (chunk.subarray(0, 3).equals(UTF8_BOM)) chunk = chunk.subarray(3);
      else if (chunk.subarray(0, 2).equals(UTF16LE_BOM)) {
        utf16 = new StringDecoder('utf16le');
        chunk = chunk.subarray(2);
      }
    }
    yield utf16 ? Buffer.from(utf16.write(chunk)) : chunk;
  }
  if (!decided && start.length > 0) yield start.subarray(0, 2).equals(UTF16LE_BOM) ? Buffer.from(start.subarray(2).toString('utf16le')) : start;
  if (utf16) yield Buffer.from(utf16.end());
}

interface Scanner {
  /** The bytes of `chunk` to pass on (with an ending for a record cut in it); `atEnd` after the last. */
  scan(chunk: Buffer, atEnd: boolean): Buffer[];
}

/**
 * @param separator the byte between fields (a comma, or a tab)
 * @param onCut numbers a cut for its mark
 */
function createScanner(maxBytes: number, separator: number, mark: string, onCut: (cut: CutRecord) => number): Scanner {
  let mode: Mode = 'fieldStart';
  let delimiter: RecordDelimiter | undefined;
  /** Bytes of the current record so far, without its delimiter. */
  let recordBytes = 0;
  /** Records ended so far (empty lines are none): the first is the header. */
  let records = 0;
  /** The record being dropped. */
  let cut: CutRecord | undefined;
  /** Bytes at the end of the last chunk still waiting for the next byte to be understood. */
  let held: Buffer = EMPTY;

  return {
    scan(chunk, atEnd) {
      const data = held.length > 0 ? Buffer.concat([held, chunk]) : chunk;
      held = EMPTY;
      const out: Buffer[] = [];
      /** The first byte neither passed on nor dropped yet. */
      let from = 0;
      /** The last place csv-parse needs no look-ahead to have read up to, and its mode and count there. */
      let clean = 0;
      let cleanMode = mode;
      let cleanBytes = recordBytes;

      const pass = (until: number): void => {
        if (until > from) out.push(data.subarray(from, until));
        from = until;
      };
      const drop = (until: number): void => {
        for (let i = from; i < until; i++) if (data[i] === CR || data[i] === LF) cut!.lineBreaks++;
        from = until;
      };
      /** The record has passed the bound: end it for csv-parse where it was last within it. */
      const startCut = (): void => {
        if (records === 0) throw new Error(`its header is longer than --max-row-bytes ${sizeText(maxBytes)}`);
        pass(clean);
        cut = { bytes: recordBytes, lineBreaks: 0 };
        const id = onCut(cut);
        out.push(Buffer.from(`${cleanMode === 'quoted' ? '"' : ''}${String.fromCharCode(separator)}${mark}-${id}"`));
      };
      /** A place where csv-parse needs no look-ahead. */
      const settle = (at: number): void => {
        if (!cut && recordBytes > maxBytes) startCut();
        if (cut) drop(at);
        clean = at;
        cleanMode = mode;
        cleanBytes = recordBytes;
      };
      /** A record delimiter of `length` bytes ends before `at`. */
      const endRecord = (at: number, length: number): void => {
        if (!cut && recordBytes > maxBytes) startCut();
        if (cut) {
          drop(at - length);
          cut.bytes = recordBytes;
          cut = undefined;
        }
        if (recordBytes > 0) records++;
        recordBytes = 0;
        mode = 'fieldStart';
        settle(at);
      };
      /** csv-parse's reading of one byte outside quotes (modes fieldStart and unquoted). */
      const outside = (byte: number, at: number): void => {
        if (byte === LF && (delimiter === undefined || delimiter === 'lf')) {
          delimiter = 'lf';
          return endRecord(at + 1, 1);
        }
        if (byte === CR && delimiter === 'cr') return endRecord(at + 1, 1);
        if (byte === CR && (delimiter === undefined || delimiter === 'crlf')) {
          mode = 'cr';
          return;
        }
        recordBytes++;
        if (byte === separator) mode = 'fieldStart';
        else if (byte === QUOTE && mode === 'fieldStart') mode = 'quoted';
        else mode = 'unquoted';
        settle(at + 1);
      };

      let i = 0;
      while (i < data.length) {
        const byte = data[i]!;
        switch (mode) {
          case 'fieldStart':
          case 'unquoted': {
            // Plain text up to the next byte that means something, counted at once.
            let end = i;
            while (end < data.length && !isSpecial(data[end]!, separator)) end++;
            if (end === i) {
              outside(byte, i);
              i++;
              break;
            }
            const room = cut ? Infinity : maxBytes - recordBytes;
            if (end - i > room) {
              // The bound falls inside this run: cut where it is reached.
              recordBytes += room;
              if (room > 0) mode = 'unquoted';
              settle(i + room);
              recordBytes++;
              mode = 'unquoted';
              settle(i + room + 1);
              i += room + 1;
              break;
            }
            recordBytes += end - i;
            mode = 'unquoted';
            settle(end);
            i = end;
            break;
          }
          case 'quoted': {
            // A caption is mostly quoted text: run to the next quote at once.
            const next = data.indexOf(QUOTE, i);
            const end = next === -1 ? data.length : next;
            const room = cut ? Infinity : maxBytes - recordBytes;
            if (end - i > room) {
              // The bound falls inside this run: cut where it is reached.
              recordBytes += room;
              settle(i + room);
              recordBytes++;
              settle(i + room + 1);
              i += room + 1;
              break;
            }
            recordBytes += end - i;
            settle(end);
            if (end < data.length) mode = 'quote';
            i = end + 1;
            break;
          }
          case 'quote':
            // The quote is at i - 1 (or held from the last chunk).
            if (byte === QUOTE) {
              // An escaped quote: both are text.
              recordBytes += 2;
              mode = 'quoted';
              settle(++i);
            } else if (closesQuote(byte, separator, delimiter)) {
              recordBytes++;
              mode = 'unquoted';
              settle(i);
            } else if (byte === CR && delimiter === 'crlf') {
              mode = 'quoteCr';
              i++;
            } else {
              // A stray quote: csv-parse fails the record and reads on inside quotes. It
              // decided so by this byte (plain text inside quotes), so settle after it.
              recordBytes += 2;
              mode = 'quoted';
              settle(++i);
            }
            break;
          case 'quoteCr':
            if (byte === LF) {
              // The quote closed the field and CRLF ends the record.
              recordBytes++;
              endRecord(++i, 2);
            } else {
              // Quote and CR were text after all; this byte is read inside quotes.
              recordBytes += 2;
              mode = 'quoted';
              settle(i);
            }
            break;
          case 'cr':
            if (byte === LF) {
              delimiter = 'crlf';
              endRecord(++i, 2);
            } else if (delimiter === undefined) {
              // A lone CR is the first line break: CR ends records in this file.
              delimiter = 'cr';
              endRecord(i, 1);
            } else {
              // A CR inside a field of a CRLF file is text.
              recordBytes++;
              mode = 'unquoted';
              settle(i);
            }
            break;
        }
      }

      if (atEnd) {
        // What the waiting bytes turn out to be when nothing follows them.
        if (mode === 'quote') recordBytes++;
        else if (mode === 'quoteCr') recordBytes += 2;
        else if (mode === 'cr' && delimiter === undefined) {
          // A lone CR as the very first line break, at the very end.
          endRecord(data.length, 1);
          pass(data.length);
          return out;
        } else if (mode === 'cr') recordBytes++;
        if (!cut && recordBytes > maxBytes) startCut();
        if (cut) {
          drop(data.length);
          cut.bytes = recordBytes;
        } else pass(data.length);
        return out;
      }
      // Bytes after the last clean place wait for the next chunk, read again from there.
      if (cut) drop(clean);
      else pass(clean);
      held = Buffer.from(data.subarray(clean));
      mode = cleanMode;
      recordBytes = cleanBytes;
      return out;
    },
  };
}

/** Bytes that mean something outside quotes. */
function isSpecial(byte: number, separator: number): boolean {
  return byte === separator || byte === QUOTE || byte === CR || byte === LF;
}

/** Whether csv-parse takes a quote inside quotes followed by `next` as the closing one. */
function closesQuote(next: number, separator: number, delimiter: RecordDelimiter | undefined): boolean {
  // NUL counts as "nothing follows" in csv-parse (`!nextChr`).
  if (next === separator || next === NUL) return true;
  if (next === LF) return delimiter === undefined || delimiter === 'lf';
  if (next === CR) return delimiter === undefined || delimiter === 'cr';
  return false;
}
