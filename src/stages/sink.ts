/**
 * Stage 4, the sink: `encoded` items in, `saved` items out once the sink says the sample
 * is written. A sink error for one sample fails that sample; an error that means the
 * output itself is unusable (disk full, read-only, no permission) stops the run, since
 * every later sample would fail the same way.
 */
import { SinkError, errorMessage, isUnusableOutput } from '../errors.js';
import { extensionOf } from '../image/encode.js';
import type { Sample, Sink } from '../sinks/contract.js';
import { failed, type Encoded, type Item } from '../types.js';
import { mapConcurrent, type AsyncTransform } from '../util/map-concurrent.js';

/**
 * @param graceMs after a fatal error stops the pipeline, how long writes already handed
 * to the sink may take to settle before the run stops waiting for them (and closes it).
 */
export function sinkStage(sink: Sink, graceMs: number): AsyncTransform<Item, Item> {
  return mapConcurrent(async (item: Item, { signal }): Promise<Item> => {
    if (item.kind !== 'encoded') return item;
    const { row, attempts, bytesFetched } = item;
    const { sha256 } = item; // hashed on the image thread (image/task.ts)
    let bytesWritten: number;
    try {
      const result = await settleWithin(sink.write(toSample(item, sha256)), signal, graceMs);
      if (result === ABANDONED) {
        return failed(row, 'interrupted', `row ${row.index} (id ${row.id}): the sink's write had not settled ${graceMs / 1000} s after the run stopped`, { attempts, bytesFetched });
      }
      bytesWritten = result?.bytesWritten ?? item.image.length;
    } catch (error) {
      if (error instanceof SinkError) throw error;
      if (isUnusableOutput(error)) throw new SinkError(errorMessage(error), { cause: error });
      // `transient: false` (SampleRefused, or a custom sink's own error) means no later
      // attempt can succeed, so the sample is not retried on the next run.
      const reason = (error as { transient?: unknown })?.transient === false ? 'sink_refused' : 'sink_error';
      return failed(row, reason, `row ${row.index} (id ${row.id}): sink ${reason === 'sink_refused' ? 'refused it' : 'failed'}: ${errorMessage(error)}`, { attempts, bytesFetched });
    }
    const { width, height, originalWidth, originalHeight, originalSha256 } = item;
    return { kind: 'saved', row, width, height, originalWidth, originalHeight, bytesWritten, bytesFetched, attempts, sha256, originalSha256 };
  }, { concurrency: sink.concurrency ?? 1 });
}

const ABANDONED = Symbol('abandoned');

/** `work`'s outcome; or, once `signal` aborts and `graceMs` more pass without one, ABANDONED. */
function settleWithin<T>(work: Promise<T>, signal: AbortSignal, graceMs: number): Promise<T | typeof ABANDONED> {
  let onAbort = () => {};
  let timer: NodeJS.Timeout | undefined;
  const abandoned = new Promise<typeof ABANDONED>((resolve) => {
    onAbort = () => void (timer = setTimeout(() => resolve(ABANDONED), graceMs));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([work, abandoned]).finally(() => {
    signal.removeEventListener('abort', onAbort);
    clearTimeout(timer);
  });
}

function toSample(item: Encoded, sha256: string): Sample {
  return {
    id: item.row.id,
    caption: item.row.caption,
    captionSource: item.row.captionSource,
    image: item.image,
    sha256,
    originalSha256: item.originalSha256,
    format: item.format,
    extension: extensionOf(item.format),
    width: item.width,
    height: item.height,
    originalWidth: item.originalWidth,
    originalHeight: item.originalHeight,
    url: item.row.url,
    row: item.row.columns,
  };
}
