/**
 * Runs the command line with the process settings it is measured with, which can only be
 * given when a process starts: so on Linux the entry point starts itself again with them.
 *
 * - UV_THREADPOOL_SIZE: the image slots (`--image-concurrency`, the core count by default)
 *   plus POOL_RESERVE. sharp decodes and encodes each image on libuv's thread pool, whose
 *   file writes and DNS lookups queue on the same threads, and the pool has 4 threads
 *   unless this says otherwise: on a 16-core machine at most 4 of the 16 image slots
 *   would be decoding (measured at small scale, 200 photos to jpeg with two slots: 24.3
 *   images/s with the default pool, 15.0 with a pool of one). libuv reads the size once,
 *   when the pool starts, which in an ES module program is before any of our code runs.
 * - MALLOC_ARENA_MAX=2 on glibc. glibc gives each thread that allocates its own malloc
 *   arena (up to 8 per core), and libvips allocates large, short-lived pixel buffers on
 *   the libuv worker threads. The freed memory stays in those arenas, so RSS grows far
 *   past what is live: on this project's 2-core machines 200 photos peaked at 700 MB with
 *   the default and 370 MB with two arenas, at the same speed. sharp knows it (it drops to
 *   one libvips thread on glibc unless MALLOC_ARENA_MAX is set).
 * - V8's old generation starting at 64 MB (`--initial-old-space-size`). The JavaScript
 *   heap here is small (about 15 MB live) but every body and encoded image is external
 *   memory, and V8 scaled its first limits to the small heap: it ran a full mark-compact
 *   every 7 or 8 images, marking on every core (docs/performance.md).
 *
 * A value the user set (environment, NODE_OPTIONS, node's own flags) is left alone; a
 * thread pool smaller than the image slots is worth one line of warning.
 *
 * The parent only waits: it passes on the child's exit code (or dies by the same signal),
 * forwards SIGINT, SIGTERM and SIGHUP that were sent to it alone (a terminal's Ctrl-C
 * reaches both processes; the child says which signals it got, so none arrives twice), and
 * if the parent is killed outright the child, losing its IPC channel, exits at once too.
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';

/** Node flags the program runs with, unless the user gave the same flag a value. */
export const NODE_FLAGS: readonly string[] = ['--initial-old-space-size=64'];
/** Environment the program runs with on glibc Linux, unless the user set it. */
export const GLIBC_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type Forwarded = (typeof FORWARDED)[number];
/** A signal the child reports within this window after the parent got it was sent to both. */
const SAME_SIGNAL_MS = 100;

export interface MissingSettings {
  readonly flags: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/**
 * Threads the pool keeps beyond the image slots: libuv's own default, so file writes, the
 * resume state's and the index's I/O, and DNS lookups have the room they have by default.
 */
export const POOL_RESERVE = 4;
/** libuv's ceiling on UV_THREADPOOL_SIZE. */
const MAX_POOL = 1024;

/** The commands whose process decodes images or writes an output, and so needs these settings. */
const HEAVY_COMMANDS = new Set(['worker', 'finalize']);

/** Whether `argv` runs a command that needs the process settings (a run, worker, finalize). */
export function needsSettings(argv: readonly string[]): boolean {
  if (argv.some((arg) => ['--help', '-h', '--version', '-V'].includes(arg))) return false;
  const command = argv[0] ?? '';
  return HEAVY_COMMANDS.has(command) || !['status', 'report', 'enqueue'].includes(command);
}

/** The libuv pool a command line needs: its image slots plus the reserve. */
export function poolSizeFor(argv: readonly string[]): number {
  return Math.min(MAX_POOL, imageSlots(argv) + POOL_RESERVE);
}

/**
 * `--image-concurrency` as the command line gives it, else the core count: read before the
 * flags are parsed (the pool must be sized before the program starts). A value the parser
 * will refuse later does not matter here.
 */
function imageSlots(argv: readonly string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = arg === '--image-concurrency' ? argv[i + 1] : arg.startsWith('--image-concurrency=') ? arg.slice('--image-concurrency='.length) : undefined;
    const slots = Number(value);
    if (value !== undefined && Number.isInteger(slots) && slots > 0) return slots;
  }
  return availableParallelism();
}

