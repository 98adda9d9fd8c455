// Helpers to run the real command line and read what it wrote.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingSettings } from '../../dist/cli/process-settings.js';

export const CLI = new URL('../../dist/pipeline.js', import.meta.url).pathname;

/**
 * The node flags and environment the entry point would restart itself with (thread pool,
 * allocator, heap; src/cli/process-settings.ts), given up front, so the command runs as one
 * process: half the start-up, and the pid a test signals is the one doing the work. Tests
 * of that restart start the command as a user would (`asUserWould`).
 * @param {readonly string[]} args @param {NodeJS.ProcessEnv} [env]
 */
export function settled(args, env = process.env) {
  const missing = missingSettings(args, env, []);
  return { nodeFlags: missing?.flags ?? [], env: { ...env, ...missing?.env } };
}

/**
 * Runs `node dist/pipeline.js ...args`, settled (see `settled`) unless `asUserWould`,
 * optionally feeding `stdin`. With `timeoutMs`, a run still going then is killed (SIGKILL,
 * the whole process group) and comes back `timedOut`.
 * @param {string[]} args
 * @param {{ stdin?: string | Buffer, cwd?: string, env?: NodeJS.ProcessEnv, asUserWould?: boolean, timeoutMs?: number }} [options]
 * @returns {Promise<{ code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string, timedOut: boolean }>}
 */
export function runCli(args, options = {}) {
  const env = options.env ?? process.env;
  const start = options.asUserWould ? { nodeFlags: [], env } : settled(args, env);
  return new Promise((resolve, reject) => {
    const detached = options.timeoutMs !== undefined;
    const child = spawn(process.execPath, [...start.nodeFlags, CLI, ...args], { cwd: options.cwd, env: start.env, stdio: ['pipe', 'pipe', 'pipe'], detached });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    // Its own process group, so that a restarted child (see src/process-settings.ts) goes too.
    const timer = detached ? setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-(/** @type {number} */ (child.pid)), 'SIGKILL');
      } catch {
        // it has just ended
      }
    }, options.timeoutMs) : undefined;
    child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    child.stdin.end(options.stdin ?? '');
  });
}

/** A fresh temporary folder, removed by the returned `cleanup`. */
export async function tempDir(prefix = 'pcp-test-') {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** @param {string} path */
export async function readResults(path) {
  const text = await readFile(path, 'utf8');
  return text.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

/** Files the dir sink writes for the dataset as a whole, not per sample. */
export const DATASET_FILES = ['metadata.parquet', 'simpletuner-dataloader.json'];

/**
 * Every per-sample name in an output folder, sorted, hidden ones included (a leftover
 * temporary file would show): all but the run's state folder `.pipeline` and DATASET_FILES.
 * @param {string} dir
 */
export async function outputFiles(dir) {
  return (await readdir(dir)).filter((name) => name !== '.pipeline' && !DATASET_FILES.includes(name)).sort();
}
