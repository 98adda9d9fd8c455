// The faulty image server (faulty-server.mjs) and a temporary folder that most test files
// share across their tests. The bindings are live: a file calls `useServerAndFolder()`
// once, and its tests read `server` and `work` once they run.
import { after, before } from 'node:test';
import { startFaultyServer } from './faulty-server.mjs';
import { tempDir } from './run.mjs';

/** @type {Awaited<ReturnType<typeof startFaultyServer>>} */
export let server;
/** @type {Awaited<ReturnType<typeof tempDir>>} */
export let work;

/** Starts both before the file's tests and closes them after. */
export function useServerAndFolder() {
  before(async () => {
    server = await startFaultyServer();
    work = await tempDir();
  });
  after(async () => {
    await server.close();
    await work.cleanup();
  });
}
