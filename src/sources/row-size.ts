/**
 * The bound on one input row (`--max-row-bytes`): an NDJSON line, a CSV record, or the
 * text and binary cells of a Parquet row. A row past it fails as `bad_row` without being
 * held whole, and the rows after it are read as usual (docs/inputs-safety.md).
 */

/**
 * 4 MiB. The dataset's longest row is a caption of a few kilobytes, so this is a thousand
 * times what a real row needs, yet small enough that the few rows in memory at once (a
 * line being split, a record being parsed) cannot add up to much next to the images.
 */
export const DEFAULT_MAX_ROW_BYTES = 4 * 1024 * 1024;

/** `4 MiB`, `256.5 MiB`, `812 bytes`: sizes as the messages give them. */
export function sizeText(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${Number(value.toFixed(1))} ${units[unit]}`;
}

/** The end of a too-long row's message: `longer than --max-row-bytes 4 MiB (256 MiB)`. */
export function tooLongText(maxRowBytes: number, detail: string): string {
  return `longer than --max-row-bytes ${sizeText(maxRowBytes)} (${detail})`;
}
