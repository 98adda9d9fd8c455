/** `status --output DIR`: what the resume state holds; `status --redis URL --queue NAME`: a queue's. */
import { errorMessage } from '../errors.js';
import type { MetadataCoverage } from '../sinks/sample-index.js';
import type { StateStore } from '../state/store.js';
import { RESUME_DEFAULTS } from '../state/options.js';
import { parseCommand } from './command.js';
import { EXIT_OK, EXIT_USAGE, guarded } from './exit.js';
import { queueStatusCommand } from './queue.js';


export async function statusCommand(argv: readonly string[]): Promise<number> {
  return guarded(async () => {
    const { flags } = parseCommand('status', argv);
    if (flags.redis !== undefined) return queueStatusCommand(flags.redis, flags.queue, flags.json === true);
    if (flags.output === undefined) {
      process.stderr.write('error: status needs --output DIR (or --redis URL --queue NAME)\n');
      return EXIT_USAGE;
    }
    return outputStatus(flags.output, flags.maxAttempts ?? RESUME_DEFAULTS.maxAttempts, flags.json === true);
  });
}

async function outputStatus(output: string, maxAttempts: number, json: boolean): Promise<number> {
  const [state, index] = await Promise.all([import('../state/store.js'), import('../sinks/sample-index.js')]);
  let store: StateStore;
  try {
    store = state.StateStore.open(output, { readonly: true });
  } catch (error) {
    process.stderr.write(`error: no state in ${output} (${errorMessage(error)}): has a run written there?\n`);
    return EXIT_USAGE;
  }
  try {
    const summary = store.summary(maxAttempts);
    const metadata = index.SampleIndex.coverage(output, 'dir');
    if (json) {
      process.stdout.write(`${JSON.stringify(metadata ? { ...summary, metadata } : summary, null, 2)}\n`);
      return EXIT_OK;
    }
    const failures = Object.entries(summary.failures).map(([reason, count]) => `  ${reason}: ${count}`);
    const run = summary.lastRun;
    const lines = [
      `output: ${output}`,
      `saved: ${summary.saved}`,
      `failed: ${summary.failed}`,
      ...failures,
      `pending retries: ${summary.pendingRetries}`,
      run
        ? `last run: #${run.run} (pid ${run.pid}) started ${run.startedAt} UTC, ` +
          (run.endedAt ? `ended ${run.endedAt} UTC (${run.exit}): ${run.rows} rows, ${run.saved} saved, ${run.failed} failed, ${run.skipped} skipped` : 'still running or killed')
        : 'last run: none',
      ...(metadata ? [metadataLine(metadata)] : []),
      `a page of it all (failures, hosts, sizes, SimpleTuner buckets, a contact sheet): report --output ${output}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return EXIT_OK;
  } finally {
    store.close();
  }
}

/** What metadata.parquet covers of the stored images: what SimpleTuner will train on. */
function metadataLine(metadata: MetadataCoverage): string {
  if (metadata.metadataRows === undefined) return `metadata.parquet: not written yet (${metadata.stored} images stored)`;
  const covers = `metadata.parquet: covers ${metadata.metadataRows} of ${metadata.stored} stored images, written ${metadata.refreshedAt} UTC`;
  return metadata.current ? covers : `${covers}; images stored since then are added by the next refresh or run`;
}
