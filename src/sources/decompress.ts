/**
 * Compressed text inputs: `.gz` (Node's zlib) and `.zst` (fzstd: Node 20 has no zstd of its
 * own), decompressed as they stream, so a compressed NDJSON or CSV file is read like a
 * plain one and never whole. Which one a file is comes from its name (compression.ts).
 *
 * A damaged file gives its rows up to the damage before its error, so they are recorded:
 * - the output is read so that what the decoder gave before failing still comes out
 *   (Node's own stream iterator drops what is buffered once the stream fails);
 * - zlib works in rounds of GZIP_ROUND_BYTES of output, and Node drops the output of the
 *   round that fails: rounds of 4 KiB lose at most the last 4 KiB of text before the point
 *   where zlib notices the damage (a round of the default 16 KiB holds a hundred dataset
 *   rows). Smaller rounds cost more: about 9 s per GB of text at 4 KiB, 35 s at 1 KiB.
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

/** Output bytes per zlib round: what a damaged .gz can lose before its error (see above). */
export const GZIP_ROUND_BYTES = 4096;

async function* inflate(stream: Readable, compression: Compression): AsyncGenerator<Buffer> {
  const decoder = compression === 'gzip' ? createGunzip({ chunkSize: GZIP_ROUND_BYTES }) : zstdStream();
  stream.once('error', (error) => decoder.destroy(error));
  try {
    yield* chunksBeforeError(stream.pipe(decoder));
  } finally {
    stream.destroy();
    decoder.destroy();
  }
}

/**
 * The chunks of `readable`, every one it gave before an error included, then its error.
 * `read()` still returns what is buffered after the stream has failed; the stream stays
 * paused, so it decodes no further ahead than its buffer.
 */
async function* chunksBeforeError(readable: Readable): AsyncGenerator<Buffer> {
  let wake = (): void => {};
  const onChange = (): void => wake();
  // Listening for 'error' also keeps it from being an uncaught one; `errored` is set at once.
  readable.on('error', onChange).on('readable', onChange).on('end', onChange).on('close', onChange);
  try {
    while (true) {
      let chunk: Buffer | null;
      while ((chunk = readable.read() as Buffer | null) !== null) yield chunk;
      if (readable.errored) throw readable.errored;
      if (readable.readableEnded || readable.destroyed) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    readable.off('error', onChange).off('readable', onChange).off('end', onChange).off('close', onChange);
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
