/**
 * One run at a time per output folder.
 *
 * The lock is the operating system's: an exclusive SQLite transaction on
 * `{output}/.pipeline/lock.sqlite`, held for the run's whole life. SQLite takes it with
 * fcntl (LockFileEx on Windows), and the kernel drops it when the process ends, however it
 * ends (kill -9, the OOM killer), so there is no stale lock to judge. The file alone is
 * not enough: a lock file created exclusively and taken over when its pid was not running
 * let runs that found the same stale file each remove the others' fresh one (8 runs
 * started at once over a dead run's lock took it 2 to 7 at a time in 10 tries of 15), and
 * a dead run's pid reused by another process (pids wrap at 32768 on many Linux machines,
 * threads included) kept its lock alive.
 *
 * Beside it, `{output}/.pipeline/lock` names the holder (pid, host, start time) for the
 * message a second run prints; the holder writes it once it holds the lock and removes it
 * at release. One left by a process on another host (an output on a shared filesystem,
 * where locks may not reach across machines) still stops the run: that process cannot be
 * checked from here.
 */
import Database from 'better-sqlite3';
import type { Database as DatabaseHandle } from 'better-sqlite3';
import { hostname } from 'node:os';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TryLater, writeError } from '../errors.js';
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

/** The database whose exclusive transaction is the lock. */
export const LOCK_DATABASE = 'lock.sqlite';
/** The file naming the holder. */
export const LOCK_OWNER = 'lock';
/** How long a run that finds the output locked waits for the holder to name itself (it has just taken the lock). */
const OWNER_WAIT_MS = 2_000;

export async function acquireLock(stateDir: string): Promise<Lock> {
  const ownerPath = join(stateDir, LOCK_OWNER);
  const held = holdExclusively(join(stateDir, LOCK_DATABASE));
  if (!held) throw new LockedError(await busyMessage(ownerPath));
  try {
    const earlier = await readOwner(ownerPath);
    if (earlier && earlier.host !== hostname()) throw new LockedError(ownerMessage(earlier, ownerPath));
    const me: LockOwner = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
    await writeFile(ownerPath, `${JSON.stringify(me)}\n`);
  } catch (error) {
    held.close();
    throw error;
  }
  return {
    async release() {
      try {
        await rm(ownerPath, { force: true });
      } finally {
        held.close(); // ends the transaction: the lock is free
      }
    },
  };
}

/**
 * Opens the lock database and begins an exclusive transaction, without waiting: the open
 * connection, or undefined when another process holds it.
 */
function holdExclusively(path: string): DatabaseHandle | undefined {
  let db: DatabaseHandle | undefined;
  try {
    db = new Database(path, { timeout: 0 });
    db.exec('BEGIN EXCLUSIVE');
    return db;
  } catch (error) {
    db?.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY') return undefined;
    throw writeError(path, error);
  }
}

/**
 * What a run that finds the output locked says: the holder, once it has named itself
 * (a run that has just taken the lock may not have yet, and the file may still name the
 * dead run before it).
 */
async function busyMessage(ownerPath: string): Promise<string> {
  const until = Date.now() + OWNER_WAIT_MS;
  for (;;) {
    const owner = await readOwner(ownerPath);
    if (owner && (owner.host !== hostname() || isProcessRunning(owner.pid))) return ownerMessage(owner, ownerPath);
    if (Date.now() > until) return `another run is writing to this output (it holds ${join(ownerPath, '..', LOCK_DATABASE)})`;
    await sleep(50);
  }
}

function ownerMessage(owner: LockOwner, ownerPath: string): string {
  const named = `another run (pid ${owner.pid} on ${owner.host}, started ${owner.startedAt}) is writing to this output`;
  // A process on this host holds the lock while it lives; one elsewhere cannot be checked.
  return owner.host === hostname() ? named : `${named}; remove ${ownerPath} only if that process is gone`;
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LockOwner;
  } catch {
    return undefined; // none, or half-written by a run that has just taken the lock or was killed
  }
}
