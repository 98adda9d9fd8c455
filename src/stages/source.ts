/**
 * Stage 1, the rows: the row source's items (sources/open.ts), each counted as read, until
 * the run is told to stop, even while the source waits for input (stdin).
 */
import type { RowSource } from '../sources/open.js';
import type { Item } from '../types.js';

export function sourceStage(source: RowSource, stop: AbortSignal | undefined, onRead: () => void): AsyncGenerator<Item> {
  return counted(untilStopped(source.items, stop), onRead);
}

/**
 * Ends the rows when `stop` fires, even while the source waits for input.
 *
 * Each row races a fresh stop promise whose listener is removed right after: racing one
 * long-lived pending promise instead would attach a reaction to it per row, and over
 * 567k rows those add up (measured: RSS grew by hundreds of megabytes).
 */
async function* untilStopped(items: AsyncIterable<Item>, stop: AbortSignal | undefined): AsyncGenerator<Item> {
  if (!stop) return yield* items;
  const iterator = items[Symbol.asyncIterator]();
  try {
    while (!stop.aborted) {
      let onAbort: () => void = () => {};
      const stopped = new Promise<'stopped'>((resolve) => {
        onAbort = () => resolve('stopped');
        stop.addEventListener('abort', onAbort, { once: true });
      });
      let next: IteratorResult<Item> | 'stopped';
      try {
        next = await Promise.race([iterator.next(), stopped]);
      } finally {
        stop.removeEventListener('abort', onAbort);
      }
      if (next === 'stopped' || next.done) return;
      yield next.value;
    }
  } finally {
    // Not awaited: a source blocked on input would hold the run open (the run closes the
    // source itself when it ends).
    void iterator.return?.()?.catch(() => {});
  }
}

async function* counted(items: AsyncIterable<Item>, count: () => void): AsyncGenerator<Item> {
  for await (const item of items) {
    count();
    yield item;
  }
}
