#!/usr/bin/env node
/**
 * The entry point, as a library and as a program.
 *
 * As a library: `runPipeline(options)` builds and runs the pipeline (row source -> resume
 * -> fetch -> decode/resize -> sink -> record; see run.ts).
 * As a program (`node dist/pipeline.js ...`): on Linux it first restarts itself with the
 * thread pool, allocator and heap settings it is measured with (cli/process-settings.ts), then hands
 * its arguments to the CLI. Everything heavy (sharp, undici, parquet-wasm, SQLite) is
 * imported only once a run really happens, so the supervising parent stays a bare Node
 * process.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { missingSettings, needsSettings, restartWith, superviseFromParent } from './cli/process-settings.js';
import type { Options, PipelineOptions } from './options.js';
import type { RunHooks, Summary } from './run.js';

export type { RunHooks, Summary };

export async function runPipeline(options: PipelineOptions | Options, hooks: RunHooks = {}): Promise<Summary> {
  const { runPipeline: run } = await import('./run.js');
  return run(options, hooks);
}

function isMainModule(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMainModule()) {
  // Commands that decode no image and write no output (status, enqueue, --help) need none
  // of the process settings, nor a second process.
  const argv = process.argv.slice(2);
  const missing = needsSettings(argv) ? missingSettings(argv) : undefined;
  if (missing) {
    restartWith(missing);
  } else {
    superviseFromParent();
    void import('./cli/main.js').then(async ({ main }) => {
      process.exitCode = await main(process.argv.slice(2));
    });
  }
}
