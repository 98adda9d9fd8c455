// Freed allocator memory handed back to the OS during a run (glibc's malloc_trim).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { isGlibc } from '../dist/cli/process-settings.js';

const isGlibcLinux = process.platform === 'linux' && isGlibc();

test('memory freed in the middle of the heap goes back to the OS', { skip: !isGlibcLinux && 'glibc Linux only' }, () => {
  // In a child: its resident size is what is measured. 80 MB of 4 KB buffers, then all but
  // every 16th freed, so the free memory lies between chunks still in use (glibc by itself
  // gives back only the top of the heap).
  const child = spawnSync(
    process.execPath,
    [
      '--expose-gc',
      '--input-type=module',
      '-e',
      `
      import { releaseFreedMemory } from './dist/util/release-memory.js';
      const buffers = Array.from({ length: 20_000 }, () => Buffer.allocUnsafeSlow(4096).fill(1));
      const kept = buffers.filter((_, i) => i % 16 === 0);
      buffers.length = 0;
      globalThis.gc();
      // V8 frees array buffers' memory on a background thread: wait until it has (5 MB kept).
      while (process.memoryUsage().arrayBuffers > 10 * 2 ** 20) await new Promise((resolve) => setTimeout(resolve, 20));
      const before = process.memoryUsage().rss;
      const released = releaseFreedMemory();
      const after = process.memoryUsage().rss;
      console.log(JSON.stringify({ released, freedMiB: (before - after) / 2 ** 20, kept: kept.length }));
      `,
    ],
    { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname },
  );
  assert.equal(child.status, 0, child.stderr);
  const { released, freedMiB } = JSON.parse(child.stdout);
  assert.equal(released, true);
  // 75 MB were freed; glibc by itself gives back none of it.
  assert.ok(freedMiB > 40, `only ${freedMiB.toFixed(1)} MiB went back to the OS`);
});
