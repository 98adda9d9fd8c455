/**
 * Checks, before a run starts, that a report file (`--results`, `--summary`,
 * `--metrics-file`) can be written, so a typo or a read-only folder is a usage error at
 * start rather than a failure after hours of work.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UsageError, errorMessage } from '../errors.js';

export async function assertWritableFile(flag: string, path: string): Promise<void> {
  const problem = await writeProblem(resolve(path));
  if (problem) throw new UsageError(`${flag} ${path} cannot be written: ${problem}`);
}

async function writeProblem(path: string): Promise<string | undefined> {
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isDirectory()) return 'it is a folder';
  try {
    // An existing file must be writable; a new one needs a writable folder to be made in.
    await access(existing ? path : dirname(path), constants.W_OK);
    return undefined;
  } catch (error) {
    return errorMessage(error);
  }
}
