/**
 * One job of a file-writer thread (file-writer.ts): the files written under their
 * temporary names, then renamed into place in order; on a failure the temporary files are
 * removed and the error told back as data (its code, ENOSPC say, must survive the trip).
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { handBack } from './thread-pool.js';

export type WriteJob = ReadonlyArray<{ readonly final: string; readonly temporary: string; readonly data: Uint8Array | string }>;

/** Undefined when every file is in place; otherwise what failed. */
export type WriteOutcome = { readonly path: string; readonly message: string; readonly code?: string } | undefined;

/** The outcome, with the files' bytes handed back to the main thread to be freed. */
export default function writeFiles(job: WriteJob): WriteOutcome {
  return handBack(write(job), job.map(({ data }) => data));
}

function write(job: WriteJob): WriteOutcome {
  let current = job[0]?.final ?? '';
  try {
    for (const { final, temporary, data } of job) {
      current = final;
      writeFileSync(temporary, data);
    }
    for (const { final, temporary } of job) {
      current = final;
      renameSync(temporary, final);
    }
    return undefined;
  } catch (error) {
    for (const { temporary } of job) rmSync(temporary, { force: true });
    const code = (error as { code?: unknown }).code;
    return { path: current, message: (error as Error).message, ...(typeof code === 'string' ? { code } : {}) };
  }
}
