/**
 * Image "URLs" that name files of this machine: `file:///data/a.jpg`, `/data/a.jpg`,
 * `images/a.jpg` (img2dataset issue #428 asks for lists of local images).
 *
 * Read only with `--allow-local-files`: rows usually come from the internet, and a
 * dataset must not be able to make the run read this machine's files (`/etc/shadow` as a
 * "photo", stored into an output someone publishes). Without the flag such a row fails
 * `bad_url`, saying which flag reads it. With it the file is read like a fetched body:
 * bounded by `--max-bytes` (its size is checked before a byte is read), sniffed as an
 * image, hashed; only regular files (a FIFO or a device could block or never end). No
 * host gate: a disk needs no politeness.
 *
 * A relative path has been made absolute by the source (against the input file's folder,
 * sources/open.ts) before it gets here; a path still relative is read from the working
 * directory. A redirect from http(s) to `file:` is refused by the HTTP fetch, flag or not.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../errors.js';
import type { FailureReason } from '../types.js';
import { describeHead, sniffImage } from './sniff.js';

/** Bytes read at a time. */
const READ_BYTES = 1024 * 1024;

/** The outcome of reading one local file, shaped as the fetcher's results are. */
export type LocalFileResult =
  | { readonly ok: true; readonly body: Buffer; readonly bytesFetched: number }
  | { readonly ok: false; readonly reason: FailureReason; readonly detail: string; readonly bytesFetched: number };

/** A row's URL that names a file of this machine: a `file:` URL, or a path (no scheme at all). */
export function isLocalPath(url: string): boolean {
  return /^file:/i.test(url) || !/^[a-z][a-z0-9+.-]*:/i.test(url);
}

/** A path with no scheme that is not absolute: where it leads depends on the folder it is read from. */
export function isRelativePath(url: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:/i.test(url) && !isAbsolute(url);
}

/** @param allowed `--allow-local-files` */
export async function readLocalFile(url: string, allowed: boolean, maxBytes: number): Promise<LocalFileResult> {
  const fail = (reason: FailureReason, detail: string): LocalFileResult => ({ ok: false, reason, detail, bytesFetched: 0 });
  if (!allowed) {
    return fail('bad_url', /^file:/i.test(url)
      ? 'a file: URL names a file of this machine: only --allow-local-files reads those'
      : 'not a URL (no http:// or https://); if it is the path of a file on this machine, --allow-local-files reads it');
  }
  let path: string;
  try {
    path = /^file:/i.test(url) ? fileURLToPath(url) : url;
  } catch (error) {
    return fail('bad_url', `not a file URL of this machine (${errorMessage(error)})`);
  }
  let file;
  try {
    // Non-blocking, so that opening a FIFO does not wait for a writer (it is refused below).
    file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    return fail('file_unreadable', fileProblem(error));
  }
  try {
    const stat = await file.stat();
    if (!stat.isFile()) return fail('file_unreadable', stat.isDirectory() ? 'a folder, not a file' : 'not a regular file');
    if (stat.size > maxBytes) return fail('too_large', `file of ${stat.size} bytes exceeds --max-bytes ${maxBytes}`);
    if (stat.size === 0) return fail('not_image', 'empty file');
    // Memory of its own, as a fetched body has (moved to an image thread and freed once encoded: image/pool.ts).
    const body = Buffer.allocUnsafeSlow(stat.size);
    // A piece at a time: a 64 MB file never holds the event loop for long.
    let length = 0;
    while (length < body.length) {
      const { bytesRead } = await file.read(body, length, Math.min(READ_BYTES, body.length - length), length);
      if (bytesRead === 0) break; // cut short while read: what is there is judged below
      length += bytesRead;
    }
    const bytes = body.subarray(0, length);
    if (!sniffImage(bytes)) {
      return { ok: false, reason: 'not_image', detail: length === 0 ? 'empty file' : `file is not an image (starts with ${describeHead(bytes)})`, bytesFetched: length };
    }
    return { ok: true, body: bytes, bytesFetched: length };
  } catch (error) {
    return fail('file_unreadable', fileProblem(error));
  } finally {
    await file.close().catch(() => {});
  }
}

function fileProblem(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'a folder, not a file';
  return errorMessage(error);
}
