/**
 * One run at a time per output folder. The lock is a file created exclusively
 * (`{output}/.pipeline/lock`) holding the owner's pid, host and start time. A lock whose
 * process is gone (a crash, kill -9, a reboot) is taken over; a live one makes the new
 * run stop at once with a message naming the running process.
 */
import { hostname } from 'node:os';
import { link, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TryLater } from '../errors.js';
import { isProcessRunning } from '../util/process-alive.js';

export class LockedError extends TryLater {
  override readonly name = 'LockedError';
}

interface LockOwner {
  pid: number;
  host: string;
  startedAt: string;
}

export interface Lock {
  release(): Promise<void>;
}

export async function acquireLock(stateDir: string): Promise<Lock> {
  const path = join(stateDir, 'lock');
  const me: LockOwner = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  // The lock appears with its content or not at all: written aside, then hard-linked into
  // place (link fails if the name exists, like an exclusive create).
  const staged = `${path}.${process.pid}`;
  await writeFile(staged, `${JSON.stringify(me)}\n`);
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await link(staged, path);
        return { release: () => rm(path, { force: true }) };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      await takeOverIfStale(path);
    }
  } finally {
    await rm(staged, { force: true });
  }
  throw new LockedError(`could not take the lock ${path}: another run keeps taking it`);
}

async function takeOverIfStale(path: string): Promise<void> {
  const owner = await readOwner(path);
  if (owner && isAlive(owner)) {
    throw new LockedError(
      `another run (pid ${owner.pid} on ${owner.host}, started ${owner.startedAt}) is writing to this output; ` +
        `remove ${path} only if that process is gone`,
    );
  }
  // The owner is gone: take the lock over. If two runs race here, only one of them wins
  // the link on the next turn.
  await rm(path, { force: true });
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LockOwner;
  } catch {
    return undefined; // unreadable or half-written by a crashed run: treat as stale
  }
}

function isAlive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true; // another machine's process: cannot check, assume alive
  return isProcessRunning(owner.pid);
}
