// One run at a time per output (src/state/lock.ts), against what a cron user's machine
// does to it: runs started together over a dead run's lock, a dead run's pid handed to
// another process, a holder killed with SIGKILL, a lock from another host.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { acquireLock, LockedError } from '../dist/state/lock.js';
import { tempDir } from './support/run.mjs';

const LOCK_MODULE = new URL('../dist/state/lock.js', import.meta.url).href;

/**
 * A process that waits until `at` (ms since the epoch), takes the lock of `dir`, holds it
 * `holdMs` and lets go; it prints what happened as one JSON line: when it held the lock
 * (its own clock readings), or the message it was refused with. `holdMs` -1: holds until killed.
 */
const HOLDER = `
  const [lockModule, dir, at, holdMs] = process.argv.slice(1);
  const { acquireLock } = await import(lockModule);
  while (Date.now() < Number(at)) await new Promise((resolve) => setTimeout(resolve, 1));
  try {
    const lock = await acquireLock(dir);
    const from = Date.now();
    if (Number(holdMs) < 0) {
      console.log(JSON.stringify({ held: true, from }));
      await new Promise(() => setInterval(() => {}, 60_000));
    }
    await new Promise((resolve) => setTimeout(resolve, Number(holdMs)));
    const to = Date.now();
    await lock.release();
    console.log(JSON.stringify({ held: true, from, to }));
  } catch (error) {
    console.log(JSON.stringify({ held: false, message: error.message }));
  }
`;

/** @param {string} dir @param {number} at @param {number} holdMs */
function startHolder(dir, at, holdMs) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', HOLDER, LOCK_MODULE, dir, String(at), String(holdMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => (out += chunk));
  /** @type {Promise<{ held: boolean, from?: number, to?: number, message?: string }>} */
  const result = new Promise((resolve) => child.on('close', () => resolve(JSON.parse(out.trim().split('\n')[0] || '{"held":false,"message":"no output"}'))));
  /** The first line, as soon as it is printed. */
  const firstLine = new Promise((resolve) => child.stdout.on('data', () => out.includes('\n') && resolve(JSON.parse(out.split('\n')[0]))));
  return { child, result, firstLine };
}

/** A pid that no process has any more. */
function deadPid() {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

/** @param {string} stateDir @param {{ pid: number, host?: string }} owner */
async function leaveLock(stateDir, owner) {
  await mkdir(stateDir, { recursive: true });
  await writeFile(join(stateDir, 'lock'), `${JSON.stringify({ pid: owner.pid, host: owner.host ?? hostname(), startedAt: '2026-01-01T00:00:00.000Z' })}\n`);
}

describe('the output lock', () => {
  /** @type {{ path: string, cleanup: () => Promise<void> }} */
  let work;
  before(async () => {
    work = await tempDir('pcp-lock-');
  });
  after(() => work.cleanup());

  test('runs started together over a dead run\'s lock hold it one at a time', async () => {
    // Each round: a killed run's lock, and six runs that start at the same moment (an
    // @reboot cron line and the periodic one, say). Whoever gets it, no two hold it at once.
    for (let round = 0; round < 4; round++) {
      const stateDir = join(work.path, `together-${round}`, '.pipeline');
      await leaveLock(stateDir, { pid: deadPid() });
      const at = Date.now() + 1500;
      const outcomes = await Promise.all(Array.from({ length: 6 }, () => startHolder(stateDir, at, 300).result));
      const held = outcomes.filter((outcome) => outcome.held).sort((a, b) => (a.from ?? 0) - (b.from ?? 0));
      assert.ok(held.length >= 1, JSON.stringify(outcomes));
      for (let i = 1; i < held.length; i++) {
        assert.ok((held[i]?.from ?? 0) >= (held[i - 1]?.to ?? Infinity), `round ${round}: two runs held the lock at once: ${JSON.stringify(held)}`);
      }
      for (const outcome of outcomes.filter((o) => !o.held)) assert.match(outcome.message ?? '', /^another run (\(pid \d+ on .*\) )?is writing to this output/);
    }
  });

  test('a dead run\'s lock whose pid now belongs to another process is taken over', async () => {
    // Pids wrap (at 32768 on many machines, threads included): the number a killed run left
    // can be a live process's by the next start. This test process stands for it.
    const stateDir = join(work.path, 'reused', '.pipeline');
    await leaveLock(stateDir, { pid: process.ppid });
    const lock = await acquireLock(stateDir);
    try {
      assert.equal(JSON.parse(await readFile(join(stateDir, 'lock'), 'utf8')).pid, process.pid, 'the lock names its new holder');
    } finally {
      await lock.release();
    }
  });

  test('a holder refuses others while it lives, naming itself, and frees the output when killed with SIGKILL', async () => {
    const stateDir = join(work.path, 'killed', '.pipeline');
    await mkdir(stateDir, { recursive: true });
    const holder = startHolder(stateDir, 0, -1);
    try {
      assert.equal((await holder.firstLine).held, true);
      await assert.rejects(acquireLock(stateDir), (error) => error instanceof LockedError && new RegExp(`^another run \\(pid ${holder.child.pid} on `).test(error.message));
    } finally {
      holder.child.kill('SIGKILL');
      await once(holder.child, 'close');
    }
    const lock = await acquireLock(stateDir);
    await lock.release();
  });

  test('a lock left by a process on another host stops the run: it cannot be checked from here', async () => {
    const stateDir = join(work.path, 'elsewhere', '.pipeline');
    await leaveLock(stateDir, { pid: 4242, host: `not-${hostname()}` });
    await assert.rejects(acquireLock(stateDir), (error) => error instanceof LockedError && /another run \(pid 4242 on not-.*\) is writing to this output; remove .*lock only if that process is gone/.test(error.message));
    // Refused, it holds nothing: the same again is refused the same way, not as busy.
    await assert.rejects(acquireLock(stateDir), /remove .*lock only if that process is gone/);
  });
});
