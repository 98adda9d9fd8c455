/**
 * Runs `task` after `firstAfterMs`, then every `everyMs`, until the returned function is
 * called. The timers never keep the process alive.
 */
export function repeat(task: () => void, { firstAfterMs, everyMs }: { readonly firstAfterMs: number; readonly everyMs: number }): () => void {
  let timer = setTimeout(() => {
    timer = setInterval(task, everyMs).unref();
    task();
  }, firstAfterMs).unref();
  // clearTimeout clears an interval too (one timer type in Node).
  return () => clearTimeout(timer);
}
