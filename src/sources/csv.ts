/**
 * CSV rows with a header line, parsed by csv-parse (quoted fields may hold commas,
 * quotes and newlines, as captions do); TSV is the same with tabs between fields (quoted
 * as CSV is, as pandas reads it with `sep="\t"`). A record that cannot be parsed (wrong number
 * of fields, a stray quote) or is longer than `--max-row-bytes` (cut before csv-parse
 * holds it, see csv-bound.ts) becomes one `bad_row` failure naming its record and line.
 */
import { Readable } from 'node:stream';
import { parse, type CsvError, type Parser } from 'csv-parse';
import { failed, type Failed } from '../types.js';
import { csvRecordBound, type CsvDelimiter, type CutRecord } from './csv-bound.js';
import type { NumberedRecord } from './ndjson.js';
import type { RawRecord } from './normalize.js';
import { sizeText, tooLongText } from './row-size.js';

/** The field delimiter of each delimited format. */
export const DELIMITERS: { readonly csv: CsvDelimiter; readonly tsv: CsvDelimiter } = { csv: ',', tsv: '\t' };

/**
 * How CSV is parsed, here and where `enqueue` finds record boundaries: the two must agree
 * on what a record is, or a job's byte window would not hold its rows.
 */
export function csvParsing(delimiter: CsvDelimiter): { bom: true; skip_empty_lines: true; skip_records_with_error: true; delimiter: CsvDelimiter } {
  return { bom: true, skip_empty_lines: true, skip_records_with_error: true, delimiter } as const;
}

/** The longest part of csv-parse's message kept: it quotes the whole field for a stray quote. */
const MESSAGE_CHARS = 200;

/** A record csv-parse skipped, told as a failure once it is known in full. */
interface Skip {
  readonly index: number;
  readonly line: number | undefined;
  readonly error: CsvError | undefined;
  cut: CutRecord | undefined;
}

/**
 * @param maxRowBytes the longest record read; a longer one fails as `bad_row`
 * @param firstRecord the number of the first record after the header (a queue job reads
 * the header and then a window of the file)
 * @param delimiter between fields: `,` (CSV) or a tab (TSV)
 */
export async function* readCsv(
  input: Readable,
  checkHeader: (columns: readonly string[]) => void,
  maxRowBytes: number,
  firstRecord = 1,
  delimiter: CsvDelimiter = ',',
): AsyncGenerator<NumberedRecord | Failed> {
  const bound = csvRecordBound(maxRowBytes, delimiter);
  const bytes = Readable.from(bound.bytes(input), { objectMode: false });
  // Both callbacks run in parse order, so a record's number counts the bad records
  // before it even when good records are still buffered downstream.
  let badRecords = 0;
  const before = firstRecord - 1;
  const skipped: Skip[] = [];
  let lastSkipped: { readonly fields: unknown; readonly skip: Skip } | undefined;
  const cutsSeen: CutRecord[] = [];
  const parser: Parser = bytes.pipe(
    parse({
      ...csvParsing(delimiter),
      columns: (header: string[]) => {
        checkHeader(header);
        return header;
      },
      on_record: (record: RawRecord, context): NumberedRecord => ({ index: before + context.records + badRecords, record }),
      on_skip: (error: CsvError | undefined) => {
        const cut = bound.cutOf(error);
        const fields = recordInProgress(parser);
        // csv-parse reports every stray quote of a record: it is still one bad record.
        if (lastSkipped && fields !== undefined && fields === lastSkipped.fields) {
          lastSkipped.skip.cut ??= cut;
          if (cut) cutsSeen.push(cut);
          return undefined;
        }
        // csv-parse counts lines by their breaks, and never saw those of records cut before.
        const lineOffset = cutsSeen.reduce((sum, seen) => sum + seen.lineBreaks, 0);
        if (cut) cutsSeen.push(cut);
        badRecords++;
        const skip: Skip = {
          index: before + Number(error?.records ?? 0) + badRecords,
          line: error?.lines === undefined ? undefined : Number(error.lines) + lineOffset,
          error,
          cut,
        };
        skipped.push(skip);
        lastSkipped = { fields, skip };
        return undefined;
      },
    }),
  );
  bytes.once('error', (error) => parser.destroy(error));
  // Failures come in record order, each just before the next good record: by then a cut
  // record's end has been read, so its length is known.
  const told = (skip: Skip): Failed => {
    const line = skip.line === undefined ? '' : ` (line ${skip.line})`;
    const problem = skip.cut ? tooLongText(maxRowBytes, sizeText(skip.cut.bytes)) : shortMessage(skip.error);
    return failed({ index: skip.index }, 'bad_row', `record ${skip.index}${line}: ${problem}`);
  };
  for await (const numbered of parser as AsyncIterable<NumberedRecord>) {
    let before = 0;
    while (before < skipped.length && skipped[before]!.index < numbered.index) before++;
    if (before > 0) yield* skipped.splice(0, before).map(told);
    yield numbered;
  }
  yield* skipped.splice(0).map(told);
}

/**
 * The fields csv-parse has read of the record in progress. csv-parse starts a new array
 * for each record (its `state.record`, which its types leave out), so two errors with the
 * same array are about the same record.
 */
function recordInProgress(parser: Parser): unknown {
  return (parser as unknown as { state?: { record?: unknown } }).state?.record;
}

function shortMessage(error: CsvError | undefined): string {
  const message = (error?.message ?? 'unparseable').replace(/\s+/g, ' ');
  return message.length > MESSAGE_CHARS ? `${message.slice(0, MESSAGE_CHARS)}…` : message;
}
