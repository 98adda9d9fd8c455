/**
 * Runs the command line under MALLOC_ARENA_MAX=2 on glibc Linux.
 *
 * Why: glibc gives each thread that allocates its own malloc arena (up to 8 per core), and
 * libvips allocates large, short-lived pixel buffers on the libuv worker threads. The
 * freed memory stays in those arenas, so RSS grows far past what is live: on this
 * project's 2-core machines 200 photos peaked at 700 MB with the default and 370 MB
 * with two arenas, at the same speed. sharp knows it (it drops to one libvips thread on
 * glibc unless MALLOC_ARENA_MAX is set). glibc reads the variable only at process start,
 * so the entry point starts itself again with it set; musl and other platforms do not
 * need it, and a value the user set is left alone.
 *
 * The parent only waits: it passes on the child's exit code (or dies by the same signal),
 * forwards SIGINT, SIGTERM and SIGHUP that were sent to it alone (a terminal's Ctrl-C
 * reaches both processes; the child says which signals it got, so none arrives twice), and
 * if the parent is killed outright the child, losing its IPC channel, exits at once too.
 */
import { spawn } from 'node:child_process';

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type Forwarded = (typeof FORWARDED)[number];
/** A signal the child reports within this window after the parent got it was sent to both. */
const SAME_SIGNAL_MS = 100;

export function needsAllocatorRestart(): boolean {
  if (process.platform !== 'linux' || process.env.MALLOC_ARENA_MAX !== undefined) return false;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime !== undefined;
}

export function restartWithAllocatorSettings(): void {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, MALLOC_ARENA_MAX: '2' },
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
