// What some tests need that a machine may lack: a tool (redis-server, openssl, chromium,
// python3, unshare) or root. Where it is missing, those tests are skipped with the reason,
// except under CI=true: .ci/run installs every tool, so there a missing one fails the run,
// and a green run can never hide a mode that was not tested.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const IN_CI = process.env.CI === 'true';

/** Whether `command ...args` runs and exits 0 here. */
export function runs(command, ...args) {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

export const IS_ROOT = process.getuid?.() === 0;

/**
 * The `skip` option for tests that need something: false when it is here; the reason when
 * it is not (under CI=true a failing test says so too, once per call).
 * @param {boolean} available @param {string} what e.g. 'redis-server (apt-get install redis-server)'
 * @returns {false | string}
 */
export function unlessMissing(available, what) {
  if (available) return false;
  if (IN_CI) test(`needs ${what}`, () => assert.fail(`${what} is missing; under CI=true every test runs: .ci/run must provide it`));
  return `${what} is missing`;
}
