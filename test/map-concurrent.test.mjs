// The bounded concurrent operator every stage is built on.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { mapConcurrent } from '../dist/util/map-concurrent.js';

/**
 * A source of `count` numbers that records how far it was read and whether it was released.
 * @param {number} count
 */
function countingSource(count) {
  const state = { pulled: 0, released: false };
  async function* source() {
    try {
      for (let i = 0; i < count; i++) {
        state.pulled++;
        yield i;
      }
    } finally {
      state.released = true;
    }
  }
  return { state, source: source() };
}

describe('mapConcurrent', () => {
  test('holds at most `concurrency` items, in work and finished-but-not-taken together', async () => {
    const { source } = countingSource(40);
    let held = 0;
    let mostHeld = 0;
    const mapped = mapConcurrent(async (/** @type {number} */ n) => {
      held++;
      mostHeld = Math.max(mostHeld, held);
      await sleep(n % 3);
      return n;
    }, { concurrency: 4 })(source);
    const seen = [];
    for await (const n of mapped) {
      seen.push(n);
      held--; // taken by the consumer, who is slow
      await sleep(2);
    }
    assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i));
    assert.equal(mostHeld, 4);
  });

  test('a slot freed by handing a result on is refilled before the consumer asks again', async () => {
    const { source } = countingSource(3);
    let started = 0;
    const mapped = mapConcurrent(async (/** @type {number} */ n) => {
      started++;
      return n;
    }, { concurrency: 1 })(source);
    const iterator = mapped[Symbol.asyncIterator]();
    assert.deepEqual(await iterator.next(), { done: false, value: 0 });
    // The consumer works on item 0 (a sink stage starts its write) before it asks for more.
    await sleep(20);
    assert.equal(started, 2, 'item 1 started while the consumer held item 0');
    assert.deepEqual(await iterator.next(), { done: false, value: 1 });
    assert.deepEqual(await iterator.next(), { done: false, value: 2 });
    assert.equal((await iterator.next()).done, true);
  });

  test('yields results as they finish, not in input order', async () => {
    const { source } = countingSource(5);
    const mapped = mapConcurrent(async (/** @type {number} */ n) => {
      if (n === 0) await sleep(100);
      return n;
    }, { concurrency: 5 })(source);
    const order = [];
    for await (const n of mapped) order.push(n);
    assert.equal(order.at(-1), 0, `the slow first item comes last: ${order}`);
    assert.deepEqual([...order].sort(), [0, 1, 2, 3, 4]);
  });

  test('a consumer that stops early releases the source, aborts the tasks in flight and waits for them', async () => {
    const { state, source } = countingSource(1000);
    /** @type {Array<{ aborted: boolean, settled: boolean }>} */
    const tasks = [];
    const mapped = mapConcurrent(async (/** @type {number} */ n, { signal }) => {
      const task = { aborted: false, settled: false };
      tasks.push(task);
      if (n > 0) {
        await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        task.aborted = signal.aborted;
      }
      await sleep(20); // work that takes a moment to wind down
      task.settled = true;
      return n;
    }, { concurrency: 3 })(source);
    for await (const n of mapped) {
      assert.equal(n, 0);
      break;
    }
    assert.ok(state.released, 'the source was released');
    assert.ok(state.pulled <= 4, `pulled ${state.pulled}, no more than it could hold`);
    assert.ok(tasks.length > 1);
    for (const task of tasks) assert.ok(task.settled, 'every task settled before the loop ended');
    for (const task of tasks.slice(1)) assert.ok(task.aborted, 'tasks in flight saw the signal');
  });

  test("a task's failure ends the stream with that error, after the other tasks settle", async () => {
    const { state, source } = countingSource(100);
    let settled = 0;
    const mapped = mapConcurrent(async (/** @type {number} */ n, { signal }) => {
      if (n === 3) throw new Error('task 3 failed');
      await Promise.race([sleep(1000), new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))]);
      settled++;
      return n;
    }, { concurrency: 4 })(source);
    const started = Date.now();
    await assert.rejects(async () => {
      for await (const _ of mapped);
    }, /task 3 failed/);
    assert.equal(settled, 3, 'the three others settled first');
    assert.ok(Date.now() - started < 900, 'they were aborted, not waited out');
    assert.ok(state.released);
  });

  test("the source's failure ends the stream with that error", async () => {
    async function* broken() {
      yield 1;
      throw new Error('source broke');
    }
    const results = [];
    await assert.rejects(async () => {
      for await (const n of mapConcurrent((/** @type {number} */ n) => n * 2, { concurrency: 2 })(broken())) results.push(n);
    }, /source broke/);
    assert.ok(results.length <= 1);
  });

  test('the given signal reaches every task, and the stream goes on', async () => {
    const { source } = countingSource(6);
    const stop = new AbortController();
    const mapped = mapConcurrent(async (/** @type {number} */ n, { signal }) => {
      if (n === 2) stop.abort();
      await sleep(5);
      return signal.aborted ? `${n} aborted` : `${n}`;
    }, { concurrency: 1, signal: stop.signal })(source);
    const results = [];
    for await (const result of mapped) results.push(result);
    assert.deepEqual(results, ['0', '1', '2 aborted', '3 aborted', '4 aborted', '5 aborted']);
  });

  test('concurrency must be a positive whole number', () => {
    for (const concurrency of [0, -1, 1.5, NaN]) {
      assert.throws(() => mapConcurrent((x) => x, { concurrency }), RangeError);
    }
  });
});
