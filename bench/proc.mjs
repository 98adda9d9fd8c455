// Resource use of a process tree read from /proc directly: spawning a reader ten times a
// second would steal CPU from the run being measured.
import { readFileSync, readdirSync } from 'node:fs';

export const TICKS_PER_SECOND = 100;

/** RSS (kB) summed over a process and its descendants. */
export function treeRssKb(pid) {
  let rssKb = 0;
  for (const id of treePids(pid)) rssKb += processRssKb(id);
  return rssKb;
}

/** RSS (kB) of one process; 0 once it has exited. */
export function processRssKb(pid) {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0; // it just exited
  }
}

/**
 * CPU ticks of every thread of a process tree, keyed by pid/tid, with the thread's name
 * ("libvips worker", "node") and whether it is a process's main thread.
 * @returns {Map<string, { name: string, main: boolean, ticks: number }>}
 */
export function threadTicks(pid) {
  const threads = new Map();
  for (const id of treePids(pid)) {
    let tids = [];
    try {
      tids = readdirSync(`/proc/${id}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        const stat = readFileSync(`/proc/${id}/task/${tid}/stat`, 'utf8');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        threads.set(`${id}/${tid}`, { name, main: tid === String(id), ticks: Number(fields[11]) + Number(fields[12]) });
      } catch {
        // it just exited
      }
    }
  }
  return threads;
}

/**
 * Seconds of CPU by kind of thread: libvips' workers (decoding, resizing, encoding),
 * the main threads (JavaScript, HTTP, SQLite) and the rest (libuv's pool, which drives
 * sharp and does file I/O, and V8's garbage-collector helpers).
 */
export function cpuByKind(threads) {
  const seconds = { libvips: 0, main: 0, other: 0 };
  for (const { name, main, ticks } of threads.values()) {
    const kind = name.startsWith('libvips') ? 'libvips' : main ? 'main' : 'other';
    seconds[kind] += ticks / TICKS_PER_SECOND;
  }
  return seconds;
}

/** Seconds of CPU of all the threads given. */
export function cpuSeconds(threads) {
  let ticks = 0;
  for (const thread of threads.values()) ticks += thread.ticks;
  return ticks / TICKS_PER_SECOND;
}

function treePids(pid) {
  const pids = [String(pid)];
  for (let i = 0; i < pids.length; i++) {
    try {
      const children = readFileSync(`/proc/${pids[i]}/task/${pids[i]}/children`, 'utf8').trim();
      if (children) pids.push(...children.split(/\s+/));
    } catch {
      // it just exited
    }
  }
  return pids;
}

/**
 * Watches a process tree every `everyMs`: peak RSS of the tree and of its root, and every
 * thread's CPU ticks (a thread that exits keeps the ticks last seen). Every run a bench
 * compares is watched the same way, so each pays the same small cost for being watched
 * (about 1 ms of the bench's own CPU per sample on the same cores).
 */
export function watchProcessTree(pid, everyMs = 100) {
  let peakRssKb = 0;
  let peakRootKb = 0;
  const threads = new Map();
  const sample = () => {
    const rssKb = treeRssKb(pid);
    peakRssKb = Math.max(peakRssKb, rssKb);
    peakRootKb = Math.max(peakRootKb, processRssKb(pid));
    for (const [key, thread] of threadTicks(pid)) threads.set(key, thread);
    return { rssKb };
  };
  const timer = setInterval(sample, everyMs);
  return {
    /** Samples now (for a caller that wants RSS at a moment of its own). */
    sample,
    /** Stops watching; what was seen. */
    stop() {
      clearInterval(timer);
      return { peakRssKb, peakRootKb, threads };
    },
  };
}
