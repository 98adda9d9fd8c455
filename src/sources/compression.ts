/** Compressed inputs are known by their names: `.gz` and `.zst` (a URL by its path). */
export type Compression = 'gzip' | 'zstd';

/** The name an input goes by: a file's path, or a URL's path (its query, a signed link say, is not part of it). */
export function inputName(path: string): string {
  return /^https?:\/\//i.test(path) && URL.canParse(path) ? new URL(path).pathname : path;
}

/** The compression a file name says, or undefined. */
export function compressionOf(path: string): Compression | undefined {
  const name = inputName(path).toLowerCase();
  if (name.endsWith('.gz')) return 'gzip';
  if (name.endsWith('.zst') || name.endsWith('.zstd')) return 'zstd';
  return undefined;
}

/** The name without its compression suffix (`rows.ndjson.gz` -> `rows.ndjson`). */
export function withoutCompression(path: string): string {
  return path.replace(/\.(gz|zst|zstd)$/i, '');
}
