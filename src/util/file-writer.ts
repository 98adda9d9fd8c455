/**
 * Files written whole or not at all (as atomic-file.ts writes them: a hidden temporary
 * name, then a rename), on threads of their own: for the many small files of a run (a
 * sample's image and caption), where the main thread's share of each write is the cost.
 *
 * Why: written with fs/promises, a sample's two files are eight operations (open, write,
 * close each, then two renames), each a round trip through libuv's pool and a wake-up of
 * the main thread; measured, they were the largest part of the main thread's time per
 * image left once the image work moved to its own threads (docs/performance.md). Here one
 * message carries both files to a thread, which writes and renames them with plain
 * synchronous calls and answers once. An image's bytes are moved to the thread, not copied.
 */
import { join } from 'node:path';
import { writeError } from '../errors.js';
import { temporaryName } from './atomic-file.js';
import { isWholeMemory } from './release-buffer.js';
import { createThreadPool } from './thread-pool.js';
import type { WriteJob, WriteOutcome } from './file-writer-task.js';

export interface FileWriter {
  /**
   * Writes each file under a temporary name in `folder`, then renames them in the order
   * given. Returns bytes written. A Buffer that is the whole of its memory is moved to the
   * writing thread (it is empty here afterwards). Fails naming the file, with the error's
   * code kept (a full disk stops the run: errors.ts).
   */
  writeFiles(folder: string, files: ReadonlyArray<readonly [name: string, data: Buffer | string]>): Promise<number>;
  close(): Promise<void>;
}

export function createFileWriter(threads: number): FileWriter {
  // The sink bounds the writes in flight (its `concurrency`).
  const pool = createThreadPool({ module: new URL('./file-writer-task.js', import.meta.url), threads });
  return {
    async writeFiles(folder, files) {
      const bytes = files.reduce((sum, [, data]) => sum + Buffer.byteLength(data), 0);
      const transfer: ArrayBuffer[] = [];
      const job: WriteJob = files.map(([name, data]) => {
        if (typeof data !== 'string' && isWholeMemory(data)) transfer.push(data.buffer as ArrayBuffer);
        return { final: join(folder, name), temporary: join(folder, temporaryName(name)), data: typeof data === 'string' ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
      });
      const outcome = (await pool.run(job, { transferList: transfer })) as WriteOutcome;
      if (outcome) throw writeError(outcome.path, Object.assign(new Error(outcome.message), outcome.code === undefined ? {} : { code: outcome.code }));
      return bytes;
    },
    close: () => pool.destroy(),
  };
}
