/**
 * SHA-256 of a buffer as lower-case hex, computed off the main thread (WebCrypto's digest
 * runs on libuv's pool): for the encoded image, which sharp hands over whole. A fetched
 * body is hashed as its chunks arrive instead (see BodyBuffer in fetch/http.ts).
 */
import { webcrypto } from 'node:crypto';

export async function sha256Hex(data: Uint8Array): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', data)).toString('hex');
}
