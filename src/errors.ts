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

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
