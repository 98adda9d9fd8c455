/**
 * The `webdataset` sink: tar shards `{shard:05d}.tar` of `--samples-per-shard` samples,
 * each sample as `{key}.{ext}`, `{key}.txt` (caption, when it has one) and `{key}.json`
 * (the row's columns with the stored size and hash), written with tar-stream. The key is the id; WebDataset
 * splits a member name at its first dot, so an id with a dot is refused for that sample.
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { finished } from 'node:stream/promises';
import tar from 'tar-stream';
import { writeError } from '../errors.js';
import { temporaryName } from '../util/atomic-file.js';
import { SampleRefused, type SinkFactory } from './contract.js';
import { createShardedSink, type ShardFormat, type ShardWriter } from './sharded.js';

const tarShards: ShardFormat = {
  name: 'webdataset',
  extension: 'tar',
  open(path): ShardWriter {
    const temporary = join(dirname(path), temporaryName(basename(path)));
    const pack = tar.pack();
    const file = createWriteStream(temporary);
    // The first error of either stream (a full disk) breaks the shard: both are torn down
    // and every pending or later step rejects with it, instead of an unhandled 'error'.
    let failure: Error | undefined;
    let rejectBroken: (error: Error) => void = () => {};
    const broken = new Promise<never>((_, reject) => (rejectBroken = reject));
    broken.catch(() => {});
    const fail = (error: unknown) => {
      if (failure) return;
      failure = writeError(path, error);
      rejectBroken(failure);
      pack.destroy();
      file.destroy();
    };
    pack.on('error', fail);
    file.on('error', fail);
    pack.pipe(file);
    const mtime = new Date();
    // A broken pack throws "already finalized or destroyed": the cause is `failure`.
    const entry = (name: string, data: Buffer) =>
      Promise.race([
        broken,
        new Promise<void>((resolve, reject) => {
          if (failure) return reject(failure);
          pack.entry({ name, size: data.length, mtime, mode: 0o644 }, data, (error) => (error ? reject(failure ?? error) : resolve()));
        }),
      ]);
    return {
      async append(sample, described) {
        if (sample.id.includes('.')) throw new SampleRefused(`id ${JSON.stringify(sample.id)} has a dot: WebDataset keys cannot`);
        const json = Buffer.from(`${JSON.stringify({ ...sample.row, ...described, shard: undefined, extra: undefined })}\n`);
        // A sample without a caption (--missing-captions keep) has no .txt member; its .json says caption null.
        const caption = sample.caption === null ? undefined : Buffer.from(sample.caption);
        await entry(`${sample.id}.${sample.extension}`, sample.image);
        if (caption) await entry(`${sample.id}.txt`, caption);
        await entry(`${sample.id}.json`, json);
        return sample.image.length + (caption?.length ?? 0) + json.length;
      },
      async finish() {
        if (failure) throw failure;
        pack.finalize();
        await Promise.race([finished(file), broken]);
        await rename(temporary, path).catch((error: unknown) => Promise.reject(writeError(path, error)));
      },
      async abort() {
        pack.destroy();
        file.destroy();
        await finished(file).catch(() => {});
        await rm(temporary, { force: true });
      },
    };
  },
};

export const createWebDatasetSink: SinkFactory = (context) => createShardedSink(context, tarShards);