/** The settings a process started with `argv` and `env` lacks, or undefined when it has them all. */
export function missingSettings(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, execArgv: readonly string[] = process.execArgv): MissingSettings | undefined {
  if (process.platform !== 'linux') return undefined;
  const given = [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].map(flagName);
  const flags = NODE_FLAGS.filter((flag) => !given.includes(flagName(flag)));
  const wanted: Record<string, string> = { UV_THREADPOOL_SIZE: String(poolSizeFor(argv)) };
  // Asked last: telling glibc apart takes a diagnostic report (a few milliseconds).
  const unsetGlibc = Object.keys(GLIBC_ENV).some((name) => env[name] === undefined);
  if (unsetGlibc && isGlibc()) Object.assign(wanted, GLIBC_ENV);
  const missing = Object.fromEntries(Object.entries(wanted).filter(([name]) => env[name] === undefined));
  return flags.length > 0 || Object.keys(missing).length > 0 ? { flags, env: missing } : undefined;
}

/**
 * One line of warning when the thread pool (the user's own UV_THREADPOOL_SIZE, or libuv's
 * default where nothing set it) leaves image slots without a thread; undefined otherwise.
 */
export function poolWarning(imageSlots: number, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const size = Number(env.UV_THREADPOOL_SIZE ?? 4);
  if (!Number.isInteger(size) || size >= imageSlots) return undefined;
  return `warning: UV_THREADPOOL_SIZE=${env.UV_THREADPOOL_SIZE ?? '4 (libuv\'s default)'} is smaller than the ${imageSlots} image slots: at most ${size} images are decoded at once (leave it unset, or set it to at least ${imageSlots + POOL_RESERVE})`;
}

/** A flag's name as V8 reads it: `--initial_old_space_size=9` and `--initial-old-space-size` match. */
function flagName(flag: string): string {
  return flag.split('=')[0]!.replaceAll('_', '-');
}

/** Whether this process runs on glibc (a diagnostic report says: a few milliseconds). */
export function isGlibc(): boolean {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime !== undefined;
}

export function restartWith(missing: MissingSettings): void {
  const child = spawn(process.execPath, [...missing.flags, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...missing.env },
  });
  // When the child last got each signal straight from the sender (not from us).
  const seenByChild = new Map<string, number>();
  // Signals we forwarded whose report from the child is still to come.
  const echoes = new Map<string, number>();
  child.on('message', (message: { signal?: string }) => {
    const signal = message?.signal;
    if (!signal) return;
    const pending = echoes.get(signal) ?? 0;
    if (pending > 0) echoes.set(signal, pending - 1);
    else seenByChild.set(signal, Date.now());
  });
  for (const signal of FORWARDED) {
    process.on(signal, () => {
      const receivedAt = Date.now();
      setTimeout(() => {
        const childGotIt = (seenByChild.get(signal) ?? 0) >= receivedAt - SAME_SIGNAL_MS;
        if (childGotIt) return;
        echoes.set(signal, (echoes.get(signal) ?? 0) + 1);
        child.kill(signal);
      }, SAME_SIGNAL_MS);
    });
  }
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
      return;
    }
    process.exit(code ?? 1);
  });
}

/** In the child: report signals to the parent, and leave when the parent is gone. */
export function superviseFromParent(): void {
  if (!process.send) return;
  for (const signal of FORWARDED) {
    process.on(signal, () => process.send?.({ signal: signal satisfies Forwarded }));
  }
  process.on('disconnect', () => process.exit(137));
  if (!process.connected) process.exit(137); // the parent died while this process was loading
  // The IPC channel must not keep the process alive once its work is done.
  process.channel?.unref();
}
