/**
 * Errors that end a run. Row-level problems are never thrown: they travel down the
 * pipeline as `failed` items. These are for the run as a whole.
 */

/** Bad flags or unusable input found at start (a missing column, an unreadable file): exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The output cannot be written (disk full, permissions): the run stops, exit 1. */
export class SinkError extends Error {
  override readonly name = 'SinkError';
}

/** Not now: something else holds what this needs (another run's lock, a queue still busy): exit 75. */
export class TryLater extends Error {
  override readonly name: string = 'TryLater';
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Errno codes that mean the output itself is unusable, not one sample. */
const UNUSABLE_OUTPUT_CODES = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EIO']);
/** SQLite's words for the same (better-sqlite3 puts them in `code`). */
const UNUSABLE_DATABASE_CODES = /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|PERM)/;

/**
 * Whether an error means every later write would fail the same way (a full disk, a
 * read-only or vanished filesystem, no permission), so the run must stop.
 */
export function isUnusableOutput(error: unknown): boolean {
  if (error instanceof SinkError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (UNUSABLE_OUTPUT_CODES.has(code) || UNUSABLE_DATABASE_CODES.test(code));
}

/**
 * The same error, saying which file it was about: Node's write errors name no path
 * ("ENOSPC: no space left on device, write"). `code` is kept for `isUnusableOutput`.
 */
export function writeError(path: string, error: unknown): Error {
  const code = (error as { code?: unknown } | null)?.code;
  const wrapped = new Error(`cannot write ${path}: ${errorMessage(error)}`, { cause: error });
  return typeof code === 'string' ? Object.assign(wrapped, { code }) : wrapped;
}
