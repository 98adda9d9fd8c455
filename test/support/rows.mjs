// Rows shaped like the photo-concept-bucket dataset, pointing at the test CDN.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { PHOTOS } from './cdn.mjs';

/**
 * One row per bundled photo. Some captions carry commas, quotes and newlines (as real
 * captions do), one is empty so the tags stand in for it.
 * @param {string} origin
 * @returns {Promise<import('../../dist/demo/dataset-files.js').DatasetRow[]>}
 */
export async function photoRows(origin) {
  const lines = (await readFile(join(PHOTOS, 'captions.tsv'), 'utf8')).trim().split('\n').slice(1);
  const rows = [];
  for (const [i, line] of lines.entries()) {
    const [file = '', caption = '', tags = ''] = line.split('\t');
    const { width = 0, height = 0 } = await sharp(join(PHOTOS, file)).metadata();
    let text = caption;
    if (i === 1) text = `${caption}\nIt is "very" detailed, with a second line.`;
    if (i === 2) text = '';
    rows.push({ id: 500 + i, url: `${origin}/photos/${file}`, cogvlm_caption: text, tags, width, height });
  }
  return rows;
}
