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
import { isWholeMemory } from './release-buffer.js';

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

/** The young generation of each task thread's heap, in MB. */
const YOUNG_GENERATION_MB = 4;

export function createThreadPool({ module, threads, tasksPerThread = 1, workerData }: ThreadPoolOptions): Piscina {
  return new Piscina({
    filename: module.href,
    minThreads: threads,
    maxThreads: threads,
    concurrentTasksPerWorker: tasksPerThread,
    // The stages bound the work in flight: the pool's own queue needs no limit.
    ...(threadExecArgv ? { execArgv: threadExecArgv } : {}),
    workerData,
    // A task thread's objects live for one task: a small young generation is all it needs,
    // and V8 would otherwise grow it to tens of MB per thread under a high message rate
    // (the whole-dataset run's tree peaked 11 to 15 MiB higher without this).
    resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
  });
}

/**
 * A task's result with buffers moved along, not copied (for a task thread's module): those
 * the result holds (an encoded image), and those the thread is done with, handed back to
 * the main thread to be freed there.
 *
 * Why hand back: memory moved into a task thread is freed only when that thread's V8 next
 * collects garbage, and a task thread allocates so little JavaScript that it rarely does;
 * dead bodies and images piled up in each thread to V8's external-memory limit (64 MB), and
 * 200 photos to jpeg peaked at 575 to 643 MiB instead of 387. Moved back, a buffer nobody
 * holds lands in the main thread as an unreferenced ArrayBuffer, which its next scavenge
 * frees within milliseconds (as in release-buffer.ts).
 *
 * Only buffers that are the whole of their memory are moved: a slice would take other
 * holders' bytes with it. The thread must not touch them afterwards.
 */
export function handBack<T>(result: T, buffers: ReadonlyArray<Uint8Array | string>): T {
  const transfer = new Set<ArrayBuffer>();
  for (const data of buffers) {
    if (typeof data !== 'string' && isWholeMemory(data)) transfer.add(data.buffer as ArrayBuffer);
  }
  if (transfer.size === 0) return result;
  return Piscina.move({ [Piscina.transferableSymbol]: [...transfer], [Piscina.valueSymbol]: result } as never) as unknown as T;
}
