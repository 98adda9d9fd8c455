/**
 * An unordered, bounded, concurrent map over an async iterable: the one operator every
 * concurrent stage is built on.
 *
 * At most `concurrency` items are held at once, counting both those being worked on and
 * finished results the consumer has not taken yet. A full stage stops pulling from the
 * one before it, so backpressure reaches the row source and memory stays bounded.
 * Results are yielded as they finish, so one slow download never holds back the others
 * (Node's `Readable.map` keeps input order and would).
 */
export type AsyncTransform<In, Out> = (source: AsyncIterable<In>) => AsyncGenerator<Out>;

export function mapConcurrent<In, Out>(
  fn: (item: In) => Out | Promise<Out>,
  concurrency: number,
): AsyncTransform<In, Out> {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  }
  return async function* mapped(source) {
    const iterator = source[Symbol.asyncIterator]();
    const results: Out[] = [];
    let running = 0;
    let pulling = false;
    let exhausted = false;
    let failure: { error: unknown } | undefined;
    // Every state change calls `wake`; the loop re-checks all state before it waits
    // again, so a change that happens while the consumer holds a result is never lost.
    let wake: () => void = () => {};
    const changed = () => wake();

    const start = (item: In) => {
      running++;
      Promise.resolve()
        .then(() => fn(item))
        .then(
          (result) => void results.push(result),
          (error: unknown) => void (failure ??= { error }),
        )
        .finally(() => {
          running--;
          changed();
        });
    };

    const pull = () => {
      pulling = true;
      iterator.next().then(
        (next) => {
          pulling = false;
          if (next.done) exhausted = true;
          else start(next.value);
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
        if (!pulling && !exhausted && running + results.length < concurrency) pull();
        if (results.length > 0) {
          yield results.shift() as Out;
          continue;
        }
        if (exhausted && running === 0) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      // The consumer stopped early or a task failed: let the source release what it holds.
      if (!exhausted) await iterator.return?.();
    }
  };
}
