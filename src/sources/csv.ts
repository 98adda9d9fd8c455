/**
 * CSV rows with a header line, parsed by csv-parse (quoted fields may hold commas,
 * quotes and newlines, as captions do). A record that cannot be parsed (wrong number
 * of fields, a stray quote) becomes a `bad_row` failure naming its record and line.
 */
import type { Readable } from 'node:stream';
import { parse, type CsvError } from 'csv-parse';
import { failed, type Failed } from '../types.js';
import type { NumberedRecord } from './ndjson.js';
import type { RawRecord } from './normalize.js';

/**
 * @param firstRecord the number of the first record after the header (a queue job reads
 * the header and then a window of the file)
 */
/**
 * How CSV is parsed, here and where `enqueue` finds record boundaries: the two must agree
 * on what a record is, or a job's byte window would not hold its rows.
 */
export const CSV_PARSING = { bom: true, skip_empty_lines: true, skip_records_with_error: true } as const;

export async function* readCsv(
  input: Readable,
  checkHeader: (columns: readonly string[]) => void,
  firstRecord = 1,
): AsyncGenerator<NumberedRecord | Failed> {
  // Both callbacks run in parse order, so a record's number counts the bad records
  // before it even when good records are still buffered downstream.
  let badRecords = 0;
  const before = firstRecord - 1;
  const skipped: Failed[] = [];
  const parser = input.pipe(
    parse({
      ...CSV_PARSING,
      columns: (header: string[]) => {
        checkHeader(header);
        return header;
      },
      on_record: (record: RawRecord, context): NumberedRecord => ({ index: before + context.records + badRecords, record }),
      on_skip: (error: CsvError | undefined) => {
        badRecords++;
        const index = before + Number(error?.records ?? 0) + badRecords;
        const line = error?.lines === undefined ? '' : ` (line ${error.lines})`;
        skipped.push(failed({ index }, 'bad_row', `record ${index}${line}: ${error?.message ?? 'unparseable'}`));
        return undefined;
      },
    }),
  );
  input.once('error', (error) => parser.destroy(error));
  for await (const numbered of parser as AsyncIterable<NumberedRecord>) {
    yield* skipped.splice(0);
    yield numbered;
  }
  yield* skipped.splice(0);
}
