#!/usr/bin/env node
// Makes the small photo fixtures committed under examples/photos and test/fixtures from
// the real photographs that ../shared/tools/photos.sh extracts from Debian packages.
// Run once by a developer: node scripts/make-fixtures.mjs /tmp/photos
// (the project never needs ../shared at build, test or run time).
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';

const from = process.argv[2];
if (!from) throw new Error('usage: node scripts/make-fixtures.mjs PHOTOS_DIR');
const photos = 'examples/photos';
const fixtures = 'test/fixtures';
await mkdir(join(photos, 'licenses'), { recursive: true });
await mkdir(fixtures, { recursive: true });

// [source file, output name, longest side or 0 to keep the original bytes]
const picks = [
  ['025_mate-Aqua.jpg', 'aqua.jpg', 0], // 2560x1600, kept whole: the size-rule example
  ['012_lomiri-Dragonfly.jpg', 'dragonfly.jpg', 1400],
  ['018_lomiri-friends.jpg', 'friends.jpg', 1200], // portrait
  ['014_lomiri-Wine.jpg', 'wine.jpg', 1200], // portrait
  ['047_budgie-canyon-wren.jpg', 'canyon-wren.jpg', 1600],
  ['033_mate-YellowFlower.jpg', 'yellow-flower.jpg', 1280],
  ['052_budgie-oakland-zoo-otters.jpg', 'otters.jpg', 1600],
  ['030_mate-Storm.jpg', 'storm.jpg', 1200],
  ['039_lxqt-drop.png', 'drop.png', 1000],
  ['060_lxqt-flowers.webp', 'flowers.webp', 1100],
  ['044_budgie-abstract-spiral.jpg', 'spiral.jpg', 1400],
  ['023_lomiri-sunset.jpg', 'sunset.jpg', 1500],
];
const index = (await readFile(join(from, 'INDEX.tsv'), 'utf8')).trim().split('\n').map((line) => line.split('\t'));
const header = index[0];
const rows = index.slice(1).map((cells) => Object.fromEntries(header.map((h, i) => [h, cells[i]])));
const lines = ['file\twidth\theight\tsource\tpackage\tversion\tlicense'];
const licenses = new Set();
for (const [source, name, longest] of picks) {
  const meta = rows.find((row) => row.file === source);
  if (!meta) throw new Error(`${source} is not in ${from}/INDEX.tsv`);
  const out = join(photos, name);
  if (longest === 0) await copyFile(join(from, source), out);
  else {
    const format = name.endsWith('.png') ? 'png' : name.endsWith('.webp') ? 'webp' : 'jpeg';
    await sharp(join(from, source)).resize(longest, longest, { fit: 'inside' }).toFormat(format, { quality: 85 }).toFile(out);
  }
  const { width, height } = await sharp(out).metadata();
  const license = meta.local_license.split(' ')[0];
  licenses.add(license);
  lines.push([name, width, height, meta.source_path, meta.package, meta.version, license].join('\t'));
}
for (const license of licenses) await copyFile(join(from, license), join(photos, license));
await writeFile(join(photos, 'INDEX.tsv'), `${lines.join('\n')}\n`);

// An upright portrait stored sideways: pixels rotated 90 degrees counter-clockwise, with
// EXIF orientation 6 ("rotate 90 clockwise to display"). Correct output is upright again.
const upright = await sharp(join(photos, 'friends.jpg')).toBuffer();
await sharp(upright).rotate(-90).withMetadata({ orientation: 6 }).jpeg({ quality: 90 }).toFile(join(fixtures, 'friends-exif6.jpg'));
// A JPEG cut off halfway, served whole (its Content-Length matches): a broken image.
const aqua = await readFile(join(photos, 'aqua.jpg'));
await writeFile(join(fixtures, 'aqua-truncated.jpg'), aqua.subarray(0, Math.floor(aqua.length / 2)));
console.log(lines.join('\n'));
