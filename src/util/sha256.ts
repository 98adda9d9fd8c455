/**
 * SHA-256 of a buffer as lower-case hex, computed off the main thread (WebCrypto's digest
 * runs on libuv's pool): a 12 MB original takes ~25 ms to hash, which on the event loop
 * would stall every request in flight.
 */
import { webcrypto } from 'node:crypto';

export async function sha256Hex(data: Uint8Array): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', data)).toString('hex');
}
