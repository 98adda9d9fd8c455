/**
 * Files that appear whole or not at all: data is written to a hidden temporary name in
 * the same folder and renamed over the real name (rename is atomic on one filesystem),
 * so no half-written file ever carries a real name, whatever kills the process.
 */
import { randomBytes } from 'node:crypto';
import { readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { writeError } from '../errors.js';
import { isProcessRunning } from './process-alive.js';

const TEMP_MARK = '.partial-';
/** Tells apart processes with the same pid on different machines sharing a folder (queue workers). */
const PROCESS_TAG = randomBytes(3).toString('hex');
let counter = 0;

/** A temporary name for `name` that is hidden, unique to this process, and names the pid. */
export function temporaryName(name: string): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `.${name}${TEMP_MARK}${process.pid}-${PROCESS_TAG}-${counter}`;
}

/** Writes each file under a temporary name, then renames them in the order given. */
export async function writeFilesAtomically(folder: string, files: ReadonlyArray<readonly [name: string, data: Buffer | string]>): Promise<number> {
  const staged = files.map(([name, data]) => ({ final: join(folder, name), temp: join(folder, temporaryName(name)), data }));
  // Each failure names the file it was about (a write error names none).
  const named = (final: string) => (error: unknown) => Promise.reject(writeError(final, error));
  try {
    await Promise.all(staged.map(({ temp, final, data }) => writeFile(temp, data).catch(named(final))));
    for (const { temp, final } of staged) await rename(temp, final).catch(named(final));
  } catch (error) {
    await Promise.all(staged.map(({ temp }) => rm(temp, { force: true })));
    throw error;
  }
  return staged.reduce((sum, { data }) => sum + Buffer.byteLength(data), 0);
}

/** One file at `path`, written whole or not at all (reports: a summary, a metrics file). */
export async function writeFileAtomically(path: string, data: Buffer | string): Promise<number> {
  return writeFilesAtomically(dirname(path), [[basename(path), data]]);
}

/**
 * Removes temporary files left in `folder` by processes that are no longer running
 * (a crash or kill -9). Files of a live process are left alone, unless `all` (finalize:
 * no worker writes any more, and a pid says nothing about another machine's processes).
 */
export async function removeStaleTemporaryFiles(folder: string, all = false): Promise<number> {
  let removed = 0;
  for (const name of await readdir(folder)) {
    const mark = name.lastIndexOf(TEMP_MARK);
    if (!name.startsWith('.') || mark < 0) continue;
    const pid = Number(name.slice(mark + TEMP_MARK.length).split('-')[0]);
    if (!all && Number.isInteger(pid) && isProcessRunning(pid)) continue;
    await rm(join(folder, name), { force: true });
    removed++;
  }
  return removed;
}
