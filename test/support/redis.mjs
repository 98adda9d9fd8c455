// A real redis-server (Debian's package) on a free loopback port, for the queue tests.
// It keeps its data in an append-only file, fsynced on every write, so a restart (the
// "Redis went away" test) comes back with everything it had.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** Whether redis-server is installed (.ci/run installs it). */
export const HAVE_REDIS = spawnSync('redis-server', ['--version']).status === 0;

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = server.address();
  await new Promise((resolve) => server.close(() => resolve(undefined)));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export async function startRedis() {
  const dir = await mkdtemp(join(tmpdir(), 'pcp-redis-'));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  /** @type {import('node:child_process').ChildProcess | undefined} */
  let server;
  const start = async () => {
    server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--protected-mode', 'no'], { stdio: 'ignore' });
    const client = new Redis(url, { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
    client.on('error', () => {});
    await client.connect().catch(() => {});
    await client.ping();
    client.disconnect();
  };
  const stop = async () => {
    if (!server || server.exitCode !== null) return;
    const exited = new Promise((resolve) => server?.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    url,
    /** The server's process id (benches read its CPU). */
    get pid() {
      return server?.pid;
    },
    /** A client for the test's own checks. */
    client: () => new Redis(url, { maxRetriesPerRequest: null }),
    /** Stops the server (its data stays on disk) and starts it again after `ms`. */
    async restartAfter(/** @type {number} */ ms) {
      await stop();
      await new Promise((resolve) => setTimeout(resolve, ms));
      await start();
    },
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
