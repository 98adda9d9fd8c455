/**
 * The report of an output that queue workers share: the outcomes come from the queue's
 * Redis state (its `outcomes`, `skips` and `slow-downs` hashes, read a page at a time with
 * HSCAN), the images and captions from the shared output folder.
 */
import { existsSync } from 'node:fs';
import { extensionOf } from '../image/encode.js';
import { connectRedis, keysOf } from '../queue/connection.js';
import type { StoredOutcome } from '../queue/redis-state.js';
import { readSettings } from '../queue/settings.js';
import { DirLayout } from '../sinks/dir-layout.js';
import { simpleTunerConfig } from '../sinks/simpletuner.js';
import type { ImageFormat } from '../types.js';
import { DEFAULT_ALIGNMENT, type ResolutionType } from './buckets.js';
import { HashSample, dirThumbnails, shardThumbnails } from './contact-sheet.js';
import { ReportBuilder, type OutcomeRow } from './gather.js';
import type { ReportData } from './html/data.js';
import type { DatasetReportOptions } from './local.js';

/** Fields asked for per HSCAN round trip. */
const PAGE = 1_000;
const ORIGINAL_EXTENSIONS = ['jpg', 'png', 'webp', 'gif', 'tif', 'avif', 'heif'];

export async function gatherShared(redisUrl: string, queue: string, output: string, options: DatasetReportOptions): Promise<ReportData> {
  const redis = await connectRedis(redisUrl, 'report');
  try {
    const keys = keysOf(queue);
    const settings = await readSettings(redis, keys);
    const missing: string[] = [];
    if (!settings) missing.push('the output settings: no worker has run on this queue yet');
    const rule = settings ?? { resize: 'shortest' as const, resolution: 1024, megapixels: 1, round: 64, upscale: true };
    const [dataset] = simpleTunerConfig(output, rule) as Array<{ resolution: number; resolution_type: ResolutionType }>;
    const sink = settings?.sink ?? 'unknown';
    const builder = new ReportBuilder({
      title: `${output} (queue ${queue})`,
      sink,
      batchSize: options.batchSize,
      buckets: { resolution: dataset!.resolution, resolutionType: dataset!.resolution_type, alignment: DEFAULT_ALIGNMENT },
      resolutionNote: `Resolution ${dataset!.resolution}, resolution_type ${dataset!.resolution_type}, as a SimpleTuner config for the workers' --resize would set them; sides snapped to multiples of ${DEFAULT_ALIGNMENT}.`,
      storedRows: false,
    });
    const picked = new HashSample<null>(sink === 'dir' ? options.thumbnails : 0);
    let outcomes = 0;
    for await (const [id, text] of scan(redis, keys.outcomes)) {
      const stored = JSON.parse(text) as StoredOutcome;
      builder.outcome(outcomeRow(id, stored));
      outcomes++;
      if (stored.s === 'saved') picked.offer(id, null);
    }
    if (outcomes === 0 && (await redis.hlen(keys.samples)) > 0) missing.push('the outcomes themselves: the workers of this queue recorded only saved or failed, before this version');
    for await (const [id, text] of scan(redis, keys.skips)) {
      const skip = JSON.parse(text) as { t: number; r: string; u: string };
      builder.outcome({ id, status: 'skipped', reason: skip.r, url: skip.u, at: skip.t });
    }
    const slowDowns = new Map(Object.entries(await redis.hgetall(keys.slowDowns)).map(([host, count]) => [host, Number(count)]));
    let thumbnails: ReportData['thumbnails'] = [];
    if (sink === 'dir' && settings) {
      const layout = new DirLayout(output, settings.subfolders, settings.format as ImageFormat | 'original');
      const extensions = settings.format === 'original' ? ORIGINAL_EXTENSIONS : [extensionOf(settings.format as ImageFormat)];
      const files = picked.picked.flatMap(({ id }) => {
        const file = extensions.map((extension) => layout.relative(id, extension)).find((relative) => existsSync(`${output}/${relative}`));
        return file === undefined ? [] : [{ id, value: file }];
      });
      thumbnails = await dirThumbnails(output, files);
    } else if (sink === 'webdataset' || sink === 'parquet') {
      thumbnails = await shardThumbnails(output, sink === 'webdataset' ? 'tar' : 'parquet', options.thumbnails);
    }
    return builder.finish({ thumbnails, slowDowns, missing });
  } finally {
    redis.disconnect();
  }
}

/** A hash's fields and values, a page at a time. */
async function* scan(redis: import('ioredis').Redis, key: string): AsyncGenerator<[string, string]> {
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(key, cursor, 'COUNT', PAGE);
    for (let i = 0; i + 1 < flat.length; i += 2) yield [flat[i]!, flat[i + 1]!];
    cursor = next;
  } while (cursor !== '0');
}

function outcomeRow(id: string, stored: StoredOutcome): OutcomeRow {
  const row: Record<string, unknown> = { id, status: stored.s, at: stored.t, bytesFetched: stored.f };
  if (stored.s === 'saved') {
    Object.assign(row, { host: stored.h, width: stored.w, height: stored.ht, originalWidth: stored.ow, originalHeight: stored.oh, bytesWritten: stored.b, captionSource: stored.cs, captionWords: stored.cw });
  } else {
    Object.assign(row, { reason: stored.r, url: stored.u, detail: stored.d });
  }
  return Object.fromEntries(Object.entries(row).filter(([, value]) => value !== undefined)) as unknown as OutcomeRow;
}
