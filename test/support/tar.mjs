// Reading the tar files the webdataset sink writes (tar-stream, as the sink writes them).
import { createReadStream } from 'node:fs';
import tar from 'tar-stream';

/** Every member of a tar file, by name. @param {string} path */
export async function readTar(path) {
  const extract = tar.extract();
  /** @type {Map<string, Buffer>} */
  const members = new Map();
  createReadStream(path).pipe(extract);
  for await (const entry of extract) {
    /** @type {Buffer[]} */
    const chunks = [];
    for await (const chunk of entry) chunks.push(/** @type {Buffer} */ (chunk));
    members.set(entry.header.name, Buffer.concat(chunks));
  }
  return members;
}

/** The sample keys in a tar file (its members' names without their extensions). @param {string} path */
export async function tarKeys(path) {
  return [...new Set([...(await readTar(path)).keys()].map((name) => name.split('.')[0]))];
}
