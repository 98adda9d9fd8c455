// A preload (`node --import bench/thread-cpu.mjs ...`): when the process exits, writes the
// CPU time of each of its threads to $THREAD_CPU_REPORT, read from /proc at that moment (a
// watcher sampling from outside would miss the last tenth of a second).
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';

process.on('exit', () => {
  const report = process.env.THREAD_CPU_REPORT;
  if (!report) return;
  const threads = readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime, in clock ticks of 10 ms.
    return { tid, name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), main: tid === String(process.pid), ms: (Number(fields[11]) + Number(fields[12])) * 10 };
  });
  writeFileSync(report, JSON.stringify(threads));
});
