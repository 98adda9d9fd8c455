// Runs the command line as a child process that the test can signal or kill mid-run.
import { spawn } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI, settled } from './run.mjs';

/**
 * Starts the command line, settled (one process; see `settled`) unless `asUserWould`, or
 * with the node flags and environment given.
 * @param {string[]} args @param {{ nodeFlags?: string[], env?: NodeJS.ProcessEnv, asUserWould?: boolean }} [options]
 */
export function startCli(args, { nodeFlags, env = process.env, asUserWould = false } = {}) {
  const start = asUserWould || nodeFlags ? { nodeFlags: nodeFlags ?? [], env } : settled(args, env);
  const child = spawn(process.execPath, [...start.nodeFlags, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: start.env });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  child.stdout.resume();
  /** @type {Promise<{ code: number | null, signal: NodeJS.Signals | null, stderr: string }>} */
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
  return { child, exited, stderr: () => stderr };
}

/**
 * Waits until `check()` is true, polling every 20 ms, for at most `ms`.
 * @param {() => boolean | Promise<boolean>} check
 */
export async function waitFor(check, ms = 60_000) {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Images with a real name in an output folder. @param {string} dir */
export async function countImages(dir) {
  try {
    return (await readdir(dir)).filter((name) => /^[^.].*\.(png|jpg|webp)$/.test(name)).length;
  } catch {
    return 0;
  }
}

/**
 * SIGKILLs a run and waits until the process holding the output's lock (the worker the
 * command starts) is gone too, so the next run can take the lock.
 * @param {ReturnType<typeof startCli>} run @param {string} output
 */
export async function killRun(run, output) {
  run.child.kill('SIGKILL');
  await run.exited;
  const owner = await readFile(join(output, '.pipeline', 'lock'), 'utf8').then((text) => JSON.parse(text).pid, () => undefined);
  if (owner === undefined) return;
  await waitFor(() => {
    try {
      process.kill(owner, 0);
      return false;
    } catch {
      return true;
    }
  });
}
