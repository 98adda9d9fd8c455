// The bench's loopback CDN as a child process (bench/serve.mjs), for the scripts that
// measure against it.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { cpuSeconds, threadTicks } from './proc.mjs';

const SERVE = join(resolve(new URL('.', import.meta.url).pathname), 'serve.mjs');

/** Starts bench/serve.mjs over a folder; resolves once it listens. */
export async function startCdnProcess(root) {
  const child = spawn(process.execPath, [SERVE, root], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = await once(createInterface({ input: child.stdout }), 'line');
  return {
    origin: line.trim(),
    /** CPU the server has used so far: it shares the cores with what it serves. */
    cpuSeconds: () => cpuSeconds(threadTicks(child.pid)),
    close: async () => {
      child.stdin.end();
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}
