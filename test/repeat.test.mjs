// The timer behind the periodic jobs of a run (metadata.parquet refreshes, memory release).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { repeat } from '../dist/util/repeat.js';

test('repeat: a first call after its own delay, then one per interval, none once stopped', async () => {
  // The first call comes long before the interval (the dir sink's first refresh).
  let early = 0;
  const stopEarly = repeat(() => early++, { firstAfterMs: 10, everyMs: 60_000 });
  await sleep(300);
  stopEarly();
  assert.equal(early, 1);

  let often = 0;
  const stopOften = repeat(() => often++, { firstAfterMs: 10, everyMs: 20 });
  await sleep(300);
  stopOften();
  assert.ok(often >= 3, `${often} calls`);
  const stoppedAt = often;
  await sleep(100);
  assert.equal(often, stoppedAt);
});
