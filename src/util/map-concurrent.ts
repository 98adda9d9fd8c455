/**
 * An unordered, bounded, concurrent map over an async iterable: the one operator every
 * concurrent stage is built on (shaped like Node's own `Readable.map(fn, { concurrency,
 * signal })`, but unordered and with a clean stop).
 *
 * At most `concurrency` items are held at once, counting both those being worked on and
 * finished results the consumer has not taken yet. A full stage stops pulling from the
 * one before it, so backpressure reaches the row source and memory stays bounded.
 * A slot is refilled as soon as its result is handed on, not when the consumer next
 * asks: the consumer may take a while (a sink stage starts its write first), and a stage
 * that waited for it would leave the slot idle meanwhile.
 * Results are yielded as they finish, so one slow download never holds back the others
 * (Node's `Readable.map` keeps input order and would).
 *
 * `fn` is given a signal that aborts when the given `signal` does, or when the operator
 * stops early (a task failed, the source failed, or the consumer stopped taking results).
 * After an early stop the operator pulls nothing more and waits for the tasks in flight
 * to settle before it ends, so work handed to a sink is over before anyone closes it.
 */
import { setMaxListeners } from 'node:events';

export type AsyncTransform<In, Out> = (source: AsyncIterable<In>) => AsyncGenerator<Out>;

export interface MapOptions {
  /** Items held at once (in work or finished and not yet taken). */
  readonly concurrency: number;
  /** Aborts the signal every task is given; the operator itself goes on. */
  readonly signal?: AbortSignal;
}

export type MapFunction<In, Out> = (item: In, options: { readonly signal: AbortSignal }) => Out | Promise<Out>;

export function mapConcurrent<In, Out>(fn: MapFunction<In, Out>, { concurrency, signal: outer }: MapOptions): AsyncTransform<In, Out> {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  }
  return async function* mapped(source) {
    const iterator = source[Symbol.asyncIterator]();
    const controller = new AbortController();
    // Every task in flight may listen to it: more than the default 10 is expected.
    setMaxListeners(0, controller.signal);
    const abortTasks = () => controller.abort(outer?.reason);
    if (outer?.aborted) abortTasks();
    else outer?.addEventListener('abort', abortTasks, { once: true });

    const results: Out[] = [];
    const running = new Set<Promise<void>>();
    let pulling = false;
    let exhausted = false;
    let stopped = false;
    let failure: { error: unknown } | undefined;
    // Every state change pulls into a free slot and calls `wake`; the loop re-checks all
    // state before it waits again, so a change that happens while the consumer holds a
    // result is never lost.
    let wake: () => void = () => {};
    const fill = () => {
      if (!pulling && !exhausted && !stopped && !failure && running.size + results.length < concurrency) pull();
    };
    const changed = () => {
      fill();
      wake();
    };

    const start = (item: In) => {
      const task: Promise<void> = Promise.resolve()
        .then(() => fn(item, { signal: controller.signal }))
        .then(
          (result) => void results.push(result),
          (error: unknown) => void (failure ??= { error }),
        )
        .finally(() => {
          running.delete(task);
          changed();
        });
      running.add(task);
    };

    const pull = () => {
      pulling = true;
      iterator.next().then(
        (next) => {
          pulling = false;
          if (next.done) exhausted = true;
          else if (!stopped) start(next.value); // an item that arrives after a stop is dropped
          changed();
        },
        (error: unknown) => {
          pulling = false;
          exhausted = true;
          failure ??= { error };
          changed();
        },
      );
    };

    try {
      for (;;) {
        if (failure) throw failure.error;
        fill();
        if (results.length > 0) {
          const result = results.shift() as Out;
          fill(); // its slot is free once it is handed on
          yield result;
          continue;
        }
        if (exhausted && running.size === 0) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      stopped = true;
      outer?.removeEventListener('abort', abortTasks);
      // Stopped early: tell the tasks in flight, let the source release what it holds,
      // and end only when both are done.
      if (running.size > 0) controller.abort(new Error('the stage stopped'));
      await Promise.all([Promise.allSettled(running), exhausted ? undefined : iterator.return?.()]);
    }
  };
}
