/**
 * URL lists (`.txt`): one image URL per line, as img2dataset's `txt` input. Lines are split
 * by `numberedLines`, bounded by `--max-row-bytes` like NDJSON lines.
 *
 * A row's id is its line number (1-based, the numbers `--rows` counts and a text editor
 * shows). Blank lines and lines starting with `#` (comments) are skipped but still
 * counted, so the ids stay the line numbers. A list carries no captions: its rows have only
 * a URL, which the url column (`--url-column`) holds.
 */
import type { Readable } from 'node:stream';
import type { Failed } from '../types.js';
import { numberedLines } from './lines.js';
import type { NumberedRecord } from './ndjson.js';

/**
 * @param urlColumn the column the URL is put in (the url column the rows are read with)
 * @param firstLine the number of the input's first line (a queue job reads a window of the file)
 */
export async function* readUrlList(input: Readable, urlColumn: string, maxRowBytes: number, firstLine = 1): AsyncGenerator<NumberedRecord | Failed> {
  for await (const line of numberedLines(input, maxRowBytes, firstLine)) {
    if ('kind' in line) {
      yield line;
      continue;
    }
    const url = line.text.trim();
    if (url === '' || url.startsWith('#')) continue;
    yield { index: line.number, record: { [urlColumn]: url } };
  }
}
