// An example custom sink: images under {output}/images/, and one JSON line per sample in
// {output}/manifest.jsonl with its caption, size and SHA-256.
//
//   node dist/pipeline.js --input rows.parquet --output out --sink ./examples/sinks/manifest-sink.mjs
//
// A sink module exports a factory (default export, or `createSink`). The pipeline calls it
// once with a context, then `write(sample)` for each sample (at most `concurrency` pending
// at once) and `close()` once at the end. `write` resolves when the sample is stored.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { join } from 'node:path';

/** @type {import('photo-concept-pipeline').SinkFactory} */
export default async function createManifestSink({ output, log }) {
  const images = join(output, 'images');
  await mkdir(images, { recursive: true });
  const manifest = createWriteStream(join(output, 'manifest.jsonl'), { flags: 'a' });
  await once(manifest, 'open');
  let count = 0;
  return {
    concurrency: 4,
    async write(sample) {
      const name = `${sample.id}.${sample.extension}`;
      const temporary = join(images, `.${name}.tmp`);
      await writeFile(temporary, sample.image);
      await rename(temporary, join(images, name));
      const line = {
        id: sample.id,
        file: `images/${name}`,
        caption: sample.caption,
        width: sample.width,
        height: sample.height,
        original_width: sample.originalWidth,
        original_height: sample.originalHeight,
        sha256: createHash('sha256').update(sample.image).digest('hex'),
        url: sample.url,
      };
      if (!manifest.write(`${JSON.stringify(line)}\n`)) await once(manifest, 'drain');
      count++;
      return { bytesWritten: sample.image.length };
    },
    async close() {
      manifest.end();
      await finished(manifest);
      log(`manifest-sink: ${count} samples in ${join(output, 'manifest.jsonl')}`);
    },
  };
}
