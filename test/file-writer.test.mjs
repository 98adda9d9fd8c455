// The writer threads (src/util/file-writer.ts): many files at once, each whole under its
// name or not at all, an image's bytes moved to the thread, and a failure that keeps its
// code and names its file.
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { createFileWriter } from '../dist/util/file-writer.js';
import { tempDir } from './support/run.mjs';

test('many writes at once, more than the threads: every file whole, the bytes moved, nothing temporary left', async (t) => {
  const work = await tempDir();
  t.after(() => work.cleanup());
  const writer = createFileWriter(2);
  try {
    const images = Array.from({ length: 64 }, (_, i) => Buffer.from(new Uint8Array(1000 + i).fill(i).buffer));
    const sizes = await Promise.all(images.map((image, i) => writer.writeFiles(work.path, [[`${i}.txt`, `caption ${i}`], [`${i}.bin`, image]])));
    assert.deepEqual(sizes, images.map((_, i) => `caption ${i}`.length + 1000 + i));
    assert.ok(images.every((image) => image.buffer.byteLength === 0), 'each image was moved to a writing thread, not copied');
    const names = await readdir(work.path);
    assert.equal(names.length, 128);
    assert.equal(names.filter((name) => name.startsWith('.')).length, 0, 'no temporary file left');
    for (let i = 0; i < 64; i++) {
      assert.equal(await readFile(join(work.path, `${i}.txt`), 'utf8'), `caption ${i}`);
      const bytes = await readFile(join(work.path, `${i}.bin`));
      assert.equal(bytes.length, 1000 + i);
      assert.ok(bytes.every((byte) => byte === i));
    }
    // A folder that is not there: the error names the file and keeps its code.
    await assert.rejects(writer.writeFiles(join(work.path, 'missing'), [['a.txt', 'x']]), (error) => {
      assert.equal(/** @type {{ code?: string }} */ (error).code, 'ENOENT');
      assert.match(/** @type {Error} */ (error).message, new RegExp(`^cannot write ${join(work.path, 'missing', 'a.txt')}: ENOENT`));
      return true;
    });
    await mkdir(join(work.path, 'missing'));
  } finally {
    await writer.close();
  }
});
