/**
 * Compressed text inputs: `.gz` (Node's zlib) and `.zst` (fzstd: Node 20 has no zstd of its
 * own), decompressed as they stream, so a compressed NDJSON or CSV file is read like a
 * plain one and never whole. Which one a file is comes from its name (compression.ts).
 */
import { Readable, Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import type { Compression } from './compression.js';

/**
 * `stream`'s bytes decompressed (the reader names the file if they are corrupt). Nothing is
 * read before the reader asks, so an error cannot come before it listens for one.
 */
export function decompressed(stream: Readable, compression: Compression): Readable {
  return Readable.from(inflate(stream, compression), { objectMode: false });
}

async function* inflate(stream: Readable, compression: Compression): AsyncGenerator<Buffer> {
  const decoder = compression === 'gzip' ? createGunzip() : zstdStream();
  stream.once('error', (error) => decoder.destroy(error));
  try {
    yield* stream.pipe(decoder) as AsyncIterable<Buffer>;
  } finally {
    stream.destroy();
  }
}

function zstdStream(): Transform {
  let transform!: Transform;
  const decoder = new Decompress((data) => void transform.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
  transform = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      try {
        decoder.push(chunk);
        done();
      } catch (error) {
        done(error as Error);
      }
    },
    flush(done) {
      try {
        decoder.push(new Uint8Array(0), true);
        done();
      } catch (error) {
        done(error as Error);
      }
    },
  });
  return transform;
}
