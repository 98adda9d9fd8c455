/**
 * How a command ends: its exit code, and one line on stderr for an error (never a stack
 * trace). 0 done (row failures are in the summary), 1 a fatal error mid-run, 2 a usage or
 * input error found at start, 75 not now (another run holds the output, the queue is
 * still busy), 130 and 143 after SIGINT and SIGTERM.
 */
import { CommanderError } from 'commander';
import { TryLater, UsageError, errorMessage } from '../errors.js';

export const EXIT_OK = 0;
export const EXIT_FATAL = 1;
export const EXIT_USAGE = 2;
/** sysexits' EX_TEMPFAIL: another run holds the output; try again later. */
export const EXIT_LOCKED = 75;
export const EXIT_ON_SIGNAL: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 };

/** The exit code an error ends a command with: 2 for usage, 75 for "not now", else 1. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE; // commander printed it
  if (error instanceof UsageError) return EXIT_USAGE;
  return error instanceof TryLater ? EXIT_LOCKED : EXIT_FATAL;
}

/** Runs a command's work, turning an error into one line on stderr and its exit code. */
export async function guarded(work: () => Promise<number>): Promise<number> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof CommanderError)) process.stderr.write(`error: ${errorMessage(error)}\n`);
    return exitCodeOf(error);
  }
}
