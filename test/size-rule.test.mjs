import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shortestSideSize } from '../dist/index.js';
import { roundHalfEven } from '../dist/image/size-rule.js';

// Expected sizes computed by running the reference's Python rule (python3):
//   k = 1024 / min(W, H); W, H = int(round(W * k / 64)) * 64, int(round(H * k / 64)) * 64
const TABLE = [
  [2560, 1600, 1664, 1024],
  [1600, 2560, 1024, 1664],
  [6000, 4000, 1536, 1024],
  [4000, 6000, 1024, 1536],
  [1024, 1024, 1024, 1024],
  [500, 500, 1024, 1024], // upscaled, as the reference does
  [3000, 1993, 1536, 1024],
  [6028, 3391, 1792, 1024], // 1820.3 / 64 = 28.4 -> 28
  [1920, 1080, 1792, 1024],
  [4352, 2448, 1792, 1024],
  [1100, 731, 1536, 1024],
  [799, 1200, 1024, 1536],
  [1280, 800, 1664, 1024], // 1638.4 -> 1664
  [5000, 1000, 5120, 1024], // a panorama keeps its shape
];

test('the shortest-side rule gives the reference sizes', () => {
  for (const [width, height, expectedWidth, expectedHeight] of TABLE) {
    assert.deepEqual(shortestSideSize({ width, height }, 1024, 64), { width: expectedWidth, height: expectedHeight }, `${width}x${height}`);
  }
});

test('rounding is half to even, like Python 3', () => {
  assert.deepEqual([0.5, 1.5, 2.5, 3.5, -0.5, 2.4, 2.6].map(roundHalfEven), [0, 2, 2, 4, 0, 2, 3]);
  // Sides landing exactly on a half multiple: 1056 / 64 = 16.5 -> 16, 1120 / 64 = 17.5 -> 18.
  assert.deepEqual(shortestSideSize({ width: 1056, height: 1000 }, 1000, 64), { width: 1024, height: 1024 });
  assert.deepEqual(shortestSideSize({ width: 1120, height: 1000 }, 1000, 64), { width: 1152, height: 1024 });
});

test('other resolutions and multiples', () => {
  assert.deepEqual(shortestSideSize({ width: 2560, height: 1600 }, 512, 64), { width: 832, height: 512 });
  assert.deepEqual(shortestSideSize({ width: 2560, height: 1600 }, 768, 8), { width: 1232, height: 768 });
  assert.deepEqual(shortestSideSize({ width: 4000, height: 10 }, 1024, 64), { width: 409600, height: 1024 });
});
