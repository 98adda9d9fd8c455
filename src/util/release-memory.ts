/**
 * Hands the memory glibc's allocator holds free back to the OS, every 10 s while a
 * run goes on (glibc's `malloc_trim`, called through the koffi FFI).
 *
 * Why: glibc gives memory back only from the top of an arena. Memory freed below a chunk
 * still in use stays resident, and a run frees a lot that way: every image's buffers, and
 * now and then a burst (a metadata.parquet refresh reads the whole index). Measured in one
 * process over all 567,597 rows of the bench's dataset run, the arenas held 56-60 MiB
 * free against 20 MiB in use. `malloc_trim(0)` releases every free page of every arena
 * (glibc >= 2.8): about 1 ms per call there. With 7-megapixel photos a call takes 14 to
 * 19 ms and returns 110 to 160 MiB of libvips' freed pixel buffers, which the next images
 * fault back in; over 200 photos to jpeg, five alternated runs each, that cost 0.6%,
 * within the runs' spread.
 *
 * Elsewhere (macOS, Windows, musl) there is no such call, and nothing happens.
 */
import { createRequire } from 'node:module';
import { repeat } from './repeat.js';

/** How often: rarely enough to cost nothing measurable, often enough to catch each refresh. */
export const RELEASE_EVERY_MS = 10_000;

/** `malloc_trim` through koffi: called here, or (`async`) on one of libuv's threads. */
type Trim = ((pad: number) => number) & { async(pad: number, done: (error: unknown, result: number) => void): void };

let trim: Trim | null | undefined;

/** Releases free allocator memory now; false where that cannot be done. */
export function releaseFreedMemory(): boolean {
  trim ??= loadTrim();
  if (!trim) return false;
  trim(0);
  return true;
}

/**
 * Releases free allocator memory every `everyMs` until the returned function is called, and
 * once more then: what the run's last work freed (the final metadata.parquet) goes back
 * too, which matters to a queue worker that goes on to its next job.
 *
 * The periodic calls run on a libuv thread (koffi's async call), not the main thread: with
 * big photos one takes 14 to 19 ms, the main thread's whole budget for several images
 * (docs/performance.md).
 */
export function releaseFreedMemoryEvery(everyMs: number = RELEASE_EVERY_MS): () => void {
  if (!releaseFreedMemory()) return () => {};
  let running = false;
  const inBackground = () => {
    if (running) return;
    running = true;
    trim!.async(0, () => void (running = false));
  };
  const stop = repeat(inBackground, { firstAfterMs: everyMs, everyMs });
  return () => {
    stop();
    releaseFreedMemory();
  };
}

function loadTrim(): Trim | null {
  if (process.platform !== 'linux') return null;
  try {
    // Loaded only here: koffi is a native module, and only glibc Linux needs it.
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    // musl has neither this file name nor the function: either way, the lookup throws.
    return koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as Trim;
  } catch {
    return null;
  }
}
