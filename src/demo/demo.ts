/**
 * `npm run demo`: the whole tool on real photos, offline. Starts a loopback CDN over the
 * bundled photos (examples/photos), writes a Parquet file of rows shaped like the
 * photo-concept-bucket dataset pointing at it, and runs the real command line on it:
 *
 *   node dist/pipeline.js --input <rows.parquet> --output demo-output
 *
 * One row points at a photo the CDN does not have, to show how a failure is recorded.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { startLoopbackCdn } from './loopback-cdn.js';
import { writeParquetRows, type DatasetRow } from './dataset-files.js';

const projectRoot = resolve(fileURLToPath(import.meta.url), '../../..');
const photos = join(projectRoot, 'examples/photos');
const output = resolve(process.argv[2] ?? 'demo-output');

const cdn = await startLoopbackCdn({ root: photos });
const work = await mkdtemp(join(tmpdir(), 'pcp-demo-'));
try {
  const captions = (await readFile(join(photos, 'captions.tsv'), 'utf8')).trim().split('\n').slice(1);
  const rows: DatasetRow[] = [];
  for (const [i, line] of captions.entries()) {
    const [file = '', caption = '', tags = ''] = line.split('\t');
    const { width = 0, height = 0 } = await sharp(join(photos, file)).metadata();
    rows.push({ id: 1000 + i, url: `${cdn.origin}/photos/${file}`, cogvlm_caption: caption, tags, width, height });
  }
  rows.push({ id: 9999, url: `${cdn.origin}/photos/missing.jpg`, cogvlm_caption: null, tags: 'missing', width: 100, height: 100 });
  const input = join(work, 'rows.parquet');
  await writeParquetRows(input, rows);

  const args = [join(projectRoot, 'dist/pipeline.js'), '--input', input, '--output', output, '--results', join(output, 'results.ndjson')];
  process.stderr.write(`demo: ${rows.length} rows (one of them a missing photo) from a loopback CDN at ${cdn.origin}\n`);
  process.stderr.write(`demo: node ${args.map((arg) => (arg.startsWith(projectRoot) ? arg.slice(projectRoot.length + 1) : arg)).join(' ')}\n`);
  const code = await new Promise<number | null>((done) => {
    spawn(process.execPath, args, { stdio: 'inherit' }).on('exit', done);
  });
  process.stderr.write(`demo: images and captions are in ${output}; one line per row in ${join(output, 'results.ndjson')}\n`);
  process.stderr.write(`demo: SimpleTuner trains on it with --data_backend_config ${join(output, 'simpletuner-dataloader.json')}\n`);
  process.exitCode = code ?? 1;
} finally {
  await cdn.close();
  await rm(work, { recursive: true, force: true });
}
