// The task threads (src/util/thread-pool.ts) closed at any moment of their start: a run with
// nothing left to do closes its image and writer threads within milliseconds, and on Node
// 20.19+ a thread still loading its task module through require(esm) then took the whole
// process down ("FATAL ERROR: v8::Module::IsGraphAsync ...").
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

// How long this machine takes to start an image thread and finish a first task is measured
// first; then pools are closed at 80 moments spread over 30% to 75% of that, while the
// thread is loading its module (where the crash was: 7 runs in 10 crashed without the fix,
// none with it), so the moments fit the machine's speed.
const script = `
import { createImagePool } from './dist/image/pool.js';
const pool = () => createImagePool({ concurrency: 4, size: 512, format: 'png' });
const starts = [];
for (let i = 0; i < 3; i++) {
  const started = performance.now();
  const images = pool();
  await images.encode(Buffer.from('not an image'), {});
  starts.push(performance.now() - started);
  await images.close();
}
const start = starts.sort((a, b) => a - b)[1];
for (let i = 0; i < 80; i++) {
  const images = pool();
  await new Promise((resolve) => setTimeout(resolve, start * (0.3 + (0.45 * i) / 80)));
  await images.close();
}
console.log('closed every pool');
`;

test('image threads closed while they start leave the process running', () => {
  const result = spawnSync(process.execPath, ['--input-type=module', '--eval', script], { cwd: new URL('..', import.meta.url), encoding: 'utf8' });
  assert.equal(result.stderr.match(/FATAL ERROR.*/)?.[0], undefined);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout.trim(), 'closed every pool');
});
