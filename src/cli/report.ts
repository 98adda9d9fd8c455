/**
 * `report --output DIR`: one self-contained HTML page about a fetched dataset
 * (`DIR/report.html`, or `--report FILE`); `report --redis URL --queue NAME --output DIR`
 * reads a queue's shared state instead of the output's own. The page's renderer and its
 * chart library are loaded only here.
 */
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { writeFileAtomically } from '../util/atomic-file.js';
import { parseCommand } from './command.js';
import { EXIT_OK, guarded } from './exit.js';
import { FLAGS } from './flags.js';

export async function reportCommand(argv: readonly string[]): Promise<number> {
  return guarded(async () => {
    const { flags } = parseCommand('report', argv);
    const output = flags.output!;
    const options = { batchSize: flags.batchSize ?? FLAGS.batchSize.fallback, thumbnails: flags.thumbnails ?? FLAGS.thumbnails.fallback };
    if (options.batchSize < 1) throw new UsageError('--batch-size must be at least 1');
    if (options.thumbnails < 0) throw new UsageError('--thumbnails must be 0 or more');
    if ((flags.redis === undefined) !== (flags.queue === undefined)) throw new UsageError('a queue is named by --redis URL and --queue NAME together');
    const started = performance.now();
    const data =
      flags.redis !== undefined
        ? await (await import('../report/shared.js')).gatherShared(flags.redis, flags.queue!, output, options)
        : await (await import('../report/local.js')).gatherLocal(output, options);
    const { renderReport } = await import('../report/html/render.js');
    const path = flags.report ?? join(output, 'report.html');
    await writeFileAtomically(path, await renderReport(data));
    const { totals } = data;
    process.stdout.write(`wrote ${path}: ${totals.rows} rows, ${totals.saved} saved, ${totals.failed} failed, ${totals.skipped} skipped; ${data.thumbnails.length} thumbnails (${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
    return EXIT_OK;
  });
}
