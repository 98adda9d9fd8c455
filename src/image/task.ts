/**
 * One image, on an image thread (pool.ts): the fetched body's SHA-256 (the metadata's
 * `original_sha256`) and the input's hash to check (`--verify-hash-column`, `--hash`), the
 * decode, resize and encode (encode.ts), the stored image's SHA-256; the body is handed
 * back to the main thread to be freed (util/thread-pool.ts, handBack).
 */
import { createHash } from 'node:crypto';
import { workerData } from 'node:worker_threads';
import type { ExpectedHash, FailureReason, HashAlgorithm, StoredFormat } from '../types.js';
import { handBack } from '../util/thread-pool.js';
import { encodeImage } from './encode.js';
import type { ImageOptions } from './options.js';
import type { Size } from './size-rule.js';

export interface ImageTask {
  readonly body: Uint8Array;
  readonly originalSize?: Size;
  readonly expectedHash?: ExpectedHash;
}

export type EncodeOutcome =
  | {
      readonly ok: true;
      readonly image: Uint8Array;
      readonly format: StoredFormat;
      readonly width: number;
      readonly height: number;
      readonly originalWidth: number;
      readonly originalHeight: number;
      /** SHA-256 of the stored image, and of the fetched bytes. */
      readonly sha256: string;
      readonly originalSha256: string;
    }
  | { readonly ok: false; readonly reason: FailureReason; readonly detail: string };

/** The image options of the run, given to the thread once (pool.ts). */
const options = workerData as ImageOptions;

export default async function encodeTask({ body, originalSize, expectedHash }: ImageTask): Promise<EncodeOutcome> {
  const input = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const originalSha256 = sha(input, 'sha256');
  if (expectedHash) {
    const digest = expectedHash.algorithm === 'sha256' ? originalSha256 : sha(input, expectedHash.algorithm);
    if (digest !== expectedHash.hex) {
      return handBack({ ok: false, reason: 'hash_mismatch', detail: `the fetched bytes have ${expectedHash.algorithm} ${digest}, the input says ${expectedHash.hex}${otherAlgorithmHint(expectedHash)}` }, [input]);
    }
  }
  const result = await encodeImage(input, options, originalSize);
  // sharp is done with the body once its promise settles: it goes back to the main thread
  // with the encoded image, to be freed there (or as the image, when kept byte for byte).
  if (!result.ok) return handBack(result, [input]);
  const { ok, image, ...sizes } = result;
  const storedAsFetched = image === input;
  const outcome = { ok, ...sizes, image: new Uint8Array(image.buffer, image.byteOffset, image.byteLength), sha256: storedAsFetched ? originalSha256 : sha(image, 'sha256'), originalSha256 };
  return handBack(outcome, [image, input]);
}

function sha(data: Uint8Array, algorithm: HashAlgorithm): string {
  return createHash(algorithm).update(data).digest('hex');
}

/** Hex digits of each digest. */
const HEX_LENGTH: Readonly<Record<HashAlgorithm, number>> = { md5: 32, sha256: 64, sha512: 128 };

/** When the input's value is the length of another algorithm's digest, the likely fix (`--hash`). */
function otherAlgorithmHint({ algorithm, hex }: ExpectedHash): string {
  if (hex.length === HEX_LENGTH[algorithm]) return '';
  const likely = (Object.keys(HEX_LENGTH) as HashAlgorithm[]).find((other) => HEX_LENGTH[other] === hex.length);
  return likely ? ` (${hex.length} hex digits, the length of ${likely}: --hash ${likely}?)` : '';
}
