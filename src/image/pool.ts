/**
 * The image threads: every CPU-bound step of a fetched image that is JavaScript's to drive
 * (its hashes, sharp's calls, the decode and encode they start) runs on a few worker
 * threads, not on the main thread.
 *
 * Why: one process is as fast as its busiest JavaScript thread lets it be. The main thread
 * fetches every body, runs every stage's bookkeeping, writes the state and drives the
 * sink; it spent about 4.3 ms of CPU per 1024-px jpeg before, a third of it hashing
 * bodies and outputs and calling sharp, so a 16-core machine (an image every 4.8 ms) was
 * already at its limit (docs/performance.md). Here that third is spread over
 * `threadsFor(slots)` threads. The body is moved to the thread, not copied (its memory is
 * transferred), and the encoded image moved back the same way.
 *
 * libvips itself works on libuv's thread pool, shared by every thread of the process
 * (UV_THREADPOOL_SIZE is sized to the image slots: cli/process-settings.ts), so these
 * threads only start the work and wait: a few serve many slots.
 */
import 'sharp'; // sharp's native library must be loaded by the main thread before any worker thread (sharp's docs, glibc Linux)
import { isWholeMemory } from '../util/release-buffer.js';
import { createThreadPool } from '../util/thread-pool.js';
import type { ExpectedHash } from '../types.js';
import type { ImageOptions } from './options.js';
import type { Size } from './size-rule.js';
import type { EncodeOutcome, ImageTask } from './task.js';

export type { EncodeOutcome };

/** Image slots one thread serves: its JavaScript per image is about a millisecond, a slot's libvips work 20 to 80. */
const SLOTS_PER_THREAD = 4;

export function threadsFor(slots: number): number {
  return Math.max(1, Math.ceil(slots / SLOTS_PER_THREAD));
}

export interface ImagePool {
  /**
   * The image made of `body` (which is moved to the thread: detached here), its hashes, and
   * the check of the input's expected hash.
   */
  encode(body: Buffer, row: { readonly originalSize?: Size; readonly expectedHash?: ExpectedHash }): Promise<EncodeOutcome>;
  close(): Promise<void>;
}

export function createImagePool(options: ImageOptions): ImagePool {
  const threads = threadsFor(options.concurrency);
  // The image stage bounds the images in flight (--image-concurrency).
  const pool = createThreadPool({
    module: new URL('./task.js', import.meta.url),
    threads,
    tasksPerThread: Math.ceil(options.concurrency / threads),
    workerData: options,
  });
  return {
    async encode(body, { originalSize, expectedHash }) {
      const own = isWholeMemory(body);
      const task: ImageTask = { body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength), ...(originalSize ? { originalSize } : {}), ...(expectedHash ? { expectedHash } : {}) };
      // A body that is the whole of its memory is moved; another (a slice) is copied.
      return pool.run(task, own ? { transferList: [body.buffer as ArrayBuffer] } : {}) as Promise<EncodeOutcome>;
    },
    close: () => pool.destroy(),
  };
}
