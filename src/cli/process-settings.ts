/**
 * Runs the command line with the process settings it is measured with, which can only be
 * given when a process starts: so on Linux the entry point starts itself again with them.
 *
 * - MALLOC_ARENA_MAX=2 on glibc. glibc gives each thread that allocates its own malloc
 *   arena (up to 8 per core), and libvips allocates large, short-lived pixel buffers on
 *   the libuv worker threads. The freed memory stays in those arenas, so RSS grows far
 *   past what is live: on this project's 2-core machines 200 photos peaked at 700 MB with
 *   the default and 370 MB with two arenas, at the same speed. sharp knows it (it drops to
 *   one libvips thread on glibc unless MALLOC_ARENA_MAX is set).
 * - V8's old generation starting at 64 MB (`--initial-old-space-size`). The JavaScript
 *   heap here is small (about 15 MB live) but every body and encoded image is external
 *   memory, and V8 scaled its first limits to the small heap: it ran a full mark-compact
 *   every 7 or 8 images, marking on every core. Measured over 200 photos to jpeg: 25-31
 *   full collections and 17.6-18.1 CPU-seconds by default, 6-7 and 17.1 with 64 MB,
 *   3 and 16.9-17.9 with 128 MB (npm run bench breaks the CPU down by thread).
 *
 * A value the user set (environment, NODE_OPTIONS, node's own flags) is left alone.
 *
 * The parent only waits: it passes on the child's exit code (or dies by the same signal),
 * forwards SIGINT, SIGTERM and SIGHUP that were sent to it alone (a terminal's Ctrl-C
 * reaches both processes; the child says which signals it got, so none arrives twice), and
 * if the parent is killed outright the child, losing its IPC channel, exits at once too.
 */
import { spawn } from 'node:child_process';

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

/** The settings this process lacks, or undefined when it has them all. */
export function missingSettings(): MissingSettings | undefined {
  if (process.platform !== 'linux') return undefined;
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].map(flagName);
  const flags = NODE_FLAGS.filter((flag) => !given.includes(flagName(flag)));
  const unset = Object.entries(GLIBC_ENV).filter(([name]) => process.env[name] === undefined);
  // Asked last: telling glibc apart takes a diagnostic report (a few milliseconds).
  const env = unset.length > 0 && isGlibc() ? Object.fromEntries(unset) : {};
  return flags.length > 0 || Object.keys(env).length > 0 ? { flags, env } : undefined;
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
