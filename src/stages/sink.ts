/**
 * Stage 4, the sink: `encoded` items in, `saved` items out once the sink says the sample
 * is written. A sink error for one sample fails that sample; an error that means the
 * output itself is unusable (disk full, read-only, no permission) stops the run, since
 * every later sample would fail the same way.
 */
import { SinkError, errorMessage } from '../errors.js';
import { extensionOf } from '../image/encode.js';
import type { Sample, Sink } from '../sinks/contract.js';
import { failed, type Encoded, type Item } from '../types.js';
import { mapConcurrent, type AsyncTransform } from '../util/map-concurrent.js';

const FATAL_CODES = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EIO']);

export function sinkStage(sink: Sink): AsyncTransform<Item, Item> {
  return mapConcurrent(async (item: Item): Promise<Item> => {
    if (item.kind !== 'encoded') return item;
    const { row, attempts, bytesFetched } = item;
    let bytesWritten: number;
    try {
      const result = await sink.write(toSample(item));
      bytesWritten = result?.bytesWritten ?? item.image.length;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException)?.code;
      if (error instanceof SinkError || (code !== undefined && FATAL_CODES.has(code))) {
        throw new SinkError(`cannot write to the output: ${errorMessage(error)}`, { cause: error });
      }
      // `transient: false` (SampleRefused, or a custom sink's own error) means no later
      // attempt can succeed, so the sample is not retried on the next run.
      const reason = (error as { transient?: unknown })?.transient === false ? 'sink_refused' : 'sink_error';
      return failed(row, reason, `row ${row.index} (id ${row.id}): sink ${reason === 'sink_refused' ? 'refused it' : 'failed'}: ${errorMessage(error)}`, { attempts, bytesFetched });
    }
    return { kind: 'saved', row, width: item.width, height: item.height, bytesWritten, bytesFetched, attempts };
  }, sink.concurrency ?? 1);
}

function toSample(item: Encoded): Sample {
  return {
    id: item.row.id,
    caption: item.row.caption,
    image: item.image,
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
