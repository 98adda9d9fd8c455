/**
 * A pool of worker threads running one module's default export (piscina), for the image
 * threads (image/pool.ts) and the file-writer threads (file-writer.ts).
 *
 * Why not `new Piscina` directly: piscina loads a task module with require() first, and on
 * Node 20.19+ require() of an ES module (ours are) is synchronous. A pool closed while a
 * thread is still in that require() (a run with nothing left to fetch closes its pools
 * within milliseconds) aborts the whole process: "FATAL ERROR: v8::Module::IsGraphAsync
 * ... must be used on an instantiated module". With require(esm) switched off in the
 * threads, piscina falls back to import(), which a closing pool stops cleanly.
 */
import { Piscina } from 'piscina';

export interface ThreadPoolOptions {
  /** The task module, as a file URL (`new URL('./task.js', import.meta.url)`). */
  readonly module: URL;
  readonly threads: number;
  /** Tasks one thread runs at once (they await libuv's pool, so one thread serves several). */
  readonly tasksPerThread?: number;
  readonly workerData?: unknown;
}

/**
 * The threads' own Node options. Node versions before require(esm) do not know the flag and
 * need no switch: their threads inherit the process's options as usual. Given options are
 * not inherited, and the process's own cannot simply be passed on (Node refuses
 * process-wide ones such as --max-old-space-size in a thread); a task thread needs none.
 */
const REQUIRE_ESM_OFF = '--no-experimental-require-module';
const threadExecArgv = process.allowedNodeEnvironmentFlags.has(REQUIRE_ESM_OFF) ? [REQUIRE_ESM_OFF] : undefined;

export function createThreadPool({ module, threads, tasksPerThread = 1, workerData }: ThreadPoolOptions): Piscina {
  return new Piscina({
    filename: module.href,
    minThreads: threads,
    maxThreads: threads,
    concurrentTasksPerWorker: tasksPerThread,
    // The stages bound the work in flight: the pool's own queue needs no limit.
    ...(threadExecArgv ? { execArgv: threadExecArgv } : {}),
    workerData,
  });
}
